"""`iris-prompt serve --workers N` as a real process: several workers share one replay store
in a real Redis, one metrics endpoint adds up every worker, logs are JSON lines, and SIGTERM
lets every call in flight finish. Without a shared replay store several workers or instances
are refused at start-up."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families

from iris_prompt.engine.service import SERVICE_ID
from tests.conftest import TEST_ISSUER, patient_view
from tests.support import web
from tests.support.fhir_server import FhirTestServer
from tests.support.process import ServeProcess, free_port, serve_process
from tests.support.redis import RedisServer
from tests.support.server import serve
from tests.support.tokens import SigningKey, claims, jwks

pytestmark = pytest.mark.slow

PATH = f"/cds-services/{SERVICE_ID}"
PREFETCH = {
    "patient": {"resourceType": "Patient", "id": "p1", "gender": "female"},
    "conditions": None,
    "observations": None,
}


def environment(key: SigningKey, **extra: str) -> dict[str, str]:
    issuers = [{"iss": TEST_ISSUER, "jwks": jwks(key)}]
    return {"IRIS_TRUSTED_ISSUERS": json.dumps(issuers)} | extra


def bearer(served: ServeProcess, key: SigningKey, token: str | None = None) -> dict[str, str]:
    token = token or key.sign(claims(TEST_ISSUER, served.base_url + PATH))
    return {"Authorization": f"Bearer {token}"}


def worker_answering(served: ServeProcess, response: httpx.Response) -> int:
    """The pid of the worker process holding the connection this response came on."""
    local_port = response.extensions["network_stream"].get_extra_info("client_addr")[1]
    for child in psutil.Process(served.process.pid).children(recursive=True):
        for connection in child.net_connections(kind="tcp"):
            if connection.raddr and connection.raddr.port == local_port:
                return child.pid
    raise AssertionError("no worker holds the connection")


def sample(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for family in text_string_to_metric_families(text):
        for found in family.samples:
            if found.name == name and all(found.labels.get(k) == v for k, v in labels.items()):
                total += found.value
    return total


ADMIN_TOKEN = "admin-token-0123456789"


@dataclass
class TwoWorkers:
    served: ServeProcess
    metrics_port: int
    codesets: Path


@pytest.fixture(scope="module")
def two_workers(
    tmp_path_factory: pytest.TempPathFactory, es384_key: SigningKey, redis_server: RedisServer
) -> Iterator[TwoWorkers]:
    """One `serve --workers 2` for the tests below (two workers start in seconds): a shared
    replay store in the run's Redis, JSON logs, metrics on their own port, the admin API, and
    a copy of the bundled code sets to edit."""
    if redis_server.process is None:
        redis_server.start()
    folder = tmp_path_factory.mktemp("two-workers")
    codesets = folder / "codesets"
    shutil.copytree(Path(__file__).resolve().parents[2] / "codesets", codesets)
    metrics_port = free_port()
    env = environment(
        es384_key,
        IRIS_REDIS_URL=redis_server.url,
        IRIS_LOG_FORMAT="json",
        IRIS_METRICS_PORT=str(metrics_port),
        IRIS_ADMIN_TOKEN=ADMIN_TOKEN,
        IRIS_CODESETS_DIR=str(codesets),
    )
    with serve_process(folder, "--workers", "2", env=env) as served:
        served.wait_for_log("Application startup complete", count=2)
        yield TwoWorkers(served, metrics_port, codesets)


def test_two_workers_share_replay_protection_metrics_and_log_json(
    two_workers: TwoWorkers, es384_key: SigningKey
) -> None:
    served = two_workers.served
    metrics_url = f"http://127.0.0.1:{two_workers.metrics_port}/metrics"
    before = web.get(metrics_url).text
    log_before = len(served.log_text())
    body = patient_view(prefetch=PREFETCH)
    token = es384_key.sign(claims(TEST_ISSUER, served.base_url + PATH))
    clients: list[httpx.Client] = []
    try:
        # First use on one connection; then the same token on fresh connections, which the
        # kernel hands to either worker, until both have refused it.
        first = web.Client()
        clients.append(first)
        accepted = first.post(
            served.base_url + PATH, json=body, headers=bearer(served, es384_key, token)
        )
        assert accepted.status_code == 200
        refused_by: dict[int, int] = {}
        for _ in range(60):
            client = web.Client()
            clients.append(client)
            again = client.post(
                served.base_url + PATH, json=body, headers=bearer(served, es384_key, token)
            )
            assert again.status_code == 401, again.text  # a replay, whichever worker
            pid = worker_answering(served, again)
            refused_by[pid] = refused_by.get(pid, 0) + 1
            if len(refused_by) == 2 and len(clients) > 6:
                break
        assert len(refused_by) == 2, refused_by  # both workers refused the replay
        fresh = [
            web.post(served.base_url + PATH, json=body, headers=bearer(served, es384_key))
            for _ in range(5)
        ]
        assert [r.status_code for r in fresh] == [200] * 5
    finally:
        for client in clients:
            client.close()
    scraped = web.get(metrics_url).text

    def added(name: str, **labels: str) -> float:
        """What this test's calls added to a counter, summed over every worker."""
        return sample(scraped, name, **labels) - sample(before, name, **labels)

    replays = sum(refused_by.values())
    labels = {"service": SERVICE_ID, "hook": "patient-view"}
    assert added("iris_cds_calls_total", status="200", **labels) == 6
    assert added("iris_cds_calls_total", status="401", **labels) == replays
    assert added("iris_jwt_refusals_total", reason="replayed") == replays
    assert added("iris_cds_call_duration_seconds_count", **labels) == 6 + replays
    # Each worker's CPU and memory, by pid.
    for pid in refused_by:
        assert sample(scraped, "iris_worker_resident_memory_bytes", pid=str(pid)) > 0
        assert sample(scraped, "iris_worker_cpu_seconds", pid=str(pid)) > 0
    # The main process serves no calls: it reports no code sets and no worker gauges.
    main = str(served.process.pid)
    assert sample(scraped, "iris_codeset_info", pid=main) == 0
    assert sample(scraped, "iris_worker_resident_memory_bytes", pid=main) == 0
    # Every line the service wrote is one JSON object.
    parsed = [json.loads(line) for line in served.log_text().splitlines() if line.strip()]
    mine = [
        json.loads(line) for line in served.log_text()[log_before:].splitlines() if line.strip()
    ]
    assert parsed and mine
    answered = [p for p in mine if p["message"].startswith("service call answered 200")]
    assert len(answered) == 6
    assert {"time", "level", "logger", "hookInstance", "service", "status", "duration_ms"} <= set(
        answered[0]
    )
    assert answered[0]["service"] == SERVICE_ID and answered[0]["status"] == 200


def test_sigterm_answers_every_call_in_flight(tmp_path: Path, es384_key: SigningKey) -> None:
    fhir = FhirTestServer([{"resourceType": "Patient", "id": "p1", "gender": "female"}])
    fhir.hold = threading.Event()  # every call waits on the FHIR server until released
    env = environment(
        es384_key, IRIS_FHIR_ALLOW_HTTP="true", IRIS_FHIR_ALLOW_PRIVATE_ADDRESSES="true"
    )
    results: list[Any] = []
    with serve(fhir.app, access_log=False) as fhir_url, serve_process(tmp_path, env=env) as served:
        body = patient_view(fhir_server=fhir_url)

        def call() -> None:
            try:
                response = web.post(
                    served.base_url + PATH, json=body, headers=bearer(served, es384_key), timeout=30
                )
                results.append(response.status_code)
            except httpx.HTTPError as error:
                results.append(type(error).__name__)

        burst = [threading.Thread(target=call) for _ in range(6)]
        for thread in burst:
            thread.start()
        # Every call in flight: its connection accepted, and the service waiting on the FHIR
        # server for it (each call reads the patient once).
        port = int(served.base_url.rsplit(":", 1)[1])
        server = psutil.Process(served.process.pid)
        while not (
            sum(r.path.endswith("/Patient/p1") for r in fhir.requests) >= 6
            and sum(
                c.status == psutil.CONN_ESTABLISHED and c.laddr.port == port
                for c in server.net_connections(kind="tcp")
            )
            >= 6
        ):
            threading.Event().wait(0.02)
        served.process.send_signal(signal.SIGTERM)
        # The service is shutting down with every call still waiting: only now may they finish.
        served.wait_for_log("Shutting down")
        fhir.hold.set()
        for thread in burst:
            thread.join(timeout=30)
        # uvicorn re-raises the SIGTERM once shut down, as a process manager expects.
        assert served.process.wait(timeout=30) in (0, -signal.SIGTERM)
    assert results == [200] * 6
    log = served.log_text()
    # Every call was answered after the shutdown began.
    answered = [m.start() for m in re.finditer("service call answered 200", log)]
    assert len(answered) == 6 and log.index("Shutting down") < min(answered)
    assert "stopped: calls in flight answered, card log flushed, pools closed" in log


def refused_start(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("IRIS_")}
    clean |= {
        "IRIS_TRUSTED_ISSUERS": '[{"iss": "https://ehr.example", "jku": ["https://ehr.example/j"]}]',
        "IRIS_PUBLIC_BASE_URL": "https://iris.example.nhs.uk",
        "IRIS_DATA_DIR": str(tmp_path / "data"),
    }
    command = [sys.executable, "-m", "iris_prompt.cli", "serve", "--port", str(free_port())]
    return subprocess.run(
        [*command, *args], capture_output=True, text=True, timeout=30, env=clean | env
    )


def test_several_workers_without_a_shared_replay_store_are_refused(tmp_path: Path) -> None:
    result = refused_start(tmp_path, "--workers", "2")
    assert result.returncode == 2
    assert "2 workers need a shared replay store: set IRIS_REDIS_URL" in result.stderr
    assert not (tmp_path / "data").exists()  # refused before anything was made


def test_a_deployment_of_several_instances_without_redis_is_refused(tmp_path: Path) -> None:
    result = refused_start(tmp_path, IRIS_INSTANCES="3")
    assert result.returncode == 2
    assert "3 instances need a shared replay store: set IRIS_REDIS_URL" in result.stderr


def test_a_code_set_reload_reaches_every_worker(two_workers: TwoWorkers) -> None:
    """POST /admin/codesets/reload lands in one worker; the others are replaced to serve the
    same checked folder, so no call is decided on the old sets once the reload has gone round."""
    served = two_workers.served
    manifest = two_workers.codesets / "known-abuse.toml"
    old = re.search(r'^version = "([^"]+)"', manifest.read_text(), re.MULTILINE)
    assert old is not None
    major, minor, patch = old.group(1).split(".")
    new = f"{major}.{minor}.{int(patch) + 1}"
    lines = served.wait_for_log("Application startup complete", count=2)
    manifest.write_text(manifest.read_text().replace(old.group(0), f'version = "{new}"'))
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    answer = web.post(served.base_url + "/admin/codesets/reload", headers=admin)
    assert answer.status_code == 200, answer.text
    assert "replaced" in answer.json()["workers"]
    # Both old workers retired, each after its replacement started.
    served.wait_for_log("Finished server process", after=lines, count=2, timeout=60)
    seen = set()
    for _ in range(12):  # fresh connections, which the kernel hands to either worker
        with web.Client() as client:
            status = client.get(served.base_url + "/admin/codesets", headers=admin).json()
            seen.add(status["versions"]["iris-prompt-known-abuse"])
    assert seen == {new}


def test_with_an_otlp_endpoint_the_service_exports_its_calls_spans(
    tmp_path: Path, es384_key: SigningKey
) -> None:
    """Tracing configured the standard way (OTEL_EXPORTER_OTLP_ENDPOINT) sends the spans of a
    call to the collector over OTLP/HTTP; they leave at shutdown at the latest."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    received: list[ExportTraceServiceRequest] = []
    arrived = threading.Event()

    async def traces(request: Request) -> Response:
        export = ExportTraceServiceRequest()
        export.ParseFromString(await request.body())
        received.append(export)
        arrived.set()
        return Response(status_code=200)

    collector = Starlette(routes=[Route("/v1/traces", traces, methods=["POST"])])
    with serve(collector, access_log=False) as collector_url:
        env = environment(es384_key, OTEL_EXPORTER_OTLP_ENDPOINT=collector_url)
        with serve_process(tmp_path, env=env) as served:
            answer = web.post(
                served.base_url + PATH,
                json=patient_view(prefetch=PREFETCH),
                headers=bearer(served, es384_key),
            )
            assert answer.status_code == 200
            served.process.send_signal(signal.SIGTERM)  # shutdown exports what is queued
            served.process.wait(timeout=30)
        assert arrived.wait(10)
    spans = [
        span
        for export in received
        for resource in export.resource_spans
        for scope in resource.scope_spans
        for span in scope.spans
    ]
    services = {
        attribute.value.string_value
        for export in received
        for resource in export.resource_spans
        for attribute in resource.resource.attributes
        if attribute.key == "service.name"
    }
    assert services == {"iris-prompt"}
    assert len({span.trace_id for span in spans}) >= 1
    assert len(spans) >= 3  # the call and its parts

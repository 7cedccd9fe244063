"""Metrics, traces and JSON logs of real calls to the app: `/metrics` agrees with the calls
made, every call is one trace with child spans for the prefetch, each FHIR request, the
household lookup, the rules, the cards and the store, and nothing identifying is in either."""

import datetime
import io
import json
import logging
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families

from cds_hooks.logs import RedactingFilter
from iris_prompt.app import create_app
from iris_prompt.engine.service import SERVICE_ID
from iris_prompt.ops.logs import JsonFormatter
from tests.conftest import (
    ACCESS_TOKEN,
    LiveService,
    bundled_codesets,
    live,
    make_settings,
    patient_view,
    sample_resources,
)
from tests.support.fhir_server import FhirTestServer
from tests.support.server import serve
from tests.support.tokens import SigningKey

ADMIN = "admin-token-for-metrics-0123"
PATIENT = "pat-5b4a3c2d"
PATH = f"/cds-services/{SERVICE_ID}"


def fhir_server() -> FhirTestServer:
    """A woman of 35 with trigger conditions, in a household of two."""
    resources = sample_resources(PATIENT)
    resources[0]["birthDate"] = "1990-05-01"
    recent = (datetime.date.today() - datetime.timedelta(days=60)).isoformat()
    for resource in resources:
        if resource["resourceType"] == "Condition":
            resource["recordedDate"] = recent
    return FhirTestServer(resources, page_size=2)


@pytest.fixture
def service(es384_key: SigningKey) -> Iterator[LiveService]:
    def build(base_url: str) -> FastAPI:
        settings = make_settings(es384_key, public_base_url=base_url, admin_token=ADMIN)
        # The product's own services, with the store (the embedded SQLite of this run).
        return create_app(settings, codesets=bundled_codesets())

    with live(build, es384_key) as running:
        yield running


@pytest.fixture(scope="session")
def _provider() -> TracerProvider:
    """The SDK's provider, installed once for the run (OpenTelemetry allows one per process)."""
    provider = TracerProvider()
    trace.set_tracer_provider(provider)
    return provider


@pytest.fixture
def spans(_provider: TracerProvider) -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    _provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield exporter
    exporter.shutdown()  # keeps nothing from later tests


def scrape(service: LiveService) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    answer = service.get("/metrics", headers={"Authorization": f"Bearer {ADMIN}"})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    found = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def total(
    found: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return sum(
        value
        for (metric, sample_labels), value in found.items()
        if metric == name and all(dict(sample_labels).get(k) == v for k, v in labels.items())
    )


def test_metrics_agree_with_the_calls_made(service: LiveService) -> None:
    fhir = fhir_server()
    before = scrape(service)
    with serve(fhir.app, access_log=False) as fhir_url:
        body = patient_view(fhir_server=fhir_url)
        body["context"]["patientId"] = PATIENT
        answers = [service.post(PATH, body) for _ in range(3)]
        expired = service.post(PATH, body, headers=service.headers(PATH, exp=1, iat=0))
        wrong_aud = service.post(PATH, body, headers=service.headers(PATH, aud="https://x.example"))
        unknown = service.post("/cds-services/nothing-here", body)
        invalid = service.post(PATH, body | {"hookInstance": 7})
    assert [a.status_code for a in answers] == [200, 200, 200]
    statuses = [
        expired.status_code,
        wrong_aud.status_code,
        unknown.status_code,
        invalid.status_code,
    ]
    assert statuses == [401, 401, 404, 400]
    after = scrape(service)

    def delta(name: str, **labels: str) -> float:
        return total(after, name, **labels) - total(before, name, **labels)

    labels = {"service": SERVICE_ID, "hook": "patient-view"}
    assert delta("iris_cds_calls_total", status="200", **labels) == 3
    assert delta("iris_cds_calls_total", status="401", **labels) == 2
    assert delta("iris_cds_calls_total", status="400", **labels) == 1
    assert delta("iris_cds_calls_total", service="unknown", status="404") == 1
    assert delta("iris_cds_call_duration_seconds_count", **labels) == 6
    assert delta("iris_jwt_refusals_total", reason="expired") == 1
    assert delta("iris_jwt_refusals_total", reason="audience") == 1
    cards = sum(len(a.json()["cards"]) for a in answers)
    assert cards > 0 and delta("iris_cards_total") == cards
    assert delta("iris_household_checks_total") == 3
    assert delta("iris_household_lookup_duration_seconds_count") == 3
    reads = len(fhir.requests)
    assert delta("iris_fhir_request_duration_seconds_count") == reads
    assert delta("iris_fhir_request_duration_seconds_count", purpose="household") > 0
    assert delta("iris_fhir_request_duration_seconds_count", purpose="prefetch") > 0
    for codeset, version in bundled_codesets().current.versions().items():
        assert total(after, "iris_codeset_info", codeset=codeset, version=version) == 1
    assert total(after, "process_cpu_seconds_total") > 0
    # None here; other tests in this process may have counted some (one registry per process).
    assert delta("iris_replay_store_errors_total") == 0
    declared = service.get("/metrics", headers={"Authorization": f"Bearer {ADMIN}"}).text
    assert "# TYPE iris_replay_store_errors_total counter" in declared
    assert "iris_database_errors" in declared


def test_metrics_need_the_admin_token(service: LiveService) -> None:
    assert service.get("/metrics", headers={}).status_code == 401
    wrong = service.get("/metrics", headers={"Authorization": "Bearer not-the-admin-token"})
    assert wrong.status_code == 401


def test_a_call_is_one_trace_with_its_parts_as_child_spans_and_its_log_lines_carry_it(
    service: LiveService, spans: InMemorySpanExporter
) -> None:
    fhir = fhir_server()
    lines = io.StringIO()
    handler = logging.StreamHandler(lines)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    previous = root.level
    root.setLevel(logging.INFO)
    try:
        with serve(fhir.app, access_log=False) as fhir_url:
            body = patient_view(fhir_server=fhir_url)
            body["context"]["patientId"] = PATIENT
            headers = service.headers(PATH)
            assert service.post(PATH, body, headers=headers).status_code == 200
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)
    finished: list[ReadableSpan] = list(spans.get_finished_spans())
    (call,) = [s for s in finished if s.name == "CDS service call"]
    trace_id = call.context.trace_id
    mine = [s for s in finished if s.context.trace_id == trace_id]
    by_id = {s.context.span_id: s for s in mine}

    def ancestors(span: ReadableSpan) -> list[str]:
        names = []
        while span.parent is not None and span.parent.span_id in by_id:
            span = by_id[span.parent.span_id]
            names.append(span.name)
        return names

    parts = {"prefetch", "household lookup", "rules", "cards", "store"}
    within_call = {s.name for s in mine if "CDS service call" in ancestors(s)}
    assert parts <= within_call
    fhir_spans = [s for s in mine if s.name == "FHIR GET"]
    assert len(fhir_spans) == len(fhir.requests)
    # Each FHIR request sits under the part that made it.
    made_by = {next(n for n in ancestors(s) if n in parts) for s in fhir_spans}
    assert made_by == {"prefetch", "household lookup"}
    assert call.attributes is not None and call.attributes["http.response.status_code"] == 200
    # No patient data or token in any span's attributes.
    values = " ".join(str(v) for s in mine for v in (s.attributes or {}).values())
    for secret in (PATIENT, "p2", ACCESS_TOKEN, headers["Authorization"][7:]):
        assert secret not in values
    # Log lines written during the call carry its trace id.
    logged = [json.loads(line) for line in lines.getvalue().splitlines()]
    answered = [entry for entry in logged if entry["message"].startswith("service call answered")]
    assert answered and answered[0]["trace_id"] == format(trace_id, "032x")
    assert answered[0]["status"] == 200 and answered[0]["service"] == SERVICE_ID

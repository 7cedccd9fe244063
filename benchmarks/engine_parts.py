"""The parts of the engine benchmark: request bodies, the two servers, signed tokens, GC control.

Bodies: every Synthea patient of the reference material (`IRIS_REFERENCE_DIR`, by default
../shared/reference beside the project) wrapped as a patient-view request with full prefetch
(patient; Conditions, Observations and Encounters as searchset Bundles, as the service's
templates fetch them; an empty household), and records of thousands of entries made by
combining several patients' Conditions, Observations and Encounters into one record of 2-4 MB.
"""

import datetime
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson

from iris_prompt.codesets.files import default_codesets_dir, load_codesets
from iris_prompt.engine.service import SERVICE_ID
from tests.support.process import free_port, serve_process
from tests.support.tokens import SigningKey, claims, jwks

ISS = "https://ehr.bench.example"
ROOT = Path(__file__).resolve().parents[1]
PATIENTS = (
    Path(os.environ.get("IRIS_REFERENCE_DIR", ROOT.parent / "shared" / "reference"))
    / "synthea"
    / "patients"
)
PATH = f"/cds-services/{SERVICE_ID}"
PREFETCHED = {"Condition": "conditions", "Observation": "observations", "Encounter": "encounters"}
COMBINED_RECORDS = 3
COMBINED_BYTES = 2_700_000  # combine patients until a record passes this (it ends at 2-4 MB)
NO_TOKEN = {"Content-Type": "application/json"}

# Synthea's records use few of the UK trigger codes, and none recently: to time the path that
# builds cards too, a second pass adds one recent depression Condition (codesets/trigger.csv).
RECENT_TRIGGER = {
    "resourceType": "Condition",
    "id": "bench-trigger",
    "code": {"coding": [{"system": "http://snomed.info/sct", "code": "35489007"}]},
}


def _body(patient: dict[str, Any], resources: list[dict[str, Any]], with_trigger: bool) -> bytes:
    prefetch: dict[str, Any] = {
        "patient": patient,
        "household": {"resourceType": "Bundle", "type": "searchset", "total": 0},
        "relatedPersons": {"resourceType": "Bundle", "type": "searchset", "total": 0},
    }
    if with_trigger:
        recorded = (datetime.date.today() - datetime.timedelta(days=30)).isoformat()
        resources = [*resources, RECENT_TRIGGER | {"recordedDate": recorded}]
    for kind, key in PREFETCHED.items():
        found = [{"resource": r} for r in resources if r["resourceType"] == kind]
        prefetch[key] = {"resourceType": "Bundle", "type": "searchset", "total": len(found)}
        if found:
            prefetch[key]["entry"] = found
    body = {
        "hook": "patient-view",
        "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
        "context": {"userId": "Practitioner/bench", "patientId": patient["id"]},
        "prefetch": prefetch,
    }
    return orjson.dumps(body)


def _records() -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """(Patient, the resources the service reads) per Synthea patient."""
    records = []
    for path in sorted(PATIENTS.glob("*.json")):
        bundle = orjson.loads(path.read_bytes())
        resources = [entry["resource"] for entry in bundle.get("entry", ())]
        patient = next(r for r in resources if r["resourceType"] == "Patient")
        records.append((patient, [r for r in resources if r["resourceType"] in PREFETCHED]))
    return records


def request_bodies(*, with_trigger: bool = False) -> list[bytes]:
    """One body per Synthea patient, then the combined records of 2-4 MB; smallest first."""
    records = _records()
    bodies = [_body(patient, resources, with_trigger) for patient, resources in records]
    sizes = [len(body) for body in bodies]
    for start in range(COMBINED_RECORDS):
        # The patients from a different starting point each time, until the record is big
        # enough: the first patient with everyone's entries.
        offset = start * len(records) // COMBINED_RECORDS
        chosen, size = [], 0
        for n in range(len(records)):
            index = (offset + n) % len(records)
            chosen.append(index)
            size += sizes[index]
            if size >= COMBINED_BYTES:
                break
        entries = [r for index in chosen for r in records[index][1]]
        bodies.append(_body(records[chosen[0]][0], entries, with_trigger))
    return sorted(bodies, key=len)


class Tokens:
    """Fresh signed JWTs for one URL, made before the clock starts."""

    def __init__(self, key: SigningKey, audience: str, count: int) -> None:
        self._tokens = iter([key.sign(claims(ISS, audience)) for _ in range(count)])

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {next(self._tokens)}", "Content-Type": "application/json"}


@contextmanager
def quiet_gc() -> Iterator[None]:
    """The measuring client's own garbage collection kept out of the timings: what exists is
    collected and frozen, and the collector is off until the measurement ends."""
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.unfreeze()


# --- the two servers ---------------------------------------------------------------------------


@contextmanager
def service(*keys: SigningKey) -> Iterator[tuple[str, int]]:
    """`iris-prompt serve` trusting `keys`; with none, in local mode (no caller JWT)."""
    env = {"IRIS_LOG_LEVEL": "WARNING"}
    args = () if keys else ("--local",)
    if keys:
        env["IRIS_TRUSTED_ISSUERS"] = json.dumps([{"iss": ISS, "jwks": jwks(*keys)}])
    with (
        tempfile.TemporaryDirectory() as folder,
        serve_process(Path(folder), *args, env=env) as served,
    ):
        yield served.base_url, served.process.pid


def reference_app() -> Any:
    """A minimal FastAPI app: orjson parse, scan codings against the code sets, no cards.

    Like the service, it freezes what start-up made out of the garbage collector's full passes,
    so that both are measured alike."""
    from fastapi import FastAPI, Request
    from starlette.responses import Response

    sets = load_codesets(default_codesets_dir())
    codes = frozenset((m.system, m.code) for codeset in sets for m in codeset)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        gc.collect()
        gc.freeze()
        yield

    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None, lifespan=lifespan)

    @app.post(PATH)
    async def invoke(request: Request) -> Response:
        data = orjson.loads(await request.body())
        found = 0
        for value in (data.get("prefetch") or {}).values():
            for entry in (value or {}).get("entry") or ():
                resource = entry.get("resource") or {}
                concepts = [resource.get("code")] + list(resource.get("reasonCode") or ())
                for concept in concepts:
                    for coding in (concept or {}).get("coding") or ():
                        found += (coding.get("system"), coding.get("code")) in codes
        return Response(orjson.dumps({"cards": [], "found": found}), media_type="application/json")

    return app


@contextmanager
def reference() -> Iterator[tuple[str, int]]:
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "benchmarks.engine_parts:reference_app",
        "--factory",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    process = subprocess.Popen(command, cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.post(base + PATH, content=b"{}", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("the reference app did not start") from None
                time.sleep(0.1)
        yield base, process.pid
    finally:
        process.terminate()
        process.wait(timeout=10)

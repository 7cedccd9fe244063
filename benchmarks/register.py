"""What the shared MAPPA register adds to a call: a patient-view with a three-person household,
side by side with the register on and off.

Two `iris-prompt serve --local` processes (one with IRIS_REGISTER_ENABLED=false), the project's
test FHIR server in a third, and calls sent to each in turn, one at a time: each a patient with a
recent depression Condition and a household Group of three others, each with an NHS number, a
Patient and a (non-MAPPA) Flag, and a fresh access token per call (so no household read is
answered from the cache). The register holds 1,000 flags on other people, none on these, so
both services give the same cards and the difference is the register's lookup alone (a MAPPA
card's disclosure audit costs the same whichever source its flag came from; the store's
section measures it). Target: the register adds at most 0.5 ms at the median.
"""

import datetime
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from benchmarks.household import PATH, body
from benchmarks.table import Row, summarise
from iris_prompt.engine.risk_flags import risk_extension
from iris_prompt.register.repository import Accessor, FlagRegister
from iris_prompt.store.database import make_engine, sqlite_url, upgrade
from tests.support.process import free_port, serve_process
from tests.support.records import household_group, other_flag, patient

SECTION = "register"
CALLS = 300
WARM_UP = 20
TARGET_MS = 0.5
MEMBERS = ("m1", "m2", "m3")
ORGANISATION = "BENCH1"


def nhs_numbers(count: int, start: int = 400_000_000) -> list[str]:
    """`count` valid NHS numbers (modulus 11) from `start` on."""
    found: list[str] = []
    prefix = start
    while len(found) < count:
        digits = f"{prefix:09d}"
        check = 11 - sum(int(d) * w for d, w in zip(digits, range(10, 1, -1), strict=True)) % 11
        if check != 10:
            found.append(digits + str(0 if check == 11 else check))
        prefix += 1
    return found


MEMBER_NUMBERS = dict(zip(MEMBERS, nhs_numbers(3, 600_000_000), strict=True))


def resources() -> list[dict[str, object]]:
    found = [patient("mum", "1990-01-01"), household_group("mum", *MEMBERS)]
    for member, number in MEMBER_NUMBERS.items():
        found += [patient(member, "1985-01-01", nhs=number), other_flag(member)]
    return found


def serve_fhir(port: int) -> None:
    import uvicorn

    from tests.support.fhir_server import FhirTestServer

    server = FhirTestServer(resources())
    uvicorn.run(server.app, host="127.0.0.1", port=port, log_level="warning")


def flag(number: str, today: datetime.date) -> dict[str, object]:
    return {
        "resourceType": "Flag",
        "status": "active",
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "495021000000105"}]},
        "subject": {"identifier": {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": number}},
        "period": {
            "start": (today - datetime.timedelta(days=30)).isoformat(),
            "end": (today + datetime.timedelta(days=180)).isoformat(),
        },
        "author": {
            "identifier": {
                "system": "https://fhir.nhs.uk/Id/ods-organization-code",
                "value": ORGANISATION,
            }
        },
        "extension": [risk_extension("known-adult", "high")],
    }


def seed(data_dir: Path) -> None:
    """The "on" service's register: 1,000 flags on other people."""
    data_dir.mkdir(parents=True)
    engine = make_engine(sqlite_url(data_dir))
    upgrade(engine)
    register = FlagRegister(engine, "http://127.0.0.1/fhir")
    who = Accessor("bench", ORGANISATION)
    now = datetime.datetime.now(datetime.UTC)
    for number in nhs_numbers(1000):
        register.create(flag(number, now.date()), who, now)
    engine.dispose()


def _wait(url: str) -> None:
    deadline = time.monotonic() + 20
    while True:
        try:
            httpx.get(url)
            return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def run() -> list[Row]:
    port = free_port()
    fhir = subprocess.Popen(
        [sys.executable, "-c", f"from benchmarks.register import serve_fhir; serve_fhir({port})"]
    )
    fhir_url = f"http://127.0.0.1:{port}"
    try:
        _wait(fhir_url + "/Patient/mum")
        with (
            tempfile.TemporaryDirectory() as on_dir,
            tempfile.TemporaryDirectory() as off_dir,
        ):
            seed(Path(on_dir) / "data")
            quiet = {"IRIS_LOG_LEVEL": "WARNING"}
            off_env = quiet | {"IRIS_REGISTER_ENABLED": "false"}
            with (
                serve_process(Path(on_dir), "--local", env=quiet) as on,
                serve_process(Path(off_dir), "--local", env=off_env) as off,
            ):
                timings: dict[str, list[float]] = {"on": [], "off": []}
                cards: dict[str, str] = {}
                clients = {
                    "on": httpx.Client(base_url=on.base_url, timeout=30),
                    "off": httpx.Client(base_url=off.base_url, timeout=30),
                }
                for i in range(WARM_UP + CALLS):
                    for name, http in clients.items():  # side by side, in turns
                        content = json.dumps(body(fhir_url, f"{name}-{i}")).encode()
                        started = time.perf_counter()
                        answer = http.post(PATH, content=content)
                        took = time.perf_counter() - started
                        if i >= WARM_UP:
                            timings[name].append(took)
                        cards[name] = answer.text
                for http in clients.values():
                    http.close()
    finally:
        fhir.terminate()
        fhir.wait()
    said = {
        name: [(c["summary"], c.get("detail")) for c in json.loads(text)["cards"]]
        for name, text in cards.items()
    }
    assert "3 household members checked" in cards["on"] and said["on"] == said["off"]
    on_row = summarise(SECTION, "patient-view, 3-person household, register on", timings["on"])
    off_row = summarise(SECTION, "same, register off", timings["off"])
    added = on_row.median_ms - off_row.median_ms
    return [
        on_row,
        off_row,
        Row(
            SECTION,
            "added by the register (median on - off)",
            len(timings["on"]),
            added,
            on_row.p95_ms - off_row.p95_ms,
            f"median < {TARGET_MS:g} ms",
            "met" if added < TARGET_MS else "MISSED",
        ),
    ]

"""The store's cost: per call in process, and end to end with 8 clients, SQLite and PostgreSQL.

1. In process, `Store.after_decision` alone (what the store adds to a call) on the median
   Synthea body with a recent trigger (an enquiry card: the call log is queued, nothing is
   awaited), and on the same call with a household MAPPA card (the disclosure audit is written
   before the response). Target: at most 0.3 ms at the median for the ordinary call.
2. End to end, the service in its own process with the store on the call path (SQLite, then a
   real PostgreSQL cluster) and without it: median and p95 of sequential calls on the median
   body (target: p95 no more than 10 % worse), and throughput with 8 concurrent clients
   (target: at least 0.9x without the store).
"""

import asyncio
import datetime
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from itertools import chain
from pathlib import Path

import httpx
import orjson

from benchmarks.engine_parts import PATH, PATIENTS, quiet_gc, request_bodies
from benchmarks.table import Row, summarise
from cds_hooks import CallContext, CdsRequest
from cds_hooks.request import parse_request
from iris_prompt.codesets.files import default_codesets_dir, load_codesets
from iris_prompt.engine.cards import CardSettings, cards_for
from iris_prompt.engine.household import Household, HouseholdMember
from iris_prompt.engine.record import read_record, resources_in
from iris_prompt.engine.risk_flags import MappaRisk
from iris_prompt.engine.rules import Decision, RuleSettings, decide
from iris_prompt.engine.service import RECORD_KEYS
from iris_prompt.store.database import make_engine, upgrade
from iris_prompt.store.service import Store, StoreConfig
from tests.support.postgres import PostgresCluster
from tests.support.process import free_port

SECTION = "store"
IN_PROCESS_CALLS = 2000
SEQUENTIAL_CALLS = 100
THROUGHPUT_REQUESTS = 400
ROUNDS = 6
CLIENTS = 8
JSON = {"Content-Type": "application/json"}


def _median_body() -> bytes:
    bodies = request_bodies(with_trigger=True)
    return bodies[len(bodies) // 2]


def _inputs(body: bytes) -> tuple[CdsRequest, CallContext, Decision, datetime.datetime]:
    request = parse_request(orjson.loads(body))
    codesets = load_codesets(default_codesets_dir())
    prefetch = request.prefetch or {}
    pid: str = request.context.patient_id  # type: ignore[union-attr]
    record = read_record(
        chain.from_iterable(resources_in(prefetch.get(k)) for k in RECORD_KEYS),
        codesets,
        patient_id=pid,
    )
    now = datetime.datetime.now(datetime.UTC)
    decision = decide(
        record,
        codesets,
        now=now,
        household=Household((), checked=True),
        settings=RuleSettings(),
        user_type="Practitioner",
    )
    call = CallContext("iris-domestic-abuse-prompt", request.hook_instance, "http://b", None, None)
    return request, call, decision, now


def _per_call(store: Store, body: bytes, mappa: bool) -> list[float]:
    request, call, decision, now = _inputs(body)
    if mappa:
        risk = MappaRisk((("known-adult", "high"),), flags=("Flag/f1",))
        decision = replace(decision, mappa=(HouseholdMember("partner", 40, risk),))
    settings = CardSettings()
    pid: str = request.context.patient_id  # type: ignore[union-attr]
    versions = {"trigger": "1"}

    async def measure() -> list[float]:
        timings = []
        for _ in range(IN_PROCESS_CALLS):
            cards = cards_for(
                decision,
                settings,
                base_url="http://b",
                hook_instance=call.hook_instance,
                patient_ref=f"Patient/{pid}",
                now=now,
            )
            started = time.perf_counter()
            await store.after_decision(
                request=request,
                call=call,
                decision=decision,
                cards=cards,
                codeset_versions=versions,
                patient_id=pid,
                now=now,
            )
            timings.append(time.perf_counter() - started)
        return timings

    async def run() -> list[float]:
        await store.start()
        try:
            with quiet_gc():
                return await measure()
        finally:
            await store.stop()

    return asyncio.run(run())


def _open(url: str | None, folder: Path) -> Store:
    if url is not None:
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
    config = StoreConfig(data_dir=folder, database_url=url, pseudonym_key=b"k" * 32)
    return Store.open(config)


@contextmanager
def _server(mode: str, url: str = "") -> Iterator[str]:
    port = free_port()
    command = [sys.executable, "-m", "benchmarks.store_server", str(port), mode, url]
    process = subprocess.Popen(command)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(base + "/healthz")
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the {mode} server did not start") from None
                time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)


def _sequential(base: str, body: bytes) -> list[float]:
    timings = []
    with httpx.Client(base_url=base, timeout=30) as http:
        for _ in range(20):  # warm up
            http.post(PATH, content=body, headers=JSON)
        with quiet_gc():
            for _ in range(SEQUENTIAL_CALLS):
                started = time.perf_counter()
                answer = http.post(PATH, content=body, headers=JSON)
                timings.append(time.perf_counter() - started)
                assert answer.status_code == 200
    return timings


async def _throughput(base: str, body: bytes) -> float:
    done = 0
    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)

    async def client(http: httpx.AsyncClient) -> None:
        nonlocal done
        while done < THROUGHPUT_REQUESTS:
            done += 1
            answer = await http.post(PATH, content=body, headers=JSON)
            if answer.status_code != 200:
                raise RuntimeError(f"{base} answered {answer.status_code}")

    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as http:
        started = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(CLIENTS)))
        return THROUGHPUT_REQUESTS / (time.perf_counter() - started)


def _p95(timings: list[float]) -> float:
    ordered = sorted(timings)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]


def run() -> list[Row]:
    if not PATIENTS.is_dir():
        print(f"store: skipped, no Synthea patients at {PATIENTS}")
        return []
    body = _median_body()
    rows: list[Row] = []
    cluster = PostgresCluster()
    cluster.start()
    try:
        engines = {"sqlite": None, "postgresql": cluster.new_database()}
        with tempfile.TemporaryDirectory() as folder:
            for name, url in engines.items():
                for mappa in (False, True):
                    store = _open(url, Path(folder) / f"{name}-{mappa}")
                    what = f"{name}: store per call, {'MAPPA (audit)' if mappa else 'enquiry'}"
                    timings = _per_call(store, body, mappa)
                    rows.append(summarise(SECTION, what, timings, None if mappa else 0.3))
        # The three servers run side by side and are measured in turns, round after round,
        # so that load from elsewhere on the machine falls on all of them alike.
        modes = ("none", "sqlite", "postgresql")
        timings: dict[str, list[float]] = {mode: [] for mode in modes}
        rates: dict[str, list[float]] = {mode: [] for mode in modes}
        with (
            _server("none") as none,
            _server("sqlite") as sqlite,
            _server("postgresql", cluster.new_database()) as postgresql,
        ):
            bases = {"none": none, "sqlite": sqlite, "postgresql": postgresql}
            for _round in range(ROUNDS):
                for mode in modes:
                    timings[mode].extend(_sequential(bases[mode], body))
                    rates[mode].append(asyncio.run(_throughput(bases[mode], body)))
        base_p95 = _p95(timings["none"])
        base_rate = statistics.median(rates["none"])
        for mode in modes:
            row = summarise(SECTION, f"service, store {mode}: sequential calls", timings[mode])
            rate = statistics.median(rates[mode])
            throughput = Row(
                SECTION,
                f"service, store {mode}: {CLIENTS} clients (median of {ROUNDS} rounds)",
                THROUGHPUT_REQUESTS * ROUNDS,
                1000 / rate,
                0.0,
                f"{rate:.0f} req/s",
            )
            if mode != "none":
                ratio = _p95(timings[mode]) / base_p95
                row = replace(
                    row,
                    target="p95 <= 1.1x no store",
                    verdict=f"{ratio:.2f}x " + ("met" if ratio <= 1.1 else "MISSED"),
                )
                ratio = rate / base_rate
                throughput = replace(
                    throughput,
                    target=">= 0.9x no store",
                    verdict=f"{ratio:.2f}x " + ("met" if ratio >= 0.9 else "MISSED"),
                )
            rows.extend([row, throughput])
    finally:
        cluster.destroy()
    return rows


if __name__ == "__main__":
    from benchmarks.table import render

    print(render(run()))

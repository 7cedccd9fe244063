"""The prompt engine end to end, against a minimal reference app, over HTTP on loopback.

Bodies (`engine_parts.request_bodies`): every Synthea patient as a patient-view request with
full prefetch, and records of thousands of entries (2-4 MB) combined from them. They go to:

- the service: `iris-prompt serve` in its own process, caller JWT checks on (a fresh RS384 token
  per request, signed beforehand), logging at WARNING;
- the reference: a minimal FastAPI app in its own process, under the same uvicorn, that only
  parses the body with orjson and scans every coding against the code sets' codes.

Beside them, in this process, the time of `orjson.loads` on each body. A second pass adds one
recent trigger to every record, so that eligible patients get an enquiry card and the time of
building cards shows; it is judged against the same targets. Both servers freeze their start-up
objects out of the garbage collector; the measuring client collects, freezes and switches its
collector off while it times, so that no pause of its own lands in a timing. Every size class
gets at least `MIN_SAMPLES` timings per server. The household lookup (FHIR reads of household
members) is not exercised: it is network time on someone else's server, within its own budget.

Targets on this machine: median at most 1.3x the reference and p95 at most 2x, per size class;
throughput with 8 concurrent clients at least 0.8x the reference; RSS flat over 10,000 requests
(with cards built; shown with caller JWTs, whose jti replay cache grows by design, and in local
mode, which has none).
"""

import asyncio
import itertools
import logging
import math
import time

import httpx
import orjson
import psutil

from benchmarks.engine_parts import (
    NO_TOKEN,
    PATH,
    PATIENTS,
    Tokens,
    quiet_gc,
    reference,
    request_bodies,
    service,
)
from benchmarks.table import Row, summarise
from tests.support.tokens import generate_key

SECTION = "engine"
MIN_SAMPLES = 100  # timings per size class and server, at the least
THROUGHPUT_REQUESTS = 600
CLIENTS = 8
RSS_REQUESTS = 10_000
RSS_WARM_UP = 1_000
CLASSES = (
    (0, 100_000, "< 100 KB"),
    (100_000, 250_000, "100-250 KB"),
    (250_000, 1_000_000, "250 KB-1 MB"),
    (1_000_000, 10**9, "2-4 MB, combined"),
)
Timings = dict[str, list[float]]
Target = tuple[str, Tokens | None]


def size_class(body: bytes) -> str:
    return next(name for low, high, name in CLASSES if low <= len(body) < high)


def _schedule(bodies: list[bytes]) -> list[tuple[bool, bytes]]:
    """(timed?, body) in order: a warm-up round, then rounds until every size class has at
    least MIN_SAMPLES timings (a class of few bodies gets more rounds)."""
    per_class = {name: sum(1 for b in bodies if size_class(b) == name) for _, _, name in CLASSES}
    rounds = {name: math.ceil(MIN_SAMPLES / n) for name, n in per_class.items() if n}
    schedule = [(False, body) for body in bodies]
    for round_ in range(max(rounds.values())):
        schedule += [(True, b) for b in bodies if round_ < rounds[size_class(b)]]
    return schedule


def latencies(targets: list[Target], bodies: list[bytes]) -> list[Timings]:
    """Per target, per size class, the time of each call. Targets take turns on every body,
    so drift in the machine's speed falls on all of them alike."""
    timed: list[Timings] = [{n: [] for _, _, n in CLASSES} for _ in targets]
    clients = [httpx.Client(base_url=base, timeout=60) for base, _ in targets]
    try:
        with quiet_gc():
            for counted, body in _schedule(bodies):
                for (base, tokens), client, out in zip(targets, clients, timed, strict=True):
                    headers = tokens.headers() if tokens else NO_TOKEN
                    started = time.perf_counter()
                    response = client.post(PATH, content=body, headers=headers)
                    elapsed = time.perf_counter() - started
                    if response.status_code != 200:
                        raise RuntimeError(f"{base} answered {response.status_code}")
                    if counted:
                        out[size_class(body)].append(elapsed)
    finally:
        for client in clients:
            client.close()
    return timed


def parse_times(bodies: list[bytes]) -> Timings:
    by_class: Timings = {name: [] for _, _, name in CLASSES}
    with quiet_gc():
        for counted, body in _schedule(bodies):
            started = time.perf_counter()
            orjson.loads(body)
            if counted:
                by_class[size_class(body)].append(time.perf_counter() - started)
    return by_class


async def _load(
    base: str, bodies: list[bytes], tokens: Tokens | None, count: int, pid: int | None = None
) -> tuple[float, list[float]]:
    """`count` requests from CLIENTS concurrent clients; (seconds, RSS samples in MB)."""
    cycle = itertools.cycle(bodies)
    done = 0
    rss: list[float] = []
    process = psutil.Process(pid) if pid else None
    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)

    async def client(http: httpx.AsyncClient) -> None:
        nonlocal done
        while done < count:
            done += 1
            if process is not None and done % 1000 == 0:
                rss.append(process.memory_info().rss / 2**20)
            headers = tokens.headers() if tokens else NO_TOKEN
            response = await http.post(PATH, content=next(cycle), headers=headers)
            if response.status_code != 200:
                raise RuntimeError(f"{base} answered {response.status_code}")

    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as http:
        started = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(CLIENTS)))
        return time.perf_counter() - started, rss


def _ratio_verdict(ratio: float, limit: float, more_is_better: bool = False) -> str:
    ok = ratio >= limit if more_is_better else ratio <= limit
    return f"{ratio:.2f}x {'met' if ok else 'MISSED'}"


def _judged(what: str, service: list[float], ref: list[float]) -> tuple[Row, Row]:
    """The service's row, with its verdict against the reference, and the reference's row."""
    s = summarise(SECTION, f"service {what}", service)
    r = summarise(SECTION, f"reference {what}", ref)
    verdict = (
        f"median {_ratio_verdict(s.median_ms / r.median_ms, 1.3)}, "
        f"p95 {_ratio_verdict(s.p95_ms / r.p95_ms, 2.0)}"
    )
    return Row(s.section, s.what, s.n, s.median_ms, s.p95_ms, "<= 1.3x / 2x ref", verdict), r


def _requests(bodies: list[bytes]) -> int:
    """Requests `latencies` sends to each target for `bodies`, warm-up included."""
    return len(_schedule(bodies))


def run() -> list[Row]:
    if not PATIENTS.is_dir():
        return [Row(SECTION, "skipped: no Synthea patients (IRIS_REFERENCE_DIR)", 0, 0.0, 0.0)]
    logging.getLogger("httpx").setLevel(logging.WARNING)
    bodies = request_bodies()
    triggered = request_bodies(with_trigger=True)
    # RS384, one of the two algorithms the spec recommends; ES384 verification costs about
    # 0.35 ms more per call, shown in its own row.
    key, es384 = generate_key("RS384"), generate_key("ES384")
    rows: list[Row] = []
    small = [b for b in bodies if size_class(b) == CLASSES[0][2]]
    loads = THROUGHPUT_REQUESTS + RSS_WARM_UP + RSS_REQUESTS + CLIENTS  # a token to spare each
    total = _requests(bodies) + _requests(triggered) + loads
    with (
        service(key, es384) as (svc, svc_pid),
        service() as (local, local_pid),
        reference() as (ref, _ref_pid),
    ):
        tokens = Tokens(key, svc + PATH, total)
        es_tokens = Tokens(es384, svc + PATH, _requests(small))
        svc_times, ref_times, local_times = latencies(
            [(svc, tokens), (ref, None), (local, None)], bodies
        )
        (es_times,) = latencies([(svc, es_tokens)], small)
        parsed = parse_times(bodies)
        first = CLASSES[0][2]
        rows.append(summarise(SECTION, f"service {first}, ES384 caller JWT", es_times[first]))
        for _, _, name in CLASSES:
            if not svc_times[name]:
                continue
            judged, ref_row = _judged(name, svc_times[name], ref_times[name])
            p = summarise(SECTION, f"orjson.loads {name}", parsed[name])
            rows += [
                judged,
                summarise(SECTION, f"service {name}, no caller JWT (local)", local_times[name]),
                ref_row,
                Row(
                    p.section,
                    p.what,
                    p.n,
                    p.median_ms,
                    p.p95_ms,
                    "",
                    f"ratio service/orjson {judged.median_ms / p.median_ms:.0f}x",
                ),
            ]
        with_cards = latencies([(svc, tokens), (ref, None)], triggered)
        for _, _, name in CLASSES:
            if with_cards[0][name]:
                what = f"{name}, recent trigger added (cards built)"
                rows += _judged(what, with_cards[0][name], with_cards[1][name])
        svc_seconds, _ = asyncio.run(_load(svc, triggered, tokens, THROUGHPUT_REQUESTS))
        ref_seconds, _ = asyncio.run(_load(ref, triggered, None, THROUGHPUT_REQUESTS))
        svc_rate, ref_rate = THROUGHPUT_REQUESTS / svc_seconds, THROUGHPUT_REQUESTS / ref_seconds
        rows.append(
            Row(
                SECTION,
                f"throughput, {CLIENTS} clients, cards built: {svc_rate:.0f}/s vs ref "
                f"{ref_rate:.0f}/s",
                THROUGHPUT_REQUESTS,
                0.0,
                0.0,
                ">= 0.8x ref",
                _ratio_verdict(svc_rate / ref_rate, 0.8, more_is_better=True),
            )
        )
        # The service with caller JWTs remembers every jti until its token expires (replay
        # protection, bounded by IRIS_REPLAY_CACHE_SIZE): that memory grows with the calls by
        # design. Local mode has no jti cache, so it shows whether anything else grows.
        for label, base, tokens_, pid in (
            ("caller JWT on: jti cache grows by design", svc, tokens, svc_pid),
            ("local mode", local, None, local_pid),
        ):
            asyncio.run(_load(base, triggered, tokens_, RSS_WARM_UP))  # to the steady state
            seconds, rss = asyncio.run(_load(base, triggered, tokens_, RSS_REQUESTS, pid))
            growth = rss[-1] - rss[0]
            flat = growth <= max(5.0, 0.05 * rss[0])
            rows.append(
                Row(
                    SECTION,
                    f"RSS over {RSS_REQUESTS:,} requests, cards built, {label}: "
                    f"{rss[0]:.1f} -> {rss[-1]:.1f} MB",
                    RSS_REQUESTS,
                    seconds * 1000 / RSS_REQUESTS,
                    0.0,
                    "flat (+<=5 MB or 5%)",
                    f"{growth:+.1f} MB {'met' if flat else 'MISSED'}",
                )
            )
    return rows


if __name__ == "__main__":
    from benchmarks.table import render

    print(render(run()))

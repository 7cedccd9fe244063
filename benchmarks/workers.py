"""Workers and the shared replay store: throughput with 8 clients of `iris-prompt serve` with 1,
2 and 4 workers, caller JWTs checked against Redis and the store on, against 1 worker with the
in-process jti cache; and what the Redis replay check costs a call.

1. Each server is the real command (`iris-prompt serve --workers N`, JWT checks on, the
   embedded store on the call path, logs at WARNING) on the median Synthea body with a recent
   trigger. Every request carries a fresh JWT, all signed before the clock starts. The servers
   run side by side and are measured in turns, round after round, so load from elsewhere on
   the machine falls on all of them alike. Reported: calls per second (and per core of the
   machine), p50 and p95 under load, and the load generator's own CPU use (it shares the
   cores). Target: 2 workers at least 1.4x one worker's throughput.
2. The replay check alone, in process: `first_use` against a real Redis on loopback and against
   the in-process cache, one after another. Target: Redis adds at most 0.3 ms at p50.
"""

import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from benchmarks.engine_parts import PATH, PATIENTS, request_bodies
from benchmarks.table import Row, summarise
from cds_hooks.replay import InMemoryReplayCache
from iris_prompt.ops.redis_replay import RedisReplayCache
from tests.support.process import free_port
from tests.support.redis import RedisServer
from tests.support.tokens import SigningKey, claims, generate_key, jwks

SECTION = "workers"
ISSUER = "https://ehr.bench.example"
CLIENTS = 8
REQUESTS = 400
ROUNDS = 3
CHECKS = 3000
CONFIGS = (
    ("1 worker, in-process jti", 1, False),
    *((f"{n} worker{'s' * (n > 1)}, Redis", n, True) for n in (1, 2, 4)),
)


@contextmanager
def _server(key: SigningKey, workers: int, redis_url: str | None, folder: Path) -> Iterator[str]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("IRIS_")} | {
        "IRIS_TRUSTED_ISSUERS": json.dumps([{"iss": ISSUER, "jwks": jwks(key)}]),
        "IRIS_PUBLIC_BASE_URL": base,
        "IRIS_DATA_DIR": str(folder / f"data-{port}"),
        "IRIS_LOG_LEVEL": "WARNING",
        "IRIS_WORKERS": str(workers),
    }
    if redis_url is not None:
        env["IRIS_REDIS_URL"] = redis_url
    command = [sys.executable, "-m", "iris_prompt.cli", "serve", "--port", str(port)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(base + "/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the {workers}-worker server did not start")
            time.sleep(0.2)
        time.sleep(1.0 if workers > 1 else 0.1)  # every worker up, not just the first
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)


async def _load(base: str, body: bytes, tokens: list[str]) -> tuple[float, list[float], float]:
    """Calls per second, each call's seconds, and the load generator's CPU seconds."""
    pending = iter(tokens)
    timings: list[float] = []
    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)

    async def client(http: httpx.AsyncClient) -> None:
        for token in pending:
            headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
            started = time.perf_counter()
            answer = await http.post(PATH, content=body, headers=headers)
            timings.append(time.perf_counter() - started)
            if answer.status_code != 200:
                raise RuntimeError(f"{base} answered {answer.status_code}")

    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as http:
        await http.get("/healthz")
        cpu, started = time.process_time(), time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(CLIENTS)))
        elapsed = time.perf_counter() - started
        return len(tokens) / elapsed, timings, time.process_time() - cpu


async def _checks(redis_url: str) -> tuple[list[float], list[float]]:
    redis = RedisReplayCache(redis_url)
    local = InMemoryReplayCache(CHECKS * 2)
    timings: dict[str, list[float]] = {"redis": [], "local": []}
    expires = time.time() + 300
    try:
        for n in range(CHECKS):
            for name, cache in (("redis", redis), ("local", local)):
                started = time.perf_counter()
                await cache.first_use(f"{ISSUER}\nbench-{n}", expires)  # type: ignore[attr-defined]
                timings[name].append(time.perf_counter() - started)
    finally:
        await redis.aclose()
    return timings["redis"], timings["local"]


def run() -> list[Row]:
    if not PATIENTS.is_dir():
        print(f"workers: skipped, no Synthea patients at {PATIENTS}")
        return []
    bodies = request_bodies(with_trigger=True)
    body = bodies[len(bodies) // 2]
    key = generate_key("ES384")
    cores = os.cpu_count() or 1
    redis = RedisServer()
    redis.start()
    rows: list[Row] = []
    try:
        redis_timings, local_timings = asyncio.run(_checks(redis.url))
        local = summarise(SECTION, "jti check, in-process cache", local_timings)
        added = statistics.median(redis_timings) * 1000 - local.median_ms
        check = summarise(SECTION, "jti check, Redis on loopback (SET NX EXAT)", redis_timings)
        check = Row(check.section, check.what, check.n, check.median_ms, check.p95_ms,
                    "adds <= 0.3 ms at p50",
                    f"+{added:.3f} ms " + ("met" if added <= 0.3 else "MISSED"))  # fmt: skip
        rows += [local, check]
        rates: dict[str, list[float]] = {name: [] for name, _, _ in CONFIGS}
        timings: dict[str, list[float]] = {name: [] for name, _, _ in CONFIGS}
        load_cpu: dict[str, float] = {name: 0.0 for name, _, _ in CONFIGS}
        with tempfile.TemporaryDirectory() as folder:
            with _servers(key, redis.url, Path(folder)) as servers:
                for _round in range(ROUNDS):
                    for name, _, _ in CONFIGS:
                        aud = servers[name] + PATH
                        tokens = [key.sign(claims(ISSUER, aud)) for _ in range(REQUESTS)]
                        rate, seconds, cpu = asyncio.run(_load(servers[name], body, tokens))
                        rates[name].append(rate)
                        timings[name].extend(seconds)
                        load_cpu[name] += cpu / (REQUESTS / rate)
        one = statistics.median(rates["1 worker, Redis"])
        for name, workers, _ in CONFIGS:
            rate = statistics.median(rates[name])
            ordered = sorted(timings[name])
            p50 = statistics.median(ordered) * 1000
            p95 = ordered[int(len(ordered) * 0.95)] * 1000
            target, verdict = f"{rate:.0f}/s, {rate / cores:.0f}/s/core", ""
            generator = f"load gen {100 * load_cpu[name] / ROUNDS:.0f}% of a core"
            if workers == 2:
                ratio = rate / one
                verdict = f"{ratio:.2f}x 1 worker " + ("met" if ratio >= 1.4 else "MISSED")
            elif workers == 1 and name.endswith("Redis"):
                base = statistics.median(rates["1 worker, in-process jti"])
                verdict = f"{rate / base:.2f}x in-process"
            what = f"{name}: {CLIENTS} clients, {generator}"
            rows.append(Row(SECTION, what, len(ordered), p50, p95, target, verdict))
    finally:
        redis.destroy()
    return rows


@contextmanager
def _servers(key: SigningKey, redis_url: str, folder: Path) -> Iterator[dict[str, str]]:
    started: dict[str, str] = {}
    stack = []
    try:
        for name, workers, with_redis in CONFIGS:
            manager = _server(key, workers, redis_url if with_redis else None, folder)
            started[name] = manager.__enter__()
            stack.append(manager)
        yield started
    finally:
        for manager in reversed(stack):
            manager.__exit__(None, None, None)


if __name__ == "__main__":
    from benchmarks.table import render

    print(render(run()))

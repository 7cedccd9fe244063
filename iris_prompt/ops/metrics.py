"""Prometheus metrics (prometheus-client), safe with several worker processes.

With one worker the metrics live in the process. With several, `iris-prompt serve` points
`PROMETHEUS_MULTIPROC_DIR` at a fresh folder before any worker starts, every worker writes its
counts there, and a scrape adds them up (`prometheus_client.multiprocess`): the figures are the
service's, whichever worker answers. `/metrics` is served on its own port (IRIS_METRICS_PORT,
by the serving process) or, without one, on the service's port behind the admin token.

What is counted (docs/deployment.md "Metrics" lists them with their labels): calls by service,
hook and status; latency of the call, each FHIR request and the household lookup; cards by
kind; household checks by outcome; JWT refusals by reason; replay-store and database errors;
reads that fell back from SQLite's driver to SQLAlchemy; the code-set versions loaded. Labels
are bounded sets, never a patient, a token or a free text.
"""

import hashlib
import hmac
import logging
import os
import re
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

__all__ = [
    "CALLS",
    "CALL_SECONDS",
    "CARDS",
    "CODESETS",
    "CONTENT_TYPE_LATEST",
    "DATABASE_ERRORS",
    "FHIR_SECONDS",
    "HOUSEHOLD_CHECKS",
    "HOUSEHOLD_SECONDS",
    "JWT_REFUSALS",
    "REPLAY_STORE_ERRORS",
    "SQLITE_DRIVER_FALLBACKS",
    "bearer_matches",
    "bound",
    "exposition",
    "multiprocess_dir",
    "refusal_reason",
    "sample_worker",
    "sample_workers_forever",
    "set_codeset_versions",
    "worker_stopped",
]

log = logging.getLogger(__name__)

# Seconds; the call's budget is a few hundred milliseconds, a FHIR read's a few seconds.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0, 10.0, 20.0)

CALLS = Counter(
    "iris_cds_calls_total",
    "CDS service calls and feedback answered, by service, hook and HTTP status",
    ["service", "hook", "status"],
)
CALL_SECONDS = Histogram(
    "iris_cds_call_duration_seconds",
    "Time to answer a CDS service call, from request to the last byte of the answer",
    ["service", "hook"],
    buckets=LATENCY_BUCKETS,
)
FHIR_SECONDS = Histogram(
    "iris_fhir_request_duration_seconds",
    "Each request to a client's FHIR server, by purpose, resource type and outcome",
    ["purpose", "resource", "outcome"],
    buckets=LATENCY_BUCKETS,
)
HOUSEHOLD_SECONDS = Histogram(
    "iris_household_lookup_duration_seconds",
    "The household lookup of one call (within IRIS_HOUSEHOLD_BUDGET_SECONDS)",
    buckets=LATENCY_BUCKETS,
)
HOUSEHOLD_CHECKS = Counter(
    "iris_household_checks_total",
    "Household checks by outcome: checked, partly, not_checked, timed_out",
    ["outcome"],
)
CARDS = Counter("iris_cards_total", "Cards decided, by kind", ["kind"])
JWT_REFUSALS = Counter("iris_jwt_refusals_total", "Caller JWTs refused, by reason", ["reason"])
REPLAY_STORE_ERRORS = Counter(
    "iris_replay_store_errors_total", "Commands the jti replay store failed, by error", ["error"]
)
DATABASE_ERRORS = Counter(
    "iris_database_errors_total", "Errors from the store's database, by error", ["error"]
)
# The repeat hold-back's read, asked on SQLite's own driver (iris_prompt/store/driver_query.py),
# that the driver failed and SQLAlchemy was asked instead; by the sqlite3 error's class.
SQLITE_DRIVER_FALLBACKS = Counter(
    "iris_sqlite_driver_fallbacks_total",
    "Reads SQLite's driver failed and SQLAlchemy was asked instead, by error",
    ["error"],
)
CODESETS = Gauge(
    "iris_codeset_info",
    "The code-set versions this process serves (value 1)",
    ["codeset", "version"],
    multiprocess_mode="liveall",
)

# With several workers prometheus-client has no process collector: each worker samples its own
# CPU and memory (`sample_worker`, every few seconds), shown with a `pid` label.
WORKER_CPU = Gauge(
    "iris_worker_cpu_seconds",
    "CPU seconds a worker process has used (user and system)",
    multiprocess_mode="liveall",
)
WORKER_MEMORY = Gauge(
    "iris_worker_resident_memory_bytes",
    "Resident memory of a worker process",
    multiprocess_mode="liveall",
)
WORKER_SAMPLE_SECONDS = 5.0

# A refusal's reason (cds_hooks/auth.py's message, for the log) into a bounded label.
_REASONS = (
    ("replayed", re.compile(r"jti replayed")),
    ("missing", re.compile(r"Authorization")),
    ("malformed", re.compile(r"well-formed")),
    ("header", re.compile(r"^alg |header")),
    ("issuer", re.compile(r"^issuer .* not trusted")),
    ("signature", re.compile(r"bad signature")),
    ("key", re.compile(r"kid|key|jku|JWK")),
    ("audience", re.compile(r"^aud ")),
    ("expired", re.compile(r"expired")),
    ("time", re.compile(r"not yet valid|lifetime|exp or iat")),
    ("claims", re.compile(r"jti|tenant")),
)


def refusal_reason(message: str) -> str:
    """The bounded label for an AuthenticationFailed message.

    >>> refusal_reason("the token has expired"), refusal_reason("jti replayed (issuer x)")
    ('expired', 'replayed')
    """
    for reason, pattern in _REASONS:
        if pattern.search(message):
            return reason
    return "other"


_children: dict[tuple[object, tuple[str, ...]], Any] = {}


def bound(metric: Counter | Histogram, *values: str) -> Any:
    """`metric.labels(*values)`, kept for the next call: labels() takes a lock and rebuilds its
    key each time, and a call counts, times and observes several metrics on its hot path.
    Label values are bounded sets (above), so what is kept is too."""
    key = (metric, values)
    child = _children.get(key)
    if child is None:
        child = _children[key] = metric.labels(*values)
    return child


_served: set[tuple[str, str]] = set()


def set_codeset_versions(versions: dict[str, str]) -> None:
    """Say which code-set versions this process serves: 1, and 0 for those it served before a
    reload (a worker's figures stay in its file once written, so they are zeroed, not removed).
    """
    now = set(versions.items())
    for old in _served - now:
        CODESETS.labels(*old).set(0)
    for codeset, version in now:
        CODESETS.labels(codeset, version).set(1)
    _served.clear()
    _served.update(now)


def sample_worker() -> None:
    """This process's CPU time and resident memory, into the worker gauges."""
    times = os.times()
    WORKER_CPU.set(times.user + times.system)
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            WORKER_MEMORY.set(int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE"))
    except (OSError, ValueError, IndexError):  # pragma: no cover  # not Linux
        pass


async def sample_workers_forever() -> None:
    """Sample this worker's CPU and memory until cancelled (several workers only)."""
    import asyncio

    while True:
        sample_worker()
        await asyncio.sleep(WORKER_SAMPLE_SECONDS)


def worker_stopped() -> None:
    """Forget this worker's live gauges (its code-set versions, CPU and memory) at exit."""
    if multiprocess_dir() is not None:
        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def exposition() -> bytes:
    """Every metric in the Prometheus text format: this process's, or all workers' added up."""
    if multiprocess_dir() is None:
        return generate_latest(REGISTRY)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return generate_latest(registry)


def bearer_matches(authorization: str | None, secret: str) -> bool:
    """`Authorization: Bearer <secret>`, compared in constant time."""
    scheme, _, presented = (authorization or "").partition(" ")
    digest = hashlib.sha256(presented.strip().encode()).digest()
    same = hmac.compare_digest(digest, hashlib.sha256(secret.encode()).digest())
    return scheme.lower() == "bearer" and same

"""`iris-prompt serve`: one process, or N uvicorn worker processes sharing the port.

With several workers the settings reach them through the environment (each worker builds its
own app with `iris_prompt.app:create_app`, from its `IRIS_` variables), the metrics through
`PROMETHEUS_MULTIPROC_DIR` (a fresh folder, set before any metric exists, removed at exit), and
the jti replay store through Redis (the settings refuse several workers without it). The app
is built once in the serving process first, so a configuration that cannot start says why
before any worker is forked, and an embedded store is created and upgraded once.
"""

import logging
import os
import shutil
import socket
import tempfile
from pathlib import Path
from typing import Any

import uvicorn
from uvicorn.supervisors import multiprocess

from iris_prompt.serving import uvicorn_options
from iris_prompt.settings import Settings

__all__ = ["ReadyProcess", "run", "settings_environment"]

log = logging.getLogger(__name__)


def settings_environment(settings: Settings, overrides: dict[str, Any]) -> dict[str, str]:
    """The `IRIS_` variables that carry command-line overrides to worker processes."""
    env = {f"IRIS_{key.upper()}": str(value).lower() if isinstance(value, bool) else str(value)
           for key, value in overrides.items()}  # fmt: skip
    env["IRIS_WORKERS"] = str(settings.workers)
    return env


def run(settings: Settings, overrides: dict[str, Any], log_config: dict[str, Any]) -> None:
    """Serve until SIGTERM or SIGINT (graceful: calls in flight are answered first)."""
    owned_dir = None
    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if settings.workers > 1 and not given:
        owned_dir = tempfile.mkdtemp(prefix="iris-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = owned_dir
    elif settings.workers > 1 and given:
        # A folder the operator gave: last run's counts would be added to this run's.
        for stale in Path(given).glob("*.db"):
            stale.unlink()
    try:
        _run(settings, overrides, log_config)
    finally:
        if owned_dir is not None:
            shutil.rmtree(owned_dir, ignore_errors=True)


def _run(settings: Settings, overrides: dict[str, Any], log_config: dict[str, Any]) -> None:
    # First: a port in use refuses the start before the app makes the store.
    if settings.metrics_port is not None:
        _serve_metrics(settings)
    # Imported only now: a metric made before PROMETHEUS_MULTIPROC_DIR is set is per process.
    from iris_prompt.app import create_app

    app = create_app(settings)
    if settings.workers == 1:
        uvicorn.run(app, log_config=log_config, **uvicorn_options(settings))
        return
    app.state.store.engine.dispose()
    # This process only checked that the app starts: the workers serve and report, so its own
    # live gauges (code-set versions, CPU, memory) must not stay in the shared metrics.
    from iris_prompt.ops import metrics

    metrics.worker_stopped()
    os.environ.update(settings_environment(settings, overrides))
    log.info("starting %d worker processes", settings.workers)
    supervised = multiprocess.Process
    # The supervisor's workers, and their replacements.
    multiprocess.Process = ReadyProcess  # type: ignore[misc]
    try:
        uvicorn.run(
            "iris_prompt.app:create_app",
            factory=True,
            workers=settings.workers,
            log_config=log_config,
            **uvicorn_options(settings, by_name=True),
        )
    finally:
        multiprocess.Process = supervised  # type: ignore[misc]


class ReadyProcess(multiprocess.Process):
    """uvicorn's worker process, its `Server` made before its healthcheck thread starts.

    uvicorn 0.54 makes a worker's `Server` lazily, for whichever of two threads asks first: the
    thread answering the supervisor's healthcheck, and the worker's main thread, which runs it.
    When a ping is already waiting as the worker starts (it took over a second to import, as a
    replacement under load does), both ask at once and each can make its own; the healthcheck
    then reports a server that never starts, and after `timeout_worker_healthcheck` the
    supervisor abandons the replacement and keeps the old worker. A code-set reload, which
    replaces every worker, would leave that one serving the old sets (seen in 2 reloads of 4
    under coverage before this). Remove once uvicorn makes the server before the thread."""

    def target(self, sockets: list[socket.socket] | None = None) -> None:
        _ = self.server  # made here, before the healthcheck thread can ask for it
        super().target(sockets)


def _serve_metrics(settings: Settings) -> None:
    """GET /metrics on IRIS_METRICS_PORT, answered by this process for every worker."""
    from prometheus_client import start_http_server

    from iris_prompt.ops import metrics

    registry: Any = None
    if metrics.multiprocess_dir() is not None:
        from prometheus_client import CollectorRegistry, multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    port = settings.metrics_port
    assert port is not None
    try:
        if registry is None:
            start_http_server(port, addr=settings.host)
        else:
            start_http_server(port, addr=settings.host, registry=registry)
    except OSError as error:
        said = error.strerror or type(error).__name__
        raise ValueError(f"IRIS_METRICS_PORT {port} cannot be served: {said}") from None
    log.info("metrics on http://%s:%d/metrics", settings.host, port)

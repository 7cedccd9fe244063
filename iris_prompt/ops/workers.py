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
import tempfile
from pathlib import Path
from typing import Any

import uvicorn

from iris_prompt.serving import uvicorn_options
from iris_prompt.settings import Settings

__all__ = ["run", "settings_environment"]

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
    # Imported only now: a metric made before PROMETHEUS_MULTIPROC_DIR is set is per process.
    from iris_prompt.app import create_app

    app = create_app(settings)
    if settings.metrics_port is not None:
        _serve_metrics(settings)
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
    uvicorn.run(
        "iris_prompt.app:create_app",
        factory=True,
        workers=settings.workers,
        log_config=log_config,
        **uvicorn_options(settings, by_name=True),
    )


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
    if registry is None:
        start_http_server(port, addr=settings.host)
    else:
        start_http_server(port, addr=settings.host, registry=registry)
    log.info("metrics on http://%s:%d/metrics", settings.host, port)

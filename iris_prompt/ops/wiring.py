"""The operations parts of one app, wired in by `iris_prompt.app.create_app`: the replay store,
the metrics route and hooks, and the readiness of Redis.
"""

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, FastAPI, Header
from sqlalchemy import event
from sqlalchemy.engine import Engine
from starlette.responses import Response

from cds_hooks import AuthenticationFailed, CdsHooksError, InMemoryReplayCache, ReplayCache
from iris_prompt.ops import metrics
from iris_prompt.settings import Settings

if TYPE_CHECKING:
    from iris_prompt.store.cardlog import CardLog

__all__ = [
    "count_database_errors",
    "count_driver_fallbacks",
    "metrics_router",
    "observe_error",
    "replay_store",
]

log = logging.getLogger(__name__)

Check = Callable[[], bool | Awaitable[bool]]


def replay_store(settings: Settings) -> tuple[ReplayCache, dict[str, Check]]:
    """The jti replay store the settings ask for, and its readiness check (if it has one)."""
    if settings.redis_url is None:
        log.info("jti replay store: in this process only (one worker, one instance)")
        return InMemoryReplayCache(settings.replay_cache_size), {}
    # Imported only now: a service without Redis never loads its client (a tenth of start-up).
    from iris_prompt.ops.redis_replay import RedisReplayCache

    log.info(
        "jti replay store: Redis, shared by every worker and instance (JWK Sets, household "
        "answers and code sets stay per process)"
    )
    redis = RedisReplayCache(
        settings.redis_url.get_secret_value(), timeout=settings.redis_timeout_seconds
    )
    return redis, {"replay store": redis.ping}


def observe_error(error: CdsHooksError) -> None:
    """For `install_error_handlers`: count a refused caller JWT by reason."""
    if isinstance(error, AuthenticationFailed):
        metrics.JWT_REFUSALS.labels(metrics.refusal_reason(error.message)).inc()


def count_database_errors(engine: Engine) -> None:
    """Count every error the store's database raises (SQLAlchemy's handle_error event)."""

    def counted(context: Any) -> None:
        metrics.DATABASE_ERRORS.labels(type(context.original_exception).__name__).inc()

    event.listen(engine, "handle_error", counted)


def count_driver_fallbacks(calls: "CardLog") -> None:
    """Count every repeat read SQLite's driver failed and SQLAlchemy answered instead."""
    calls.on_driver_fallback(lambda kind: metrics.SQLITE_DRIVER_FALLBACKS.labels(kind).inc())


def metrics_router(admin_token: str, versions: Callable[[], dict[str, str]]) -> APIRouter:
    """GET /metrics behind the admin token (when IRIS_METRICS_PORT does not give it a port)."""
    router = APIRouter(redirect_slashes=False)

    @router.get("/metrics")
    def scrape(authorization: str | None = Header(default=None)) -> Response:
        if not metrics.bearer_matches(authorization, admin_token):
            log.warning("metrics: request refused (missing or wrong token)")
            return Response(status_code=401, headers={"WWW-Authenticate": "Bearer"})
        metrics.set_codeset_versions(versions())
        return Response(metrics.exposition(), media_type=metrics.CONTENT_TYPE_LATEST)

    return router


def install(app: FastAPI, settings: Settings, versions: Callable[[], dict[str, str]]) -> None:
    """The metrics route on the service's port, unless a port of its own is configured."""
    metrics.set_codeset_versions(versions())
    if settings.metrics_port is None and settings.admin_token is not None:
        app.include_router(metrics_router(settings.admin_token.get_secret_value(), versions))

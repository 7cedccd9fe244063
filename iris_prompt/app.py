"""The FastAPI application: `create_app(settings)` wires the protocol layer to this product.

No import-time singletons: each call builds its own registry, HTTP client, JWT verifier, replay
cache and feedback store, so tests can run several apps side by side.

    uvicorn --factory iris_prompt.app:create_app    # settings from IRIS_* variables
"""

import asyncio
import functools
import gc
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import httpx
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.responses import JSONResponse

from cds_hooks import FeedbackStore, ReplayCache, ServiceRegistry
from cds_hooks.auth import JwtVerifier
from cds_hooks.http import NoStoreByDefault, build_router, install_error_handlers
from cds_hooks.transport import pooled_client
from iris_prompt.codesets.admin import admin_router
from iris_prompt.codesets.files import default_codesets_dir
from iris_prompt.codesets.live import (
    SERVICE_CHECKS,
    CodeSetRegistry,
    install_sighup_handler,
    readiness,
)
from iris_prompt.engine.service import Engine, build_registry, card_settings
from iris_prompt.ops import metrics, wiring
from iris_prompt.ops.observe import CallObserver, observed_client
from iris_prompt.ops.tracing import configure_tracing, shutdown_tracing
from iris_prompt.rules_page import rules_router
from iris_prompt.settings import Settings, get_settings, refuse_unsafe_start
from iris_prompt.store.admin import analytics_router
from iris_prompt.store.fhir_audit import audit_router
from iris_prompt.store.service import Store, store_config
from iris_prompt.template.api import template_router
from iris_prompt.template.launch_api import smart_router
from iris_prompt.template.sessions import SessionStore
from iris_prompt.template.smart import load_client

if TYPE_CHECKING:
    from iris_prompt.register.service import Register

__all__ = ["create_app"]

log = logging.getLogger(__name__)

ReadinessCheck = Callable[[], bool | Awaitable[bool]]

YOUNGEST_GC_THRESHOLD = 10_000

FHIR_POOL = httpx.Limits(max_connections=100, max_keepalive_connections=20)
JWKS_POOL = httpx.Limits(max_connections=10, max_keepalive_connections=5)
SMART_POOL = httpx.Limits(max_connections=20, max_keepalive_connections=5)

LOCAL_MODE_WARNING = (
    "LOCAL MODE: CDS clients are NOT authenticated (no JWT check), and a fhirServer sent "
    "without fhirAuthorization is read anonymously (no access token). For development on this "
    "machine only; never expose this service."
)


@functools.cache
def _freeze_start_up() -> None:
    """What start-up made (code sets, models, the app) lives as long as the process: freeze it
    out of the garbage collector's full passes, which otherwise stall large calls. Once per
    process: a process that starts another app (the tests start hundreds) does not walk its
    whole heap again."""
    gc.collect()
    gc.freeze()


def create_app(
    settings: Settings | None = None,
    *,
    registry: ServiceRegistry | None = None,
    feedback_store: FeedbackStore | None = None,
    replay_cache: ReplayCache | None = None,
    codesets: CodeSetRegistry | None = None,
    store: Store | None = None,
    register: "Register | None" = None,
) -> FastAPI:
    """The service. `registry` defaults to this product's services (tests pass their own).

    `register` (the shared MAPPA flag register) defaults to one over the store when
    IRIS_REGISTER_ENABLED (tests pass their own, with the registry whose lookup consults it).
    The code sets load here, before anything is served: a folder that fails validation stops
    start-up with every problem listed (CodeSetError). So does the store: an embedded SQLite is
    made and upgraded, a PostgreSQL schema that is behind stops start-up (SchemaBehind). Before
    them, the rules page is rendered: without docs/rules.md start-up stops (RulesDocumentMissing).
    """
    settings = settings or get_settings()
    refuse_unsafe_start(settings)
    # The EHR pages that may frame what a card opens (the rules, the template).
    framing = settings.frame_policy()
    # Every card links to the rules page: without its document, stop before anything is made.
    rules = rules_router(frame_ancestors=framing)
    # httpx logs every request URL at INFO, and FHIR search URLs carry patient ids.
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    if codesets is None:
        codesets = CodeSetRegistry(
            settings.codesets_dir or default_codesets_dir(), checks=SERVICE_CHECKS
        )
    # One connection pool per kind of peer, so that no peer's slowness or volume can starve
    # another's: clients' FHIR servers (prefetch and household reads), clients' JWK Set hosts
    # (a caller JWT or a register client assertion cannot be checked without them), and the
    # EHRs the template files to.
    http = observed_client(FHIR_POOL, follow_redirects=False)
    jwks_http = pooled_client(JWKS_POOL, follow_redirects=False)
    smart_http = pooled_client(SMART_POOL, follow_redirects=False)
    # The jti replay store: in this process, or in Redis shared by every worker and instance.
    # The JWKS and household caches stay per process (a miss costs a fetch, never safety).
    replay_checks: dict[str, ReadinessCheck] = {}
    if replay_cache is None:
        replay_cache, replay_checks = wiring.replay_store(settings)
    verifier = None
    if not settings.local_mode:
        verifier = JwtVerifier(
            settings.trusted_issuers,
            http=jwks_http,
            policy=settings.jwt_policy(),
            replay_cache=replay_cache,
        )
    smart_client = load_client(settings.smart_client_id, settings.smart_private_key_file)
    # The store after these: a start refused for a trusted client's JWK Set file, the SMART key
    # or a Redis URL makes no embedded store (a register client's key file is read after it).
    if store is None:
        store = Store.open(store_config(settings), card_settings(settings))
    if register is None and settings.register_enabled:
        # Imported only now: a service without the register never loads it.
        from iris_prompt.register.service import Register

        base = settings.public_base_url or f"http://{settings.host}:{settings.port}"
        register = Register.open(
            store,
            fhir_base=f"{base}/fhir",
            clients=settings.register_clients,
            http=jwks_http,
            policy=settings.jwt_policy(),
            replay_cache=replay_cache,
        )
    if registry is None:
        registry = build_registry(
            codesets,
            Engine.from_settings(
                codesets, settings, store, register.in_force if register is not None else None
            ),
        )
    wiring.count_database_errors(store.engine)
    wiring.count_driver_fallbacks(store.calls)
    feedback = feedback_store if feedback_store is not None else store.feedback

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if settings.local_mode:
            log.warning(LOCAL_MODE_WARNING)
        services = ", ".join(f"{s.id} ({s.hook})" for s in registry)
        log.info("serving CDS services: %s", services or "none")
        configure_tracing()
        sampler = None
        if metrics.multiprocess_dir() is not None:
            sampler = asyncio.create_task(metrics.sample_workers_forever())
        uninstall_sighup = install_sighup_handler(codesets)
        await store.start()
        _freeze_start_up()
        # A call parses a record into thousands of containers that reference counting frees
        # when the call ends. Python's default collects the youngest objects every 700 new
        # ones, walking the live record again and again within one call; every 10,000 saved
        # about 0.1 ms a small call. Garbage in reference cycles waits a little longer (no
        # call path makes cycles holding a request body). Restored when the app stops.
        previous = gc.get_threshold()
        gc.set_threshold(YOUNGEST_GC_THRESHOLD, *previous[1:])
        try:
            yield
        finally:
            gc.set_threshold(*previous)
            uninstall_sighup()
            # Calls in flight have finished (uvicorn waits up to the grace time before this):
            # flush the card log, close the pools, export the last spans.
            for client in (http, jwks_http, smart_http):
                await client.aclose()
            closing = getattr(replay_cache, "aclose", None)
            if closing is not None:
                await closing()
            await store.stop()
            shutdown_tracing()
            if sampler is not None:
                sampler.cancel()
            metrics.worker_stopped()
            log.info("stopped: calls in flight answered, card log flushed, pools closed")

    app = FastAPI(
        title="iris-prompt",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        # No 307 from `/path/` to `/path`: Starlette builds it from the Host header, an open
        # redirect that a client following it answers with its JWT and the record over http.
        redirect_slashes=False,
    )
    install_error_handlers(app, on_error=wiring.observe_error)
    app.add_middleware(NoStoreByDefault)
    app.add_middleware(CallObserver, registry=registry)
    app.state.feedback_store = feedback
    app.state.http_clients = {"fhir": http, "jwks": jwks_http, "smart": smart_http}
    app.state.store = store
    app.state.codesets = codesets
    app.state.readiness_checks = {
        "services registered": lambda: any(True for _ in registry),
        **replay_checks,
    }
    app.state.readiness_details = [lambda: readiness(codesets), store.readiness]
    app.include_router(
        build_router(
            registry,
            verifier=verifier,
            feedback_store=feedback,
            http=http,
            options=settings.protocol_options(),
        )
    )
    app.include_router(
        template_router(public_base_url=settings.public_base_url, frame_ancestors=framing)
    )
    app.include_router(rules)
    if smart_client is not None:
        app.include_router(
            smart_router(
                client=smart_client,
                issuers=settings.smart_issuers,
                public_base_url=settings.public_base_url,
                sessions=SessionStore(settings.smart_session_idle_seconds),
                http=smart_http,
                frame_ancestors=framing,
            )
        )
    wiring.install(app, settings, lambda: codesets.current.versions())
    if settings.admin_token is not None:
        app.include_router(
            admin_router(codesets, settings.admin_token, several_workers=settings.workers > 1)
        )
        app.include_router(analytics_router(store.engine, settings.admin_token))
    if register is not None:
        app.include_router(register.router(settings.public_base_url))
    if settings.auditor_token is not None or register is not None:
        # The auditor reads every record; a register flag's owner its flag's access log.
        app.include_router(
            audit_router(
                store.audit,
                settings.auditor_token,
                settings.public_base_url,
                register.access_log() if register is not None else None,
            )
        )
    if settings.cors_allow_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_allow_origins,
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type"],
            max_age=600,
        )

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        """The process is up."""
        return JSONResponse({"status": "ok"})

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        """Ready to answer CDS calls: every readiness check passes."""
        checks: dict[str, ReadinessCheck] = app.state.readiness_checks
        details: dict[str, object] = {}
        for describe in app.state.readiness_details:
            details.update(describe())
        failing = []
        for name, check in checks.items():
            passed = check()
            if inspect.isawaitable(passed):
                passed = await passed
            if not passed:
                failing.append(name)
        if failing:
            body = {"status": "not ready", "failing": failing, **details}
            return JSONResponse(body, status_code=503)
        return JSONResponse({"status": "ready", **details})

    return app

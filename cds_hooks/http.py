"""The web layer of the protocol, and the only module of `cds_hooks` that knows FastAPI:
discovery, invocation and feedback routes for a registry of services, and the one place where
errors become HTTP responses.

One call, in order: caller JWT (401) -> service id (404) -> body within the size limit (413)
-> one JSON object, nested within `ProtocolOptions.max_json_depth` (400) -> the service's hook
(400) -> the request model for that hook (400) -> prefetch completed from the FHIR server (412)
-> the service's handler -> spec-clean JSON.

Errors: `install_error_handlers(app)` registers, once per app, a handler that answers every
`CdsHooksError` (`error_response`: the only place statuses are chosen) and a fault barrier that
answers anything else with a 500 OperationOutcome, logged by hookInstance with the stack frames
but not the exception text, which could hold patient data. Routes just raise.

>>> router = build_router(ServiceRegistry([]), verifier=None,
...     feedback_store=InMemoryFeedbackStore(), http=httpx.AsyncClient())
>>> sorted(route.path for route in router.routes)
['/cds-services', '/cds-services/{service_id}', '/cds-services/{service_id}/feedback']

Spec: https://cds-hooks.hl7.org/2.0/#discovery, #calling-a-cds-service, #feedback
"""

import logging
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
from fastapi import APIRouter, FastAPI, Request
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cds_hooks.auth import CallerIdentity, JwtVerifier, bearer_token
from cds_hooks.discovery import CallContext, CdsService, ServiceRegistry
from cds_hooks.errors import (
    AuthenticationFailed,
    CdsHooksError,
    HookMismatch,
    InvalidRequest,
    Issue,
    PayloadTooLarge,
    ServiceBusy,
    ServiceNotFound,
    operation_outcome,
)
from cds_hooks.feedback import FeedbackStore, InMemoryFeedbackStore, parse_feedback
from cds_hooks.fhir import FhirClient, FhirLimits, resolve_prefetch
from cds_hooks.json_body import MAX_JSON_DEPTH, parse_json_object
from cds_hooks.models import dump_json
from cds_hooks.numbers import ascii_number
from cds_hooks.request import CdsRequest, parse_request
from cds_hooks.response import CdsResponse
from cds_hooks.tracing import Tracer

__all__ = [
    "FHIR_JSON",
    "NoStoreByDefault",
    "ProtocolOptions",
    "build_router",
    "describe_call",
    "error_response",
    "install_error_handlers",
    "internal_error_response",
    "read_body",
    "read_json",
]

log = logging.getLogger(__name__)

JSON = "application/json"
FHIR_JSON = "application/fhir+json"
# Every error answer is computed for one request and must not be cached on the way.
NO_STORE = {"Cache-Control": "no-store"}
# Where a route notes what it is doing, for the log lines of its refusal or fault.
CALL_NOTE = "cds_hooks.call"
# The app state attribute holding install_error_handlers' `on_error`.
ON_ERROR = "cds_hooks_on_error"
# Nothing unless the application installs an OpenTelemetry tracer provider.
tracer = Tracer("cds_hooks")


def describe_call(request: Request, what: str, **note: str) -> dict[str, str]:
    """Name what this request is doing (`what`, and `note`: safe-to-log values such as the
    service id and hookInstance) for the log lines written if it is refused or fails. Returns
    the note, which the route may add to as it learns more."""
    request.scope[CALL_NOTE] = (what, note)
    return note


def error_response(error: CdsHooksError) -> Response:
    """The HTTP answer for a protocol error: the only place statuses are chosen."""
    if isinstance(error, AuthenticationFailed):
        # Say nothing to an unauthenticated caller; the reason goes to the log.
        return Response(status_code=401, headers={"WWW-Authenticate": "Bearer"})
    body = orjson.dumps(operation_outcome(error.issues))
    headers = NO_STORE | ({"Retry-After": "10"} if isinstance(error, ServiceBusy) else {})
    return Response(body, status_code=error.status, media_type=FHIR_JSON, headers=headers)


def internal_error_response() -> Response:
    outcome = operation_outcome(
        [Issue("internal error; the incident is logged by hookInstance", code="exception")]
    )
    return Response(orjson.dumps(outcome), 500, NO_STORE, media_type=FHIR_JSON)


def _noted(scope: Scope) -> tuple[str, dict[str, str]]:
    noted: tuple[str, dict[str, str]] | None = scope.get(CALL_NOTE)
    return noted if noted is not None else ("request", {})


async def _protocol_error(request: Request, error: Exception) -> Response:
    if not isinstance(error, CdsHooksError):  # pragma: no cover  # registered for it alone
        raise error
    what, note = _noted(request.scope)
    level = logging.WARNING if error.status in (401, 412) else logging.INFO
    why = _one_line("; ".join(issue.diagnostics for issue in error.issues))
    extra = _call_fields(note, error.status)
    log.log(level, "%s refused %d: %s %s", what, error.status, why, _fmt(note), extra=extra)
    observe: Callable[[CdsHooksError], None] | None = getattr(request.app.state, ON_ERROR, None)
    if observe is not None:
        observe(error)
    return error_response(error)


async def _routing_error(request: Request, error: Exception) -> Response:
    """The router's own refusals, as the OperationOutcome every other error is: 404 for a path
    nothing serves, 405 (with its Allow header) for a method the path does not take."""
    if not isinstance(error, HTTPException):  # pragma: no cover  # registered for it alone
        raise error
    headers = NO_STORE | dict(error.headers or {})
    if error.status_code == 404:
        issue = Issue("nothing is served at this path", code="not-found")
    elif error.status_code == 405:
        issue = Issue(f"{request.method} is not allowed here (see Allow)", code="not-supported")
        # The router names the methods of the first route on the path; the others are asked.
        named = {m.strip() for m in headers.get("Allow", "").split(",") if m.strip()}
        headers["Allow"] = ", ".join(sorted(named | _allowed_methods(request)))
    else:
        issue = Issue(str(error.detail), code="invalid" if error.status_code < 500 else "exception")
    body = orjson.dumps(operation_outcome([issue]))
    return Response(body, status_code=error.status_code, media_type=FHIR_JSON, headers=headers)


# The methods a 405's Allow may name.
_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


def _allowed_methods(request: Request) -> set[str]:
    """For a 405's Allow (RFC 9110 section 15.5.6): every method a route of the app answers at
    this path but the one refused, where the router names the first matching route's alone."""
    routes = request.app.router.routes

    def answers(method: str) -> bool:
        scope = {**request.scope, "method": method}
        return any(route.matches(scope)[0] is Match.FULL for route in routes)

    return {m for m in _METHODS if m != request.method and answers(m)}


def _call_fields(note: dict[str, str], status: int, ms: float | None = None) -> dict[str, Any]:
    """A call's log fields for structured formats (`extra` of its log record)."""
    fields: dict[str, Any] = {"status": status}
    for name in ("service", "hookInstance"):
        if name in note:
            fields[name] = note[name]
    if ms is not None:
        fields["duration_ms"] = round(ms, 1)
    return fields


class FaultBarrier:
    """Anything but a protocol error escaping a route: logged by type and stack frames (never
    the message, which could quote a record), answered 500 with an OperationOutcome."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception as error:
            what, note = _noted(scope)
            frames = "".join(traceback.format_tb(error.__traceback__))
            log.error(
                "%s failed: unhandled %s %s\n%s", what, type(error).__name__, _fmt(note), frames
            )
            if not started:
                await internal_error_response()(scope, receive, send)


class NoStoreByDefault:
    """`Cache-Control: no-store` on every answer whose route says nothing of caching: what the
    service answers (cards, flags, access records, refusals) concerns a patient and is for one
    caller, so no browser or proxy may keep a copy. A route that may be cached says so."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])  # ASGI lets a response leave them out
                headers = MutableHeaders(scope=message)
                if "cache-control" not in headers:
                    headers.append("Cache-Control", "no-store")
            await send(message)

        await self.app(scope, receive, sending if scope["type"] == "http" else send)


def install_error_handlers(
    app: FastAPI, on_error: Callable[[CdsHooksError], None] | None = None
) -> None:
    """Register the protocol-error and routing-error handlers and the fault barrier on `app`
    (once). `on_error` sees each protocol error answered (for metrics: refusals by reason)."""
    setattr(app.state, ON_ERROR, on_error)
    app.add_exception_handler(CdsHooksError, _protocol_error)
    app.add_exception_handler(HTTPException, _routing_error)
    app.add_middleware(FaultBarrier)


@dataclass(frozen=True)
class ProtocolOptions:
    """`public_base_url`: where clients reach `/cds-services` (scheme, host and any proxy
    prefix); the JWT `aud` is checked against it. Unset, the URL of the request is used."""

    max_body_bytes: int = 16 * 1024 * 1024
    public_base_url: str | None = None
    fhir_limits: FhirLimits = field(default_factory=FhirLimits)
    # None: a call's body is not depth-checked, for handlers that never recurse over it.
    max_json_depth: int | None = MAX_JSON_DEPTH


async def read_body(request: Request, limit: int) -> bytes:
    """The body, read once as it streams in and no further than `limit` bytes: a longer one is
    refused (PayloadTooLarge) without reading the rest, a declared Content-Length over the limit
    without reading any. A body cut short is InvalidRequest (nobody is left to answer)."""
    declared = request.headers.get("content-length", "")
    size = ascii_number(declared)
    if size is not None and size > limit:
        raise PayloadTooLarge(f"the body is over the {limit}-byte limit")
    body = bytearray()
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise PayloadTooLarge(f"the body is over the {limit}-byte limit")
    except ClientDisconnect:
        # The client went, or the server cut a body that came too slowly: nobody to answer.
        raise InvalidRequest("the body was not received in full") from None
    return bytes(body)


async def read_json(
    request: Request, limit: int, max_depth: int | None = MAX_JSON_DEPTH
) -> dict[str, Any]:
    """The body as a JSON object (`cds_hooks.json_body.parse_json_object`), read once
    (`read_body`)."""
    return parse_json_object(await read_body(request, limit), max_depth)


def build_router(
    registry: ServiceRegistry,
    *,
    verifier: JwtVerifier | None,
    feedback_store: FeedbackStore | None = None,
    http: httpx.AsyncClient,
    options: ProtocolOptions | None = None,
) -> APIRouter:
    """Routes for `registry`. `verifier=None` turns caller authentication off (local mode)."""
    opts = options or ProtocolOptions()
    store = feedback_store if feedback_store is not None else InMemoryFeedbackStore()
    router = APIRouter(redirect_slashes=False)

    def public_url(request: Request, path: str) -> tuple[str, str]:
        base = opts.public_base_url or str(request.base_url)
        base = base.rstrip("/")
        return base, base + path

    async def authenticate(request: Request, audience: str) -> CallerIdentity | None:
        if verifier is None:
            return None
        token = bearer_token(request.headers.getlist("authorization"))
        return await verifier.verify(token, audience)

    def answered(response: Response, started: float, what: str, note: dict[str, str]) -> Response:
        ms = (time.perf_counter() - started) * 1000
        log.info(
            "%s answered %d in %.1f ms %s",
            what,
            response.status_code,
            ms,
            _fmt(note),
            extra=_call_fields(note, response.status_code, ms),
        )
        return response

    async def _call(
        service: CdsService, cds_request: CdsRequest, base: str, caller: CallerIdentity | None
    ) -> CdsResponse:
        if service.screen is not None:
            screened = service.screen(cds_request, cds_request.hook_instance)
            if screened is not None:
                return screened
        fhir = None
        if cds_request.fhir_server is not None:
            auth = cds_request.fhir_authorization
            token = auth.access_token.get_secret_value() if auth else None
            allowed = caller.fhir_servers if caller is not None else ()
            fhir = FhirClient(http, cds_request.fhir_server, token, opts.fhir_limits, allowed)
        with tracer.start_as_current_span("prefetch"):
            prefetch = await resolve_prefetch(
                service.prefetch, cds_request.prefetch, cds_request.context.prefetch_tokens(), fhir
            )
        call = CallContext(service.id, cds_request.hook_instance, base, fhir, caller)
        response = await service.handler(cds_request, prefetch, call)
        if not isinstance(response, CdsResponse):
            raise TypeError(f"handler of {service.id!r} returned {type(response).__name__}")
        return response

    @router.get("/cds-services")
    async def discovery(request: Request) -> Response:
        started = time.perf_counter()
        note = describe_call(request, "discovery")
        await authenticate(request, public_url(request, "/cds-services")[1])
        return answered(
            Response(registry.discovery_json, media_type=JSON), started, "discovery", note
        )

    # The service id is read from the path, not declared as a parameter: FastAPI's parameter
    # machinery cost more per call than everything else the route does before the body.
    @router.post("/cds-services/{service_id}")
    async def invoke(request: Request) -> Response:
        started = time.perf_counter()
        service_id: str = request.path_params["service_id"]
        note = describe_call(request, "service call", service=service_id[:100])
        base, audience = public_url(request, f"/cds-services/{service_id}")
        caller = await authenticate(request, audience)
        by_hook = registry.hooks_of(service_id)
        if by_hook is None:
            raise ServiceNotFound(f"there is no CDS service {service_id[:100]!r}")
        data = await read_json(request, opts.max_body_bytes, opts.max_json_depth)
        hook = data.get("hook")
        if isinstance(hook, str) and hook not in by_hook:
            raise HookMismatch(
                f"service {service_id!r} answers {', '.join(sorted(by_hook))}, not {hook[:100]!r}",
                [Issue(f"hook must be one of: {', '.join(sorted(by_hook))}", expression="hook")],
            )
        cds_request = parse_request(data)
        note["hookInstance"] = cds_request.hook_instance
        service = by_hook[cds_request.hook]
        response = await _call(service, cds_request, base, caller)
        note["cards"] = str(len(response.cards))
        answer = Response(dump_json(response), 200, NO_STORE, media_type=JSON)
        return answered(answer, started, "service call", note)

    @router.post("/cds-services/{service_id}/feedback")
    async def feedback(request: Request) -> Response:
        started = time.perf_counter()
        service_id: str = request.path_params["service_id"]
        note = describe_call(request, "feedback", service=service_id[:100])
        audience = public_url(request, f"/cds-services/{service_id}/feedback")[1]
        caller = await authenticate(request, audience)
        if registry.hooks_of(service_id) is None:
            raise ServiceNotFound(f"there is no CDS service {service_id[:100]!r}")
        items = parse_feedback(await read_json(request, opts.max_body_bytes)).feedback
        await store.add(service_id, caller.iss if caller else None, items)
        note["items"] = str(len(items))
        return answered(Response(status_code=200), started, "feedback", note)

    return router


def _fmt(note: dict[str, str]) -> str:
    return " ".join(f"{key}={_one_line(value)}" for key, value in note.items())


def _one_line(text: str) -> str:
    """Caller-supplied text made safe for one log line: control characters are escaped, so a
    service id or field name carrying a newline cannot forge a log entry."""
    return text.encode("unicode_escape").decode("ascii")

"""The FastAPI router for a registry of CDS services: discovery, invocation and feedback.

One call, in order: caller JWT (401) -> service id (404) -> body within the size limit (413)
-> JSON (400) -> the service's hook (400) -> the request model for that hook (400) -> prefetch
completed from the FHIR server (412) -> the service's handler -> spec-clean JSON. Protocol
errors become responses in `cds_hooks.errors.error_response`; anything else is a 500 with an
OperationOutcome, logged by hookInstance with the stack frames but not the exception text,
which could hold patient data.

>>> router = build_router(ServiceRegistry([]), verifier=None,
...     feedback_store=InMemoryFeedbackStore(), http=httpx.AsyncClient())
>>> sorted(route.path for route in router.routes)
['/cds-services', '/cds-services/{service_id}', '/cds-services/{service_id}/feedback']

Spec: https://cds-hooks.hl7.org/2.0/#discovery, #calling-a-cds-service, #feedback
"""

import logging
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from cds_hooks.auth import CallerIdentity, JwtVerifier, bearer_token
from cds_hooks.discovery import CallContext, CdsService, ServiceRegistry
from cds_hooks.errors import (
    CdsHooksError,
    HookMismatch,
    InvalidRequest,
    Issue,
    PayloadTooLarge,
    ServiceNotFound,
    error_response,
    internal_error_response,
)
from cds_hooks.feedback import FeedbackStore, InMemoryFeedbackStore, parse_feedback
from cds_hooks.models import CdsRequest, CdsResponse, dump_json, parse_request
from cds_hooks.prefetch import FhirClient, FhirLimits, resolve_prefetch

__all__ = ["ProtocolOptions", "build_router", "read_json"]

log = logging.getLogger(__name__)

JSON = "application/json"


@dataclass(frozen=True)
class ProtocolOptions:
    """`public_base_url`: where clients reach `/cds-services` (scheme, host and any proxy
    prefix); the JWT `aud` is checked against it. Unset, the URL of the request is used."""

    max_body_bytes: int = 16 * 1024 * 1024
    public_base_url: str | None = None
    fhir_limits: FhirLimits = field(default_factory=FhirLimits)


async def read_json(request: Request, limit: int) -> dict[str, Any]:
    """The body as a JSON object, read once and parsed with orjson."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the body is over the {limit}-byte limit")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise PayloadTooLarge(f"the body is over the {limit}-byte limit")
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise InvalidRequest(
            "malformed JSON",
            [Issue(f"malformed JSON: {error.msg} at byte {error.pos}", code="structure")],
        ) from None
    if not isinstance(data, dict):
        raise InvalidRequest(
            "the body must be a JSON object",
            [Issue("the body must be a JSON object", code="structure")],
        )
    return data


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
    router = APIRouter()

    def public_url(request: Request, path: str) -> tuple[str, str]:
        base = opts.public_base_url or str(request.base_url)
        base = base.rstrip("/")
        return base, base + path

    async def authenticate(request: Request, audience: str) -> CallerIdentity | None:
        if verifier is None:
            return None
        token = bearer_token(request.headers.get("authorization"))
        return await verifier.verify(token, audience)

    async def guarded(
        what: str, work: Callable[[], Awaitable[Response]], note: dict[str, str]
    ) -> Response:
        started = time.perf_counter()
        try:
            response = await work()
        except CdsHooksError as error:
            level = logging.WARNING if error.status in (401, 412) else logging.INFO
            why = _one_line("; ".join(issue.diagnostics for issue in error.issues))
            log.log(level, "%s refused %d: %s %s", what, error.status, why, _fmt(note))
            return error_response(error)
        except Exception as error:
            frames = "".join(traceback.format_tb(error.__traceback__))
            log.error(
                "%s failed: unhandled %s %s\n%s", what, type(error).__name__, _fmt(note), frames
            )
            return internal_error_response()
        ms = (time.perf_counter() - started) * 1000
        log.info("%s answered %d in %.1f ms %s", what, response.status_code, ms, _fmt(note))
        return response

    @router.get("/cds-services")
    async def discovery(request: Request) -> Response:
        async def work() -> Response:
            await authenticate(request, public_url(request, "/cds-services")[1])
            return Response(registry.discovery_json, media_type=JSON)

        return await guarded("discovery", work, {})

    # The service id is read from the path, not declared as a parameter: FastAPI's parameter
    # machinery cost more per call than everything else the route does before the body.
    @router.post("/cds-services/{service_id}")
    async def invoke(request: Request) -> Response:
        service_id: str = request.path_params["service_id"]
        note = {"service": service_id[:100]}

        async def work() -> Response:
            base, audience = public_url(request, f"/cds-services/{service_id}")
            caller = await authenticate(request, audience)
            by_hook = registry.hooks_of(service_id)
            if by_hook is None:
                raise ServiceNotFound(f"there is no CDS service {service_id[:100]!r}")
            data = await read_json(request, opts.max_body_bytes)
            hook = data.get("hook")
            if isinstance(hook, str) and hook not in by_hook:
                raise HookMismatch(
                    f"service {service_id!r} answers {', '.join(sorted(by_hook))}, "
                    f"not {hook[:100]!r}",
                    [
                        Issue(
                            f"hook must be one of: {', '.join(sorted(by_hook))}", expression="hook"
                        )
                    ],
                )
            cds_request = parse_request(data)
            note["hookInstance"] = cds_request.hook_instance
            service = by_hook[cds_request.hook]
            response = await _call(service, cds_request, base, caller)
            note["cards"] = str(len(response.cards))
            return Response(dump_json(response), media_type=JSON)

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
                fhir = FhirClient(http, cds_request.fhir_server, token, opts.fhir_limits)
            prefetch = await resolve_prefetch(
                service.prefetch, cds_request.prefetch, cds_request.context.prefetch_tokens(), fhir
            )
            call = CallContext(service.id, cds_request.hook_instance, base, fhir, caller)
            response = await service.handler(cds_request, prefetch, call)
            if not isinstance(response, CdsResponse):
                raise TypeError(f"handler of {service.id!r} returned {type(response).__name__}")
            return response

        return await guarded("service call", work, note)

    @router.post("/cds-services/{service_id}/feedback")
    async def feedback(request: Request) -> Response:
        service_id: str = request.path_params["service_id"]
        note = {"service": service_id[:100]}

        async def work() -> Response:
            audience = public_url(request, f"/cds-services/{service_id}/feedback")[1]
            caller = await authenticate(request, audience)
            if registry.hooks_of(service_id) is None:
                raise ServiceNotFound(f"there is no CDS service {service_id[:100]!r}")
            items = parse_feedback(await read_json(request, opts.max_body_bytes)).feedback
            await store.add(service_id, caller.iss if caller else None, items)
            note["items"] = str(len(items))
            return Response(status_code=200)

        return await guarded("feedback", work, note)

    return router


def _fmt(note: dict[str, str]) -> str:
    return " ".join(f"{key}={_one_line(value)}" for key, value in note.items())


def _one_line(text: str) -> str:
    """Caller-supplied text made safe for one log line: control characters are escaped, so a
    service id or field name carrying a newline cannot forge a log entry."""
    return text.encode("unicode_escape").decode("ascii")

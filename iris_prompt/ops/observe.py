"""Where calls and FHIR requests are observed: one ASGI middleware for the CDS calls (count,
latency, the call's span) and one HTTP transport for the FHIR requests (latency by resource
type and outcome, a span each). Neither reads a body or keeps a URL's query.
"""

import time
from contextvars import ContextVar
from typing import Any

import httpx
from opentelemetry.trace import SpanKind, Status, StatusCode
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cds_hooks import ServiceRegistry
from cds_hooks.transport import ReclaimingTransport
from iris_prompt.ops import metrics
from iris_prompt.ops.tracing import tracer

__all__ = ["CallObserver", "ObservedTransport", "fhir_purpose"]

# What a FHIR request is for: "prefetch" unless the household lookup says otherwise.
fhir_purpose: ContextVar[str] = ContextVar("fhir_purpose", default="prefetch")

# FHIR resource types the services read, for a bounded label; anything else is "other".
RESOURCE_TYPES = frozenset(
    {
        "Patient",
        "Condition",
        "Observation",
        "Procedure",
        "Flag",
        "Group",
        "RelatedPerson",
        "Encounter",
        "EpisodeOfCare",
        "AllergyIntolerance",
        "MedicationStatement",
        "MedicationRequest",
        "QuestionnaireResponse",
    }
)


def resource_type(path: str) -> str:
    """The resource type a FHIR request's path names, for a bounded label.

    >>> resource_type("/fhir/r4/Patient/p1"), resource_type("/x/Flag"), resource_type("/y")
    ('Patient', 'Flag', 'other')
    """
    for segment in path.split("/"):
        if segment in RESOURCE_TYPES:
            return segment
    return "other"


class CallObserver:
    """Counts and times `POST /cds-services/{id}` (and its feedback), in a span each."""

    def __init__(self, app: ASGIApp, registry: ServiceRegistry) -> None:
        self.app = app
        self.registry = registry

    def _labels(self, path: str) -> tuple[str, str] | None:
        parts = path.split("/")
        if len(parts) not in (3, 4) or parts[1] != "cds-services":
            return None
        hooks = self.registry.hooks_of(parts[2])
        if hooks is None:
            return "unknown", "unknown"
        if len(parts) == 4:
            return (parts[2], "feedback") if parts[3] == "feedback" else None
        return parts[2], ",".join(sorted(hooks))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        labels = None
        if scope["type"] == "http" and scope["method"] == "POST":
            labels = self._labels(scope["path"])
        if labels is None:
            await self.app(scope, receive, send)
            return
        service, hook = labels
        status = 500
        started = time.perf_counter()

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        name = "CDS feedback" if hook == "feedback" else "CDS service call"
        with tracer.start_as_current_span(name, kind=SpanKind.SERVER) as span:
            span.set_attribute("cds.service", service)
            span.set_attribute("cds.hook", hook)
            try:
                await self.app(scope, receive, sending)
            finally:
                span.set_attribute("http.response.status_code", status)
                if status >= 500:
                    span.set_status(Status(StatusCode.ERROR))
                metrics.bound(metrics.CALLS, service, hook, str(status)).inc()
                if hook != "feedback":
                    metrics.bound(metrics.CALL_SECONDS, service, hook).observe(
                        time.perf_counter() - started
                    )


class ObservedTransport(ReclaimingTransport):
    """The FHIR pool's transport, timing each request and tracing it as a client span."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        purpose = fhir_purpose.get()
        kind = resource_type(request.url.path)
        outcome = "error"
        started = time.perf_counter()
        with tracer.start_as_current_span(f"FHIR {request.method}", kind=SpanKind.CLIENT) as span:
            span.set_attribute("fhir.resource_type", kind)
            span.set_attribute("fhir.purpose", purpose)
            try:
                response = await super().handle_async_request(request)
                outcome = str(response.status_code)
                span.set_attribute("http.response.status_code", response.status_code)
                return response
            except BaseException as error:
                outcome = "timeout" if isinstance(error, httpx.TimeoutException) else "error"
                span.set_status(Status(StatusCode.ERROR, type(error).__name__))
                raise
            finally:
                metrics.bound(metrics.FHIR_SECONDS, purpose, kind, outcome).observe(
                    time.perf_counter() - started
                )


def observed_client(limits: httpx.Limits, **options: Any) -> httpx.AsyncClient:
    """`cds_hooks.transport.pooled_client`, observed."""
    return httpx.AsyncClient(transport=ObservedTransport(limits=limits), **options)

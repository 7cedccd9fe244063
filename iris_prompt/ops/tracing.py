"""OpenTelemetry traces, off unless configured.

Tracing is on when `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is
set and `OTEL_SDK_DISABLED` is not `true`; the exporter (OTLP over HTTP) reads the standard
`OTEL_` variables (headers, timeout, `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, the
sampler). Without it every span is one shared span that records nothing
(`cds_hooks.tracing.Tracer`: the API's own no-op span cost microseconds each).

Spans: one per call (`iris_prompt.ops.observe.CallObserver`), with children for the prefetch
(`cds_hooks.http`), each FHIR request (`ObservedTransport`), the household lookup
(`iris_prompt.engine.household_check`), the rules, the cards and the store
(`iris_prompt.engine.service`). Attributes are service ids, hooks, statuses, resource types,
counts and outcomes: never a patient id, a name, a URL's query or a token.
"""

import logging
import os

from opentelemetry import trace

from cds_hooks.tracing import Tracer

__all__ = ["configure_tracing", "shutdown_tracing", "trace_id", "tracer"]

log = logging.getLogger(__name__)

tracer = Tracer("iris_prompt")
_configured: list[object] = []


def tracing_wanted(environ: dict[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return False
    return bool(
        env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


def configure_tracing() -> bool:
    """Install the SDK's tracer provider with an OTLP exporter, once per process, if wanted."""
    if _configured or not tracing_wanted():
        return bool(_configured)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", "iris-prompt")})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    _configured.append(provider)
    log.info("tracing on: spans are exported over OTLP")
    return True


def shutdown_tracing() -> None:
    """Export the spans still queued (at shutdown)."""
    for provider in _configured:
        shutdown = getattr(provider, "force_flush", None)
        if shutdown is not None:
            shutdown()


def trace_id() -> str | None:
    """The current span's trace id (32 hex digits), for log lines; None outside a trace."""
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None

"""Spans without a tracer provider cost nothing and change nothing; once an application installs
one, the same tracer's spans are recorded. In a fresh interpreter: a process has one provider."""

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from cds_hooks.tracing import Tracer

    tracer = Tracer("test")
    with tracer.start_as_current_span("before") as span:
        assert not span.is_recording()
        assert trace.get_current_span() is trace.INVALID_SPAN  # the context left alone

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    with tracer.start_as_current_span("after", kind=trace.SpanKind.SERVER) as span:
        assert span.is_recording()
        assert trace.get_current_span() is span
    (finished,) = exporter.get_finished_spans()
    assert (finished.name, finished.kind) == ("after", trace.SpanKind.SERVER)
    """
)


def test_spans_record_nothing_until_a_provider_is_installed_then_everything() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr

"""An application instrumented with the real OpenTelemetry Python SDK, and the two encodings the
OpenTelemetry Collector's Kafka exporter writes of its spans (``otlp_proto``, ``otlp_json``).

The spans are made by the SDK's ``TracerProvider`` (a span processor hands them to a capturing
exporter) and serialized by ``encode_spans``, the encoder the SDK's OTLP exporters use. OTLP/JSON
is protobuf's JSON mapping with the changes the OTLP spec makes: lowerCamelCase names, enums as
integers, and trace / span ids as hex instead of base64.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import orjson
from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import Status, StatusCode, Tracer


class Capture(SpanExporter):
    """Keeps what the SDK exports, batch by batch, as an exporter would receive it."""

    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.spans.extend(spans)
        return SpanExportResult.SUCCESS

    def take(self) -> list[ReadableSpan]:
        taken, self.spans = self.spans, []
        return taken


class Instrumented:
    """One service's tracer provider: its resource, a tracer, the exported spans."""

    def __init__(self, resource: Mapping[str, Any]) -> None:
        self.capture = Capture()
        self.provider = TracerProvider(resource=Resource.create(dict(resource)))
        self.provider.add_span_processor(SimpleSpanProcessor(self.capture))
        self.tracer: Tracer = self.provider.get_tracer("driftnet.tests", "1.0")

    def take(self) -> list[ReadableSpan]:
        return self.capture.take()

    def shutdown(self) -> None:
        self.provider.shutdown()


def proto(spans: Sequence[ReadableSpan]) -> bytes:
    """The spans as the exporter's protobuf ``ExportTraceServiceRequest`` (``otlp_proto``)."""
    return bytes(encode_spans(spans).SerializeToString())


def otlp_json(spans: Sequence[ReadableSpan]) -> bytes:
    """The spans as OTLP/JSON (``otlp_json``): hex ids, integer enums, camelCase names."""
    document = json_format.MessageToDict(encode_spans(spans), use_integers_for_enums=True)
    for resource_spans in document.get("resourceSpans", []):
        for scope_spans in resource_spans.get("scopeSpans", []):
            for span in scope_spans.get("spans", []):
                for item in (span, *span.get("links", [])):
                    for name in ("traceId", "spanId", "parentSpanId"):
                        if name in item:
                            item[name] = base64.b64decode(item[name]).hex()
    return orjson.dumps(document)


@contextmanager
def llm_call(
    tracer: Tracer,
    *,
    model: str = "gpt-4o",
    prompt: str = "Where is my order?",
    answer: str = "It ships tomorrow.",
    input_tokens: int = 120,
    output_tokens: int = 30,
    finish: str = "stop",
    error: str | None = None,
    attributes: Mapping[str, Any] | None = None,
) -> Iterator[Any]:
    """A chat span the way a current GenAI instrumentation records it."""
    with tracer.start_as_current_span(f"chat {model}", record_exception=False,
                                      set_status_on_exception=False) as span:  # fmt: skip
        span.set_attributes(
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": model,
                "gen_ai.response.model": f"{model}-2024-08-06",
                "gen_ai.request.temperature": 0.2,
                "gen_ai.input.messages": json.dumps(
                    [{"role": "user", "parts": [{"type": "text", "content": prompt}]}]
                ),
                **(attributes or {}),
            }
        )
        yield span
        if error is not None:
            span.set_attribute("error.type", error)
            span.set_status(Status(StatusCode.ERROR, error))
            return
        span.set_attributes(
            {
                "gen_ai.usage.input_tokens": input_tokens,
                "gen_ai.usage.output_tokens": output_tokens,
                "gen_ai.response.finish_reasons": [finish],
                "gen_ai.output.messages": json.dumps(
                    [
                        {
                            "role": "assistant",
                            "parts": [{"type": "text", "content": answer}],
                            "finish_reason": finish,
                        }
                    ]
                ),
            }
        )

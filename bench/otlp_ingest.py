"""OTLP ingest throughput on one core, no broker: what the worker's ``otlp`` agent costs per
trace, as a ratio to protobuf's own parse of the same messages and to the triage every event
then goes through anyway.

The traces are made by the real OpenTelemetry SDK the way an instrumented chat service records
a call: a server span for the request, a retrieval span and the chat span with its prompt,
answer, token counts and finish reason (about 1.6 KB of v1 event each), 100 traces per message
as a Collector's batch processor would send them, in both encodings the Kafka exporter writes.

Measured per encoding: (a) the parse alone (``ExportTraceServiceRequest.FromString``, or
``orjson.loads`` for OTLP/JSON), (b) :func:`driftnet.ingest.otlp_proto.decode_spans` (parse + ids +
attribute values), (c) :meth:`driftnet.ingest.spans_to_events.OtlpIngest.add` (decode, buffer by trace,
map to v1, JSON-encode and batch by cohort): traces/s, and c / a; then (d) the triage of the
v1 batches it made (validation + rules, as for native events), so c / d says what the OTLP
ingest adds to an event's cost. Usage: python -m bench.otlp_ingest [--seconds 1]
"""

from __future__ import annotations

import argparse
import base64
import json
import platform
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import orjson
from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind

from bench.core_throughput import best_rate
from driftnet.contract.events import Lineage
from driftnet.harvest.triage import Triage
from driftnet.ingest.otlp_proto import decode_spans
from driftnet.ingest.settings import OtlpSettings
from driftnet.ingest.spans_to_events import OtlpIngest
from driftnet.streams.settings import Settings

TRACES_PER_MESSAGE = 100
LINEAGE = Lineage(topic="otlp_spans", partition=0, offset=0)
QUESTION = (
    "My order #{n} from last Tuesday still shows 'processing'. I paid with a gift card and a "
    "credit card; can you tell me when it ships, whether the gift card part went through, and "
    "how I change the delivery address to my office (4th floor, reception desk)? "
) * 2
ANSWER = (
    "Your order #{n} is packed and leaves the warehouse tomorrow morning; both payments went "
    "through (gift card first, the remainder on the card). You can change the delivery address "
    "until it ships under Orders > Details > Delivery; add the floor and desk in line 2. "
) * 2


class _Capture(SpanExporter):
    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.spans.extend(spans)
        return SpanExportResult.SUCCESS


def recorded_spans(traces: int) -> list[ReadableSpan]:
    """``traces`` chat calls as the SDK records them (children end, and are sent, first)."""
    capture = _Capture()
    provider = TracerProvider(
        resource=Resource.create(
            {
                "service.name": "support-chat",
                "service.version": "gpt-4o+prompt-v7",
                "deployment.environment.name": "production",
            }
        )
    )
    provider.add_span_processor(SimpleSpanProcessor(capture))
    tracer = provider.get_tracer("bench")
    for n in range(traces):
        with tracer.start_as_current_span("POST /chat", kind=SpanKind.SERVER) as root:
            root.set_attribute("feature_flag.result.variant", "canary" if n % 4 else "baseline")
            with tracer.start_as_current_span("vector search") as search:
                search.set_attribute("gen_ai.operation.name", "retrieval")
            with tracer.start_as_current_span("chat gpt-4o", kind=SpanKind.CLIENT) as chat:
                chat.set_attributes(
                    {
                        "gen_ai.operation.name": "chat",
                        "gen_ai.provider.name": "openai",
                        "gen_ai.request.model": "gpt-4o",
                        "gen_ai.response.model": "gpt-4o-2024-08-06",
                        "gen_ai.request.temperature": 0.2,
                        "gen_ai.request.max_tokens": 512,
                        "gen_ai.system_instructions": "You are a helpful support agent.",
                        "gen_ai.input.messages": json.dumps(
                            [{"role": "user", "content": QUESTION.format(n=n)}]
                        ),
                        "gen_ai.output.messages": json.dumps(
                            [
                                {
                                    "role": "assistant",
                                    "content": ANSWER.format(n=n),
                                    "finish_reason": "stop",
                                }
                            ]
                        ),
                        "gen_ai.usage.input_tokens": 180 + n % 50,
                        "gen_ai.usage.output_tokens": 90 + n % 40,
                        "gen_ai.response.finish_reasons": ["stop"],
                    }
                )
    return capture.spans


def as_json(request: ExportTraceServiceRequest) -> bytes:
    """OTLP/JSON as the exporter writes it: hex ids, integer enums."""
    document = json_format.MessageToDict(request, use_integers_for_enums=True)
    for resource_spans in document.get("resourceSpans", []):
        for scope_spans in resource_spans.get("scopeSpans", []):
            for span in scope_spans.get("spans", []):
                for name in ("traceId", "spanId", "parentSpanId"):
                    if name in span:
                        span[name] = base64.b64decode(span[name]).hex()
    return orjson.dumps(document)


def _rate(work: Callable[[], int], seconds: float) -> float:
    """Units per CPU second of this process (single-threaded work: what other processes on
    the machine do counts less than in wall time)."""
    return best_rate(work, seconds, time.process_time)


def measure(seconds: float) -> dict[str, object]:
    spans = recorded_spans(TRACES_PER_MESSAGE)
    request = encode_spans(spans)
    messages = {"otlp_proto": request.SerializeToString(), "otlp_json": as_json(request)}
    parse: dict[str, Callable[[bytes], object]] = {
        "otlp_proto": ExportTraceServiceRequest.FromString,
        "otlp_json": orjson.loads,
    }
    triage = Triage(Settings().rules)
    settings = OtlpSettings()
    now = datetime.now(UTC)
    results: dict[str, object] = {
        "traces_per_message": TRACES_PER_MESSAGE,
        "spans_per_trace": len(spans) // TRACES_PER_MESSAGE,
    }
    for encoding, payload in messages.items():
        ingest: OtlpIngest[int] = OtlpIngest(settings)
        batches = [value for _, value, _ in ingest.add(0, payload, None, LINEAGE, 0.0).batches]
        events = sum(len(orjson.loads(b)) for b in batches)
        assert events == TRACES_PER_MESSAGE, events
        event_bytes = sum(len(b) for b in batches) / events

        def parse_only(p: bytes = payload, f: Callable[[bytes], object] = parse[encoding]) -> int:
            f(p)
            return TRACES_PER_MESSAGE

        def decode_only(p: bytes = payload) -> int:
            decode_spans(p)
            return TRACES_PER_MESSAGE

        def ingest_all(p: bytes = payload) -> int:
            # a fresh ingest each time: one that had seen these traces would take the message
            # for a replay and drop its child spans as late
            step = OtlpIngest[int](settings).add(0, p, None, LINEAGE, 0.0)
            return sum(n for _, _, n in step.batches)

        def triage_all(b: list[bytes] = batches) -> int:
            return sum(triage(value, LINEAGE, now).events for value in b)

        a, b, c = (
            _rate(parse_only, seconds),
            _rate(decode_only, seconds),
            _rate(ingest_all, seconds),
        )
        d = _rate(triage_all, seconds)
        results[encoding] = {
            "message_bytes": len(payload),
            "v1_event_bytes": round(event_bytes),
            "parse_traces_per_s": round(a),
            "decode_traces_per_s": round(b),
            "ingest_traces_per_s": round(c),
            "ingest_over_parse": round(c / a, 3),
            "triage_events_per_s": round(d),
            "ingest_over_triage": round(c / d, 3),
        }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="length of one timed run")
    args = parser.parse_args()
    results = measure(args.seconds)
    print(f"{platform.machine()} {platform.python_implementation()} {platform.python_version()}")
    print(f"{results['traces_per_message']} traces of {results['spans_per_trace']} spans a message")
    for encoding in ("otlp_proto", "otlp_json"):
        row = results[encoding]
        assert isinstance(row, dict)
        print(
            f"{encoding}: {row['message_bytes']:,} B/message, v1 event {row['v1_event_bytes']:,} B; "
            f"parse {row['parse_traces_per_s']:,} traces/s, decode {row['decode_traces_per_s']:,}, "
            f"ingest {row['ingest_traces_per_s']:,} (c/a {row['ingest_over_parse']}); triage of "
            f"its events {row['triage_events_per_s']:,}/s (ingest/triage {row['ingest_over_triage']})"
        )


if __name__ == "__main__":
    main()

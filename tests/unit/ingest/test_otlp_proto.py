"""OTLP decoding: the SDK exporter's protobuf and the Collector's OTLP/JSON give the same spans
(hex ids read as hex, not base64), and unreadable messages or spans are problems, never
exceptions."""

from __future__ import annotations

import base64

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from driftnet.ingest.otlp_proto import decode_spans, sniff
from tests.support.otel_client import Instrumented, llm_call, otlp_json, proto

SPEC_EXAMPLE = b"""{
  "resourceSpans": [{
    "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "my.service"}}]},
    "scopeSpans": [{
      "scope": {"name": "my.library", "version": "1.0.0"},
      "spans": [{
        "traceId": "5B8EFFF798038103D269B633813FC60C",
        "spanId": "EEE19B7EC3C1B174",
        "parentSpanId": "EEE19B7EC3C1B173",
        "name": "I'm a server span",
        "startTimeUnixNano": "1544712660000000000",
        "endTimeUnixNano": "1544712661000000000",
        "kind": 2,
        "attributes": [
          {"key": "my.span.attr", "value": {"stringValue": "some value"}},
          {"key": "n", "value": {"intValue": "7"}},
          {"key": "list", "value": {"arrayValue": {"values": [{"doubleValue": 1.5},
                                                             {"boolValue": true}]}}}
        ],
        "status": {"code": 2, "message": "boom"},
        "unknownFutureField": {"ignored": true}
      }]
    }]
  }]
}"""
"""The trace example of the OTLP specification (uppercase hex ids), plus an unknown field."""


@pytest.fixture
def app() -> Instrumented:
    return Instrumented({"service.name": "support-chat", "service.version": "r1"})


def test_protobuf_from_the_sdk_exporter_decodes_with_the_sdk_ids(app: Instrumented) -> None:
    """Spans serialized by the SDK's OTLP encoder come back with their ids, times and values."""
    with app.tracer.start_as_current_span("POST /chat") as root, llm_call(app.tracer) as call:
        pass
    spans = app.take()
    decoded = decode_spans(proto(spans))
    assert decoded.encoding == "otlp_proto"
    assert decoded.problems == []
    by_name = {s.name: s for s in decoded.spans}
    chat = by_name["chat gpt-4o"]
    assert chat.trace_id == format(call.get_span_context().trace_id, "032x")
    assert chat.span_id == format(call.get_span_context().span_id, "016x")
    assert chat.parent_span_id == format(root.get_span_context().span_id, "016x")
    assert by_name["POST /chat"].parent_span_id is None
    assert chat.attributes["gen_ai.request.temperature"] == 0.2
    assert chat.attributes["gen_ai.response.finish_reasons"] == ["stop"]
    assert chat.resource["service.version"] == "r1"
    assert chat.end_ns > chat.start_ns > 0
    assert [s.index for s in decoded.spans] == [0, 1]


def test_otlp_json_with_hex_ids_gives_the_same_spans_as_protobuf(app: Instrumented) -> None:
    """OTLP/JSON ids are hex: read as base64 they would be 24 wrong bytes, so they are not."""
    with app.tracer.start_as_current_span("POST /chat"), llm_call(app.tracer):
        pass
    spans = app.take()
    as_json = otlp_json(spans)
    first = orjson.loads(as_json)["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    assert len(first["traceId"]) == 32
    assert int(first["traceId"], 16) == int(spans[0].context.trace_id)
    decoded = decode_spans(as_json)
    assert decoded.encoding == "otlp_json"
    assert decoded.problems == []
    assert decoded.spans == decode_spans(proto(spans)).spans


def test_the_spec_example_decodes_case_insensitive_ids_and_typed_values() -> None:
    """Uppercase hex ids, int64 as strings, integer enums, nested values, unknown fields."""
    decoded = decode_spans(SPEC_EXAMPLE)
    assert decoded.problems == []
    [span] = decoded.spans
    assert span.trace_id == "5b8efff798038103d269b633813fc60c"
    assert span.span_id == "eee19b7ec3c1b174"
    assert span.parent_span_id == "eee19b7ec3c1b173"
    assert (span.kind, span.status, span.status_message) == ("server", "error", "boom")
    assert span.end_ns - span.start_ns == 1_000_000_000
    assert span.attributes == {"my.span.attr": "some value", "n": 7, "list": [1.5, True]}
    assert span.resource == {"service.name": "my.service"}


def test_snake_case_names_and_base64_ids_are_read_too() -> None:
    """Protobuf's own JSON mapping (proto names, base64 ids), which some exporters write."""
    trace_id, span_id = bytes(range(1, 17)), bytes(range(1, 9))
    document = {
        "resource_spans": [
            {
                "scope_spans": [
                    {
                        "spans": [
                            {
                                "trace_id": base64.b64encode(trace_id).decode(),
                                "span_id": base64.b64encode(span_id).decode(),
                                "name": "x",
                                "start_time_unix_nano": 1,
                                "end_time_unix_nano": 2,
                            }
                        ]
                    }
                ]
            }
        ]
    }
    [span] = decode_spans(orjson.dumps(document)).spans
    assert (span.trace_id, span.span_id) == (trace_id.hex(), span_id.hex())


def test_a_span_with_a_bad_id_is_one_problem_and_the_others_decode() -> None:
    """A span whose id is not 8 bytes is a problem with its index and field path."""
    document = orjson.loads(SPEC_EXAMPLE)
    spans = document["resourceSpans"][0]["scopeSpans"][0]["spans"]
    spans.append({**spans[0], "spanId": "abc"})
    spans.append({**spans[0], "traceId": "00000000000000000000000000000000"})
    decoded = decode_spans(orjson.dumps(document))
    assert len(decoded.spans) == 1
    assert [(p.index, p.field) for p in decoded.problems] == [
        (1, "resourceSpans.0.scopeSpans.0.spans.1.spanId"),
        (2, "resourceSpans.0.scopeSpans.0.spans.2.traceId"),
    ]
    assert "must be 8 bytes" in decoded.problems[0].message


@pytest.mark.parametrize(
    ("payload", "says"),
    [
        pytest.param(b"\x0a\xff\xff\xff\xff\x0f", "not an OTLP protobuf", id="truncated-protobuf"),
        pytest.param(b"\xff\xfe garbage", "not an OTLP protobuf", id="random-bytes"),
        pytest.param(b'{"resourceSpans": [', "not valid JSON", id="cut-json"),
        pytest.param(b'  {"resourceSpans": 3}', "not an OTLP/JSON", id="wrong-json-type"),
        pytest.param(
            b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"startTimeUnixNano": "soon"}]}]}]}',
            "not an OTLP/JSON",
            id="bad-number",
        ),
    ],
)
def test_malformed_messages_are_one_problem_without_an_index(payload: bytes, says: str) -> None:
    """Bytes that are no ExportTraceServiceRequest in either encoding: one message problem."""
    decoded = decode_spans(payload)
    [problem] = decoded.problems
    assert problem.index is None
    assert says in problem.message
    assert decoded.spans == []


def test_the_encoding_is_read_from_the_first_byte() -> None:
    """JSON starts with ``{`` (after blanks); a protobuf request with field 1 starts 0x0a."""
    assert sniff(b' \n{"resourceSpans": []}') == "otlp_json"
    assert sniff(b"\x0a\x00") == "otlp_proto"


MEANT = ("not an OTLP protobuf", "not valid JSON", "OTLP/JSON must be", "not an OTLP/JSON")
"""How the problems the decoder means for a whole message begin; any other is its catch-all
(``<exception type>: ...``): the decoder raised."""


@given(st.binary(max_size=300) | st.binary(max_size=300).map(lambda tail: b"{" + tail))
def test_any_bytes_decode_without_raising(payload: bytes) -> None:
    """Whatever arrives, decoding returns spans and problems, and never through its catch-all:
    a message problem is one it means, a span problem names its span and field."""
    decoded = decode_spans(payload)
    for problem in decoded.problems:
        if problem.index is None:
            assert problem.message.startswith(MEANT), problem.message
        else:
            assert problem.field is not None, problem

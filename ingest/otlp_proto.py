"""Bytes off the ``otlp_spans`` topic -> spans as plain Python data. Pure; never raises.

A message is one OTLP ``ExportTraceServiceRequest``, the way the OpenTelemetry Collector's
Kafka exporter writes it: protobuf (``encoding: otlp_proto``, its default) or OTLP/JSON
(``otlp_json``). The exporter sets no content-type header, so the encoding is read from the
bytes: an OTLP/JSON message is a JSON object (its first non-blank byte is ``{``), while a
protobuf ``ExportTraceServiceRequest`` starts with field 1 (``resource_spans``), byte ``0x0a``;
``{`` (0x7b) would be field 15 as a start-group, which the message does not have.

Decoding is the maintained ``opentelemetry-proto`` classes' (``FromString``) and protobuf's own
``json_format``, with one correction the OTLP specification requires: in OTLP/JSON,
``traceId``, ``spanId`` and ``parentSpanId`` (and a link's ids) are case-insensitive **hex**
strings, not the base64 of protobuf's JSON mapping. json_format would read a 32-digit hex trace
id as base64 and return 24 wrong bytes without an error, so the ids are turned from hex into
bytes before json_format sees the document. An id that is not hex of the right length is read
as base64 (some non-conforming exporters write protobuf's mapping) and must then give 16 (trace)
or 8 (span) bytes; otherwise that span is a dead letter. Field names may be lowerCamelCase (the
spec's) or the proto's snake_case; unknown fields are ignored, as the spec says receivers must.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import orjson
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

Encoding = Literal["otlp_proto", "otlp_json"]

TRACE_ID_BYTES: Final = 16
SPAN_ID_BYTES: Final = 8
_ID_FIELDS: Final = {
    "traceId": TRACE_ID_BYTES,
    "trace_id": TRACE_ID_BYTES,
    "spanId": SPAN_ID_BYTES,
    "span_id": SPAN_ID_BYTES,
    "parentSpanId": SPAN_ID_BYTES,
    "parent_span_id": SPAN_ID_BYTES,
}
_KINDS: Final = {0: "unspecified", 1: "internal", 2: "server", 3: "client", 4: "producer",
                 5: "consumer"}  # fmt: skip
_STATUSES: Final[dict[int, Literal["unset", "ok", "error"]]] = {
    Status.STATUS_CODE_UNSET: "unset",
    Status.STATUS_CODE_OK: "ok",
    Status.STATUS_CODE_ERROR: "error",
}


@dataclass(frozen=True, slots=True)
class SpanEvent:
    """An event recorded on a span (``gen_ai.user.message``, ``gen_ai.evaluation.result``...)."""

    name: str
    time_ns: int
    attributes: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class OtlpSpan:
    """One span with its resource, attribute values as Python values, ids as lowercase hex."""

    trace_id: str
    span_id: str
    parent_span_id: str | None
    name: str
    kind: str
    """``internal``, ``server``, ``client``, ``producer``, ``consumer`` or ``unspecified``."""
    start_ns: int
    end_ns: int
    status: Literal["unset", "ok", "error"]
    status_message: str
    attributes: Mapping[str, Any]
    events: tuple[SpanEvent, ...]
    resource: Mapping[str, Any]
    """The attributes of the resource that produced the span (shared by its spans)."""
    index: int = 0
    """Position of the span in its message (over every resource and scope), for dead letters."""


@dataclass(frozen=True, slots=True)
class Problem:
    """Why a message, or one span of it (``index``), cannot be read."""

    message: str
    index: int | None = None
    field: str | None = None


@dataclass(slots=True)
class DecodedSpans:
    """What one message gave: its spans, and what could not be read."""

    encoding: Encoding
    spans: list[OtlpSpan] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def sniff(payload: bytes) -> Encoding:
    """The encoding of a message: OTLP/JSON when its first non-blank byte is ``{``."""
    return "otlp_json" if payload.lstrip()[:1] == b"{" else "otlp_proto"


def decode_spans(payload: bytes) -> DecodedSpans:
    """Decode one ``ExportTraceServiceRequest`` (protobuf or OTLP/JSON). Never raises: an
    unreadable message is one problem without an index, a bad span one with its index."""
    result = DecodedSpans(encoding=sniff(payload))
    try:
        request = _parse(payload, result.encoding)
    except _Invalid as exc:
        result.problems.append(Problem(str(exc)))
        return result
    except Exception as exc:  # last line of defence: a monitoring service never crashes
        result.problems.append(Problem(f"{type(exc).__name__}: {exc}"))
        return result
    index = 0
    for r, resource_spans in enumerate(request.resource_spans):
        resource = _attributes(resource_spans.resource.attributes)
        for s, scope_spans in enumerate(resource_spans.scope_spans):
            for k, span in enumerate(scope_spans.spans):
                where = f"resourceSpans.{r}.scopeSpans.{s}.spans.{k}"
                try:
                    result.spans.append(_span(span, resource, index, where))
                except _Invalid as exc:
                    result.problems.append(Problem(str(exc), index, exc.field))
                index += 1
    return result


class _Invalid(ValueError):
    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def _parse(payload: bytes, encoding: Encoding) -> ExportTraceServiceRequest:
    if encoding == "otlp_proto":
        try:
            parsed: ExportTraceServiceRequest = ExportTraceServiceRequest.FromString(payload)
            return parsed
        except DecodeError as exc:
            raise _Invalid(f"not an OTLP protobuf ExportTraceServiceRequest: {exc}") from None
    try:
        document = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise _Invalid(f"not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise _Invalid("OTLP/JSON must be an object with resourceSpans")
    _hex_ids_to_base64(document)
    request = ExportTraceServiceRequest()
    try:
        json_format.ParseDict(document, request, ignore_unknown_fields=True)
    except json_format.ParseError as exc:
        raise _Invalid(f"not an OTLP/JSON ExportTraceServiceRequest: {exc}") from None
    return request


def _hex_ids_to_base64(document: dict[str, Any]) -> None:
    """Rewrite OTLP/JSON's hex ids as the base64 json_format reads (in place)."""
    for resource_spans in _items(document, "resourceSpans", "resource_spans"):
        for scope_spans in _items(resource_spans, "scopeSpans", "scope_spans"):
            for span in _items(scope_spans, "spans"):
                _fix_ids(span)
                for link in _items(span, "links"):
                    _fix_ids(link)


def _items(container: Any, *names: str) -> list[Any]:
    if not isinstance(container, dict):
        return []
    for name in names:
        value = container.get(name)
        if isinstance(value, list):
            return value
    return []


def _fix_ids(item: Any) -> None:
    if not isinstance(item, dict):
        return
    for name, size in _ID_FIELDS.items():
        value = item.get(name)
        if isinstance(value, str) and len(value) == 2 * size:
            try:
                raw = bytes.fromhex(value)
            except ValueError:
                continue  # not hex: left for json_format as base64
            item[name] = base64.b64encode(raw).decode()


def _span(span: Span, resource: Mapping[str, Any], index: int, where: str) -> OtlpSpan:
    trace_id = _id(span.trace_id, TRACE_ID_BYTES, f"{where}.traceId")
    span_id = _id(span.span_id, SPAN_ID_BYTES, f"{where}.spanId")
    parent = None
    if span.parent_span_id:
        parent = _id(span.parent_span_id, SPAN_ID_BYTES, f"{where}.parentSpanId")
    return OtlpSpan(
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=parent,
        name=span.name,
        kind=_KINDS.get(span.kind, "unspecified"),
        start_ns=span.start_time_unix_nano,
        end_ns=span.end_time_unix_nano,
        status=_STATUSES.get(span.status.code, "unset"),
        status_message=span.status.message,
        attributes=_attributes(span.attributes),
        events=tuple(
            SpanEvent(e.name, e.time_unix_nano, _attributes(e.attributes)) for e in span.events
        ),
        resource=resource,
        index=index,
    )


def _id(raw: bytes, size: int, where: str) -> str:
    if len(raw) != size or not any(raw):
        shown = binascii.hexlify(raw).decode() or "empty"
        raise _Invalid(
            f"{where} must be {size} bytes, not all zero ({2 * size} hex digits in OTLP/JSON); "
            f"got {shown}",
            where,
        )
    return raw.hex()


def _attributes(pairs: Any) -> dict[str, Any]:
    """``KeyValue`` list -> dict (a repeated key keeps its last value)."""
    return {pair.key: _value(pair.value) for pair in pairs}


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind == "int_value":
        return value.int_value
    if kind == "double_value":
        return value.double_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "array_value":
        return [_value(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return _attributes(value.kvlist_value.values)
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    return None

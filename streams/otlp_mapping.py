"""OpenTelemetry GenAI spans -> v1 event documents. Pure: no Kafka, no clock.

:data:`MAPPING` is the one place that says which OpenTelemetry attribute fills which v1 field
(the README's "OpenTelemetry ingest" table is generated from it: ``python -m
streams.otlp_mapping --write README.md``, and a test keeps the two equal). Each row reads its
attribute names in order, the first present wins, from one *scope*:

``span``      the LLM-call span's attributes
``resource``  the attributes of the resource (service) that produced the span
``trace``     the span, its span events, the other spans of its trace, then the resource
``derived``   computed from the span itself (ids, times, status, events): the row says how

The documents are JSON-ready dicts, not validated here: they travel to the events topic as
native events do, and the triage validates both the same way (a span lacking what v1 requires,
e.g. no ``service.version`` for ``release``, is a dead letter there, with the usual reason).
Values the contract cannot hold are left out rather than refused (an ``image`` output type).

Semantic-conventions versions: the current attributes (``gen_ai.provider.name``,
``gen_ai.input.messages``...) come first; the older ones instrumentations still emit
(``gen_ai.system``, ``deployment.environment``, the event-based prompt/completion form, the
``gen_ai.prompt`` / ``gen_ai.completion`` attributes, flattened or JSON) are read after them.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal

import orjson

from streams.otlp_decode import OtlpSpan, SpanEvent
from streams.settings import OtlpSettings

Scope = Literal["span", "resource", "trace", "derived"]


@dataclass(frozen=True, slots=True)
class Context:
    """One LLM-call span and the trace it belongs to."""

    span: OtlpSpan
    trace: Sequence[OtlpSpan]
    settings: OtlpSettings


@dataclass(frozen=True, slots=True)
class Row:
    """How one v1 field is filled."""

    field: str
    """Dotted v1 path: ``usage.input_tokens``."""
    otel: tuple[str, ...]
    """OpenTelemetry names read, in order (for a derived row: what it reads, for the README)."""
    scope: Scope
    convert: Callable[[Any], Any] | None = None
    """Attribute value -> field value (None: leave the field out); as is when unset."""
    derive: Callable[[Context], Any] | None = None
    """For a derived row: the value from the context (None: leave the field out)."""
    setting: str | None = None
    """An ``otlp.*`` setting naming the attribute instead of ``otel`` (``release_attribute``)."""
    note: str = ""

    def names(self, settings: OtlpSettings) -> tuple[str, ...]:
        return (str(getattr(settings, self.setting)),) if self.setting else self.otel


# -- converters -----------------------------------------------------------------------------


def _text(value: Any) -> Any:
    if isinstance(value, str):
        return value or None
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return str(value)
    return None


def _text_list(value: Any) -> Any:
    if isinstance(value, str):
        parsed = _json(value)
        return [str(v) for v in parsed] if isinstance(parsed, list) else [value]
    if isinstance(value, list):
        return [str(v) for v in value]
    return None


def _ms_from_s(value: Any) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value * 1000.0
    return value  # not a number: the triage says so


def _output_type(value: Any) -> Any:
    return value if value in ("text", "json") else None


def _json(text: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return None


# -- lookups --------------------------------------------------------------------------------


def _scopes(context: Context, scope: Scope) -> Iterator[Mapping[str, Any]]:
    span = context.span
    if scope in ("span", "trace"):
        yield span.attributes
    if scope == "trace":
        for event in span.events:
            yield event.attributes
        for other in context.trace:
            if other is not span:
                yield other.attributes
                for event in other.events:
                    yield event.attributes
    if scope in ("resource", "trace"):
        yield span.resource


def _first(context: Context, names: Sequence[str], scope: Scope) -> Any:
    for attributes in _scopes(context, scope):
        for name in names:
            value = attributes.get(name)
            if value is not None:
                return value
    return None


# -- derived fields -------------------------------------------------------------------------


def rfc3339(ns: int) -> str:
    """Unix nanoseconds as an RFC 3339 UTC timestamp (microseconds kept)."""
    stamp = datetime.fromtimestamp(ns // 1_000_000_000, UTC)
    return stamp.replace(microsecond=(ns // 1000) % 1_000_000).isoformat()


def event_id(trace_id: str, span_id: str) -> str:
    """The event id of a span: the same on every replay, so the harvest counts it once."""
    return f"otel-{trace_id}-{span_id}"


def _event_id(context: Context) -> str:
    return event_id(context.span.trace_id, context.span.span_id)


def _timestamp(context: Context) -> str:
    return rfc3339(context.span.start_ns)


def _latency(context: Context) -> float | None:
    span = context.span
    return (span.end_ns - span.start_ns) / 1e6 if span.end_ns >= span.start_ns else None


def _status(context: Context) -> str:
    span = context.span
    failed = span.status == "error" or span.attributes.get("error.type") is not None
    return "error" if failed else "ok"


def _error_type(context: Context) -> Any:
    value = _text(context.span.attributes.get("error.type"))
    if value is not None:
        return value
    for event in context.span.events:
        if event.name == "exception" and event.attributes.get("exception.type"):
            return _text(event.attributes["exception.type"])
    return None


INPUT_EVENT_ROLES: Final = {
    "gen_ai.system.message": "system",
    "gen_ai.user.message": "user",
    "gen_ai.assistant.message": "assistant",
    "gen_ai.tool.message": "tool",
}
"""Span events of the older event-based form that carry one input message each."""


def _messages(value: Any, role: str) -> list[dict[str, Any]] | None:
    """A message list in v1 form from an attribute value: JSON text or structured, each
    message ``{role, parts: [...]}`` (current conventions) or ``{role, content}``; a bare
    string is one message of ``role``."""
    if isinstance(value, str):
        parsed = _json(value)
        value = parsed if isinstance(parsed, list | dict) else [{"role": role, "content": value}]
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        return None
    messages = []
    for item in value:
        if isinstance(item, str):
            item = {"content": item}
        if not isinstance(item, dict):
            continue
        message = dict(item)
        if "parts" in message and "content" not in message:
            parts = message.pop("parts")
            message["content"] = parts
            calls = [p for p in parts or () if isinstance(p, dict) and p.get("type") == "tool_call"]
            if calls and not message.get("tool_calls"):
                message["tool_calls"] = calls
        message["role"] = str(message.get("role") or role)
        messages.append(message)
    return messages


def _flattened(attributes: Mapping[str, Any], prefix: str) -> list[dict[str, Any]] | None:
    """``gen_ai.prompt.0.role`` / ``gen_ai.prompt.0.content`` ... as a message list."""
    pattern = re.compile(re.escape(prefix) + r"\.(\d+)\.(\w+)$")
    found: dict[int, dict[str, Any]] = {}
    for name, value in attributes.items():
        match = pattern.match(name)
        if match:
            found.setdefault(int(match[1]), {})[match[2]] = value
    if not found:
        return None
    return [
        {**message, "role": str(message.get("role") or "user")}
        for _, message in sorted(found.items())
    ]


def _event_body(event: SpanEvent) -> dict[str, Any]:
    """The body of an event-based message: ``gen_ai.event.content`` (JSON) or its attributes."""
    body = event.attributes.get("gen_ai.event.content")
    parsed = _json(body) if isinstance(body, str) else body
    if isinstance(parsed, dict):
        return parsed
    return dict(event.attributes)


def _event_messages(events: Sequence[SpanEvent]) -> list[dict[str, Any]] | None:
    messages = []
    for event in events:
        role = INPUT_EVENT_ROLES.get(event.name)
        if role is None:
            continue
        body = _event_body(event)
        message = {k: v for k, v in body.items() if k in ("content", "role", "tool_calls", "id")}
        if isinstance(message.get("tool_calls"), str):
            message["tool_calls"] = _json(message["tool_calls"])
        message["role"] = str(message.get("role") or role)
        messages.append(message)
    return messages or None


def _choices(events: Sequence[SpanEvent]) -> list[dict[str, Any]] | None:
    messages = []
    for event in events:
        if event.name != "gen_ai.choice":
            continue
        body = _event_body(event)
        raw = body.get("message")
        message = _json(raw) if isinstance(raw, str) else raw
        if not isinstance(message, dict):
            message = {
                "role": body.get("message.role"),
                "content": body.get("message.content", body.get("content")),
            }
        message = {k: v for k, v in message.items() if v is not None}
        if isinstance(message.get("tool_calls"), str):
            message["tool_calls"] = _json(message["tool_calls"])
        if body.get("finish_reason") is not None:
            message["finish_reason"] = str(body["finish_reason"])
        message["role"] = str(message.get("role") or "assistant")
        messages.append(message)
    return messages or None


def _legacy_event_attribute(events: Sequence[SpanEvent], name: str, attribute: str) -> Any:
    for event in events:
        if event.name == name and event.attributes.get(attribute) is not None:
            return event.attributes[attribute]
    return None


def _conversation(
    span: OtlpSpan,
    side: Literal["input", "output"],
    from_events: Callable[[Sequence[SpanEvent]], list[dict[str, Any]] | None],
    role: str,
) -> tuple[list[dict[str, Any]] | None, Any]:
    """One side's messages, by the first convention present: ``gen_ai.<side>.messages``, the
    event-based form, then the older ``gen_ai.prompt`` / ``gen_ai.completion`` (an attribute
    or a ``gen_ai.content.*`` event's, JSON); with that older value, as found."""
    attributes = span.attributes
    current = attributes.get(f"gen_ai.{side}.messages")
    messages = None if current is None else _messages(current, role)
    if messages is None:
        messages = from_events(span.events)
    legacy = None
    if messages is None:
        name, event = _LEGACY[side]
        legacy = attributes.get(name)
        if legacy is None:
            legacy = _legacy_event_attribute(span.events, event, name)
    return messages, legacy


_LEGACY: Final = {
    "input": ("gen_ai.prompt", "gen_ai.content.prompt"),
    "output": ("gen_ai.completion", "gen_ai.content.completion"),
}
"""The older conventions' attribute, and the event carrying it, for each side of a call."""


def _input_messages(context: Context) -> list[dict[str, Any]] | None:
    span = context.span
    messages, legacy = _conversation(span, "input", _event_messages, "user")
    if messages is None and legacy is not None:
        messages = _messages(legacy, "user")
    if messages is None:
        messages = _flattened(span.attributes, "gen_ai.prompt")
    system = span.attributes.get("gen_ai.system_instructions")
    if system is not None:
        parts = _json(system) if isinstance(system, str) else system
        content = parts if isinstance(parts, list | dict) else system
        messages = [{"role": "system", "content": content}, *(messages or ())]
    return messages


def _output(context: Context) -> dict[str, Any] | None:
    span = context.span
    messages, legacy = _conversation(span, "output", _choices, "assistant")
    if messages is None and legacy is not None:
        if isinstance(legacy, str) and not isinstance(_json(legacy), list | dict):
            return {"text": legacy}  # a completion-style call's plain text
        messages = _messages(legacy, "assistant")
    if messages is None:
        messages = _flattened(span.attributes, "gen_ai.completion")
        for message in messages or ():
            message.setdefault("role", "assistant")
    return None if messages is None else {"messages": messages}


def _finish_reasons(context: Context) -> list[str] | None:
    value = _text_list(context.span.attributes.get("gen_ai.response.finish_reasons"))
    if value is not None:
        return list(value)
    output = _output(context) or {}
    reasons = [
        str(m["finish_reason"]) for m in output.get("messages", ()) if m.get("finish_reason")
    ]
    return reasons or None


def _scores(context: Context) -> dict[str, Any] | None:
    scores = {}
    for event in context.span.events:
        if event.name != "gen_ai.evaluation.result":
            continue
        name = event.attributes.get("gen_ai.evaluation.name")
        value = event.attributes.get("gen_ai.evaluation.score.value")
        if isinstance(name, str) and name and value is not None:
            scores[name] = value
    return scores or None


SPAN_KINDS: Final = {
    "execute_tool": "tool",
    "retrieval": "retrieval",
    "embeddings": "embeddings",
    "invoke_agent": "agent",
    "create_agent": "agent",
    "chat": "llm",
    "text_completion": "llm",
    "generate_content": "llm",
}
"""``gen_ai.operation.name`` -> a child span's ``kind``; other spans keep their OTel span kind
(``internal``, ``client``, ``server``...)."""


def span_kind(span: OtlpSpan) -> str:
    operation = span.attributes.get("gen_ai.operation.name")
    return SPAN_KINDS.get(operation, span.kind) if isinstance(operation, str) else span.kind


def _child(span: OtlpSpan) -> dict[str, Any]:
    child: dict[str, Any] = {
        "name": span.name or "(unnamed)",
        "span_id": span.span_id,
        "kind": span_kind(span),
        "start_time": rfc3339(span.start_ns),
        "attributes": dict(span.attributes),
    }
    if span.parent_span_id is not None:
        child["parent_span_id"] = span.parent_span_id
    if span.end_ns >= span.start_ns:
        child["duration_ms"] = (span.end_ns - span.start_ns) / 1e6
    if span.status != "unset":
        child["status"] = span.status
    return child


def _spans(context: Context) -> list[dict[str, Any]] | None:
    children = [_child(s) for s in context.trace if s is not context.span]
    return children or None


def _labels(context: Context) -> dict[str, Any] | None:
    names = context.settings.label_attributes
    labels = {}
    for name in names:
        value = _text(_first(context, (name,), "trace"))
        if value is not None:
            labels[name] = value
    return labels or None


# -- the table ------------------------------------------------------------------------------

MAPPING: Final[tuple[Row, ...]] = (
    Row("event_id", ("trace_id", "span_id"), "derived", derive=_event_id,
        note="`otel-<trace_id>-<span_id>` (hex): the same on every replay"),
    Row("timestamp", ("start_time_unix_nano",), "derived", derive=_timestamp,
        note="span start, RFC 3339 UTC"),
    Row("service", ("service.name",), "resource", _text),
    Row("environment", ("deployment.environment.name", "deployment.environment"), "resource",
        _text, note="`production` when absent (the contract's default)"),
    Row("release", ("service.version",), "trace", _text, setting="release_attribute",
        note="`otlp.release_attribute` names another attribute; none: a `missing_field` "
             "dead letter"),
    Row("variant", ("feature_flag.result.variant",), "trace", _text,
        note="also from a `feature_flag.evaluation` span event; `baseline` when absent"),
    Row("operation", ("gen_ai.operation.name",), "span", _text),
    Row("provider", ("gen_ai.provider.name", "gen_ai.system"), "span", _text),
    Row("request_model", ("gen_ai.request.model",), "span", _text),
    Row("response_model", ("gen_ai.response.model",), "span", _text),
    Row("request.temperature", ("gen_ai.request.temperature",), "span"),
    Row("request.top_p", ("gen_ai.request.top_p",), "span"),
    Row("request.top_k", ("gen_ai.request.top_k",), "span"),
    Row("request.max_tokens", ("gen_ai.request.max_tokens",), "span"),
    Row("request.frequency_penalty", ("gen_ai.request.frequency_penalty",), "span"),
    Row("request.presence_penalty", ("gen_ai.request.presence_penalty",), "span"),
    Row("request.seed", ("gen_ai.request.seed",), "span"),
    Row("request.stop_sequences", ("gen_ai.request.stop_sequences",), "span", _text_list),
    Row("input.messages", ("gen_ai.system_instructions", "gen_ai.input.messages",
                           "`gen_ai.{system,user,assistant,tool}.message` events",
                           "gen_ai.prompt", "gen_ai.prompt.<n>.*"), "derived",
        derive=_input_messages,
        note="system instructions first; `parts` kept as the content; the older forms in "
             "this order when the current one is absent"),
    Row("output", ("gen_ai.output.messages", "`gen_ai.choice` events", "gen_ai.completion",
                   "gen_ai.completion.<n>.*"), "derived", derive=_output,
        note="`output.messages` (tool-call parts also as `tool_calls`); a plain-text "
             "completion as `output.text`"),
    Row("finish_reasons", ("gen_ai.response.finish_reasons",), "derived",
        derive=_finish_reasons, note="else the output messages' `finish_reason`"),
    Row("output_type", ("gen_ai.output.type",), "span", _output_type,
        note="`text` or `json`; other types are left out"),
    Row("latency_ms", ("end_time_unix_nano", "start_time_unix_nano"), "derived",
        derive=_latency, note="span duration"),
    Row("ttft_ms", ("gen_ai.response.time_to_first_chunk",), "span", _ms_from_s,
        note="seconds -> ms"),
    Row("usage.input_tokens", ("gen_ai.usage.input_tokens",), "span"),
    Row("usage.output_tokens", ("gen_ai.usage.output_tokens",), "span"),
    Row("usage.cached_input_tokens", ("gen_ai.usage.cache_read.input_tokens",), "span"),
    Row("usage.reasoning_tokens", ("gen_ai.usage.reasoning.output_tokens",), "span"),
    Row("status", ("status.code", "error.type"), "derived", derive=_status,
        note="`error` when the span status is ERROR or `error.type` is set, else `ok`"),
    Row("error_type", ("error.type", "`exception.type` of an `exception` event"), "derived",
        derive=_error_type),
    Row("scores", ("`gen_ai.evaluation.result` events",), "derived", derive=_scores,
        note="`{gen_ai.evaluation.name: gen_ai.evaluation.score.value}`"),
    Row("trace_id", ("trace_id",), "derived", derive=lambda c: c.span.trace_id, note="hex"),
    Row("span_id", ("span_id",), "derived", derive=lambda c: c.span.span_id, note="hex"),
    Row("spans", ("the trace's other spans",), "derived", derive=_spans,
        note="name, span_id, parent_span_id, kind (see below), start_time, duration_ms, "
             "status, attributes"),
    Row("attributes", ("otlp.label_attributes",), "derived", derive=_labels,
        note="the listed span or resource attributes, as text"),
)  # fmt: skip
"""Every v1 field OTLP fills, and from what."""


def is_llm_call(span: OtlpSpan, settings: OtlpSettings) -> bool:
    """Whether a span is an LLM call (one v1 event): its ``gen_ai.operation.name`` is one of
    ``otlp.event_operations``; without one (older instrumentations), when it names a provider
    (``gen_ai.provider.name`` / ``gen_ai.system``) and a ``gen_ai.request.model``."""
    attributes = span.attributes
    operation = attributes.get("gen_ai.operation.name")
    if operation is not None:
        return operation in settings.event_operations
    provider = attributes.get("gen_ai.provider.name") or attributes.get("gen_ai.system")
    return provider is not None and attributes.get("gen_ai.request.model") is not None


def to_event(span: OtlpSpan, trace: Sequence[OtlpSpan], settings: OtlpSettings) -> dict[str, Any]:
    """The v1 event document of an LLM-call span (JSON-ready, not validated)."""
    context = Context(span, trace, settings)
    document: dict[str, Any] = {"schema_version": "1"}
    for row in MAPPING:
        if row.derive is not None:
            value = row.derive(context)
        else:
            value = _first(context, row.names(settings), row.scope)
            if value is not None and row.convert is not None:
                value = row.convert(value)
        if value is not None:
            _put(document, row.field, value)
    return document


def _put(document: dict[str, Any], path: str, value: Any) -> None:
    *parents, name = path.split(".")
    for part in parents:
        document = document.setdefault(part, {})
    if isinstance(value, dict) and isinstance(document.get(name), dict):
        document[name].update(value)
    else:
        document[name] = value


# -- the README table -----------------------------------------------------------------------

BEGIN: Final = "<!-- otlp-mapping:begin (generated by python -m streams.otlp_mapping) -->"
END: Final = "<!-- otlp-mapping:end -->"


def markdown() -> str:
    """The mapping as the README's tables."""
    lines = [
        "| v1 field | from (first present wins) | scope | note |",
        "|---|---|---|---|",
    ]
    for row in MAPPING:
        names = ", ".join(name if " " in name else f"`{name}`" for name in row.otel)
        lines.append(f"| `{row.field}` | {names} | {row.scope} | {row.note} |")
    lines += [
        "",
        "A child span's `kind`, from its `gen_ai.operation.name`:",
        "",
        "| `gen_ai.operation.name` | `kind` |",
        "|---|---|",
        *(f"| `{operation}` | `{kind}` |" for operation, kind in SPAN_KINDS.items()),
        "| (none) | the OTel span kind: `internal`, `client`, `server`... |",
    ]
    return "\n".join(lines)


def rewrite(text: str) -> str:
    """``text`` with the block between the markers replaced by :func:`markdown`."""
    head, found, rest = text.partition(BEGIN)
    _, found_end, tail = rest.partition(END)
    if not found or not found_end:
        raise ValueError(f"the markers {BEGIN!r} and {END!r} are not both there")
    return f"{head}{BEGIN}\n{markdown()}\n{END}{tail}"


def main(argv: Sequence[str]) -> int:
    """``python -m streams.otlp_mapping [--write README.md]``: print or rewrite the table."""
    if len(argv) == 2 and argv[0] == "--write":
        path = Path(argv[1])
        try:
            path.write_text(rewrite(path.read_text(encoding="utf-8")), encoding="utf-8")
        except (OSError, ValueError) as exc:
            print(f"cannot rewrite {path}: {exc}", file=sys.stderr)
            return 1
        return 0
    if argv:
        print("usage: python -m streams.otlp_mapping [--write README.md]", file=sys.stderr)
        return 2
    print(markdown())
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

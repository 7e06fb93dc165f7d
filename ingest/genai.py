"""OpenTelemetry's GenAI semantic conventions (``gen_ai.*``) -> v1 fields: the table
:data:`ROWS`, and what reads the call's content. Pure.

Semantic-conventions versions: the current attributes (``gen_ai.provider.name``,
``gen_ai.input.messages``...) come first; the older ones instrumentations still emit
(``gen_ai.system``, the event-based prompt/completion form, the ``gen_ai.prompt`` /
``gen_ai.completion`` attributes and ``gen_ai.content.*`` events) are read after them.
Content that is not on the span (not captured, or sent as log records) leaves ``output`` and
``input.messages`` out: absent is not empty.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, Literal

from driftnet.ingest.fields import Context, Row, json_value, ms_from_s, output_type, text, text_list
from driftnet.ingest.otlp_proto import OtlpSpan, SpanEvent

INPUT_EVENT_ROLES: Final = {
    "gen_ai.system.message": "system",
    "gen_ai.user.message": "user",
    "gen_ai.assistant.message": "assistant",
    "gen_ai.tool.message": "tool",
}
"""Span events of the older event-based form that carry one input message each."""

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
"""An operation -> a child span's ``kind``; other spans keep their OTel span kind
(``internal``, ``client``, ``server``...)."""


def operation(span: OtlpSpan) -> str | None:
    """The span's ``gen_ai.operation.name``."""
    value = span.attributes.get("gen_ai.operation.name")
    return value if isinstance(value, str) else None


def is_call_without_operation(span: OtlpSpan) -> bool:
    """An older instrumentation's LLM call, without an operation name: it names a provider
    (``gen_ai.provider.name`` / ``gen_ai.system``) and a ``gen_ai.request.model``."""
    attributes = span.attributes
    provider = attributes.get("gen_ai.provider.name") or attributes.get("gen_ai.system")
    return provider is not None and attributes.get("gen_ai.request.model") is not None


def messages(value: Any, role: str) -> list[dict[str, Any]] | None:
    """A message list in v1 form from an attribute value: JSON text or structured, each
    message ``{role, parts: [...]}`` (current conventions) or ``{role, content}``; a bare
    string is one message of ``role``. Tool-call parts are also kept as ``tool_calls``."""
    if isinstance(value, str):
        parsed = json_value(value)
        value = parsed if isinstance(parsed, list | dict) else [{"role": role, "content": value}]
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        return None
    found = []
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
        found.append(message)
    return found


def _event_body(event: SpanEvent) -> dict[str, Any]:
    """The body of an event-based message: ``gen_ai.event.content`` (JSON) or its attributes."""
    body = event.attributes.get("gen_ai.event.content")
    parsed = json_value(body) if isinstance(body, str) else body
    if isinstance(parsed, dict):
        return parsed
    return dict(event.attributes)


def _event_messages(events: Sequence[SpanEvent]) -> list[dict[str, Any]] | None:
    found = []
    for event in events:
        role = INPUT_EVENT_ROLES.get(event.name)
        if role is None:
            continue
        body = _event_body(event)
        message = {k: v for k, v in body.items() if k in ("content", "role", "tool_calls", "id")}
        if isinstance(message.get("tool_calls"), str):
            message["tool_calls"] = json_value(message["tool_calls"])
        message["role"] = str(message.get("role") or role)
        found.append(message)
    return found or None


def _choices(events: Sequence[SpanEvent]) -> list[dict[str, Any]] | None:
    found = []
    for event in events:
        if event.name != "gen_ai.choice":
            continue
        body = _event_body(event)
        raw = body.get("message")
        message = json_value(raw) if isinstance(raw, str) else raw
        if not isinstance(message, dict):
            message = {
                "role": body.get("message.role"),
                "content": body.get("message.content", body.get("content")),
            }
        message = {k: v for k, v in message.items() if v is not None}
        if isinstance(message.get("tool_calls"), str):
            message["tool_calls"] = json_value(message["tool_calls"])
        if body.get("finish_reason") is not None:
            message["finish_reason"] = str(body["finish_reason"])
        message["role"] = str(message.get("role") or "assistant")
        found.append(message)
    return found or None


_LEGACY: Final = {
    "input": ("gen_ai.prompt", "gen_ai.content.prompt"),
    "output": ("gen_ai.completion", "gen_ai.content.completion"),
}
"""The older conventions' attribute, and the event carrying it, for each side of a call."""


def _legacy(span: OtlpSpan, side: Literal["input", "output"]) -> Any:
    """The older ``gen_ai.prompt`` / ``gen_ai.completion``: an attribute, or the attribute of
    a ``gen_ai.content.*`` event."""
    name, event_name = _LEGACY[side]
    value = span.attributes.get(name)
    if value is not None:
        return value
    for event in span.events:
        if event.name == event_name and event.attributes.get(name) is not None:
            return event.attributes[name]
    return None


def conversation(
    span: OtlpSpan,
    side: Literal["input", "output"],
    from_events: Callable[[Sequence[SpanEvent]], list[dict[str, Any]] | None],
    role: str,
) -> tuple[list[dict[str, Any]] | None, Any]:
    """One side's messages, by the first form present: ``gen_ai.<side>.messages``, then the
    event-based form; else (None, the older ``gen_ai.prompt`` / ``gen_ai.completion`` value)."""
    current = span.attributes.get(f"gen_ai.{side}.messages")
    found = None if current is None else messages(current, role)
    if found is None:
        found = from_events(span.events)
    return found, (_legacy(span, side) if found is None else None)


def with_system(span: OtlpSpan, found: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
    """``gen_ai.system_instructions`` as a first ``system`` message."""
    system = span.attributes.get("gen_ai.system_instructions")
    if system is None:
        return found
    parts = json_value(system) if isinstance(system, str) else system
    content = parts if isinstance(parts, list | dict) else system
    return [{"role": "system", "content": content}, *(found or ())]


def input_messages(context: Context) -> list[dict[str, Any]] | None:
    span = context.span
    found, legacy = conversation(span, "input", _event_messages, "user")
    if found is None and legacy is not None:
        found = messages(legacy, "user")
    return with_system(span, found)


def output(context: Context) -> dict[str, Any] | None:
    found, legacy = conversation(context.span, "output", _choices, "assistant")
    if found is None and legacy is not None:
        if isinstance(legacy, str) and not isinstance(json_value(legacy), list | dict):
            return {"text": legacy}  # a completion-style call's plain text
        found = messages(legacy, "assistant")
    return None if found is None else {"messages": found}


def finish_reasons_of(
    attributes: Mapping[str, Any], output: dict[str, Any] | None, *names: str
) -> list[str] | None:
    """The first of ``names`` present (a list or one reason), else the output messages'
    ``finish_reason``."""
    for name in names:
        value = text_list(attributes.get(name))
        if value:
            return list(value)
    reasons = [
        str(m["finish_reason"])
        for m in (output or {}).get("messages", ())
        if isinstance(m, dict) and m.get("finish_reason")
    ]
    return reasons or None


def _finish_reasons(context: Context) -> list[str] | None:
    return finish_reasons_of(
        context.span.attributes, output(context), "gen_ai.response.finish_reasons"
    )


ROWS: Final[tuple[Row, ...]] = (
    Row("operation", ("gen_ai.operation.name",), "span", text),
    Row("provider", ("gen_ai.provider.name", "gen_ai.system"), "span", text),
    Row("request_model", ("gen_ai.request.model",), "span", text),
    Row("response_model", ("gen_ai.response.model",), "span", text),
    Row("request.temperature", ("gen_ai.request.temperature",), "span"),
    Row("request.top_p", ("gen_ai.request.top_p",), "span"),
    Row("request.top_k", ("gen_ai.request.top_k",), "span"),
    Row("request.max_tokens", ("gen_ai.request.max_tokens",), "span"),
    Row("request.frequency_penalty", ("gen_ai.request.frequency_penalty",), "span"),
    Row("request.presence_penalty", ("gen_ai.request.presence_penalty",), "span"),
    Row("request.seed", ("gen_ai.request.seed",), "span"),
    Row("request.stop_sequences", ("gen_ai.request.stop_sequences",), "span", text_list),
    Row("input.messages", ("gen_ai.system_instructions", "gen_ai.input.messages",
                           "`gen_ai.{system,user,assistant,tool}.message` events",
                           "gen_ai.prompt"), "derived", derive=input_messages,
        note="system instructions first; `parts` kept as the content; the older forms in "
             "this order when the current one is absent; left out when not on the span"),
    Row("output", ("gen_ai.output.messages", "`gen_ai.choice` events", "gen_ai.completion"),
        "derived", derive=output,
        note="`output.messages` (tool-call parts also as `tool_calls`); a plain-text "
             "completion as `output.text`; left out when not on the span (not captured)"),
    Row("finish_reasons", ("gen_ai.response.finish_reasons",), "derived",
        derive=_finish_reasons, note="else the output messages' `finish_reason`"),
    Row("output_type", ("gen_ai.output.type",), "span", output_type,
        note="`text` or `json`; other types are left out"),
    Row("ttft_ms", ("gen_ai.response.time_to_first_chunk",), "span", ms_from_s,
        note="seconds -> ms"),
    Row("usage.input_tokens", ("gen_ai.usage.input_tokens",), "span"),
    Row("usage.output_tokens", ("gen_ai.usage.output_tokens",), "span"),
    Row("usage.cached_input_tokens", ("gen_ai.usage.cache_read.input_tokens",), "span"),
    Row("usage.reasoning_tokens", ("gen_ai.usage.reasoning.output_tokens",), "span"),
)  # fmt: skip
"""The call's fields of a GenAI-conventions span, and from what."""

"""OpenLLMetry (traceloop's ``opentelemetry-instrumentation-*``) spans -> v1 fields: the table
:data:`ROWS`. Pure.

OpenLLMetry writes the GenAI conventions' names where they exist and its own beside them
(``opentelemetry-semantic-conventions-ai``'s ``SpanAttributes``): current releases
``gen_ai.input.messages`` / ``gen_ai.output.messages``, ``gen_ai.usage.reasoning_tokens``,
``gen_ai.usage.total_tokens``, ``gen_ai.is_streaming``; releases before its move to the GenAI
conventions (2026) ``llm.request.type``, the content flattened per message
(``gen_ai.prompt.<n>.role`` / ``.content`` / ``.tool_calls.<m>.name``...,
``gen_ai.completion.<n>.content`` / ``.refusal`` / ``.finish_reason``...),
``gen_ai.usage.prompt_tokens`` / ``completion_tokens``, ``llm.usage.total_tokens``,
``gen_ai.usage.cache_read_input_tokens``, ``llm.frequency_penalty``... Each row reads the
GenAI name first, so a GenAI span read by this table loses nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from driftnet.ingest.fields import Context, Row, indexed, json_value, text, text_list
from driftnet.ingest.genai import finish_reasons_of, messages, with_system
from driftnet.ingest.otlp_proto import OtlpSpan

REQUEST_TYPES: Final = {
    "chat": "chat",
    "completion": "text_completion",
    "embedding": "embeddings",
}
"""``llm.request.type`` -> the GenAI operation name (other values are kept as sent)."""

MARKERS: Final = (
    "llm.request.type",
    "llm.usage.total_tokens",
    "gen_ai.usage.total_tokens",
    "llm.is_streaming",
    "gen_ai.is_streaming",
)
"""Attributes only OpenLLMetry writes: one of them (or a ``gen_ai.prompt.<n>.*`` /
``gen_ai.completion.<n>.*`` attribute) makes a span an OpenLLMetry one."""


def detect(span: OtlpSpan) -> bool:
    """Whether a span was written by OpenLLMetry."""
    attributes = span.attributes
    if any(name in attributes for name in MARKERS):
        return True
    return any(
        name.startswith(("gen_ai.prompt.", "gen_ai.completion.")) and name.split(".")[2].isdigit()
        for name in attributes
    )


def operation(span: OtlpSpan) -> str | None:
    """``gen_ai.operation.name``, else ``llm.request.type`` in GenAI terms."""
    current = span.attributes.get("gen_ai.operation.name")
    if isinstance(current, str):
        return current
    older = span.attributes.get("llm.request.type")
    return REQUEST_TYPES.get(older, older) if isinstance(older, str) else None


def _tool_calls(value: Any) -> list[dict[str, Any]] | None:
    calls = [c for c in value if isinstance(c, dict)] if isinstance(value, list) else []
    return calls or None


def _flattened(attributes: Mapping[str, Any], prefix: str, role: str) -> list[dict[str, Any]]:
    """``<prefix>.<n>.role`` / ``.content`` / ``.tool_calls.<m>.*``... as v1 messages."""
    found = []
    for item in indexed(attributes, prefix) or ():
        if not isinstance(item, dict):
            continue
        message = {k: v for k, v in item.items() if k != "tool_calls"}
        content = message.get("content")
        if role == "user" and isinstance(content, str) and content.startswith("[{"):
            parts = json_value(content)  # list content (text and image parts), as JSON
            message["content"] = parts if isinstance(parts, list) else content
        if message.get("content") is None and isinstance(message.get("refusal"), str):
            message["content"] = message["refusal"]  # a refusal is the answer's text
        calls = _tool_calls(item.get("tool_calls"))
        if calls is not None:
            message["tool_calls"] = calls
        message["role"] = str(message.get("role") or role)
        found.append(message)
    return found


def _input_messages(context: Context) -> list[dict[str, Any]] | None:
    attributes = context.span.attributes
    current = attributes.get("gen_ai.input.messages")
    found = None if current is None else messages(current, "user")
    if found is None:
        found = _flattened(attributes, "gen_ai.prompt", "user") or None
    return with_system(context.span, found)


def _output(context: Context) -> dict[str, Any] | None:
    attributes = context.span.attributes
    current = attributes.get("gen_ai.output.messages")
    found = None if current is None else messages(current, "assistant")
    if found is None:
        found = _flattened(attributes, "gen_ai.completion", "assistant")
        # metadata only (a finish reason, filter results): content was not captured
        if not any("content" in m or "tool_calls" in m for m in found):
            found = []
    return {"messages": found} if found else None


def _finish_reasons(context: Context) -> list[str] | None:
    attributes = context.span.attributes
    reasons = finish_reasons_of(
        attributes,
        _output(context),
        "gen_ai.response.finish_reasons",
        "gen_ai.response.finish_reason",
        "llm.response.finish_reason",
    )
    if reasons is None:  # content off: the flattened finish reasons are still there
        found = indexed(attributes, "gen_ai.completion") or ()
        reasons = [str(m["finish_reason"]) for m in found
                   if isinstance(m, dict) and m.get("finish_reason")] or None  # fmt: skip
    return reasons


ROWS: Final[tuple[Row, ...]] = (
    Row("operation", ("gen_ai.operation.name", "llm.request.type"), "derived",
        derive=lambda c: operation(c.span),
        note="`llm.request.type` `completion` -> `text_completion`, `embedding` -> "
             "`embeddings`"),
    Row("provider", ("gen_ai.provider.name", "gen_ai.system"), "span", text),
    Row("request_model", ("gen_ai.request.model",), "span", text),
    Row("response_model", ("gen_ai.response.model",), "span", text),
    Row("request.temperature", ("gen_ai.request.temperature",), "span"),
    Row("request.top_p", ("gen_ai.request.top_p",), "span"),
    Row("request.top_k", ("gen_ai.request.top_k", "llm.top_k"), "span"),
    Row("request.max_tokens", ("gen_ai.request.max_tokens",), "span"),
    Row("request.frequency_penalty", ("gen_ai.request.frequency_penalty",
                                      "llm.frequency_penalty"), "span"),
    Row("request.presence_penalty", ("gen_ai.request.presence_penalty",
                                     "llm.presence_penalty"), "span"),
    Row("request.seed", ("gen_ai.request.seed",), "span"),
    Row("request.stop_sequences", ("gen_ai.request.stop_sequences", "llm.chat.stop_sequences"),
        "span", text_list),
    Row("input.messages", ("gen_ai.input.messages", "gen_ai.prompt.<n>.*"), "derived",
        derive=_input_messages,
        note="`gen_ai.prompt.<n>.role`, `.content`, `.tool_call_id`, `.tool_calls.<m>.*`; "
             "left out when content is off (`TRACELOOP_TRACE_CONTENT=false`)"),
    Row("output", ("gen_ai.output.messages", "gen_ai.completion.<n>.*"), "derived",
        derive=_output,
        note="`output.messages`; a `.refusal` without `.content` is the message's content; "
             "left out when content is off"),
    Row("finish_reasons", ("gen_ai.response.finish_reasons", "gen_ai.response.finish_reason",
                           "llm.response.finish_reason"), "derived", derive=_finish_reasons,
        note="else the output messages' (or `gen_ai.completion.<n>.finish_reason`)"),
    Row("usage.input_tokens", ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens"),
        "span"),
    Row("usage.output_tokens", ("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens"),
        "span"),
    Row("usage.cached_input_tokens", ("gen_ai.usage.cache_read.input_tokens",
                                      "gen_ai.usage.cache_read_input_tokens"), "span"),
    Row("usage.reasoning_tokens", ("gen_ai.usage.reasoning.output_tokens",
                                   "gen_ai.usage.reasoning_tokens",
                                   "llm.usage.reasoning_tokens"), "span"),
    Row("usage.total_tokens", ("gen_ai.usage.total_tokens", "llm.usage.total_tokens"), "span",
        note="kept beside the contract's usage fields"),
)  # fmt: skip
"""The call's fields of an OpenLLMetry span, and from what."""

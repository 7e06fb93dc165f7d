"""OpenInference (Arize's ``openinference-instrumentation-*``) spans -> v1 fields: the table
:data:`ROWS`. Pure.

Names from ``openinference-semantic-conventions`` (``SpanAttributes``, ``MessageAttributes``,
``MessageContentAttributes``, ``ToolCallAttributes``): a call is a span whose
``openinference.span.kind`` is ``LLM``; its messages are flattened per index
(``llm.input_messages.<n>.message.role`` / ``.content`` / ``.contents.<m>.message_content.text``
/ ``.tool_calls.<m>.tool_call.function.name``...), its request parameters one JSON object
(``llm.invocation_parameters``), its whole request and response ``input.value`` /
``output.value`` (with ``*.mime_type``), its failure the span status and an ``exception`` event.
Read natively whether or not ``OPENINFERENCE_ENABLE_GENAI_SEMCONV`` also wrote ``gen_ai.*``
copies (those drop an empty answer and put the response model in ``gen_ai.request.model``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from driftnet.ingest.fields import Context, Row, indexed, json_value, text, text_list
from driftnet.ingest.otlp_proto import OtlpSpan

KIND: Final = "openinference.span.kind"
REDACTED: Final = "__REDACTED__"
"""What OpenInference writes in place of hidden content (``OPENINFERENCE_HIDE_*``): content
not captured, never the answer."""
JSON_MIME: Final = "application/json"

OPERATIONS: Final = {
    "TOOL": "execute_tool",
    "RETRIEVER": "retrieval",
    "EMBEDDING": "embeddings",
    "AGENT": "invoke_agent",
}
"""Span kind -> the GenAI operation name (``LLM``: ``chat``, or ``text_completion`` with
``llm.prompts``), as OpenInference's own GenAI conversion names them."""

PARAMETERS: Final = {
    "request.temperature": ("temperature",),
    "request.top_p": ("top_p",),
    "request.top_k": ("top_k",),
    "request.max_tokens": ("max_tokens", "max_completion_tokens", "max_output_tokens"),
    "request.frequency_penalty": ("frequency_penalty",),
    "request.presence_penalty": ("presence_penalty",),
    "request.seed": ("seed",),
    "request.stop_sequences": ("stop", "stop_sequences"),
}
"""v1 request field -> keys of ``llm.invocation_parameters``, first present wins."""


def detect(span: OtlpSpan) -> bool:
    """Whether a span was written by OpenInference."""
    return KIND in span.attributes


def operation(span: OtlpSpan) -> str | None:
    """The span kind as a GenAI operation name (``gen_ai.operation.name`` when set)."""
    attributes = span.attributes
    explicit = attributes.get("gen_ai.operation.name")
    if isinstance(explicit, str):
        return explicit
    kind = attributes.get(KIND)
    if not isinstance(kind, str):
        return None
    if kind.upper() == "LLM":
        completion = any(k.startswith(("llm.prompts", "llm.choices")) for k in attributes)
        return "text_completion" if completion else "chat"
    return OPERATIONS.get(kind.upper())


def _parameters(span: OtlpSpan) -> dict[str, Any]:
    value = span.attributes.get("llm.invocation_parameters")
    parsed = json_value(value) if isinstance(value, str) else value
    return parsed if isinstance(parsed, dict) else {}


def _parameter(field: str) -> Row:
    keys = PARAMETERS[field]

    def derive(context: Context) -> Any:
        parameters = _parameters(context.span)
        for key in keys:
            if parameters.get(key) is not None:
                value = parameters[key]
                return text_list(value) if field == "request.stop_sequences" else value
        return None

    names = " / ".join(f"`{key}`" for key in keys)
    return Row(field, (f"{names} of `llm.invocation_parameters`",), "derived", derive=derive)


def _request_model(context: Context) -> Any:
    attributes = context.span.attributes
    return text(
        attributes.get("llm.request.model_name")
        or _parameters(context.span).get("model")
        or attributes.get("llm.model_name")
    )


def _captured(value: Any) -> bool:
    return value is not None and value != REDACTED


def _message(item: Any, role: str) -> dict[str, Any] | None:
    """One ``llm.*_messages.<n>`` entry as a v1 message (hidden content left out)."""
    body = item.get("message") if isinstance(item, dict) else None
    if not isinstance(body, dict):
        return None
    message: dict[str, Any] = {"role": str(body.get("role") or role)}
    if _captured(body.get("content")):
        message["content"] = body["content"]
    contents = body.get("contents")
    if "content" not in message and isinstance(contents, list):
        parts = []
        for entry in contents:
            part = entry.get("message_content") if isinstance(entry, dict) else None
            if isinstance(part, dict) and _captured(part.get("text", "")):
                parts.append({k: v for k, v in part.items() if v is not None})
        if parts:
            message["content"] = parts
    calls = []
    for entry in body.get("tool_calls") or ():
        call = entry.get("tool_call") if isinstance(entry, dict) else None
        if isinstance(call, dict):
            calls.append({"type": "function", **call})
    if calls:
        message["tool_calls"] = calls
    message.update(
        {k: v for k, v in body.items() if k in ("name", "tool_call_id") and v is not None}
    )
    return message


def _messages(attributes: Mapping[str, Any], prefix: str, role: str) -> list[dict[str, Any]]:
    found = [_message(item, role) for item in indexed(attributes, prefix) or ()]
    return [m for m in found if m is not None]


def _hidden(item: Any) -> bool:
    """Whether an output message's text was hidden (``OPENINFERENCE_HIDE_OUTPUT_TEXT``)."""
    body = item.get("message") if isinstance(item, dict) else None
    if not isinstance(body, dict):
        return False
    parts = [e.get("message_content") for e in body.get("contents") or () if isinstance(e, dict)]
    texts = [body.get("content"), *(p.get("text") for p in parts if isinstance(p, dict))]
    return REDACTED in texts


def _value(span: OtlpSpan, side: str) -> Any:
    """``input.value`` / ``output.value``: parsed when its mime type is JSON; None when hidden."""
    value = span.attributes.get(f"{side}.value")
    if not _captured(value):
        return None
    if span.attributes.get(f"{side}.mime_type") == JSON_MIME and isinstance(value, str):
        return json_value(value)
    return value


def _input_messages(context: Context) -> list[dict[str, Any]] | None:
    span = context.span
    found = _messages(span.attributes, "llm.input_messages", "user")
    if found:
        return found
    request = _value(span, "input")
    if isinstance(request, dict) and isinstance(request.get("messages"), list):
        return [m for m in request["messages"] if isinstance(m, dict)] or None
    return None


def _output(context: Context) -> dict[str, Any] | None:
    span = context.span
    items = indexed(span.attributes, "llm.output_messages") or []
    found = []
    for item in items:
        message = _message(item, "assistant")
        if message is None:
            continue
        if "content" not in message and "tool_calls" not in message and not _hidden(item):
            # OpenInference writes the role and skips an empty content: an empty answer
            # (hidden text is __REDACTED__; hidden messages are not written at all)
            message["content"] = ""
        found.append(message)
    if any("content" in m or "tool_calls" in m for m in found):
        return {"messages": found}
    response = _value(span, "output")
    if isinstance(response, dict):
        choices = response.get("choices")
        if isinstance(choices, list):
            messages = [c["message"] for c in choices
                        if isinstance(c, dict) and isinstance(c.get("message"), dict)]  # fmt: skip
            return {"messages": messages} if messages else None
        return None
    return {"text": response} if isinstance(response, str) else None


def _finish_reasons(context: Context) -> list[str] | None:
    span = context.span
    response = _value(span, "output")
    choices = response.get("choices") if isinstance(response, dict) else None
    if isinstance(choices, list):
        reasons = [str(c["finish_reason"]) for c in choices
                   if isinstance(c, dict) and c.get("finish_reason")]  # fmt: skip
        if reasons:
            return reasons
    value = text(span.attributes.get("llm.finish_reason"))
    return None if value is None else [value]


def _output_type(context: Context) -> str | None:
    response_format = _parameters(context.span).get("response_format")
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    return "json" if kind in ("json_object", "json_schema") else None


ROWS: Final[tuple[Row, ...]] = (
    Row("operation", (KIND, "gen_ai.operation.name"), "derived",
        derive=lambda c: operation(c.span),
        note="`LLM` -> `chat` (`text_completion` with `llm.prompts`), `EMBEDDING` -> "
             "`embeddings`, `TOOL` -> `execute_tool`, `RETRIEVER` -> `retrieval`, `AGENT` -> "
             "`invoke_agent`"),
    Row("provider", ("llm.provider", "llm.system"), "span", text),
    Row("request_model", ("llm.request.model_name", "`model` of `llm.invocation_parameters`",
                          "llm.model_name"), "derived", derive=_request_model),
    Row("response_model", ("llm.response.model_name", "llm.model_name"), "span", text),
    *(_parameter(field) for field in PARAMETERS),
    Row("input.messages", ("llm.input_messages.<n>.message.*", "`messages` of input.value"),
        "derived", derive=_input_messages,
        note="`role`, `content` or `contents.<m>.message_content.*` as parts, "
             "`tool_calls.<m>.tool_call.*`; `__REDACTED__` (hidden) is left out"),
    Row("output", ("llm.output_messages.<n>.message.*", "`choices` of output.value",
                   "output.value"), "derived", derive=_output,
        note="a message without content or tool calls is an empty answer (OpenInference "
             "skips an empty content); text `output.value` as `output.text`; left out when "
             "hidden (`OPENINFERENCE_HIDE_OUTPUTS`...)"),
    Row("finish_reasons", ("`finish_reason` of output.value's `choices`", "llm.finish_reason"),
        "derived", derive=_finish_reasons,
        note="`llm.finish_reason` holds the first choice's only"),
    Row("output_type", ("`response_format.type` of `llm.invocation_parameters`",), "derived",
        derive=_output_type, note="`json_object` / `json_schema` -> `json`"),
    Row("usage.input_tokens", ("llm.token_count.prompt",), "span"),
    Row("usage.output_tokens", ("llm.token_count.completion",), "span"),
    Row("usage.cached_input_tokens", ("llm.token_count.prompt_details.cache_read",
                                      "llm.token_count.prompt_details.cache_input"), "span"),
    Row("usage.reasoning_tokens", ("llm.token_count.completion_details.reasoning",), "span"),
    Row("usage.total_tokens", ("llm.token_count.total",), "span",
        note="kept beside the contract's usage fields"),
)  # fmt: skip
"""The call's fields of an OpenInference span, and from what."""

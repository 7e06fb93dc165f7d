"""The OTLP -> v1 mapping table: GenAI spans of the current and the older semantic conventions
become valid v1 events with the right fields; the docs show the table the code uses."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import orjson
import pytest

from driftnet.contract.decode import decode
from driftnet.contract.events import InferenceEvent, Lineage, otel_mapping
from driftnet.ingest.fields import COMMON
from driftnet.ingest.genai import ROWS as GENAI
from driftnet.ingest.mapping import CONVENTIONS, is_llm_call, markdown, rewrite, to_event
from driftnet.ingest.otlp_proto import OtlpSpan, SpanEvent, decode_spans
from driftnet.ingest.settings import OtlpSettings
from tests.conftest import ROOT
from tests.support.otel_client import Instrumented, llm_call, proto

SETTINGS = OtlpSettings()
TRACE = "0af7651916cd43dd8448eb211c80319c"
RESOURCE = {
    "service.name": "support-chat",
    "service.version": "r7",
    "deployment.environment.name": "staging",
}


def make_span(
    span_id: str = "b7ad6b7169203331",
    *,
    parent: str | None = None,
    attributes: Mapping[str, Any] | None = None,
    events: Sequence[SpanEvent] = (),
    resource: Mapping[str, Any] = RESOURCE,
    status: Literal["unset", "ok", "error"] = "unset",
    name: str = "chat gpt-4o",
) -> OtlpSpan:
    return OtlpSpan(
        TRACE,
        span_id,
        parent,
        name,
        "client",
        1_764_072_000_000_000_000,
        1_764_072_000_820_000_000,
        status,
        "",
        dict(attributes or {}),
        tuple(events),
        resource,
    )


def validated(span: OtlpSpan, trace: Sequence[OtlpSpan] = (), **settings: Any) -> InferenceEvent:
    options = SETTINGS.model_copy(update=settings)
    return InferenceEvent.model_validate(to_event(span, trace or (span,), options))


def test_a_current_conventions_span_from_the_sdk_maps_every_field() -> None:
    """A chat span recorded with the SDK: cohort, model, usage, content, times, scores, spans."""
    app = Instrumented({**RESOURCE, "feature_flag.result.variant": "canary"})
    with app.tracer.start_as_current_span("POST /chat"):
        with app.tracer.start_as_current_span("search") as search:
            search.set_attribute("gen_ai.operation.name", "retrieval")
        attributes = {
            "gen_ai.usage.cache_read.input_tokens": 100,
            "gen_ai.usage.reasoning.output_tokens": 7,
            "gen_ai.response.time_to_first_chunk": 0.25,
            "gen_ai.system_instructions": json.dumps([{"type": "text", "content": "Be brief."}]),
            "gen_ai.output.type": "json",
        }
        with llm_call(app.tracer, attributes=attributes) as call:
            call.add_event(
                "gen_ai.evaluation.result",
                {"gen_ai.evaluation.name": "relevance", "gen_ai.evaluation.score.value": 0.75},
            )
    spans = decode_spans(proto(app.take())).spans
    [chat] = [s for s in spans if is_llm_call(s, SETTINGS)]
    event = validated(chat, spans)
    assert event.cohort == ("support-chat", "staging", "r7", "canary")
    assert event.event_id == f"otel-{chat.trace_id}-{chat.span_id}"
    assert (event.trace_id, event.span_id) == (chat.trace_id, chat.span_id)
    assert (event.provider, event.operation, event.request_model, event.response_model) == (
        "openai",
        "chat",
        "gpt-4o",
        "gpt-4o-2024-08-06",
    )
    assert event.request.temperature == 0.2
    assert event.usage.model_dump() == {
        "input_tokens": 120,
        "output_tokens": 30,
        "cached_input_tokens": 100,
        "reasoning_tokens": 7,
    }
    assert event.finish_reasons == ["stop"]
    assert event.ttft_ms == 250.0
    assert event.output_type == "json"
    assert [m.role for m in event.input.messages] == ["system", "user"]
    assert event.input.messages[1].content == [{"type": "text", "content": "Where is my order?"}]
    assert event.output_text == "It ships tomorrow."
    assert event.scores == {"relevance": 0.75}
    assert event.status == "ok"
    assert event.latency_ms == pytest.approx((chat.end_ns - chat.start_ns) / 1e6)
    assert event.timestamp.timestamp() == pytest.approx(chat.start_ns / 1e9, abs=1e-6)
    assert sorted((s.name, s.kind) for s in event.spans) == [
        ("POST /chat", "internal"),
        ("search", "retrieval"),
    ]


def test_older_attribute_names_are_read_after_the_current_ones() -> None:
    """``gen_ai.system`` and ``deployment.environment``: the names of earlier conventions."""
    older = {"service.name": "s", "service.version": "r", "deployment.environment": "prod-eu"}
    span = make_span(
        attributes={"gen_ai.system": "anthropic", "gen_ai.request.model": "claude"}, resource=older
    )
    assert is_llm_call(span, SETTINGS)  # no operation name: a provider and a model suffice
    event = validated(span)
    assert (event.provider, event.environment, event.operation) == ("anthropic", "prod-eu", None)
    both = make_span(
        attributes={
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.system": "old",
        }
    )
    assert validated(both).provider == "openai"


def test_the_event_based_prompt_and_completion_form() -> None:
    """Span events ``gen_ai.system/user.message`` and ``gen_ai.choice`` carry the content."""
    events = (
        SpanEvent("gen_ai.system.message", 1, {"content": "Be brief."}),
        SpanEvent(
            "gen_ai.user.message", 2, {"gen_ai.event.content": '{"content": "Where is my order?"}'}
        ),
        SpanEvent(
            "gen_ai.choice",
            3,
            {
                "index": 0,
                "finish_reason": "length",
                "message": '{"role": "assistant", "content": "It ships"}',
            },
        ),
    )
    event = validated(make_span(attributes={"gen_ai.operation.name": "chat"}, events=events))
    assert [(m.role, m.content) for m in event.input.messages] == [
        ("system", "Be brief."),
        ("user", "Where is my order?"),
    ]
    assert event.output_text == "It ships"
    assert event.finish_reasons == ["length"]


@pytest.mark.parametrize(
    "attributes",
    [
        pytest.param(
            {
                "gen_ai.prompt": '[{"role": "user", "content": "Hi"}]',
                "gen_ai.completion": '[{"role": "assistant", "content": "Hello"}]',
            },
            id="json-attributes",
        ),
        pytest.param(
            {
                "gen_ai.prompt.0.role": "user",
                "gen_ai.prompt.0.content": "Hi",
                "gen_ai.completion.0.role": "assistant",
                "gen_ai.completion.0.content": "Hello",
                "gen_ai.completion.0.finish_reason": "stop",
            },
            id="flattened-attributes",
        ),
    ],
)
def test_the_gen_ai_prompt_and_completion_attributes(attributes: dict[str, Any]) -> None:
    """``gen_ai.prompt`` / ``gen_ai.completion``, as JSON or flattened per message."""
    event = validated(make_span(attributes={"gen_ai.operation.name": "chat", **attributes}))
    assert [(m.role, m.content) for m in event.input.messages] == [("user", "Hi")]
    assert event.output_text == "Hello"


def test_content_events_and_a_plain_text_completion() -> None:
    """``gen_ai.content.prompt`` / ``.completion`` events; a bare completion string is text."""
    events = (
        SpanEvent("gen_ai.content.prompt", 1, {"gen_ai.prompt": "Say hi"}),
        SpanEvent("gen_ai.content.completion", 2, {"gen_ai.completion": "hi"}),
    )
    event = validated(
        make_span(attributes={"gen_ai.operation.name": "text_completion"}, events=events)
    )
    assert [(m.role, m.content) for m in event.input.messages] == [("user", "Say hi")]
    assert (event.output.text, event.output_text) == ("hi", "hi")


def test_tool_call_parts_count_as_an_answer() -> None:
    """An output message of tool-call parts keeps them as ``tool_calls`` (not an empty answer)."""
    output = [
        {
            "role": "assistant",
            "parts": [{"type": "tool_call", "name": "lookup", "arguments": {"id": 7}}],
        }
    ]
    span = make_span(
        attributes={"gen_ai.operation.name": "chat", "gen_ai.output.messages": json.dumps(output)}
    )
    event = validated(span)
    assert event.has_tool_calls
    assert event.output_text == ""


def test_error_status_and_error_type() -> None:
    """A span with status ERROR (or ``error.type``) is an error event, its type as sent (the
    contract, not the mapping, reduces a class name to its bare name)."""
    failed = validated(
        make_span(attributes={"gen_ai.operation.name": "chat", "error.type": "timeout"})
    )
    assert (failed.status, failed.error_type) == ("error", "timeout")
    exception = SpanEvent("exception", 1, {"exception.type": "openai.RateLimitError"})
    span = make_span(attributes={"gen_ai.operation.name": "chat"}, status="error",
                     events=(exception,))  # fmt: skip
    raised = to_event(span, (span,), SETTINGS)
    assert (raised["status"], raised["error_type"]) == ("error", "openai.RateLimitError")
    assert validated(span).status == "error"
    assert (
        validated(make_span(attributes={"gen_ai.operation.name": "chat"}, status="ok")).status
        == "ok"
    )


def test_release_and_variant_come_from_the_trace_and_a_setting() -> None:
    """``otlp.release_attribute`` picks the release; a feature-flag event sets the variant."""
    flag = SpanEvent(
        "feature_flag.evaluation",
        1,
        {"feature_flag.key": "model-rollout", "feature_flag.result.variant": "canary"},
    )
    root = make_span(
        "1111111111111111",
        name="POST /chat",
        events=(flag,),
        attributes={"app.release": "gpt-4o+prompt-v8"},
    )
    chat = make_span(parent=root.span_id, attributes={"gen_ai.operation.name": "chat"})
    event = validated(chat, (root, chat), release_attribute="app.release")
    assert (event.release, event.variant) == ("gpt-4o+prompt-v8", "canary")
    assert validated(chat, (root, chat)).release == "r7"


def test_label_attributes_are_copied_as_text() -> None:
    """``otlp.label_attributes`` copies span or resource attributes into ``attributes``."""
    span = make_span(
        attributes={"gen_ai.operation.name": "chat", "app.tier": 2},
        resource={**RESOURCE, "app.tenant": "acme"},
    )
    event = validated(span, label_attributes=("app.tenant", "app.tier", "app.absent"))
    assert event.attributes == {"app.tenant": "acme", "app.tier": "2"}


def test_a_span_without_a_release_is_a_missing_field_dead_letter_in_the_triage() -> None:
    """What v1 requires and the span lacks is dead-lettered by the triage, like a native event."""
    span = make_span(
        attributes={"gen_ai.operation.name": "chat"}, resource={"service.name": "support-chat"}
    )
    decoded = decode(orjson.dumps([to_event(span, (span,), SETTINGS)]), Lineage("e", 0, 0))
    [dead] = decoded.dead_letters
    assert (dead.reason, dead.field) == ("missing_field", "release")


def test_only_the_configured_operations_are_llm_calls() -> None:
    """Tool, agent, retrieval and embedding spans are child spans, not events."""
    for operation in ("execute_tool", "invoke_agent", "embeddings", "retrieval"):
        assert not is_llm_call(make_span(attributes={"gen_ai.operation.name": operation}), SETTINGS)
    embeddings = SETTINGS.model_copy(update={"event_operations": ("embeddings",)})
    assert is_llm_call(make_span(attributes={"gen_ai.operation.name": "embeddings"}), embeddings)
    assert not is_llm_call(make_span(attributes={"http.route": "/chat"}), SETTINGS)


def test_the_table_covers_every_v1_field_that_names_an_otel_attribute() -> None:
    """events.py's ``x-otel`` names and the GenAI table agree (one table, no second copy)."""
    table = {row.field: row.otel for row in (*COMMON, *GENAI)}
    for field, otel in otel_mapping().items():
        if field == "scores":
            assert "`gen_ai.evaluation.result` events" in table["scores"]
            continue
        parent = field.split(".")[0]
        names = table.get(field, table.get(parent, ()))
        assert otel in names or (parent in ("input", "output") and otel in table[parent]), field
    for convention in CONVENTIONS:
        fields = [row.field for row in (*COMMON, *convention.rows)]
        assert len(set(fields)) == len(fields), convention.name


def test_docs_show_the_mapping_table_of_the_code() -> None:
    """docs/opentelemetry.md's mapping tables are the generated ones (``make docs``)."""
    text = (ROOT / "docs" / "opentelemetry.md").read_text(encoding="utf-8")
    assert rewrite(text) == text, (
        "run: python -m driftnet.ingest.mapping --write docs/opentelemetry.md"
    )
    assert markdown() in text


def test_an_older_openllmetry_span_with_flattened_content() -> None:
    """OpenLLMetry before its GenAI move: ``llm.request.type``, ``gen_ai.prompt.<n>.*`` with
    tool calls, a refusal as ``.refusal``, ``gen_ai.usage.prompt_tokens``, ``llm.usage.*``."""
    span = make_span(
        attributes={
            "llm.request.type": "chat",
            "gen_ai.system": "openai",
            "gen_ai.request.model": "gpt-4o",
            "llm.frequency_penalty": 0.5,
            "gen_ai.prompt.0.role": "user",
            "gen_ai.prompt.0.content": "Cancel order 7",
            "gen_ai.prompt.1.role": "assistant",
            "gen_ai.prompt.1.tool_calls.0.id": "call_1",
            "gen_ai.prompt.1.tool_calls.0.name": "cancel",
            "gen_ai.prompt.1.tool_calls.0.arguments": '{"id": 7}',
            "gen_ai.completion.0.role": "assistant",
            "gen_ai.completion.0.refusal": "I'm sorry, but I can't help with that.",
            "gen_ai.completion.0.finish_reason": "stop",
            "gen_ai.usage.prompt_tokens": 30,
            "gen_ai.usage.completion_tokens": 9,
            "gen_ai.usage.reasoning_tokens": 4,
            "gen_ai.usage.cache_read_input_tokens": 10,
            "llm.usage.total_tokens": 39,
        }
    )
    assert is_llm_call(span, SETTINGS)
    event = validated(span)
    assert (event.operation, event.provider, event.request.frequency_penalty) == (
        "chat",
        "openai",
        0.5,
    )
    assert event.input.messages[1].model_extra == {
        "tool_calls": [{"id": "call_1", "name": "cancel", "arguments": '{"id": 7}'}]
    }
    assert event.output_text == "I'm sorry, but I can't help with that."
    assert event.finish_reasons == ["stop"]
    assert event.usage.model_dump() == {"input_tokens": 30, "output_tokens": 9,
                                        "cached_input_tokens": 10, "reasoning_tokens": 4,
                                        "total_tokens": 39}  # fmt: skip


def test_openinference_tool_calls_parts_parameters_and_hidden_content() -> None:
    """OpenInference: ``contents`` parts, tool calls, invocation parameters, and
    ``__REDACTED__`` read as content not captured."""
    parameters = {"model": "gpt-4o", "temperature": 0, "stop": "END",
                  "response_format": {"type": "json_object"}}  # fmt: skip
    attributes = {
        "openinference.span.kind": "LLM",
        "llm.provider": "azure",
        "llm.invocation_parameters": json.dumps(parameters),
        "llm.input_messages.0.message.role": "user",
        "llm.input_messages.0.message.contents.0.message_content.type": "text",
        "llm.input_messages.0.message.contents.0.message_content.text": "Cancel order 7",
        "llm.output_messages.0.message.role": "assistant",
        "llm.output_messages.0.message.tool_calls.0.tool_call.id": "call_1",
        "llm.output_messages.0.message.tool_calls.0.tool_call.function.name": "cancel",
        "llm.token_count.prompt_details.cache_read": 12,
    }
    event = validated(make_span(attributes=attributes))
    assert (event.operation, event.provider, event.request_model) == ("chat", "azure", "gpt-4o")
    assert (event.request.temperature, event.request.stop_sequences) == (0, ["END"])
    assert event.output_type == "json"
    assert event.input.messages[0].content == [{"type": "text", "text": "Cancel order 7"}]
    assert event.has_tool_calls
    assert event.usage.cached_input_tokens == 12
    hidden = {**attributes, "llm.output_messages.0.message.content": "__REDACTED__",
              "output.value": "__REDACTED__"}  # fmt: skip
    del hidden["llm.output_messages.0.message.tool_calls.0.tool_call.id"]
    del hidden["llm.output_messages.0.message.tool_calls.0.tool_call.function.name"]
    document = to_event(make_span(attributes=hidden), (), SETTINGS)
    assert "output" not in document
    del hidden["llm.output_messages.0.message.content"]  # written, but empty: an empty answer
    document = to_event(make_span(attributes=hidden), (), SETTINGS)
    assert document["output"] == {"messages": [{"role": "assistant", "content": ""}]}

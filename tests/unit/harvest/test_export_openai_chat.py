"""`driftnet export --format openai-chat` writes messages OpenAI's own chat types accept, from
events built from OpenTelemetry spans (message parts) and from native OpenAI-style events;
`--format eval` keeps the recorded parts."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Required

import pytest
from click.testing import CliRunner
from openai.types.chat import ChatCompletionFunctionToolParam, ChatCompletionMessageParam
from opentelemetry.util.genai.types import Blob as BlobPart
from opentelemetry.util.genai.types import CompactionPart, InputMessage
from opentelemetry.util.genai.types import File as FilePart
from opentelemetry.util.genai.types import Reasoning as ReasoningPart
from opentelemetry.util.genai.types import ServerToolCall as ServerToolCallPart
from opentelemetry.util.genai.types import Text as TextPart
from opentelemetry.util.genai.types import ToolCallRequest as ToolCallRequestPart
from opentelemetry.util.genai.types import ToolCallResponse as ToolCallResponsePart
from opentelemetry.util.genai.types import Uri as UriPart
from opentelemetry.util.genai.utils import gen_ai_json_dumps

# opentelemetry-util-genai 1.1 (the release the official openai-v2 instrumentation works with)
# names the semantic conventions' message parts Text, Blob...; 1.3 calls them TextPart,
# BlobPart... The serialized parts are the same.
from pydantic import TypeAdapter
from typing_extensions import TypedDict

from driftnet.cli.main import cli
from driftnet.contract.events import InferenceEvent, Lineage
from driftnet.harvest.exports import ExportTally, export_items
from driftnet.harvest.openai_chat import Conversion, Unrepresentable, convert_messages
from driftnet.harvest.records import Reason, rule_failure
from driftnet.ingest.mapping import is_llm_call, to_event
from driftnet.ingest.otlp_proto import decode_spans
from driftnet.ingest.settings import OtlpSettings
from driftnet.storage.schema import record_document, row_of
from tests.support.harvest_data import failure, write_failures
from tests.support.otel_client import Instrumented, proto

RESOURCE = {"service.name": "support-chat", "service.version": "r7"}
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="


class ChatFineTuningExample(TypedDict, total=False):
    """One line of an OpenAI chat fine-tuning file (supervised), after OpenAI's documentation:
    the messages, and the tools they may call."""

    messages: Required[list[ChatCompletionMessageParam]]
    tools: list[ChatCompletionFunctionToolParam]
    parallel_tool_calls: bool


MESSAGE = TypeAdapter[ChatCompletionMessageParam](ChatCompletionMessageParam)
EXAMPLE = TypeAdapter(ChatFineTuningExample)


def materialized(value: Any) -> Any:
    """``value`` with the lazy iterables pydantic returns for OpenAI's ``Iterable[...]`` fields
    consumed (which validates their items) and turned into lists."""
    if isinstance(value, dict):
        return {key: materialized(item) for key, item in value.items()}
    if isinstance(value, str | bytes):
        return value
    if isinstance(value, list | Iterator):
        return [materialized(item) for item in value]
    return value


def assert_openai_chat(line: dict[str, Any]) -> None:
    """``line`` is a chat fine-tuning example every message of which OpenAI's chat types take
    whole (nothing ignored), its tool messages answer earlier tool calls, images come only from
    users, and it ends with the assistant's answer."""
    assert materialized(EXAMPLE.validate_python(line)) == line
    calls: set[str] = set()
    for message in line["messages"]:
        assert materialized(MESSAGE.validate_python(message)) == message, message
        calls.update(call["id"] for call in message.get("tool_calls", ()))
        if message["role"] == "tool":
            assert message["tool_call_id"] in calls
        if message["role"] != "user" and isinstance(message.get("content"), list):
            assert all(part["type"] == "text" for part in message["content"])
    assert line["messages"][-1]["role"] == "assistant"
    assert isinstance(line["messages"][-1]["content"], str)


def span_event(messages: Sequence[InputMessage], system: Sequence[TextPart] = ()) -> InferenceEvent:
    """The v1 event driftnet makes of a chat span whose messages an instrumentation recorded
    with OpenTelemetry's GenAI types, serialized the way ``opentelemetry-util-genai`` does."""
    app = Instrumented(RESOURCE)
    with app.tracer.start_as_current_span("chat gpt-4o") as span:
        span.set_attributes(
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "gpt-4o",
                "gen_ai.input.messages": gen_ai_json_dumps([asdict(m) for m in messages]),
            }
        )
        if system:
            span.set_attribute(
                "gen_ai.system_instructions", gen_ai_json_dumps([asdict(p) for p in system])
            )
    [chat] = [s for s in decode_spans(proto(app.take())).spans if is_llm_call(s, OtlpSettings())]
    return InferenceEvent.model_validate(to_event(chat, (chat,), OtlpSettings()))


def document(event: InferenceEvent) -> dict[str, Any]:
    """The record document the export reads for a failure of ``event`` (through Parquet's row)."""
    record = rule_failure(
        event, [Reason(rule_id="refusal", message="!")], Lineage("f", 0, 0), datetime.now(UTC)
    )
    return record_document(row_of(record))


def chat_line(event: InferenceEvent) -> tuple[list[dict[str, Any]], ExportTally]:
    """The openai-chat lines of one labelled failure of ``event``."""
    tally = ExportTally()
    label = {"label": "bad", "correction": "Your order A1 ships today.", "label_note": None}
    return list(export_items([(document(event), label)], "openai-chat", tally)), tally


TOOL_CONVERSATION = [
    InputMessage("user", [TextPart("Where is order A1?")]),
    InputMessage(
        "assistant",
        [
            ReasoningPart("The user wants order status; call the lookup tool."),
            TextPart("Let me check."),
            ToolCallRequestPart(arguments={"order": "A1"}, name="lookup", id="call_a"),
        ],
    ),
    InputMessage("tool", [ToolCallResponsePart(response={"status": "packed"}, id="call_a")]),
    InputMessage("user", [TextPart("So when does it ship?")]),
]


def test_otel_text_tool_call_and_tool_response_parts_become_openai_chat() -> None:
    """Text parts become text, a tool_call part an assistant tool_calls entry with JSON-text
    arguments, a tool_call_response part a tool message with its tool_call_id; reasoning is
    left out and counted; the line validates against OpenAI's chat types."""
    event = span_event(TOOL_CONVERSATION, system=[TextPart("Be brief.")])
    [line], tally = chat_line(event)
    assert_openai_chat(line)
    assert line["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Where is order A1?"},
        {
            "role": "assistant",
            "content": "Let me check.",
            "tool_calls": [
                {
                    "id": "call_a",
                    "type": "function",
                    "function": {"name": "lookup", "arguments": '{"order":"A1"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_a", "content": '{"status":"packed"}'},
        {"role": "user", "content": "So when does it ship?"},
        {"role": "assistant", "content": "Your order A1 ships today."},
    ]
    assert (tally.written, tally.reasoning_dropped) == (1, 1)
    assert tally.summary("x") == (
        "exported 1 rows to x; left out 1 reasoning parts "
        "(OpenAI chat messages have no place for them)"
    )


def test_images_become_image_url_parts_of_the_user_message() -> None:
    """A user message's image blob becomes a data: URL, an image URI the URL itself, beside
    its text as OpenAI text parts."""
    event = span_event(
        [
            InputMessage(
                "user",
                [
                    TextPart("What is on these?"),
                    BlobPart(mime_type="image/png", modality="image", content=PNG.encode()),
                    UriPart(mime_type=None, modality="image", uri="https://x.test/a.jpg"),
                ],
            )
        ]
    )
    [line], _ = chat_line(event)
    assert_openai_chat(line)
    blob = asdict(BlobPart(mime_type="image/png", modality="image", content=PNG.encode()))
    encoded = json.loads(gen_ai_json_dumps(blob))["content"]
    assert line["messages"][0] == {
        "role": "user",
        "content": [
            {"type": "text", "text": "What is on these?"},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{encoded}"}},
            {"type": "image_url", "image_url": {"url": "https://x.test/a.jpg"}},
        ],
    }


def test_tool_calls_without_ids_get_made_up_ids_their_responses_share() -> None:
    """A tool call recorded without an id gets ``call_<n>``, and the next response without an
    id answers it, so the pair still validates."""
    event = span_event(
        [
            InputMessage("user", [TextPart("Weather?")]),
            InputMessage("assistant", [ToolCallRequestPart(arguments=None, name="now", id=None)]),
            InputMessage("tool", [ToolCallResponsePart(response="sunny", id=None)]),
        ]
    )
    [line], _ = chat_line(event)
    assert_openai_chat(line)
    assert line["messages"][1]["tool_calls"][0]["id"] == "call_1"
    assert line["messages"][1]["tool_calls"][0]["function"]["arguments"] == "{}"
    assert line["messages"][2] == {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}


@pytest.mark.parametrize(
    ("part", "why"),
    [
        (
            ServerToolCallPart(name="web_search", server_tool_call={"q": "x"}),
            "a 'server_tool_call' part in a user message",
        ),
        (CompactionPart(content="earlier turns"), "a 'compaction' part in a user message"),
        (
            FilePart(mime_type="application/pdf", modality="document", file_id="file-1"),
            "a document file part in a user message",
        ),
        (
            BlobPart(mime_type="audio/wav", modality="audio", content=b"RIFF"),
            "an audio blob part in a user message",
        ),
    ],
    ids=["server-tool-call", "compaction", "file-id", "audio-blob"],
)
def test_a_part_openai_chat_cannot_hold_leaves_the_row_out_and_says_why(
    part: Any, why: str
) -> None:
    """A conversation with a part fine-tuning cannot take is left out whole (its text is not
    silently kept without it), counted under what it held, and named in the summary."""
    event = span_event([InputMessage("user", [TextPart("Look at this"), part])])
    lines, tally = chat_line(event)
    assert lines == []
    assert tally.unrepresentable == {why: 1}
    assert tally.summary("x") == (
        f"exported 0 rows to x; left out 1 conversations OpenAI chat cannot hold (1 with {why})"
    )


def test_an_image_from_the_assistant_or_an_unknown_role_is_refused() -> None:
    """OpenAI chat takes images only from users, and only its own roles."""
    image: dict[str, Any] = {
        "type": "uri",
        "modality": "image",
        "mime_type": None,
        "uri": "https://x.test/a.png",
    }
    with pytest.raises(Unrepresentable, match="an image in an assistant message"):
        convert_messages([{"role": "assistant", "content": [image]}], Conversion())
    with pytest.raises(Unrepresentable, match="a message of role 'model'"):
        convert_messages([{"role": "model", "content": "hi"}], Conversion())


NATIVE = [
    {"role": "system", "content": "Be brief.", "name": "policy"},
    {
        "role": "user",
        "content": [
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": "https://x.test/a.png", "detail": "low"}},
        ],
    },
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}}
        ],
    },
    {"role": "tool", "content": "42", "tool_call_id": "c1"},
    {"role": "assistant", "content": [{"type": "text", "text": "It is 42."}]},
    {"role": "user", "content": "Thanks"},
]


def test_native_openai_style_messages_export_unchanged() -> None:
    """A v1 event whose messages are OpenAI-style already is exported exactly as recorded."""
    event = InferenceEvent.model_validate(failure("n1", input={"messages": NATIVE}).event)
    [line], tally = chat_line(event)
    assert line["messages"][:-1] == NATIVE
    assert_openai_chat(line)
    assert tally.summary("x") == "exported 1 rows to x"


def test_older_event_form_tool_messages_and_object_arguments_are_converted() -> None:
    """The older event-based form: a tool message's ``id`` is its tool_call_id, and tool call
    arguments recorded as an object become JSON text."""
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": "Weather?"},
        {
            "role": "assistant",
            "tool_calls": [
                {"id": "c9", "type": "function", "function": {"name": "w", "arguments": {"d": 1}}}
            ],
        },
        {"role": "tool", "content": "sunny", "id": "c9"},
    ]
    converted = convert_messages(messages, Conversion())
    assert converted[1]["tool_calls"][0]["function"]["arguments"] == '{"d":1}'
    assert converted[2] == {"role": "tool", "tool_call_id": "c9", "content": "sunny"}
    assert_openai_chat({"messages": [*converted, {"role": "assistant", "content": "ok"}]})


def test_eval_keeps_the_recorded_otel_parts() -> None:
    """`eval` lines carry the input messages as recorded: OpenTelemetry parts, reasoning and
    all, not converted."""
    event = span_event(TOOL_CONVERSATION)
    [item] = export_items(
        [(document(event), {"label": None, "correction": None, "label_note": None})],
        "eval",
        ExportTally(),
    )
    recorded = [m.model_dump(exclude_none=True) for m in event.input.messages]
    assert [{k: v for k, v in m.items() if v is not None} for m in item["input"]] == recorded
    assert item["input"][1]["content"][0] == {
        "type": "reasoning",
        "content": "The user wants order status; call the lookup tool.",
    }
    assert item["input"][2]["content"] == [
        {"type": "tool_call_response", "response": {"status": "packed"}, "id": "call_a"}
    ]


def test_cli_exports_otel_conversations_as_openai_chat_and_eval_as_recorded(
    runner: CliRunner, location: Path, tmp_path: Path
) -> None:
    """Through the harvest and the CLI: the openai-chat file validates line by line against
    OpenAI's types and names what it left out; the eval file keeps the parts."""
    event = span_event(TOOL_CONVERSATION, system=[TextPart("Be brief.")])
    audio = span_event(
        [InputMessage("user", [BlobPart(mime_type="audio/wav", modality="audio", content=b"R")])]
    )
    records = [
        rule_failure(e, [Reason(rule_id="refusal", message="!")], Lineage("f", 0, i), now)
        for i, (e, now) in enumerate([(event, datetime.now(UTC)), (audio, datetime.now(UTC))])
    ]
    write_failures(location, records)
    for record in records:
        result = runner.invoke(
            cli, ["label", record.event.event_id, "--label", "bad", "--correction", "Today."]
        )
        assert result.exit_code == 0, result.output
    out = tmp_path / "chat.jsonl"
    result = runner.invoke(cli, ["export", "--format", "openai-chat", "-o", str(out)])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 1
    for line in lines:
        assert_openai_chat(line)
    assert "1 conversations OpenAI chat cannot hold (1 with an audio blob part" in result.output
    out = tmp_path / "eval.jsonl"
    result = runner.invoke(cli, ["export", "--format", "eval", "-o", str(out)])
    assert result.exit_code == 0, result.output
    items = [json.loads(line) for line in out.read_text().splitlines()]
    by_id = {item["id"]: item for item in items}
    assert by_id[event.event_id]["input"][1]["content"] == [
        {"type": "text", "content": "Where is order A1?"}
    ]


def test_a_failure_without_captured_input_is_left_out_of_both_and_counted() -> None:
    """Content not captured: no prompt to replay or learn from, so neither format writes the
    row; the summary says why. A captured input with an uncaptured answer is in eval with
    ``actual`` null (absent, not an empty answer)."""
    blind = InferenceEvent.model_validate(
        {"event_id": "blind", "timestamp": "2026-11-25T00:00:00Z", "service": "s",
         "release": "r", "status": "ok", "usage": {"output_tokens": 0}}
    )  # fmt: skip
    label = {"label": "bad", "correction": "Fine.", "label_note": None}
    for export_format in ("openai-chat", "eval"):
        tally = ExportTally()
        assert list(export_items([(document(blind), label)], export_format, tally)) == []
        assert tally.without_input == 1
        assert "1 failures whose input was not captured" in tally.summary("x.jsonl")
    asked = InferenceEvent.model_validate(
        {**blind.model_dump(mode="json"), "event_id": "asked",
         "input": {"messages": [{"role": "user", "content": "Hi"}]}}
    )  # fmt: skip
    [item] = export_items([(document(asked), label)], "eval", ExportTally())
    assert item["actual"] is None
    assert item["actual_messages"] == []

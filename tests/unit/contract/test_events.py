"""The v1 event contract: what is required, what defaults, what is kept, what is refused."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from driftnet.contract.events import Cohort, InferenceEvent, otel_mapping
from tests.support.factories import make_event


def test_minimal_event_gets_defaults() -> None:
    """Only event_id, timestamp, service, release and status are required; the rest defaults."""
    event = InferenceEvent.model_validate(
        {
            "event_id": "e",
            "timestamp": "2026-11-25T12:00:00Z",
            "service": "s",
            "release": "r",
            "status": "ok",
        }
    )
    assert event.schema_version == "1"
    assert event.environment == "production"
    assert event.variant == "baseline"
    assert event.output_type == "text"
    assert event.scores == {}
    assert event.latency_ms is None
    assert event.cohort == Cohort("s", "production", "r", "baseline")
    assert event.cohort.key == "s/production/r/baseline"


@pytest.mark.parametrize(
    "missing",
    ["event_id", "timestamp", "service", "release", "status"],
    ids=lambda name: f"without-{name}",
)
def test_required_fields(missing: str) -> None:
    """Each required field, when absent, is reported by its name."""
    document = make_event()
    del document[missing]
    with pytest.raises(ValidationError) as caught:
        InferenceEvent.model_validate(document)
    assert caught.value.errors()[0]["loc"] == (missing,)


def test_unknown_fields_are_kept_and_serialised() -> None:
    """Fields this build does not know travel with the event, at every level."""
    event = InferenceEvent.model_validate(
        make_event(sampled_by="router-3", usage={"input_tokens": 1, "audio_tokens": 7})
    )
    assert event.model_extra == {"sampled_by": "router-3"}
    dumped = event.model_dump(mode="json")
    assert dumped["sampled_by"] == "router-3"
    assert dumped["usage"]["audio_tokens"] == 7


@pytest.mark.parametrize(
    ("timestamp", "expected"),
    [
        pytest.param("2026-11-25T12:00:00Z", datetime(2026, 11, 25, 12, tzinfo=UTC), id="zulu"),
        pytest.param(
            "2026-11-25T13:30:00+01:30", datetime(2026, 11, 25, 12, tzinfo=UTC), id="offset-to-utc"
        ),
        pytest.param(
            "2026-11-25T12:00:00.250000Z",
            datetime(2026, 11, 25, 12, 0, 0, 250000, tzinfo=UTC),
            id="fraction",
        ),
    ],
)
def test_timestamps_are_rfc3339_in_utc(timestamp: str, expected: datetime) -> None:
    """RFC 3339 timestamps with any offset are stored in UTC."""
    event = InferenceEvent.model_validate(make_event(timestamp=timestamp))
    assert event.timestamp == expected
    assert event.timestamp.utcoffset() is not None
    assert event.timestamp.utcoffset().total_seconds() == 0  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        pytest.param("timestamp", "2026-11-25T12:00:00", id="timestamp-without-offset"),
        pytest.param("timestamp", 1764072000, id="timestamp-as-epoch-number"),
        pytest.param("timestamp", "yesterday", id="timestamp-not-a-date"),
        pytest.param("status", "failed", id="status-unknown"),
        pytest.param("latency_ms", -5, id="latency-negative"),
        pytest.param("ttft_ms", "fast", id="ttft-not-a-number"),
        pytest.param("cost_usd", -0.01, id="cost-negative"),
        pytest.param("usage", {"input_tokens": -1}, id="tokens-negative"),
        pytest.param("usage", {"output_tokens": 1.5}, id="tokens-fractional"),
        pytest.param("feedback", {"rating": 2}, id="rating-above-one"),
        pytest.param("scores", {"faithfulness": "high"}, id="score-not-a-number"),
        pytest.param("event_id", "", id="event-id-empty"),
        pytest.param("service", "x" * 300, id="service-too-long"),
        pytest.param("output_type", "xml", id="output-type-unknown"),
        pytest.param("input", {"messages": [{"content": "hi"}]}, id="message-without-role"),
        pytest.param("finish_reasons", "stop", id="finish-reasons-not-a-list"),
    ],
)
def test_invalid_values_are_refused(field: str, value: Any) -> None:
    """Wrong types and impossible values on the fields the detectors read are refused."""
    with pytest.raises(ValidationError) as caught:
        InferenceEvent.model_validate(make_event(**{field: value}))
    assert caught.value.errors()[0]["loc"][0] == field


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        pytest.param("status", "ERROR", "error", id="status-case-insensitive"),
        pytest.param("output_type", "JSON", "json", id="output-type-case-insensitive"),
        pytest.param("schema_version", 1, "1", id="schema-version-as-integer"),
    ],
)
def test_lenient_spellings(field: str, value: Any, expected: str) -> None:
    """A few harmless spellings producers use are normalised rather than refused."""
    event = InferenceEvent.model_validate(make_event(**{field: value}))
    assert getattr(event, field) == expected


@pytest.mark.parametrize(
    ("output", "text", "tool_calls"),
    [
        pytest.param({"text": "plain"}, "plain", False, id="completion-text"),
        pytest.param(
            {
                "messages": [
                    {"role": "assistant", "content": "a"},
                    {"role": "assistant", "content": "b"},
                ]
            },
            "ab",
            False,
            id="messages-joined",
        ),
        pytest.param(
            {"messages": [{"role": "assistant", "content": [{"type": "text", "text": "x"}, "y"]}]},
            "xy",
            False,
            id="content-parts",
        ),
        pytest.param(
            {
                "messages": [
                    {"role": "assistant", "content": None, "tool_calls": [{"name": "lookup"}]}
                ]
            },
            "",
            True,
            id="tool-call-only",
        ),
        pytest.param({}, "", False, id="no-output"),
    ],
)
def test_output_text(output: dict[str, Any], text: str, tool_calls: bool) -> None:
    """The answer's text is found in plain text, messages or content parts."""
    event = InferenceEvent.model_validate(make_event(output=output))
    assert event.output_text == text
    assert event.has_tool_calls is tool_calls


def test_message_content_is_not_walked() -> None:
    """Content of any shape is carried as sent: validation stays off the content."""
    odd = {"role": "user", "content": {"deeply": [{"nested": [1, 2, {"x": None}]}]}}
    event = InferenceEvent.model_validate(make_event(input={"messages": [odd]}))
    assert event.input.messages[0].content == odd["content"]


def test_otel_mapping_names_gen_ai_attributes() -> None:
    """Contract fields map to the OpenTelemetry names the OTel ingest will read."""
    mapping = otel_mapping()
    assert mapping["request_model"] == "gen_ai.request.model"
    assert mapping["usage.input_tokens"] == "gen_ai.usage.input_tokens"
    assert mapping["variant"] == "feature_flag.result.variant"
    assert mapping["request.temperature"] == "gen_ai.request.temperature"
    assert all(name.count(".") >= 1 for name in mapping.values())


def test_json_schema_is_complete() -> None:
    """The published JSON Schema lists the required fields and carries the OTel names."""
    schema = InferenceEvent.model_json_schema()
    assert set(schema["required"]) == {"event_id", "timestamp", "service", "release", "status"}
    assert schema["properties"]["provider"]["x-otel"] == "gen_ai.provider.name"
    assert schema["additionalProperties"] is True


@pytest.mark.parametrize(
    ("output", "captured"),
    [
        pytest.param(..., False, id="left-out"),
        pytest.param(None, False, id="null"),
        pytest.param({}, False, id="empty-object"),
        pytest.param({"messages": None}, False, id="messages-null"),
        pytest.param({"messages": [{"role": "assistant"}]}, False, id="metadata-only"),
        pytest.param(
            {"messages": [{"role": "assistant", "content": None}]}, False, id="null-content"
        ),
        pytest.param({"messages": []}, True, id="empty-list"),
        pytest.param({"text": ""}, True, id="empty-text"),
        pytest.param(
            {"messages": [{"role": "assistant", "content": ""}]}, True, id="empty-content"
        ),
        pytest.param(
            {"messages": [{"role": "assistant", "tool_calls": [{"id": "c1"}]}]}, True, id="tools"
        ),
    ],
)
def test_absent_content_is_not_empty_content(output: Any, captured: bool) -> None:
    """An event whose producer did not capture the answer is told apart from an empty answer."""
    document = make_event(output=output)
    if output is ...:
        del document["output"]
    event = InferenceEvent.model_validate(document)
    assert event.output_captured is captured
    assert InferenceEvent.model_validate(event.model_dump(mode="json")).output_captured is captured


def test_input_captured() -> None:
    """Input messages left out are not captured; sent ones are, however short."""
    document = make_event()
    del document["input"]
    assert InferenceEvent.model_validate(document).input_captured is False
    assert (
        InferenceEvent.model_validate(make_event(input={"messages": None})).input_captured is False
    )
    assert InferenceEvent.model_validate(make_event()).input_captured is True


@pytest.mark.parametrize(
    ("sent", "bare"),
    [
        ("<class 'openai.InternalServerError'>", "InternalServerError"),
        ("openai.InternalServerError", "InternalServerError"),
        ("InternalServerError", "InternalServerError"),
        ("openai._exceptions.RateLimitError", "RateLimitError"),
        ("java.net.SocketTimeoutException", "SocketTimeoutException"),
        ("<class 'TimeoutError'>", "TimeoutError"),
        ("500", "500"),
        ("timeout", "timeout"),
        ("_OTHER", "_OTHER"),
        ("gen_ai.timeout", "gen_ai.timeout"),
    ],
)
def test_error_type_is_the_bare_class_name(sent: str, bare: str) -> None:
    """One error spelt three ways by three clients is one error type; the original is kept."""
    event = InferenceEvent.model_validate(make_event(status="error", error_type=sent))
    assert event.error_type == bare
    assert event.error_type_original == (None if sent == bare else sent)
    again = InferenceEvent.model_validate(event.model_dump(mode="json"))
    assert (again.error_type, again.error_type_original) == (
        event.error_type,
        event.error_type_original,
    )

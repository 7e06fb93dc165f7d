"""The harvest's Parquet schema: every contract field survives a file and DuckDB, unchanged."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from driftnet.contract.events import InferenceEvent
from driftnet.harvest.records import FailureRecord, Reason
from driftnet.storage.query import Harvest
from driftnet.storage.schema import (
    FAILURE_SCHEMA,
    METADATA_KEY,
    SCHEMA_VERSION,
    record_document,
    row_of,
)
from tests.support.harvest_data import DETECTED_AT, failure, write_failures

FULL_EVENT: dict[str, Any] = {
    "event_id": "evt-full",
    "timestamp": "2026-11-25T13:30:00.123456+01:00",  # stored as UTC
    "schema_version": 1,
    "service": "billing/eu assistant",  # needs percent-encoding as a folder name
    "environment": "staging",
    "release": "claude+prompt-v9",
    "variant": "canary",
    "prompt_version": "v9.2",
    "provider": "anthropic",
    "operation": "chat",
    "request_model": "claude-x",
    "response_model": "claude-x-2026",
    "request": {
        "temperature": 0.2,
        "top_p": 0.9,
        "top_k": 40.0,
        "max_tokens": 512,
        "frequency_penalty": 0.1,
        "presence_penalty": -0.3,
        "seed": 42,
        "stop_sequences": ["\n\nUser:", "END"],
        "response_format": {"type": "json_object"},
        "logit_bias": {"50256": -100},
        "parallel_tool_calls": False,
    },
    "input": {
        "messages": [
            {"role": "system", "content": "You are terse."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is in "},
                    {"type": "image_url", "image_url": {"url": "https://x.test/a.png"}},
                    "this picture?",
                ],
                "name": "alice",
            },
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
                ],
            },
            {"role": "tool", "content": "", "tool_call_id": "c1"},
        ],
        "conversation_id": "conv-9",
    },
    "output": {
        "messages": [
            {"role": "assistant", "content": '{"answer": "a cat"}', "refusal": None},
            {"role": "assistant", "content": [{"type": "text", "text": "part"}]},
        ],
        "text": '{"answer": "a cat"}',
        "logprobs": [-0.1, -0.2],
    },
    "finish_reasons": ["stop", "tool_calls"],
    "output_type": "JSON",
    "latency_ms": 1234.5,
    "ttft_ms": 87.25,
    "usage": {
        "input_tokens": 1000,
        "output_tokens": 200,
        "cached_input_tokens": 300,
        "reasoning_tokens": 50,
        "audio_tokens": 7,
    },
    "cost_usd": 0.0421,
    "status": "error",
    "error_type": "openai.RateLimitError",  # kept as sent in error_type_original
    "scores": {"faithfulness": 0.12, "toxicity": 0.9, "relevance": 1.0},
    "feedback": {"rating": -1.0, "comment": "wrong", "source": "thumbs"},
    "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
    "span_id": "00f067aa0ba902b7",
    "spans": [
        {
            "name": "retrieve",
            "span_id": "s1",
            "kind": "retrieval",
            "start_time": "2026-11-25T12:30:00.5Z",
            "duration_ms": 12.5,
            "status": "ok",
            "attributes": {"k": 5, "index": "docs", "hits": [1, 2]},
            "parent_span_id": "00f067aa0ba902b7",
        },
        {"name": "bare"},
    ],
    "attributes": {"tenant": "t7", "route": "/chat", "tier": "gold"},
    "client": {"sdk": "py", "version": "1.2"},
    "region": "eu-west-1",
}


def full_record() -> FailureRecord:
    """A record whose event sets every contract field, plus unknown ones at every level."""
    event = InferenceEvent.model_validate(FULL_EVENT)
    record = failure(
        "evt-full",
        reasons=[
            Reason(
                rule_id="score_threshold",
                message="faithfulness 0.12 < 0.5",
                subject="faithfulness",
                observed=0.12,
                threshold=0.5,
            ),
            Reason(rule_id="status_error", message="the call failed"),
        ],
        offset=77,
    )
    return record.model_copy(update={"event": event, "redacted": True})


def minimal_record() -> FailureRecord:
    """A record whose event has only the required fields."""
    event = InferenceEvent.model_validate(
        {
            "event_id": "evt-min",
            "timestamp": "2026-11-25T00:00:00Z",
            "service": "s",
            "release": "r",
            "status": "ok",
        }
    )
    return failure("evt-min", reason="empty_output").model_copy(update={"event": event})


def round_trip(tmp_path: Path, record: FailureRecord) -> FailureRecord:
    """``record`` written as a harvest file, read back through the ``failures`` view."""
    write_failures(tmp_path, [record])
    table = Harvest.at(str(tmp_path)).run("select * exclude (date) from failures")
    rows = table.to_pylist()
    assert len(rows) == 1
    return FailureRecord.model_validate(record_document(rows[0]))


def test_full_record_survives_parquet_and_duckdb(tmp_path: Path) -> None:
    """Every contract field (and every unknown one) comes back equal through file and DuckDB."""
    record = full_record()
    back = round_trip(tmp_path, record)
    assert back.event.model_dump() == record.event.model_dump()
    assert back.event.model_extra == record.event.model_extra
    assert back.event.input.messages[1].model_extra == {"name": "alice"}
    assert back.event.spans[0].model_extra == {"parent_span_id": "00f067aa0ba902b7"}
    assert back == record


def test_full_record_columns_read_naturally_in_sql(tmp_path: Path) -> None:
    """Top-level columns, maps and structs are queryable by their contract names."""
    write_failures(tmp_path, [full_record()])
    row = (
        Harvest.at(str(tmp_path))
        .run(
            "select service, date, reason, usage.reasoning_tokens as rt, "
            "attributes['tenant'] as tenant, scores['toxicity'] as tox, "
            "request.seed as seed, output_text, redacted from failures"
        )
        .to_pylist()[0]
    )
    assert row["service"] == "billing/eu assistant"
    assert str(row["date"]) == "2026-11-25"
    assert row["reason"] == "score_threshold"
    assert (row["rt"], row["tenant"], row["tox"], row["seed"]) == (50, "t7", 0.9, 42)
    assert row["output_text"] == '{"answer": "a cat"}'
    assert row["redacted"] is True


def test_minimal_record_round_trips(tmp_path: Path) -> None:
    """A record of an event with only the required fields comes back equal."""
    record = minimal_record()
    assert round_trip(tmp_path, record) == record


def test_non_string_attribute_values_come_back_as_json_text(tmp_path: Path) -> None:
    """Attribute values that are not strings are kept as their JSON text (documented)."""
    record = failure("evt-attr", attributes={"n": 3, "flags": ["a", "b"], "s": "x"})
    back = round_trip(tmp_path, record)
    assert back.event.attributes == {"n": "3", "flags": '["a","b"]', "s": "x"}


def test_file_carries_schema_version_and_explicit_schema(tmp_path: Path) -> None:
    """The file's schema is exactly FAILURE_SCHEMA (never inferred) and names its version."""
    relative = write_failures(
        tmp_path, [full_record(), failure("evt-2", service="billing/eu assistant")]
    )
    schema = pq.read_schema(tmp_path / relative)
    assert schema.metadata is not None
    assert schema.metadata[METADATA_KEY] == SCHEMA_VERSION.encode()
    assert schema.equals(FAILURE_SCHEMA, check_metadata=False)
    assert [(f.name, f.type, f.nullable) for f in schema] == [
        (f.name, f.type, f.nullable) for f in FAILURE_SCHEMA
    ]


def test_minimal_file_keeps_explicit_schema(tmp_path: Path) -> None:
    """A file of all-null optional fields still has the explicit column types (no null type)."""
    relative = write_failures(tmp_path, [minimal_record()])
    schema = pq.read_schema(tmp_path / relative)
    assert schema.equals(FAILURE_SCHEMA, check_metadata=False)


@pytest.mark.parametrize("record", [full_record(), minimal_record()], ids=["full", "minimal"])
def test_row_of_then_record_document_without_a_file(record: FailureRecord) -> None:
    """record_document(row_of(r)) validates back to r, before Parquet gets involved."""
    assert FailureRecord.model_validate(record_document(row_of(record))) == record


def test_detected_at_and_timestamps_are_utc(tmp_path: Path) -> None:
    """Timestamps are stored in UTC and read back as the same instants."""
    back = round_trip(tmp_path, full_record())
    assert back.detected_at == DETECTED_AT
    assert back.event.timestamp.isoformat() == "2026-11-25T12:30:00.123456+00:00"


def test_every_contract_field_has_its_column() -> None:
    """A field added to the contract without a column would be dropped from the harvest."""
    assert set(InferenceEvent.model_fields) <= set(FAILURE_SCHEMA.names)


def test_content_not_captured_stays_absent(tmp_path: Path) -> None:
    """An event without content comes back without it (NULL columns), not as an empty answer."""
    record = minimal_record()
    assert not record.event.output_captured
    back = round_trip(tmp_path, record)
    assert not back.event.output_captured
    assert not back.event.input_captured
    write_failures(tmp_path / "sql", [record])
    row = (
        Harvest.at(str(tmp_path / "sql"))
        .run("select output_text, output.messages as om, input.messages as im from failures")
        .to_pylist()[0]
    )
    assert row == {"output_text": None, "om": None, "im": None}


def test_empty_answer_stays_empty(tmp_path: Path) -> None:
    """An answer captured as empty comes back captured and empty ('' in output_text)."""
    record = minimal_record()
    event = InferenceEvent.model_validate(
        {**record.event.model_dump(mode="json"), "output": {"messages": []}}
    )
    back = round_trip(tmp_path, record.model_copy(update={"event": event}))
    assert back.event.output_captured
    assert back.event.output_text == ""

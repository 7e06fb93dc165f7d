"""The per-message triage shared by `driftnet check` and the worker, and the worker's counts."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import orjson
import pytest

from driftnet.contract.events import InferenceEvent, Lineage
from driftnet.harvest.records import MAX_EVENT_DEPTH, FailureRecord
from driftnet.harvest.rules import FailureRules, RulesConfig
from driftnet.harvest.triage import Tally, Triage, event_bytes
from driftnet.streams.ops.counters import Counters
from tests.support.factories import make_event

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
LINEAGE = Lineage("llm.inference.events", 1, 42)


def _batch(*events: dict[str, object]) -> bytes:
    return orjson.dumps(list(events))


def test_failures_dead_letters_and_encoded_records_line_up() -> None:
    triage = Triage(RulesConfig(), record_max_bytes=1_000_000)
    triaged = triage(
        _batch(
            make_event(event_id="ok"),
            make_event(event_id="err", status="error"),
            make_event(event_id="bad", latency_ms=-1),
        ),
        LINEAGE,
        NOW,
    )
    assert triaged.events == 2
    assert [r.event.event_id for r in triaged.failures] == ["err"]
    assert [orjson.loads(v)["record_id"] for v in triaged.encoded] == [
        r.record_id for r in triaged.failures
    ]
    assert [(d.reason, d.field) for d in triaged.dead_letters] == [("invalid_field", "latency_ms")]


def test_a_rule_that_raises_dead_letters_the_event_and_the_rest_go_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    original = FailureRules.reasons

    def flaky(self: FailureRules, event: object) -> object:
        if getattr(event, "event_id", None) == "boom":
            raise ZeroDivisionError("division by zero")
        return original(self, event)  # type: ignore[arg-type]

    monkeypatch.setattr(FailureRules, "reasons", flaky)
    triaged = Triage(RulesConfig())(
        _batch(make_event(event_id="boom"), make_event(event_id="err", status="error")),
        LINEAGE,
        NOW,
    )
    [dead] = triaged.dead_letters
    assert (dead.reason, dead.message) == (
        "processing_failed",
        "ZeroDivisionError: division by zero",
    )
    assert dead.lineage == LINEAGE.at(0)
    assert orjson.loads(dead.payload)["event_id"] == "boom"
    assert [r.event.event_id for r in triaged.failures] == ["err"]


def test_a_failure_record_too_big_for_kafka_is_a_dead_letter() -> None:
    huge = make_event(event_id="huge", status="error", output={"text": "x" * 5000})
    triaged = Triage(RulesConfig(), record_max_bytes=4000, payload_cap=1000)(
        orjson.dumps(huge), LINEAGE, NOW
    )
    assert (triaged.failures, triaged.encoded) == ([], [])
    [dead] = triaged.dead_letters
    assert dead.reason == "processing_failed"
    assert "over the 4,000-byte message limit" in dead.message
    assert (dead.payload_truncated, len(dead.payload)) == (True, 1000)


def test_tally_and_worker_report() -> None:
    counters = Counters()
    assert counters.report() == [], "no traffic, no report"
    triage = Triage(RulesConfig())
    for payload in (_batch(make_event(status="error"), make_event()), b"{nope", b""):
        counters.total.add(triage(payload, LINEAGE, NOW))
    head, *rest = counters.report()
    assert "3 messages, 2 valid events, 1 failures, 2 dead letters" in head
    assert rest == [
        "  failures by rule: status_error 1",
        "  dead letters by reason: invalid_json 1, empty_message 1",
        "  total: 3 messages, 2 valid events, 1 failures, 2 dead letters",
    ]
    counters.total.add(triage(orjson.dumps(make_event()), LINEAGE, NOW))
    head, total = counters.report()
    assert "1 messages, 1 valid events, 0 failures, 0 dead letters" in head
    assert total == "  total: 4 messages, 3 valid events, 1 failures, 2 dead letters"
    assert isinstance(counters.total, Tally)


def test_failure_records_are_redacted_before_they_are_encoded() -> None:
    """A failing event's personal data is masked in its record and in the JSON sent on, and the
    record says so; a clean failing event is not flagged; redaction can be switched off."""
    from driftnet.harvest.redaction import RedactionSettings

    leaky = make_event(
        event_id="leaky",
        status="error",
        input={"messages": [{"role": "user", "content": "mail me at ana@example.com please"}]},
    )
    clean = make_event(event_id="clean", status="error")
    triaged = Triage(RulesConfig(), record_max_bytes=1_000_000)(_batch(leaky, clean), LINEAGE, NOW)
    by_id = {r.event.event_id: r for r in triaged.failures}
    assert by_id["leaky"].redacted
    assert by_id["leaky"].event.input.messages[0].content == "mail me at [REDACTED:email] please"
    assert b"ana@example.com" not in b"".join(triaged.encoded)
    assert not by_id["clean"].redacted

    off = Triage(RulesConfig(), redaction=RedactionSettings(enabled=False))
    [record] = off(_batch(leaky), LINEAGE, NOW).failures
    assert not record.redacted
    assert "ana@example.com" in str(record.event.input.messages[0].content)


def _nested_attributes(depth: int, **fields: object) -> bytes:
    """An event whose attribute ``x`` is ``depth`` nested arrays around a 1."""
    event = make_event(attributes={"x": "DEEP"}, **fields)
    return orjson.dumps(event).replace(b'"DEEP"', b"[" * depth + b"1" + b"]" * depth)


@pytest.mark.parametrize(("depth", "recorded"), [(126, True), (127, False), (400, False)])
def test_a_failing_event_deeper_than_a_record_carries_is_refused(
    depth: int, recorded: bool
) -> None:
    """Up to MAX_EVENT_DEPTH levels a failing event is a record the sink's reader reads back;
    deeper, a processing_failed dead letter (at 256 levels the record's encoding raised, and
    from 199 the sink could not read it)."""
    triaged = Triage(RulesConfig(), record_max_bytes=1_000_000)(
        _nested_attributes(depth, status="error"), LINEAGE, NOW
    )
    if recorded:
        [value] = triaged.encoded
        assert FailureRecord.model_validate_json(value).event.attributes["x"]
        assert triaged.dead_letters == []
    else:
        [dead] = triaged.dead_letters
        assert dead.reason == "processing_failed"
        assert dead.message.startswith(f"nested deeper than {MAX_EVENT_DEPTH} levels")
        assert triaged.failures == []


def test_event_bytes_are_pydantics_or_at_any_depth_the_same_event() -> None:
    """A dead letter's bytes for an event are pydantic's JSON; nested past what pydantic
    writes, they are still JSON that validates back to the same event."""
    shallow = InferenceEvent.model_validate_json(_nested_attributes(3))
    assert event_bytes(shallow) == shallow.model_dump_json().encode()
    deep = InferenceEvent.model_validate(json.loads(_nested_attributes(400)))
    assert InferenceEvent.model_validate(json.loads(event_bytes(deep))) == deep

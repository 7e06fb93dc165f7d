"""Hostile input, without a broker: a corpus of what broken or malicious producers send, and
properties over generated input. Every bad payload is a dead letter with a reason that
survives the trip through the DLQ's headers; nothing raises; memory stays bounded, and one
message costs one dead letter however big."""

from __future__ import annotations

import json
import tracemalloc
from datetime import UTC, datetime, timedelta
from typing import Any, get_args

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from driftnet.contract.decode import PAYLOAD_CAP_BYTES, DeadLetter, DeadLetterReason
from driftnet.contract.dlq import dead_letter_headers, read_dead_letter
from driftnet.contract.events import InferenceEvent, Lineage
from driftnet.detectors.config import DetectorsConfig
from driftnet.detectors.windowing.cohort_cap import OVERFLOW_COHORT
from driftnet.harvest.records import FailureRecord
from driftnet.harvest.rules import RulesConfig
from driftnet.harvest.triage import Triage, Triaged
from driftnet.streams.detection.aggregate_messages import read_aggregate
from driftnet.streams.detection.map_stage import MapStage
from driftnet.streams.detection.merge_stage import MergeStage
from tests.support.factories import make_event

NOW = datetime(2026, 11, 25, 12, 5, tzinfo=UTC)
"""The worker's clock in these tests (the factory's events are 5 minutes old)."""
FUTURE_S = 600.0
PAST_S = 7 * 86_400.0
BROKER_LIMIT = 1024 * 1024
"""Kafka's default ``message.max.bytes``: the largest message a producer can get through."""
RECORD_MAX_BYTES = BROKER_LIMIT - 16 * 1024
LINEAGE = Lineage("llm.inference.events", 2, 99)
REASONS = set(get_args(DeadLetterReason))


def triage() -> Triage:
    """The worker's triage with the timestamp bounds of these tests (7 days back, 10 min ahead)."""
    return Triage(
        RulesConfig(),
        record_max_bytes=RECORD_MAX_BYTES,
        max_future_s=FUTURE_S,
        max_past_s=PAST_S,
    )


def run(payload: bytes | None) -> Triaged:
    return triage()(payload, LINEAGE, NOW)


def dumps(value: Any) -> bytes:
    return json.dumps(value).encode()


def at(delta: timedelta) -> str:
    return (NOW + delta).isoformat().replace("+00:00", "Z")


def nested(depth: int) -> bytes:
    return b'{"attributes": {"x": ' + b"[" * depth + b"]" * depth + b"}}"


def deep_value(depth: int) -> Any:
    """A value of ``depth`` nested arrays around a 1."""
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


VALID = dumps(make_event())
HUGE = "x" * BROKER_LIMIT

CORPUS: list[Any] = [
    pytest.param(VALID[: len(VALID) // 2], "invalid_json", None, id="truncated-object"),
    pytest.param(dumps([make_event()] * 3)[:-40], "invalid_json", None, id="truncated-batch"),
    pytest.param(VALID[:1], "invalid_json", None, id="just-a-brace"),
    pytest.param(b"\xff\xfe" + VALID, "invalid_json", None, id="utf16-bom"),
    pytest.param(
        VALID.replace(b"Where is", b"Where \xc3\x28 is"), "invalid_json", None, id="bad-utf8"
    ),
    pytest.param(
        VALID.replace(b"evt-1", b"evt-\xed\xa0\x80"),
        "invalid_json",
        "event_id",
        id="utf8-encoded-surrogate",
    ),
    pytest.param(
        dumps(make_event(status="error")).replace(b"Where", b"\\ud800"),
        "invalid_json",
        "input.messages.0.content",
        id="escaped-lone-surrogate",
    ),
    pytest.param(
        dumps(make_event(attributes={"x": 1})).replace(b'"x"', b'"\\udfff"'),
        "invalid_json",
        "attributes.\\udfff",
        id="lone-surrogate-key",
    ),
    pytest.param(b"[" * 100_000 + b"]" * 100_000, "invalid_json", None, id="deep-array"),
    pytest.param(nested(5_000), "invalid_json", None, id="deep-inside-an-object"),
    pytest.param(b'{"a":' * 50_000 + b"1" + b"}" * 50_000, "invalid_json", None, id="deep-objects"),
    pytest.param(VALID.replace(b"820.0", b"NaN"), "invalid_json", "latency_ms", id="nan"),
    pytest.param(
        VALID.replace(b"820.0", b"-Infinity"), "invalid_json", "latency_ms", id="minus-infinity"
    ),
    pytest.param(VALID.replace(b"820.0", b"1e400"), "invalid_json", "latency_ms", id="1e400"),
    pytest.param(
        dumps(make_event(latency_ms=-5)), "invalid_field", "latency_ms", id="negative-latency"
    ),
    pytest.param(dumps(make_event(ttft_ms=-0.1)), "invalid_field", "ttft_ms", id="negative-ttft"),
    pytest.param(
        dumps(make_event(latency_ms="fast")), "invalid_field", "latency_ms", id="latency-a-string"
    ),
    pytest.param(
        dumps(make_event(usage={"input_tokens": 1.5})),
        "invalid_field",
        "usage.input_tokens",
        id="tokens-a-fraction",
    ),
    pytest.param(
        dumps(make_event(usage={"input_tokens": 2**70})),
        "invalid_field",
        "usage.input_tokens",
        id="tokens-past-int64",
    ),
    pytest.param(dumps(make_event(status=["ok"])), "invalid_field", "status", id="status-a-list"),
    pytest.param(
        dumps(make_event(service={"name": "x"})), "invalid_field", "service", id="service-an-object"
    ),
    pytest.param(dumps(make_event(service="")), "invalid_field", "service", id="service-empty"),
    pytest.param(dumps(make_event(input="hello")), "invalid_field", "input", id="input-a-string"),
    pytest.param(
        dumps(make_event(timestamp=1_795_000_000)),
        "invalid_field",
        "timestamp",
        id="timestamp-a-number",
    ),
    pytest.param(
        dumps(make_event(timestamp="2026-11-25T12:00:00")),
        "invalid_field",
        "timestamp",
        id="timestamp-without-offset",
    ),
    pytest.param(
        dumps(make_event(timestamp="yesterday")),
        "invalid_field",
        "timestamp",
        id="timestamp-a-word",
    ),
    pytest.param(
        dumps(make_event(timestamp=at(timedelta(days=30)))),
        "timestamp_out_of_range",
        "timestamp",
        id="timestamp-a-month-ahead",
    ),
    pytest.param(
        dumps(make_event(timestamp=at(timedelta(minutes=11)))),
        "timestamp_out_of_range",
        "timestamp",
        id="timestamp-11-min-ahead",
    ),
    pytest.param(
        dumps(make_event(timestamp="9999-12-31T23:59:59Z")),
        "timestamp_out_of_range",
        "timestamp",
        id="timestamp-year-9999",
    ),
    pytest.param(
        dumps(make_event(timestamp=at(-timedelta(days=8)))),
        "timestamp_out_of_range",
        "timestamp",
        id="timestamp-8-days-old",
    ),
    pytest.param(
        dumps(make_event(timestamp="1970-01-01T00:00:00Z")),
        "timestamp_out_of_range",
        "timestamp",
        id="timestamp-epoch",
    ),
    pytest.param(
        dumps(make_event(schema_version="2")),
        "unsupported_schema_version",
        "schema_version",
        id="schema-2",
    ),
    pytest.param(
        dumps(make_event(schema_version="1.1")),
        "unsupported_schema_version",
        "schema_version",
        id="schema-1.1",
    ),
    pytest.param(
        dumps(make_event(schema_version=None)),
        "unsupported_schema_version",
        "schema_version",
        id="schema-null",
    ),
    pytest.param(dumps({"event_id": "x"}), "missing_field", "timestamp", id="almost-empty"),
    pytest.param(b"null", "not_an_object", None, id="null"),
    pytest.param(b"[null]", "not_an_object", None, id="batch-of-null"),
    pytest.param(b"[" + b"{}," * 5_000 + b"{}]", "batch_too_large", None, id="batch-of-5001"),
    pytest.param(b"\x00" * 64, "invalid_json", None, id="zero-bytes"),
    pytest.param(b"\n\t ", "empty_message", None, id="whitespace"),
    pytest.param(None, "empty_message", None, id="tombstone"),
    pytest.param(
        b"[" + b"1," * (BROKER_LIMIT // 2 - 1) + b"1]",
        "batch_too_large",
        None,
        id="broker-limit-batch-of-numbers",
    ),
    pytest.param(
        b'{"event_id": "' + HUGE.encode(), "invalid_json", None, id="broker-limit-unterminated"
    ),
    pytest.param(
        dumps(make_event(status="error", output={"text": HUGE})),
        "processing_failed",
        None,
        id="broker-limit-failing-event",
    ),
    pytest.param(
        dumps(make_event(status="error", attributes={"x": deep_value(300)})),
        "processing_failed",
        None,
        id="failing-event-nested-300-deep",
    ),
    pytest.param(
        dumps([make_event(timestamp=at(timedelta(days=30)), attributes={"x": deep_value(300)})]),
        "timestamp_out_of_range",
        "timestamp",
        id="out-of-range-element-nested-300-deep",
    ),
]


@pytest.mark.parametrize(("payload", "reason", "field"), CORPUS)
def test_the_corpus_is_dead_lettered_with_its_reason(
    payload: bytes | None, reason: str, field: str | None
) -> None:
    """Each hostile payload gives dead letters only, with the expected reason and field, a
    one-line message and a capped payload; its headers carry it all through the DLQ."""
    result = run(payload)
    assert result.failures == []
    assert result.dead_letters
    assert {(d.reason, d.field) for d in result.dead_letters} == {(reason, field)}
    for letter in result.dead_letters:
        assert "\n" not in letter.message
        assert len(letter.payload) <= PAYLOAD_CAP_BYTES
        assert read_dead_letter(letter.payload, dead_letter_headers(letter, NOW)) == letter


@pytest.mark.parametrize(
    "delta",
    [timedelta(days=6, hours=23), timedelta(hours=1), timedelta(seconds=-590)],
    ids=["6-days-old", "an-hour-old", "10-min-ahead-minus-10-s"],
)
def test_within_the_bounds_an_event_is_merely_late_or_early(delta: timedelta) -> None:
    """A timestamp inside the bounds is a valid event (its window counts it, late or not)."""
    result = run(dumps(make_event(timestamp=at(-delta))))
    assert result.dead_letters == []
    assert result.events == 1


def test_bounds_off_accept_any_time() -> None:
    """With no bounds (``null``), a timestamp a century away is still an event."""
    plain = Triage(RulesConfig())
    result = plain(dumps(make_event(timestamp="2126-01-01T00:00:00Z")), LINEAGE, NOW)
    assert result.events == 1


def test_an_out_of_range_element_of_a_batch_dead_letters_alone() -> None:
    """In a batch only the element beyond the bound is dead-lettered; its payload is that
    element, so a replay sends it alone."""
    batch = [
        make_event(event_id="a"),
        make_event(event_id="ahead", timestamp=at(timedelta(days=2))),
        make_event(event_id="c", status="error"),
    ]
    result = run(dumps(batch))
    assert result.events == 2
    assert [r.event.event_id for r in result.failures] == ["c"]
    [letter] = result.dead_letters
    assert letter.lineage.batch_index == 1
    assert "ahead of the worker's clock" in letter.message
    assert "(the bound is 10 min)" in letter.message
    assert orjson.loads(letter.payload)["event_id"] == "ahead"


def test_a_lone_surrogate_in_a_batch_spares_the_other_elements() -> None:
    """``"\\ud800"`` is valid JSON text but no UTF-8: only its element is dead-lettered (and
    its dead letter can still be written), the failing event beside it is harvested."""
    good = dumps(make_event(event_id="good", status="error"))
    bad = dumps(make_event(event_id="bad-")).replace(b"bad-", b"bad\\ud800")
    result = run(b"[" + good + b"," + bad + b"]")
    assert [r.event.event_id for r in result.failures] == ["good"]
    [letter] = result.dead_letters
    assert (letter.reason, letter.field, letter.lineage.batch_index) == (
        "invalid_json",
        "event_id",
        1,
    )
    assert b"bad\\ud800" in letter.payload
    assert read_dead_letter(letter.payload, dead_letter_headers(letter, NOW)) == letter


def test_a_single_out_of_range_event_keeps_its_bytes() -> None:
    """A one-event message beyond the bound keeps the producer's bytes as they were."""
    payload = dumps(make_event(timestamp=at(-timedelta(days=30)), extra_field=[1, 2]))
    [letter] = run(payload).dead_letters
    assert letter.payload == payload
    assert "30 d 0 h behind" in letter.message


def test_a_valid_event_at_the_broker_limit_is_an_event() -> None:
    """A healthy event as large as a message can be (unknown fields are kept) decodes."""
    payload = dumps(make_event(debug=HUGE[: BROKER_LIMIT - 1024]))
    assert len(payload) < BROKER_LIMIT
    result = run(payload)
    assert (result.events, result.dead_letters) == (1, [])


HOSTILE_AT_THE_LIMIT = {
    "deep-array": b"[" * BROKER_LIMIT,
    "deep-objects": b'{"a":' * (BROKER_LIMIT // 5),
    "numbers": b"[" + b"1e400," * (BROKER_LIMIT // 6) + b"0]",
    "strings": b"[" + b'"\\u0000",' * (BROKER_LIMIT // 9) + b'""]',
    "keys": b"{" + b",".join(b'"k%d":0' % i for i in range(BROKER_LIMIT // 11)) + b"}",
}


@pytest.mark.parametrize("payload", HOSTILE_AT_THE_LIMIT.values(), ids=HOSTILE_AT_THE_LIMIT.keys())
def test_a_hostile_message_at_the_limit_costs_bounded_time_and_memory(payload: bytes) -> None:
    """A 1 MiB message built to be expensive costs one dead letter (not one per element: a
    1 MiB array of numbers once cost 524k of them and 29 s) and a bounded amount of memory.
    No wall-clock bound: on a loaded 2-core CI machine, under tracemalloc, that is noise."""
    assert len(payload) <= BROKER_LIMIT + 16
    tracemalloc.start()
    try:
        result = run(payload)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.events == 0
    assert len(result.dead_letters) == 1
    assert peak < 200 * BROKER_LIMIT


# -- properties ------------------------------------------------------------------------------


PROCESSING_REFUSALS = ("its failure record is", "nested deeper than")
"""How a ``processing_failed`` the triage meant begins (a record too large or too deep to
travel); any other is a rule or the triage that raised."""


def _check_letters(letters: list[DeadLetter]) -> None:
    """Known reasons, never a catch-all (``undecodable``: the decoder raised; an unexplained
    ``processing_failed``: a rule raised), one-line messages, headers that read back."""
    for letter in letters:
        assert letter.reason in REASONS
        assert letter.reason != "undecodable", letter.message
        if letter.reason == "processing_failed":
            assert letter.message.startswith(PROCESSING_REFUSALS), letter.message
        assert "\n" not in letter.message
        assert read_dead_letter(letter.payload, dead_letter_headers(letter, NOW)) == letter


@given(st.binary(max_size=4096))
@settings(max_examples=150, deadline=None)
def test_any_bytes_give_events_or_dead_letters_that_survive_the_dlq(payload: bytes) -> None:
    """Whatever the bytes, triage never raises and every dead letter has a known reason, a
    one-line message and headers that read back to it."""
    result = run(payload)
    assert result.events or result.dead_letters
    _check_letters(result.dead_letters)


@given(st.integers(min_value=1, max_value=len(VALID) - 1))
@settings(max_examples=100, deadline=None)
def test_every_truncation_of_an_event_is_invalid_json(cut: int) -> None:
    """A message cut anywhere (a producer killed mid-write) is one invalid_json dead letter."""
    [letter] = run(VALID[:cut]).dead_letters
    assert letter.reason == "invalid_json"


@given(st.lists(st.integers(min_value=-(10**10), max_value=10**10), min_size=1, max_size=8))
@settings(max_examples=150, deadline=None)
def test_timestamps_are_dead_lettered_exactly_beyond_the_bounds(offsets: list[int]) -> None:
    """A batch of events at any offsets from the clock: exactly those beyond the bounds are
    dead letters (timestamp_out_of_range), each element accounted for once."""
    batch = []
    for i, offset in enumerate(offsets):
        try:
            stamp = at(timedelta(seconds=offset))
        except OverflowError:  # beyond year 9999: not even a timestamp
            continue
        batch.append(make_event(event_id=f"e{i}", timestamp=stamp, _offset=offset))
    if not batch:
        return
    result = run(dumps(batch))
    out = {int(orjson.loads(d.payload)["event_id"][1:]) for d in result.dead_letters}
    expected = {int(e["event_id"][1:]) for e in batch if not -PAST_S <= e["_offset"] <= FUTURE_S}
    assert out == expected
    assert {d.reason for d in result.dead_letters} <= {"timestamp_out_of_range"}
    assert result.events + len(result.dead_letters) == len(batch)
    _check_letters(result.dead_letters)


HOSTILE_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),  # NaN and Infinity included: json.dumps writes them
    st.text(max_size=20),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)
FIELDS = [*sorted(make_event()), "schema_version", "usage", "feedback", "spans"]


@given(st.sampled_from(FIELDS), HOSTILE_VALUES)
@settings(max_examples=300, deadline=None)
def test_one_field_made_hostile_is_one_event_or_one_dead_letter(field: str, value: Any) -> None:
    """Any field of a valid event replaced by any JSON value (NaN, Infinity, huge integers,
    wrong types): exactly one event or one dead letter, never an exception."""
    event = make_event()
    event[field] = value
    result = run(json.dumps(event).encode())
    assert result.events + len(result.dead_letters) == 1
    _check_letters(result.dead_letters)


@given(
    st.integers(min_value=0, max_value=1_100),
    st.sampled_from(["ok", "error", "out-of-range"]),
    st.booleans(),
)
@settings(max_examples=120, deadline=None)
def test_any_depth_is_accounted_for_and_every_record_reads_back(
    depth: int, kind: str, batch: bool
) -> None:
    """An event whose attributes nest to any depth, healthy, failing or out of range, alone
    or beside a failing event: the triage never raises, each element is an event or a dead
    letter with a proper reason, and every failure record reads back with the sink's reader
    (pydantic's JSON reader stops at 200 levels; a record from a 256-deep event once raised)."""
    fields: dict[str, Any] = {"status": "error"} if kind == "error" else {}
    if kind == "out-of-range":
        fields["timestamp"] = at(timedelta(days=30))
    event = make_event(event_id="deep", **fields)
    event["attributes"] = {"x": "DEEP"}
    text = dumps(event).replace(b'"DEEP"', b"[" * depth + b"1" + b"]" * depth)
    neighbour = dumps(make_event(event_id="near", status="error"))
    payload = b"[" + neighbour + b", " + text + b"]" if batch else text
    result = run(payload)
    _check_letters(result.dead_letters)
    refused = [d for d in result.dead_letters if d.reason == "processing_failed"]
    assert result.events + len(result.dead_letters) - len(refused) == (2 if batch else 1) or (
        [d.reason for d in result.dead_letters] == ["invalid_json"]  # past what orjson reads
    )
    assert len(result.failures) == len(result.encoded)
    for value in result.encoded:
        assert FailureRecord.model_validate_json(value).event.event_id in ("deep", "near")
    if batch and depth < 1_000:
        assert "near" in [r.event.event_id for r in result.failures]


# -- a cardinality attack --------------------------------------------------------------------


def _attack_stage(max_cohorts: int) -> tuple[MapStage, MergeStage, DetectorsConfig]:
    config = DetectorsConfig.model_validate({"windows": {"max_cohorts_per_partition": max_cohorts}})
    return MapStage(config, "events"), MergeStage(config, "events"), config


def test_a_cardinality_attack_is_folded_into_the_overflow_cohort() -> None:
    """5,000 events, each with a release of its own, beside a real cohort: the partition
    tracks at most the cap, the excess is counted under ``_overflow`` (not dead-lettered, not
    judged), the real cohort's window is exact, and the metric says how many were folded."""
    stage, merge, _ = _attack_stage(max_cohorts=50)
    T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC).timestamp()
    template = InferenceEvent.model_validate(make_event())
    real = 0
    for i in range(5_000):
        release = "gpt-4o+prompt-v7" if i % 10 == 0 else f"attack-{i}"
        real += release == "gpt-4o+prompt-v7"
        event = template.model_copy(update={"event_id": f"e{i}", "release": release})
        stage.observe(0, i, event, [], b"{}", now=T0)
    assert stage.cohorts_tracked == 50
    assert stage.overflow_events == 5_000 - real - 49
    done = T0 + 120  # the partition idle since: its window [T0, T0 + 60) closes, no other
    for _, _, value, partition in stage.due(now=done, aggregate_partitions=1).messages:
        merge.offer(partition or 0, read_aggregate(value), now=done)
    closed = {j.window.cohort: j for j in merge.close_due(now=done)}
    assert len(closed) == 51  # the 50 admitted and the overflow
    real_cohort = ("support-chat", "production", "gpt-4o+prompt-v7", "baseline")
    assert closed[real_cohort].window.aggregate.count == real
    overflow = closed[OVERFLOW_COHORT]
    assert overflow.window.aggregate.count == stage.overflow_events
    assert (overflow.findings, overflow.verdict) == ([], None)
    assert sum(j.window.aggregate.count for j in closed.values()) == 5_000

    from driftnet.streams.ops.metrics import families
    from driftnet.streams.ops.snapshot import DetectionCounts, Snapshot

    counts = DetectionCounts(
        windows_closed=51, findings_by_detector={}, verdicts={}, late_events=0,
        open_windows=0, window_lag_s=None, cohort_overflow_events=stage.overflow_events,
        cohorts_tracked=stage.cohorts_tracked,
    )  # fmt: skip
    samples = {
        s.name: s.value
        for family in families(Snapshot(healthy=True, detection=counts))
        for s in family.samples
    }
    assert samples["driftnet_cohort_overflow_events_total"] == stage.overflow_events
    assert samples["driftnet_cohorts_tracked"] == 50


def test_memory_under_a_cardinality_attack_stays_bounded() -> None:
    """Ten times more attacking cohorts cost no more memory once the cap is reached."""

    def peak(events: int) -> int:
        stage, _, _ = _attack_stage(max_cohorts=100)
        template = InferenceEvent.model_validate(make_event())
        copies = [
            template.model_copy(update={"event_id": f"e{i}", "release": f"attack-{i}"})
            for i in range(events)
        ]
        tracemalloc.start()
        try:
            for i, event in enumerate(copies):
                stage.observe(0, i, event, [], b"{}", now=0.0)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    small, large = peak(500), peak(5_000)
    assert large < small * 1.5 + 64 * 1024, (small, large)

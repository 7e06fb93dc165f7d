"""Decoding: any bytes give valid events or dead letters with a reason, never an exception."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from driftnet.contract.decode import PAYLOAD_CAP_BYTES, DeadLetter, Decoded, decode
from driftnet.contract.events import Lineage
from tests.support.factories import make_event

LINEAGE = Lineage(topic="llm.inference.events", partition=3, offset=1234)


def _dumps(value: Any) -> bytes:
    """Standard-library JSON: unlike orjson it writes integers beyond 64 bits, as producers may."""
    return json.dumps(value).encode()


def _nothing_crashed(decoded: Decoded) -> None:
    """No dead letter is the catch-all: ``undecodable`` means the decoder itself raised, and a
    property that accepted it would pass with a decoder that crashes on everything."""
    crashed = [d.message for d in decoded.dead_letters if d.reason == "undecodable"]
    assert crashed == [], crashed


def _nested(depth: int, opener: str) -> str:
    """A value nested ``depth`` levels: arrays, or objects holding ``{"a": ...}``."""
    if opener == "[":
        return "[" * depth + "1" + "]" * depth
    return '{"a": ' * depth + "1" + "}" * depth


def test_single_object_decodes_to_one_event() -> None:
    """A JSON object is one event, with the message's lineage and no batch index."""
    decoded = decode(_dumps(make_event()), LINEAGE)
    assert decoded.dead_letters == []
    [(event, lineage)] = decoded.events
    assert event.event_id == "evt-1"
    assert lineage == LINEAGE
    assert lineage.batch_index is None


def test_batch_decodes_each_element_with_its_index() -> None:
    """A JSON array is a batch: each event keeps its position in the lineage."""
    batch = [make_event(event_id=f"e{i}") for i in range(3)]
    decoded = decode(_dumps(batch), LINEAGE)
    assert [e.event_id for e, _ in decoded.events] == ["e0", "e1", "e2"]
    assert [lin.batch_index for _, lin in decoded.events] == [0, 1, 2]
    assert {lin.offset for _, lin in decoded.events} == {1234}


def test_bad_element_in_batch_dead_letters_alone() -> None:
    """One bad event in a batch is dead-lettered; the good ones around it go on."""
    bad = make_event(event_id="bad")
    del bad["status"]
    decoded = decode(_dumps([make_event(event_id="a"), bad, make_event(event_id="c")]), LINEAGE)
    assert [e.event_id for e, _ in decoded.events] == ["a", "c"]
    [dead] = decoded.dead_letters
    assert dead.reason == "missing_field"
    assert dead.field == "status"
    assert dead.lineage.batch_index == 1
    assert orjson.loads(dead.payload)["event_id"] == "bad"


@pytest.mark.parametrize(
    ("payload", "reason", "field"),
    [
        pytest.param(b"", "empty_message", None, id="empty-bytes"),
        pytest.param(None, "empty_message", None, id="tombstone"),
        pytest.param(b"  \n", "empty_message", None, id="whitespace"),
        pytest.param(b'{"event_id": "e", "timest', "invalid_json", None, id="truncated-json"),
        pytest.param(b"\xff\xfe{}", "invalid_json", None, id="invalid-utf8"),
        pytest.param(b'{"latency_ms": NaN}', "invalid_json", "latency_ms", id="nan-literal"),
        pytest.param(
            b'{"attributes": {"x": [1, Infinity]}}',
            "invalid_json",
            "attributes.x.1",
            id="infinity-nested",
        ),
        pytest.param(b"1e400", "invalid_json", None, id="overflowing-number"),
        pytest.param(b"[" * 5000 + b"]" * 5000, "invalid_json", None, id="deep-nesting"),
        pytest.param(b'"a string"', "not_an_object", None, id="json-string"),
        pytest.param(b"42", "not_an_object", None, id="json-number"),
        pytest.param(b"null", "not_an_object", None, id="json-null"),
        pytest.param(b"[]", "empty_batch", None, id="empty-array"),
        pytest.param(
            _dumps(make_event(schema_version="2")),
            "unsupported_schema_version",
            "schema_version",
            id="schema-v2",
        ),
        pytest.param(
            _dumps(make_event(schema_version=True)),
            "unsupported_schema_version",
            "schema_version",
            id="schema-bool",
        ),
        pytest.param(
            _dumps({"event_id": "e"}), "missing_field", "timestamp", id="missing-required"
        ),
        pytest.param(
            _dumps(make_event(latency_ms=-1)), "invalid_field", "latency_ms", id="negative-latency"
        ),
        pytest.param(
            _dumps(make_event(usage={"input_tokens": "many"})),
            "invalid_field",
            "usage.input_tokens",
            id="nested-path",
        ),
        pytest.param(
            _dumps(make_event(input={"messages": [{"content": "x"}]})),
            "missing_field",
            "input.messages.0.role",
            id="message-path",
        ),
    ],
)
def test_dead_letter_reasons(payload: bytes | None, reason: str, field: str | None) -> None:
    """Each kind of bad payload is one dead letter with a reason and, where known, the field."""
    decoded = decode(payload, LINEAGE)
    assert decoded.events == []
    [dead] = decoded.dead_letters
    assert dead.reason == reason
    assert dead.field == field
    assert dead.lineage == LINEAGE
    assert dead.message


def test_nan_in_one_element_spares_the_rest_of_the_batch() -> None:
    """Python's json.dumps writes NaN; only the element holding it is dead-lettered."""
    good = _dumps(make_event(event_id="good"))
    payload = b"[" + good + b', {"event_id": "bad", "latency_ms": NaN}, ' + good + b"]"
    decoded = decode(payload, LINEAGE)
    assert [lin.batch_index for _, lin in decoded.events] == [0, 2]
    [dead] = decoded.dead_letters
    assert (dead.reason, dead.field, dead.lineage.batch_index) == ("invalid_json", "latency_ms", 1)
    assert b"NaN" in dead.payload


def test_an_element_nested_deeper_than_orjson_writes_dead_letters_alone() -> None:
    """A bad element nested 300 levels (orjson reads 1,024, writes 254) is its own dead letter
    with its reason and its bytes; the valid event beside it goes on. It was ``undecodable``,
    the whole message, the valid event lost with it."""
    bad = '{"event_id": "bad", "attributes": {"x": ' + _nested(300, "[") + "}}"
    payload = b"[" + _dumps(make_event(event_id="good")) + b", " + bad.encode() + b"]"
    decoded = decode(payload, LINEAGE)
    assert [e.event_id for e, _ in decoded.events] == ["good"]
    [dead] = decoded.dead_letters
    assert (dead.reason, dead.field, dead.lineage.batch_index) == ("missing_field", "timestamp", 1)
    assert dead.payload == bad.encode()


@given(
    st.integers(min_value=0, max_value=1_100),
    st.sampled_from(["[", "{"]),
    st.sampled_from(["valid", "invalid", "nan"]),
    st.booleans(),
)
@settings(max_examples=150, deadline=None)
def test_any_depth_is_an_event_or_a_dead_letter_with_its_reason(
    depth: int, opener: str, kind: str, batch: bool
) -> None:
    """An event whose attributes nest to any depth (past what orjson reads, writes, or Python
    recurses) decodes to an event or a dead letter with a proper reason, never the catch-all,
    and in a batch the valid event beside it is never lost."""
    value = _nested(depth, opener)
    event = _dumps(make_event(event_id="deep", attributes={"x": 1}))
    if kind == "invalid":
        event = event.replace(b'"status": "ok"', b'"status": 7')
    elif kind == "nan":
        event = event.replace(b"820.0", b"NaN")
    event = event.replace(b'{"x": 1}', b'{"x": %s}' % value.encode())
    payload = b"[" + _dumps(make_event(event_id="good")) + b", " + event + b"]" if batch else event
    decoded = decode(payload, LINEAGE)
    _nothing_crashed(decoded)
    assert len(decoded.events) + len(decoded.dead_letters) in ((2, 1) if batch else (1,))
    if depth < 500 and batch:  # well within what orjson and Python's json read
        assert "good" in [e.event_id for e, _ in decoded.events]


def test_dead_letter_counts_further_problems() -> None:
    """Several problems in one event are one dead letter that says how many more there are."""
    decoded = decode(_dumps({"event_id": "e"}), LINEAGE)
    assert "(and 3 more problems)" in decoded.dead_letters[0].message


def test_dead_letter_payload_is_capped_with_size_and_hash() -> None:
    """A huge payload is cut at the cap; its full size and hash are kept."""
    payload = b'{"event_id": "' + b"x" * (PAYLOAD_CAP_BYTES * 2) + b'"'
    [dead] = decode(payload, LINEAGE).dead_letters
    assert len(dead.payload) == PAYLOAD_CAP_BYTES
    assert dead.payload_size == len(payload)
    assert dead.payload_truncated
    assert dead.payload_sha256 == hashlib.sha256(payload).hexdigest()


def test_small_payload_kept_whole() -> None:
    """A payload under the cap is kept byte for byte."""
    payload = b'{"not": "an event"}'
    [dead] = decode(payload, LINEAGE).dead_letters
    assert dead.payload == payload
    assert not dead.payload_truncated


def test_dead_letter_summary_is_one_line() -> None:
    """The console line names where, why and which field."""
    bad = make_event()
    del bad["release"]
    [dead] = decode(_dumps([make_event(), bad]), LINEAGE).dead_letters
    assert dead.summary == "llm.inference.events[3]@1234#1 missing_field: release: Field required"


def test_dead_letter_round_trips_as_json() -> None:
    """A dead letter serialises to JSON and back unchanged (it goes on a topic later)."""
    [dead] = decode(b"\x00\x01garbage", LINEAGE).dead_letters
    assert DeadLetter.model_validate_json(dead.model_dump_json()) == dead


def _json_values(numbers: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.recursive(
        st.none() | st.booleans() | numbers | st.text(),
        lambda children: (
            st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4)
        ),
        max_leaves=20,
    )


# Anything a producer's JSON library may write, including integers beyond 64 bits and Infinity.
json_values = _json_values(st.integers() | st.floats(allow_nan=False))
# What orjson parses: 64-bit integers and finite floats.
parseable = _json_values(
    st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
)


@given(st.binary(max_size=2048))
@settings(max_examples=400)
def test_arbitrary_bytes_never_raise(payload: bytes) -> None:
    """Any bytes at all decode to events or dead letters, and never raise."""
    decoded = decode(payload, LINEAGE)
    assert decoded.events or decoded.dead_letters
    _nothing_crashed(decoded)


@given(json_values)
@settings(max_examples=400)
def test_arbitrary_json_never_raises(value: Any) -> None:
    """Any JSON document decodes to events or dead letters, and never raises."""
    decoded = decode(_dumps(value), LINEAGE)
    assert decoded.events or decoded.dead_letters
    _nothing_crashed(decoded)


@given(
    st.lists(
        st.fixed_dictionaries(
            {},
            optional={
                "event_id": st.text(max_size=5) | st.integers(),
                "timestamp": st.sampled_from(
                    ["2026-11-25T12:00:00Z", "2026-11-25", "", "2026-13-01T00:00:00Z"]
                )
                | st.integers(),
                "service": st.text(max_size=5) | st.none(),
                "release": st.text(max_size=5),
                "status": st.sampled_from(["ok", "error", "OK", "nope"]) | st.integers(),
                "latency_ms": st.floats(allow_nan=False, allow_infinity=False)
                | st.text(max_size=3),
                "usage": parseable,
                "scores": parseable,
                "feedback": parseable,
                "output": parseable,
                "spans": parseable,
                "schema_version": st.sampled_from(["1", "2", 1, 2]) | parseable,
            },
        ),
        max_size=5,
    )
)
@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
def test_near_valid_batches_account_for_every_element(batch: list[dict[str, Any]]) -> None:
    """Every element of a batch (of parseable JSON) becomes exactly one event or one dead letter."""
    decoded = decode(_dumps(batch), LINEAGE)
    _nothing_crashed(decoded)
    if not batch:
        assert [d.reason for d in decoded.dead_letters] == ["empty_batch"]
        return
    lineages = [lin for _, lin in decoded.events] + [d.lineage for d in decoded.dead_letters]
    assert sorted(lin.batch_index or 0 for lin in lineages) == list(range(len(batch)))
    assert all(lin.batch_index is not None for lin in lineages)

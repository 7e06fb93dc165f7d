"""Dead letters on the wire: headers carry why and where; the value is the original payload."""

from __future__ import annotations

from datetime import UTC, datetime

from driftnet.contract.decode import decode
from driftnet.contract.dlq import PREFIX, dead_letter_headers, read_dead_letter
from driftnet.contract.events import Lineage

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def test_headers_round_trip_every_field() -> None:
    payload = b'[{"event_id": "a"}, {"event_id": "b", "timestamp": "2026-11-25T12:00:00Z"}]'
    decoded = decode(payload, Lineage("llm.inference.events", 3, 1234), payload_cap=20)
    first, second = decoded.dead_letters
    for letter in (first, second):
        headers = dead_letter_headers(letter, NOW)
        assert all(name.startswith(PREFIX) for name, _ in headers)
        assert read_dead_letter(letter.payload, headers) == letter
    assert dict(dead_letter_headers(second, NOW))[PREFIX + "batch_index"] == b"1"
    assert dict(dead_letter_headers(second, NOW))[PREFIX + "truncated"] == b"true"
    assert (
        dict(dead_letter_headers(second, NOW))[PREFIX + "detected_at"] == NOW.isoformat().encode()
    )


def test_absent_field_and_batch_index_are_left_out() -> None:
    [letter] = decode(b"{oops", Lineage("t", 0, 7)).dead_letters
    names = {name for name, _ in dead_letter_headers(letter, NOW)}
    assert PREFIX + "field" not in names
    assert PREFIX + "batch_index" not in names
    assert read_dead_letter(letter.payload, dead_letter_headers(letter, NOW)) == letter


def test_dlq_header_table_in_the_module_doc_lists_every_header() -> None:
    import driftnet.contract.dlq

    [letter] = decode(b'[{"event_id": 1}]', Lineage("t", 0, 7)).dead_letters
    doc = driftnet.contract.dlq.__doc__ or ""
    for name, _ in dead_letter_headers(letter, NOW):
        assert f"``{name}``" in doc

"""The unreadable-batch guard (streams/intake/unreadable.py) against the installed aiokafka: a record
batch that cannot be read -- garbage where lz4, zstd, snappy or gzip data should be, a codec id
Kafka does not define, a CRC mismatch, records that do not parse -- becomes one marker record at
its last offset, the fetch position moves past it, and every readable batch around it is read
as before. These tests drive aiokafka's own PartitionRecords, MemoryRecords and consumer, so an
aiokafka upgrade that changes what the hook wraps fails here."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka.consumer import fetcher
from aiokafka.record.memory_records import MemoryRecords
from aiokafka.structs import TopicPartition

from driftnet.contract.dlq import (
    Entry,
    Selection,
    dead_letter_headers,
    plan_replay,
    read_dead_letter,
)
from driftnet.streams.intake.unreadable import (
    HEADER,
    GuardUnavailable,
    UnreadableBatch,
    guard,
    install,
    unreadable_batch,
)
from tests.support.record_batches import (
    GARBAGE,
    GZIP,
    LZ4,
    SNAPPY,
    ZSTD,
    good_batch,
    produce_raw,
    record_batch,
)


def fetched(buffer: bytes, topic: str, fetch_offset: int = 0) -> tuple[list[Any], int]:
    """What aiokafka's (patched) PartitionRecords yields for one fetch of ``buffer``, and the
    position it leaves for the next fetch."""
    records = fetcher.PartitionRecords(
        TopicPartition(topic, 0), MemoryRecords(buffer), None, fetch_offset,
        None, None, True, fetcher.READ_UNCOMMITTED,
    )  # fmt: skip
    return list(records), records.next_fetch_offset


def guarded_topic() -> str:
    topic = f"guarded-{uuid.uuid4().hex[:8]}"
    guard([topic])
    return topic


def markers(records: list[Any]) -> list[UnreadableBatch]:
    found = [unreadable_batch(r.headers) for r in records]
    return [batch for batch in found if batch is not None]


def poisoned_fetch() -> bytes:
    """offsets 0-2 readable (lz4), 3-5 garbage lz4, 6-7 codec 5, 8 CRC mismatch, 9-10 records
    that do not parse, 11-12 garbage zstd, 13 garbage snappy, 14 garbage gzip, 15-16 readable
    (gzip)."""
    return b"".join(
        [
            good_batch([b"a", b"b", b"c"], codec=LZ4, base_offset=0),
            record_batch(GARBAGE, count=3, codec=LZ4, base_offset=3),
            record_batch(GARBAGE, count=2, codec=5, base_offset=6),
            record_batch(b"\x00" * 20, count=1, base_offset=8, valid_crc=False),
            record_batch(b"\x01\x02\x03", count=2, base_offset=9),
            record_batch(GARBAGE, count=2, codec=ZSTD, base_offset=11),
            record_batch(GARBAGE, count=1, codec=SNAPPY, base_offset=13),
            record_batch(GARBAGE, count=1, codec=GZIP, base_offset=14),
            good_batch([b"d", b"e"], codec=GZIP, base_offset=15),
        ]
    )


def test_each_unreadable_batch_is_one_marker_and_the_batches_around_it_are_read() -> None:
    """Every kind of unreadable batch in one fetch: one marker each, at its last offset, naming
    its offsets, codec and error; the readable records all come, in order; the next fetch
    starts after the last batch."""
    records, position = fetched(poisoned_fetch(), guarded_topic())
    assert [r.offset for r in records] == [0, 1, 2, 5, 7, 8, 10, 12, 13, 14, 15, 16]
    assert [r.value for r in records if unreadable_batch(r.headers) is None] == [
        b"a", b"b", b"c", b"d", b"e",
    ]  # fmt: skip
    found = markers(records)
    assert [(b.first_offset, b.last_offset, b.codec) for b in found] == [
        (3, 5, "lz4"), (6, 7, "codec 5"), (8, 8, "none"), (9, 10, "none"), (11, 12, "zstd"),
        (13, 13, "snappy"), (14, 14, "gzip"),
    ]  # fmt: skip
    errors = [b.error.split(":")[0] for b in found]
    assert errors == [
        "DecompressionError", "UnsupportedCodecError", "ValueError", "CorruptRecordException",
        "DecompressionError", "DecompressionError", "BadGzipFile",
    ]  # fmt: skip
    assert "CRC mismatch" in found[2].error
    assert position == 17


def test_without_the_guard_aiokafka_itself_raises_on_the_same_fetch() -> None:
    """The baseline the guard exists for: aiokafka decompresses while it iterates a fetch and
    raises at the first unreadable batch (a topic not guarded is read exactly as before)."""
    install()
    topic = f"unguarded-{uuid.uuid4().hex[:8]}"
    with pytest.raises(Exception, match="lz4"):
        fetched(poisoned_fetch(), topic)


def test_an_unreadable_last_batch_still_moves_the_position_past_it() -> None:
    """A fetch that ends with an unreadable batch: the next fetch starts after it, not at it
    (which would read it again forever)."""
    buffer = good_batch([b"a"], base_offset=40) + record_batch(
        GARBAGE, count=4, codec=LZ4, base_offset=41
    )
    records, position = fetched(buffer, guarded_topic(), fetch_offset=40)
    assert [r.offset for r in records] == [40, 44]
    assert position == 45


def test_a_corrupt_batch_claiming_too_many_offsets_is_bounded_by_the_next_batch() -> None:
    """A CRC mismatch may be in the batch's own offset count: the next batch's first offset
    bounds it, so no readable record after it is skipped."""
    buffer = record_batch(b"\x00" * 30, count=100, base_offset=0, valid_crc=False)
    buffer += good_batch([b"x", b"y"], base_offset=4)
    records, position = fetched(buffer, guarded_topic())
    assert [(b.first_offset, b.last_offset) for b in markers(records)] == [(0, 3)]
    assert [r.value for r in records[1:]] == [b"x", b"y"]
    assert position == 6


def test_bytes_that_cannot_even_be_cut_into_a_batch_are_skipped_one_offset_at_a_time() -> None:
    """A batch whose length field is too short to hold a header: aiokafka's MemoryRecords
    cannot step past it, so the guard skips one offset and the next fetch goes on from there."""
    import struct

    broken = struct.pack(">qi", 7, 10) + b"\x00" * 10
    records, position = fetched(broken, guarded_topic(), fetch_offset=7)
    assert [(b.first_offset, b.last_offset, b.codec) for b in markers(records)] == [
        (7, 7, "unknown")
    ]
    assert position == 8


def test_a_producer_cannot_forge_a_marker() -> None:
    """A message carrying the marker header without this process's token is an ordinary
    message (it is triaged, not taken for a skipped batch)."""
    forged = {
        "topic": "t", "partition": 0, "first_offset": 0, "last_offset": 9, "codec": "lz4",
        "error": "x",
    }  # fmt: skip
    assert unreadable_batch([(HEADER, json.dumps(forged).encode())]) is None
    with_token = forged | {"token": "0" * 32}
    assert unreadable_batch([(HEADER, json.dumps(with_token).encode())]) is None
    assert unreadable_batch([(HEADER, b"not json")]) is None
    assert unreadable_batch(None) is None


def test_the_dead_letter_names_the_batch_and_is_not_replayed() -> None:
    """The ``unreadable_batch`` dead letter: source topic, partition, first offset in the
    usual headers, the last in ``driftnet.dlq.last_offset``, the error in its message, no
    payload; ``dlq replay`` skips it (there are no bytes to send back)."""
    batch = UnreadableBatch("llm.inference.events", 2, 120, 149, "lz4",
                            "DecompressionError: lz4: ERROR_frameType_unknown")  # fmt: skip
    headers = dead_letter_headers(batch.dead_letter(), datetime.now(UTC))
    assert dict(headers)["driftnet.dlq.last_offset"] == b"149"
    letter = read_dead_letter(b"", headers)
    assert (letter.reason, letter.lineage.partition, letter.lineage.offset) == (
        "unreadable_batch", 2, 120,
    )  # fmt: skip
    assert letter.last_offset == 149
    assert letter.summary == (
        "llm.inference.events[2]@120 unreadable_batch: record batch at offsets 120-149 (compression: "
        "lz4) cannot be read: DecompressionError: lz4: ERROR_frameType_unknown"
    )
    entry = Entry.of("llm.inference.dlq", 0, 5, None, b"", headers)
    plan = plan_replay([entry], Selection(), None)
    assert (plan.send, [why for _, why in plan.skipped]) == (
        [], ["an unreadable record batch has no payload to replay"],
    )  # fmt: skip


def test_the_guard_refuses_an_aiokafka_of_another_shape(monkeypatch: pytest.MonkeyPatch) -> None:
    """If an upgrade changes PartitionRecords' signature, installing the guard says so (the
    worker logs it) instead of wrapping the wrong argument."""

    class Other:
        def __init__(self, tp: Any, fetch_offset: int, records: Any) -> None: ...

    monkeypatch.setattr(fetcher, "PartitionRecords", Other)
    with pytest.raises(GuardUnavailable, match=r"PartitionRecords\(tp, fetch_offset, records\)"):
        install()


async def _consume(bootstrap: str, topic: str, until_offset: int) -> list[Any]:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                                enable_auto_commit=False)  # fmt: skip
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        got: list[Any] = []
        for _ in range(60):
            for records in (await consumer.getmany(timeout_ms=500)).values():
                got.extend(records)
            if got and got[-1].offset >= until_offset:
                break
        return got
    finally:
        await consumer.stop()


@pytest.mark.integration
def test_a_consumer_on_the_broker_reads_past_unreadable_batches(kafka_bootstrap: str) -> None:
    """On the real broker, through aiokafka's consumer and fetcher: the broker stores and
    serves each batch as produced; a guarded consumer gets the readable records and one marker
    per unreadable batch; an unguarded one raises at the first (what the worker died of)."""
    from kafka.admin import KafkaAdminClient, NewTopic

    topic = f"poison-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        admin.create_topics([NewTopic(topic, 1, 1)])
    finally:
        admin.close()
    sent = [
        good_batch([b"first"], codec=ZSTD),
        record_batch(GARBAGE, count=3, codec=LZ4),
        record_batch(GARBAGE, count=2, codec=ZSTD),
        record_batch(b"\x00" * 20, count=1, valid_crc=False),
        good_batch([b"last", b"really last"], codec=SNAPPY),
    ]
    assert [produce_raw(kafka_bootstrap, topic, batch) for batch in sent] == [0] * len(sent)

    with pytest.raises(Exception, match="lz4"):
        asyncio.run(_consume(kafka_bootstrap, topic, until_offset=8))
    guard([topic])
    records = asyncio.run(_consume(kafka_bootstrap, topic, until_offset=8))
    assert [(r.offset, r.value) for r in records if unreadable_batch(r.headers) is None] == [
        (0, b"first"), (7, b"last"), (8, b"really last"),
    ]  # fmt: skip
    assert [(b.first_offset, b.last_offset, b.codec) for b in markers(records)] == [
        (1, 3, "lz4"), (4, 5, "zstd"), (6, 6, "none"),
    ]  # fmt: skip


def test_the_worker_counts_each_skipped_batch_by_topic_from_zero_and_logs_it_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """driftnet_unreadable_batches_total has a sample at 0 for every guarded topic before any
    batch is skipped (so rate() works from the first), then counts each under its topic; each
    skipped batch is one ERROR line naming it."""
    from driftnet.streams.ops.counters import Counters
    from driftnet.streams.ops.metrics import families
    from driftnet.streams.ops.snapshot import Snapshot

    counters = Counters()
    counters.unreadable_batches.update({"events": 0, "spans": 0})
    batch = UnreadableBatch("events", 1, 3, 5, "lz4", "DecompressionError: lz4: bad frame")
    with caplog.at_level("INFO", logger="driftnet.worker"):
        letter = counters.unreadable(batch)
    snapshot = Snapshot(healthy=True, unreadable_batches=counters.unreadable_batches)
    counted = {
        sample.labels["topic"]: sample.value
        for family in families(snapshot)
        for sample in family.samples
        if sample.name == "driftnet_unreadable_batches_total"
    }
    assert counted == {"events": 1, "spans": 0}
    assert letter == batch.dead_letter()
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("ERROR", "events[1] record batch at offsets 3-5 (compression: lz4) cannot be read, "
                  "skipped: DecompressionError: lz4: bad frame"),
    ]  # fmt: skip

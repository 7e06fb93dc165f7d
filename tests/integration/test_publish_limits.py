"""Message size limits: the publisher never sends a message over the producer's
max_request_size (batches close before, an event too large alone is refused, named and
counted), splits a batch the broker refuses as too large, and `driftnet publish` says which
line was refused and why, with the broker hint only when no broker answered."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any, Literal

import orjson
import pytest
from click.testing import CliRunner
from kafka.producer import sender as kafka_sender
from kafka.record.default_records import DefaultRecordBatchBuilder

from driftnet.cli.main import cli
from driftnet.contract.batching import Batcher, record_bytes
from driftnet.sandbox.broker import free_port
from driftnet.streams.clients.publisher import EventPublisher
from driftnet.streams.settings import KafkaSettings, PublisherSettings
from tests.support.factories import make_event
from tests.support.kafka_helpers import join_publisher_threads, read_topic

MIB = 1024 * 1024


def event_of(event_id: str, text_bytes: int = 20) -> dict[str, Any]:
    """A valid event whose output text is ``text_bytes`` long."""
    return make_event(event_id=event_id, output={"text": "x" * text_bytes})


def ids_on(bootstrap: str, topic: str, messages: int) -> tuple[list[str], list[int]]:
    """The event ids on ``topic`` in order, and the size of each message."""
    records = read_topic(bootstrap, topic, expected=messages)
    ids: list[str] = []
    for record in records:
        value = orjson.loads(record.value)
        ids.extend(e["event_id"] for e in (value if isinstance(value, list) else [value]))
    return ids, [len(record.value) for record in records]


# -- pure -------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", [None, b"", b"support-chat/production/r7/baseline", b"k" * 300])
@pytest.mark.parametrize("value", [0, 1, 63, 64, 8191, 8192, 1_048_000, 2_100_000])
def test_record_bytes_is_kafka_pythons_own_count(key: bytes | None, value: int) -> None:
    """The publisher's size of a message is the one kafka-python checks max_request_size on."""
    expected = DefaultRecordBatchBuilder.estimate_size_in_bytes(key, b"v" * value, [])
    assert record_bytes(None if key is None else len(key), value) == expected


def test_a_batch_closes_before_it_would_outgrow_the_request_limit() -> None:
    """With a request limit below batch_max_bytes, batches close at the limit; an event that
    fits alone but not with its batch starts the next batch."""
    limit = 10_000
    batcher = Batcher(max_events=100, max_bytes=900_000, linger_s=1.0, max_record_bytes=limit)
    key = b"support-chat/production/r7/baseline"
    ready = []
    for size in (3_000, 3_000, 3_000, 9_800, 1_000):
        ready.extend(batcher.add(key, b"x" * size, 0.0))
    ready.extend(batcher.drain())
    assert [len(b.items) for b in ready] == [3, 1, 1]
    assert all(record_bytes(len(key), len(b.value())) <= limit for b in ready)


# -- the publisher on a real broker --------------------------------------------------------


def test_an_event_over_max_request_size_is_refused_alone_and_named(kafka_bootstrap: str) -> None:
    """A 2 MB event among normal ones: publish() returns False at once, it is counted as
    too_large and named with its size and the limit; the others arrive, and an event that fits
    alone (1,000,000 bytes) but not beside its batch is sent in a message of its own."""
    topic = f"limits-{uuid.uuid4().hex[:8]}"
    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap)
    with EventPublisher(kafka, topic, PublisherSettings(linger_ms=200)) as publisher:
        assert publisher.max_request_size == MIB
        assert publisher.publish(event_of("small-1", 300_000))
        assert publisher.publish(event_of("small-2", 300_000))
        assert publisher.publish(event_of("huge", 2_000_000)) is False
        assert publisher.publish(event_of("alone", 1_000_000))
        assert publisher.publish(event_of("small-3"))
    stats = publisher.stats
    assert stats.dropped == {"too_large": 1}
    assert stats.last_error is not None
    assert stats.last_error.startswith("event huge is 2,000,")
    assert stats.last_error.endswith("bytes, over the producer's max_request_size of 1,048,576 "
                                     "bytes; not sent")  # fmt: skip
    assert (stats.accepted, stats.sent, stats.pending) == (4, 4, 0)
    ids, sizes = ids_on(kafka_bootstrap, topic, stats.messages)
    assert ids == ["small-1", "small-2", "alone", "small-3"]
    assert max(sizes) < MIB
    assert stats.messages == 3  # [small-1, small-2], alone, small-3


def test_batches_stay_under_a_request_limit_below_batch_max_bytes(kafka_bootstrap: str) -> None:
    """publisher.max_request_size below batch_max_bytes: every event arrives, in messages no
    larger than the limit."""
    topic = f"limits-{uuid.uuid4().hex[:8]}"
    options = PublisherSettings(max_request_size=64 * 1024, linger_ms=500)
    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap)
    with EventPublisher(kafka, topic, options) as publisher:
        for i in range(30):
            assert publisher.publish(event_of(f"e{i:02d}", 10_000))
    stats = publisher.stats
    assert (stats.sent, stats.dropped_total) == (30, 0)
    ids, sizes = ids_on(kafka_bootstrap, topic, stats.messages)
    assert ids == [f"e{i:02d}" for i in range(30)]
    assert stats.messages >= 5
    assert max(sizes) <= 64 * 1024


@pytest.fixture
def broker_limit(monkeypatch: pytest.MonkeyPatch) -> int:
    """The broker refuses record batches over 150,000 bytes with MESSAGE_TOO_LARGE (error
    10), as a broker with message.max.bytes=150000 does. The embedded broker enforces no
    limit, so kafka-python's sender answers such a batch with that broker error itself,
    without sending it."""
    limit = 150_000
    original = kafka_sender.Sender._create_produce_requests
    response = kafka_sender._PartitionProduceResponse

    def create(self: Any, collated: dict[int, list[Any]]) -> Any:
        kept: dict[int, list[Any]] = {}
        for node, batches in collated.items():
            kept[node] = []
            for batch in batches:
                if batch.records.size_in_bytes() <= limit:
                    kept[node].append(batch)
                    continue
                refused = response(
                    index=batch.topic_partition.partition,
                    error_code=10,
                    error_message="The request included a message larger than the max message "
                    "size the server will accept.",
                )
                self._complete_batch(batch, refused)
        return original(self, kept)

    monkeypatch.setattr(kafka_sender.Sender, "_create_produce_requests", create)
    return limit


@pytest.mark.parametrize("acks", ["all", "1"], ids=["idempotent", "leader-ack"])
def test_a_batch_the_broker_refuses_as_too_large_is_split_and_sent(
    kafka_bootstrap: str, broker_limit: int, acks: Literal["all", "1"]
) -> None:
    """The broker refuses a 200 KB batch: it is split until each part fits and every event
    arrives once; an event over the broker's limit alone is counted as broker_too_large, with
    the broker named as the one that refused it. The idempotent producer (acks=all), which
    kafka-python fails for good after such an error, is replaced and the rest still arrives."""
    topic = f"limits-{uuid.uuid4().hex[:8]}"
    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap)
    options = PublisherSettings(linger_ms=500, acks=acks)
    with EventPublisher(kafka, topic, options) as publisher:
        for i in range(8):
            assert publisher.publish(event_of(f"e{i}", 25_000))
        assert publisher.publish(event_of("big", 160_000))
        assert publisher.flush(30)
        assert publisher.publish(event_of("after"))
    stats = publisher.stats
    assert stats.dropped == {"broker_too_large": 1}
    assert stats.sent == 9
    assert stats.last_error is not None
    assert stats.last_error.startswith("the broker refused event big (160,")
    ids, sizes = ids_on(kafka_bootstrap, topic, stats.messages)
    assert sorted(ids) == sorted(["after", *(f"e{i}" for i in range(8))])
    assert max(sizes) <= broker_limit


# -- driftnet publish -------------------------------------------------------------------------


def events_file(path: Path) -> Path:
    """Four normal events and, on line 3, one of 2 MB."""
    events = [
        event_of("n1"),
        event_of("n2"),
        event_of("huge-1", 2_000_000),
        event_of("n3"),
        event_of("n4"),
    ]
    path.write_bytes(b"\n".join(orjson.dumps(e) for e in events) + b"\n")
    return path


def test_cli_publish_names_the_event_too_large_and_exits_1(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, kafka_bootstrap: str, tmp_path: Path
) -> None:
    """`driftnet publish` with a 2 MB event among normal ones: the normal events arrive, the
    big one is named (line, event id, size, limit) in one line, the error counts it and does
    not ask whether a broker is running; exit 1, no traceback."""
    topic = f"limits-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("DRIFTNET_KAFKA__BOOTSTRAP_SERVERS", kafka_bootstrap)
    source = events_file(tmp_path / "events.jsonl")
    result = runner.invoke(cli, ["publish", "--topic", topic, "--create-topic", str(source)])
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    [refusal] = [line for line in lines if "huge-1" in line]
    assert refusal.startswith(f"{source}:3: event huge-1 is 2,000,")
    assert refusal.endswith(
        "bytes, over the producer's max_request_size of 1,048,576 bytes "
        "(publisher.max_request_size); not sent"
    )
    assert f"{source}: 5 lines -> 4 events in " in result.output
    assert lines[-1] == (
        "Error: 1 events refused as larger than the producer's max_request_size (1,048,576 bytes)"
    )
    assert "is a broker running" not in result.output
    assert "Traceback" not in result.output
    ids, _ = ids_on(kafka_bootstrap, topic, 1)
    assert ids == ["n1", "n2", "n3", "n4"]


def test_cli_publish_says_when_the_broker_refuses_a_message_as_too_large(
    runner: CliRunner,
    monkeypatch: pytest.MonkeyPatch,
    kafka_bootstrap: str,
    tmp_path: Path,
    broker_limit: int,
) -> None:
    """A message the broker refuses as too large is reported as that, not as "no broker"."""
    monkeypatch.setenv("DRIFTNET_KAFKA__BOOTSTRAP_SERVERS", kafka_bootstrap)
    source = tmp_path / "events.jsonl"
    source.write_bytes(orjson.dumps(event_of("big", 200_000)) + b"\n")
    topic = f"limits-{uuid.uuid4().hex[:8]}"
    result = runner.invoke(
        cli, ["publish", "--topic", topic, "--create-topic", "--timeout", "20", str(source)]
    )
    assert result.exit_code == 1, result.output
    assert result.output.strip().splitlines()[-1] == (
        f"Error: 1 events refused by the broker at {kafka_bootstrap} as larger than its "
        "message.max.bytes (or the topic's max.message.bytes)"
    )
    assert "is a broker running" not in result.output
    assert "Traceback" not in result.output


def test_cli_publish_asks_for_a_broker_only_when_none_answers(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Nothing listens on the port: one line asking whether a broker is running, before the
    file is read (so before the 2 MB event is weighed)."""
    monkeypatch.setenv("DRIFTNET_KAFKA__BOOTSTRAP_SERVERS", f"127.0.0.1:{free_port()}")
    source = events_file(tmp_path / "events.jsonl")
    result = runner.invoke(cli, ["publish", "--timeout", "0.5", str(source)])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "Error: cannot reach Kafka at "
        f"127.0.0.1:{os.environ['DRIFTNET_KAFKA__BOOTSTRAP_SERVERS'].split(':')[1]} "
        "(connection refused); is a broker running? (`driftnet broker` starts one)"
    ]
    join_publisher_threads()

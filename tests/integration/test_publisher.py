"""EventPublisher on a real broker, and with no broker at all: batched per cohort, in order,
and never blocking or raising into the code that embeds it."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import defaultdict
from pathlib import Path

import orjson
import pytest

from driftnet.contract.events import Cohort, InferenceEvent
from driftnet.sandbox.broker import EmbeddedBroker, free_port
from driftnet.streams.clients.publisher import EventPublisher
from driftnet.streams.settings import KafkaSettings, PublisherSettings
from tests.support.factories import make_event
from tests.support.kafka_helpers import join_publisher_threads, read_topic

pytestmark = pytest.mark.integration

COHORTS = [("support-chat", "baseline"), ("support-chat", "canary"), ("search", "baseline")]


def _events(n: int) -> list[dict[str, object]]:
    return [
        make_event(event_id=f"evt-{i:05d}", service=COHORTS[i % 3][0], variant=COHORTS[i % 3][1])
        for i in range(n)
    ]


def test_events_arrive_once_batched_per_cohort_in_order(kafka_bootstrap: str) -> None:
    topic = f"publisher-{uuid.uuid4().hex[:8]}"
    events = _events(3000)
    options = PublisherSettings(batch_max_events=50, linger_ms=20)
    with EventPublisher(KafkaSettings(bootstrap_servers=kafka_bootstrap), topic, options) as pub:
        for event in events[:-1]:
            assert pub.publish(event)
        assert pub.publish(InferenceEvent.model_validate(events[-1]))
    stats = pub.stats
    assert (stats.accepted, stats.sent, stats.pending, stats.dropped_total) == (3000, 3000, 0, 0)

    records = read_topic(kafka_bootstrap, topic, expected=stats.messages)
    assert len(records) == stats.messages
    assert 3000 / 50 <= stats.messages < 3000 / 10
    seen: dict[str, list[str]] = defaultdict(list)
    for record in records:
        value = orjson.loads(record.value)
        batch = value if isinstance(value, list) else [value]
        assert len(batch) <= 50
        for event in batch:
            assert Cohort.of(event).key == record.key.decode()
            seen[record.key.decode()].append(event["event_id"])
    assert sorted(i for ids in seen.values() for i in ids) == [e["event_id"] for e in events]
    for ids in seen.values():
        assert ids == sorted(ids), "a cohort's events keep their order"


def test_broker_down_the_host_keeps_running_and_drops_are_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Nothing listens on the port: publish() still returns at once, the buffer bound holds,
    drops are counted by reason and logged, and close() gives up in the time it was given."""
    kafka = KafkaSettings(bootstrap_servers=f"127.0.0.1:{free_port()}")
    options = PublisherSettings(buffer_max_bytes=256 * 1024)
    events = _events(2000)
    ticks = 0
    stop = threading.Event()

    def host_work() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            time.sleep(0.001)

    host = threading.Thread(target=host_work)
    host.start()
    caplog.set_level(logging.WARNING, logger="driftnet.publisher")
    publisher = EventPublisher(kafka, "nowhere", options)
    slowest = 0.0
    results = []
    for event in events:
        started = time.perf_counter()
        results.append(publisher.publish(event))
        slowest = max(slowest, time.perf_counter() - started)
    ticks_before_close = ticks
    started = time.monotonic()
    stats = publisher.close(timeout=1.0)
    closing = time.monotonic() - started
    stop.set()
    host.join()

    assert slowest < 0.5, f"publish() blocked for {slowest:.3f} s"
    assert closing < 5.0, f"close(timeout=1) took {closing:.1f} s"
    assert ticks_before_close > 0
    accepted = results.count(True)
    assert 0 < accepted < len(events), "the 256 KB buffer holds some events, not all"
    assert stats.accepted == accepted
    assert stats.dropped["buffer_full"] == len(events) - accepted
    assert stats.dropped["closed"] == accepted
    assert (stats.sent, stats.pending) == (0, 0)
    assert "dropped" in caplog.text
    assert "buffer_full" in caplog.text
    assert publisher.publish(events[0]) is False
    assert publisher.stats.dropped["closed"] == accepted + 1
    join_publisher_threads()


def test_unencodable_and_oversized_events_are_dropped_alone(kafka_bootstrap: str) -> None:
    """An unencodable event and one over max_request_size are dropped by reason, alone."""
    topic = f"publisher-{uuid.uuid4().hex[:8]}"
    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap)
    huge = make_event(event_id="huge", output={"text": "x" * 2_000_000})
    with EventPublisher(kafka, topic, PublisherSettings(batch_max_events=1)) as publisher:
        assert publisher.publish({"event_id": "bad", "when": object()}) is False
        assert publisher.publish(make_event(event_id="before"))
        assert publisher.publish(huge) is False
        assert publisher.publish(make_event(event_id="after"))
    stats = publisher.stats
    assert stats.dropped == {"unencodable": 1, "too_large": 1}
    assert stats.sent == 2
    records = read_topic(kafka_bootstrap, topic, expected=2)
    assert [orjson.loads(r.value)["event_id"] for r in records] == ["before", "after"]


def test_events_wait_for_a_broker_that_comes_up_later(tmp_path: Path) -> None:
    """Kafka down at start-up: events are kept (up to the buffer) and delivered once it is up."""
    port = free_port()
    kafka = KafkaSettings(bootstrap_servers=f"127.0.0.1:{port}")
    publisher = EventPublisher(kafka, "late-broker", PublisherSettings(linger_ms=10))
    for event in _events(200):
        assert publisher.publish(event)
    time.sleep(1.0)
    assert publisher.stats.sent == 0
    with EmbeddedBroker(port=port, log=tmp_path / "tansu.log"):
        assert publisher.flush(timeout=60), publisher.stats
        stats = publisher.close(timeout=10)
    assert (stats.sent, stats.dropped_total) == (200, 0)


def test_nothing_the_host_passes_makes_publish_raise() -> None:
    """Wrong types and unencodable values are counted drops, never exceptions."""
    kafka = KafkaSettings(bootstrap_servers=f"127.0.0.1:{free_port()}")
    publisher = EventPublisher(kafka, "nowhere")
    results = [
        publisher.publish({"event_id": "x", "payload": {1, 2}}),
        publisher.publish("not an event"),  # type: ignore[arg-type]
        publisher.publish_encoded(b"{}", None),  # type: ignore[arg-type]
        publisher.publish_raw("text, not bytes"),  # type: ignore[arg-type]
    ]
    assert results == [False] * 4
    assert publisher.close(timeout=0.1).dropped == {"unencodable": 4}
    join_publisher_threads()

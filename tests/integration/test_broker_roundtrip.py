"""The test broker behaves: single and batched events survive a round trip and decode."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic

from driftnet.contract.decode import decode
from driftnet.contract.events import Cohort, Lineage
from tests.support.factories import make_event

pytestmark = pytest.mark.integration


@pytest.fixture
def topic(kafka_bootstrap: str) -> Iterator[str]:
    """A fresh one-partition topic on the session's broker."""
    name = f"roundtrip-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap, client_id="driftnet-tests")
    try:
        admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=1)])
        yield name
    finally:
        admin.close()


def test_single_and_batched_messages_round_trip(kafka_bootstrap: str, topic: str) -> None:
    """A single-event message and a 50-event batch come back byte for byte, keyed by cohort,
    and decode to the same events with correct lineage."""
    single = make_event(event_id="single-1")
    batch = [
        make_event(event_id=f"batch-{i}", variant="canary", latency_ms=100.0 + i) for i in range(50)
    ]
    cohort_key = Cohort("support-chat", "production", "gpt-4o+prompt-v7", "canary").key

    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", linger_ms=5)
    sent = [
        (b"support-chat/production/gpt-4o+prompt-v7/baseline", json.dumps(single).encode()),
        (cohort_key.encode(), json.dumps(batch).encode()),
    ]
    try:
        for key, value in sent:
            producer.send(topic, key=key, value=value).get(timeout=30)
    finally:
        producer.close(timeout=10)

    consumer = KafkaConsumer(
        bootstrap_servers=kafka_bootstrap,
        group_id=None,
        enable_auto_commit=False,
        consumer_timeout_ms=15_000,
    )
    try:
        partition = TopicPartition(topic, 0)
        consumer.assign([partition])
        consumer.seek_to_beginning(partition)
        received = []
        for message in consumer:
            received.append(message)
            if len(received) == len(sent):
                break
    finally:
        consumer.close()

    assert [(m.key, m.value) for m in received] == sent
    decoded = [
        decode(m.value, Lineage(topic=m.topic, partition=m.partition, offset=m.offset))
        for m in received
    ]
    assert all(d.dead_letters == [] for d in decoded)
    [(first, first_lineage)] = decoded[0].events
    assert first.event_id == "single-1"
    assert (first_lineage.offset, first_lineage.batch_index) == (received[0].offset, None)
    assert [e.event_id for e, _ in decoded[1].events] == [f"batch-{i}" for i in range(50)]
    assert [lin.batch_index for _, lin in decoded[1].events] == list(range(50))
    assert {e.cohort.key for e, _ in decoded[1].events} == {cohort_key}

"""The dead-letter topic read back and replayed: every message up to the topic's end as an
:class:`~driftnet.contract.dlq.Entry`, and entries re-published to their source topics.

The topic is read without a consumer group (kafka-python with manual assignment: nothing is
committed, and its group join hangs on some brokers) from the beginning to its end as it was
when the reader started.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from driftnet.contract.dlq import Entry, replay_headers
from driftnet.streams.clients.kafka_config import (
    KafkaUnreachable,
    kafka_python_options,
    probe,
    whole_topic_consumer,
)
from driftnet.streams.settings import KafkaSettings

READ_TIMEOUT_S = 30.0
BOOTSTRAP_TIMEOUT_MS = 5_000


class DlqError(Exception):
    """The DLQ cannot be read or written (one line for the user)."""


def read_entries(
    kafka: KafkaSettings, topic: str, timeout_s: float = READ_TIMEOUT_S
) -> list[Entry]:
    """Every message of ``topic`` up to its current end, as :class:`Entry`."""
    return list(_scan(kafka, topic, timeout_s))


def _scan(kafka: KafkaSettings, topic: str, timeout_s: float) -> Iterator[Entry]:
    from kafka.errors import KafkaError

    consumer, assigned = whole_topic_consumer(
        kafka, topic, timeout_s=timeout_s, bootstrap_timeout_ms=BOOTSTRAP_TIMEOUT_MS,
        error=DlqError,
    )  # fmt: skip
    try:
        consumer.seek_to_beginning(*assigned)
        ends = consumer.end_offsets(assigned)
        deadline = time.monotonic() + timeout_s
        while True:
            if time.monotonic() > deadline:
                raise DlqError(f"reading {topic!r} took more than {timeout_s:g} s")
            batch = consumer.poll(timeout_ms=500)
            for records in batch.values():
                for r in records:
                    yield Entry.of(r.topic, r.partition, r.offset, r.key, r.value,
                                   r.headers or ())  # fmt: skip
            # At the end offsets, read on until a poll finds nothing: some brokers (Tansu)
            # report the end of a multi-record batch as one past its first record.
            if not batch and all(consumer.position(tp) >= ends[tp] for tp in assigned):
                return
    except KafkaError as exc:
        raise DlqError(f"reading {topic!r} failed: {type(exc).__name__}: {exc}") from None
    finally:
        consumer.close()


def publish(kafka: KafkaSettings, sends: list[tuple[Entry, str]], timeout_s: float) -> None:
    """Send each entry's payload, key and replay header to its topic, every one acknowledged."""
    from kafka import KafkaProducer
    from kafka.errors import KafkaError

    try:
        probe(kafka)
    except KafkaUnreachable as exc:
        raise DlqError(str(exc)) from None
    try:
        producer = KafkaProducer(**kafka_python_options(kafka), acks="all", linger_ms=5)
    except KafkaError as exc:
        raise DlqError(
            f"no Kafka broker at {kafka.bootstrap_servers} ({type(exc).__name__})"
        ) from None
    try:
        futures = [
            producer.send(
                topic, value=entry.value or b"", key=entry.key, headers=replay_headers(entry)
            )
            for entry, topic in sends
        ]
        producer.flush(timeout_s)
        for future in futures:
            future.get(timeout=timeout_s)
    except KafkaError as exc:
        raise DlqError(
            f"replay failed: {type(exc).__name__}: {exc} (what was sent stays sent)"
        ) from None
    finally:
        producer.close(timeout=5)

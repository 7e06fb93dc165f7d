"""Reading a topic's recent records back at start-up, without a consumer group: what the
worker restores its state from (the canary judges' from the verdicts topic, the detectors'
references from the detector-state topic).

Reads every chosen partition from the first record younger than ``since_ms`` (its Kafka
timestamp) to the partition's end as it was when the read began; records come in offset order
per partition, so on a keyed topic the last record of a key is its newest (a compacted topic
read this way gives the same answer whether or not the broker has compacted it yet).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from typing import Final, TypeVar

from driftnet.streams.clients.kafka_config import kafka_python_options
from driftnet.streams.settings import KafkaSettings

log = logging.getLogger("driftnet.detection")

READ_TIMEOUT_S: Final = 30.0
RESTORE_TIMEOUT_S: Final = 30.0
RESTORE_ATTEMPTS: Final = 3

T = TypeVar("T")


class ReadBack:
    """A state read back before the next window closes, retried on the next ticks: a failed
    read (the broker hiccuped) is tried again up to :data:`RESTORE_ATTEMPTS` times, with no
    window closed meanwhile; then the state starts afresh, with a warning."""

    def __init__(self, what: str, without: str) -> None:
        self.what = what
        """What is read, for the log: ``canary judge states``."""
        self.without = without
        """What giving up means, for the log: ``canary judges start without their history``."""
        self.failures = 0

    async def read(self, read: Callable[[], Awaitable[T]], empty: T) -> T | None:
        """``read()``'s answer; ``empty`` once the attempts are spent; None to try again."""
        try:
            result = await asyncio.wait_for(read(), RESTORE_TIMEOUT_S)
        except Exception as exc:  # the broker hiccuped: try again, then go on without
            self.failures += 1
            if self.failures < RESTORE_ATTEMPTS:
                log.warning("cannot read %s back (attempt %d of %d): %s: %s", self.what,
                            self.failures, RESTORE_ATTEMPTS, type(exc).__name__, exc)  # fmt: skip
                return None
            log.warning("%s: %s: %s", self.without, type(exc).__name__, exc)
            result = empty
        self.failures = 0
        return result


@dataclass(frozen=True, slots=True)
class Record:
    """One record read back."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    """None: a tombstone."""
    headers: tuple[tuple[str, bytes], ...]


async def read_recent(
    kafka: KafkaSettings,
    topic: str,
    since_ms: int,
    partitions: Collection[int] | None = None,
    timeout_s: float = READ_TIMEOUT_S,
) -> list[Record] | None:
    """The records of ``topic``'s ``partitions`` (all when None; those the topic does not
    have are left out) written since ``since_ms``, in offset order per partition; None when
    the topic does not exist. Past ``timeout_s`` what was read so far is returned (logged)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(
        **kafka_python_options(kafka), group_id=None, enable_auto_commit=False
    )
    found: list[Record] = []
    try:
        await consumer.start()
        if topic not in await consumer.topics():
            return None
        existing = consumer.partitions_for_topic(topic) or set()
        wanted = existing if partitions is None else existing & set(partitions)
        chosen = [TopicPartition(topic, p) for p in sorted(wanted)]
        if not chosen:
            return []
        consumer.assign(chosen)
        starts = await consumer.offsets_for_times(dict.fromkeys(chosen, since_ms))
        ends = await consumer.end_offsets(chosen)
        for tp in chosen:
            start = starts.get(tp)
            consumer.seek(tp, start.offset if start is not None else ends[tp])
        deadline = time.monotonic() + timeout_s
        while [tp for tp in chosen if await consumer.position(tp) < ends[tp]]:
            if time.monotonic() > deadline:
                log.warning("reading %s took over %g s: restored from what was read",
                            topic, timeout_s)  # fmt: skip
                break
            batches = await consumer.getmany(timeout_ms=500)
            for tp, records in batches.items():
                found.extend(
                    Record(tp.partition, r.offset, r.key, r.value, tuple(r.headers or ()))
                    for r in records
                )
    finally:
        await consumer.stop()
    return found

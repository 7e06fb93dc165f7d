"""The alert state's compacted topic (``driftnet.alerts.state``): written with the app's producer,
each write awaited until the broker acknowledges it, and read back whole -- group-less, with
aiokafka, like the canary judges' states (:mod:`driftnet.streams.detection.judge_state`) -- by
a worker that is given the signals partition, before it handles any signal.

The topic is declared ``cleanup.policy=compact``; a broker that does not compact (the
embedded test broker) keeps every version, and the reader takes the newest per key and drops
what a tombstone deleted (:func:`driftnet.alerts.state.newest`)."""

from __future__ import annotations

import asyncio
import time
from typing import Any, Final

from driftnet.alerts.state import Change, Records, newest
from driftnet.streams.clients.confirmed_sends import publish_now
from driftnet.streams.clients.kafka_config import kafka_python_options
from driftnet.streams.settings import Settings

READ_TIMEOUT_S: Final = 60.0
"""Reading the state back takes at most this long, else it fails (and is tried again):
alerting on a state read in part would page again what the missing part had told."""


class KafkaStateStore:
    """The alert state on its topic, and the signals partition's end (see :meth:`read`)."""

    def __init__(self, settings: Settings, topic: Any) -> None:
        self.settings = settings
        self.topic = topic

    async def write(self, changes: list[Change]) -> None:
        """Send ``changes`` (None: a tombstone) and return once the broker has every one;
        raises when it refused one (the caller writes them again)."""
        sent = [
            await publish_now(self.topic, {"key": key, "value": value}) for key, value in changes
        ]
        for outcome in await asyncio.gather(*sent, return_exceptions=True):
            if isinstance(outcome, BaseException):  # each one read: none logged as unread
                raise outcome

    async def read(self) -> tuple[Records, int | None]:
        """Every live record of the state topic, and the end offset of the signals partition
        (None when unknown); raises when the topic cannot be read to its end in time."""
        from aiokafka import AIOKafkaConsumer, TopicPartition

        name = self.settings.topics.alerts_state.name
        signals = TopicPartition(self.settings.topics.signals.name, 0)
        consumer = AIOKafkaConsumer(
            **kafka_python_options(self.settings.kafka), group_id=None, enable_auto_commit=False
        )
        log: list[tuple[bytes, bytes | None]] = []
        try:
            await consumer.start()
            partitions = [
                TopicPartition(name, p) for p in sorted(consumer.partitions_for_topic(name) or ())
            ]
            if not partitions:
                await consumer.topics()  # metadata refreshed: the topic may be new
                partitions = [
                    TopicPartition(name, p)
                    for p in sorted(consumer.partitions_for_topic(name) or ())
                ]
            if not partitions:
                raise LookupError(f"no topic {name}: run `driftnet topics create`")
            consumer.assign(partitions)
            ends = await consumer.end_offsets([*partitions, signals])
            await consumer.seek_to_beginning(*partitions)
            deadline = time.monotonic() + READ_TIMEOUT_S
            while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"reading {name} back took over {READ_TIMEOUT_S:g} s")
                batches = await consumer.getmany(*partitions, timeout_ms=500)
                for records in batches.values():
                    log.extend((record.key or b"", record.value) for record in records)
        finally:
            await consumer.stop()
        return newest(log), ends.get(signals)

"""The silences topic, followed by the worker that owns the signals partition."""

from __future__ import annotations

import logging
from typing import Any

from driftnet.alerts.silences import SilenceCommand
from driftnet.streams.settings import Settings

log = logging.getLogger("driftnet.alerts")


class SilenceReader:
    """Follows the silences topic without a consumer group (every worker could read it; the
    one that owns the signals partition applies it)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._consumer: Any = None

    async def poll(self) -> list[SilenceCommand]:
        from aiokafka import AIOKafkaConsumer, TopicPartition

        from driftnet.streams.clients.kafka_config import kafka_python_options

        topic = self.settings.topics.silences.name
        if self._consumer is None:
            consumer = AIOKafkaConsumer(
                **kafka_python_options(self.settings.kafka),
                group_id=None,
                enable_auto_commit=False,
            )
            await consumer.start()
            partitions = [
                TopicPartition(topic, p) for p in range(self.settings.topics.silences.partitions)
            ]
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            self._consumer = consumer
        commands: list[SilenceCommand] = []
        batches = await self._consumer.getmany(timeout_ms=0)
        for records in batches.values():
            for record in records:
                try:
                    commands.append(SilenceCommand.model_validate_json(record.value or b""))
                except ValueError:
                    log.warning("skipping an unreadable silence command")
        return commands

    async def close(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None

"""``driftnet publish FILE.jsonl``: send a JSON-lines file to the events topic.

Each line is one message as a producer would send it. An event object is batched with the
other events of its cohort (unless ``--no-batch``); an array is already a batch and goes as it
is; a line that is not JSON at all goes as it is too, so the worker dead-letters it exactly
as it would a buggy producer's message. Lines are never re-encoded.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from streams.events import Cohort
from streams.publisher import EventPublisher, PublisherStats
from streams.settings import Settings


@dataclass(frozen=True, slots=True)
class PublishResult:
    lines: int
    topic: str
    stats: PublisherStats

    def summary(self, source: str, servers: str) -> str:
        stats = self.stats
        line = (
            f"{source}: {self.lines} lines -> {stats.sent} events in {stats.messages} messages "
            f"on {self.topic} at {servers}"
        )
        if stats.dropped_total:
            reasons = ", ".join(f"{k} {v}" for k, v in sorted(stats.dropped.items()))
            line += f"; {stats.dropped_total} dropped ({reasons})"
        return line


def publish_lines(
    lines: Iterable[bytes], settings: Settings, topic: str, *, batch: bool, timeout_s: float
) -> PublishResult:
    """Publish every non-blank line; wait up to ``timeout_s`` for Kafka to acknowledge."""
    publisher = EventPublisher(settings.kafka, topic, settings.publisher)
    count = 0
    try:
        for raw in lines:
            line = raw.rstrip(b"\r\n")
            if not line.strip():
                continue
            count += 1
            document = _parse(line)
            if isinstance(document, dict):
                key = Cohort.of(document).key
                if batch:
                    publisher.publish_encoded(line, key)
                else:
                    publisher.publish_raw(line, key)
            elif isinstance(document, list) and document and isinstance(document[0], dict):
                publisher.publish_raw(line, Cohort.of(document[0]).key, events=len(document))
            else:
                publisher.publish_raw(line)
    finally:
        stats = publisher.close(timeout_s)
    return PublishResult(count, topic, stats)


def _parse(line: bytes) -> Any:
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:
        return None

"""``driftnet publish FILE.jsonl``: send a JSON-lines file to the events topic.

Each line is one message as a producer would send it. An event object is batched with the
other events of its cohort (unless ``--no-batch``); an array is already a batch and goes as it
is; a line that is not JSON at all goes as it is too, so the worker dead-letters it exactly
as it would a buggy producer's message. Lines are never re-encoded.

A line larger than the producer's ``max_request_size`` on its own is refused (Kafka would
refuse it too): :class:`Refusal` names it by line number and event id, the rest are sent.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from driftnet.contract.events import Cohort
from driftnet.streams.clients.delivery import describe
from driftnet.streams.clients.publisher import EventPublisher, PublisherStats
from driftnet.streams.settings import Settings


@dataclass(frozen=True, slots=True)
class Refusal:
    """A line refused as larger than the producer's ``max_request_size``."""

    line: int
    what: str
    """``event c0ffee``, ``a batch of 3 events (...)``..."""
    size: int
    """Its size as a Kafka message, in bytes."""


@dataclass(frozen=True, slots=True)
class PublishResult:
    lines: int
    topic: str
    stats: PublisherStats
    limit: int
    """The producer's ``max_request_size``."""
    refused: tuple[Refusal, ...] = ()
    not_json: int = 0
    """Lines that do not parse as JSON: sent as they are, for the worker to dead-letter."""
    not_events: int = 0
    """JSON lines that are neither an object nor an array of objects: sent as they are too."""

    def raw_lines(self, source: str) -> list[str]:
        """A line saying how many lines of ``source`` were not events and went as they are
        (``README.md: 206 lines are not JSON: sent as they are (the worker will dead-letter
        them)``); none when every line was an event or a batch."""
        parts = []
        if self.not_json:
            parts.append(f"{self.not_json} {_lines(self.not_json)} not JSON")
        if self.not_events:
            parts.append(
                f"{self.not_events} {_lines(self.not_events)} JSON but not an event object "
                "or an array of them"
            )
        if not parts:
            return []
        return [f"{source}: {'; '.join(parts)}: sent as they are (the worker will dead-letter "
                f"{'it' if self.not_json + self.not_events == 1 else 'them'})"]  # fmt: skip

    def refusal_lines(self, source: str) -> list[str]:
        """One line per refused line of ``source``, naming it, its size and the limit."""
        return [
            f"{source}:{r.line}: {r.what} is {r.size:,} bytes, over the producer's "
            f"max_request_size of {self.limit:,} bytes (publisher.max_request_size); not sent"
            for r in self.refused
        ]

    def error(self, servers: str) -> str | None:
        """One line on what was not delivered and why, None when everything was; the "is a
        broker running?" hint only when no broker ever answered."""
        dropped = dict(self.stats.dropped)
        parts = []
        too_large = dropped.pop("too_large", 0)
        if too_large:
            parts.append(
                f"{too_large} events refused as larger than the producer's max_request_size "
                f"({self.limit:,} bytes)"
            )
        broker_too_large = dropped.pop("broker_too_large", 0)
        if broker_too_large:
            parts.append(
                f"{broker_too_large} events refused by the broker at {servers} as larger than "
                "its message.max.bytes (or the topic's max.message.bytes)"
            )
        rest = sum(dropped.values())
        if rest and not self.stats.reached:
            parts.append(
                f"{rest} events were not delivered to Kafka at {servers} "
                "(is a broker running? `driftnet broker`)"
            )
        elif rest:
            reasons = ", ".join(f"{k} {v}" for k, v in sorted(dropped.items()))
            parts.append(f"{rest} events were not delivered to Kafka at {servers} ({reasons})")
        return "; ".join(parts) or None

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
    count = not_json = not_events = 0
    refused: list[Refusal] = []
    try:
        for number, raw in enumerate(lines, start=1):
            line = raw.rstrip(b"\r\n")
            if not line.strip():
                continue
            count += 1
            document = _parse(line)
            key: str | None = None
            if isinstance(document, dict):
                key = Cohort.of(document).key
                ok = (publisher.publish_encoded if batch else publisher.publish_raw)(line, key)
            elif isinstance(document, list) and document and isinstance(document[0], dict):
                key = Cohort.of(document[0]).key
                ok = publisher.publish_raw(line, key, events=len(document))
            else:
                not_json += document is None
                not_events += document is not None
                ok = publisher.publish_raw(line)
            size = None if ok else publisher.oversize(line, key)
            if size is not None:
                refused.append(Refusal(number, describe(document or line), size))
    finally:
        stats = publisher.close(timeout_s)
    return PublishResult(
        count, topic, stats, publisher.max_request_size, tuple(refused), not_json, not_events
    )


def _lines(n: int) -> str:
    return "line is" if n == 1 else "lines are"


def _parse(line: bytes) -> Any:
    """The line's JSON document; None when it is not JSON (or is JSON ``null``)."""
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:
        return None

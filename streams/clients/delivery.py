"""What became of the events a publisher was given: counts by outcome, and how to name an event
in a message. Pure (no Kafka client: errors are recognised by their class name)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import orjson

from driftnet.contract.batching import Batch

DropReason = Literal[
    "buffer_full", "unencodable", "too_large", "broker_too_large", "send_failed", "closed"
]
"""Why events were not delivered:

* ``buffer_full`` -- the publisher's buffer (``buffer_max_bytes``) was full;
* ``unencodable`` -- not JSON-encodable, or not an event;
* ``too_large`` -- one event larger than the producer's ``max_request_size``: refused, never
  sent (the limit would refuse it, and a bigger message could not be split);
* ``broker_too_large`` -- the broker refused the message as larger than its
  ``message.max.bytes`` (or the topic's ``max.message.bytes``);
* ``send_failed`` -- Kafka did not acknowledge it (unreachable, timed out, refused otherwise);
* ``closed`` -- still waiting when the publisher was closed.
"""

TOO_LARGE_ERRORS: Final = frozenset({"MessageSizeTooLargeError", "RecordListTooLargeError"})
"""kafka-python's errors for a message over a size limit (the client's or the broker's)."""


def is_too_large(error: BaseException) -> bool:
    """Whether ``error`` says a message was over a size limit."""
    return type(error).__name__ in TOO_LARGE_ERRORS


@dataclass(frozen=True, slots=True)
class PublisherStats:
    """Counts since the publisher was made. ``accepted = sent + dropped(after accept) + pending``."""

    accepted: int
    """Events :meth:`~driftnet.streams.clients.publisher.EventPublisher.publish` took (returned True for)."""
    sent: int
    """Events Kafka acknowledged."""
    messages: int
    """Kafka messages acknowledged (one per batch)."""
    pending: int
    """Events accepted, not yet acknowledged or dropped."""
    dropped: Mapping[DropReason, int]
    reached: bool = False
    """Whether a broker ever answered (the producer connected)."""
    last_error: str | None = None
    """The latest reason an event was dropped, in one line."""

    @property
    def dropped_total(self) -> int:
        return sum(self.dropped.values())


@dataclass(slots=True)
class Drops:
    """Dropped events by reason, the latest reason in words, and what was logged of them.
    Not thread-safe: the publisher holds its lock around every call."""

    counts: Counter[DropReason] = field(default_factory=Counter)
    last_error: str | None = None
    _logged: int = 0
    _next_log: float = 0.0

    def count(self, reason: DropReason, events: int, error: str | None = None) -> None:
        if events <= 0:
            return
        self.counts[reason] += events
        if error is not None:
            self.last_error = error

    def due(self, now: float, interval: float, *, force: bool) -> tuple[int, str, str] | None:
        """What to log now (drops since the last log, all drops by reason, the last error):
        at most once per ``interval`` seconds unless ``force``; None when nothing is due."""
        total = self.counts.total()
        new = total - self._logged
        if not new or (not force and now < self._next_log):
            return None
        self._logged = total
        self._next_log = now + interval
        breakdown = ", ".join(f"{k} {v}" for k, v in sorted(self.counts.items()))
        return new, breakdown, self.last_error or "none"


def describe(value: Any) -> str:
    """An event or message (its JSON bytes, or decoded) in a few words: ``event c0ffee``,
    ``a batch of 3 events (c0ffee, ...)``, or ``a message`` when it holds no event id."""
    document: Any = value
    if isinstance(value, bytes | bytearray | memoryview):
        try:
            document = orjson.loads(value)
        except orjson.JSONDecodeError:
            return "a message that is not JSON"
    if isinstance(document, Mapping):
        event_id = document.get("event_id")
        return f"event {event_id}" if isinstance(event_id, str) else "an event without event_id"
    if isinstance(document, list):
        ids = [e["event_id"] for e in document if isinstance(e, Mapping) and "event_id" in e]
        shown = ", ".join(str(i) for i in ids[:3]) + (", ..." if len(ids) > 3 else "")
        return f"a batch of {len(document)} events" + (f" ({shown})" if shown else "")
    return "a message"


def too_large(value: Any, size: int, limit: int) -> str:
    """One line on an event (or message) refused as larger than the producer's limit."""
    return (
        f"{describe(value)} is {size:,} bytes, over the producer's max_request_size of "
        f"{limit:,} bytes; not sent"
    )


def failure(batch: Batch, error: BaseException, *, by_broker: bool) -> tuple[DropReason, int, str]:
    """Why a batch Kafka did not take is dropped: the reason, its events, one line on it.
    ``by_broker``: the error came back from the broker (not from the client's own checks)."""
    error_text = f"{type(error).__name__}: {error}"
    if not is_too_large(error):
        return "send_failed", batch.events, error_text
    value = batch.value()
    if by_broker:
        detail = (
            f"the broker refused {describe(value)} ({len(value):,} bytes) as larger than its "
            f"message.max.bytes or the topic's max.message.bytes ({error_text})"
        )
        return "broker_too_large", batch.events, detail
    return "too_large", batch.events, f"{describe(value)}: {error_text}"

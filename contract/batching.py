"""Batching events per cohort key into JSON-array messages. Pure: time is passed in.

A faust agent handles about 11-14k Kafka *messages* a second per worker however it is tuned,
but many times that in *events* when each message carries a batch, so the publisher groups the
events of a key into one message, bounded by event count, bytes and linger time. Events are
kept as their encoded JSON bytes; a batch is written as ``[e1,e2,...]`` without re-encoding.
"""

from __future__ import annotations

from dataclasses import dataclass, field

RECORD_OVERHEAD_BYTES = 61 + 21
"""A record batch's header and a record's largest fixed overhead: kafka-python counts a
message's size as these plus its key and value, each with its varint length, and one byte for
no headers (``DefaultRecordBatchBuilder.estimate_size_in_bytes``)."""


def _varint_bytes(value: int) -> int:
    """Bytes of ``value`` as Kafka's zig-zag varint."""
    zigzag = (value << 1) ^ (value >> 63)
    size = 1
    while zigzag >= 0x80:
        zigzag >>= 7
        size += 1
    return size


def record_bytes(key_bytes: int | None, value_bytes: int) -> int:
    """The size kafka-python gives a message with a key and value of these lengths (a ``None``
    key: no key), which it refuses when over the producer's ``max_request_size``."""
    key = 1 if key_bytes is None else _varint_bytes(key_bytes) + key_bytes
    return RECORD_OVERHEAD_BYTES + key + _varint_bytes(value_bytes) + value_bytes + 1


@dataclass(slots=True)
class Batch:
    """Events of one key, in the order they were published, or one message sent as it is."""

    key: bytes | None
    items: list[bytes] = field(default_factory=list)
    opened_at: float = 0.0
    size: int = 0
    """Bytes of the message this batch becomes."""
    verbatim: bool = False
    """A message handed over already encoded: sent as it is, never merged."""
    verbatim_events: int = 1
    """How many events a verbatim message counts as (a pre-built batch holds several)."""

    @property
    def events(self) -> int:
        return self.verbatim_events if self.verbatim else len(self.items)

    @property
    def item_bytes(self) -> int:
        """Bytes of the events themselves (what the publisher's buffer accounts)."""
        return sum(len(item) for item in self.items)

    def halves(self) -> list[Batch]:
        """This batch of several events as two batches, the first half first."""
        middle = len(self.items) // 2
        return [
            Batch(self.key, part, self.opened_at, 2 + sum(map(len, part)) + len(part) - 1)
            for part in (self.items[:middle], self.items[middle:])
        ]

    def value(self) -> bytes:
        """The Kafka message value: the bare object for one event, else a JSON array."""
        if self.verbatim or len(self.items) == 1:
            return self.items[0]
        return b"[" + b",".join(self.items) + b"]"


class Batcher:
    """Open batches, one per key; :meth:`add` returns the batches that are ready to send."""

    def __init__(
        self,
        *,
        max_events: int,
        max_bytes: int,
        linger_s: float,
        max_record_bytes: int | None = None,
    ) -> None:
        self.max_events = max_events
        self.max_bytes = max_bytes
        self.linger_s = linger_s
        self.max_record_bytes = max_record_bytes
        """No batch of several events becomes a message larger than this (:func:`record_bytes`,
        the producer's ``max_request_size``); one event alone is the caller's to check."""
        self._open: dict[bytes | None, Batch] = {}
        """Insertion order is opening order, so the batch that is due first comes first."""

    def add(self, key: bytes | None, item: bytes, now: float) -> list[Batch]:
        """Add one encoded event; returns the batches closed by it (full, or no room left)."""
        ready = []
        batch = self._open.get(key)
        # An array of n items is sum(len) + n - 1 commas + 2 brackets.
        if batch is not None and not self._fits(key, batch.size + len(item) + 1):
            ready.append(self._close(key))
            batch = None
        if batch is None:
            batch = self._open[key] = Batch(key, opened_at=now, size=2 + len(item))
        else:
            batch.size += len(item) + 1
        batch.items.append(item)
        if batch.events >= self.max_events or batch.size >= self.max_bytes:
            ready.append(self._close(key))
        return ready

    def add_verbatim(self, key: bytes | None, value: bytes, *, events: int = 1) -> list[Batch]:
        """A message to send as it is; the key's open batch goes first, to keep key order."""
        ready = [self._close(key)] if key in self._open else []
        ready.append(Batch(key, [value], size=len(value), verbatim=True, verbatim_events=events))
        return ready

    def due(self, now: float) -> list[Batch]:
        """Batches that have waited ``linger_s`` or longer."""
        ready = []
        for batch in self._open.values():
            if now - batch.opened_at < self.linger_s:
                break
            ready.append(batch)
        for batch in ready:
            del self._open[batch.key]
        return ready

    def next_due(self) -> float | None:
        """When the oldest open batch falls due, None when none is open."""
        for batch in self._open.values():
            return batch.opened_at + self.linger_s
        return None

    def drain(self) -> list[Batch]:
        """Every open batch, oldest first (flush and close)."""
        ready = list(self._open.values())
        self._open.clear()
        return ready

    def _fits(self, key: bytes | None, size: int) -> bool:
        if size > self.max_bytes:
            return False
        if self.max_record_bytes is None:
            return True
        return record_bytes(None if key is None else len(key), size) <= self.max_record_bytes

    def _close(self, key: bytes | None) -> Batch:
        return self._open.pop(key)

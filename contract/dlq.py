"""Dead letters on the wire: the original payload as the value, why and where in headers.

Headers, not a JSON envelope, the way Kafka Connect writes its dead-letter queue
(``errors.deadletterqueue.context.headers.enable``): the value stays the producer's own bytes
(capped), so a fixed producer's messages can be replayed as they are, and any consumer can
filter by reason without parsing the payload. Every header value is UTF-8 text:

============================  ==============================================================
``driftnet.dlq.reason``        why: ``invalid_json``, ``missing_field``, ... (see decode.py)
``driftnet.dlq.field``         dotted path of the offending field (absent when none)
``driftnet.dlq.message``       one human sentence
``driftnet.dlq.topic``         source topic of the message
``driftnet.dlq.partition``     source partition
``driftnet.dlq.offset``        source offset
``driftnet.dlq.last_offset``   last offset of an unreadable record batch (``offset``: its first)
``driftnet.dlq.batch_index``   index of the element in a batch (absent for a single event)
``driftnet.dlq.payload_size``  size in bytes of the original payload (before the cap)
``driftnet.dlq.payload_sha256``  hex SHA-256 of the original payload
``driftnet.dlq.truncated``     ``true`` when the value was cut at the cap
``driftnet.dlq.detected_at``   RFC 3339 UTC time the worker dead-lettered it
============================  ==============================================================

The message key is the source message's key, so a replay lands on the same partition.
``driftnet dlq replay`` re-publishes a dead letter's value with that key to its source topic,
with one header, ``driftnet.dlq.replayed_from`` (``<dlq topic>/<partition>/<offset>``), so a
replay that fails again shows up in ``driftnet dlq show`` as ``[replayed]``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Final, cast, get_args

from driftnet.contract.decode import DeadLetter, DeadLetterReason
from driftnet.contract.events import Lineage

PREFIX: Final = "driftnet.dlq."
REASONS: Final[tuple[str, ...]] = get_args(DeadLetterReason)
"""Every reason a dead letter can give (``driftnet dlq show --reason`` takes these)."""

Headers = list[tuple[str, bytes]]


def dead_letter_headers(dead_letter: DeadLetter, detected_at: datetime) -> Headers:
    """The headers that travel with a dead letter's payload."""
    lineage = dead_letter.lineage
    fields: list[tuple[str, object]] = [
        ("reason", dead_letter.reason),
        ("field", dead_letter.field),
        ("message", dead_letter.message),
        ("topic", lineage.topic),
        ("partition", lineage.partition),
        ("offset", lineage.offset),
        ("last_offset", dead_letter.last_offset),
        ("batch_index", lineage.batch_index),
        ("payload_size", dead_letter.payload_size),
        ("payload_sha256", dead_letter.payload_sha256),
        ("truncated", "true" if dead_letter.payload_truncated else "false"),
        ("detected_at", detected_at.isoformat()),
    ]
    return [(PREFIX + name, str(value).encode()) for name, value in fields if value is not None]


def read_dead_letter(value: bytes | None, headers: Iterable[tuple[str, bytes]]) -> DeadLetter:
    """A dead letter back from a DLQ message (what ``dlq show`` and the tests read)."""
    found = {
        name.removeprefix(PREFIX): raw.decode("utf-8", "replace")
        for name, raw in headers
        if name.startswith(PREFIX)
    }
    batch_index = found.get("batch_index")
    last_offset = found.get("last_offset")
    return DeadLetter(
        reason=cast(DeadLetterReason, found["reason"]),
        field=found.get("field"),
        message=found.get("message", ""),
        lineage=Lineage(
            topic=found["topic"],
            partition=int(found["partition"]),
            offset=int(found["offset"]),
            batch_index=int(batch_index) if batch_index is not None else None,
        ),
        last_offset=int(last_offset) if last_offset is not None else None,
        payload=value or b"",
        payload_size=int(found["payload_size"]),
        payload_sha256=found["payload_sha256"],
        payload_truncated=found.get("truncated") == "true",
    )


REPLAYED_FROM: Final = PREFIX + "replayed_from"
"""Header of a replayed message: ``<dlq topic>/<partition>/<offset>`` of its dead letter (a
replay that is dead-lettered again can be told from a new one)."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One message of the DLQ topic, read back: where it sits and the dead letter it holds
    (None when it is not one: no driftnet headers)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]
    letter: DeadLetter | None
    detected_at: str | None

    @classmethod
    def of(
        cls,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes | None,
        headers: Iterable[tuple[str, bytes]],
    ) -> Entry:
        kept = tuple(headers)
        try:
            letter: DeadLetter | None = read_dead_letter(value, kept)
        except (KeyError, ValueError):
            letter = None
        detected = dict(kept).get(PREFIX + "detected_at")
        return cls(topic, partition, offset, key, value, kept, letter,
                   None if detected is None else detected.decode("utf-8", "replace"))  # fmt: skip

    @property
    def where(self) -> str:
        return f"{self.topic}/{self.partition}/{self.offset}"

    @property
    def replayed(self) -> bool:
        """Whether this dead letter came from a replay (the replayed message failed again)."""
        return any(name == REPLAYED_FROM for name, _ in self.headers)

    def line(self) -> str:
        """One line for ``driftnet dlq show``."""
        if self.letter is None:
            return f"{self.where}  (not a driftnet dead letter: no {PREFIX}* headers)"
        letter = self.letter
        size = f"{letter.payload_size:,} bytes" + (
            ", truncated" if letter.payload_truncated else ""
        )
        again = "  [replayed]" if self.replayed else ""
        return f"{self.where}  {self.detected_at or '?'}  {letter.summary}  ({size}){again}"


@dataclass(frozen=True, slots=True)
class Selection:
    """Which dead letters a ``show`` or ``replay`` is about."""

    reasons: frozenset[str] = frozenset()
    """Only these reasons (all when empty)."""
    from_offset: int | None = None
    """Only from this DLQ offset on (in every partition)."""

    def __call__(self, entry: Entry) -> bool:
        if self.from_offset is not None and entry.offset < self.from_offset:
            return False
        if entry.letter is None:  # a foreign message has no reason to match
            return not self.reasons
        return not self.reasons or entry.letter.reason in self.reasons


@dataclass(frozen=True, slots=True)
class Replay:
    """What a replay sends and what it cannot: (entry, target topic) pairs, and skipped
    entries with why."""

    send: list[tuple[Entry, str]]
    skipped: list[tuple[Entry, str]]


def plan_replay(entries: Iterable[Entry], selection: Selection, to: str | None) -> Replay:
    """The replay of the selected dead letters: each goes back to its source topic (or
    ``to``), with its key and original bytes; a payload cut at the cap cannot be replayed."""
    send: list[tuple[Entry, str]] = []
    skipped: list[tuple[Entry, str]] = []
    for entry in entries:
        if not selection(entry):
            continue
        letter = entry.letter
        if letter is None:
            skipped.append((entry, "not a driftnet dead letter"))
        elif letter.reason == "unreadable_batch":
            skipped.append((entry, "an unreadable record batch has no payload to replay"))
        elif letter.payload_truncated:
            skipped.append(
                (entry, f"payload cut at {len(letter.payload):,} of {letter.payload_size:,} bytes")
            )
        else:
            send.append((entry, to or letter.lineage.topic))
    return Replay(send, skipped)


def replay_headers(entry: Entry) -> Headers:
    """Headers of a replayed message: where its dead letter was (nothing else travels)."""
    return [(REPLAYED_FROM, entry.where.encode())]


def reason_counts(entries: Iterable[Entry]) -> Counter[str]:
    """How many dead letters of each reason (``(unreadable)`` for foreign messages)."""
    return Counter(e.letter.reason if e.letter else "(unreadable)" for e in entries)

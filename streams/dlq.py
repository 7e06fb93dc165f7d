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
``driftnet.dlq.batch_index``   index of the element in a batch (absent for a single event)
``driftnet.dlq.payload_size``  size in bytes of the original payload (before the cap)
``driftnet.dlq.payload_sha256``  hex SHA-256 of the original payload
``driftnet.dlq.truncated``     ``true`` when the value was cut at the cap
``driftnet.dlq.detected_at``   RFC 3339 UTC time the worker dead-lettered it
============================  ==============================================================

The message key is the source message's key, so a replay lands on the same partition.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Final, cast

from streams.decode import DeadLetter, DeadLetterReason
from streams.events import Lineage

PREFIX: Final = "driftnet.dlq."

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
        payload=value or b"",
        payload_size=int(found["payload_size"]),
        payload_sha256=found["payload_sha256"],
        payload_truncated=found.get("truncated") == "true",
    )

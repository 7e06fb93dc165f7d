"""Record batches the worker cannot read: each is skipped with one dead letter, never a crash.

aiokafka decompresses a fetched record batch while its consumer iterates it
(``aiokafka.consumer.fetcher.PartitionRecords._unpack_records``). A batch it cannot read -- a
corrupt compressed payload, a codec id it does not know, a CRC mismatch, records that do not
parse -- raises out of ``getmany`` into faust's consumer and the worker dies; restarted, it
fetches the same batch and dies again.

:func:`guard` checks every batch of the given topics (those third parties write: the events and
OTLP spans topics) whole before aiokafka iterates it: its CRC, then every record decompressed
and parsed. A readable batch goes on unchanged (its records, parsed once). An unreadable one is
replaced by a stand-in holding one *marker record* at the batch's last offset; its header names
the batch (topic, partition, first and last offset, codec, error) and carries a token made at
start-up, so no producer can forge one. The agent reading the topic turns the marker into an
``unreadable_batch`` dead letter (:func:`unreadable_batch`) and acks it like any message: the
offset past the batch is committed only once the dead letter is in the producer, which faust
flushes before it commits -- the protocol of every other dead letter.

The hook replaces ``aiokafka.consumer.fetcher.PartitionRecords`` (which aiokafka's fetcher builds
by that module-global name) with a subclass that wraps its ``records`` argument, the fetch's
``MemoryRecords``; nothing else of aiokafka is changed. It relies on the batch interface that
``_unpack_records`` uses: ``has_next``/``next_batch``, and a batch's ``validate_crc``,
``producer_id``, ``is_control_batch``, ``is_transactional``, ``base_offset``, ``next_offset``
and iteration. :func:`install` checks the signature it wraps, and ``tests/integration/test_unreadable.py``
drives the installed aiokafka's own classes through it, so an upgrade that moves any of this
fails there first.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import secrets
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Final

from driftnet.contract.decode import DeadLetter
from driftnet.contract.events import Lineage

log = logging.getLogger("driftnet.unreadable")

HEADER: Final = "driftnet.unreadable_batch"
"""Header of a marker record (JSON: the batch's description and this process's token)."""
_TOKEN: Final = secrets.token_hex(16)

CODECS: Final = {0: "none", 1: "gzip", 2: "snappy", 3: "lz4", 4: "zstd"}
"""Kafka's compression codec ids (the low three bits of a batch's attributes)."""

_guarded: set[str] = set()
"""Topics whose batches are checked (other topics of the process are left as aiokafka reads
them: driftnet's own topics, and the harvest sink's)."""


class GuardUnavailable(Exception):
    """The installed aiokafka is not the shape the hook wraps; ``str()`` says what differs."""


@dataclass(frozen=True, slots=True)
class UnreadableBatch:
    """A record batch that could not be read, and why."""

    topic: str
    partition: int
    first_offset: int
    last_offset: int
    codec: str
    """``none``, ``gzip``, ``lz4``..., ``codec 5`` for an id Kafka does not define, ``unknown``
    when the bytes could not even be cut into a batch."""
    error: str
    """``ExceptionType: message`` of what reading it raised."""

    @property
    def offsets(self) -> str:
        first, last = self.first_offset, self.last_offset
        return f"offset {first}" if first == last else f"offsets {first}-{last}"

    def describe(self) -> str:
        """One line for the log."""
        return (
            f"{self.topic}[{self.partition}] record batch at {self.offsets} "
            f"(compression: {self.codec}) cannot be read, skipped: {self.error}"
        )

    def dead_letter(self) -> DeadLetter:
        """The batch's ``unreadable_batch`` dead letter: lineage at its first offset, the last
        one in ``last_offset``; no payload (the batch's bytes stay on the source topic)."""
        return DeadLetter(
            reason="unreadable_batch",
            message=(
                f"record batch at {self.offsets} (compression: {self.codec}) cannot be read: "
                f"{self.error}"
            ),
            lineage=Lineage(self.topic, self.partition, self.first_offset),
            last_offset=self.last_offset,
            payload=b"",
            payload_size=0,
            payload_sha256=hashlib.sha256(b"").hexdigest(),
            payload_truncated=False,
        )


def unreadable_batch(headers: Iterable[tuple[str, bytes]] | Mapping[str, bytes] | None) -> (
    UnreadableBatch | None
):  # fmt: skip
    """The batch a message stands for when it is a marker record made by this process, else
    None (a producer's header of the same name lacks the token)."""
    if not headers:
        return None
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    for name, value in pairs:
        if name != HEADER or value is None:
            continue
        try:
            found = json.loads(value)
            if found.pop("token") != _TOKEN:
                return None
            return UnreadableBatch(**found)
        except (ValueError, TypeError, KeyError, AttributeError):
            return None
    return None


def guard(topics: Iterable[str]) -> None:
    """Check every record batch of ``topics`` that aiokafka consumers of this process fetch
    (installs the hook once); :class:`GuardUnavailable` when aiokafka is not the shape
    the hook wraps."""
    install()
    _guarded.update(topics)


def install() -> None:
    """Replace aiokafka's ``PartitionRecords`` with the checking subclass (once)."""
    from aiokafka.consumer import fetcher

    current = fetcher.PartitionRecords
    if getattr(current, "driftnet_guard", False):
        return
    expected = ["self", "tp", "records", "aborted_transactions", "fetch_offset"]
    params = list(inspect.signature(current.__init__).parameters)
    if params[:5] != expected or not callable(getattr(current, "_unpack_records", None)):
        raise GuardUnavailable(
            f"aiokafka's PartitionRecords({', '.join(params[1:])}) is not what the "
            "unreadable-batch guard wraps"
        )

    class GuardedPartitionRecords(current):  # type: ignore[misc,valid-type]
        """aiokafka's PartitionRecords, its batches checked when its topic is guarded."""

        driftnet_guard = True

        def __init__(
            self, tp: Any, records: Any, aborted_transactions: Any, fetch_offset: int,
            *args: Any, **kwargs: Any,
        ) -> None:  # fmt: skip
            if tp.topic in _guarded:
                records = CheckedRecords(tp, records, fetch_offset)
            super().__init__(tp, records, aborted_transactions, fetch_offset, *args, **kwargs)

    fetcher.PartitionRecords = GuardedPartitionRecords


class CheckedRecords:
    """The batches of one fetch (aiokafka's ``MemoryRecords``), each checked whole before it
    is handed on: readable ones as they are, unreadable ones as a marker stand-in."""

    def __init__(self, tp: Any, records: Any, fetch_offset: int) -> None:
        self._tp = tp
        self._records = records
        self._position = fetch_offset
        """Where the next batch starts (as far as is known): the fetch offset, then the end of
        each batch handed on."""
        self._ahead: Any = None
        """The batch after an unreadable one, taken early: its first offset bounds the end of
        the unreadable one (whose own length field may be what is corrupt)."""
        self._cut = False
        """The fetch's bytes could not be cut into a batch: nothing after it is readable."""

    def size_in_bytes(self) -> int:
        return int(self._records.size_in_bytes())

    def has_next(self) -> bool:
        return self._ahead is not None or (not self._cut and bool(self._records.has_next()))

    def next_batch(self) -> Any:
        if self._ahead is not None:
            batch, self._ahead = self._ahead, None
        else:
            try:
                batch = self._records.next_batch()
            except Exception as exc:  # MemoryRecords cannot step past what it cannot cut
                self._cut = True
                return self._skip(None, exc)
            if batch is None:
                return None
        try:
            if not batch.validate_crc():
                raise ValueError("CRC mismatch: the batch is corrupt")
            records = list(batch)  # decompresses and parses every record
        except Exception as exc:
            return self._skip(batch, exc)
        self._position = batch.next_offset
        return ReadableBatch(batch, records)

    def _skip(self, batch: Any, exc: Exception) -> UnreadableStandIn:
        """The stand-in of an unreadable batch (``batch`` None: the bytes at the position
        could not even be cut into one), which moves the position past it."""
        first = self._position
        end = first + 1
        if batch is not None:  # a batch's claimed offsets, bounded by the batch after it
            first = _attribute(batch, "base_offset", first)
            end = _attribute(batch, "next_offset", first + 1)
        if batch is not None and not self._cut and self._records.has_next():
            try:
                self._ahead = self._records.next_batch()
            except Exception:  # the next one is cut badly too: it is skipped on the next fetch
                self._cut = True
            if self._ahead is not None:
                end = min(end, _attribute(self._ahead, "base_offset", end))
        end = max(end, first + 1, self._position + 1)  # always forward
        self._position = end
        codec_id = 0 if batch is None else _attribute(batch, "attributes", 0) & 0x07
        codec = "unknown" if batch is None else CODECS.get(codec_id, f"codec {codec_id}")
        error = f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:500]  # one line
        unreadable = UnreadableBatch(
            self._tp.topic, self._tp.partition, first, end - 1, codec, error
        )
        timestamp = -1 if batch is None else _attribute(batch, "max_timestamp", -1)
        return UnreadableStandIn(unreadable, timestamp)


def _attribute(batch: Any, name: str, default: int) -> int:
    """An integer header field of a batch, or ``default`` (legacy batches lack some)."""
    try:
        return int(getattr(batch, name))
    except Exception:
        return default


class ReadableBatch:
    """A checked batch: its header fields as they are, its records parsed once."""

    __slots__ = ("_batch", "_records")

    def __init__(self, batch: Any, records: list[Any]) -> None:
        self._batch = batch
        self._records = iter(records)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._batch, name)

    def validate_crc(self) -> bool:
        return True  # checked before it was handed on

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        return next(self._records)


class UnreadableStandIn:
    """What aiokafka iterates instead of an unreadable batch: one marker record at its last
    offset, after which aiokafka's fetch position is the batch's end."""

    producer_id = None
    producer_epoch = -1
    is_control_batch = False
    is_transactional = False

    def __init__(self, batch: UnreadableBatch, timestamp: int) -> None:
        self.unreadable = batch
        self.base_offset = batch.first_offset
        self.next_offset = batch.last_offset + 1
        self._marker: Iterator[MarkerRecord] = iter((MarkerRecord(batch, timestamp),))

    def validate_crc(self) -> bool:
        return True

    def __iter__(self) -> Iterator[MarkerRecord]:
        return self

    def __next__(self) -> MarkerRecord:
        return next(self._marker)


class MarkerRecord:
    """The record an unreadable batch is read as: no key, an empty value, one header."""

    __slots__ = ("headers", "offset", "timestamp")

    key = None
    value = b""
    timestamp_type = 0
    checksum = None

    def __init__(self, batch: UnreadableBatch, timestamp: int) -> None:
        self.offset = batch.last_offset
        self.timestamp = timestamp
        described = asdict(batch) | {"token": _TOKEN}
        self.headers = [(HEADER, json.dumps(described).encode())]

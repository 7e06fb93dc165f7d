"""Which rows go into which file, when a file is due, and which offsets are safe to commit.

Pure bookkeeping for the Parquet sink (no Kafka, no disk, no clock: ``now`` is passed in).

Every (topic, partition, folder) has at most one open file. Its name is fixed by the offset of
its first row (``<topic>+<partition>+<19-digit offset>.parquet``), so a replay from a committed
offset rebuilds the same names and overwrites rather than duplicates. A file is due when it
holds ``max_rows`` rows, when the next row would stretch it past ``max_event_span_s`` of event
time, when no row came for ``idle_s``, or when it has been open ``max_age_s`` -- the last two on
the wall clock, so a quiet stream's rows are written without waiting for a new record. When the
rows held by all open files pass ``max_buffered_bytes`` the largest files are written early:
memory stays bounded however many partitions and folders are open.

A due file moves to *pending* until the caller says it is durable. The committable offset of a
partition is the smallest first offset among its open and pending files, or the next offset to
read when it has none: every row below it is in a durable file.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import pyarrow as pa

from driftnet.storage.schema import FAILURE_SCHEMA
from driftnet.storage.settings import RotationPolicy

Why = Literal["rows", "event_span", "idle", "age", "memory", "stop"]
TopicPartition = tuple[str, int]

CHUNK_ROWS = 500
"""Rows are held as Python dicts only until this many arrive, then packed into an Arrow record
batch (a fraction of the memory); the file is the concatenation of its batches."""


@dataclass(slots=True)
class OpenFile:
    """Rows of one topic partition bound for one folder, not yet durable."""

    topic: str
    partition: int
    folder: str
    start_offset: int
    opened_at: float
    touched_at: float
    first_event: float
    last_event: float
    rows: int = 0
    last_offset: int = -1
    batches: list[pa.RecordBatch] = field(default_factory=list)
    packed_size: int = 0
    loose: list[dict[str, Any]] = field(default_factory=list)
    loose_size: int = 0
    why: Why | None = None
    """Why the file was rotated (set when it becomes due)."""

    @property
    def name(self) -> str:
        return f"{self.topic}+{self.partition}+{self.start_offset:019d}.parquet"

    @property
    def relative_path(self) -> str:
        return f"{self.folder}/{self.name}"

    @property
    def size(self) -> int:
        """Bytes held: packed rows at their Arrow size, loose ones at their JSON size."""
        return self.packed_size + self.loose_size

    def append(self, row: dict[str, Any], size: int, offset: int, event_time: float) -> None:
        self.loose.append(row)
        self.loose_size += size
        self.rows += 1
        self.last_offset = offset
        self.first_event = min(self.first_event, event_time)
        self.last_event = max(self.last_event, event_time)
        if len(self.loose) >= CHUNK_ROWS:
            self._pack()

    def _pack(self) -> None:
        batch = pa.RecordBatch.from_pylist(self.loose, schema=FAILURE_SCHEMA)
        self.batches.append(batch)
        self.packed_size += batch.nbytes
        self.loose, self.loose_size = [], 0

    def table(self) -> pa.Table:
        """The file's rows as one table of ``FAILURE_SCHEMA``."""
        if self.loose:
            self._pack()
        return pa.Table.from_batches(self.batches, schema=FAILURE_SCHEMA)


class FileBuffers:
    """Open and pending harvest files of the partitions this sink owns."""

    def __init__(self, policy: RotationPolicy) -> None:
        self.policy = policy
        self._open: dict[tuple[str, int, str], OpenFile] = {}
        self._pending: list[OpenFile] = []
        self._position: dict[TopicPartition, int] = {}
        self._held: dict[TopicPartition, set[int]] = {}
        self._due: list[OpenFile] = []

    # -- feeding ---------------------------------------------------------------------------

    def add(
        self,
        topic: str,
        partition: int,
        offset: int,
        folder: str,
        event_time: float,
        row: dict[str, Any],
        size: int,
        now: float,
    ) -> None:
        """Add one row (read at ``offset``) to the open file of its folder."""
        self.skip(topic, partition, offset)
        key = (topic, partition, folder)
        current = self._open.get(key)
        if current is not None:
            span = max(current.last_event, event_time) - min(current.first_event, event_time)
            if span > self.policy.max_event_span_s:
                self._rotate(key, "event_span")
                current = None
        if current is None:
            current = OpenFile(topic, partition, folder, offset, now, now, event_time, event_time)
            self._open[key] = current
        current.append(row, size, offset, event_time)
        current.touched_at = now
        if current.rows >= self.policy.max_rows:
            self._rotate(key, "rows")
        self._bound_memory()

    def skip(self, topic: str, partition: int, offset: int) -> None:
        """Record that ``offset`` was read (and needs no row: dead-lettered, or about to be
        added)."""
        tp = (topic, partition)
        self._position[tp] = max(self._position.get(tp, 0), offset + 1)

    def hold(self, topic: str, partition: int, offset: int) -> None:
        """Record that ``offset`` was read, needs no row, but must not be committed until
        :meth:`release`: its dead letter is not yet delivered."""
        self.skip(topic, partition, offset)
        self._held.setdefault((topic, partition), set()).add(offset)

    def release(self, topic: str, partition: int, offset: int) -> None:
        """``offset``'s dead letter is delivered: it no longer holds back the commit."""
        held = self._held.get((topic, partition))
        if held is not None:
            held.discard(offset)
            if not held:
                del self._held[(topic, partition)]

    # -- what to write ----------------------------------------------------------------------

    def take_due(self, now: float) -> list[OpenFile]:
        """Files to write now (moved to pending): full ones, and idle or old ones."""
        policy = self.policy
        for key, open_file in list(self._open.items()):
            if now - open_file.touched_at >= policy.idle_s:
                self._rotate(key, "idle")
            elif now - open_file.opened_at >= policy.max_age_s:
                self._rotate(key, "age")
        due, self._due = self._due, []
        self._pending.extend(due)
        return due

    def take_all(self) -> list[OpenFile]:
        """Every open file (moved to pending), e.g. on a clean stop."""
        for key in list(self._open):
            self._rotate(key, "stop")
        return self.take_due(float("-inf"))

    def written(self, open_file: OpenFile) -> None:
        """``open_file`` is durable: its rows no longer hold back the commit (a file of a
        partition forgotten meanwhile is already released)."""
        if open_file in self._pending:
            self._pending.remove(open_file)

    def next_due_in(self, now: float) -> float | None:
        """Seconds until an open file becomes due on the clock; None when none is open."""
        policy = self.policy
        waits = [
            min(f.touched_at + policy.idle_s, f.opened_at + policy.max_age_s) - now
            for f in self._open.values()
        ]
        return max(min(waits), 0.0) if waits else None

    # -- offsets ----------------------------------------------------------------------------

    def committable(self) -> dict[TopicPartition, int]:
        """Per partition, the offset below which every row read is in a durable file (and
        every dead letter delivered)."""
        offsets = dict(self._position)
        for held in (*self._open.values(), *self._pending, *self._due):
            tp = (held.topic, held.partition)
            offsets[tp] = min(offsets.get(tp, held.start_offset), held.start_offset)
        for tp, held_offsets in self._held.items():
            first = min(held_offsets)
            offsets[tp] = min(offsets.get(tp, first), first)
        return offsets

    def forget(self, partitions: Iterable[TopicPartition]) -> int:
        """Drop every row of ``partitions`` (revoked: their next owner replays them from the
        committed offset). Returns how many rows were dropped."""
        gone = set(partitions)
        dropped = 0
        for key in [k for k in self._open if (k[0], k[1]) in gone]:
            dropped += self._open.pop(key).rows
        for held in (*self._pending, *self._due):
            if (held.topic, held.partition) in gone:
                dropped += held.rows
        self._pending = [f for f in self._pending if (f.topic, f.partition) not in gone]
        self._due = [f for f in self._due if (f.topic, f.partition) not in gone]
        for tp in gone:
            self._position.pop(tp, None)
            self._held.pop(tp, None)
        return dropped

    # -- state --------------------------------------------------------------------------------

    @property
    def open_files(self) -> int:
        return len(self._open)

    @property
    def buffered_bytes(self) -> int:
        return sum(f.size for f in self._open.values())

    @property
    def pending_bytes(self) -> int:
        return sum(f.size for f in self._pending)

    def _rotate(self, key: tuple[str, int, str], why: Why) -> None:
        open_file = self._open.pop(key)
        open_file.why = why
        self._due.append(open_file)

    def _bound_memory(self) -> None:
        limit = self.policy.max_buffered_bytes
        total = self.buffered_bytes
        if total <= limit:
            return
        for key, open_file in sorted(self._open.items(), key=lambda kv: -kv[1].size):
            self._rotate(key, "memory")
            total -= open_file.size
            if total <= limit // 2:
                break

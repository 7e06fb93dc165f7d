"""Keeping the harvest small and lawful: compaction, retention, deletion on request, labels.

Every change is safe for a query running at the same time. Compaction writes the merged file
(atomically, under a name derived from its inputs, so a rerun after a crash rewrites the same
file) before it deletes the inputs: a reader sees the old files, or the new one, or both --
and the ``failures`` view counts a ``record_id`` once, so "both" never double-counts; a file
deleted under a running query makes it run again (:mod:`driftnet.storage.query`). Deletion rewrites each
affected file in place (an atomic replace) or removes it when nothing is left.
"""

from __future__ import annotations

import getpass
import hashlib
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from driftnet.storage.query import LABEL_SCHEMA, LABELS_DIR, Harvest
from driftnet.storage.schema import FAILURE_SCHEMA

log = logging.getLogger("driftnet.harvest")

COMPACTED_PREFIX = "compacted+"
SMALL_FILE_ROWS = 100_000
"""Files with fewer rows than this are merged by compaction."""


@dataclass(frozen=True, slots=True)
class CompactionResult:
    folders: int
    files_in: int
    files_out: int
    rows_in: int
    rows_out: int
    partitions_dropped: int

    def summary(self) -> str:
        duplicates = self.rows_in - self.rows_out
        text = (
            f"compacted {self.files_in} files into {self.files_out} in {self.folders} folders "
            f"({self.rows_out} rows, {duplicates} duplicates removed)"
        )
        if self.partitions_dropped:
            text += f"; dropped {self.partitions_dropped} date partitions past retention"
        return text


def _read(harvest: Harvest, relative: str) -> pa.Table:
    """A harvest file as ``FAILURE_SCHEMA`` (columns it predates filled with nulls)."""
    with harvest.target.open_input(relative) as handle:
        table = pq.read_table(handle)
    columns = [
        table.column(f.name).cast(f.type)
        if f.name in table.column_names
        else pa.nulls(table.num_rows, f.type)
        for f in FAILURE_SCHEMA
    ]
    return pa.Table.from_arrays(columns, schema=FAILURE_SCHEMA)


def _dedup(table: pa.Table) -> pa.Table:
    """One row per ``record_id`` (the earliest detected), ordered by event time."""
    con = duckdb.connect()
    try:
        con.register("t", table)
        result = con.sql(
            "SELECT * FROM t QUALIFY row_number() OVER "
            "(PARTITION BY record_id ORDER BY detected_at, lineage.offset) = 1 "
            "ORDER BY timestamp, record_id"
        ).to_arrow_table()
    finally:
        con.close()
    return result.cast(FAILURE_SCHEMA)


def compact(
    harvest: Harvest, *, retention_days: int | None = None, today: date | None = None
) -> CompactionResult:
    """Merge the small files of each folder into one, without duplicates; with
    ``retention_days``, first drop the ``date=`` partitions older than that."""
    dropped = drop_expired(harvest, retention_days, today) if retention_days is not None else 0
    folders: dict[str, list[str]] = {}
    for relative in harvest.failure_files():
        folder, _, _ = relative.rpartition("/")
        folders.setdefault(folder, []).append(relative)
    files_in = files_out = rows_in = rows_out = touched = 0
    for folder, files in sorted(folders.items()):
        small = [f for f in files if _rows(harvest, f) < SMALL_FILE_ROWS]
        if len(small) < 2 and not _has_duplicates(harvest, small):
            continue
        tables = [_read(harvest, f) for f in small]
        merged = pa.concat_tables(tables)
        unique = _dedup(merged)
        digest = hashlib.sha256("\n".join(sorted(small)).encode()).hexdigest()[:16]
        output = f"{folder}/{COMPACTED_PREFIX}{digest}.parquet"
        harvest.target.write_parquet(output, unique)
        for relative in small:
            if relative != output:
                harvest.target.delete(relative)
        touched += 1
        files_in += len(small)
        files_out += 1
        rows_in += merged.num_rows
        rows_out += unique.num_rows
    return CompactionResult(touched, files_in, files_out, rows_in, rows_out, dropped)


def _rows(harvest: Harvest, relative: str) -> int:
    with harvest.target.open_input(relative) as handle:
        return int(pq.read_metadata(handle).num_rows)


def _has_duplicates(harvest: Harvest, files: list[str]) -> bool:
    if not files:
        return False
    ids = _read(harvest, files[0]).column("record_id")
    return bool(len(pc.unique(ids)) < len(ids))


def drop_expired(harvest: Harvest, retention_days: int, today: date | None = None) -> int:
    """Delete whole ``date=`` partitions older than ``retention_days``; returns how many."""
    cutoff = (today or datetime.now(UTC).date()) - timedelta(days=retention_days)
    dropped = 0
    for name in harvest.target.list_dirs():
        if not name.startswith("date="):
            continue
        try:
            day = date.fromisoformat(name.removeprefix("date="))
        except ValueError:
            continue
        if day < cutoff:
            harvest.target.delete_dir(name)
            dropped += 1
    return dropped


@dataclass(frozen=True, slots=True)
class DeletionResult:
    rows: int
    files_rewritten: int
    files_removed: int
    labels: int

    def summary(self) -> str:
        return (
            f"deleted {self.rows} rows ({self.files_rewritten} files rewritten, "
            f"{self.files_removed} removed) and {self.labels} labels of their events"
        )


def delete_where(harvest: Harvest, where: str) -> DeletionResult:
    """Remove every failure row matching the SQL predicate ``where`` (over the ``failures``
    view's columns, e.g. ``attributes.tenant = 't7'`` or ``label = 'pii'``), every physical
    copy of those records, and the labels of their events."""
    doomed = harvest.run(f"SELECT DISTINCT record_id, event_id FROM failures WHERE {where}")
    record_ids = pa.array(sorted(set(doomed.column("record_id").to_pylist())), pa.string())
    event_ids = set(doomed.column("event_id").to_pylist())
    rows = rewritten = removed = 0
    if not len(record_ids):
        return DeletionResult(0, 0, 0, 0)
    for relative in harvest.failure_files():
        table = _read(harvest, relative)
        mask = pc.is_in(table.column("record_id"), value_set=record_ids)
        matched = int(pc.sum(mask).as_py() or 0)
        if not matched:
            continue
        if _rewrite_without(harvest, relative, table, mask):
            rewritten += 1
        else:
            removed += 1
        rows += matched
    labels = _delete_labels(harvest, event_ids) if event_ids else 0
    return DeletionResult(rows, rewritten, removed, labels)


def _rewrite_without(harvest: Harvest, relative: str, table: pa.Table, mask: pa.Array) -> bool:
    """Replace a file by its rows outside ``mask`` (atomically), or delete it when none are
    left. True when the file still exists."""
    kept = table.filter(pc.invert(mask))
    if kept.num_rows:
        harvest.target.write_parquet(relative, kept)
        return True
    harvest.target.delete(relative)
    return False


def _delete_labels(harvest: Harvest, event_ids: set[str]) -> int:
    removed = 0
    for relative in harvest.label_files():
        with harvest.target.open_input(relative) as handle:
            table = pq.read_table(handle)
        mask = pc.is_in(table.column("event_id"), value_set=pa.array(sorted(event_ids)))
        hits = int(pc.sum(mask).as_py() or 0)
        if not hits:
            continue
        _rewrite_without(harvest, relative, table, mask)
        removed += hits
    return removed


def add_label(
    harvest: Harvest,
    event_id: str,
    label: str,
    *,
    correction: str | None = None,
    note: str | None = None,
    now: datetime | None = None,
) -> str:
    """Append a label for ``event_id`` (the latest label of an event wins). Returns the file."""
    at = now or datetime.now(UTC)
    row = {
        "event_id": event_id,
        "label": label,
        "correction": correction,
        "note": note,
        "labelled_by": _user(),
        "labelled_at": at,
    }
    relative = f"{LABELS_DIR}/{at:%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:8]}.parquet"
    harvest.target.write_parquet(relative, pa.Table.from_pylist([row], schema=LABEL_SCHEMA))
    return relative


def _user() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None

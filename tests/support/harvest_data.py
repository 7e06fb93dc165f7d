"""Builders for harvest tests: failure records and real harvest files written like the sink's."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from driftnet.contract.events import InferenceEvent, Lineage
from driftnet.harvest.records import FailureRecord, Reason, RecordKind, record_id, rule_failure
from driftnet.storage.schema import row_of, table_of
from driftnet.storage.target import Target
from driftnet.streams.sink.parquet import folder_of
from tests.support.factories import make_event

FAILURES_TOPIC = "driftnet.failures"
DETECTED_AT = datetime(2026, 11, 25, 12, 0, 5, tzinfo=UTC)


def failure(
    event_id: str = "evt-1",
    *,
    reason: str = "latency_slo",
    reasons: Sequence[Reason] | None = None,
    offset: int = 0,
    detected_at: datetime = DETECTED_AT,
    **event_overrides: Any,
) -> FailureRecord:
    """A ``rule`` failure record of ``make_event(event_id=..., **event_overrides)``."""
    event = InferenceEvent.model_validate(make_event(event_id=event_id, **event_overrides))
    why = list(reasons) if reasons is not None else [Reason(rule_id=reason, message=f"{reason}!")]
    return rule_failure(event, why, Lineage(FAILURES_TOPIC, 0, offset), detected_at)


def as_kind(record: FailureRecord, kind: RecordKind, finding_id: str) -> FailureRecord:
    """``record`` as another kind of record (with that kind's own record_id)."""
    return record.model_copy(
        update={
            "kind": kind,
            "finding_id": finding_id,
            "record_id": record_id(record.event.event_id, kind, finding_id),
        }
    )


def file_name(topic: str, partition: int, start_offset: int) -> str:
    """The sink's file name for a file whose first row was read at ``start_offset``."""
    return f"{topic}+{partition}+{start_offset:019d}.parquet"


def write_failures(
    target_dir: Path | str,
    records: Sequence[FailureRecord],
    topic: str = FAILURES_TOPIC,
    partition: int = 0,
    start_offset: int = 0,
    *,
    drop_columns: Sequence[str] = (),
) -> str:
    """Write ``records`` (all of one ``date=/service=`` folder) as one harvest file, the way
    the sink does; returns its path relative to ``target_dir``."""
    folders = {folder_of(record) for record in records}
    if len(folders) != 1:
        raise ValueError(f"records of one file must share one folder, got {sorted(folders)}")
    table: pa.Table = table_of([row_of(record) for record in records])
    if drop_columns:
        table = table.drop_columns(list(drop_columns))
    relative = f"{folders.pop()}/{file_name(topic, partition, start_offset)}"
    Target.of(target_dir).write_parquet(relative, table)
    return relative

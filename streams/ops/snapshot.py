"""What one scrape of ``/metrics`` reports: the counts the running parts already keep for the
logs, gathered into a :class:`Snapshot` (:mod:`driftnet.streams.ops.status` fills it,
:mod:`driftnet.streams.ops.metrics` renders it)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TriageCounts:
    """The triage agent's totals since start (:class:`driftnet.harvest.triage.Tally`)."""

    messages: int
    events: int
    failure_records: int
    failures_by_rule: Mapping[str, int]
    dead_letters_by_reason: Mapping[str, int]


@dataclass(frozen=True, slots=True)
class DetectionCounts:
    """The detection stages' totals since start, and where the merge stage is."""

    windows_closed: int
    findings_by_detector: Mapping[str, int]
    verdicts: Mapping[str, int]
    late_events: int
    open_windows: int
    window_lag_s: float | None
    """Wall time minus the end of the last window closed, on the aggregates partition that
    trails most (None until this worker has closed a window)."""
    cohort_overflow_events: int = 0
    """Events aggregated under the overflow cohort because their partition tracked the most
    cohorts it may (``detectors.windows.max_cohorts_per_partition``)."""
    cohorts_tracked: int = 0
    """Cohorts the map stage tracks now, over this worker's partitions."""
    cohorts_watched: int = 0
    """Cohorts the merge stage holds detectors for now (silent ones are dropped)."""


@dataclass(frozen=True, slots=True)
class AlertCounts:
    """The alerting stage's totals since start, per receiver (:class:`driftnet.streams.alerting.delivery.Tally`)."""

    receivers: tuple[str, ...]
    sent: Mapping[str, int]
    failed: Mapping[str, int]
    dead_lettered: Mapping[str, int]
    waiting: Mapping[str, int]


@dataclass(frozen=True, slots=True)
class OtlpCounts:
    """The OTLP ingest's totals since start (:class:`driftnet.ingest.spans_to_events.OtlpTally`) and what
    its trace buffer holds now."""

    messages: int
    spans: int
    events: int
    child_spans: int
    ignored_spans: int
    dead_letters_by_reason: Mapping[str, int]
    traces_closed: Mapping[str, int]
    spans_dropped: int
    late_spans: int
    open_traces: int
    buffered_spans: int


@dataclass(frozen=True, slots=True)
class SinkCounts:
    """The harvest sink's totals since start (:class:`driftnet.streams.sink.parquet.SinkStats`)."""

    records: int
    rows_written: int
    files_written: int
    dead_letters: int
    write_errors: int


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything one scrape reports; None: the app does not run that part."""

    healthy: bool
    triage: TriageCounts | None = None
    consumer_lag: int | None = None
    """Messages on this worker's events partitions not yet read (None: unknown right now)."""
    detection: DetectionCounts | None = None
    alerts: AlertCounts | None = None
    sink: SinkCounts | None = None
    otlp: OtlpCounts | None = None
    unreadable_batches: Mapping[str, int] | None = None
    """Record batches skipped as unreadable, by topic."""

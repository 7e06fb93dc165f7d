"""What ``/health`` and ``/metrics`` say about a running worker or sink, read from its parts.

:class:`AppStatus` holds the parts an app runs (the triage tally, the consumer, detection, the
alerting stage, the harvest sink: each optional) and, at every request, turns them into
:class:`~driftnet.streams.ops.health.HealthFacts` and a :class:`~driftnet.streams.ops.metrics.Snapshot`. It runs in the
app's event loop, like the parts it reads, so it needs no lock.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from driftnet.harvest.triage import Tally
from driftnet.streams.ops.health import Health, HealthFacts, evaluate
from driftnet.streams.ops.metrics import AppMetrics
from driftnet.streams.ops.snapshot import (
    AlertCounts,
    DetectionCounts,
    OtlpCounts,
    SinkCounts,
    Snapshot,
    TriageCounts,
)

if TYPE_CHECKING:
    from driftnet.ingest.spans_to_events import OtlpIngest
    from driftnet.streams.alerting.stage import AlertStage
    from driftnet.streams.detection.stage import Detection
    from driftnet.streams.sink.parquet import ParquetSink


def triage_counts(tally: Tally) -> TriageCounts:
    return TriageCounts(
        messages=tally.messages,
        events=tally.events,
        failure_records=tally.failures,
        failures_by_rule=dict(tally.failures_by_rule),
        dead_letters_by_reason=dict(tally.dead_letters_by_reason),
    )


def detection_counts(detection: Detection, now: float, late_events: int) -> DetectionCounts:
    tally = detection.tally
    return DetectionCounts(
        windows_closed=tally.windows,
        findings_by_detector=dict(tally.findings),
        verdicts=dict(tally.verdicts),
        late_events=late_events,
        open_windows=detection.merge.open_windows,
        window_lag_s=detection.window_lag(now),
        cohort_overflow_events=detection.map.overflow_events,
        cohorts_tracked=detection.map.cohorts_tracked,
        cohorts_watched=detection.merge.cohorts_watched,
    )


def otlp_counts(ingest: OtlpIngest[Any]) -> OtlpCounts:
    tally, buffer = ingest.tally, ingest.buffer
    return OtlpCounts(
        messages=tally.messages,
        spans=tally.spans,
        events=tally.events,
        child_spans=tally.child_spans,
        ignored_spans=tally.ignored_spans,
        dead_letters_by_reason=dict(tally.dead_letters_by_reason),
        traces_closed={str(reason): n for reason, n in buffer.tally.closed.items()},
        spans_dropped=buffer.tally.spans_dropped,
        late_spans=buffer.tally.late_spans,
        open_traces=buffer.open_traces,
        buffered_spans=buffer.buffered_spans,
    )


@dataclass(slots=True)
class Monotonic:
    """A running total from a count that drops when partitions move away (the map stage's
    late events are counted per partition it owns): only increases are added."""

    total: int = 0
    last: int = 0

    def see(self, current: int) -> int:
        self.total += max(current - self.last, 0)
        self.last = current
        return self.total


def alert_counts(stage: AlertStage) -> AlertCounts:
    tally = stage.tally
    return AlertCounts(
        receivers=tuple(sorted(stage.notifiers)),
        sent=dict(tally.by_receiver),
        failed=dict(tally.failed_by_receiver),
        dead_lettered=dict(tally.dead_lettered_by_receiver),
        waiting=stage.outbox.waiting(),
    )


def sink_counts(sink: ParquetSink) -> SinkCounts:
    stats = sink.stats
    return SinkCounts(
        records=stats.records,
        rows_written=stats.rows_written,
        files_written=stats.files_written,
        dead_letters=stats.dead_letters,
        write_errors=stats.write_errors,
    )


@dataclass(slots=True)
class AppStatus:
    """The parts of one app the endpoint reports on; a part left None is not run here."""

    metrics: AppMetrics
    tally: Tally | None = None
    """The triage agent's running totals."""
    consumer_state: Callable[[], str] | None = None
    """The events consumer's service state (``running``, ...)."""
    consumer_assigned: bool = False
    """Set by the app at its first partition assignment."""
    lag: Callable[[], Awaitable[int | None]] | None = None
    """Messages waiting on the events partitions (None while unknown)."""
    detection: Detection | None = None
    alerts: AlertStage | None = None
    sink: ParquetSink | None = None
    otlp: OtlpIngest[Any] | None = None
    """The OTLP ingest, when the worker reads the OTLP spans topic."""
    unreadable_batches: Mapping[str, int] | None = None
    """Record batches skipped as unreadable, by topic (every guarded topic, 0 at first)."""
    clock: Callable[[], float] = time.time
    late_events: Monotonic = field(default_factory=Monotonic)

    def facts(self) -> HealthFacts:
        sink = self.sink
        events = self.consumer_state is not None
        return HealthFacts(
            consumer_assigned=self.consumer_assigned if events else None,
            consumer_state=self.consumer_state() if self.consumer_state is not None else None,
            sink_assigned=None if sink is None else sink.joined,
            sink_running=None if sink is None else not sink.stopped,
            sink_failing=None if sink is None else sink.failing,
        )

    async def health(self) -> Health:
        """The body and verdict of ``/health``."""
        return evaluate(self.facts())

    async def snapshot(self) -> Snapshot:
        """Everything ``/metrics`` reports now."""
        return Snapshot(
            healthy=evaluate(self.facts()).ok,
            triage=None if self.tally is None else triage_counts(self.tally),
            consumer_lag=None if self.lag is None else await self.lag(),
            detection=None if self.detection is None else self._detection(self.detection),
            alerts=None if self.alerts is None else alert_counts(self.alerts),
            sink=None if self.sink is None else sink_counts(self.sink),
            otlp=None if self.otlp is None else otlp_counts(self.otlp),
            unreadable_batches=(
                None if self.unreadable_batches is None else dict(self.unreadable_batches)
            ),
        )

    def _detection(self, detection: Detection) -> DetectionCounts:
        late = self.late_events.see(detection.map.late_events)
        return detection_counts(detection, self.clock(), late)

    async def render_metrics(self, accept: str = "") -> tuple[bytes, str]:
        """The exposition of ``/metrics`` and its content type."""
        self.metrics.update(await self.snapshot())
        return self.metrics.render(accept)

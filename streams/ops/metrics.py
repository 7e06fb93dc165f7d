"""Prometheus metrics of the worker and the sink: one registry per app, filled at scrape time.

The counts already kept for the logs (the triage tally, the detection tally, the alerting
stage's tally, the sink's stats) are the single source: at each scrape the app gathers them into
a :class:`~driftnet.streams.ops.snapshot.Snapshot` and :class:`AppMetrics` exposes it, so a metric can never disagree with the
log line. Only the detector time is observed as it happens (a histogram needs each duration).
prometheus-client writes the exposition format; no Kafka client is imported here.

Every metric is named ``driftnet_*``, counters end in ``_total``, durations in ``_seconds``.
A part the app does not run (the sink alone has no triage) leaves its metrics out.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import get_args

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from driftnet.contract.decode import DeadLetterReason
from driftnet.harvest.rules import RuleId
from driftnet.streams.ops.snapshot import (
    AlertCounts,
    DetectionCounts,
    OtlpCounts,
    SinkCounts,
    Snapshot,
    TriageCounts,
)

DETECTOR_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Seconds a round of window closes may take: a few ms for a handful of cohorts, up to
seconds for thousands (the one-second tick waits for it)."""

RULE_IDS: tuple[str, ...] = get_args(RuleId)
DEAD_LETTER_REASONS: tuple[str, ...] = tuple(
    r for r in get_args(DeadLetterReason) if r != "invalid_record"
)
"""The worker's dead-letter reasons (``invalid_record`` is the sink's, counted on its own)."""


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, value=value)


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


def _by(
    name: str, doc: str, label: str, counts: Mapping[str, int], known: Iterable[str] = ()
) -> CounterMetricFamily | GaugeMetricFamily:
    """A counter (a gauge when ``name`` has no ``_total``) with one sample per ``label``
    value: every ``known`` one (0 until it happens, so a rate works from the first occurrence)
    and every one counted."""
    kind = CounterMetricFamily if name.endswith("_total") else GaugeMetricFamily
    metric = kind(name, doc, labels=[label])
    for value in sorted({*known, *counts}):
        metric.add_metric([value], counts.get(value, 0))
    return metric


def families(snapshot: Snapshot) -> Iterator[Metric]:
    """The metric families of ``snapshot`` (pure: what :class:`AppMetrics` exposes)."""
    yield _gauge("driftnet_healthy", "1 when /health answers 200, else 0.", int(snapshot.healthy))
    if snapshot.triage is not None:
        yield from _triage(snapshot.triage)
    if snapshot.consumer_lag is not None:
        yield _gauge(
            "driftnet_consumer_lag_messages",
            "Messages waiting on this worker's events partitions (end offset minus position).",
            snapshot.consumer_lag,
        )
    if snapshot.detection is not None:
        yield from _detection(snapshot.detection)
    if snapshot.alerts is not None:
        yield from _alerts(snapshot.alerts)
    if snapshot.sink is not None:
        yield from _sink(snapshot.sink)
    if snapshot.otlp is not None:
        yield from _otlp(snapshot.otlp)
    if snapshot.unreadable_batches is not None:
        yield _by(
            "driftnet_unreadable_batches_total",
            "Record batches the consumer could not read (corrupt, unknown codec), skipped and "
            "dead-lettered as unreadable_batch, by topic.",
            "topic",
            snapshot.unreadable_batches,
        )


def _triage(triage: TriageCounts) -> Iterator[Metric]:
    yield _counter(
        "driftnet_messages_total",
        "Messages read from the events topic (one event or a batch each).",
        triage.messages,
    )
    yield _counter(
        "driftnet_events_total", "Valid events decoded from those messages.", triage.events
    )
    yield _counter(
        "driftnet_failure_records_total",
        "Failure records produced (events failing at least one rule).",
        triage.failure_records,
    )
    yield _by(
        "driftnet_failures_total",
        "Failure reasons by rule (a record failing two rules counts under each).",
        "rule",
        triage.failures_by_rule,
        RULE_IDS,
    )
    yield _by(
        "driftnet_dead_letters_total",
        "Messages or batch elements dead-lettered, by reason.",
        "reason",
        triage.dead_letters_by_reason,
        DEAD_LETTER_REASONS,
    )


def _detection(detection: DetectionCounts) -> Iterator[Metric]:
    yield _counter(
        "driftnet_windows_closed_total",
        "Cohort windows closed and judged by the merge stage.",
        detection.windows_closed,
    )
    yield _by(
        "driftnet_findings_total",
        "Detector findings, by detector.",
        "detector",
        detection.findings_by_detector,
    )
    yield _by(
        "driftnet_canary_verdicts_total", "Canary verdicts, by outcome.", "verdict",
        detection.verdicts,
    )  # fmt: skip
    yield _counter(
        "driftnet_late_events_total",
        "Events that arrived after their window had closed.",
        detection.late_events,
    )
    yield _gauge(
        "driftnet_open_windows", "Cohort windows the merge stage holds open.",
        detection.open_windows,
    )  # fmt: skip
    yield _counter(
        "driftnet_cohort_overflow_events_total",
        "Events counted under the _overflow cohort: their partition already tracked "
        "detectors.windows.max_cohorts_per_partition cohorts (a cardinality attack?).",
        detection.cohort_overflow_events,
    )
    yield _gauge(
        "driftnet_cohorts_tracked",
        "Cohorts the map stage tracks on this worker's partitions.",
        detection.cohorts_tracked,
    )
    yield _gauge(
        "driftnet_cohorts_watched",
        "Cohorts the merge stage holds detectors for (dropped once silent for "
        "detectors.windows.forget_after_windows windows).",
        detection.cohorts_watched,
    )
    if detection.window_lag_s is not None:
        yield _gauge(
            "driftnet_window_lag_seconds",
            "Wall time minus the end of the last window closed (on the aggregates partition "
            "that trails most).",
            detection.window_lag_s,
        )


def _alerts(alerts: AlertCounts) -> Iterator[Metric]:
    known = alerts.receivers
    yield _by(
        "driftnet_alerts_sent_total", "Notifications delivered, by receiver.", "receiver",
        alerts.sent, known,
    )  # fmt: skip
    yield _by(
        "driftnet_alerts_failed_total", "Failed delivery attempts (retried), by receiver.",
        "receiver", alerts.failed, known,
    )  # fmt: skip
    yield _by(
        "driftnet_alerts_dead_lettered_total",
        "Notifications given up (a permanent failure, or retried past the retry budget) and "
        "published to the alerts dead-letter topic, by receiver.",
        "receiver", alerts.dead_lettered, known,
    )  # fmt: skip
    yield _by(
        "driftnet_alerts_waiting", "Notifications in the outbox, by receiver.", "receiver",
        alerts.waiting, known,
    )  # fmt: skip


def _sink(sink: SinkCounts) -> Iterator[Metric]:
    yield _counter(
        "driftnet_sink_records_total", "Records read from the failures topic.", sink.records
    )
    yield _counter(
        "driftnet_sink_rows_written_total",
        "Rows written to durable Parquet files.",
        sink.rows_written,
    )
    yield _counter(
        "driftnet_sink_files_written_total", "Parquet files written.", sink.files_written
    )
    yield _counter(
        "driftnet_sink_dead_letters_total",
        "Values on the failures topic that are not failure records.",
        sink.dead_letters,
    )
    yield _counter(
        "driftnet_sink_write_errors_total",
        "Failed file writes (retried with backoff).",
        sink.write_errors,
    )


OTLP_CLOSE_REASONS = ("complete", "timeout", "evicted")


def _otlp(otlp: OtlpCounts) -> Iterator[Metric]:
    yield _counter(
        "driftnet_otlp_messages_total", "Messages read from the OTLP spans topic.", otlp.messages
    )
    yield _counter("driftnet_otlp_spans_total", "Spans decoded from those messages.", otlp.spans)
    yield _counter(
        "driftnet_otlp_events_total",
        "v1 events made from LLM-call spans and sent to the events topic.",
        otlp.events,
    )
    yield _counter(
        "driftnet_otlp_child_spans_total",
        "Spans carried as an event's spans (tools, retrieval...).",
        otlp.child_spans,
    )
    yield _counter(
        "driftnet_otlp_ignored_spans_total",
        "Spans of traces without an LLM call (not GenAI): ignored.",
        otlp.ignored_spans,
    )
    yield _by(
        "driftnet_otlp_dead_letters_total",
        "OTLP messages, spans or events dead-lettered, by reason.",
        "reason",
        otlp.dead_letters_by_reason,
        ("invalid_otlp", "empty_message", "processing_failed"),
    )
    yield _by(
        "driftnet_otlp_traces_closed_total",
        "Traces handed on, by why: root arrived, timeout, evicted by otlp.max_buffered_spans.",
        "reason",
        otlp.traces_closed,
        OTLP_CLOSE_REASONS,
    )
    yield _counter(
        "driftnet_otlp_spans_dropped_total",
        "Child spans dropped past otlp.max_spans_per_trace.",
        otlp.spans_dropped,
    )
    yield _counter(
        "driftnet_otlp_late_spans_total",
        "Child spans that arrived after their trace was handed on (dropped).",
        otlp.late_spans,
    )
    yield _gauge("driftnet_otlp_open_traces", "Traces the buffer holds open.", otlp.open_traces)
    yield _gauge(
        "driftnet_otlp_buffered_spans", "Spans the buffer holds (open traces).",
        otlp.buffered_spans,
    )  # fmt: skip


class _SnapshotCollector(Collector):
    """Exposes the snapshot last handed to :meth:`AppMetrics.update`."""

    def __init__(self) -> None:
        self.snapshot: Snapshot | None = None

    def collect(self) -> Iterable[Metric]:
        return [] if self.snapshot is None else list(families(self.snapshot))

    def describe(self) -> Iterable[Metric]:
        return []  # the families depend on the snapshot: checked at scrape time only


class AppMetrics:
    """The metrics of one app in its own registry (several apps in one process never clash),
    with the process, platform and garbage-collector metrics of prometheus-client."""

    def __init__(self, *, detection: bool = False, process: bool = True) -> None:
        self.registry = CollectorRegistry()
        self._snapshot = _SnapshotCollector()
        self.registry.register(self._snapshot)
        self.detector_seconds: Histogram | None = None
        """Observed by the merge stage (with ``detection``)."""
        if detection:
            self.detector_seconds = Histogram(
                "driftnet_detector_seconds",
                "Seconds the merge stage spent closing windows and running the detectors and "
                "the canary judge on them, one observation per tick that closed windows.",
                buckets=DETECTOR_BUCKETS,
                registry=self.registry,
            )
        if process:
            ProcessCollector(registry=self.registry)
            PlatformCollector(registry=self.registry)
            GCCollector(registry=self.registry)

    def update(self, snapshot: Snapshot) -> None:
        """What the next :meth:`render` exposes."""
        self._snapshot.snapshot = snapshot

    def render(self, accept: str = "") -> tuple[bytes, str]:
        """The exposition (Prometheus text, or OpenMetrics when ``accept`` asks for it) and
        its content type."""
        encoder, content_type = choose_encoder(accept)
        return encoder(self.registry), content_type

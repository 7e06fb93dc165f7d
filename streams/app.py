"""The worker's faust app assembled: its options and topics, its stages attached in order, and
the parts ``/health`` and ``/metrics`` read."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from driftnet.streams.alerting.notifiers import make_notifiers
from driftnet.streams.alerting.stage import AlertStage
from driftnet.streams.clients.kafka_config import faust_broker_options
from driftnet.streams.detection.stage import Detection
from driftnet.streams.intake.otlp import OtlpStage
from driftnet.streams.intake.triage import TriageStage
from driftnet.streams.intake.unreadable import GuardUnavailable, guard
from driftnet.streams.ops.counters import Counters
from driftnet.streams.ops.preflight import WorkerError
from driftnet.streams.ops.reporting import HealthReporter, Reporting
from driftnet.streams.settings import Settings
from driftnet.streams.sink.stage import HarvestSinkStage, SinkError
from driftnet.streams.stage import MAX_REQUEST_BYTES, Stage, Topics

if TYPE_CHECKING:
    import faust

    from driftnet.streams.ops.status import AppStatus

log = logging.getLogger("driftnet.worker")

PRODUCER_LINGER_S = 0.02
"""Failure records and dead letters wait up to 20 ms to share a produce request (faust's
default of 0 sends one request per record)."""


def faust_app(settings: Settings) -> faust.App:
    """The faust app with the worker's consumer and producer options (no topic declared)."""
    import faust

    worker = settings.worker
    return faust.App(
        worker.app_id,
        **faust_broker_options(settings.kafka),
        broker_client_id=settings.kafka.client_id,
        store="memory://",
        datadir=str(Path(worker.data_dir)),
        web_enabled=False,
        topic_disable_leader=True,
        topic_allow_declare=False,
        consumer_auto_offset_reset=worker.offset_reset,
        broker_commit_interval=worker.commit_interval_s,
        broker_session_timeout=worker.session_timeout_s,
        broker_rebalance_timeout=worker.rebalance_timeout_s,
        broker_heartbeat_interval=min(3.0, worker.session_timeout_s / 3),
        producer_acks=-1,
        producer_linger=PRODUCER_LINGER_S,
        producer_max_batch_size=1024 * 1024,
        producer_max_request_size=MAX_REQUEST_BYTES,
        producer_request_timeout=worker.send_timeout_s,
        # Detection holds acks until windows are done; faust must not wait for them to drain
        # before a rebalance or a stop (what is not acked is replayed, by design).
        stream_wait_empty=False,
    )


def guard_read_topics(settings: Settings, counters: Counters) -> None:
    """Make a record batch the worker's agents cannot read a dead letter, not a crash
    (:mod:`driftnet.streams.intake.unreadable`), on the topics other programs write."""
    read_by_others = [settings.topics.events.name]
    if settings.otlp.enabled is True:
        read_by_others.append(settings.topics.otlp_spans.name)
    try:
        guard(read_by_others)  # a batch that cannot be read is a dead letter, not a crash
    except GuardUnavailable as exc:
        log.warning("%s: a record batch the worker cannot read will stop it", exc)
    counters.unreadable_batches.update(dict.fromkeys(read_by_others, 0))


def build_app(
    settings: Settings, counters: Counters | None = None, status: AppStatus | None = None
) -> Any:
    """The faust app: its stages built, in the order they start, then each attached in turn
    (the triage agent on the events topic; detection's merge agent and tick; the OTLP ingest;
    the report timer; alerting; the harvest sink); its parts handed to ``status`` (what
    ``/health`` and ``/metrics`` report), when given."""
    counters = counters if counters is not None else Counters()
    app = faust_app(settings)
    topics: Topics = {
        role: app.topic(spec.name, key_serializer="raw", value_serializer="raw")
        for role, spec in settings.topics.by_role().items()
    }
    detection = Detection(settings) if settings.worker.detect else None
    guard_read_topics(settings, counters)
    otlp = None
    if settings.otlp.enabled is True:
        otlp = OtlpStage(settings, counters)
    counters.otlp = None if otlp is None else otlp.ingest.tally
    health = HealthReporter(app, settings, counters, topics["signals"])
    alerting = None
    if settings.alerts.enabled:
        alerting = AlertStage(settings, make_notifiers(settings, topics))
    sink = None
    if settings.harvest.sink_in_worker:
        try:
            sink = HarvestSinkStage(settings)
        except SinkError as exc:
            raise WorkerError(str(exc)) from None
        health.sink = sink.sink

    stages: list[Stage | None] = [
        TriageStage(settings, counters, detection),
        detection,
        otlp,
        Reporting(settings, counters, detection, health),
        alerting,
        sink,
    ]
    for stage in stages:
        if stage is not None:
            stage.attach(app, topics)

    if status is not None:
        status.tally = counters.total
        status.consumer_state = lambda: str(app.consumer.state)
        status.lag = health.lag
        status.detection = detection
        status.alerts = alerting
        status.sink = health.sink
        status.otlp = None if otlp is None else otlp.ingest
        status.unreadable_batches = counters.unreadable_batches
        if detection is not None and status.metrics.detector_seconds is not None:
            detection.on_judged = status.metrics.detector_seconds.observe

    @app.on_partitions_assigned.connect  # type: ignore[arg-type]
    async def on_assigned(sender: Any, *args: Any, **kwargs: Any) -> None:
        assigned = args[0] if args else kwargs.get("assigned", ())
        if status is not None:
            status.consumer_assigned = True
        if detection is not None:
            detection.assigned(assigned)
        mine = sorted(tp.partition for tp in assigned if tp.topic == settings.topics.events.name)
        log.info("%s: assigned partitions %s", settings.topics.events.name, mine or "none")

    return app

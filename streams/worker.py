"""``driftnet worker``: the faust app that puts the core on Kafka.

For every message on the events topic (one event or a JSON array of them) it runs the
:class:`~driftnet.harvest.triage.Triage` (decode, validate, failure rules) and produces

- each failure record to the failures topic, keyed by ``record_id`` (value: the record as JSON);
- each dead letter to the DLQ: the capped original payload, why and where in headers
  (``contract/dlq.py``), keyed like the source message.

With the OTLP ingest on (``otlp.enabled``), an ``otlp`` agent reads the OTLP spans topic,
joins each trace's spans and sends one v1 event per LLM-call span to the events topic (JSON
arrays keyed by cohort, as a native producer would), where the triage above sees them like any
event; an OTLP message is acked only once every trace it fed has been sent
(:mod:`driftnet.ingest.spans_to_events`).

Delivery is at least once: faust flushes the producer (every record sent so far is
acknowledged) before it commits an offset, so a killed worker replays, never loses; a
replayed failure has the same ``record_id``, which is how the harvest counts it once.
Nothing a producer sends can stop the worker: every byte sequence is a result or a dead letter,
and so is a record batch the consumer cannot read (an ``unreadable_batch``, :mod:`driftnet.streams.unreadable`).
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from driftnet.contract.dlq import dead_letter_headers
from driftnet.contract.events import Lineage
from driftnet.harvest.triage import Triage, Triaged
from driftnet.storage.settings import masked_uri
from driftnet.streams.counters import Counters
from driftnet.streams.detection import TICK_S, Detection
from driftnet.streams.gc_tuning import tune_gc
from driftnet.streams.http_endpoint import http_service, listen_http
from driftnet.streams.kafka_config import faust_broker_options
from driftnet.streams.preflight import WorkerError, preflight
from driftnet.streams.reporting import HealthReporter
from driftnet.streams.settings import Settings
from driftnet.streams.unreadable import GuardUnavailable, guard, unreadable_batch

if TYPE_CHECKING:
    from driftnet.ingest.spans_to_events import OtlpIngest, Step
    from driftnet.streams.status import AppStatus

log = logging.getLogger("driftnet.worker")

PRODUCER_LINGER_S = 0.02
"""Failure records and dead letters wait up to 20 ms to share a produce request (faust's
default of 0 sends one request per record)."""

MAX_REQUEST_BYTES = 1024 * 1024
"""Kafka's default message size limit (``message.max.bytes``)."""
RECORD_MAX_BYTES = MAX_REQUEST_BYTES - 16 * 1024
"""A failure record larger than this (key and headers need room too) is dead-lettered as
``processing_failed`` rather than sent: the broker would refuse it."""

QUIET_LOGGERS = ("faust", "mode", "aiokafka", "kafka")
"""Libraries whose INFO lines (partition tables, service start/stop) only matter when debugging."""


OTLP_TICK_S = 0.5
"""How often traces that timed out in the OTLP buffer are handed on."""


def build_app(
    settings: Settings, counters: Counters | None = None, status: AppStatus | None = None
) -> Any:
    """The faust app: one agent on the events topic, a timer that logs the counts; its parts
    handed to ``status`` (what ``/health`` and ``/metrics`` report), when given."""
    import faust

    worker = settings.worker
    counters = counters if counters is not None else Counters()
    triage = Triage(
        settings.rules,
        payload_cap=settings.decode.payload_cap_bytes,
        record_max_bytes=RECORD_MAX_BYTES,
        redaction=settings.harvest.redaction,
        keep_events=worker.detect,
        max_future_s=settings.decode.max_future_s,
        max_past_s=settings.decode.max_past_s,
        max_batch=settings.decode.max_batch_events,
    )
    app = faust.App(
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
        # Detection holds acks until windows are done; faust must not wait for them to drain
        # before a rebalance or a stop (what is not acked is replayed, by design).
        stream_wait_empty=False,
    )
    topics = {
        role: app.topic(spec.name, key_serializer="raw", value_serializer="raw")
        for role, spec in settings.topics.by_role().items()
    }
    events, dlq, failures = topics["events"], topics["dlq"], topics["failures"]
    detection = Detection(settings, topics) if worker.detect else None
    read_by_others = [settings.topics.events.name]
    if settings.otlp.enabled is True:
        read_by_others.append(settings.topics.otlp_spans.name)
    try:
        guard(read_by_others)  # a batch that cannot be read is a dead letter, not a crash
    except GuardUnavailable as exc:
        log.warning("%s: a record batch the worker cannot read will stop it", exc)
    counters.unreadable_batches.update(dict.fromkeys(read_by_others, 0))

    @app.agent(events, name="triage")
    async def triage_agent(stream: Any) -> None:
        # With detection on, a message is acked only once the windows it fed are done.
        source = stream.noack() if detection is not None else stream
        async for event in source.events():
            message = event.message
            now = datetime.now(UTC)
            skipped = unreadable_batch(message.headers)
            if skipped is None:
                lineage = Lineage(message.topic, message.partition, message.offset)
                triaged = triage(message.value, lineage, now)
            else:
                triaged = Triaged(0, [], [counters.unreadable(skipped)])
            counters.total.add(triaged)
            # force=True sends now rather than attaching to the event (faust's default):
            # measured ~1.5x faster with one failure in five events, and just as safe, since
            # faust flushes the producer before it commits any offset.
            for record, value in zip(triaged.failures, triaged.encoded, strict=True):
                await failures.send(key=record.record_id.encode(), value=value, force=True)
            for dead in triaged.dead_letters:
                await dlq.send(
                    key=message.key,
                    value=dead.payload,
                    headers=dead_letter_headers(dead, now),
                    force=True,
                )
            if detection is not None:
                detection.observe(event, triaged)

    if detection is not None:
        app.agent(topics["aggregates"], name="merge")(detection.merge_agent)

        @app.timer(TICK_S)  # type: ignore[untyped-decorator]
        async def detection_tick() -> None:
            from faust.exceptions import NotReady

            try:
                await detection.tick()
            except NotReady:
                # A tick still sending when the worker stops finds the producer gone. Nothing
                # is lost: the windows it closed are acked only at the tick's end, so the
                # next worker replays and closes them again.
                if not app.should_stop:
                    raise
                log.info("detection tick cut short by the shutdown: its windows replay on restart")

        @app.on_partitions_revoked.connect  # type: ignore[arg-type]
        async def on_revoked(sender: Any, *args: Any, **kwargs: Any) -> None:
            detection.revoked(args[0] if args else kwargs.get("revoked", ()))

        import mode

        @app.service
        class DetectionChecker(mode.Service):
            """Stops the evidently checker process with the worker."""

            async def on_stop(self) -> None:
                assert detection is not None
                detection.close()

    otlp = wire_otlp(app, settings, topics, counters) if settings.otlp.enabled is True else None
    counters.otlp = None if otlp is None else otlp.tally

    health = HealthReporter(app, settings, counters, topics["signals"])

    @app.timer(worker.report_interval_s)  # type: ignore[untyped-decorator]
    async def report_counts() -> None:
        for line in counters.report():
            log.info("%s", line)
        for line in detection.report() if detection is not None else ():
            log.info("  %s", line)
        await health.send()

    alert_stage = None
    if settings.alerts.enabled:
        from driftnet.streams.alerting import wire_alerting

        alert_stage = wire_alerting(app, settings, topics)

    if settings.harvest.sink_in_worker:
        from driftnet.streams.harvest_sink import SinkError, sink_service

        try:
            service = sink_service(settings)
            app.service(service)
            health.sink = service.sink
        except SinkError as exc:
            raise WorkerError(str(exc)) from None

    if status is not None:
        status.tally = counters.total
        status.consumer_state = lambda: str(app.consumer.state)
        status.lag = health.lag
        status.detection = detection
        status.alerts = alert_stage
        status.sink = health.sink
        status.otlp = otlp
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


def wire_otlp(
    app: Any, settings: Settings, topics: dict[str, Any], counters: Counters
) -> OtlpIngest[Any]:
    """The ``otlp`` agent on the OTLP spans topic and the timer that hands on timed-out traces.

    Every OTLP message is held (faust's acks off) until the ingest releases it: once every
    trace it fed has been sent to the events topic. faust flushes the producer before it
    commits, so what a killed worker had buffered is read again, never lost.
    """
    from driftnet.ingest.spans_to_events import OtlpIngest

    ingest: OtlpIngest[Any] = OtlpIngest(
        settings.otlp,
        payload_cap=settings.decode.payload_cap_bytes,
        event_max_bytes=RECORD_MAX_BYTES,
        batch_max_events=min(settings.publisher.batch_max_events, settings.decode.max_batch_events),
        batch_max_bytes=min(settings.publisher.batch_max_bytes, RECORD_MAX_BYTES),
    )
    events, dlq = topics["events"], topics["dlq"]

    async def hand_on(step: Step[Any]) -> None:
        now = datetime.now(UTC)
        for key, value, _ in step.batches:
            await events.send(key=key, value=value, force=True)
        for dead, source_key in step.dead_letters:
            await dlq.send(key=source_key, value=dead.payload, headers=dead_letter_headers(dead, now),
                           force=True)  # fmt: skip
        for event in step.acks:
            event.ack()

    @app.agent(topics["otlp_spans"], name="otlp")  # type: ignore[untyped-decorator]
    async def otlp_agent(stream: Any) -> None:
        async for event in stream.noack().events():
            message = event.message
            skipped = unreadable_batch(message.headers)
            if skipped is not None:  # dead-lettered and acked like a message that is no OTLP
                dead = counters.unreadable(skipped)
                await dlq.send(key=None, value=b"", force=True,
                               headers=dead_letter_headers(dead, datetime.now(UTC)))  # fmt: skip
                event.ack()
                continue
            lineage = Lineage(message.topic, message.partition, message.offset)
            await hand_on(ingest.add(event, message.value, message.key, lineage, time.monotonic()))

    @app.timer(min(OTLP_TICK_S, settings.otlp.trace_timeout_s / 2))  # type: ignore[untyped-decorator]
    async def otlp_tick() -> None:
        from faust.exceptions import NotReady

        try:
            await hand_on(ingest.due(time.monotonic()))
        except NotReady:
            # The producer is gone (the worker stops): the traces not sent were not acked,
            # so the next worker reads their messages again.
            if not app.should_stop:
                raise

    return ingest


def run_worker(settings: Settings) -> None:
    """Run until SIGINT / SIGTERM, then stop cleanly and log the totals."""
    import faust

    asked = settings.otlp.enabled
    settings = preflight(settings)
    Path(settings.worker.data_dir).mkdir(parents=True, exist_ok=True)
    counters = Counters()
    listener = listen_http(settings)
    services: list[Any] = []
    status = None
    if listener is not None:
        from driftnet.streams.http_server import HttpServer
        from driftnet.streams.metrics import AppMetrics
        from driftnet.streams.status import AppStatus

        status = AppStatus(AppMetrics(detection=settings.worker.detect))
        services.append(http_service(HttpServer(listener, status.health, status.render_metrics)))
    try:
        app = build_app(settings, counters, status)
    except BaseException:
        if listener is not None:
            listener.close()
        raise
    topics = settings.topics

    class _Worker(faust.Worker):
        def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
            super().on_setup_root_logger(logger, level)
            if level > logging.DEBUG:
                for name in QUIET_LOGGERS:
                    logging.getLogger(name).setLevel(max(level, logging.WARNING))

        announced = False

        async def on_startup_finished(self) -> None:
            await super().on_startup_finished()
            if self.announced:  # faust calls this again after every rebalance
                return
            self.announced = True
            log.info(
                "driftnet worker %r consuming %s -> failures %s, dead letters %s (Ctrl-C stops)",
                settings.worker.app_id,
                topics.events.name,
                topics.failures.name,
                topics.dlq.name,
            )
            if settings.otlp.enabled is True:
                log.info(
                    "otlp ingest consuming %s -> events %s (traces wait up to %g s for their root)",
                    topics.otlp_spans.name,
                    topics.events.name,
                    settings.otlp.trace_timeout_s,
                )
            elif asked == "auto":
                log.info(
                    "otlp ingest off: topic %s not found (`driftnet topics create` makes it)",
                    topics.otlp_spans.name,
                )
            if settings.harvest.sink_in_worker:
                log.info(
                    "harvest sink consuming %s -> %s",
                    topics.failures.name,
                    masked_uri(settings.harvest.location),
                )

    tune_gc()
    try:
        _Worker(
            app,
            *services,
            loglevel=settings.worker.log_level,
            quiet=True,
            redirect_stdouts=False,
        ).execute_from_commandline()
    finally:
        log.info(
            "driftnet worker stopped after %.0f s: %s",
            time.monotonic() - counters.started_at,
            counters.total.summary(),
        )
        for line in counters.total.breakdown():
            log.info("  %s", line)

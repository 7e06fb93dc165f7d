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

The app is assembled in :mod:`driftnet.streams.app`: each of those agents, with the timers and
services it needs, is a stage (:class:`driftnet.streams.stage.Stage`) that attaches itself.

Delivery is at least once: faust flushes the producer (every record sent so far is
acknowledged) before it commits an offset, so a killed worker replays, never loses; a
replayed failure has the same ``record_id``, which is how the harvest counts it once.
Nothing a producer sends can stop the worker: every byte sequence is a result or a dead letter,
and so is a record batch the consumer cannot read (an ``unreadable_batch``, :mod:`driftnet.streams.intake.unreadable`).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from driftnet.storage.settings import masked_uri
from driftnet.streams.app import build_app
from driftnet.streams.ops.counters import Counters
from driftnet.streams.ops.gc_tuning import tune_gc
from driftnet.streams.ops.http_endpoint import http_service, listen_http
from driftnet.streams.ops.http_server import HttpServer
from driftnet.streams.ops.metrics import AppMetrics
from driftnet.streams.ops.preflight import preflight
from driftnet.streams.ops.status import AppStatus
from driftnet.streams.settings import Settings

log = logging.getLogger("driftnet.worker")

QUIET_LOGGERS = ("faust", "mode", "aiokafka", "kafka")
"""Libraries whose INFO lines (partition tables, service start/stop) only matter when debugging."""


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

"""Wiring of the Parquet sink: alone (``driftnet sink``) or inside ``driftnet worker``."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from typing import TYPE_CHECKING, Any

from driftnet.storage.settings import masked_uri
from driftnet.storage.target import Target, TargetError, first_line
from driftnet.streams.ops.gc_tuning import tune_gc
from driftnet.streams.ops.http_server import HttpError, HttpServer, listen
from driftnet.streams.ops.metrics import AppMetrics
from driftnet.streams.ops.preflight import WorkerError, preflight
from driftnet.streams.ops.status import AppStatus
from driftnet.streams.settings import Settings
from driftnet.streams.sink.parquet import DeadLetterUndelivered, ParquetSink
from driftnet.streams.stage import Topics

if TYPE_CHECKING:
    from driftnet.streams.ops.http_server import HttpServer

log = logging.getLogger("driftnet.sink")


class SinkError(Exception):
    """The sink cannot start; ``str()`` is one line saying why."""


def make_sink(settings: Settings) -> ParquetSink:
    """A sink for the settings' failures topic and harvest location."""
    return ParquetSink(
        settings.kafka,
        settings.harvest,
        failures_topic=settings.topics.failures.name,
        dlq_topic=settings.topics.dlq.name,
        session_timeout_s=settings.worker.session_timeout_s,
        rebalance_timeout_s=settings.worker.rebalance_timeout_s,
        send_give_up_s=settings.worker.send_give_up_s,
    )


def check_location(settings: Settings) -> Target:
    """The harvest target, checked writable now rather than at the first file."""
    location = settings.harvest.location
    try:
        target = Target.of(location)
        target.filesystem.create_dir(target.root, recursive=True)
    except (TargetError, OSError) as exc:
        raise SinkError(
            f"cannot write the harvest at {masked_uri(location)}: {first_line(exc)}"
        ) from None
    return target


def run_sink(settings: Settings) -> None:
    """Run the sink in the foreground until SIGINT / SIGTERM."""

    logging.basicConfig(
        level=settings.worker.log_level.upper(),
        format="[%(asctime)s] %(levelname)s %(name)s: %(message)s",
    )
    for name in ("aiokafka", "kafka"):
        logging.getLogger(name).setLevel(logging.WARNING)
    target = check_location(settings)
    try:
        preflight(settings)
    except WorkerError as exc:
        raise SinkError(str(exc)) from None
    sink = make_sink(settings)
    server = http_server(settings, sink)
    tune_gc()

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        if server is not None:
            await server.start()
        log.info(
            "driftnet sink consuming %s -> %s (Ctrl-C stops)",
            settings.topics.failures.name,
            target.uri,
        )
        try:
            await sink.run(stop)
        finally:
            if server is not None:
                await server.stop()

    try:
        asyncio.run(main())
    except DeadLetterUndelivered as exc:  # what it wrote is committed, the rest read again
        raise SinkError(str(exc)) from None


def http_server(settings: Settings, sink: ParquetSink) -> HttpServer | None:
    """``/health`` and ``/metrics`` of the sink alone (None when ``http.enabled`` is off); its
    port is bound now, so a busy one is a one-line error before the sink starts."""
    if not settings.http.enabled:
        return None

    try:
        listener = listen(settings.http)
    except HttpError as exc:
        raise SinkError(str(exc)) from None
    status = AppStatus(AppMetrics(), sink=sink)
    return HttpServer(listener, status.health, status.render_metrics)


def sink_service(settings: Settings) -> type[Any]:
    """A faust/mode service that runs the sink inside the worker's event loop."""
    import mode

    check_location(settings)
    sink = make_sink(settings)

    class HarvestSink(mode.Service):
        """Starts the sink with the worker; on stop writes what it holds and commits."""

        sink: Any = None

        _stop: asyncio.Event
        _task: asyncio.Future[None]

        async def on_start(self) -> None:
            self._stop = asyncio.Event()
            self._task = asyncio.ensure_future(sink.run(self._stop))
            self._task.add_done_callback(self._ended)

        def _ended(self, task: asyncio.Future[None]) -> None:
            """A sink that dies on its own stops the worker with a clear line, rather than
            leaving it running without a harvest."""
            if task.cancelled() or task.exception() is None or self._stop.is_set():
                return
            exc = task.exception()
            log.error(
                "harvest sink failed (%s: %s); stopping the worker: nothing is lost, the sink "
                "re-reads what it had not written when the worker starts again",
                type(exc).__name__,
                exc,
            )
            os.kill(os.getpid(), signal.SIGTERM)

        async def on_stop(self) -> None:
            self._stop.set()
            try:
                await asyncio.wait_for(self._task, timeout=30.0)
            except Exception:
                log.exception("harvest sink did not stop cleanly")

    HarvestSink.sink = sink
    return HarvestSink


class HarvestSinkStage:
    """The sink inside ``driftnet worker`` (``harvest.sink_in_worker``): a service of the app,
    reading the failures topic with its own consumer. Built with the harvest location checked
    (:class:`SinkError` when it cannot be written)."""

    def __init__(self, settings: Settings) -> None:
        self.service = sink_service(settings)
        self.sink: ParquetSink = self.service.sink

    def attach(self, app: Any, topics: Topics) -> None:
        app.service(self.service)

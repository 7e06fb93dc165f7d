"""The worker's periodic report: its counts in the log, its health on the signals topic."""

from __future__ import annotations

import json
import logging
import time
from typing import TYPE_CHECKING, Any

from driftnet.streams.ops.counters import Counters
from driftnet.streams.settings import Settings
from driftnet.streams.stage import Topics

if TYPE_CHECKING:
    from driftnet.streams.detection.stage import Detection

log = logging.getLogger("driftnet.worker")


def worker_name(settings: Settings) -> str:
    """This worker's stable identity: ``worker.name``, else the host name (the same after a
    restart, so the alerts about a worker are resolved by the worker that comes back)."""
    import socket

    return settings.worker.name or socket.gethostname()


class HealthReporter:
    """Each report interval, this worker's health on the signals topic: messages and dead
    letters since the last check, how many events wait on its partitions, whether its harvest
    sink can write (the alerting stage raises driftnet's own alerts from them)."""

    def __init__(self, app: Any, settings: Settings, counters: Counters, topic: Any) -> None:
        self.app = app
        self.settings = settings
        self.counters = counters
        self.topic = topic
        self.worker = worker_name(settings)
        self.sink: Any = None
        self._last = counters.total.copy()

    async def lag(self) -> int | None:
        consumer = self.app.consumer
        events = self.settings.topics.events.name
        try:
            total = 0
            for tp in consumer.assignment():
                if tp.topic != events:
                    continue
                position = await consumer.position(tp)
                if position is not None:
                    total += max(consumer.highwater(tp) - position, 0)
        except Exception:  # not assigned yet, or a rebalance under way
            return None
        return total

    async def send(self) -> None:
        now = self.counters.total.copy()
        delta = now - self._last
        self._last = now
        signal = {
            "type": "health",
            "worker": self.worker,
            "at_ms": int(time.time() * 1000),
            "messages": delta.messages,
            "dead_letters": delta.dead_letters,
            "consumer_lag": await self.lag(),
            "sink_error": getattr(self.sink, "failing", None),
        }
        try:
            await self.topic.send(key=self.worker.encode(), value=json.dumps(signal).encode())
        except Exception as exc:  # health is best effort: the next check tries again
            log.debug("health signal not sent: %s", exc)


class Reporting:
    """The timer that, each report interval, logs the counts (the triage's, then detection's)
    and sends the health signal."""

    def __init__(
        self,
        settings: Settings,
        counters: Counters,
        detection: Detection | None,
        health: HealthReporter,
    ) -> None:
        self.settings = settings
        self.counters = counters
        self.detection = detection
        self.health = health

    def attach(self, app: Any, topics: Topics) -> None:
        counters, detection, health = self.counters, self.detection, self.health

        @app.timer(self.settings.worker.report_interval_s)  # type: ignore[untyped-decorator]
        async def report_counts() -> None:
            for line in counters.report():
                log.info("%s", line)
            for line in detection.report() if detection is not None else ():
                log.info("  %s", line)
            await health.send()

"""The alerting stage inside the worker: signals in, notifications out, state on disk.

It runs as an agent on the one-partition signals topic, so exactly one worker of a group owns
it. Each signal updates the :class:`driftnet.alerts.lifecycle.AlertBook`; a one-second tick renews the
watchdog, reads new silences, asks the :class:`driftnet.alerts.pipeline.Pipeline` what is due and puts
the notifications in a per-receiver **outbox**; a delivery task sends each receiver's outbox in
order, retrying what is worth retrying (Slack 429 after Retry-After, 5xx and lost connections
with backoff) and dropping, with a log line, what is not (other 4xx).

Everything -- the book, the groups, the silences, the outbox and each group's Slack message --
is saved in ``<worker.data_dir>/alerts/state.json`` (written atomically) after every change, so
a restarted worker neither pages twice nor forgets to resolve, and alerts that could not be
delivered while Slack was down are delivered once it is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from driftnet.alerts.config import AlertsSettings
from driftnet.alerts.lifecycle import AlertBook
from driftnet.alerts.model import Notification
from driftnet.alerts.notify.base import Notifier, Thread
from driftnet.alerts.outbox import DeadLetter, GiveUp, Outbox, Pending, RetryPolicy, classify
from driftnet.alerts.pipeline import Pipeline
from driftnet.alerts.signals import HealthSignal, WindowsSignal, read_signal
from driftnet.alerts.silences import SilenceCommand, fold
from driftnet.alerts.sources import (
    Condition,
    finding_condition,
    health_conditions,
    scope_of,
    verdict_condition,
    watchdog_condition,
)
from driftnet.streams.alerting.silence_reader import SilenceReader
from driftnet.streams.settings import Settings
from driftnet.streams.stage import Topics

log = logging.getLogger("driftnet.alerts")

STATE_FILE = "alerts/state.json"
WORKER_SCOPE = "worker:"
"""The scope of a worker's health checks is this and its ``worker.name``."""
STOP_GRACE_S = 5.0

DeadLetterSink = Callable[[DeadLetter], Awaitable[None]]
"""Publishes a dead letter; returns once it is acknowledged (raises when it is not)."""


def _bump(counts: dict[str, int], key: str) -> None:
    counts[key] = counts.get(key, 0) + 1


@dataclass(slots=True)
class Tally:
    """What the stage did since start (logged with the worker's report)."""

    signals: int = 0
    unreadable: int = 0
    sent: int = 0
    failed: int = 0
    dead_lettered: int = 0
    by_receiver: dict[str, int] = field(default_factory=dict)
    failed_by_receiver: dict[str, int] = field(default_factory=dict)
    dead_lettered_by_receiver: dict[str, int] = field(default_factory=dict)
    dead_lettered_by_reason: dict[str, int] = field(default_factory=dict)

    def line(self, waiting: int) -> str:
        sent = ", ".join(f"{r} {n}" for r, n in sorted(self.by_receiver.items())) or "none"
        reasons = ", ".join(f"{r} {n}" for r, n in sorted(self.dead_lettered_by_reason.items()))
        return (
            f"alerts: {self.signals} signals ({self.unreadable} unreadable), notifications "
            f"sent {self.sent} ({sent}), failed attempts {self.failed}, dead-lettered "
            f"{self.dead_lettered}{f' ({reasons})' if reasons else ''}, waiting {waiting}"
        )


class AlertStage:
    """Book, pipeline, outbox and notifiers of the worker that owns the signals partition."""

    def __init__(
        self,
        settings: Settings,
        notifiers: dict[str, Notifier],
        *,
        clock: Any = time.time,
        dead_letters: DeadLetterSink | None = None,
    ) -> None:
        self.settings = settings
        self.alerts: AlertsSettings = settings.alerts
        self.notifiers = notifiers
        self.clock = clock
        self.dead_letters = dead_letters
        """Where given-up notifications go (the alerts dead-letter topic in the worker)."""
        self.retry = RetryPolicy(self.alerts.retry_max_attempts, self.alerts.retry_max_age_s)
        self.path = Path(settings.worker.data_dir) / STATE_FILE
        self.book = AlertBook(self.alerts)
        self.pipeline = Pipeline(self.alerts)
        self.outbox = Outbox()
        self.threads: dict[str, Thread] = {}
        """Per ``receiver|group key``: where the group's message is (a Slack channel and ts)."""
        self.silence_commands: list[SilenceCommand] = []
        self.health_clock_ms = 0
        """The newest health check's time (its worker's clock): when the others are silent."""
        self.tally = Tally()
        self._dirty = False
        self._load()

    # -- state -------------------------------------------------------------------------------

    def _load(self) -> None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            log.warning("cannot read the alert state %s (%s): starting empty", self.path, exc)
            return
        self.book = AlertBook.from_dict(self.alerts, data.get("book", {}))
        self.pipeline = Pipeline.from_dict(self.alerts, data.get("pipeline", {}))
        self.outbox.load(Pending.model_validate(p) for p in data.get("outbox", []))
        self.threads = dict(data.get("threads", {}))
        waiting = len(self.outbox)
        log.info(
            "alert state restored: %d alerts, %d groups, %d notifications to deliver",
            len(self.book.alerts),
            len(self.pipeline.groups),
            waiting,
        )

    def save(self) -> None:
        """Write the state atomically (a temp file renamed over the old one)."""
        if not self._dirty:
            return
        data = {
            "book": self.book.to_dict(),
            "pipeline": self.pipeline.to_dict(),
            "outbox": [p.model_dump(mode="json") for p in self.outbox],
            "threads": self.threads,
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temp = self.path.with_suffix(".json.tmp")
        with temp.open("w", encoding="utf-8") as file:
            json.dump(data, file)
            file.flush()
            os.fsync(file.fileno())
        temp.replace(self.path)
        self._dirty = False

    # -- signals ---------------------------------------------------------------------------

    def on_signal(self, value: bytes, now: datetime | None = None) -> None:
        """Take one message of the signals topic."""
        now = now or datetime.fromtimestamp(self.clock(), UTC)
        self.tally.signals += 1
        try:
            signal = read_signal(value)
        except ValueError as exc:
            self.tally.unreadable += 1
            log.warning("skipping an unreadable signal: %s", str(exc).splitlines()[0])
            return
        if isinstance(signal, WindowsSignal):
            for entry in signal.entries:
                conditions: list[Condition] = [
                    finding_condition(f, self.alerts) for f in entry.findings
                ]
                if entry.verdict is not None:
                    made = verdict_condition(entry.verdict, self.alerts)
                    conditions += [made] if made is not None else []
                self._observe(scope_of(entry.cohort), entry.window_end, conditions, now)
        elif isinstance(signal, HealthSignal):
            conditions = health_conditions(
                signal.worker,
                signal.messages,
                signal.dead_letters,
                signal.consumer_lag,
                signal.sink_error,
                self.alerts,
            )
            self._observe(f"{WORKER_SCOPE}{signal.worker}", signal.at_ms, conditions, now)
            self._expire_workers(signal.at_ms, now)

    def _expire_workers(self, at_ms: int, now: datetime) -> None:
        """Resolve the alerts of the workers gone silent: those whose last health check is
        more than ``alerts.worker_gone_after_reports`` report intervals older than the newest
        one (the health checks' own clock, so a backlog read fast expires nobody; never ahead
        of this worker's clock, so a worker whose clock runs ahead expires nobody either)."""
        self.health_clock_ms = max(self.health_clock_ms, min(at_ms, int(now.timestamp() * 1000)))
        silence_ms = (
            self.alerts.worker_gone_after_reports * self.settings.worker.report_interval_s * 1000
        )
        gone = self.book.expire(WORKER_SCOPE, int(self.health_clock_ms - silence_ms), now)
        if gone:
            log.info("alerts of %d gone workers resolved", len(gone))
            self.pipeline.add(gone, now)
            self.book.forget_resolved()
            self._dirty = True

    def _observe(self, scope: str, mark: int, conditions: list[Condition], now: datetime) -> None:
        changed = self.book.observe(scope, mark, conditions, now)
        if changed:
            self.pipeline.add(changed, now)
            self.book.forget_resolved()
            self._dirty = True

    # -- the tick --------------------------------------------------------------------------

    def tick(self, now: datetime | None = None) -> list[Notification]:
        """Renew the watchdog, apply the silences, queue what is due; returns it."""
        now = now or datetime.fromtimestamp(self.clock(), UTC)
        period = int(now.timestamp() // self.alerts.watchdog_interval_s)
        self._observe("watchdog", period, [watchdog_condition(self.alerts)], now)
        self.pipeline.silences = fold(self.silence_commands)
        due = self.pipeline.tick(now)
        for notification in due:  # one without a notifier is dead-lettered by the delivery
            self.outbox.put(notification, now.timestamp())
            self._dirty = True
        return due

    def add_silence_commands(self, commands: list[SilenceCommand]) -> None:
        if commands:
            self.silence_commands.extend(commands)
            self._dirty = True

    # -- delivery --------------------------------------------------------------------------

    async def deliver_due(self) -> None:
        """Send the head of every receiver's outbox whose time has come, in order; the next
        one of a receiver waits until the head is delivered or given up (dead-lettered)."""
        while True:
            heads = self.outbox.due(self.clock())
            if not heads:
                return
            moved = [await self._send(head) for head in heads]
            self.save()
            if not any(moved):
                return

    async def _send(self, pending: Pending) -> bool:
        """Deliver the head of a receiver's outbox; True when it is done with (delivered, or
        given up and dead-lettered), False when it waits for a retry."""
        notification, receiver = pending.notification, pending.receiver
        key = f"{receiver}|{notification.group_key}"
        notifier = self.notifiers.get(receiver)
        if notifier is None:
            error = f"no notifier {receiver!r} in this worker"
            return await self._give_up(receiver, GiveUp("no_notifier"), error)
        try:
            thread = await notifier.deliver(notification, self.threads.get(key))
        except Exception as exc:
            failure = classify(exc)
            self._dirty = True
            decision = self.outbox.failed(receiver, failure, self.clock(), self.retry)
            if isinstance(decision, GiveUp):
                return await self._give_up(receiver, decision)
            self.tally.failed += 1
            _bump(self.tally.failed_by_receiver, receiver)
            log.warning("%s: delivery failed (%s), retry %d in %.0f s", receiver,
                        failure.error, pending.attempts + 1, decision.at - self.clock())  # fmt: skip
            return False
        self.outbox.pop(receiver)
        self._dirty = True
        self.tally.sent += 1
        _bump(self.tally.by_receiver, receiver)
        if notification.kind == "resolved":
            self.threads.pop(key, None)
        elif thread is not None:
            self.threads[key] = thread
        return True

    async def _give_up(self, receiver: str, decision: GiveUp, error: str | None = None) -> bool:
        """Publish the head's dead letter, then take it off the outbox (a dead letter that
        cannot be published leaves it there, to be tried again)."""
        letter = self.outbox.dead_letter(receiver, decision.reason, self.clock(), error)
        title = letter.notification.title
        if self.dead_letters is not None:
            try:
                await self.dead_letters(letter)
            except Exception as exc:
                log.error("%s: cannot publish the dead letter of %r (%s: %s); it stays in the "
                          "outbox", receiver, title, type(exc).__name__, exc)  # fmt: skip
                return False
        self.outbox.pop(receiver)
        self._dirty = True
        self.tally.dead_lettered += 1
        _bump(self.tally.dead_lettered_by_receiver, receiver)
        _bump(self.tally.dead_lettered_by_reason, decision.reason)
        log.error("%s: gave up a notification (%s) after %d attempts: %s, %s; dead-lettered, "
                  "going on with the next", receiver, title, letter.attempts, decision.reason,
                  letter.error)  # fmt: skip
        return True

    # -- in the worker ---------------------------------------------------------------------

    def attach(self, app: Any, topics: Topics) -> None:
        """The alerting stage in a faust app: its agent, its tick and its delivery service."""
        import mode

        from driftnet.streams.alerting.notifiers import dead_letter_sink

        stage, settings = self, self.settings
        silences = SilenceReader(settings)
        if stage.dead_letters is None:
            stage.dead_letters = dead_letter_sink(topics["alerts_dlq"])
        reported: list[int] = [0]

        @app.timer(settings.worker.report_interval_s)  # type: ignore[untyped-decorator]
        async def alerting_report() -> None:
            if stage.tally.signals != reported[0]:  # only the owner of the signals partition
                reported[0] = stage.tally.signals
                log.info("  %s", stage.tally.line(len(stage.outbox)))

        @app.agent(topics["signals"], name="alerting")  # type: ignore[untyped-decorator]
        async def alerting(stream: Any) -> None:
            async for value in stream:
                stage.on_signal(value if isinstance(value, bytes) else bytes(value))
                stage.save()

        @app.timer(1.0)  # type: ignore[untyped-decorator]
        async def alerting_tick() -> None:
            if not any(
                tp.topic == settings.topics.signals.name for tp in app.consumer.assignment()
            ):
                return  # another worker owns the signals partition: it alerts
            try:
                stage.add_silence_commands(await silences.poll())
            except Exception as exc:  # the broker hiccuped: the silences come at the next tick
                log.warning("cannot read silences: %s: %s", type(exc).__name__, exc)
            stage.tick()
            stage.save()

        @app.service
        class AlertDelivery(mode.Service):
            """Delivers the outbox while the worker runs; what is not delivered stays on disk."""

            _stop: asyncio.Event
            _task: asyncio.Future[None]

            async def on_start(self) -> None:
                self._stop = asyncio.Event()
                self._task = asyncio.ensure_future(run_delivery(stage, self._stop))

            async def on_stop(self) -> None:
                self._stop.set()
                try:  # a delivery in flight gets a few seconds; what is left stays in the outbox
                    await asyncio.wait_for(asyncio.shield(self._task), STOP_GRACE_S)
                except TimeoutError:
                    self._task.cancel()
                    log.warning("alert delivery stopped mid-send; the outbox keeps the rest")
                await silences.close()
                for notifier in stage.notifiers.values():
                    await notifier.close()
                stage.save()


async def run_delivery(stage: AlertStage, stop: asyncio.Event) -> None:
    """Deliver the outbox every half second until ``stop``."""
    while not stop.is_set():
        try:
            await stage.deliver_due()
        except Exception as exc:  # a notifier bug costs a log line, never the worker
            log.error("alert delivery failed: %s: %s", type(exc).__name__, exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.5)

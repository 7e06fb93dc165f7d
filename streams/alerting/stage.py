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
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from driftnet.alerts.config import AlertsSettings
from driftnet.alerts.lifecycle import AlertBook
from driftnet.alerts.model import Notification
from driftnet.alerts.notify.base import Notifier
from driftnet.alerts.notify.slack import SlackThread
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
RETRY_MIN_S = 1.0
RETRY_MAX_S = 300.0
STOP_GRACE_S = 5.0


@dataclass(slots=True)
class Pending:
    """A notification waiting in a receiver's outbox."""

    notification: Notification
    attempts: int = 0
    next_at: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "notification": self.notification.model_dump(mode="json"),
            "attempts": self.attempts,
            "next_at": self.next_at,
        }


@dataclass(slots=True)
class Tally:
    """What the stage did since start (logged with the worker's report)."""

    signals: int = 0
    unreadable: int = 0
    sent: int = 0
    failed: int = 0
    dropped: int = 0
    by_receiver: dict[str, int] = field(default_factory=dict)
    failed_by_receiver: dict[str, int] = field(default_factory=dict)
    dropped_by_receiver: dict[str, int] = field(default_factory=dict)

    def line(self, waiting: int) -> str:
        sent = ", ".join(f"{r} {n}" for r, n in sorted(self.by_receiver.items())) or "none"
        return (
            f"alerts: {self.signals} signals ({self.unreadable} unreadable), notifications "
            f"sent {self.sent} ({sent}), failed attempts {self.failed}, dropped {self.dropped}, "
            f"waiting {waiting}"
        )


class AlertStage:
    """Book, pipeline, outbox and notifiers of the worker that owns the signals partition."""

    def __init__(
        self,
        settings: Settings,
        notifiers: dict[str, Notifier],
        *,
        clock: Any = time.time,
    ) -> None:
        self.settings = settings
        self.alerts: AlertsSettings = settings.alerts
        self.notifiers = notifiers
        self.clock = clock
        self.path = Path(settings.worker.data_dir) / STATE_FILE
        self.book = AlertBook(self.alerts)
        self.pipeline = Pipeline(self.alerts)
        self.outbox: dict[str, list[Pending]] = {}
        self.threads: dict[str, Any] = {}
        """Per ``receiver|group key``: where the group's message is (a Slack channel and ts)."""
        self.silence_commands: list[SilenceCommand] = []
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
        self.outbox = {
            receiver: [
                Pending(Notification.model_validate(p["notification"]), int(p["attempts"]), 0.0)
                for p in items
            ]
            for receiver, items in data.get("outbox", {}).items()
        }
        self.threads = dict(data.get("threads", {}))
        waiting = sum(len(items) for items in self.outbox.values())
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
            "outbox": {r: [p.to_dict() for p in items] for r, items in self.outbox.items()},
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
            self._observe(f"worker:{signal.worker}", signal.at_ms, conditions, now)

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
        for notification in due:
            if notification.receiver not in self.notifiers:
                log.warning("no notifier %r: dropping a notification", notification.receiver)
                continue
            self.outbox.setdefault(notification.receiver, []).append(Pending(notification))
            self._dirty = True
        return due

    def add_silence_commands(self, commands: list[SilenceCommand]) -> None:
        if commands:
            self.silence_commands.extend(commands)
            self._dirty = True

    # -- delivery --------------------------------------------------------------------------

    async def deliver_due(self) -> None:
        """Send the head of every receiver's outbox whose time has come, in order; the next
        one of a receiver waits until the head is delivered or given up."""
        for receiver, items in self.outbox.items():
            while items:
                head = items[0]
                if head.next_at > self.clock():
                    break
                if not await self._send(receiver, head):
                    break
                items.pop(0)
                self._dirty = True
                self.save()

    async def _send(self, receiver: str, pending: Pending) -> bool:
        """True when the notification is done with (delivered, or not worth retrying)."""
        notification = pending.notification
        key = f"{receiver}|{notification.group_key}"
        notifier = self.notifiers[receiver]
        stored = self.threads.get(key)
        if stored is not None and hasattr(notifier, "channel"):  # a Slack message to edit
            stored = SlackThread.model_validate(stored)
        try:
            thread = await notifier.deliver(notification, stored)
        except Exception as exc:
            retryable = bool(getattr(exc, "retryable", True))
            pending.attempts += 1
            if not retryable:
                self.tally.dropped += 1
                self.tally.dropped_by_receiver[receiver] = (
                    self.tally.dropped_by_receiver.get(receiver, 0) + 1
                )
                log.error("%s refused a notification (%s): %s; not retried",
                          receiver, notification.title, exc)  # fmt: skip
                return True
            self.tally.failed += 1
            self.tally.failed_by_receiver[receiver] = (
                self.tally.failed_by_receiver.get(receiver, 0) + 1
            )
            wait = getattr(exc, "retry_after_s", None) or min(
                RETRY_MAX_S, RETRY_MIN_S * 2 ** (pending.attempts - 1)
            )
            pending.next_at = self.clock() + wait
            log.warning("%s: delivery failed (%s), retry %d in %.0f s",
                        receiver, exc, pending.attempts, wait)  # fmt: skip
            self._dirty = True
            self.save()
            return False
        self.tally.sent += 1
        self.tally.by_receiver[receiver] = self.tally.by_receiver.get(receiver, 0) + 1
        if notification.kind == "resolved":
            self.threads.pop(key, None)
        elif thread is not None:
            dump = getattr(thread, "model_dump", None)
            self.threads[key] = dump(mode="json") if dump is not None else thread
        return True

    # -- in the worker ---------------------------------------------------------------------

    def attach(self, app: Any, topics: Topics) -> None:
        """The alerting stage in a faust app: its agent, its tick and its delivery service."""
        import mode

        stage, settings = self, self.settings
        silences = SilenceReader(settings)
        reported: list[int] = [0]

        @app.timer(settings.worker.report_interval_s)  # type: ignore[untyped-decorator]
        async def alerting_report() -> None:
            if stage.tally.signals != reported[0]:  # only the owner of the signals partition
                reported[0] = stage.tally.signals
                waiting = sum(len(items) for items in stage.outbox.values())
                log.info("  %s", stage.tally.line(waiting))

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

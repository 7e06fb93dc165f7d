"""The alerting stage inside the worker: signals in, notifications out, state in Kafka.

It runs as an agent on the one-partition signals topic, so exactly one worker of a group owns
it. Each signal updates the :class:`driftnet.alerts.lifecycle.AlertBook`; a one-second tick
renews the watchdog, applies the silences, asks the :class:`driftnet.alerts.pipeline.Pipeline`
what is due and queues the notifications in a per-receiver **outbox**; a delivery task sends
each receiver's outbox in order (:mod:`driftnet.streams.alerting.delivery`), retrying what is
worth retrying within a budget and dead-lettering the rest (:mod:`driftnet.alerts.outbox`).

The state -- the book, the groups, the outbox and each group's Slack message (the
notification log) -- lives in a compacted topic, ``driftnet.alerts.state``, one record per
scope, group, thread and waiting notification (:mod:`driftnet.alerts.state`), so whichever
worker on whichever host owns the signals partition next continues where the last owner
stopped:

- a worker given the signals partition reads the state back before it handles any signal,
  ticks or delivers (:meth:`AlertStage.restore`);
- a signal is acked (its offset may be committed) only once the state it changed is
  acknowledged by the broker; the state records the offset of the last signal it holds, so a
  signal read again after a takeover changes nothing;
- a notification is recorded (its outbox entry deleted, its Slack message kept) as soon as
  it is delivered; a new owner does not deliver again what was delivered and recorded. A
  worker killed between Slack accepting a notification and the broker acknowledging that
  record is the one window in which a notification can be sent twice.

Writes go through the app's producer, awaited, never blocking the event loop; nothing is kept
on the local disk (``worker.data_dir``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from driftnet.alerts.config import AlertsSettings
from driftnet.alerts.lifecycle import AlertBook
from driftnet.alerts.model import Notification
from driftnet.alerts.notify.base import Notifier
from driftnet.alerts.outbox import Outbox, RetryPolicy
from driftnet.alerts.pipeline import Pipeline
from driftnet.alerts.signals import HealthSignal, ThemesSignal, WindowsSignal, read_signal
from driftnet.alerts.silences import Silence, SilenceCommand, fold, prune
from driftnet.alerts.sources import (
    THEMES_SCOPE,
    Condition,
    finding_condition,
    health_conditions,
    scope_of,
    theme_conditions,
    verdict_condition,
    watchdog_condition,
)
from driftnet.alerts.state import AlertState, Journal, StateStore
from driftnet.streams.alerting.delivery import DeadLetterSink, Delivery, Tally
from driftnet.streams.alerting.silence_reader import SilenceReader
from driftnet.streams.settings import Settings
from driftnet.streams.stage import Topics

log = logging.getLogger("driftnet.alerts")

WORKER_SCOPE = "worker:"
"""The scope of a worker's health checks is this and its ``worker.name``."""
STOP_GRACE_S = 5.0
RETRY_MAX_S = 30.0
"""A state write or read that fails is tried again after 1 s, doubling up to this."""


class AlertStage:
    """Book, pipeline, outbox and notifiers of the worker that owns the signals partition."""

    def __init__(
        self,
        settings: Settings,
        notifiers: dict[str, Notifier],
        *,
        clock: Callable[[], float] = time.time,
        store: StateStore | None = None,
        dead_letters: DeadLetterSink | None = None,
    ) -> None:
        self.settings = settings
        self.alerts: AlertsSettings = settings.alerts
        self.notifiers = notifiers
        self.clock = clock
        self.store = store
        """Where the state is kept: the state topic in the worker (set by :meth:`attach`)."""
        self.state = AlertState(self.alerts)
        self.journal = Journal()
        self.tally = Tally()
        retry = RetryPolicy(self.alerts.retry_max_attempts, self.alerts.retry_max_age_s)
        self.delivery = Delivery(notifiers, retry, clock, self.tally, dead_letters)
        self.silences: dict[str, Silence] = {}
        self.health_clock_ms = 0
        """The newest health check's time (its worker's clock): when the others are silent."""
        self.restore_due = True
        """The state must be read back before the next signal, tick or delivery: at start, and
        after the signals partition was revoked (another worker may have owned it since)."""
        self._generation = 0
        self._restoring: asyncio.Future[None] | None = None
        self._lock = asyncio.Lock()
        """Held while the state is written or read back: a read waits for the writes."""

    @property
    def book(self) -> AlertBook:
        return self.state.book

    @property
    def pipeline(self) -> Pipeline:
        return self.state.pipeline

    @property
    def outbox(self) -> Outbox:
        return self.state.outbox

    # -- the state in Kafka ------------------------------------------------------------------

    def revoked(self) -> None:
        """The signals partition was taken away: read the state back before going on."""
        self.restore_due = True
        self._generation += 1

    async def restore(self) -> None:
        """Read the state back from the store (once every write of this worker is
        acknowledged) and go on from it; raises when it cannot be read (try again)."""
        async with self._lock:
            if not self.restore_due:
                return
            generation = self._generation
            if self.store is None:
                records: dict[bytes, bytes] = {}
                signals_end = None
            else:
                records, signals_end = await self.store.read()
            state = AlertState.restore(self.alerts, records)
            if signals_end is not None and state.signals_offset >= signals_end:
                log.warning("the signals topic ends at %d, before the alert state's offset "
                            "%d (recreated?): its signals are all taken as new", signals_end,
                            state.signals_offset)  # fmt: skip
                state.signals_offset = -1
            state.pipeline.silences = self.silences
            self.state, self.journal = state, Journal(records)
            if generation == self._generation:
                self.restore_due = False
        log.info("alert state read back (%d records): %s; this worker owns the signals "
                 "partition", len(records), state.summary())  # fmt: skip

    async def ensure_restored(self) -> None:
        """Restore when due, trying again until it works: alerting on a state not read back
        would page again what the last owner told."""
        failures = 0
        while self.restore_due:
            try:
                await self.restore()
            except Exception as exc:
                failures += 1
                wait = min(RETRY_MAX_S, 2.0 ** (failures - 1))
                log.warning("cannot read the alert state back (%s: %s); trying again in %g s",
                            type(exc).__name__, exc, wait)  # fmt: skip
                await asyncio.sleep(wait)

    def restore_soon(self) -> None:
        """Start reading the state back, unless a reading is under way."""
        if self._restoring is None or self._restoring.done():
            self._restoring = asyncio.ensure_future(self.ensure_restored())

    async def persist(self) -> None:
        """Write what changed since the last write and return once the broker has it (a
        failed write is tried again, with backoff, until it works)."""
        if self.store is None:
            return
        failures = 0
        async with self._lock:
            while True:
                changes = self.journal.changes(self.state.records())
                if not changes:
                    return
                try:
                    await self.store.write(changes)
                except Exception as exc:
                    failures += 1
                    wait = min(RETRY_MAX_S, 2.0 ** (failures - 1))
                    log.warning("cannot write the alert state (%s: %s); trying again in %g s",
                                type(exc).__name__, exc, wait)  # fmt: skip
                    await asyncio.sleep(wait)
                    continue
                self.journal.commit(changes)
                return

    # -- signals ---------------------------------------------------------------------------

    def on_signal(
        self, value: bytes, now: datetime | None = None, offset: int | None = None
    ) -> None:
        """Take one message of the signals topic (at ``offset``: one the state already holds
        changes nothing)."""
        now = now or datetime.fromtimestamp(self.clock(), UTC)
        self.tally.signals += 1
        if offset is not None:
            if offset <= self.state.signals_offset:
                self.tally.replayed += 1
                return
            self.state.signals_offset = offset
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
        elif isinstance(signal, ThemesSignal):
            conditions = theme_conditions(signal, self.alerts)
            self._observe(f"{THEMES_SCOPE}{signal.scope}", signal.until_ms, conditions, now)

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

    def _observe(self, scope: str, mark: int, conditions: list[Condition], now: datetime) -> None:
        changed = self.book.observe(scope, mark, conditions, now)
        if changed:
            self.pipeline.add(changed, now)
            self.book.forget_resolved()

    # -- the tick --------------------------------------------------------------------------

    def tick(self, now: datetime | None = None) -> list[Notification]:
        """Renew the watchdog, apply the silences, queue what is due; returns it."""
        now = now or datetime.fromtimestamp(self.clock(), UTC)
        period = int(now.timestamp() // self.alerts.watchdog_interval_s)
        self._observe("watchdog", period, [watchdog_condition(self.alerts)], now)
        self.silences = prune(self.silences, now)
        self.pipeline.silences = self.silences
        due = self.pipeline.tick(now)
        for notification in due:  # one without a notifier is dead-lettered by the delivery
            self.outbox.put(notification, now.timestamp())
        return due

    def add_silence_commands(self, commands: list[SilenceCommand]) -> None:
        if commands:
            self.silences = fold(commands, self.silences)

    # -- delivery --------------------------------------------------------------------------

    async def deliver_due(self) -> None:
        """Send the head of every receiver's outbox whose time has come, in order, and record
        what was delivered (or dead-lettered) before the next ones: the next notification of
        a receiver waits until the head is delivered or given up."""
        while not self.restore_due:
            state = self.state
            heads = state.outbox.due(self.clock())
            if not heads:
                return
            moved = [await self.delivery.send(state, head) for head in heads]
            await self.persist()
            if not any(moved):
                return

    # -- in the worker ---------------------------------------------------------------------

    def attach(self, app: Any, topics: Topics) -> None:
        """The alerting stage in a faust app: its agent, its tick, its delivery service and
        the state topic."""
        import mode

        from driftnet.streams.alerting.notifiers import dead_letter_sink
        from driftnet.streams.alerting.state_topic import KafkaStateStore

        stage, settings = self, self.settings
        silences = SilenceReader(settings)
        signals = settings.topics.signals.name
        if stage.delivery.dead_letters is None:
            stage.delivery.dead_letters = dead_letter_sink(topics["alerts_dlq"])
        if stage.store is None:
            stage.store = KafkaStateStore(settings, topics["alerts_state"])
        reported: list[int] = [0]

        def owner() -> bool:
            return any(tp.topic == signals for tp in app.consumer.assignment())

        @app.on_partitions_revoked.connect  # type: ignore[untyped-decorator]
        async def on_revoked(sender: Any, *args: Any, **kwargs: Any) -> None:
            revoked = args[0] if args else kwargs.get("revoked", ())
            if any(tp.topic == signals for tp in revoked):
                stage.revoked()
                log.info("alerting: the signals partition was revoked")

        @app.timer(settings.worker.report_interval_s)  # type: ignore[untyped-decorator]
        async def alerting_report() -> None:
            if stage.tally.signals != reported[0]:  # only the owner of the signals partition
                reported[0] = stage.tally.signals
                log.info("  %s", stage.tally.line(len(stage.outbox)))

        @app.agent(topics["signals"], name="alerting")  # type: ignore[untyped-decorator]
        async def alerting(stream: Any) -> None:
            async for event in stream.noack().events():
                await stage.ensure_restored()
                value = event.value
                stage.on_signal(
                    value if isinstance(value, bytes) else bytes(value),
                    offset=event.message.offset,
                )
                await stage.persist()  # the state it changed is acknowledged: then the ack
                event.ack()

        @app.timer(1.0)  # type: ignore[untyped-decorator]
        async def alerting_tick() -> None:
            if not owner():
                return  # another worker owns the signals partition: it alerts
            if stage.restore_due:  # read back aside, not in the timer: the next tick goes on
                stage.restore_soon()
                return
            try:
                stage.add_silence_commands(await silences.poll())
            except Exception as exc:  # the broker hiccuped: the silences come at the next tick
                log.warning("cannot read silences: %s: %s", type(exc).__name__, exc)
            stage.tick()
            await stage.persist()

        @app.service
        class AlertDelivery(mode.Service):
            """Delivers the outbox while this worker owns the signals partition; what is not
            delivered stays in the state topic for the next owner."""

            _stop: asyncio.Event
            _task: asyncio.Future[None]

            async def on_start(self) -> None:
                self._stop = asyncio.Event()
                self._task = asyncio.ensure_future(run_delivery(stage, self._stop, owner))

            async def on_stop(self) -> None:
                self._stop.set()
                try:  # a delivery in flight gets a few seconds; what is left stays in the outbox
                    await asyncio.wait_for(asyncio.shield(self._task), STOP_GRACE_S)
                except TimeoutError:
                    self._task.cancel()
                    log.warning("alert delivery stopped mid-send; the outbox keeps the rest")
                if stage._restoring is not None:
                    stage._restoring.cancel()
                await silences.close()
                await stage.delivery.close()


async def run_delivery(stage: AlertStage, stop: asyncio.Event, owner: Callable[[], bool]) -> None:
    """Deliver the outbox every half second until ``stop``, while this worker owns the
    signals partition and has its state read back."""
    while not stop.is_set():
        try:
            if owner() and not stage.restore_due:
                await stage.deliver_due()
        except Exception as exc:  # a notifier bug costs a log line, never the worker
            log.error("alert delivery failed: %s: %s", type(exc).__name__, exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.5)

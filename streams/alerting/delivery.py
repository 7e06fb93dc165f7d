"""The alert stage's deliveries: the head of each receiver's outbox to its notifier, in order;
a failure retried or given up (:mod:`driftnet.alerts.outbox`), a given-up notification
published as a dead letter before it leaves the outbox; and the counts of it all."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from driftnet.alerts.notify.base import Notifier
from driftnet.alerts.outbox import DeadLetter, GiveUp, Pending, RetryPolicy, classify
from driftnet.alerts.state import AlertState

log = logging.getLogger("driftnet.alerts")

DeadLetterSink = Callable[[DeadLetter], Awaitable[None]]
"""Publishes a dead letter; returns once it is acknowledged (raises when it is not)."""


def _bump(counts: dict[str, int], key: str) -> None:
    counts[key] = counts.get(key, 0) + 1


@dataclass(slots=True)
class Tally:
    """What the stage did since start (logged with the worker's report)."""

    signals: int = 0
    unreadable: int = 0
    replayed: int = 0
    """Signals read again after a takeover whose changes the state already had."""
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
            f"alerts: {self.signals} signals ({self.unreadable} unreadable, {self.replayed} "
            f"already applied), notifications sent {self.sent} ({sent}), failed attempts "
            f"{self.failed}, dead-lettered {self.dead_lettered}"
            f"{f' ({reasons})' if reasons else ''}, waiting {waiting}"
        )


class Delivery:
    """Delivers an :class:`AlertState`'s outbox with the stage's notifiers."""

    def __init__(
        self,
        notifiers: dict[str, Notifier],
        retry: RetryPolicy,
        clock: Callable[[], float],
        tally: Tally,
        dead_letters: DeadLetterSink | None = None,
    ) -> None:
        self.notifiers = notifiers
        self.retry = retry
        self.clock = clock
        self.tally = tally
        self.dead_letters = dead_letters
        """Where given-up notifications go (the alerts dead-letter topic in the worker)."""

    async def send(self, state: AlertState, pending: Pending) -> bool:
        """Deliver the head of a receiver's outbox; True when it is done with (delivered and
        its thread kept, or given up and dead-lettered), False when it waits for a retry."""
        notification, receiver = pending.notification, pending.receiver
        where = (receiver, notification.group_key)
        notifier = self.notifiers.get(receiver)
        if notifier is None:
            error = f"no notifier {receiver!r} in this worker"
            return await self._give_up(state, receiver, GiveUp("no_notifier"), error)
        try:
            thread = await notifier.deliver(
                notification, state.threads.get(where), unsure=pending.unsure
            )
        except Exception as exc:
            failure = classify(exc)
            decision = state.outbox.failed(receiver, failure, self.clock(), self.retry)
            if isinstance(decision, GiveUp):
                return await self._give_up(state, receiver, decision)
            self.tally.failed += 1
            _bump(self.tally.failed_by_receiver, receiver)
            log.warning("%s: delivery failed (%s), retry %d in %.0f s", receiver,
                        failure.error, pending.attempts + 1, decision.at - self.clock())  # fmt: skip
            return False
        state.outbox.pop(receiver)
        self.tally.sent += 1
        _bump(self.tally.by_receiver, receiver)
        if notification.kind == "resolved":
            state.threads.pop(where, None)
        elif thread is not None:
            state.threads[where] = thread
        return True

    async def _give_up(
        self, state: AlertState, receiver: str, decision: GiveUp, error: str | None = None
    ) -> bool:
        """Publish the head's dead letter, then take it off the outbox (a dead letter that
        cannot be published leaves it there, to be tried again)."""
        letter = state.outbox.dead_letter(receiver, decision.reason, self.clock(), error)
        title = letter.notification.title
        if self.dead_letters is not None:
            try:
                await self.dead_letters(letter)
            except Exception as exc:
                log.error("%s: cannot publish the dead letter of %r (%s: %s); it stays in the "
                          "outbox", receiver, title, type(exc).__name__, exc)  # fmt: skip
                return False
        state.outbox.pop(receiver)
        self.tally.dead_lettered += 1
        _bump(self.tally.dead_lettered_by_receiver, receiver)
        _bump(self.tally.dead_lettered_by_reason, decision.reason)
        log.error("%s: gave up a notification (%s) after %d attempts: %s, %s; dead-lettered, "
                  "going on with the next", receiver, title, letter.attempts, decision.reason,
                  letter.error)  # fmt: skip
        return True

    async def close(self) -> None:
        for notifier in self.notifiers.values():
            await notifier.close()

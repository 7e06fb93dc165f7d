"""The per-receiver outbox: notifications waiting to be delivered, in order, and what happens
when a delivery fails. Pure: time is passed in, the alert stage sends.

Each receiver delivers the head of its queue; the next one waits until the head is delivered
or given up, so a group's notifications reach the receiver in order. A failure is
:func:`classify`-ed: **retryable** (connection errors, timeouts, HTTP 5xx and 429, Slack's
transient API errors) or **permanent** (other 4xx, a bad token, a payload Slack refuses,
encoding errors, a bug in a notifier). A retryable failure is tried again after Retry-After,
else with backoff (1 s doubling to 5 min), within the :class:`RetryPolicy`'s budget (by
default 1,000 attempts and 24 hours: a Slack outage of hours delays, never loses). A permanent
failure, or one past the budget, becomes a :class:`DeadLetter` (the stage publishes it to the
alerts dead-letter topic) and the receiver moves on to its next notification.

>>> from driftnet.alerts.notify.base import DeliveryError
>>> policy = RetryPolicy(max_attempts=3, max_age_s=3600)
>>> after_failure(1, 0.0, classify(TimeoutError("read timed out")), 10.0, policy)
Retry(at=11.0)
>>> after_failure(1, 0.0, classify(DeliveryError("HTTP 404", retryable=False)), 10.0, policy)
GiveUp(reason='permanent')
>>> after_failure(3, 0.0, classify(ConnectionResetError()), 10.0, policy)
GiveUp(reason='attempts')
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from driftnet.alerts.model import Notification

RETRY_MIN_S = 1.0
"""The first retry of a failed delivery waits this long (doubling with each attempt)."""
RETRY_MAX_S = 300.0
"""No retry waits longer than this (unless the receiver's Retry-After says so)."""
ERROR_MAX_CHARS = 300

GiveUpReason = Literal["permanent", "attempts", "age", "no_notifier"]
"""Why a notification was given up: a permanent failure, the retry budget's attempts or age
spent, or a receiver that has no notifier in this worker (a ``slack`` receiver without a
token)."""

_FROZEN = ConfigDict(frozen=True, extra="forbid")


# ----------------------------------------------------------------------------- failures


@dataclass(frozen=True, slots=True)
class Failure:
    """One failed delivery, classified."""

    retryable: bool
    error: str
    """One line: the exception's type and message."""
    retry_after_s: float | None = None
    """How long the receiver asked to wait (HTTP Retry-After), when it did."""
    ambiguous: bool = True
    """The receiver may have taken the notification in although the attempt failed: no
    answer came back (a timeout, a dropped connection) or a 5xx did. False when it answered
    that it refused it (a 4xx, 429, an ``ok: false`` error)."""


def error_line(exc: BaseException) -> str:
    """``Type: message`` on one line, at most 300 characters."""
    text = str(exc).strip()
    line = f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__
    return line if len(line) <= ERROR_MAX_CHARS else line[: ERROR_MAX_CHARS - 1] + "…"


def classify(exc: BaseException) -> Failure:
    """Retryable or permanent, in this order: a ``retryable`` flag on the exception (what
    :class:`~driftnet.alerts.notify.base.DeliveryError` carries) says; else an HTTP ``status``
    on it (429 and 5xx retryable, other statuses permanent); else connection errors and
    timeouts (``OSError``, ``TimeoutError``) are retryable and everything else -- a
    ``TypeError`` in a notifier, a ``UnicodeEncodeError``, a ``ValueError`` -- is permanent:
    retrying a bug only blocks the receiver."""
    wait = getattr(exc, "retry_after_s", None)
    wait = float(wait) if isinstance(wait, int | float) and wait >= 0 else None
    status = getattr(exc, "status", None)
    code = status if isinstance(status, int) and not isinstance(status, bool) and status else None
    ambiguous = code is None or code >= 500  # no answer, or a 5xx: it may have got through
    flag = getattr(exc, "retryable", None)
    if isinstance(flag, bool):
        return Failure(flag, error_line(exc), wait if flag else None, ambiguous)
    if code is not None and code >= 400:
        retryable = code == 429 or code >= 500
        return Failure(retryable, error_line(exc), wait if retryable else None, ambiguous)
    retryable = isinstance(exc, OSError | TimeoutError)
    return Failure(retryable, error_line(exc), wait if retryable else None, ambiguous)
    retryable = isinstance(exc, OSError | TimeoutError)
    return Failure(retryable, error_line(exc), wait if retryable else None, ambiguous)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How long a retryable failure is retried: at most ``max_attempts`` deliveries, and
    not after the notification has waited ``max_age_s`` (``alerts.retry_max_attempts``,
    ``alerts.retry_max_age_s``)."""

    max_attempts: int = 1000
    max_age_s: float = 24 * 3600.0
    backoff_min_s: float = RETRY_MIN_S
    backoff_max_s: float = RETRY_MAX_S

    def backoff(self, attempts: int) -> float:
        """The wait after the ``attempts``-th failed attempt: 1 s, 2 s, 4 s... up to 5 min."""
        return min(self.backoff_max_s, self.backoff_min_s * 2.0 ** max(0, attempts - 1))


@dataclass(frozen=True, slots=True)
class Retry:
    """Try the head again at ``at`` (epoch seconds)."""

    at: float


@dataclass(frozen=True, slots=True)
class GiveUp:
    """Dead-letter the head and move on."""

    reason: GiveUpReason


def after_failure(
    attempts: int, queued_at: float, failure: Failure, now: float, policy: RetryPolicy
) -> Retry | GiveUp:
    """What to do after the ``attempts``-th failed delivery of a notification queued at
    ``queued_at``."""
    if not failure.retryable:
        return GiveUp("permanent")
    if attempts >= policy.max_attempts:
        return GiveUp("attempts")
    if now - queued_at >= policy.max_age_s:
        return GiveUp("age")
    wait = failure.retry_after_s if failure.retry_after_s is not None else policy.backoff(attempts)
    return Retry(now + wait)


# ----------------------------------------------------------------------------- the outbox


class Pending(BaseModel):
    """A notification waiting in its receiver's queue."""

    model_config = _FROZEN

    notification: Notification
    seq: int
    """The order it was queued in, over every receiver (a queue is sorted by it)."""
    queued_at: float
    """Epoch seconds."""
    attempts: int = 0
    next_at: float = 0.0
    """Not tried again before this (epoch seconds)."""
    last_error: str | None = None
    unsure: bool = Field(default=False, exclude=True)
    """(Not saved: whatever is read back is unsure.) It may have reached the receiver already: a previous owner of the outbox may have
    sent it before it could record so, or the last attempt failed without a clear refusal
    (:attr:`Failure.ambiguous`). A notifier that can look (Slack) checks before sending."""

    @property
    def receiver(self) -> str:
        return self.notification.receiver


class DeadLetter(BaseModel):
    """A notification given up, as published on the alerts dead-letter topic (JSON)."""

    model_config = _FROZEN

    receiver: str
    notification: Notification
    reason: GiveUpReason
    error: str
    """The last failure, one line."""
    attempts: int
    queued_at: datetime
    at: datetime


def _moment(epoch_s: float) -> datetime:
    return datetime.fromtimestamp(epoch_s, UTC)


class Outbox:
    """Every receiver's queue of :class:`Pending` notifications, oldest first."""

    def __init__(self) -> None:
        self._queues: dict[str, list[Pending]] = {}
        self._next_seq = 1

    def put(self, notification: Notification, now: float) -> Pending:
        """Queue ``notification`` at the end of its receiver's queue."""
        pending = Pending(notification=notification, seq=self._next_seq, queued_at=now)
        self._next_seq += 1
        self._queues.setdefault(notification.receiver, []).append(pending)
        return pending

    def load(self, items: Iterable[Pending]) -> None:
        """Add what a previous owner left (any order): each queue is sorted by ``seq``."""
        for pending in items:
            pending = pending.model_copy(update={"unsure": True})  # sent, then the owner died?
            self._queues.setdefault(pending.receiver, []).append(pending)
            self._next_seq = max(self._next_seq, pending.seq + 1)
        for queue in self._queues.values():
            queue.sort(key=lambda p: p.seq)

    def head(self, receiver: str) -> Pending | None:
        queue = self._queues.get(receiver)
        return queue[0] if queue else None

    def due(self, now: float) -> list[Pending]:
        """The head of each queue whose time has come."""
        return [q[0] for q in self._queues.values() if q and q[0].next_at <= now]

    def pop(self, receiver: str) -> Pending:
        """Take the head off its queue: delivered, or its dead letter published."""
        return self._queues[receiver].pop(0)

    def failed(
        self, receiver: str, failure: Failure, now: float, policy: RetryPolicy
    ) -> Retry | GiveUp:
        """The head failed: count the attempt; retry it later (it stays the head), or give it
        up (it stays the head until :meth:`pop` takes it off, once its :meth:`dead_letter` is
        published)."""
        queue = self._queues[receiver]
        head = queue[0]
        attempts = head.attempts + 1
        decision = after_failure(attempts, head.queued_at, failure, now, policy)
        next_at = decision.at if isinstance(decision, Retry) else now
        queue[0] = head.model_copy(
            update={
                "attempts": attempts,
                "next_at": next_at,
                "last_error": failure.error,
                "unsure": head.unsure or failure.ambiguous,
            }
        )
        return decision

    def dead_letter(
        self, receiver: str, reason: GiveUpReason, now: float, error: str | None = None
    ) -> DeadLetter:
        """The dead letter of the head (which stays in the queue until :meth:`pop`)."""
        head = self._queues[receiver][0]
        return DeadLetter(
            receiver=receiver,
            notification=head.notification,
            reason=reason,
            error=error or head.last_error or reason,
            attempts=head.attempts,
            queued_at=_moment(head.queued_at),
            at=_moment(now),
        )

    def waiting(self) -> dict[str, int]:
        """Notifications queued, by receiver."""
        return {receiver: len(queue) for receiver, queue in self._queues.items()}

    def __iter__(self) -> Iterator[Pending]:
        """Every pending notification, receiver by receiver, in queue order."""
        for queue in self._queues.values():
            yield from queue

    def __len__(self) -> int:
        return sum(len(queue) for queue in self._queues.values())

"""The notifiers' one contract: what the alert stage calls on every receiver, and the error a
notifier raises when a delivery fails."""

from __future__ import annotations

from typing import Any, Protocol

from driftnet.alerts.model import Notification

Thread = dict[str, Any]
"""Where a group's notifications go on (a Slack channel id and message ts): JSON, because
the alert stage keeps it in its state topic for whichever worker delivers the group's next
notification."""


class DeliveryError(Exception):
    """A notification did not reach the receiver. ``retryable``: a later attempt may succeed
    (5xx, 429, transient API errors, network failures); ``retry_after_s``: how long the
    receiver asked to wait (Retry-After), when it did."""

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        retry_after_s: float | None = None,
        status: int | None = None,
        error: str | None = None,
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after_s = retry_after_s
        self.status = status
        """The HTTP status, when a response came back."""
        self.error = error
        """The receiver's error code (``channel_not_found``...) or the exception's type name."""


class Notifier(Protocol):
    """A receiver of notifications (Slack, a Slack webhook, the console...), as the alert
    stage uses it: one :meth:`deliver` per notification, in order, and :meth:`close` when the
    worker stops.

    A notifier never retries: when a delivery fails it raises, and the stage's outbox
    (:mod:`driftnet.alerts.outbox`) decides. It should raise :class:`DeliveryError`, saying
    whether a retry can help; any other exception is classified by
    :func:`driftnet.alerts.outbox.classify` (connection errors and timeouts retryable,
    anything else -- a bug, an encoding error -- permanent: the notification is dead-lettered
    and the receiver goes on with the next one).
    """

    async def deliver(
        self, notification: Notification, thread: Thread | None, *, unsure: bool = False
    ) -> Thread | None:
        """Send one notification. ``thread`` is what this notifier returned for the group's
        previous notification (e.g. the Slack message to update), or None; what it returns
        (JSON) is kept for the group's next one (None when there is nothing to keep).

        ``unsure``: the notification may have been delivered already (by a worker that died
        before it could record so, or by an attempt that timed out). A notifier that can
        look (Slack: the message metadata) sends only what is missing; the others send."""

    async def close(self) -> None:
        """Release what the notifier holds (an HTTP session...); a later :meth:`deliver` may
        open it again. A notifier that holds nothing does nothing."""

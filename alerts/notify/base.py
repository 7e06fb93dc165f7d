"""The notifiers' one contract: what the alert stage calls on every receiver."""

from __future__ import annotations

from typing import Any, Protocol

from driftnet.alerts.model import Notification


class Notifier(Protocol):
    """A receiver of notifications (Slack, a Slack webhook, the console...), as the alert
    stage uses it: one :meth:`deliver` per notification, in order, and :meth:`close` when the
    worker stops.

    A notifier never retries: when a delivery fails it raises, and the stage decides. An
    exception with ``retryable = False`` drops the notification; any other is retried later,
    after ``retry_after_s`` seconds when the exception says so (see
    :class:`driftnet.alerts.notify.slack.DeliveryError`).
    """

    async def deliver(self, notification: Notification, thread: Any) -> Any:
        """Send one notification. ``thread`` is what this notifier returned for the group's
        previous notification (e.g. the Slack message to update), or None; what it returns
        is kept for the group's next one (None when there is nothing to keep)."""

    async def close(self) -> None:
        """Release what the notifier holds (an HTTP session...); a later :meth:`deliver` may
        open it again. A notifier that holds nothing does nothing."""

"""A notifier that keeps what it is given, for alert-stage tests that look at the
notifications a route sends rather than at a receiver."""

from __future__ import annotations

from typing import Any

from driftnet.alerts.model import Notification


class Recorder:
    """Every notification delivered to it, in order, in :attr:`got`."""

    def __init__(self) -> None:
        self.got: list[Notification] = []

    async def deliver(
        self, notification: Notification, thread: Any = None, *, unsure: bool = False
    ) -> None:
        self.got.append(notification)

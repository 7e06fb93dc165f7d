"""The alert stage's notifiers, one per receiver of the settings (console, Slack, webhook, topic)."""

from __future__ import annotations

import logging
from typing import Any

from driftnet.alerts.model import Notification
from driftnet.alerts.notify.base import Notifier
from driftnet.alerts.notify.console import ConsoleNotifier
from driftnet.alerts.notify.slack import SlackNotifier, SlackWebhookNotifier
from driftnet.streams.settings import Settings
from driftnet.streams.stage import Topics

log = logging.getLogger("driftnet.alerts")


class TopicNotifier(Notifier):
    """Notifications as JSON on ``driftnet.alerts`` (key: the group), for other systems."""

    def __init__(self, topic: Any) -> None:
        self.topic = topic

    async def deliver(self, notification: Notification, thread: Any = None) -> None:
        await self.topic.send(
            key=notification.group_key.encode(),
            value=notification.model_dump_json().encode(),
        )

    async def close(self) -> None:
        """Nothing to release: the topic belongs to the app."""


def make_notifiers(settings: Settings, topics: Topics) -> dict[str, Notifier]:
    """One notifier per receiver of the settings (Slack ones need the token)."""
    alerts = settings.alerts
    notifiers: dict[str, Notifier] = {}
    for name, receiver in alerts.all_receivers().items():
        if receiver.type == "console":
            notifiers[name] = ConsoleNotifier()
        elif receiver.type == "topic":
            notifiers[name] = TopicNotifier(topics["alerts"])
        elif receiver.type == "slack":
            if alerts.slack_token is None:
                log.warning("receiver %r needs alerts.slack_token: its alerts are dropped", name)
                continue

            notifiers[name] = SlackNotifier(
                alerts.slack_token.get_secret_value(),
                receiver.channel or alerts.slack_channel,
                base_url=alerts.slack_base_url,
            )
        elif receiver.type == "webhook" and receiver.url is not None:
            notifiers[name] = SlackWebhookNotifier(receiver.url.get_secret_value())
    return notifiers

"""The alert stage's notifiers, one per receiver of the settings (console, Slack, webhook, topic),
and where it publishes the notifications it gives up (the alerts dead-letter topic)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from driftnet.alerts.model import Notification
from driftnet.alerts.notify.base import DeliveryError, Notifier, Thread
from driftnet.alerts.notify.console import ConsoleNotifier
from driftnet.alerts.notify.slack import SlackNotifier, SlackWebhookNotifier
from driftnet.alerts.outbox import DeadLetter
from driftnet.streams.clients.confirmed_sends import publish_now
from driftnet.streams.settings import Settings
from driftnet.streams.stage import Topics

log = logging.getLogger("driftnet.alerts")


async def send_confirmed(topic: Any, key: bytes, value: bytes) -> None:
    """Send one message with faust and return once the broker has acknowledged it (faust's
    ``send`` returns a future of the acknowledgement; a refusal raises)."""
    await (await publish_now(topic, {"key": key, "value": value}))


class TopicNotifier(Notifier):
    """Notifications as JSON on ``driftnet.alerts`` (key: the group), for other systems;
    delivered once the broker has acknowledged them."""

    def __init__(self, topic: Any) -> None:
        self.topic = topic

    async def deliver(
        self, notification: Notification, thread: Thread | None = None, *, unsure: bool = False
    ) -> None:
        """Publish it (again when ``unsure``: a consumer knows a duplicate by its group key
        and sequence)."""
        try:
            await send_confirmed(
                self.topic, notification.group_key.encode(), notification.model_dump_json().encode()
            )
        except Exception as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}", retryable=_may_heal(exc),
                                error=type(exc).__name__) from exc  # fmt: skip

    async def close(self) -> None:
        """Nothing to release: the topic belongs to the app."""


def _may_heal(exc: Exception) -> bool:
    """A send error worth a retry: all but the Kafka errors aiokafka marks not retriable
    (a message too large...), timeouts and a closed producer (the worker stopping) aside."""
    from aiokafka.errors import KafkaError, KafkaTimeoutError, ProducerClosed

    if isinstance(exc, KafkaTimeoutError | ProducerClosed):
        return True
    return not isinstance(exc, KafkaError) or bool(exc.retriable)


def dead_letter_sink(topic: Any) -> Callable[[DeadLetter], Awaitable[None]]:
    """Publishes a given-up notification on the alerts dead-letter topic (key: its group),
    returning once the broker has it."""

    async def publish(letter: DeadLetter) -> None:
        key = letter.notification.group_key.encode()
        await send_confirmed(topic, key, letter.model_dump_json().encode())

    return publish


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

"""The silences topic written from the command line: one silence command, acknowledged."""

from __future__ import annotations

from driftnet.alerts.silences import SilenceCommand
from driftnet.streams.clients.send_one import SendError, send_one
from driftnet.streams.settings import KafkaSettings


class SilenceTopicError(Exception):
    """The command could not be published (one line for the user)."""


def publish_command(kafka: KafkaSettings, topic: str, command: SilenceCommand) -> None:
    """Send ``command`` to ``topic`` and wait for the broker's acknowledgement."""
    try:
        send_one(kafka, topic, command.model_dump_json().encode())
    except SendError as exc:
        raise SilenceTopicError(str(exc)) from None

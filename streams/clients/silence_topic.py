"""The silences topic written from the command line: one silence command, acknowledged."""

from __future__ import annotations

from driftnet.alerts.silences import SilenceCommand
from driftnet.streams.clients.kafka_config import KafkaUnreachable, kafka_python_options, probe
from driftnet.streams.settings import KafkaSettings


class SilenceTopicError(Exception):
    """The command could not be published (one line for the user)."""


def publish_command(kafka: KafkaSettings, topic: str, command: SilenceCommand) -> None:
    """Send ``command`` to ``topic`` and wait for the broker's acknowledgement."""
    from kafka import KafkaProducer
    from kafka.errors import KafkaError

    try:
        probe(kafka)
    except KafkaUnreachable as exc:
        raise SilenceTopicError(str(exc)) from None
    try:
        producer = KafkaProducer(**kafka_python_options(kafka), acks="all")
        producer.send(topic, command.model_dump_json().encode()).get(timeout=30)
        producer.close()
    except KafkaError as exc:
        raise SilenceTopicError(
            f"cannot publish to {topic} at {kafka.bootstrap_servers} ({type(exc).__name__}); "
            "is a broker running and the topic created (`driftnet topics create`)?"
        ) from None

"""One message written from the command line and acknowledged by the broker (a silence, the
news of ``driftnet harvest themes --signal``)."""

from __future__ import annotations

from driftnet.streams.clients.kafka_config import KafkaUnreachable, kafka_python_options, probe
from driftnet.streams.settings import KafkaSettings


class SendError(Exception):
    """The message could not be published (one line for the user)."""


def send_one(kafka: KafkaSettings, topic: str, value: bytes, key: bytes | None = None) -> None:
    """Send ``value`` (keyed ``key``) to ``topic`` and wait for the broker's acknowledgement."""
    from kafka import KafkaProducer
    from kafka.errors import KafkaError

    try:
        probe(kafka)
    except KafkaUnreachable as exc:
        raise SendError(str(exc)) from None
    try:
        producer = KafkaProducer(**kafka_python_options(kafka), acks="all")
        producer.send(topic, value, key=key).get(timeout=30)
        producer.close()
    except KafkaError as exc:
        raise SendError(
            f"cannot publish to {topic} at {kafka.bootstrap_servers} ({type(exc).__name__}); "
            "is a broker running and the topic created (`driftnet topics create`)?"
        ) from None

"""Start-up checks of the worker and the sink: the broker answers and every topic exists."""

from __future__ import annotations

from driftnet.streams.clients.kafka_config import KafkaUnreachable, admin_client
from driftnet.streams.settings import Settings

PREFLIGHT_TIMEOUT_S = 10.0
"""How long start-up waits for a broker to answer before saying it cannot reach one."""


class WorkerError(Exception):
    """The worker cannot start; ``str()`` is one line saying why."""


def preflight(settings: Settings) -> Settings:
    """Fail fast, in one line, when Kafka is unreachable or a topic is missing. Returns the
    settings with ``otlp.enabled`` decided (``auto``: on when the OTLP spans topic exists)."""
    try:
        admin = admin_client(settings.kafka, timeout_s=PREFLIGHT_TIMEOUT_S)
    except KafkaUnreachable as exc:
        raise WorkerError(str(exc)) from None
    try:
        existing = set(admin.list_topics())
    finally:
        admin.close()
    optional = set() if settings.otlp.enabled is True else {settings.topics.otlp_spans.name}
    missing = [
        spec.name
        for spec in settings.topics.by_role().values()
        if spec.name not in existing and spec.name not in optional
    ]
    if missing:
        raise WorkerError(
            f"topic{'s' if len(missing) > 1 else ''} {', '.join(missing)} not found on "
            f"{settings.kafka.bootstrap_servers}: run `driftnet topics create` first"
        )
    return with_otlp(settings, settings.topics.otlp_spans.name in existing)


def with_otlp(settings: Settings, topic_exists: bool) -> Settings:
    """``settings`` with ``otlp.enabled`` True or False: ``auto`` reads the topic if it exists."""
    enabled = settings.otlp.enabled
    decided = topic_exists if enabled == "auto" else bool(enabled)
    otlp = settings.otlp.model_copy(update={"enabled": decided})
    return settings.model_copy(update={"otlp": otlp})

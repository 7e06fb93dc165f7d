"""``driftnet topics create``: make every topic driftnet uses, idempotently.

Names, partition counts, replication and retention come from settings (``[topics.*]``); the
topics of :data:`COMPACTED` are compacted (the newest record of each key is kept).
A topic that already exists is left as it is; when its partition count differs from the
settings, the outcome says so (adding partitions re-keys cohorts, so that stays a human call).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, Literal

from driftnet.streams.clients.kafka_config import KafkaUnreachable, admin_client
from driftnet.streams.settings import KafkaSettings, TopicSpec

TIMEOUT_S = 10.0
COMPACTED: Final = frozenset({"detector_state", "alerts_state"})
"""Roles whose topics keep the newest record per key (``cleanup.policy=compact``)."""


class TopicsError(Exception):
    """The brokers could not be reached or refused a topic; ``str()`` is one line."""


@dataclass(frozen=True, slots=True)
class TopicOutcome:
    """What happened to one topic."""

    role: str
    spec: TopicSpec
    status: Literal["created", "exists", "failed"]
    partitions: int | None = None
    """The topic's partition count on the brokers (for ``exists``)."""
    error: str | None = None

    @property
    def line(self) -> str:
        """One line for the console."""
        spec = self.spec
        retention = f"{spec.retention_hours:g} h" if spec.retention_hours else "broker default"
        if self.role in COMPACTED:
            retention = "compacted"
        head = f"{self.status:<8} {spec.name:<28} ({self.role})"
        if self.status == "created":
            return f"{head} {spec.partitions} partitions, retention {retention}"
        if self.status == "exists":
            if self.partitions is not None and self.partitions != spec.partitions:
                return (
                    f"{head} has {self.partitions} partitions, settings say {spec.partitions}: "
                    "left as is"
                )
            return f"{head} {self.partitions} partitions"
        return f"{head} {self.error}"


def create_topics(
    kafka: KafkaSettings, topics: dict[str, TopicSpec], *, timeout_s: float = TIMEOUT_S
) -> list[TopicOutcome]:
    """Create each topic that does not exist yet; report every one."""
    from kafka.errors import KafkaError, TopicAlreadyExistsError

    try:
        admin = admin_client(kafka, timeout_s=timeout_s)
    except KafkaUnreachable as exc:
        raise TopicsError(str(exc)) from None
    try:
        request = {
            spec.name: {
                "num_partitions": spec.partitions,
                "replication_factor": spec.replication_factor,
                "configs": _configs(role, spec),
            }
            for role, spec in topics.items()
        }
        try:
            response = admin.create_topics(
                request, timeout_ms=int(timeout_s * 1000), raise_errors=False
            )
        except KafkaError as exc:
            raise TopicsError(f"creating topics failed: {type(exc).__name__}: {exc}") from None
        codes = {item["name"]: item for item in response["topics"]}
        outcomes = []
        existing: list[str] = []
        for role, spec in topics.items():
            item = codes.get(spec.name, {})
            code = item.get("error_code", -1)
            if code == 0:
                outcomes.append(TopicOutcome(role, spec, "created"))
            elif code == TopicAlreadyExistsError.errno:
                outcomes.append(TopicOutcome(role, spec, "exists"))
                existing.append(spec.name)
            else:
                message = item.get("error_message") or f"error code {code}"
                outcomes.append(TopicOutcome(role, spec, "failed", error=message))
        counts = _partition_counts(admin, existing) if existing else {}
        return [
            TopicOutcome(o.role, o.spec, o.status, counts.get(o.spec.name), o.error)
            if o.status == "exists"
            else o
            for o in outcomes
        ]
    finally:
        admin.close()


def existing_topics(kafka: KafkaSettings, *, timeout_s: float = TIMEOUT_S) -> set[str]:
    """The names of the topics on the brokers; :class:`TopicsError` (one line) when they
    cannot be reached or asked."""
    from kafka.errors import KafkaError

    try:
        admin = admin_client(kafka, timeout_s=timeout_s)
    except KafkaUnreachable as exc:
        raise TopicsError(str(exc)) from None
    try:
        return set(admin.list_topics())
    except KafkaError as exc:
        raise TopicsError(f"listing topics failed: {type(exc).__name__}: {exc}") from None
    finally:
        admin.close()


def _configs(role: str, spec: TopicSpec) -> dict[str, str]:
    if role in COMPACTED:
        return {"cleanup.policy": "compact"}
    configs = {}
    if spec.retention_ms is not None:
        configs["retention.ms"] = str(spec.retention_ms)
    return configs


def _partition_counts(admin: object, names: Iterable[str]) -> dict[str, int]:
    described = admin.describe_topics(list(names))  # type: ignore[attr-defined]
    return {topic["name"]: len(topic["partitions"]) for topic in described}

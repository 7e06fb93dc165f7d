"""Reading canary verdicts back from ``driftnet.verdicts``: the latest one of every canary.

The topic is read without a consumer group (nothing is committed) from the first message
younger than ``since`` (by its Kafka timestamp) to its current end: a canary judged every
minute leaves a verdict a minute, and a current one is in the last hours.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from driftnet.detectors.canary.verdict import Verdict
from driftnet.streams.clients.kafka_config import whole_topic_consumer
from driftnet.streams.settings import KafkaSettings

READ_TIMEOUT_S = 10.0


class VerdictsError(Exception):
    """The verdicts topic cannot be read (one line for the user)."""


@dataclass(slots=True)
class LatestVerdicts:
    """The newest verdict of each canary, and what could not be read."""

    verdicts: dict[tuple[str, str, str, str], Verdict] = field(default_factory=dict)
    unreadable: int = 0

    def add(self, value: bytes | None) -> None:
        try:
            verdict = Verdict.model_validate_json(value or b"")
        except ValueError:
            self.unreadable += 1
            return
        known = self.verdicts.get(verdict.cohort)
        if known is None or verdict.window_end >= known.window_end:
            self.verdicts[verdict.cohort] = verdict

    def ordered(self) -> list[Verdict]:
        """Most recent first, then by canary."""
        return sorted(self.verdicts.values(), key=lambda v: (-v.window_end, v.cohort))


def read_latest(
    kafka: KafkaSettings,
    topic: str,
    *,
    timeout_s: float = READ_TIMEOUT_S,
    since_s: float | None = None,
    now: float | None = None,
) -> LatestVerdicts:
    """Read ``topic`` to its current end -- from the messages of the last ``since_s`` seconds,
    or all of it -- and keep the newest verdict per canary."""
    latest = LatestVerdicts()
    scan_topic(kafka, topic, latest.add, timeout_s=timeout_s, since_s=since_s, now=now)
    return latest


def scan_topic(
    kafka: KafkaSettings,
    topic: str,
    take: Callable[[bytes | None], None],
    *,
    timeout_s: float = READ_TIMEOUT_S,
    since_s: float | None = None,
    now: float | None = None,
) -> None:
    """Pass every message value of ``topic`` to ``take``, from the messages of the last
    ``since_s`` seconds (or the beginning) to the topic's current end; one-line
    :class:`VerdictsError` when the broker or the topic is not there."""
    from kafka.errors import KafkaError

    consumer, assigned = whole_topic_consumer(
        kafka, topic, timeout_s=timeout_s, bootstrap_timeout_ms=int(timeout_s * 1000),
        error=VerdictsError,
    )  # fmt: skip
    try:
        ends = consumer.end_offsets(assigned)
        if since_s is None:
            consumer.seek_to_beginning(*assigned)
        else:
            moment = int(((now or time.time()) - since_s) * 1000)
            starts = consumer.offsets_for_times(dict.fromkeys(assigned, moment))
            for tp in assigned:
                found = starts.get(tp)
                consumer.seek(tp, found.offset if found is not None else ends[tp])
        deadline = time.monotonic() + timeout_s
        while any(consumer.position(tp) < ends[tp] for tp in assigned):
            if time.monotonic() > deadline:
                raise VerdictsError(f"reading {topic!r} took more than {timeout_s:g} s")
            for records in consumer.poll(timeout_ms=500).values():
                for record in records:
                    take(record.value)
    except KafkaError as exc:
        raise VerdictsError(f"reading {topic!r} failed: {type(exc).__name__}: {exc}") from None
    finally:
        consumer.close()

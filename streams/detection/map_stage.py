"""The map stage of windowed detection: the windows of each events partition this worker owns,
their partials and heartbeats out (see :mod:`driftnet.streams.detection.merge_stage`). No faust."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from driftnet.contract.events import InferenceEvent
from driftnet.detectors.config import DetectorsConfig
from driftnet.detectors.windowing.cohort_cap import CohortCap
from driftnet.detectors.windowing.merge import PartitionWindows
from driftnet.detectors.windowing.texts import SampledText
from driftnet.harvest.records import Reason
from driftnet.streams.detection.aggregate_messages import (
    aggregate_key,
    heartbeat_message,
    partial_message,
)
from driftnet.streams.detection.merge_stage import window_spec
from driftnet.streams.detection.observations import (
    REDACTION_MARGIN,
    finish_texts,
    observation_of,
    texts_of,
)


@dataclass(slots=True)
class Outgoing:
    """Messages to send: (topic role, key, value, partition or None for the key's)."""

    messages: list[tuple[str, bytes, bytes, int | None]] = field(default_factory=list)

    def add(self, role: str, key: bytes, value: bytes, partition: int | None = None) -> None:
        self.messages.append((role, key, value, partition))


class MapStage:
    """Map side of every events partition this worker owns."""

    def __init__(
        self,
        config: DetectorsConfig,
        events_topic: str,
        redact: Callable[[str], str] | None = None,
    ) -> None:
        """``redact`` masks personal data in the texts a window samples, once the window is
        done (as in failure records: they travel on the aggregates topic and stay in the
        detectors' state)."""
        self.config = config
        self._redact = redact
        self.spec = window_spec(config)
        self.events_topic = events_topic
        self._sides: dict[int, PartitionWindows] = {}
        self._caps: dict[int, CohortCap] = {}
        self.overflow_events = 0
        """Events folded into the overflow cohort since start (a cardinality attack)."""

    def source(self, partition: int) -> str:
        return f"{self.events_topic}/{partition}"

    def _side(self, partition: int) -> PartitionWindows:
        side = self._sides.get(partition)
        if side is None:
            side = PartitionWindows(
                self.source(partition), self.spec, self.config.aggregate, self.config.prices
            )
            self._sides[partition] = side
        return side

    def observe(
        self,
        partition: int,
        offset: int,
        event: InferenceEvent,
        reasons: list[Reason],
        raw: bytes | Callable[[], bytes],
        now: float,
    ) -> bool:
        """Aggregate one valid event; False when it was late for its window (counted)."""
        aggregate = self.config.aggregate
        texts = (
            _texts(event, aggregate.text_chars + REDACTION_MARGIN)
            if aggregate.text_samples
            else None
        )
        obs = observation_of(event, reasons, raw, aggregate.attributes, texts)
        cap = self._caps.get(partition)
        if cap is None:
            windows = self.config.windows
            horizon = windows.forget_after_windows * windows.size_s
            cap = self._caps[partition] = CohortCap(windows.max_cohorts_per_partition, horizon)
        cohort = cap.admit(obs.cohort, obs.event_time)
        if cohort is not obs.cohort:
            self.overflow_events += 1
            obs.cohort = cohort
        return self._side(partition).add(obs, now, offset)

    @property
    def cohorts_tracked(self) -> int:
        """Cohorts the map side tracks now, over the partitions it owns."""
        return sum(cap.tracked for cap in self._caps.values())

    def due(self, now: float, aggregate_partitions: int) -> Outgoing:
        """Partials of windows now done, then every partition's heartbeat to every aggregates
        partition (after the partials, so a merge never closes a window before its partial)."""
        out = Outgoing()
        for partition, side in self._sides.items():
            for partial in side.close_due(now):
                finish_texts(partial.texts, partial.settings.text_chars, self._redact)
                out.add("aggregates", aggregate_key(partial.cohort), partial_message(partial))
            mark = side.watermark(now)
            if mark is None:
                continue
            beat = heartbeat_message(self.source(partition), mark)
            for target in range(aggregate_partitions):
                out.add("aggregates", b"heartbeat", beat, target)
        return out

    def safe_offset(self, partition: int) -> int | None:
        """Offsets of ``partition`` below this are no longer needed by an open window; None
        when no open window holds any."""
        side = self._sides.get(partition)
        return None if side is None else side.safe_offset()

    def pardon(self, seconds: float, now: float) -> None:
        """The worker was stalled for ``seconds``: no partition was idle meanwhile."""
        for side in self._sides.values():
            side.pardon(seconds, now)

    def revoke(self, partitions: Iterable[int]) -> None:
        """Partitions moved to another worker: it recomputes their windows by replay."""
        for partition in partitions:
            self._sides.pop(partition, None)
            self._caps.pop(partition, None)

    @property
    def late_events(self) -> int:
        return sum(side.late_events for side in self._sides.values())


def _texts(event: InferenceEvent, chars: int) -> Callable[[], SampledText]:
    """What makes the event's texts, called only if the window's text sample keeps it."""
    return lambda: texts_of(event, chars)

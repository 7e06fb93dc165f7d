"""Every detector by its versioned name. Explicit: adding one means adding a line here.

A name is ``<family>.<metric>.v<N>``; a detector whose behaviour changes gets a new version
(findings carry the name, so an alert history never mixes two behaviours under one name).

>>> create("latency.p95.v1").name
'latency.p95.v1'
>>> create("latency.p97.v1")
Traceback (most recent call last):
...
driftnet.detectors.families.registry.UnknownDetectorError: unknown detector 'latency.p97.v1'; known: cost.input_tokens.v1, ...
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Final

from driftnet.detectors.families.base import Detector
from driftnet.detectors.families.cost import PerRequest, SpendPerHour
from driftnet.detectors.families.drift import DriftDetector
from driftnet.detectors.families.latency import LatencyByInputSize, LatencyQuantile
from driftnet.detectors.families.quality import Rate, ScoreBreaches, ScoreMean
from driftnet.detectors.families.volume import VolumeDrop, VolumeSpike
from driftnet.detectors.settings import DetectorSettings

Factory = Callable[[DetectorSettings | None], Detector]

REGISTRY: Final[dict[str, Factory]] = {
    "volume.drop.v1": VolumeDrop,
    "volume.spike.v1": VolumeSpike,
    "latency.p50.v1": lambda s: LatencyQuantile("p50", s),
    "latency.p95.v1": lambda s: LatencyQuantile("p95", s),
    "latency.p99.v1": lambda s: LatencyQuantile("p99", s),
    "latency.ttft_p95.v1": lambda s: LatencyQuantile("ttft_p95", s),
    "latency.by_input_size.v1": LatencyByInputSize,
    "cost.per_request.v1": lambda s: PerRequest("cost_usd", s),
    "cost.input_tokens.v1": lambda s: PerRequest("input_tokens", s),
    "cost.output_tokens.v1": lambda s: PerRequest("output_tokens", s),
    "cost.spend_per_hour.v1": SpendPerHour,
    "quality.error_rate.v1": lambda s: Rate("error_rate", s),
    "quality.refusal_rate.v1": lambda s: Rate("refusal_rate", s),
    "quality.empty_rate.v1": lambda s: Rate("empty_rate", s),
    "quality.truncated_rate.v1": lambda s: Rate("truncated_rate", s),
    "quality.invalid_json_rate.v1": lambda s: Rate("invalid_json_rate", s),
    "quality.negative_feedback_rate.v1": lambda s: Rate("negative_feedback_rate", s),
    "quality.uncaptured_rate.v1": lambda s: Rate("uncaptured_rate", s),
    "quality.score_breach_rate.v1": ScoreBreaches,
    "quality.score_mean.v1": ScoreMean,
    "drift.features.v1": DriftDetector,
}

BASELINE_ONLY: Final = frozenset({"volume.drop.v1", "volume.spike.v1"})
"""Detectors that watch baseline cohorts only. A canary's traffic is a deployment decision
(its share is dialled up, down, or to zero on a rollback or a promotion), so its volume moving
is not a regression; the canary judge watches what the canary does with the traffic it gets."""


class UnknownDetectorError(ValueError):
    """A detector name that is not registered; the message lists the known ones."""


def check_names(names: Iterable[str]) -> None:
    """Raise :class:`UnknownDetectorError` for the first name that is not registered."""
    for name in names:
        if name not in REGISTRY:
            known = ", ".join(sorted(REGISTRY))
            raise UnknownDetectorError(f"unknown detector {name!r}; known: {known}")


def create(name: str, settings: DetectorSettings | None = None) -> Detector:
    """A new detector by its registered name."""
    check_names([name])
    return REGISTRY[name](settings)

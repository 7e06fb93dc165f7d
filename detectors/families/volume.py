"""Traffic volume vs the reference: drops (to zero included) and spikes.

The window count is compared with the reference mean under a Poisson model; a drop fires when
the count is below ``drop_ratio`` x the mean and that is surprising (p below ``alpha``), a spike
when it is above ``spike_ratio`` x the mean, likewise. A cohort that stops sending gets empty
windows from the merge side, so silence is a finding here.

>>> from driftnet.detectors.windowing.partials import Partial
>>> from driftnet.detectors.windowing.observation import Observation
>>> from driftnet.detectors.windowing.windows import Window
>>> cohort = ("chat", "production", "r1", "baseline")
>>> def window(i, n):
...     p = Partial.empty(cohort, Window(60 * i, 60 * i + 60), "*")
...     for j in range(n):
...         p.add(Observation(f"e{i}-{j}", 60.0 * i, cohort))
...     return p
>>> detector = VolumeDrop()
>>> [detector.update(window(i, 100)).drift_detected for i in range(4)]
[False, False, False, False]
>>> detector.update(window(4, 0)).findings[0].message
'traffic 0 events vs 100 expected (-100%)'
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from statistics import fmean
from typing import Any

from driftnet.detectors.families.base import WindowedDetector
from driftnet.detectors.families.snapshot import as_int
from driftnet.detectors.finding import Finding, ReferenceKind
from driftnet.detectors.settings import DetectorSettings
from driftnet.detectors.stats import poisson_high_p, poisson_low_p
from driftnet.detectors.windowing.partials import Partial


class _VolumeChange(WindowedDetector[int]):
    """The window's event count vs the reference mean, under a Poisson model; a subclass gives
    the direction: its limit, which side of it fires, its p-value and how it words the change."""

    __slots__ = ()

    def __init__(self, settings: DetectorSettings | None = None) -> None:
        super().__init__(settings)

    def summarize(self, window: Partial) -> int:
        return window.count

    def encode_summary(self, summary: int) -> Any:
        return summary

    def decode_summary(self, data: Any) -> int:
        return as_int(data)

    @abstractmethod
    def _limit(self, expected: float) -> float:
        """The count a window must pass to be a candidate."""

    @abstractmethod
    def _beyond(self, current: int, limit: float) -> bool:
        """Whether ``current`` is beyond ``limit`` in this detector's direction."""

    @abstractmethod
    def _p_value(self, current: int, expected: float) -> float:
        """The Poisson p-value of a count this far out when ``expected`` are expected."""

    @abstractmethod
    def _change(self, current: int, expected: float) -> str:
        """The change, worded for the message."""

    def judge(
        self, window: Partial, current: int, reference: Sequence[int], kind: ReferenceKind
    ) -> list[Finding]:
        if kind == "baseline":
            return []  # a canary takes a chosen share of the traffic: its volume is not a regression
        settings = self.settings.volume
        expected = fmean(reference)
        limit = self._limit(expected)
        if expected < settings.min_reference_mean or not self._beyond(current, limit):
            return []
        p = self._p_value(current, expected)
        if p >= settings.alpha:
            return []
        return [
            self.finding(
                window,
                metric="events",
                observed=current,
                reference=expected,
                kind=kind,
                threshold=limit,
                effect_size=current / expected,
                p_value=p,
                # silence is critical (only a drop can reach 0)
                severity="critical" if current == 0 else "warning",
                message=(
                    f"traffic {current:,} events vs {expected:,.0f} expected "
                    f"({self._change(current, expected)})"
                ),
            )
        ]


class VolumeDrop(_VolumeChange):
    """Fewer events than the reference, down to none at all."""

    __slots__ = ()

    name = "volume.drop.v1"

    def _limit(self, expected: float) -> float:
        return expected * self.settings.volume.drop_ratio

    def _beyond(self, current: int, limit: float) -> bool:
        return current < limit

    def _p_value(self, current: int, expected: float) -> float:
        return poisson_low_p(current, expected)

    def _change(self, current: int, expected: float) -> str:
        return f"{current / expected - 1:+.0%}"


class VolumeSpike(_VolumeChange):
    """Many more events than the reference."""

    __slots__ = ()

    name = "volume.spike.v1"

    def _limit(self, expected: float) -> float:
        return expected * self.settings.volume.spike_ratio

    def _beyond(self, current: int, limit: float) -> bool:
        return current > limit

    def _p_value(self, current: int, expected: float) -> float:
        return poisson_high_p(current, expected)

    def _change(self, current: int, expected: float) -> str:
        return f"x{current / expected:.1f}"

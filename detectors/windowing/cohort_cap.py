"""A cap on the cohorts one source tracks: a cardinality attack folds into one overflow cohort.

A producer that puts a fresh release (or service, or variant) on every event would otherwise
open a window, a sketch and a detector per event, and the worker's memory would grow without
bound. Each source (one events partition) admits at most ``max_cohorts`` distinct cohorts;
the events of any further cohort are aggregated under :data:`OVERFLOW_COHORT` (and counted),
never dead-lettered: they are valid events, only too many kinds of them. A cohort not seen for
``forget_after_s`` of event time gives its place back, so real releases that come and go are
not locked out by old ones. Pure: event time is passed in.

>>> cap = CohortCap(max_cohorts=2, forget_after_s=3600)
>>> [cap.admit(("chat", "prod", r, "baseline"), 100.0)[2] for r in ("v1", "v2", "v3", "v1")]
['v1', 'v2', '_overflow', 'v1']
>>> cap.overflow_events, cap.tracked
(1, 2)
>>> cap.admit(("chat", "prod", "v4", "baseline"), 100.0 + 7200)[2]  # v1 and v2 forgotten
'v4'
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Final

from driftnet.detectors.windowing.observation import Cohort

OVERFLOW: Final = "_overflow"
OVERFLOW_COHORT: Final[Cohort] = (OVERFLOW, OVERFLOW, OVERFLOW, OVERFLOW)
"""Where the events of cohorts past the cap are aggregated (counted, not judged)."""


def is_overflow(cohort: Cohort) -> bool:
    return cohort == OVERFLOW_COHORT


@dataclass(slots=True)
class CohortCap:
    """At most ``max_cohorts`` cohorts at a time for one source (see the module docstring)."""

    max_cohorts: int
    forget_after_s: float
    overflow_events: int = 0
    """Events folded into the overflow cohort since start."""
    _seen: dict[Cohort, float] = field(default_factory=dict)
    """Admitted cohorts and the latest event time of each."""
    _latest: float = -math.inf
    _swept_at: float = -math.inf

    def __post_init__(self) -> None:
        if self.max_cohorts < 1 or self.forget_after_s <= 0:
            raise ValueError("max_cohorts must be >= 1 and forget_after_s > 0")

    @property
    def tracked(self) -> int:
        """Cohorts admitted now."""
        return len(self._seen)

    def admit(self, cohort: Cohort, event_time: float) -> Cohort:
        """The cohort to aggregate an event of ``cohort`` under: itself, or the overflow."""
        self._latest = max(self._latest, event_time)
        seen = self._seen.get(cohort)
        if seen is not None:
            if event_time > seen:
                self._seen[cohort] = event_time
            return cohort
        if len(self._seen) >= self.max_cohorts:
            self._sweep()
            if len(self._seen) >= self.max_cohorts:
                self.overflow_events += 1
                return OVERFLOW_COHORT
        self._seen[cohort] = event_time
        return cohort

    def _sweep(self) -> None:
        """Forget cohorts silent for ``forget_after_s``; at most once per tenth of it of event
        time, so that an attack costs one dictionary look-up per event, not a scan."""
        if self._latest - self._swept_at < self.forget_after_s / 10:
            return
        self._swept_at = self._latest
        horizon = self._latest - self.forget_after_s
        self._seen = {c: t for c, t in self._seen.items() if t >= horizon}

"""Every enabled detector of one cohort, fed together: what the merge stage calls per window.

>>> from driftnet.detectors.config import DetectorsConfig
>>> from driftnet.detectors.windowing.partials import Partial
>>> from driftnet.detectors.windowing.windows import Window
>>> cohort = ("chat", "production", "r1", "canary")
>>> watch = CohortDetectors.of(DetectorsConfig(), cohort)
>>> watch.update(Partial.empty(cohort, Window(0, 60), "*"))
[]
"""

from __future__ import annotations

from collections.abc import Sequence

from driftnet.detectors.config import DetectorsConfig
from driftnet.detectors.families.base import Detector
from driftnet.detectors.families.drift import DriftDetector, FullCheckRequest
from driftnet.detectors.families.registry import BASELINE_ONLY, REGISTRY, check_names, create
from driftnet.detectors.finding import Finding
from driftnet.detectors.settings import DetectorSettings
from driftnet.detectors.windowing.observation import Cohort
from driftnet.detectors.windowing.partials import Partial


class CohortDetectors:
    """The detectors watching one cohort, by registered name."""

    def __init__(
        self, cohort: Cohort, settings: DetectorSettings, names: Sequence[str] | None = None
    ) -> None:
        names = list(REGISTRY) if names is None else list(names)
        check_names(names)
        self.cohort = cohort
        self.settings = settings
        self.names = tuple(names)
        self.detectors: dict[str, Detector] = {name: create(name, settings) for name in names}

    @classmethod
    def of(cls, config: DetectorsConfig, cohort: Cohort) -> CohortDetectors:
        """The cohort's detectors with its effective settings (defaults + overrides); a
        canary's (any variant but the baseline's) leave out the volume detectors
        (:data:`~driftnet.detectors.families.registry.BASELINE_ONLY`)."""
        names = list(REGISTRY) if config.enabled is None else list(config.enabled)
        if cohort[3] != config.canary.baseline_variant:
            names = [name for name in names if name not in BASELINE_ONLY]
        return cls(cohort, config.for_cohort(cohort), names)

    def update(self, window: Partial, baseline: Partial | None = None) -> list[Finding]:
        """Judge one closed window (and the baseline cohort's same window, for a canary)."""
        if window.cohort != self.cohort:
            raise ValueError(f"window of {window.cohort} fed to the detectors of {self.cohort}")
        return [f for d in self.detectors.values() for f in d.update(window, baseline).findings]

    @property
    def full_checks(self) -> list[FullCheckRequest]:
        """evidently checks the last update asks for (run them with
        :func:`driftnet.detectors.families.drift_report.full_drift_check`, in another process)."""
        return [
            d.full_check
            for d in self.detectors.values()
            if isinstance(d, DriftDetector) and d.full_check is not None
        ]

    def reset(self) -> None:
        """Forget every window of every detector."""
        for detector in self.detectors.values():
            detector.reset()

"""Every enabled detector of one cohort, fed together: what the merge stage calls per window.

>>> from driftnet.detectors.config import DetectorsConfig
>>> from driftnet.detectors.windowing.partials import Partial
>>> from driftnet.detectors.windowing.windows import Window
>>> cohort = ("chat", "production", "r1", "canary")
>>> watch = CohortDetectors.of(DetectorsConfig(), cohort)
>>> watch.update(Partial.empty(cohort, Window(0, 60), "*"))
[]

What the detectors learned goes to a snapshot and back (a restarted worker's cohorts go on
with their references instead of waiting ``min_reference_windows`` windows for new ones):

>>> again = CohortDetectors.of(DetectorsConfig(), cohort)
>>> again.restore(watch.snapshot())
[]
>>> again.last_window_end
60
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from driftnet.detectors.config import DetectorsConfig
from driftnet.detectors.families.base import Detector
from driftnet.detectors.families.drift import DriftDetector, FullCheckRequest
from driftnet.detectors.families.registry import BASELINE_ONLY, REGISTRY, check_names, create
from driftnet.detectors.families.snapshot import SnapshotError, as_int, as_mapping
from driftnet.detectors.families.text_drift import TextCheckRequest
from driftnet.detectors.finding import Finding
from driftnet.detectors.settings import DetectorSettings
from driftnet.detectors.windowing.observation import Cohort
from driftnet.detectors.windowing.partials import Partial

COHORT_SNAPSHOT_VERSION: Final = 1
"""The format of :meth:`CohortDetectors.snapshot` around its detectors' snapshots."""


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
        self.last_window_end: int | None = None
        """End of the last window fed (or restored): a window ending by then is already in
        the references."""

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
        found = [f for d in self.detectors.values() for f in d.update(window, baseline).findings]
        self.last_window_end = window.window.end
        return found

    @property
    def full_checks(self) -> list[FullCheckRequest]:
        """evidently checks the last update asks for (run them with
        :func:`driftnet.detectors.families.drift_report.full_drift_check`, in another process)."""
        return [
            d.full_check
            for d in self.detectors.values()
            if isinstance(d, DriftDetector) and d.full_check is not None
        ]

    @property
    def text_checks(self) -> list[TextCheckRequest]:
        """Text drift checks the last update asks for (run them with
        :func:`driftnet.detectors.families.text_check.text_drift_check`, in another process)."""
        return [
            d.text_check
            for d in self.detectors.values()
            if isinstance(d, DriftDetector) and d.text_check is not None
        ]

    @property
    def text_reason(self) -> str | None:
        """Why the last update asked for no text check though one was due, or kept no texts
        (content not captured); None otherwise, or without a drift detector."""
        drift = next((d for d in self.detectors.values() if isinstance(d, DriftDetector)), None)
        return None if drift is None else drift.text_reason

    def reset(self) -> None:
        """Forget every window of every detector."""
        for detector in self.detectors.values():
            detector.reset()
        self.last_window_end = None

    def snapshot(self) -> dict[str, Any]:
        """What every detector of the cohort learned, JSON-able. Bounded: each detector keeps
        at most ``reference_windows`` windows (about 34 KB of JSON for every detector at the
        default 10; see :meth:`Detector.snapshot`)."""
        return {
            "version": COHORT_SNAPSHOT_VERSION,
            "cohort": list(self.cohort),
            "last_window_end": self.last_window_end,
            "detectors": {name: d.snapshot() for name, d in self.detectors.items()},
        }

    def restore(self, snapshot: Mapping[str, Any]) -> list[str]:
        """Take what :meth:`snapshot` saved. Raises :class:`SnapshotError` (a ``ValueError``),
        changing nothing, when ``snapshot`` is not one of this cohort in this format; a
        detector whose own snapshot is missing or unreadable (a new detector, a new version
        of one) starts afresh instead, and the returned reasons say which (empty: every
        detector restored)."""
        body = as_mapping(snapshot)
        if body.get("version") != COHORT_SNAPSHOT_VERSION:
            raise SnapshotError(f"cohort snapshot version {body.get('version')!r:.20}; this "
                                f"driftnet reads version {COHORT_SNAPSHOT_VERSION}")  # fmt: skip
        if body.get("cohort") != list(self.cohort):
            raise SnapshotError(f"a snapshot of {body.get('cohort')!r:.80}, not of {self.cohort}")
        end = body.get("last_window_end")
        last_window_end = None if end is None else as_int(end)
        saved = as_mapping(body.get("detectors"))
        skipped = []
        self.reset()
        for name, detector in self.detectors.items():
            if name not in saved:
                skipped.append(f"{name}: not in the snapshot")
                continue
            try:
                detector.restore(saved[name])
            except SnapshotError as exc:
                skipped.append(f"{name}: {exc}")
        self.last_window_end = last_window_end
        return skipped

"""The shape every detector has (river-style): ``update`` returns the detector, results are
read-only properties, ``reset`` forgets what was learned, ``clone`` makes a fresh twin.

A detector watches one cohort. ``update(window, baseline=None)`` judges a closed window's
aggregate against the reference (the cohort's own trailing windows, and, when given, the
baseline cohort's aggregate of the same window), then adds the window to its history.
Subclasses say how to summarise a window (small: a few numbers and a short sample) and how to
judge a summary against reference summaries.

What a detector has learned survives a restart as a snapshot: :meth:`Detector.snapshot` is
JSON-able and versioned, :meth:`Detector.restore` takes it into a fresh detector, which then
goes on exactly as the one snapshotted would (:mod:`driftnet.detectors.families.snapshot`).
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from statistics import median
from typing import Any, Generic, Self, TypeVar

import numpy as np
import numpy.typing as npt

from driftnet.detectors.families.samples import SAMPLE_PER_WINDOW, SampleRing, pooled
from driftnet.detectors.families.snapshot import (
    SNAPSHOT_VERSION,
    SnapshotError,
    as_float,
    as_list,
    as_mapping,
    pack,
    state_of,
    unpack,
)
from driftnet.detectors.finding import Finding, ReferenceKind, Severity
from driftnet.detectors.settings import CostSettings, DetectorSettings, LatencySettings
from driftnet.detectors.stats import mann_whitney_greater_p
from driftnet.detectors.windowing.partials import Partial

S = TypeVar("S")

DEFAULT_SETTINGS = DetectorSettings()
"""Shared by every detector built without settings (frozen, so sharing is safe)."""


class Detector(ABC):
    """Base of every detector; constructor arguments are public attributes of the same name.
    Slotted: 20 detectors for each of 10,000 cohorts make per-object dicts count."""

    __slots__ = ("_findings", "settings")

    name: str
    """The registered, versioned name, e.g. ``latency.p95.v1``."""

    def __init__(self, settings: DetectorSettings | None = None) -> None:
        self.settings = settings or DEFAULT_SETTINGS
        self._findings: tuple[Finding, ...] = ()

    @abstractmethod
    def update(self, window: Partial, baseline: Partial | None = None) -> Self:
        """Judge one closed window; the findings are in :attr:`findings` until the next update."""

    @abstractmethod
    def reset(self) -> None:
        """Forget every window seen."""

    @property
    def findings(self) -> tuple[Finding, ...]:
        """What the last update found (empty: nothing moved)."""
        return self._findings

    @property
    def drift_detected(self) -> bool:
        """Whether the last update found anything."""
        return bool(self._findings)

    def snapshot(self) -> dict[str, Any]:
        """What this detector has learned, JSON-able: ``{"detector": name, "version": N,
        "state": ...}``. Its size is bounded by the reference (``reference_windows``), not by
        the windows ever seen."""
        return {"detector": self.name, "version": SNAPSHOT_VERSION, "state": self._state()}

    def restore(self, snapshot: Mapping[str, Any]) -> Self:
        """Forget what was learned and take ``snapshot``'s instead (the last findings are
        cleared): the detector then goes on exactly as the one snapshotted. Raises
        :class:`~driftnet.detectors.families.snapshot.SnapshotError` (a ``ValueError``) when
        ``snapshot`` is not a readable snapshot of this detector's name and version, leaving
        the detector as it was."""
        try:
            load = self._parse_state(state_of(snapshot, self.name))
        except SnapshotError as exc:
            raise SnapshotError(f"cannot restore {self.name!r}: {exc}") from None
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise SnapshotError(
                f"cannot restore {self.name!r}: {type(exc).__name__}: {exc}"
            ) from None
        self.reset()
        load()
        return self

    def _state(self) -> Any:
        """The learned state, JSON-able (None: this detector learns nothing)."""
        return None

    def _parse_state(self, state: Any) -> Callable[[], None]:
        """Read ``state`` (raising on anything malformed, changing nothing) and return what
        loads it into the detector once it has been reset."""
        if state is not None:
            raise SnapshotError(f"{self.name!r} keeps no state, got {state!r:.40}")
        return lambda: None

    def _params(self) -> dict[str, Any]:
        names = inspect.signature(type(self).__init__).parameters
        return {name: getattr(self, name) for name in names if name != "self"}

    def clone(self) -> Self:
        """A new detector with the same parameters and nothing learned."""
        return type(self)(**self._params())

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self._params().items() if k != "settings")
        return f"{type(self).__name__}({params})"


class WindowedDetector(Detector, Generic[S]):
    """A detector whose reference is a ring of per-window summaries."""

    __slots__ = ("_history",)

    def __init__(self, settings: DetectorSettings | None = None) -> None:
        super().__init__(settings)
        self._history: list[S] = []
        """The trailing windows' summaries, oldest first (a list: a deque's 64-slot block
        would cost 0.5 KB per detector, 10 MB per 1,000 cohorts)."""

    @abstractmethod
    def summarize(self, window: Partial) -> S:
        """The little this detector remembers of a window."""

    @abstractmethod
    def judge(
        self, window: Partial, current: S, reference: Sequence[S], kind: ReferenceKind
    ) -> list[Finding]:
        """Findings of ``current`` (the summary of ``window``) against ``reference``."""

    def update(self, window: Partial, baseline: Partial | None = None) -> Self:
        current = self.summarize(window)
        findings: list[Finding] = []
        judgeable = self.judgeable(window, current)
        minimum, size = self.settings.min_reference_windows, self.history_size
        # The reference is read only when a test can use it: most windows of a quiet cohort
        # hold too few values for any, and reading it was most of their cost.
        if size >= minimum and (judgeable or (size > minimum and self._combines)):
            history = self.remembered()
            if judgeable:
                findings += self.judge(window, current, self.long_past() + history, "trailing")
            if not findings and size > minimum:
                findings += self._judge_two_windows(window, current, history)
        if baseline is not None and judgeable:
            findings += self.judge(window, current, [self.summarize(baseline)], "baseline")
        findings += self.judge_absolute(window, current)
        self._findings = tuple(findings)
        self.keep(self.remember(current))
        return self

    def judgeable(self, window: Partial, current: S) -> bool:
        """Whether :meth:`judge` could find anything in ``window`` (summarised as ``current``):
        False only when it finds nothing against any reference of any kind, as for a window
        with fewer values than its test needs; :meth:`update` then reads no reference."""
        return True

    @property
    def _combines(self) -> bool:
        """Whether this detector's summaries add up (:meth:`combine` is overridden)."""
        return type(self).combine is not WindowedDetector.combine

    def remembered(self) -> list[S]:
        """The trailing windows' summaries, oldest first (a new list each call)."""
        return self._history.copy()

    def keep(self, summary: S) -> None:
        """Add a window's summary to the reference, dropping the oldest beyond its length (to
        :meth:`retire`). Detectors with sampled values override this trio to keep them in a
        :class:`SampleRing`."""
        self._history.append(summary)
        for old in self._history[: -self.settings.reference_windows]:
            self.retire(old)
        del self._history[: -self.settings.reference_windows]

    def retire(self, summary: S) -> None:
        """A window's summary leaving the trailing reference: forgotten, unless a detector keeps
        a longer past (:class:`~driftnet.detectors.families.pooled.PooledPast`)."""

    def long_past(self) -> list[S]:
        """Summaries of the windows before the trailing ones that the reference also holds,
        oldest first (none by default)."""
        return []

    def forget(self) -> None:
        """Drop the whole reference."""
        self._history.clear()

    def combine(self, earlier: S, later: S) -> S | None:
        """Two consecutive windows' summaries as one, for detectors whose summaries add up
        (counts); None (the default) when they do not."""
        return None

    def _judge_two_windows(self, window: Partial, current: S, history: list[S]) -> list[Finding]:
        """A change too small to prove in one window is often clear in two: when summaries add
        up, the last two windows are also tested together against the windows before them
        (each test at ``alpha``, so the false-positive rate is at most twice it)."""
        both = self.combine(history[-1], current)
        if both is None:
            return []
        found = self.judge(window, both, self.long_past() + history[:-1], "trailing")
        return [
            f.model_copy(update={"message": f"{f.message}, over the last 2 windows"}) for f in found
        ]

    def remember(self, summary: S) -> S:
        """What of a window's summary goes into the reference (all of it by default)."""
        return summary

    @abstractmethod
    def encode_summary(self, summary: S) -> Any:
        """A remembered summary as JSON-able values (a window of :meth:`snapshot`)."""

    @abstractmethod
    def decode_summary(self, data: Any) -> S:
        """The summary :meth:`encode_summary` gave ``data`` for; raises (``SnapshotError``,
        ``KeyError``, ``TypeError``, ``ValueError``) on anything else."""

    def _state(self) -> Any:
        return {"windows": [self.encode_summary(s) for s in self.remembered()]}

    def _parse_state(self, state: Any) -> Callable[[], None]:
        windows = [self.decode_summary(d) for d in as_list(as_mapping(state)["windows"])]

        def load() -> None:
            for summary in windows:  # beyond reference_windows (settings changed): the newest
                self.keep(summary)

        return load

    def judge_absolute(self, window: Partial, current: S) -> list[Finding]:
        """Findings against absolute limits (SLOs, budgets); none by default."""
        return []

    def reset(self) -> None:
        self.forget()
        self._findings = ()

    @property
    def history_size(self) -> int:
        """Windows in the reference (subclasses that keep it elsewhere count it there)."""
        return len(self._history)

    def finding(
        self,
        window: Partial,
        *,
        metric: str,
        observed: float,
        reference: float | None,
        kind: ReferenceKind,
        threshold: float | None,
        message: str,
        effect_size: float | None = None,
        p_value: float | None = None,
        severity: Severity = "warning",
        example_kind: str | None = None,
    ) -> Finding:
        """A finding about ``window`` with this detector's name and the window's evidence."""
        return Finding(
            detector=self.name,
            cohort=window.cohort,
            window_start=window.window.start,
            window_end=window.window.end,
            metric=metric,
            observed=observed,
            reference=reference,
            reference_kind=kind,
            threshold=threshold,
            effect_size=effect_size,
            p_value=p_value,
            severity=severity,
            message=message,
            example_event_ids=window.example_ids(example_kind) if example_kind else (),
            example_kind=example_kind,
            price_table_version=window.price_table_version if window.priced else None,
        )


@dataclass(frozen=True, slots=True)
class Sampled:
    """A window's summary: one statistic of a numeric feature (None: too few values to tell)
    and a thinned sample of the feature's values."""

    value: float | None
    sample: npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class Increase:
    """A statistic found higher than the reference's and confirmed by a test."""

    observed: float
    reference: float
    """The median of the reference windows' statistics."""
    limit: float
    """What ``observed`` had to pass: ``reference`` raised by the relative increase."""
    p_value: float


class SampledStatisticDetector(WindowedDetector[Sampled]):
    """A detector of one statistic of a numeric feature (a mean, a quantile) whose reference
    keeps each window's statistic and sample in a :class:`SampleRing`."""

    __slots__ = ("_ring",)

    def __init__(self, settings: DetectorSettings | None = None) -> None:
        super().__init__(settings)
        self._ring = SampleRing(self.settings.reference_windows, SAMPLE_PER_WINDOW, 1)

    def remembered(self) -> list[Sampled]:
        return [
            Sampled(None if np.isnan(value) else value, sample[:, 0])
            for sample, value in self._ring.entries()
        ]

    def keep(self, summary: Sampled) -> None:
        value = np.nan if summary.value is None else summary.value
        self._ring.append(summary.sample.reshape(-1, 1), value)

    def forget(self) -> None:
        self._ring.clear()

    @property
    def history_size(self) -> int:
        return len(self._ring)

    def judgeable(self, window: Partial, current: Sampled) -> bool:
        return current.value is not None  # :meth:`confirmed_increase` needs the statistic

    def encode_summary(self, summary: Sampled) -> Any:
        return [summary.value, pack(summary.sample)]

    def decode_summary(self, data: Any) -> Sampled:
        value, sample = as_list(data, 2)
        return Sampled(None if value is None else as_float(value), unpack(sample, np.float32))

    def confirmed_increase(
        self,
        window: Partial,
        feature: str,
        current: Sampled,
        reference: Sequence[Sampled],
        settings: LatencySettings | CostSettings,
    ) -> Increase | None:
        """The increase of ``current``'s statistic over the reference's median when it is more
        than ``relative_increase`` and a one-sided Mann-Whitney U test of the window's sampled
        ``feature`` against the reference's samples raised by ``shift_tolerance`` confirms it
        (p below ``alpha``, at least ``min_samples`` values each side); None otherwise."""
        values = [r.value for r in reference if r.value is not None]
        if current.value is None or not values:
            return None
        before = median(values)
        limit = before * (1 + settings.relative_increase)
        ref_sample = pooled([r.sample for r in reference])
        sample = np.asarray(window.numeric_column(feature), dtype=np.float32)
        if current.value <= limit or min(len(sample), len(ref_sample)) < settings.min_samples:
            return None
        p = mann_whitney_greater_p(sample, ref_sample * np.float32(1 + settings.shift_tolerance))
        if p >= settings.alpha:
            return None
        return Increase(current.value, before, limit, p)

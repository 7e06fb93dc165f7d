"""The canary judge: one verdict per canary cohort per window, valid however often it is read.

A canary is a cohort whose variant is not the baseline variant; it is judged against the
baseline cohort of the same service and environment, window by window. For each metric of
:data:`driftnet.detectors.canary.config.METRICS` (and each evaluation score) every paired
window feeds two e-processes, one per side, each testing "within the tolerance"
(:mod:`~driftnet.detectors.canary.evidence`); the evidence since the canary's first window
classifies the metric and gives the score and the verdict
(:mod:`~driftnet.detectors.canary.scoring`); each failing metric gets a regression pack
(:mod:`~driftnet.detectors.canary.examples`) and a reason
(:mod:`~driftnet.detectors.canary.reasons`). What the judge keeps, and saves for a restarted
worker, is in :mod:`~driftnet.detectors.canary.state`. The statistics and their measured
behaviour: docs/canary-judge.md.

>>> from driftnet.detectors.windowing.partials import Partial
>>> from driftnet.detectors.windowing.windows import Window
>>> judge = CanaryJudge(("chat", "prod", "r2", "canary"), CanarySettings())
>>> canary = Partial.empty(("chat", "prod", "r2", "canary"), Window(0, 60), "*")
>>> baseline = Partial.empty(("chat", "prod", "r1", "baseline"), Window(0, 60), "*")
>>> judge.update(canary, baseline) is None  # no canary traffic, nothing to say
True
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from driftnet.detectors.canary.config import (
    METRICS,
    CanarySettings,
    MetricSpec,
    score_spec,
)
from driftnet.detectors.canary.evidence import feed
from driftnet.detectors.canary.examples import RegressionPack, regression_pack
from driftnet.detectors.canary.reasons import content_gap
from driftnet.detectors.canary.scoring import arm_values, classify, decide, weighted_score
from driftnet.detectors.canary.sequential import EProcess
from driftnet.detectors.canary.state import (
    RECENT_WINDOWS,
    Arm,
    Sides,
    alternatives,
    with_content,
)
from driftnet.detectors.canary.verdict import RECOMMENDATIONS, MetricVerdict, Verdict
from driftnet.detectors.windowing.observation import Cohort
from driftnet.detectors.windowing.partials import Partial

METHOD: Final = (
    "per metric and side, an e-process of 'within the tolerance' mixed over effect sizes and "
    "change windows; a side is shown once its anytime p-value is below alpha/tests (Ville's "
    "inequality: valid under continuous monitoring)"
)


@dataclass(frozen=True, slots=True)
class Judgement:
    verdict: Verdict
    packs: tuple[RegressionPack, ...]


class CanaryJudge:
    """The judge of one canary cohort."""

    def __init__(
        self,
        cohort: Cohort,
        settings: CanarySettings,
        baseline_before: dict[str, int] | None = None,
    ) -> None:
        """``baseline_before``: the baseline's counters
        (:data:`~driftnet.detectors.canary.state.ARM_COUNTERS`) from before the canary's first
        window, so the rate tests know the baseline's rate from the first window on."""
        self.cohort = cohort
        self.settings = settings
        self._before = dict(baseline_before or {})
        self.since: int | None = None
        self.windows = 0
        self.unpaired_windows = 0
        self.last_window_end: int | None = None
        self._canary = Arm()
        self._baseline = Arm()
        self._baseline_release: str | None = None
        self._baseline_variant = settings.baseline_variant
        self._sides: dict[str, Sides] = {}
        self._recent: list[tuple[Arm, Arm]] = []
        """The last :data:`RECENT_WINDOWS` paired windows, each arm's."""
        self._score_slots: list[str] = []
        """The scores judged, in the order they appeared in both arms (never dropped)."""
        self._alpha_per_test = settings.alpha / max(settings.tests, 1)

    STATE_VERSION: Final = 2

    def state(self) -> dict[str, Any]:
        """Everything the judge has learned, JSON-able: a restarted worker that restores it
        (:meth:`restored`) goes on with the same evidence instead of starting again."""
        return {
            "version": self.STATE_VERSION,
            "cohort": list(self.cohort),
            "since": self.since,
            "windows": self.windows,
            "unpaired_windows": self.unpaired_windows,
            "last_window_end": self.last_window_end,
            "baseline": [self._baseline_release, self._baseline_variant],
            "baseline_before": self._before,
            "arms": [self._canary.to_dict(), self._baseline.to_dict()],
            "recent": [[c.to_dict(), b.to_dict()] for c, b in self._recent],
            "score_slots": self._score_slots,
            "sides": {name: sides.to_list() for name, sides in self._sides.items()},
        }

    @classmethod
    def restored(cls, settings: CanarySettings, state: dict[str, Any]) -> CanaryJudge:
        """The judge whose :meth:`state` this is (``ValueError`` when it cannot be read)."""
        try:
            if state.get("version") != cls.STATE_VERSION:
                raise ValueError(f"unknown judge state version {state.get('version')!r}")
            cohort = tuple(str(part) for part in state["cohort"])
            if len(cohort) != 4:
                raise ValueError(f"a cohort has 4 parts, got {cohort!r}")
            judge = cls((cohort[0], cohort[1], cohort[2], cohort[3]), settings)
            judge.since = state["since"]
            judge.windows = int(state["windows"])
            judge.unpaired_windows = int(state["unpaired_windows"])
            judge.last_window_end = state["last_window_end"]
            judge._baseline_release, judge._baseline_variant = state["baseline"]
            judge._before = with_content(
                {str(k): int(v) for k, v in state["baseline_before"].items()}
            )
            judge._canary, judge._baseline = (Arm.from_dict(arm) for arm in state["arms"])
            judge._recent = [(Arm.from_dict(c), Arm.from_dict(b)) for c, b in state["recent"]]
            judge._score_slots = [str(name) for name in state["score_slots"]]
            specs = {spec.name: spec for spec in judge.specs()}
            judge._sides = {
                str(name): Sides.from_list(sides, alternatives(specs[name]))
                for name, sides in state["sides"].items()
                if name in specs  # a metric disabled since: its evidence is dropped
            }
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"unreadable judge state: {exc}") from None
        return judge

    @property
    def alpha_per_test(self) -> float:
        return self._alpha_per_test

    def specs(self) -> list[MetricSpec]:
        """The metrics judged: the enabled fixed ones, then the score slots (the first
        ``max_scores`` scores seen in both arms; a slot is never given back, so a failing score
        cannot be pushed out and no more than ``max_scores`` score tests are ever run)."""
        fixed = [m for m in METRICS if self.settings.metric(m.name).enabled]
        if not self.settings.metric("score").enabled:
            return fixed
        lower = self.settings.lower_is_better_scores
        return fixed + [score_spec(n, n in lower) for n in self._score_slots]

    def _claim_score_slots(self, canary: Partial, baseline: Partial) -> None:
        for name in sorted(set(canary.scores) & set(baseline.scores)):
            if len(self._score_slots) >= self.settings.max_scores:
                return
            if name not in self._score_slots:
                self._score_slots.append(name)

    def update(
        self, canary: Partial, baseline: Partial | None, at: datetime | None = None
    ) -> Verdict | None:
        """Judge one closed window; None when the canary sent nothing in it."""
        judged = self.judge(canary, baseline, at)
        return None if judged is None else judged.verdict

    def judge(
        self, canary: Partial, baseline: Partial | None, at: datetime | None = None
    ) -> Judgement | None:
        """:meth:`update`, with the regression packs of the failing metrics."""
        if canary.cohort != self.cohort:
            raise ValueError(f"window of {canary.cohort} fed to the judge of {self.cohort}")
        if canary.count == 0:
            return None
        if self.last_window_end is not None and canary.window.end <= self.last_window_end:
            return None  # a window judged already (a replay): its verdict was sent
        paired = baseline is not None and baseline.count > 0
        if not paired and not self.windows:
            return None  # never compared yet (no baseline traffic): nothing to say
        self.last_window_end = canary.window.end
        if self.since is None:
            self.since = canary.window.start
        if baseline is not None and paired:
            self.windows += 1
            self._baseline_release = baseline.cohort[2]
            self._baseline_variant = baseline.cohort[3]
            self._claim_score_slots(canary, baseline)
            self._test(canary, baseline)  # before the window joins the cumulative arms
            self._canary.add(canary)
            self._baseline.add(baseline)
            recent_canary, recent_baseline = Arm(), Arm()
            recent_canary.add(canary)
            recent_baseline.add(baseline)
            self._recent = [*self._recent, (recent_canary, recent_baseline)][-RECENT_WINDOWS:]
        else:
            self.unpaired_windows += 1
        recent = (
            Arm.pooled(c for c, _ in self._recent),
            Arm.pooled(b for _, b in self._recent),
        )
        metrics = [
            self._metric(spec, canary, baseline if paired else None, recent)
            for spec in self.specs()
        ]
        verdict = self._verdict(canary, metrics, at)
        packs = (
            tuple(self._pack(m, canary, baseline) for m in verdict.failing)
            if baseline is not None and paired
            else ()
        )
        return Judgement(verdict, tuple(p for p in packs if p.canary))

    # -- evidence --------------------------------------------------------------------------

    def _sides_of(self, spec: MetricSpec) -> Sides:
        sides = self._sides.get(spec.name)
        if sides is None:
            size = alternatives(spec)
            sides = self._sides[spec.name] = Sides(EProcess(size), EProcess(size))
        return sides

    def _test(self, canary: Partial, baseline: Partial) -> None:
        """Feed this window to every metric's e-processes (the cumulative arms do not hold it
        yet: what a test fixes in advance comes from the windows before)."""
        for spec in self.specs():
            rule = self.settings.metric(spec.name)
            feed(spec, self._sides_of(spec), rule, canary, baseline, self._baseline, self._before)

    # -- classification ----------------------------------------------------------------------

    def _metric(
        self,
        spec: MetricSpec,
        canary: Partial,
        baseline: Partial | None,
        recent_arms: tuple[Arm, Arm],
    ) -> MetricVerdict:
        return classify(
            spec,
            self.settings.metric(spec.name),
            self._sides_of(spec),
            self.alpha_per_test,
            cumulative=arm_values(spec, self._canary, self._baseline),
            recent=arm_values(spec, *recent_arms),
            window=arm_values(spec, canary, baseline),
        )

    def _verdict(
        self, canary: Partial, metrics: list[MetricVerdict], at: datetime | None
    ) -> Verdict:
        settings = self.settings
        score = weighted_score(metrics, settings.weights.model_dump())
        outcome, reasons = decide(settings, metrics, score, self._canary.requests, self.windows)
        gap = content_gap(self._canary, self._baseline)
        if gap is not None:
            reasons.append(gap)
        service, environment, release, variant = self.cohort
        return Verdict(
            service=service,
            environment=environment,
            release=release,
            variant=variant,
            baseline_release=self._baseline_release,
            baseline_variant=self._baseline_variant,
            window_start=canary.window.start,
            window_end=canary.window.end,
            since=self.since if self.since is not None else canary.window.start,
            windows=self.windows,
            unpaired_windows=self.unpaired_windows,
            canary_requests=self._canary.requests,
            baseline_requests=self._baseline.requests,
            score=score,
            verdict=outcome,
            recommendation=RECOMMENDATIONS[outcome],
            reasons=tuple(reasons),
            metrics=tuple(metrics),
            alpha=settings.alpha,
            method=METHOD,
            decided_at=at,
        )

    def _pack(
        self, metric: MetricVerdict, canary: Partial, baseline: Partial | None
    ) -> RegressionPack:
        spec = next((s for s in self.specs() if s.name == metric.metric), None)
        return regression_pack(metric, spec, canary, baseline)

"""The canary judge: one verdict per canary cohort per window, valid however often it is read.

A canary is a cohort whose variant is not the baseline variant; it is judged against the
baseline cohort of the same service and environment, window by window. For each metric of
:data:`driftnet.detectors.canary.config.METRICS` (and each evaluation score) a window gives a statistic
computed from every request of both arms (:mod:`driftnet.detectors.canary.two_arm`); the statistic feeds two
e-processes (:mod:`driftnet.detectors.canary.sequential`) that accumulate the evidence since the canary's first
window. Each side tests its null *with the tolerance built in*: the increase side tests "the
canary is at most ``tolerance`` worse", the decrease side "at most ``tolerance`` better":

- quantiles (latency, time to first token) and medians (cost, tokens): the canary's values
  moved down (up) by the tolerance, in whole sketch bins, rounded so the tolerance tested is
  never smaller than asked, then the exact exceedance count;
- rates: the exact count test against the odds ratio that adds (removes) the tolerance at the
  baseline's rate known from the windows before (so it is fixed before the window is seen);
- score means: the difference minus (plus) the tolerance over its pooled standard error,
  batched until each arm has :data:`SCORE_BATCH` scores (a normal approximation);
- drift: calibrated p-values of "no difference", and the statistic must reach the tolerance.

Classification (Kayenta's classes, anytime-valid tests):

- **Nodata**: an arm has fewer than the metric's ``min_samples`` values so far.
- **High** / **Low**: that side's anytime-valid p-value has gone below ``alpha / tests``: the
  change is beyond the tolerance, and stays established for the rest of the rollout. The bad
  side is read first.
- **Pass**: otherwise.

A metric is *failing* when it is High and an increase is bad, or Low and a decrease is bad.
Each metric's bad side is tested at ``alpha / tests`` (Bonferroni over the metrics), and each
test keeps its level over the whole rollout, so the chance that a canary within every
tolerance of its baseline ever gets a failing metric -- hence ever a Fail -- is at most
``alpha`` (exactly for the count tests; approximately for score means).

Score: per group, the share of its judged metrics that are not failing; the weighted mean over
groups with a judged metric, times 100. Verdict: Fail when a critical metric fails (as soon as
it has its minimum samples, even before the minimum traffic: the evidence is valid at any
time); else Inconclusive until the canary has ``min_canary_requests`` and ``min_windows``; else
Fail below ``marginal_score``, Marginal below ``pass_score``, Pass.

>>> from driftnet.detectors.windowing.partials import Partial
>>> from driftnet.detectors.windowing.windows import Window
>>> judge = CanaryJudge(("chat", "prod", "r2", "canary"), CanarySettings())
>>> canary = Partial.empty(("chat", "prod", "r2", "canary"), Window(0, 60), "*")
>>> baseline = Partial.empty(("chat", "prod", "r1", "baseline"), Window(0, 60), "*")
>>> judge.update(canary, baseline) is None  # no canary traffic, nothing to say
True
"""

from __future__ import annotations

import bisect
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

import numpy as np

from driftnet.detectors.canary.config import (
    METRICS,
    CanarySettings,
    MetricSpec,
    score_spec,
)
from driftnet.detectors.canary.sequential import (
    EFFECT_SIZES,
    KAPPAS,
    ODDS_RATIOS,
    EProcess,
    calibrated_log_e,
    gaussian_log_lr,
    hypergeometric_log_lr,
)
from driftnet.detectors.canary.two_arm import bins_for, drift_p_value, exceedances, mean_difference
from driftnet.detectors.canary.verdict import (
    RECOMMENDATIONS,
    ArmValues,
    Classification,
    MetricVerdict,
    Outcome,
    Verdict,
)
from driftnet.detectors.windowing.observation import Cohort
from driftnet.detectors.windowing.partials import Partial, ScoreStats
from driftnet.detectors.windowing.samples import Example, typical_kind
from driftnet.detectors.windowing.sketch import Sketch

METHOD: Final = (
    "per metric and side, an e-process of 'within the tolerance' mixed over effect sizes and "
    "change windows; a side is shown once its anytime p-value is below alpha/tests (Ville's "
    "inequality: valid under continuous monitoring)"
)
RECENT_WINDOWS: Final = 3
"""Paired windows whose pooled values are reported beside the cumulative ones: a change that
began late in a long rollout shows there first."""
SCORE_BATCH: Final = 100
"""Scores each arm needs before a batch of windows feeds the score test: the normal
approximation of a difference of means needs them (a few scores a window, all 0 or 1, would
otherwise look like overwhelming evidence)."""
_LOG_ODDS_UP = np.log(np.array(ODDS_RATIOS))
_EFFECTS_UP = np.array(EFFECT_SIZES)
_KAPPAS = np.array(KAPPAS)
_RATE_TOTALS: Final = {"errors": "count", "refusals": "with_content", "negative_feedback": "rated"}
"""Each rate's denominator: refusals are counted among the answers whose content was captured
(absent is not empty: a canary that stops sending content leaves its refusal rate unmeasured,
Nodata, rather than at zero)."""
ARM_COUNTERS: Final = ("errors", "refusals", "with_content", "negative_feedback", "rated", "count")
"""The counters an arm keeps (and the baseline's counters from before a canary's start)."""
CONTENT_GAP: Final = 0.5
"""A canary whose share of answers with captured content is this much below the baseline's
gets a reason saying its content-based metrics are unmeasured."""
_TESTS: Final = {
    "quantile": "exceedances over the pooled quantile, canary moved by the tolerance (exact)",
    "median": "exceedances over the pooled median, canary moved by the tolerance (exact)",
    "rate": "share of the bad requests against the tolerance's odds ratio (exact)",
    "score": "difference of means minus the tolerance, pooled variance (normal, batched)",
    "drift": "KS / chi-squared on the sampled features, p-values calibrated to e-values",
}


@dataclass(slots=True)
class _Arm:
    """What one arm has shown since the canary's first paired window."""

    requests: int = 0
    counters: dict[str, int] = field(default_factory=dict)
    sketches: dict[str, Sketch] = field(default_factory=dict)
    sums: dict[str, float] = field(default_factory=dict)
    scores: dict[str, ScoreStats] = field(default_factory=dict)

    def add(self, window: Partial) -> None:
        self.requests += window.count
        for name in ARM_COUNTERS:
            self.counters[name] = self.counters.get(name, 0) + getattr(window, name)
        for name, sketch in window.sketches.items():
            mine = self.sketches.get(name)
            if mine is None:
                mine = self.sketches[name] = Sketch(sketch.relative_accuracy)
            mine.merge(sketch)
        for name, total in _sums(window).items():
            self.sums[name] = self.sums.get(name, 0.0) + total
        for name, stats in window.scores.items():
            self.scores.setdefault(name, ScoreStats()).merge(stats)

    @classmethod
    def pooled(cls, arms: Iterable[_Arm]) -> _Arm:
        """One arm holding everything ``arms`` hold."""
        total = cls()
        for arm in arms:
            total.requests += arm.requests
            for name, count in arm.counters.items():
                total.counters[name] = total.counters.get(name, 0) + count
            for name, sketch in arm.sketches.items():
                mine = total.sketches.get(name)
                if mine is None:
                    mine = total.sketches[name] = Sketch(sketch.relative_accuracy)
                mine.merge(sketch)
            for name, value in arm.sums.items():
                total.sums[name] = total.sums.get(name, 0.0) + value
            for name, stats in arm.scores.items():
                total.scores.setdefault(name, ScoreStats()).merge(stats)
        return total

    def to_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "counters": self.counters,
            "sketches": {name: sketch.to_dict() for name, sketch in self.sketches.items()},
            "sums": self.sums,
            "scores": {n: [s.n, s.total, s.squares, s.breaches] for n, s in self.scores.items()},
        }

    @property
    def content_share(self) -> float | None:
        """The share of this arm's answers whose content was captured (None: no answers)."""
        answered = self.counters.get("count", 0) - self.counters.get("errors", 0)
        return self.counters.get("with_content", 0) / answered if answered > 0 else None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> _Arm:
        return cls(
            requests=int(data["requests"]),
            counters=_with_content({str(k): int(v) for k, v in data["counters"].items()}),
            sketches={str(k): Sketch.from_dict(v) for k, v in data["sketches"].items()},
            sums={str(k): float(v) for k, v in data["sums"].items()},
            scores={
                str(k): ScoreStats(int(n), float(t), float(q), int(b))
                for k, (n, t, q, b) in data["scores"].items()
            },
        )


def _sums(window: Partial) -> dict[str, float]:
    return {
        "cost_usd": window.cost_sum,
        "input_tokens": window.input_tokens_sum,
        "output_tokens": window.output_tokens_sum,
    }


@dataclass(slots=True)
class _Sides:
    up: EProcess
    down: EProcess
    statistic: float | None = None
    """Drift only: the window's largest statistic."""
    batch: tuple[ScoreStats, ScoreStats] | None = None
    """Scores only: what the windows since the last test brought, per arm."""

    def to_list(self) -> list[Any]:
        batch = None if self.batch is None else [
            [b.n, b.total, b.squares, b.breaches] for b in self.batch
        ]  # fmt: skip
        return [self.up.to_list(), self.down.to_list(), self.statistic, batch]

    @classmethod
    def from_list(cls, data: list[Any], size: int) -> _Sides:
        up, down = EProcess.from_list(data[0]), EProcess.from_list(data[1])
        if up.alternatives != size or down.alternatives != size:
            raise ValueError(f"{up.alternatives} alternatives, expected {size}")
        batch = None
        if data[3] is not None:
            c, b = (ScoreStats(int(n), float(t), float(q), int(r)) for n, t, q, r in data[3])
            batch = (c, b)
        return cls(up, down, None if data[2] is None else float(data[2]), batch)


def _alternatives(spec: MetricSpec) -> int:
    if spec.test == "drift":
        return len(KAPPAS)
    if spec.test == "score":
        return len(EFFECT_SIZES)
    return len(ODDS_RATIOS)


@dataclass(frozen=True, slots=True)
class RegressionPack:
    """What to harvest for one failing metric of a verdict: the canary's worst requests of the
    window and, for each, baseline requests of the same input-size bucket."""

    metric: MetricVerdict
    canary: tuple[Example, ...]
    baseline: tuple[Example, ...]


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
        """``baseline_before``: the baseline's counters (:data:`ARM_COUNTERS`) from before the canary's first window, so the rate
        tests know the baseline's rate from the first window on."""
        self.cohort = cohort
        self.settings = settings
        self._before = dict(baseline_before or {})
        self.since: int | None = None
        self.windows = 0
        self.unpaired_windows = 0
        self.last_window_end: int | None = None
        self._canary = _Arm()
        self._baseline = _Arm()
        self._baseline_release: str | None = None
        self._baseline_variant = settings.baseline_variant
        self._sides: dict[str, _Sides] = {}
        self._recent: list[tuple[_Arm, _Arm]] = []
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
            judge._before = _with_content(
                {str(k): int(v) for k, v in state["baseline_before"].items()}
            )
            judge._canary, judge._baseline = (_Arm.from_dict(arm) for arm in state["arms"])
            judge._recent = [(_Arm.from_dict(c), _Arm.from_dict(b)) for c, b in state["recent"]]
            judge._score_slots = [str(name) for name in state["score_slots"]]
            specs = {spec.name: spec for spec in judge.specs()}
            judge._sides = {
                str(name): _Sides.from_list(sides, _alternatives(specs[name]))
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
            recent_canary, recent_baseline = _Arm(), _Arm()
            recent_canary.add(canary)
            recent_baseline.add(baseline)
            self._recent = [*self._recent, (recent_canary, recent_baseline)][-RECENT_WINDOWS:]
        else:
            self.unpaired_windows += 1
        recent = (
            _Arm.pooled(c for c, _ in self._recent),
            _Arm.pooled(b for _, b in self._recent),
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

    def _sides_of(self, spec: MetricSpec) -> _Sides:
        sides = self._sides.get(spec.name)
        if sides is None:
            size = _alternatives(spec)
            sides = self._sides[spec.name] = _Sides(EProcess(size), EProcess(size))
        return sides

    def _test(self, canary: Partial, baseline: Partial) -> None:
        """Feed this window to every metric's e-processes (the cumulative arms do not hold it
        yet: what a test fixes in advance comes from the windows before)."""
        for spec in self.specs():
            sides = self._sides_of(spec)
            tolerance = self.settings.metric(spec.name).tolerance
            if spec.test in ("quantile", "median"):
                self._test_quantile(spec, sides, tolerance, canary, baseline)
            elif spec.test == "rate":
                self._test_rate(spec, sides, tolerance, canary, baseline)
            elif spec.test == "score":
                self._test_score(spec, sides, tolerance, canary, baseline)
            else:
                rule = self.settings.metric(spec.name)
                drift = drift_p_value(canary, baseline, rule.min_samples)
                if drift.tested:
                    sides.up.update(calibrated_log_e(drift.p_value, _KAPPAS))
                    sides.statistic = drift.statistic

    @staticmethod
    def _test_quantile(
        spec: MetricSpec, sides: _Sides, tolerance: float, canary: Partial, baseline: Partial
    ) -> None:
        mine, theirs = canary.sketches[spec.feature], baseline.sketches[spec.feature]
        n_c, n_b = mine.count, theirs.count
        if n_c == 0 or n_b == 0:
            return
        q = spec.quantile if spec.quantile is not None else 0.5
        accuracy = mine.relative_accuracy
        sides_and_shifts = [(sides.up, -bins_for(tolerance, accuracy), _LOG_ODDS_UP)]
        if tolerance < 1:  # a decrease of 100% or more cannot happen
            down = bins_for(1 / (1 - tolerance) - 1, accuracy)
            sides_and_shifts.append((sides.down, down, -_LOG_ODDS_UP))
        for process, shift, log_odds in sides_and_shifts:
            hits, total = exceedances(mine, theirs, q, shift)
            if 0 < total < n_c + n_b:
                process.update(hypergeometric_log_lr(hits, n_c, n_b, total, log_odds))

    def _test_rate(
        self,
        spec: MetricSpec,
        sides: _Sides,
        tolerance: float,
        canary: Partial,
        baseline: Partial,
    ) -> None:
        denominator = _RATE_TOTALS[spec.feature]
        hits = getattr(canary, spec.feature)
        total = hits + getattr(baseline, spec.feature)
        n_c, n_b = getattr(canary, denominator), getattr(baseline, denominator)
        seen = self._baseline.counters.get(denominator, 0) + self._before.get(denominator, 0)
        if n_c == 0 or n_b == 0 or total == 0 or total == n_c + n_b or not seen:
            return  # no information, or no baseline rate known before this window
        known = self._baseline.counters.get(spec.feature, 0) + self._before.get(spec.feature, 0)
        rate = (known + 0.5) / (seen + 1)
        for process, target, sign in (
            (sides.up, rate + tolerance, 1.0),
            (sides.down, rate - tolerance, -1.0),
        ):
            if not 0 < target < 1:
                continue  # the tolerance reaches past 0 or 1: that side cannot be shown
            null = math.log(target / (1 - target)) - math.log(rate / (1 - rate))
            log_odds = null + sign * _LOG_ODDS_UP
            process.update(
                hypergeometric_log_lr(hits, n_c, n_b, total, log_odds)
                - hypergeometric_log_lr(hits, n_c, n_b, total, np.array([null]))
            )

    @staticmethod
    def _test_score(
        spec: MetricSpec, sides: _Sides, tolerance: float, canary: Partial, baseline: Partial
    ) -> None:
        batch = sides.batch or (ScoreStats(), ScoreStats())
        batch[0].merge(canary.scores.get(spec.feature, ScoreStats()))
        batch[1].merge(baseline.scores.get(spec.feature, ScoreStats()))
        if min(batch[0].n, batch[1].n) < SCORE_BATCH:
            sides.batch = batch
            return
        sides.batch = None
        for process, shift, effects in (
            (sides.up, tolerance, _EFFECTS_UP),
            (sides.down, -tolerance, -_EFFECTS_UP),
        ):
            z, information = mean_difference(batch[0], batch[1], shift)
            if information:
                process.update(gaussian_log_lr(z, information, effects))

    # -- classification ----------------------------------------------------------------------

    def _values(self, spec: MetricSpec, canary: _Arm | Partial, baseline: _Arm | Partial | None
                ) -> ArmValues:  # fmt: skip
        def one(arm: _Arm | Partial | None) -> tuple[float | None, int]:
            if arm is None:
                return None, 0
            if spec.test == "quantile":
                sketch = arm.sketches.get(spec.feature)
                if sketch is None or not sketch.count:
                    return None, 0
                assert spec.quantile is not None
                return sketch.quantile(spec.quantile), sketch.count
            if spec.test == "rate":
                total = _counter(arm, _RATE_TOTALS[spec.feature])
                hits = _counter(arm, spec.feature)
                return (hits / total if total else None), total
            if spec.test == "median":
                sketch = arm.sketches.get(spec.feature)
                n = sketch.count if sketch is not None else 0
                summed = (arm.sums.get(spec.feature, 0.0) if isinstance(arm, _Arm)
                          else _sums(arm)[spec.feature])  # fmt: skip
                return (summed / n if n else None), n
            if spec.test == "score":
                stats = arm.scores.get(spec.feature)
                return (stats.mean, stats.n) if stats is not None else (None, 0)
            return None, arm.requests if isinstance(arm, _Arm) else arm.count

        c, n_c = one(canary)
        b, n_b = one(baseline)
        return ArmValues(canary=c, baseline=b, canary_n=n_c, baseline_n=n_b)

    def _metric(
        self,
        spec: MetricSpec,
        canary: Partial,
        baseline: Partial | None,
        recent_arms: tuple[_Arm, _Arm],
    ) -> MetricVerdict:
        rule = self.settings.metric(spec.name)
        cumulative = self._values(spec, self._canary, self._baseline)
        recent = self._values(spec, *recent_arms)
        window = self._values(spec, canary, baseline)
        sides = self._sides_of(spec)
        alpha = self.alpha_per_test
        if spec.test == "drift":
            effect = recent_effect = sides.statistic
        else:
            effect, recent_effect = _effect(spec, cumulative), _effect(spec, recent)
        bad_class: Classification = "High" if spec.bad == "increase" else "Low"
        good_class: Classification = "Low" if spec.bad == "increase" else "High"
        bad_side = sides.up if spec.bad == "increase" else sides.down
        good_side = sides.down if spec.bad == "increase" else sides.up
        classification: Classification = "Pass"
        if min(cumulative.canary_n, cumulative.baseline_n) < rule.min_samples:
            classification = "Nodata"
        elif spec.test == "drift":
            if (
                sides.up.p_value <= alpha
                and sides.statistic is not None
                and sides.statistic >= rule.tolerance
            ):
                classification = "High"
        elif bad_side.p_value <= alpha:
            classification = bad_class
        elif good_side.p_value <= alpha:
            classification = good_class
        bad, other = (sides.up, sides.down) if spec.bad == "increase" else (sides.down, sides.up)
        failing = classification == ("High" if spec.bad == "increase" else "Low")
        return MetricVerdict(
            metric=spec.name,
            group=spec.group,
            bad_direction=spec.bad,
            critical=rule.critical,
            classification=classification,
            failing=failing,
            unit=spec.unit,
            cumulative=cumulative,
            recent=recent,
            window=window,
            effect=effect,
            recent_effect=recent_effect,
            relative=spec.relative,
            tolerance=rule.tolerance,
            e_value=_rounded(bad.value),
            e_value_other_side=None if spec.test == "drift" else _rounded(other.value),
            e_threshold=_rounded(1 / alpha),
            p_value=bad.p_value,
            test=_TESTS[spec.test],
        )

    def _verdict(
        self, canary: Partial, metrics: list[MetricVerdict], at: datetime | None
    ) -> Verdict:
        settings = self.settings
        judged = [m for m in metrics if m.classification != "Nodata"]
        weights = settings.weights.model_dump()
        groups: dict[str, list[MetricVerdict]] = {}
        for metric in judged:
            groups.setdefault(metric.group, []).append(metric)
        weight = sum(weights[g] for g in groups)
        score = (
            round(
                100
                * sum(
                    weights[g] * sum(not m.failing for m in ms) / len(ms)
                    for g, ms in groups.items()
                )
                / weight,
                1,
            )
            if weight
            else None
        )
        failing = [m for m in metrics if m.failing]
        critical = [m for m in failing if m.critical]
        reasons = [describe(m) for m in sorted(failing, key=lambda m: not m.critical)]
        outcome: Outcome
        enough = (
            self._canary.requests >= settings.min_canary_requests
            and self.windows >= settings.min_windows
            and score is not None
        )
        if critical:
            outcome = "Fail"
        elif not enough:
            outcome = "Inconclusive"
            reasons.append(
                f"not enough traffic yet: {self._canary.requests} canary requests "
                f"(needs {settings.min_canary_requests}) in {self.windows} paired windows "
                f"(needs {settings.min_windows})"
            )
        elif score is not None and score < settings.marginal_score:
            outcome = "Fail"
            reasons.insert(0, f"score {score:g} below {settings.marginal_score:g}")
        elif score is not None and score < settings.pass_score:
            outcome = "Marginal"
            reasons.insert(0, f"score {score:g} below {settings.pass_score:g}")
        else:
            outcome = "Pass"
        gap = _content_gap(self._canary, self._baseline)
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
        if spec is None or spec.example_kind is None or baseline is None:
            return RegressionPack(metric, (), ())
        worst = tuple(canary.examples.of(spec.example_kind))
        return RegressionPack(metric, worst, matched_examples(baseline, worst))


def matched_examples(baseline: Partial, canary_examples: Iterable[Example]) -> tuple[Example, ...]:
    """For each canary example, a baseline example of the same input-size bucket (the nearest
    bucket with one when that one is empty), each baseline request used once."""
    buckets = len(baseline.settings.input_size_buckets) + 1
    pools = {b: list(baseline.examples.of(typical_kind(b))) for b in range(buckets)}
    chosen: list[Example] = []
    for example in canary_examples:
        bucket = _input_bucket(example, baseline.settings.input_size_buckets)
        order = sorted(range(buckets), key=lambda b: (abs(b - bucket), b))
        for candidate in order:
            if pools[candidate]:
                chosen.append(pools[candidate].pop(0))
                break
    return tuple(chosen)


def _input_bucket(example: Example, edges: tuple[int, ...]) -> int:
    try:
        usage = json.loads(example.raw).get("usage") or {}
        tokens = int(usage["input_tokens"])
    except (TypeError, ValueError, AttributeError, KeyError):
        return 0
    return bisect.bisect_right(edges, tokens)


def _with_content(counters: dict[str, int]) -> dict[str, int]:
    """Counters saved before ``with_content`` existed: every answer had its content counted."""
    if "with_content" not in counters and "count" in counters:
        counters["with_content"] = counters["count"] - counters.get("errors", 0)
    return counters


def _content_gap(canary: _Arm, baseline: _Arm) -> str | None:
    """A reason when the canary sends its answers' content far less often than the baseline
    (its refusal rate is then unmeasured, not zero: never a quality win)."""
    mine, theirs = canary.content_share, baseline.content_share
    if mine is None or theirs is None or theirs - mine < CONTENT_GAP:
        return None
    answered = canary.counters.get("count", 0) - canary.counters.get("errors", 0)
    return (
        f"content not captured: the canary sent its answers' content in {mine:.0%} of "
        f"{answered:,} answered requests (baseline {theirs:.0%}); refusal_rate is unmeasured"
    )


def _counter(arm: _Arm | Partial, name: str) -> int:
    if isinstance(arm, _Arm):
        return arm.counters.get(name, 0)
    value: int = getattr(arm, name)
    return value


def _effect(spec: MetricSpec, values: ArmValues) -> float | None:
    if values.canary is None or values.baseline is None:
        return None
    if spec.relative:
        return values.canary / values.baseline - 1 if values.baseline > 0 else None
    return values.canary - values.baseline


def _rounded(value: float) -> float:
    return float(f"{value:.4g}")


def describe(metric: MetricVerdict) -> str:
    """One sentence on a metric: its class, both arms' values, the change and the evidence."""
    effect, over = metric.headline()
    values = metric.recent if over == "recent" else metric.cumulative
    if metric.metric == "drift":
        return f"drift {metric.classification}: features differ from the baseline's (statistic {effect:.2f})"
    change = (
        f"{effect:+.0%}" if metric.relative and effect is not None
        else f"{effect * 100:+.2f} points" if metric.unit == "share" and effect is not None
        else f"{effect:+.3g}" if effect is not None else "?"
    )  # fmt: skip
    critical = "critical metric " if metric.critical else ""
    return (
        f"{critical}{metric.metric} {metric.classification}: canary {_show(values.canary, metric.unit)} "
        f"vs baseline {_show(values.baseline, metric.unit)} ({change}"
        f"{f' over the last {RECENT_WINDOWS} windows' if over == 'recent' else ''}; "
        f"e-value {metric.e_value:g} >= {metric.e_threshold:g})"
    )


def _show(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "ms":
        return f"{value:,.0f} ms"
    if unit == "share":
        return f"{value:.2%}"
    if unit == "usd":
        return f"${value:.4g}"
    if unit == "tokens":
        return f"{value:,.0f} tokens"
    return f"{value:.3g}"

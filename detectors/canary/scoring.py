"""From evidence to verdict: each metric's class, the score over the groups, and the outcome.

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
time), or when a failing metric's evidence is *decisive* (its largest e-value has reached its
``decisive_e_value``: 1000 for latency_p50 and ttft_p50, a chance of at most 0.1% for a metric
within its tolerance, by Ville's inequality), again before the minimum traffic; else
Inconclusive until the canary has ``min_canary_requests`` and ``min_windows``; else Fail below
``marginal_score``, Marginal below ``pass_score``, Pass.
"""

from __future__ import annotations

from collections.abc import Mapping

from driftnet.detectors.canary.config import CanarySettings, MetricRule, MetricSpec
from driftnet.detectors.canary.evidence import TESTS
from driftnet.detectors.canary.reasons import (
    decisive_evidence,
    describe,
    failed_early,
    not_enough_traffic,
    score_below,
)
from driftnet.detectors.canary.state import RATE_TOTALS, Arm, Sides, window_sums
from driftnet.detectors.canary.verdict import ArmValues, Classification, MetricVerdict, Outcome
from driftnet.detectors.windowing.partials import Partial


def arm_values(spec: MetricSpec, canary: Arm | Partial, baseline: Arm | Partial | None
               ) -> ArmValues:  # fmt: skip
    """A metric's value in each arm (accumulated arms or one window's partials)."""

    def one(arm: Arm | Partial | None) -> tuple[float | None, int]:
        if arm is None:
            return None, 0
        if spec.test == "quantile":
            sketch = arm.sketches.get(spec.feature)
            if sketch is None or not sketch.count:
                return None, 0
            assert spec.quantile is not None
            return sketch.quantile(spec.quantile), sketch.count
        if spec.test == "rate":
            total = _counter(arm, RATE_TOTALS[spec.feature])
            hits = _counter(arm, spec.feature)
            return (hits / total if total else None), total
        if spec.test == "median":
            sketch = arm.sketches.get(spec.feature)
            n = sketch.count if sketch is not None else 0
            summed = (arm.sums.get(spec.feature, 0.0) if isinstance(arm, Arm)
                      else window_sums(arm)[spec.feature])  # fmt: skip
            return (summed / n if n else None), n
        if spec.test == "score":
            stats = arm.scores.get(spec.feature)
            return (stats.mean, stats.n) if stats is not None else (None, 0)
        return None, arm.requests if isinstance(arm, Arm) else arm.count

    c, n_c = one(canary)
    b, n_b = one(baseline)
    return ArmValues(canary=c, baseline=b, canary_n=n_c, baseline_n=n_b)


def classify(
    spec: MetricSpec,
    rule: MetricRule,
    sides: Sides,
    alpha: float,
    cumulative: ArmValues,
    recent: ArmValues,
    window: ArmValues,
) -> MetricVerdict:
    """A metric's verdict: its class from the evidence of ``sides`` at level ``alpha``."""
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
        test=TESTS[spec.test],
    )


def weighted_score(metrics: list[MetricVerdict], weights: Mapping[str, float]) -> float | None:
    """The weighted mean over groups of the share of judged metrics not failing, times 100
    (None: no metric judged yet)."""
    judged = [m for m in metrics if m.classification != "Nodata"]
    groups: dict[str, list[MetricVerdict]] = {}
    for metric in judged:
        groups.setdefault(metric.group, []).append(metric)
    weight = sum(weights[g] for g in groups)
    return (
        round(
            100
            * sum(weights[g] * sum(not m.failing for m in ms) / len(ms) for g, ms in groups.items())
            / weight,
            1,
        )
        if weight
        else None
    )


def decide(
    settings: CanarySettings,
    metrics: list[MetricVerdict],
    score: float | None,
    canary_requests: int,
    windows: int,
) -> tuple[Outcome, list[str]]:
    """The verdict and its reasons, failing critical metrics first."""
    failing = [m for m in metrics if m.failing]
    decisive = decisive_metrics(settings, failing)
    critical = [m for m in failing if m.critical or m in decisive]
    reasons = [describe(m) for m in sorted(failing, key=lambda m: m not in critical)]
    outcome: Outcome
    enough = (
        canary_requests >= settings.min_canary_requests
        and windows >= settings.min_windows
        and score is not None
    )
    if critical:
        outcome = "Fail"
        if decisive:
            reasons.insert(
                len(critical),
                decisive_evidence([(m, decisive_threshold(settings, m.metric)) for m in decisive]),
            )
        if not enough:
            reasons.append(
                failed_early(
                    canary_requests, settings.min_canary_requests, windows, settings.min_windows
                )
            )
    elif not enough:
        outcome = "Inconclusive"
        reasons.append(
            not_enough_traffic(
                canary_requests, settings.min_canary_requests, windows, settings.min_windows
            )
        )
    elif score is not None and score < settings.marginal_score:
        outcome = "Fail"
        reasons.insert(0, score_below(score, settings.marginal_score))
    elif score is not None and score < settings.pass_score:
        outcome = "Marginal"
        reasons.insert(0, score_below(score, settings.pass_score))
    else:
        outcome = "Pass"
    return outcome, reasons


def decisive_metrics(settings: CanarySettings, failing: list[MetricVerdict]) -> list[MetricVerdict]:
    """The failing metrics that are not critical but whose evidence has reached their
    ``decisive_e_value`` (read from the largest e-value so far, ``1 / p_value``: once
    decisive, always)."""
    return [
        m
        for m in failing
        if not m.critical
        and (threshold := decisive_threshold(settings, m.metric)) is not None
        and m.p_value * threshold <= 1
    ]


def decisive_threshold(settings: CanarySettings, metric: str) -> float | None:
    """The e-value at which metric ``metric`` fails the canary on its own (None: never): its
    ``decisive_e_value``, never below the e-value that makes it fail (``tests / alpha``)."""
    wanted = settings.metric(metric).decisive_e_value
    return None if wanted is None else max(wanted, max(settings.tests, 1) / settings.alpha)


def _counter(arm: Arm | Partial, name: str) -> int:
    if isinstance(arm, Arm):
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

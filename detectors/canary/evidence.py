"""The tests by kind: what one paired window adds to a metric's two e-processes.

The statistic of a window is computed from every request of both arms
(:mod:`driftnet.detectors.canary.two_arm`) and feeds two e-processes
(:mod:`driftnet.detectors.canary.sequential`) that accumulate the evidence since the canary's
first window. Each side tests its null *with the tolerance built in*: the increase side tests
"the canary is at most ``tolerance`` worse", the decrease side "at most ``tolerance`` better":

- quantiles (latency, time to first token) and medians (cost, tokens): the canary's values
  moved down (up) by the tolerance, in whole sketch bins, rounded so the tolerance tested is
  never smaller than asked, then the exact exceedance count;
- rates: the exact count test against the odds ratio that adds (removes) the tolerance at the
  baseline's rate known from the windows before (so it is fixed before the window is seen);
- score means: the difference minus (plus) the tolerance over its pooled standard error,
  batched until each arm has :data:`SCORE_BATCH` scores (a normal approximation);
- drift: calibrated p-values of "no difference", and the statistic must reach the tolerance.

docs/canary-judge.md gives the reasoning and the measurements.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Final

import numpy as np

from driftnet.detectors.canary.config import MetricRule, MetricSpec
from driftnet.detectors.canary.sequential import (
    EFFECT_SIZES,
    KAPPAS,
    ODDS_RATIOS,
    calibrated_log_e,
    gaussian_log_lr,
    hypergeometric_log_lr,
)
from driftnet.detectors.canary.state import RATE_TOTALS, Arm, Sides
from driftnet.detectors.canary.two_arm import bins_for, drift_p_value, exceedances, mean_difference
from driftnet.detectors.windowing.partials import Partial
from driftnet.detectors.windowing.score_stats import ScoreStats

SCORE_BATCH: Final = 100
"""Scores each arm needs before a batch of windows feeds the score test: the normal
approximation of a difference of means needs them (a few scores a window, all 0 or 1, would
otherwise look like overwhelming evidence)."""
_LOG_ODDS_UP = np.log(np.array(ODDS_RATIOS))
_EFFECTS_UP = np.array(EFFECT_SIZES)
_KAPPAS = np.array(KAPPAS)
TESTS: Final = {
    "quantile": "exceedances over the pooled quantile, canary moved by the tolerance (exact)",
    "median": "exceedances over the pooled median, canary moved by the tolerance (exact)",
    "rate": "share of the bad requests against the tolerance's odds ratio (exact)",
    "score": "difference of means minus the tolerance, pooled variance (normal, batched)",
    "drift": "KS / chi-squared on the sampled features, p-values calibrated to e-values",
}
"""Each kind of test in a sentence, as a metric's verdict names it."""


def feed(
    spec: MetricSpec,
    sides: Sides,
    rule: MetricRule,
    canary: Partial,
    baseline: Partial,
    baseline_so_far: Arm,
    before: Mapping[str, int],
) -> None:
    """Feed one paired window to a metric's e-processes. ``baseline_so_far`` (the windows
    before this one) and ``before`` (the baseline's counters from before the canary started)
    give the rate tests the baseline's rate, fixed before the window is seen."""
    tolerance = rule.tolerance
    if spec.test in ("quantile", "median"):
        feed_quantile(spec, sides, tolerance, canary, baseline)
    elif spec.test == "rate":
        feed_rate(spec, sides, tolerance, canary, baseline, baseline_so_far, before)
    elif spec.test == "score":
        feed_score(spec, sides, tolerance, canary, baseline)
    else:
        drift = drift_p_value(canary, baseline, rule.min_samples)
        if drift.tested:
            sides.up.update(calibrated_log_e(drift.p_value, _KAPPAS))
            sides.statistic = drift.statistic


def feed_quantile(
    spec: MetricSpec, sides: Sides, tolerance: float, canary: Partial, baseline: Partial
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


def feed_rate(
    spec: MetricSpec,
    sides: Sides,
    tolerance: float,
    canary: Partial,
    baseline: Partial,
    baseline_so_far: Arm,
    before: Mapping[str, int],
) -> None:
    denominator = RATE_TOTALS[spec.feature]
    hits = getattr(canary, spec.feature)
    total = hits + getattr(baseline, spec.feature)
    n_c, n_b = getattr(canary, denominator), getattr(baseline, denominator)
    seen = baseline_so_far.counters.get(denominator, 0) + before.get(denominator, 0)
    if n_c == 0 or n_b == 0 or total == 0 or total == n_c + n_b or not seen:
        return  # no information, or no baseline rate known before this window
    known = baseline_so_far.counters.get(spec.feature, 0) + before.get(spec.feature, 0)
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


def feed_score(
    spec: MetricSpec, sides: Sides, tolerance: float, canary: Partial, baseline: Partial
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

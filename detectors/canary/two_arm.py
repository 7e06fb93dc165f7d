"""Canary vs baseline in one window, on every request: the statistics the judge tests.

Kayenta compares per-interval averages; these read each arm's whole window instead -- the
DDSketch of every latency, cost and token count (exact counts per 4%-wide bin), the exact
error counts, the evaluation scores' sums -- so nothing is pre-averaged and a change in the
tail or in the spread is seen as well as a change of the median.

- :func:`exceedances`: how many of the canary's requests are above the pooled quantile. With no
  difference, which of the pooled requests above any threshold chosen from the pooled values
  are the canary's is a uniformly random subset: the count is hypergeometric, exactly (ties
  included: a bin is wholly on one side). A quantile test (Mood's median test at q = 0.5) that
  a variance-only change of the tail moves. ``shift`` moves the canary's values by whole bins
  first, to test "no more than the tolerance" instead of "no difference".
- :func:`mean_difference`: difference of two means from counts, sums and sums of squares, on
  the pooled variance, as a z statistic.
- :func:`drift_p_value`: the cheap drift tier between the two arms' reservoir samples.

>>> import numpy as np
>>> from driftnet.detectors.windowing.sketch import Sketch
>>> rng = np.random.default_rng(3)
>>> base, canary = Sketch.of(rng.lognormal(6, 0.5, 4_000)), Sketch.of(rng.lognormal(6.3, 0.5, 1_000))
>>> hits, total = exceedances(canary, base, 0.95)
>>> hits / 1_000 > 2 * total / 5_000
True
>>> bins_for(0.1, 0.02)  # a 10% tolerance is 3 bins of a 2%-accurate sketch (12.6%)
3
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from driftnet.detectors.families.drift import RELEASE_FEATURES
from driftnet.detectors.stats import chi_square_counts, ks_statistic, ks_two_sample
from driftnet.detectors.windowing.observation import NUMERIC_FEATURES
from driftnet.detectors.windowing.partials import Partial
from driftnet.detectors.windowing.score_stats import ScoreStats
from driftnet.detectors.windowing.sketch import Sketch

DRIFT_NUMERIC = ("input_tokens", "output_tokens", "input_chars")
"""Numeric features of the drift metric: latency, ttft and cost have their own metrics."""


def bins_for(relative: float, relative_accuracy: float) -> int:
    """Whole bins of a sketch that cover a relative change of ``relative`` (rounded up: a
    tolerance tested this way is never smaller than asked)."""
    gamma = (1 + relative_accuracy) / (1 - relative_accuracy)
    return max(0, math.ceil(math.log1p(relative) / math.log(gamma) - 1e-9))


def _aligned(canary: Sketch, baseline: Sketch, shift: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Counts per bin, the zero bin first, over the union of both sketches' bins; the canary's
    bins moved ``shift`` bins up (down when negative; zero stays zero)."""
    if canary.relative_accuracy != baseline.relative_accuracy:
        raise ValueError("sketches of different accuracy do not line up")
    zeros_c, bins_c = canary.histogram()
    bins_c = [(k + shift, n) for k, n in bins_c]
    zeros_b, bins_b = baseline.histogram()
    keys = sorted({k for k, _ in bins_c} | {k for k, _ in bins_b})
    index = {k: i + 1 for i, k in enumerate(keys)}
    c, b = np.zeros(len(keys) + 1), np.zeros(len(keys) + 1)
    c[0], b[0] = zeros_c, zeros_b
    for k, n in bins_c:
        c[index[k]] = n
    for k, n in bins_b:
        b[index[k]] = n
    return c, b


def exceedances(canary: Sketch, baseline: Sketch, q: float, shift: int = 0) -> tuple[int, int]:
    """``(canary requests above the threshold, all requests above it)`` for the bin edge that
    leaves closest to ``1 - q`` of the pooled requests above it (none: every value in one bin);
    the canary's values moved ``shift`` bins first."""
    c, b = _aligned(canary, baseline, shift)
    pooled = c + b
    total = pooled.sum()
    if total == 0:
        return 0, 0
    above = total - np.cumsum(pooled)  # above[i]: pooled requests in bins after i
    target = (1 - q) * total
    candidates = above[:-1]  # a threshold after the last bin leaves nothing above
    if len(candidates) == 0:
        return 0, 0
    cut = int(np.argmin(np.abs(candidates - target)))
    return round(float(c[cut + 1 :].sum())), round(float(above[cut]))


def mean_difference(
    canary: ScoreStats, baseline: ScoreStats, shift: float = 0.0
) -> tuple[float, float]:
    """``(z, effective sample size)`` of the canary's mean minus ``shift`` against the
    baseline's, on the pooled variance (an arm with no spread of its own -- a few scores, all
    equal -- does not make the error look small); ``(0, 0)`` with fewer than 2 values an arm,
    no variance or a value that is not finite."""
    n_c, n_b = canary.n, baseline.n
    if n_c < 2 or n_b < 2:
        return 0.0, 0.0
    mean_c, mean_b = canary.total / n_c, baseline.total / n_b
    spread = (canary.squares - n_c * mean_c**2) + (baseline.squares - n_b * mean_b**2)
    variance = max(spread, 0.0) / (n_c + n_b - 2)
    se = math.sqrt(variance * (1 / n_c + 1 / n_b))
    z = (mean_c - shift - mean_b) / se if se > 0 else 0.0
    if se == 0 or not math.isfinite(z):
        return 0.0, 0.0
    return z, n_c * n_b / (n_c + n_b)


@dataclass(frozen=True, slots=True)
class DriftTest:
    p_value: float
    """Bonferroni over the features tested: the smallest p times their number (at most 1)."""
    statistic: float
    """The largest KS statistic or total variation distance."""
    feature: str | None
    tested: int


def drift_p_value(canary: Partial, baseline: Partial, min_samples: int) -> DriftTest:
    """KS per numeric feature of :data:`DRIFT_NUMERIC`, chi-squared per categorical feature
    (finish reason, chosen attributes; not the ones a release sets by design), on the two
    arms' reservoir samples of the window."""
    tests: list[tuple[str, float, float]] = []
    for feature in DRIFT_NUMERIC:
        index = NUMERIC_FEATURES.index(feature)
        a = canary.reservoir.numeric_column(index)
        b = baseline.reservoir.numeric_column(index)
        if min(len(a), len(b)) >= min_samples:
            tests.append((feature, ks_statistic(a, b), ks_two_sample(a, b)[1]))
    for feature in canary.categorical:
        if feature in RELEASE_FEATURES or feature not in baseline.categorical:
            continue
        mine, theirs = canary.categorical_column(feature), baseline.categorical_column(feature)
        if min(len(mine), len(theirs)) < min_samples:
            continue
        values = sorted(set(mine) | set(theirs))
        counts = _counts(mine, values)
        ref_counts = _counts(theirs, values)
        distance, p = chi_square_counts(counts, ref_counts)
        tests.append((feature, distance, p))
    if not tests:
        return DriftTest(1.0, 0.0, None, 0)
    feature, statistic, _ = max(tests, key=lambda t: t[1])
    p = min(1.0, min(t[2] for t in tests) * len(tests))
    return DriftTest(p, statistic, feature, len(tests))


def _counts(values: Sequence[str], categories: Sequence[str]) -> list[int]:
    position = {v: i for i, v in enumerate(categories)}
    counts = [0] * len(categories)
    for value in values:
        counts[position[value]] += 1
    return counts

"""The statistical tests detectors use, on plain numbers and arrays. scipy is imported lazily.

>>> proportion_increase_p(30, 100, 100, 1000) < 1e-3  # 30% now vs 10% before
True
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32] | npt.NDArray[np.float64]


def warm_up() -> None:
    """Import scipy's statistics now (about a second of CPU), for a long-running process that
    would otherwise pay it in the middle of its stream, at the first window it judges."""
    import scipy.stats  # noqa: F401


def mann_whitney_greater_p(current: FloatArray, reference: FloatArray) -> float:
    """One-sided Mann-Whitney U: p-value that ``current`` is stochastically greater."""
    from scipy.stats import mannwhitneyu

    return float(mannwhitneyu(current, reference, alternative="greater").pvalue)


def ks_two_sample(current: FloatArray, reference: FloatArray) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov: (statistic D, p-value)."""
    from scipy.stats import ks_2samp

    result = ks_2samp(current, reference)
    return float(result.statistic), float(result.pvalue)


def ks_statistic(current: FloatArray, reference: FloatArray) -> float:
    """The two-sample KS statistic D alone, in numpy (no scipy call): the largest gap between
    the two empirical CDFs. Cheap enough to screen every feature before testing it."""
    a, b = np.sort(current), np.sort(reference)
    points = np.concatenate([a, b])
    gap = np.searchsorted(a, points, side="right") / len(a) - np.searchsorted(
        b, points, side="right"
    ) / len(b)
    return float(np.abs(gap).max())


def total_variation(current: Sequence[int], reference: Sequence[int]) -> float:
    """Total variation distance between two count vectors' distributions (0 to 1)."""
    a = np.asarray(current, dtype=np.float64)
    b = np.asarray(reference, dtype=np.float64)
    if a.sum() == 0 or b.sum() == 0:
        return 0.0
    return float(0.5 * np.abs(a / a.sum() - b / b.sum()).sum())


def chi_square_counts(current: Sequence[int], reference: Sequence[int]) -> tuple[float, float]:
    """Chi-squared test of homogeneity on two count vectors over the same categories:
    (total variation distance between the two distributions, p-value)."""
    from scipy.stats import chi2_contingency

    table = np.array([current, reference], dtype=np.float64)
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or table.sum(axis=1).min() == 0:
        return 0.0, 1.0
    shares = table / table.sum(axis=1, keepdims=True)
    distance = float(0.5 * np.abs(shares[0] - shares[1]).sum())
    return distance, float(chi2_contingency(table, correction=False).pvalue)


def proportion_increase_p(hits: int, n: int, ref_hits: int, ref_n: int) -> float:
    """One-sided Fisher exact test: p-value that the current rate is higher than the
    reference's. Exact, because bad outcomes are rare: at 1% of 200 events the normal
    approximation of a z-test fired on 1% of stationary windows at alpha 1e-3."""
    if n == 0 or ref_n == 0:
        return 1.0
    from scipy.stats import fisher_exact

    table = [[hits, n - hits], [ref_hits, ref_n - ref_hits]]
    return float(fisher_exact(table, alternative="greater").pvalue)


def mean_decrease_p(
    n: int, mean: float, var: float, ref_n: int, ref_mean: float, ref_var: float
) -> float:
    """One-sided Welch z-approximation: p-value that the current mean is lower."""
    if n < 2 or ref_n < 2:
        return 1.0
    se = math.sqrt(max(var, 0.0) / n + max(ref_var, 0.0) / ref_n)
    if se == 0:
        return 0.0 if mean < ref_mean else 1.0
    z = (ref_mean - mean) / se
    return 0.5 * math.erfc(z / math.sqrt(2))


def poisson_low_p(count: int, expected: float) -> float:
    """P(X <= count) for X ~ Poisson(expected): how surprising a drop is."""
    from scipy.stats import poisson

    return float(poisson.cdf(count, expected))


def poisson_high_p(count: int, expected: float) -> float:
    """P(X >= count) for X ~ Poisson(expected): how surprising a spike is."""
    from scipy.stats import poisson

    return float(poisson.sf(count - 1, expected))


def present(values: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """The values that are not NaN (a feature the event did not have)."""
    return values[~np.isnan(values)]


def wander_discounted(
    values: npt.NDArray[np.float32], reference: npt.NDArray[np.float32], tolerance: float
) -> npt.NDArray[np.float32]:
    """``values`` divided by the ratio of their median to the reference's, clipped to
    ``1 +- tolerance``: a level change within the tolerance is taken out, a larger one is
    reduced by the tolerance."""
    before = float(np.median(reference))
    if before <= 0:
        return values
    ratio = float(np.median(values)) / before
    return values / np.float32(min(max(ratio, 1 / (1 + tolerance)), 1 + tolerance))

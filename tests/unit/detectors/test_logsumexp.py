"""driftnet.detectors.canary.sequential.logsumexp_rows gives scipy.special.logsumexp(a, axis=1), bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import logsumexp

from driftnet.detectors.canary.sequential import (
    ODDS_RATIOS,
    _log_choose,
    hypergeometric_log_lr,
    logsumexp_rows,
)


def _same(a: np.ndarray) -> None:
    mine, theirs = logsumexp_rows(a), logsumexp(a, axis=1)
    assert mine.dtype == theirs.dtype
    assert mine.shape == theirs.shape
    assert mine.tobytes() == np.asarray(theirs).tobytes()


@pytest.mark.parametrize("seed", range(20))
def test_random_rows_match_scipy_exactly(seed: int) -> None:
    """Rows of every length and scale, with ties for the maximum, give scipy's bytes."""
    rng = np.random.default_rng(seed)
    rows, columns = int(rng.integers(1, 12)), int(rng.integers(1, 400))
    a = rng.normal(0, float(rng.choice([1e-3, 1.0, 30.0, 700.0])), (rows, columns))
    a[0, : min(3, columns)] = a[0].max()  # a tie for the maximum
    _same(a)


def test_infinities_and_nan_match_scipy() -> None:
    """-inf entries, rows of -inf only, +inf and NaN: scipy's answers (including its NaN)."""
    a = np.array(
        [
            [-np.inf, -np.inf, -np.inf],
            [-np.inf, 0.0, 1.0],
            [np.inf, 0.0, 1.0],
            [np.nan, 0.0, 1.0],
            [-1e308, -1e308, 5.0],
        ]
    )
    _same(a)


def test_the_judges_likelihood_ratios_are_unchanged() -> None:
    """The hypergeometric log likelihood ratios the canary judge folds in, over a grid of
    window totals, equal those computed with scipy's logsumexp."""
    log_odds = np.log(np.array(ODDS_RATIOS + tuple(1 / r for r in ODDS_RATIOS)))
    for canary, baseline, total in ((5, 20, 3), (200, 800, 40), (2_000, 8_000, 100), (1, 1, 1)):
        for hits in range(0, min(total, canary) + 1, max(1, total // 7)):
            low, high = max(0, total - baseline), min(total, canary)
            support = np.arange(low, high + 1, dtype=np.float64)
            log_pmf = (
                _log_choose(canary, support)
                + _log_choose(baseline, total - support)
                - _log_choose(canary + baseline, total)
            )
            grid = log_pmf[None, :] + support[None, :] * log_odds[:, None]
            expected = hits * log_odds - logsumexp(grid, axis=1)
            got = hypergeometric_log_lr(hits, canary, baseline, total, log_odds)
            assert got.tobytes() == np.asarray(expected, dtype=np.float64).tobytes()

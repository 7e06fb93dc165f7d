"""Tests that stay valid however often they are looked at: e-processes for the canary judge.

A canary is judged again every window. Testing the cumulative data at a fixed level each time
would inflate false alarms without bound (checked 20 times, a 5% test fails an identical canary
far more often than 5% of the time). Instead every metric keeps a *test martingale*: a running
product of likelihood ratios that has expected value 1 while the canary is no worse than the
baseline. By Ville's inequality the chance that it ever reaches ``1/alpha`` -- at any window,
however long the rollout runs -- is at most ``alpha``. That is the anytime-valid guarantee of
"always valid p-values" (Johari et al., 2017) and of confidence sequences (Howard et al., 2021).

Each window contributes one likelihood ratio per alternative on a small grid of effect sizes
(the martingale is their average, a *mixture*, so no effect size has to be guessed). The
mixture is also taken over the window the change started in (weight ``1/(s(s+1))`` for window
``s``), so a canary that was healthy for an hour and then regressed is caught as fast as one
that was bad from the start. Three sources of per-window likelihood ratios:

- :func:`hypergeometric_log_lr` -- exact, for counts: the canary's share of the window's errors
  (or of the requests above the pooled p95) given the window's totals. Under "no difference"
  that share is hypergeometric whatever the rates are, so rare events and all-zero windows are
  handled exactly, without a normal approximation.
- :func:`gaussian_log_lr` -- a standardised statistic with a normal null (a rank test, a mean
  difference) and the window's effective sample size.
- :func:`calibrated_log_e` -- any valid p-value turned into an e-value (``kappa * p**(kappa-1)``,
  Vovk and Wang, 2021), for the drift tests.

>>> import numpy as np
>>> e = EProcess(len(ODDS_RATIOS))
>>> for _ in range(3):  # canary: 40 of the window's 100 slow requests with 20% of the traffic
...     e.update(hypergeometric_log_lr(40, 2_000, 8_000, 100, np.log(ODDS_RATIOS)))
>>> e.value > 1_000, e.p_value < 1e-3
(True, True)
"""

from __future__ import annotations

import functools
import math
from typing import Final

import numpy as np
import numpy.typing as npt
from scipy.special import gammaln

FloatArray = npt.NDArray[np.float64]

ODDS_RATIOS: Final = (1.15, 1.3, 1.5, 1.75, 2.0, 2.5, 3.0, 4.0, 6.0, 10.0)
"""Alternatives of the count tests: how many times likelier a canary request is to be the bad
one (odds ratio), for an increase; their inverses for a decrease."""
EFFECT_SIZES: Final = (0.02, 0.04, 0.07, 0.1, 0.15, 0.2, 0.3, 0.5, 0.8)
"""Alternatives of the normal tests: standardised effect (Cohen's d scale) for an increase;
their negatives for a decrease."""
KAPPAS: Final = (0.02, 0.05, 0.1, 0.2, 0.4)
"""Calibrators ``kappa * p**(kappa-1)`` mixed for p-values (small kappa: bet on tiny p)."""


class EProcess:
    """A test martingale mixed over a grid of alternatives and over the window a change began.

    ``update`` takes one window's log likelihood ratio for each alternative. :attr:`value` is
    the evidence against "no difference" (expected value at most 1 under it);
    :attr:`p_value` the anytime-valid p-value ``min(1, 1 / max value so far)``.
    """

    __slots__ = ("_log_a", "_log_value", "_peak", "windows")

    def __init__(self, alternatives: int) -> None:
        self._log_a = np.full(alternatives, -np.inf)
        """Per alternative: log of sum over start windows s <= t of pi_s * prod_{s..t} LR."""
        self._peak = 0.0
        """log of the largest value reached."""
        self._log_value = 0.0
        self.windows = 0
        """Windows that contributed."""

    @property
    def alternatives(self) -> int:
        return len(self._log_a)

    def update(self, log_lr: FloatArray) -> None:
        """Fold in one window (a window without information should not be passed at all)."""
        self.windows += 1
        t = self.windows
        log_start = -math.log(t * (t + 1))  # pi_t: this window is where the change began
        self._log_a = np.logaddexp(self._log_a, log_start) + log_lr
        started = float(np.logaddexp.reduce(self._log_a)) - math.log(len(self._log_a))
        # plus the prior mass of the start windows still to come, 1/(t+1)
        self._log_value = float(np.logaddexp(started, -math.log(t + 1)))
        if math.isnan(self._log_value):
            raise ValueError("an e-process was fed a likelihood ratio that is not a number")
        self._peak = max(self._peak, self._log_value)

    @property
    def log_value(self) -> float:
        """log of the martingale: the mean over alternatives of the started products, plus the
        prior mass of start windows still to come."""
        return self._log_value

    @property
    def value(self) -> float:
        return math.exp(min(self.log_value, 700.0))

    @property
    def p_value(self) -> float:
        """Anytime-valid: the chance, with no difference, of evidence this strong ever."""
        return min(1.0, math.exp(-self._peak))

    def to_list(self) -> list[float | None]:
        """JSON-able state (``-inf`` as None)."""
        return [
            self.windows,
            self._peak,
            *(None if math.isinf(v) else v for v in self._log_a.tolist()),
        ]

    @classmethod
    def from_list(cls, data: list[float | None]) -> EProcess:
        """The inverse of :meth:`to_list`."""
        process = cls(len(data) - 2)
        process.windows = int(data[0] or 0)
        process._peak = float(data[1] or 0.0)
        process._log_a = np.array([-np.inf if v is None else v for v in data[2:]], np.float64)
        if process.windows:
            t = process.windows
            started = float(np.logaddexp.reduce(process._log_a)) - math.log(len(process._log_a))
            process._log_value = float(np.logaddexp(started, -math.log(t + 1)))
        return process


def logsumexp_rows(a: FloatArray) -> FloatArray:
    """``scipy.special.logsumexp(a, axis=1)`` of a 2-D float64 array, the very same operations
    without scipy's array-API dispatch (which cost ten times the arithmetic on the judge's
    small arrays): the largest element of each row is taken out of the sum, which is
    ``log1p``-ed, and a row whose result is not finite falls back to the plain formula."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        plain = np.log(np.sum(np.exp(a), axis=1, keepdims=True))
    with np.errstate(divide="ignore", invalid="ignore"):
        a_max = np.max(a, axis=1, keepdims=True)
        is_max = a == a_max
        rest = a.copy()
        rest[is_max] = -np.inf
        m = np.sum(is_max.astype(a.dtype), axis=1, keepdims=True, dtype=a.dtype)
        exp = np.exp(rest - a_max)
        s = np.sum(exp, axis=1, keepdims=True, dtype=exp.dtype)
        s = np.where(s == 0, s, s / m)
        sign = np.sign(s + 1) * np.sign(m)
        s = np.where(s < -1, -s - 2, s)
        m = np.abs(m)
        out = np.log1p(s) + np.log(m) + a_max
        out[sign < 0] = np.nan
    out = np.where(np.isfinite(out), out, plain)
    return np.asarray(np.squeeze(out, axis=1), dtype=np.float64)


def _log_choose(n: float | FloatArray, k: float | FloatArray) -> FloatArray:
    return np.asarray(
        gammaln(np.add(n, 1)) - gammaln(np.add(k, 1)) - gammaln(np.subtract(n, k) + 1)
    )


def hypergeometric_log_lr(
    hits: int, canary: int, baseline: int, total_hits: int, log_odds: FloatArray
) -> FloatArray:
    """Per odds ratio ``psi``: log of Fisher's noncentral hypergeometric likelihood of the
    canary's ``hits`` over the central one, ``hits * log(psi) - log E0[psi**X]``.

    Under "no difference", given the window's totals (``canary`` and ``baseline`` requests,
    ``total_hits`` bad ones among them), the canary's hits are hypergeometric: exact, at any
    rate, including zero.

    Remembered (read-only arrays): the quantile tests ask with the same odds ratios every
    window, and the windows of quiet canaries repeat the same few counts.
    """
    odds = np.ascontiguousarray(log_odds, dtype=np.float64)
    if odds.ndim != 1:
        raise ValueError(f"log_odds must be one-dimensional, got shape {odds.shape}")
    return _remembered_log_lr(hits, canary, baseline, total_hits, odds.tobytes())


@functools.lru_cache(maxsize=4096)
def _remembered_log_lr(
    hits: int, canary: int, baseline: int, total_hits: int, log_odds: bytes
) -> FloatArray:
    found = _hypergeometric_log_lr(
        hits, canary, baseline, total_hits, np.frombuffer(log_odds, dtype=np.float64)
    )
    found.flags.writeable = False
    return found


def _hypergeometric_log_lr(
    hits: int, canary: int, baseline: int, total_hits: int, log_odds: FloatArray
) -> FloatArray:
    low, high = max(0, total_hits - baseline), min(total_hits, canary)
    if high <= low:
        return np.zeros_like(log_odds)  # the totals decide the split: no information
    support = np.arange(low, high + 1, dtype=np.float64)
    log_pmf = (
        _log_choose(canary, support)
        + _log_choose(baseline, total_hits - support)
        - _log_choose(canary + baseline, total_hits)
    )
    log_moment = logsumexp_rows(log_pmf[None, :] + support[None, :] * log_odds[:, None])
    return np.asarray(hits * log_odds - log_moment, dtype=np.float64)


def gaussian_log_lr(z: float, information: float, effects: FloatArray) -> FloatArray:
    """Per standardised effect ``d``: the normal likelihood ratio of a window whose statistic
    ``z`` is N(0, 1) with no difference and N(d * sqrt(information), 1) with effect ``d``
    (``information``: the window's effective sample size, ``n_c * n_b / (n_c + n_b)``)."""
    drift = effects * math.sqrt(information)
    return np.asarray(drift * z - drift * drift / 2, dtype=np.float64)


def calibrated_log_e(p: float, kappas: FloatArray) -> FloatArray:
    """Per ``kappa``: log of the e-value ``kappa * p**(kappa - 1)`` (expected value 1 when
    ``p`` is uniform, at most 1 when it is conservative)."""
    p = min(max(p, 1e-300), 1.0)
    return np.asarray(np.log(kappas) + (kappas - 1) * math.log(p), dtype=np.float64)

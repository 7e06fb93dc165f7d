"""The e-processes behind the canary judge (detectors/canary/sequential.py): valid however often they
are looked at, and quick to find a real change -- from the start or late.

The rates come from 1,000 seeded runs of 30 looks each. So that they take seconds, not minutes,
the runs are folded into evidence all at once by :func:`evidence`, the same recursion as
:meth:`EProcess.update` over a whole array; :func:`test_array_evidence_is_eprocess_evidence`
checks it gives what :class:`EProcess` gives, look by look.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from functools import cache
from itertools import pairwise

import numpy as np
import numpy.typing as npt
import pytest
from scipy.stats import hypergeom, norm

from driftnet.detectors.canary.config import CanarySettings
from driftnet.detectors.canary.sequential import (
    EFFECT_SIZES,
    KAPPAS,
    ODDS_RATIOS,
    EProcess,
    calibrated_log_e,
    gaussian_log_lr,
    hypergeometric_log_lr,
)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

RUNS = 1_000
LOOKS = 30
ALPHAS = (0.05, 0.2)
LOG_ODDS = np.log(np.array(ODDS_RATIOS))
EFFECTS = np.array(EFFECT_SIZES)
KAPPA_ARRAY = np.array(KAPPAS)
JUDGE_ALPHA = CanarySettings().alpha / CanarySettings().tests
"""The level each metric of the judge is tested at with the default settings."""


# -- the runs ----------------------------------------------------------------------------------


def evidence(log_lr: FloatArray, informative: BoolArray) -> FloatArray:
    """``log EProcess.value`` after each look of each run, for ``log_lr`` of shape (runs, looks,
    alternatives); a look that is not ``informative`` is not passed to the process."""
    runs, looks, alternatives = log_lr.shape
    log_a = np.full((runs, alternatives), -np.inf)
    updates = np.zeros(runs)
    out = np.empty((runs, looks))
    for look in range(looks):
        on = informative[:, look]
        updates = updates + on
        t = np.maximum(updates, 1)
        started = np.logaddexp(log_a, -np.log(t * (t + 1))[:, None]) + log_lr[:, look]
        log_a = np.where(on[:, None], started, log_a)
        mixed = np.logaddexp.reduce(log_a, axis=1) - math.log(alternatives)
        out[:, look] = np.logaddexp(mixed, -np.log(updates + 1))
    return out


def eprocess_evidence(log_lr: FloatArray, informative: BoolArray) -> FloatArray:
    """:func:`evidence` computed with :class:`EProcess` itself, one run at a time."""
    out = np.empty(log_lr.shape[:2])
    for run in range(log_lr.shape[0]):
        process = EProcess(log_lr.shape[2])
        for look in range(log_lr.shape[1]):
            if informative[run, look]:
                process.update(log_lr[run, look])
            out[run, look] = process.log_value
    return out


def first_reached(log_values: FloatArray, alpha: float) -> IntArray:
    """Per run, the first look at which the evidence is at least ``1/alpha`` (-1: never)."""
    reached = log_values >= -math.log(alpha)
    return np.where(reached.any(axis=1), reached.argmax(axis=1), -1)


def schedule(rng: np.random.Generator) -> tuple[IntArray, IntArray]:
    """Canary and baseline requests of each look: 1,000 to 5,000 requests a window, the canary's
    share anywhere from 2% to 50% (the same schedule for every run: validity holds for any)."""
    requests = rng.integers(1_000, 5_000, LOOKS)
    canary = np.round(requests * rng.uniform(0.02, 0.5, LOOKS)).astype(np.int64)
    return canary, requests - canary


@cache
def _unhit(canary: int, baseline: int, total: int, sign: int) -> tuple[float, ...]:
    return tuple(hypergeometric_log_lr(0, canary, baseline, total, sign * LOG_ODDS))


def count_log_lrs(
    hits: IntArray, totals: IntArray, canary: IntArray, baseline: IntArray, sign: int
) -> FloatArray:
    """:func:`hypergeometric_log_lr` of every (run, look); it is ``hits * log(psi)`` plus a term
    of the window's totals only, so it takes one call per distinct totals."""
    runs, looks = hits.shape
    out = np.empty((runs, looks, len(LOG_ODDS)))
    for look in range(looks):
        base = np.array(
            [_unhit(int(canary[look]), int(baseline[look]), int(t), sign) for t in totals[:, look]]
        )
        out[:, look] = base + hits[:, look, None] * (sign * LOG_ODDS)[None, :]
    return out


def count_runs(
    seed: int, rate: float, sign: int, odds: Callable[[int], float] = lambda look: 1.0
) -> tuple[FloatArray, BoolArray, IntArray, IntArray, IntArray, IntArray]:
    """Runs of a count test: each arm's bad requests binomial at ``rate``, the canary's at odds
    ``odds(look)`` times the baseline's. Returns the log likelihood ratios, which looks have any
    bad request (the judge skips the others), and the counts behind them."""
    rng = np.random.default_rng(seed)
    canary, baseline = schedule(rng)
    canary_rate = np.array([odds(k) * rate / (1 - rate + odds(k) * rate) for k in range(LOOKS)])
    hits = rng.binomial(canary, canary_rate, (RUNS, LOOKS))
    totals = hits + rng.binomial(baseline, rate, (RUNS, LOOKS))
    informative = (totals > 0) & (totals < canary + baseline)
    return (
        count_log_lrs(hits, totals, canary, baseline, sign),
        informative,
        hits,
        totals,
        canary,
        baseline,
    )


def gaussian_runs(seed: int, sign: int) -> tuple[FloatArray, BoolArray]:
    """Runs of a normal test with no difference: ``z ~ N(0, 1)``, the window's information
    ``n_c * n_b / n`` from :func:`schedule`."""
    rng = np.random.default_rng(seed)
    canary, baseline = schedule(rng)
    information = canary * baseline / (canary + baseline)
    z = rng.standard_normal((RUNS, LOOKS))
    log_lr = np.array(
        [
            [
                gaussian_log_lr(float(z[r, k]), float(information[k]), sign * EFFECTS)
                for k in range(LOOKS)
            ]
            for r in range(RUNS)
        ]
    )
    return log_lr, np.ones((RUNS, LOOKS), dtype=np.bool_)


def calibrated_runs(seed: int) -> tuple[FloatArray, BoolArray]:
    """Runs of the drift tier: a valid p-value (uniform with no difference) every look."""
    p = np.random.default_rng(seed).uniform(size=(RUNS, LOOKS))
    log_lr = np.array(
        [[calibrated_log_e(float(p[r, k]), KAPPA_ARRAY) for k in range(LOOKS)] for r in range(RUNS)]
    )
    return log_lr, np.ones((RUNS, LOOKS), dtype=np.bool_)


NULL_KINDS: dict[str, Callable[[], tuple[FloatArray, BoolArray]]] = {
    "counts 5%, increase": lambda: count_runs(11, 0.05, +1)[:2],
    "counts 5%, decrease": lambda: count_runs(12, 0.05, -1)[:2],
    "counts 0.1%, increase": lambda: count_runs(13, 0.001, +1)[:2],
    "counts 0.1%, decrease": lambda: count_runs(14, 0.001, -1)[:2],
    "gaussian z, increase": lambda: gaussian_runs(15, +1),
    "gaussian z, decrease": lambda: gaussian_runs(16, -1),
    "calibrated p-values": lambda: calibrated_runs(17),
}


@cache
def null_runs(kind: str) -> tuple[FloatArray, BoolArray]:
    """The seeded no-difference runs of one kind (made once for the tests that share them)."""
    return NULL_KINDS[kind]()


# -- anytime validity --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", NULL_KINDS)
def test_array_evidence_is_eprocess_evidence(kind: str) -> None:
    """The array recursion the rates are computed with gives EProcess's value at every look
    (checked on 20 runs of every kind)."""
    log_lr, informative = null_runs(kind)
    some = slice(0, 20)
    np.testing.assert_allclose(
        evidence(log_lr[some], informative[some]),
        eprocess_evidence(log_lr[some], informative[some]),
        rtol=1e-9,
        atol=1e-9,
    )


def test_count_log_lrs_are_the_functions_own() -> None:
    """The one-call-per-totals shortcut gives exactly what hypergeometric_log_lr gives for the
    counts themselves (rare and common events, both directions)."""
    for seed, rate, sign in ((21, 0.05, +1), (22, 0.001, -1)):
        log_lr, _, hits, totals, canary, baseline = count_runs(seed, rate, sign)
        for run in range(10):
            for look in range(LOOKS):
                direct = hypergeometric_log_lr(
                    int(hits[run, look]),
                    int(canary[look]),
                    int(baseline[look]),
                    int(totals[run, look]),
                    sign * LOG_ODDS,
                )
                np.testing.assert_allclose(log_lr[run, look], direct, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("kind", NULL_KINDS)
def test_no_difference_reaches_one_over_alpha_in_at_most_alpha_of_runs(kind: str) -> None:
    """Ville's inequality, observed: with no difference, the evidence reaches 1/alpha at any of
    30 looks in fewer than alpha of 1,000 runs -- for exact counts (common and rare events, the
    canary's share changing every window), normal statistics and calibrated p-values."""
    log_lr, informative = null_runs(kind)
    log_values = evidence(log_lr, informative)
    for alpha in ALPHAS:
        rate = float((first_reached(log_values, alpha) >= 0).mean())
        assert rate < alpha, f"{kind}: reached 1/{alpha:g} in {rate:.1%} of {RUNS} runs"


def test_the_count_likelihood_ratio_has_expectation_one_with_no_difference() -> None:
    """Exactly, not by simulation: summed over the hypergeometric law of the canary's share of
    the bad requests, every odds ratio's likelihood ratio averages 1, either direction (seeded
    window sizes and totals, from one bad request to most of them)."""
    rng = np.random.default_rng(23)
    for _ in range(40):
        canary, baseline = (int(n) for n in rng.integers(1, 400, 2))
        total = int(rng.integers(1, canary + baseline))
        support = np.arange(max(0, total - baseline), min(total, canary) + 1)
        pmf = hypergeom(canary + baseline, canary, total).pmf(support)
        for sign in (+1, -1):
            log_lr = [
                hypergeometric_log_lr(int(x), canary, baseline, total, sign * LOG_ODDS)
                for x in support
            ]
            np.testing.assert_allclose(pmf @ np.exp(log_lr), 1.0, rtol=1e-9)


def test_the_normal_and_calibrated_ratios_have_expectation_one_with_no_difference() -> None:
    """Numerically integrated over N(0, 1) and over a uniform p-value, the normal likelihood
    ratio and the calibrated e-value average 1 at every alternative (seeded information)."""
    for information in np.random.default_rng(24).uniform(10, 2_000, 5):
        z = np.arange(-10, EFFECTS.max() * math.sqrt(information) + 10, 0.005)
        ratios = np.exp([gaussian_log_lr(float(v), float(information), EFFECTS) for v in z])
        integral = np.trapezoid(norm.pdf(z)[:, None] * ratios, z, axis=0)
        np.testing.assert_allclose(integral, 1.0, rtol=1e-6)
    # p**(kappa - 1) is steep at 0: integrate over log p (dp = p dlog p), down to p = 1e-300.
    log_p = np.linspace(-300 * math.log(10), 0, 20_001)
    values = np.exp([calibrated_log_e(float(math.exp(v)), KAPPA_ARRAY) for v in log_p])
    integral = np.trapezoid(values * np.exp(log_p)[:, None], log_p, axis=0)
    np.testing.assert_allclose(integral, 1.0, rtol=1e-3)


# -- power -------------------------------------------------------------------------------------


def detection_windows(log_values: FloatArray, alpha: float, onset: int = 0) -> IntArray:
    """Per run, windows from the change's first window to the first reaching 1/alpha, counting
    that window as 1 (-1: never, or before the change)."""
    first = first_reached(log_values[:, onset:], alpha)
    return np.where(first >= 0, first + 1, -1)


@pytest.mark.parametrize(("rate", "windows"), [(0.05, 3), (0.02, 5)])
def test_odds_ratio_two_at_a_thousand_canary_requests_is_found_within_a_few_windows(
    rate: float, windows: int
) -> None:
    """A canary twice as likely (odds ratio 2) to be among the bad requests, with 1,000 of 5,000
    requests a window, reaches the judge's per-metric level (alpha / tests) in at least 99% of
    500 runs: within 3 windows above the pooled p95 (5% of requests), within 5 for errors at 2%
    (fewer bad requests, less evidence a window)."""
    rng = np.random.default_rng(31 if rate == 0.05 else 32)
    runs, canary, baseline = 500, 1_000, 4_000
    canary_rate = 2 * rate / (1 - rate + 2 * rate)
    hits = rng.binomial(canary, canary_rate, (runs, windows))
    totals = hits + rng.binomial(baseline, rate, (runs, windows))
    log_lr = count_log_lrs(hits, totals, np.full(windows, canary), np.full(windows, baseline), +1)
    found = detection_windows(evidence(log_lr, totals > 0), JUDGE_ALPHA)
    share = float((found > 0).mean())
    assert share >= 0.99, f"found within {windows} windows in {share:.1%} of {runs} runs"


def test_a_normal_shift_is_found_within_three_windows() -> None:
    """A standardised shift of 0.15 (the rank and mean tests) with 1,000 canary and 4,000
    baseline values a window (information 800) reaches alpha / tests within 3 windows in at
    least 99% of 1,000 runs."""
    information = 1_000 * 4_000 / 5_000
    z = np.random.default_rng(34).standard_normal((RUNS, 3)) + 0.15 * math.sqrt(information)
    log_lr = np.array([[gaussian_log_lr(float(v), information, EFFECTS) for v in row] for row in z])
    found = detection_windows(evidence(log_lr, np.ones(z.shape, dtype=np.bool_)), JUDGE_ALPHA)
    share = float((found > 0).mean())
    assert share >= 0.99, f"found within 3 windows in {share:.1%} of {RUNS} runs"


def test_a_change_after_twenty_quiet_windows_is_found_within_a_few_windows() -> None:
    """The mixture over the window a change began: 20 windows with no difference, then odds
    ratio 2 at 1,000 of 5,000 requests a window, is found within 3 windows of its start in at
    least 95% of 1,000 runs (the quiet windows' evidence does not have to be paid back first)."""
    onset = 20
    log_lr, informative, *_ = count_runs(
        35, 0.05, +1, odds=lambda look: 1.0 if look < onset else 2.0
    )
    log_values = evidence(log_lr, informative)
    early = float((first_reached(log_values[:, :onset], JUDGE_ALPHA) >= 0).mean())
    found = detection_windows(log_values, JUDGE_ALPHA, onset)
    within = float(((found > 0) & (found <= 3)).mean())
    assert early <= JUDGE_ALPHA
    assert within >= 0.95, f"found within 3 windows of the change in {within:.1%} of runs"


# -- the small print ---------------------------------------------------------------------------


def test_totals_that_decide_the_split_give_no_evidence() -> None:
    """No bad request, every request bad, or an arm with no requests: the canary's count is
    forced, and every alternative's log likelihood ratio is 0 (seeded sizes)."""
    rng = np.random.default_rng(41)
    for _ in range(100):
        canary, baseline = (int(n) for n in rng.integers(1, 10_000, 2))
        forced = [
            (0, canary, baseline, 0),
            (canary, canary, baseline, canary + baseline),
            (0, 0, baseline, int(rng.integers(0, baseline + 1))),
        ]
        alone = int(rng.integers(0, canary + 1))
        forced.append((alone, canary, 0, alone))
        for hits, n_c, n_b, total in forced:
            for sign in (+1, -1):
                log_lr = hypergeometric_log_lr(hits, n_c, n_b, total, sign * LOG_ODDS)
                assert log_lr.shape == LOG_ODDS.shape
                assert np.all(log_lr == 0), (hits, n_c, n_b, total)


def _updated(seed: int, windows: int) -> tuple[EProcess, list[float], list[float]]:
    """A process fed ``windows`` seeded windows of a count test in which the canary is a little
    likelier to be the bad request; its value and its p-value after each."""
    rng = np.random.default_rng(seed)
    process = EProcess(len(ODDS_RATIOS))
    values, p_values = [], []
    for _ in range(windows):
        canary, baseline = (int(n) for n in rng.integers(100, 2_000, 2))
        total = int(rng.integers(1, 60))
        hits = min(
            int(rng.hypergeometric(canary, baseline, total)) + int(rng.integers(0, 3)), total
        )
        process.update(hypergeometric_log_lr(hits, canary, baseline, total, LOG_ODDS))
        values.append(process.value)
        p_values.append(process.p_value)
    return process, values, p_values


@pytest.mark.parametrize("windows", [0, 1, 7])
def test_eprocess_state_round_trips_through_json(windows: int) -> None:
    """to_list is JSON (no infinities) and from_list restores a process that has the same value,
    p-value and windows, and goes on exactly as the original would have."""
    process, _, _ = _updated(42 + windows, windows)
    restored = EProcess.from_list(json.loads(json.dumps(process.to_list(), allow_nan=False)))
    assert restored.to_list() == process.to_list()
    assert (restored.windows, restored.value, restored.p_value) == (
        process.windows,
        process.value,
        process.p_value,
    )
    rng = np.random.default_rng(43)
    for _ in range(5):
        log_lr = rng.normal(0, 1, len(ODDS_RATIOS))
        process.update(log_lr)
        restored.update(log_lr)
        assert restored.log_value == process.log_value


@pytest.mark.parametrize("seed", range(5))
def test_p_value_is_one_over_the_largest_value_so_far(seed: int) -> None:
    """The anytime-valid p-value is min(1, 1 / the largest value reached so far), after every
    window: it never rises when the evidence falls back, and a fresh process has p-value 1."""
    assert EProcess(len(ODDS_RATIOS)).p_value == 1.0
    _, values, p_values = _updated(50 + seed, 15)
    peaks = np.maximum.accumulate(values)
    np.testing.assert_allclose(p_values, np.minimum(1.0, 1 / peaks), rtol=1e-9)
    assert any(later < earlier for earlier, later in pairwise(values))

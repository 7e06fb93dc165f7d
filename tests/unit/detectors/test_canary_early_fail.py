"""Early Fail on decisive evidence: a canary with ~70 requests a window is failed on a slower
median within a median of 3 windows, long before the 500 requests a Pass needs, while identical
canaries are still failed in at most alpha of 200 seeded rollouts of 20 windows; the early
Fail says which metric, its e-value and that it came before the minimum sample."""

from __future__ import annotations

import statistics

import pytest

from driftnet.detectors.canary.config import CanarySettings
from driftnet.detectors.canary.scoring import decisive_threshold
from driftnet.detectors.canary.verdict import Verdict
from tests.support.canary_sim import Arm, Rollout, first_fail, run

SMALL = Rollout(windows=6, requests_per_window=350, canary_share=0.2)
"""About 70 canary requests a window (500 are reached in the 7th window at the earliest)."""
SLOWER = Arm(latency_scale=1.3)
NEVER = SMALL.windows + 1
"""Windows-to-Fail counted for a rollout never failed within its windows."""


def windows_to_fail(verdicts: list[Verdict]) -> int:
    """The number of the first window judged Fail (1-based; NEVER: none)."""
    fail = first_fail(verdicts)
    return NEVER if fail is None else fail + 1


def test_a_thirty_percent_slower_canary_fails_within_a_median_of_three_windows() -> None:
    """+30% latency at ~70 canary requests a window: the median of windows-to-Fail over 30
    seeded rollouts is at most 3 (it was 5.5 when only the critical p95 could fail early)."""
    rollout = Rollout(**{**SMALL.__dict__, "canary": SLOWER})
    delays = [windows_to_fail(run(rollout, seed)) for seed in range(100, 130)]
    assert statistics.median(delays) <= 3, sorted(delays)


def test_an_identical_canary_is_failed_early_in_at_most_alpha_of_rollouts() -> None:
    """A/A at ~70 canary requests a window, 20 windows, judged every window: at most alpha (5%)
    of 200 seeded rollouts is ever failed, and no verdict is Pass before the minimum sample."""
    settings = CanarySettings()
    rollout = Rollout(**{**SMALL.__dict__, "windows": 20})
    series = [run(rollout, seed, settings) for seed in range(5_000, 5_200)]
    failed = sum(first_fail(verdicts) is not None for verdicts in series) / len(series)
    assert failed <= settings.alpha, f"A/A fail rate {failed:.1%} of {len(series)} rollouts"
    passed_early = [
        v
        for verdicts in series
        for v in verdicts
        if v.verdict == "Pass"
        and (v.canary_requests < settings.min_canary_requests or v.windows < settings.min_windows)
    ]
    assert passed_early == []


def test_an_early_fail_names_the_metric_its_e_value_and_the_minimum_sample() -> None:
    """The first Fail of a slower canary whose median alone is decisive: its reasons say that
    latency_p50's e-value reached 1,000 and that the Fail came before the 500 canary requests
    a Pass needs; the recommendation is rollback."""
    rollout = Rollout(**{**SMALL.__dict__, "canary": SLOWER})
    for seed in range(100, 130):
        verdicts = run(rollout, seed)
        fail = first_fail(verdicts)
        if fail is None:
            continue
        verdict = verdicts[fail]
        if {m.metric for m in verdict.failing if m.critical}:
            continue  # failed on the critical p95: not the decisive-evidence path
        assert verdict.canary_requests < 500
        assert verdict.recommendation == "rollback"
        decisive = next(r for r in verdict.reasons if r.startswith("decisive evidence: "))
        assert any(f"{m.metric} e-value " in decisive for m in verdict.failing)
        assert ">= 1,000" in decisive
        assert any(r.startswith("failed before the minimum sample: ") for r in verdict.reasons)
        assert f"{verdict.canary_requests} canary requests (a Pass needs 500)" in " ".join(
            verdict.reasons
        )
        return
    pytest.fail("no rollout was failed on decisive evidence alone")


def test_without_decisive_evidence_only_critical_metrics_fail_early() -> None:
    """decisive_e_value = None on the medians gives back the old behaviour: the same slower
    canaries are failed later (by the critical p95), never on a median alone."""
    settings = CanarySettings.model_validate(
        {"metrics": {m: {"decisive_e_value": None} for m in ("latency_p50", "ttft_p50")}}
    )
    rollout = Rollout(**{**SMALL.__dict__, "canary": SLOWER})
    series = [run(rollout, seed, settings) for seed in range(100, 130)]
    for verdicts in series:
        fail = first_fail(verdicts)
        if fail is not None:
            assert verdicts[fail].metric("latency_p95").failing
    assert statistics.median(windows_to_fail(v) for v in series) > 3


def test_a_decisive_threshold_is_never_below_the_failing_threshold() -> None:
    """A decisive_e_value below tests / alpha (280 by default) counts as tests / alpha: a
    metric cannot fail the canary on less evidence than makes it fail."""
    low = CanarySettings.model_validate({"metrics": {"latency_p50": {"decisive_e_value": 2}}})
    assert decisive_threshold(low, "latency_p50") == pytest.approx(low.tests / low.alpha)
    assert decisive_threshold(CanarySettings(), "latency_p50") == 1000
    assert decisive_threshold(CanarySettings(), "output_tokens") is None

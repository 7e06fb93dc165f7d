"""The canary judge's acceptance tests, as seeded simulated rollouts (tests/support/canary_sim.py):
an identical canary is rarely failed, real regressions are failed quickly, rare events and
tolerances behave, the score follows the weights, and the verdict is a stable message."""

from __future__ import annotations

import bisect
import json
import math
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from itertools import pairwise, repeat

import numpy as np
import pytest
from pydantic import ValidationError

from driftnet.detectors.canary.config import DEFAULT_RULES, CanarySettings, MetricRule
from driftnet.detectors.canary.judge import CanaryJudge
from driftnet.detectors.canary.verdict import RECOMMENDATIONS, Verdict
from driftnet.detectors.windowing.observation import Cohort, Observation
from driftnet.detectors.windowing.partials import Partial
from driftnet.detectors.windowing.samples import Example, typical_kind
from driftnet.detectors.windowing.windows import Window
from tests.support.canary_sim import BASELINE, CANARY, Arm, Rollout, arm_window, first_fail, run

AA_ROLLOUTS = 200
HEALTHY = Arm()
RARE = Arm(error_rate=0.001)
"""Errors on one request in a thousand: most windows of a canary have none."""


def window_pair(
    rng: np.random.Generator,
    index: int,
    canary: Arm = HEALTHY,
    baseline: Arm = HEALTHY,
    requests: int = 3_000,
    share: float = 0.2,
) -> tuple[Partial, Partial]:
    """Window ``index`` of a rollout: the canary's and the baseline's aggregates."""
    window = Window(60 * index, 60 * index + 60)
    n_canary = int(rng.binomial(requests, share))
    return (
        arm_window(CANARY, window, canary, n_canary, rng),
        arm_window(BASELINE, window, baseline, requests - n_canary, rng),
    )


def judged(
    judge: CanaryJudge, pairs: list[tuple[Partial, Partial]], at: datetime | None = None
) -> list[Verdict]:
    """The verdicts of ``judge`` on each window pair in turn (each one judged: none is empty)."""
    verdicts = [judge.update(canary, baseline, at) for canary, baseline in pairs]
    assert all(v is not None for v in verdicts)
    return [v for v in verdicts if v is not None]


@pytest.fixture(scope="module")
def pool() -> Iterator[ProcessPoolExecutor]:
    """Two worker processes for the many-rollout tests (a seed gives the same verdicts in any
    process)."""
    with ProcessPoolExecutor(max_workers=2) as executor:
        yield executor


def rollouts(
    pool: ProcessPoolExecutor,
    rollout: Rollout | Sequence[Rollout],
    seeds: Iterable[int],
    settings: CanarySettings | None = None,
) -> list[list[Verdict]]:
    """Every window's verdicts of each seeded rollout (one rollout each, or the same for all)."""
    seeded = list(seeds)
    plans = [rollout] * len(seeded) if isinstance(rollout, Rollout) else list(rollout)
    return list(pool.map(run, plans, seeded, repeat(settings), chunksize=5))


# -- an identical canary ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def identical(pool: ProcessPoolExecutor) -> list[list[Verdict]]:
    """200 A/A rollouts of 10 windows of 2,000 requests, judged every window: the first 100
    with the default 2% errors, the other 100 with rare errors (0.1%) in both arms."""
    half = AA_ROLLOUTS // 2
    common = Rollout(requests_per_window=2_000)
    rare = Rollout(requests_per_window=2_000, baseline=RARE, canary=RARE)
    plans = [common] * half + [rare] * half
    return rollouts(pool, plans, range(AA_ROLLOUTS))


def test_a_canary_identical_to_its_baseline_is_failed_in_at_most_alpha_of_rollouts(
    identical: list[list[Verdict]],
) -> None:
    """A/A: checked after each of 10 windows, an identical canary is ever failed in at most
    alpha (5%) of 200 rollouts, nor has any failing metric in more than alpha of them."""
    failed = sum(first_fail(verdicts) is not None for verdicts in identical) / len(identical)
    failing = sum(any(v.failing for v in verdicts) for verdicts in identical) / len(identical)
    alpha = CanarySettings().alpha
    assert failed <= alpha, f"A/A fail rate {failed:.1%} of {len(identical)} rollouts"
    assert failing <= alpha, f"A/A rate of any failing metric {failing:.1%}"
    assert len(identical) == AA_ROLLOUTS
    assert all(len(verdicts) == 10 for verdicts in identical)


def test_rare_errors_in_both_arms_never_fail_the_error_rate(
    identical: list[list[Verdict]],
) -> None:
    """Errors at 0.1% in both arms, most canary windows with none: a window with no error in
    either arm leaves error_rate's evidence exactly as it was (the exact count test learns
    nothing from it), and error_rate is never failing in any window of 100 A/A rollouts."""
    rare = identical[AA_ROLLOUTS // 2 :]
    windows = [v.metric("error_rate").window for r in rare for v in r]
    assert sum(w.canary == 0 for w in windows) >= 0.4 * len(windows)
    quiet = 0
    for verdicts in rare:
        for before, after in pairwise(verdicts):
            errors = after.metric("error_rate")
            if errors.window.canary == errors.window.baseline == 0:
                quiet += 1
                old = before.metric("error_rate")
                assert (errors.e_value, errors.e_value_other_side) == (
                    old.e_value,
                    old.e_value_other_side,
                )
    assert quiet > 0
    failing = [i for i, r in enumerate(rare) if any(v.metric("error_rate").failing for v in r)]
    assert failing == []


# -- regressions ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("regression", "metrics"),
    [
        pytest.param(
            Arm(latency_scale=1.25),
            ("latency_p50", "latency_p95", "ttft_p50"),
            id="p95-latency-plus-25pct",
        ),
        pytest.param(Arm(error_rate=0.05), ("error_rate",), id="errors-2pct-to-5pct"),
    ],
)
def test_a_regression_is_failed_within_three_windows(
    pool: ProcessPoolExecutor, regression: Arm, metrics: tuple[str, ...]
) -> None:
    """+25% latency (p95 included), or errors from 2% to 5%, with over 2,000 canary requests in
    the first 3 windows (3,600 a window, 20% to the canary): failed within 3 windows in at
    least 95% of 100 rollouts, on a metric that regressed (for latency, the median's decisive
    evidence often fails the canary before the p95 fails)."""
    rollout = Rollout(windows=3, requests_per_window=3_600, canary_share=0.2, canary=regression)
    found = 0
    for verdicts in rollouts(pool, rollout, range(1_000, 1_100)):
        assert verdicts[2].canary_requests >= 2_000
        fail = first_fail(verdicts)
        if fail is not None:
            found += 1
            assert any(verdicts[fail].metric(m).failing for m in metrics)
    assert found >= 95, f"failed within 3 windows in {found} of 100 rollouts"


def test_a_tenfold_rare_error_rate_is_failed(pool: ProcessPoolExecutor) -> None:
    """Errors from 0.1% to 1% -- a few errors a window -- fail error_rate, and the canary,
    within 10 windows in each of 20 rollouts (the exact test needs the errors to pile up:
    against a 0.2-point tolerance on a 0.1% rate, the null is already 3 times the errors)."""
    rollout = Rollout(windows=10, baseline=RARE, canary=Arm(error_rate=0.01))
    for seed, verdicts in enumerate(rollouts(pool, rollout, range(2_000, 2_020))):
        assert verdicts[-1].metric("error_rate").failing, seed
        assert verdicts[-1].verdict == "Fail"


def test_a_real_change_within_the_tolerance_passes(pool: ProcessPoolExecutor) -> None:
    """Errors from 0.1% to 0.25% with 10,000 requests a window, half to the canary: a real
    increase, but 0.15 points is within error_rate's 0.2-point tolerance, and the test is of
    "no more than the tolerance": error_rate stays Pass in every window of 20, the evidence
    stays below its threshold, and the canary passes."""
    rollout = Rollout(
        windows=20,
        requests_per_window=10_000,
        canary_share=0.5,
        baseline=RARE,
        canary=Arm(error_rate=0.0025),
    )
    tolerance = CanarySettings().metric("error_rate").tolerance
    for verdicts in rollouts(pool, rollout, range(3_000, 3_004)):
        assert all(v.metric("error_rate").classification == "Pass" for v in verdicts)
        errors = verdicts[-1].metric("error_rate")
        assert errors.p_value > errors.e_threshold**-1
        assert errors.effect is not None
        assert 0 < errors.effect < tolerance
        assert verdicts[-1].verdict == "Pass"


def test_a_wider_latency_spread_fails_the_p95_not_the_median(pool: ProcessPoolExecutor) -> None:
    """Same median, log-sd from 0.5 to 0.65 (the p95 about 28% higher): latency_p95 is High and
    failing, latency_p50 stays Pass in every window, and the critical p95 fails the canary
    (10 rollouts)."""
    for verdicts in rollouts(pool, Rollout(canary=Arm(latency_sigma=0.65)), range(4_000, 4_010)):
        last = verdicts[-1]
        assert (last.metric("latency_p95").classification, last.verdict) == ("High", "Fail")
        assert {m.metric for m in last.failing} == {"latency_p95"}
        assert all(v.metric("latency_p50").classification == "Pass" for v in verdicts)


def test_a_faster_canary_is_low_and_not_failed(pool: ProcessPoolExecutor) -> None:
    """30% faster: latency is classified Low (a significant change on the good side), which is
    not failing; no window's verdict is Fail, and the canary passes (10 rollouts)."""
    for verdicts in rollouts(pool, Rollout(canary=Arm(latency_scale=0.7)), range(5_000, 5_010)):
        for name in ("latency_p50", "latency_p95"):
            metric = verdicts[-1].metric(name)
            assert (metric.classification, metric.failing) == ("Low", False)
        assert all(v.verdict != "Fail" for v in verdicts)
        assert verdicts[-1].verdict == "Pass"


@pytest.mark.parametrize(("healthy", "rollouts_n"), [(8, 30), (60, 10)])
def test_a_regression_that_starts_late_is_failed_within_three_windows_of_it(
    pool: ProcessPoolExecutor, healthy: int, rollouts_n: int
) -> None:
    """Healthy for 8 (or 60) windows, then 40% slower: never failed before, and failed within 3
    windows of the change in at least 90% of the rollouts. The e-process finds it in the first
    window (its mixture over start windows); the effect over the last 3 windows clears the 10%
    tolerance at once, where the effect since the first window would lag for a long rollout."""
    rollout = Rollout(windows=healthy + 3, regressed=Arm(latency_scale=1.4), regressed_from=healthy)
    found = 0
    for seed, verdicts in enumerate(rollouts(pool, rollout, range(6_000, 6_000 + rollouts_n))):
        fail = first_fail(verdicts)
        assert fail is None or fail >= healthy, seed
        found += fail is not None
    assert found >= 0.9 * rollouts_n, f"failed within 3 windows in {found} of {rollouts_n}"


# -- verdicts, score and recommendations ------------------------------------------------------


def test_inconclusive_until_enough_traffic_then_promote_or_rollback(
    pool: ProcessPoolExecutor,
) -> None:
    """A healthy canary is Inconclusive ('hold') while it has fewer than min_windows paired
    windows or fewer than min_canary_requests requests (about 600 a window here: the 3rd window
    is still short of 2,000), then Pass ('promote'); a regressed one ends Fail ('rollback');
    every recommendation is the one its verdict calls for (5 rollouts each)."""
    settings = CanarySettings(min_canary_requests=2_000, min_windows=3)
    healthy = rollouts(pool, Rollout(windows=6), range(7_000, 7_005), settings)
    for verdicts in healthy:
        for v in verdicts:
            early = v.canary_requests < 2_000 or v.windows < 3
            assert (v.verdict, v.recommendation) == (
                ("Inconclusive", "hold") if early else ("Pass", "promote")
            )
            assert any(r.startswith("not enough traffic") for r in v.reasons) == early
        assert verdicts[2].windows == 3
        assert verdicts[2].verdict == "Inconclusive"  # enough windows, not enough requests
        assert verdicts[-1].verdict == "Pass"
    slower = Rollout(windows=6, canary=Arm(latency_scale=1.5))
    regressed = rollouts(pool, slower, range(7_010, 7_015), settings)
    for verdicts in regressed:
        assert (verdicts[-1].verdict, verdicts[-1].recommendation) == ("Fail", "rollback")
    for v in (*(v for r in healthy for v in r), *(v for r in regressed for v in r)):
        assert v.recommendation == RECOMMENDATIONS[v.verdict]


def test_a_critical_failure_fails_before_the_minimum_traffic(pool: ProcessPoolExecutor) -> None:
    """Twice as slow: the critical latency_p95 fails the canary in its first window already,
    before min_windows (the evidence is valid at any time), in each of 20 rollouts."""
    doubled = Rollout(windows=1, canary=Arm(latency_scale=2.0))
    for (first,) in rollouts(pool, doubled, range(7_100, 7_120)):
        assert first.windows < CanarySettings().min_windows
        assert (first.verdict, first.recommendation) == ("Fail", "rollback")
        assert first.metric("latency_p95").failing


def _expected_score(verdict: Verdict, settings: CanarySettings) -> float:
    """Per group, the share of its judged (not Nodata) metrics that are not failing; the mean
    over groups weighted by ``settings.weights``, times 100."""
    weights: dict[str, float] = settings.weights.model_dump()
    groups: dict[str, list[bool]] = {}
    for m in verdict.metrics:
        if m.classification != "Nodata":
            groups.setdefault(m.group, []).append(not m.failing)
    total = sum(weights[g] for g in groups)
    return 100 * sum(weights[g] * sum(ok) / len(ok) for g, ok in groups.items()) / total


def test_a_failing_non_critical_metric_is_marginal_not_fail(pool: ProcessPoolExecutor) -> None:
    """Output tokens +60% (and so cost): output_tokens, cost_per_request and the drift of the
    token distribution fail, none of them critical; the score is the weighted share of passing
    metrics per group -- here (30 + 30 + 20 + 15/3 + 0) / 100 -- between 75 and 95: Marginal,
    'hold' (10 rollouts)."""
    settings = CanarySettings()
    wordier = Rollout(canary=Arm(output_tokens_median=400))
    for verdicts in rollouts(pool, wordier, range(8_000, 8_010)):
        last = verdicts[-1]
        assert {m.metric for m in last.failing} == {"output_tokens", "cost_per_request", "drift"}
        assert not any(m.critical for m in last.failing)
        assert last.score is not None
        assert last.score == pytest.approx(_expected_score(last, settings), abs=0.05)
        w = settings.weights
        assert last.score == pytest.approx(
            100
            * (w.latency + w.errors + w.quality + w.cost / 3)
            / (w.latency + w.errors + w.quality + w.cost + w.drift),
            abs=0.05,
        )
        assert settings.marginal_score < last.score < settings.pass_score
        assert (last.verdict, last.recommendation) == ("Marginal", "hold")
        assert last.reasons[0].startswith(f"score {last.score:g} below")


# -- settings -----------------------------------------------------------------------------------


def test_an_unknown_metric_is_refused_by_name() -> None:
    """A typo in a metric table is a validation error naming it, not a silently ignored rule."""
    with pytest.raises(ValidationError, match="latency_p99"):
        CanarySettings.model_validate({"metrics": {"latency_p99": {"tolerance": 0.2}}})


def test_a_partial_override_keeps_the_other_defaults() -> None:
    """Overriding one field of one metric keeps that metric's other fields and every other
    metric at their defaults."""
    settings = CanarySettings.model_validate({"metrics": {"latency_p95": {"tolerance": 0.2}}})
    p95 = settings.metric("latency_p95")
    assert (p95.tolerance, p95.critical, p95.enabled, p95.min_samples) == (0.2, True, True, 100)
    for name, default in DEFAULT_RULES.items():
        if name != "latency_p95":
            assert settings.metric(name) == MetricRule.model_validate(default), name
    assert settings.metric("score.relevance") == MetricRule.model_validate(DEFAULT_RULES["score"])


def test_a_disabled_or_non_critical_metric_does_not_fail_the_verdict(
    pool: ProcessPoolExecutor,
) -> None:
    """The wider-spread canary above fails on latency_p95 alone: with latency_p95 disabled it
    passes (the metric is not even reported); with it non-critical, failing one of 3 latency
    metrics costs 30 / 3 = 10 points: Marginal at 90 (3 rollouts each)."""
    rollout = Rollout(canary=Arm(latency_sigma=0.65))
    disabled = CanarySettings.model_validate({"metrics": {"latency_p95": {"enabled": False}}})
    for verdicts in rollouts(pool, rollout, range(9_000, 9_003), disabled):
        assert "latency_p95" not in {m.metric for m in verdicts[-1].metrics}
        assert verdicts[-1].verdict == "Pass"
    relaxed = CanarySettings.model_validate({"metrics": {"latency_p95": {"critical": False}}})
    for verdicts in rollouts(pool, rollout, range(9_000, 9_003), relaxed):
        assert {m.metric for m in verdicts[-1].failing} == {"latency_p95"}
        assert (verdicts[-1].verdict, verdicts[-1].score) == ("Marginal", 90.0)


def test_marginal_score_above_pass_score_is_refused() -> None:
    """The Marginal band cannot be upside down."""
    with pytest.raises(ValidationError, match="marginal_score"):
        CanarySettings(pass_score=80, marginal_score=90)


# -- the message ----------------------------------------------------------------------------


def test_a_verdict_round_trips_through_json_with_a_stable_id() -> None:
    """model_validate_json(model_dump_json()) gives the same verdict (reasons, metrics and the
    decision time included); the id is derived from the cohort and the window only: two
    different rollouts' verdicts of the same window share it, another window or cohort not."""
    at = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
    ids: list[list[str]] = []
    for seed in (10, 11):  # two rollouts, different data
        rng = np.random.default_rng(seed)
        judge = CanaryJudge(CANARY, CanarySettings())
        pairs = [window_pair(rng, i, canary=Arm(latency_scale=1.5)) for i in range(4)]
        verdicts = judged(judge, pairs, at)
        for verdict in verdicts:
            text = verdict.model_dump_json()
            again = Verdict.model_validate_json(text)
            assert again == verdict
            assert json.loads(text)["verdict_id"] == again.verdict_id == verdict.verdict_id
        assert verdicts[-1].reasons
        ids.append([v.verdict_id for v in verdicts])
    assert ids[0] == ids[1]
    assert len(set(ids[0])) == len(ids[0])
    other = verdicts[-1].model_copy(update={"release": "r3"})
    assert other.verdict_id not in ids[0]


# -- regression packs -------------------------------------------------------------------------


def observed_window(
    cohort: Cohort, index: int, n: int, latency_scale: float, rng: np.random.Generator
) -> Partial:
    """A window built the way the map stage builds it: one ``Partial.add`` per event, each
    event's JSON (with its input tokens) kept for the examples. Inputs from about 100 to
    20,000 tokens, so every input-size bucket has requests."""
    window = Window(60 * index, 60 * index + 60)
    partial = Partial.empty(cohort, window, "*")
    input_tokens = np.maximum(np.round(rng.lognormal(math.log(1_500), 1.2, n)), 1).astype(int)
    output_tokens = np.round(rng.lognormal(math.log(250), 0.5, n)).astype(int)
    latency = rng.lognormal(math.log(900), 0.5, n) * latency_scale
    for i in range(n):
        event_id = f"{cohort[3]}-{index}-{i}"
        event = {"event_id": event_id, "usage": {"input_tokens": int(input_tokens[i])}}
        partial.add(
            Observation(
                event_id=event_id,
                event_time=window.start + i * 60 / n,
                cohort=cohort,
                latency_ms=float(latency[i]),
                ttft_ms=float(latency[i]) * 0.2,
                input_tokens=int(input_tokens[i]),
                output_tokens=int(output_tokens[i]),
                cost_usd=float(input_tokens[i] * 3e-6 + output_tokens[i] * 15e-6),
                input_chars=int(input_tokens[i]) * 4,
                finish_reason="stop",
                response_model="model-" + cohort[2],
                raw=json.dumps(event).encode(),
            )
        )
    return partial


def _bucket(example: Example, edges: tuple[int, ...]) -> int:
    return bisect.bisect_right(edges, json.loads(example.raw)["usage"]["input_tokens"])


def test_a_failing_latency_metric_packs_the_slowest_and_matched_baseline_requests() -> None:
    """Three simulated windows of a canary twice as slow, then a window of real events: the
    judgement's pack for latency_p95 holds the canary's slowest requests of that window and,
    for each, a different baseline request of the same input-size bucket."""
    rng = np.random.default_rng(12)
    judge = CanaryJudge(CANARY, CanarySettings())
    judged(judge, [window_pair(rng, i, canary=Arm(latency_scale=2.0)) for i in range(3)])
    canary = observed_window(CANARY, 3, 400, 2.0, rng)
    baseline = observed_window(BASELINE, 3, 1_600, 1.0, rng)
    judgement = judge.judge(canary, baseline)
    assert judgement is not None
    assert judgement.verdict.verdict == "Fail"
    packs = {pack.metric.metric: pack for pack in judgement.packs}
    assert {"latency_p50", "latency_p95"} <= set(packs)
    assert all(pack.metric.failing for pack in judgement.packs)
    pack = packs["latency_p95"]
    slowest = canary.examples.of("slowest")
    assert [e.event_id for e in pack.canary] == [e.event_id for e in slowest]
    assert len(pack.canary) == canary.settings.top_k
    ranks = [e.rank for e in pack.canary]
    assert ranks == sorted(ranks, reverse=True)
    p98 = canary.latency.quantile(0.98)
    assert p98 is not None
    assert ranks[-1] >= p98
    edges = baseline.settings.input_size_buckets
    assert len(pack.baseline) == len(pack.canary)
    assert len({e.event_id for e in pack.baseline}) == len(pack.baseline)
    for mine, theirs in zip(pack.canary, pack.baseline, strict=True):
        bucket = _bucket(mine, edges)
        assert _bucket(theirs, edges) == bucket
        assert theirs in baseline.examples.of(typical_kind(bucket))  # a typical request of it


# -- windows that say nothing new ---------------------------------------------------------------


def _evidence(verdict: Verdict) -> list[tuple[str, float, float | None, object]]:
    return [(m.metric, m.e_value, m.e_value_other_side, m.cumulative) for m in verdict.metrics]


def test_a_replayed_window_returns_none_and_changes_nothing() -> None:
    """A window judged already (a replay after a restart) gives no verdict, and the judge goes on
    exactly as one that never saw the replay."""
    rng = np.random.default_rng(13)
    pairs = [window_pair(rng, i) for i in range(5)]
    judge, twin = CanaryJudge(CANARY, CanarySettings()), CanaryJudge(CANARY, CanarySettings())
    judged(judge, pairs[:3])
    judged(twin, pairs[:3])
    assert judge.update(*pairs[1]) is None
    assert judge.update(*pairs[2]) is None
    assert judged(judge, pairs[3:]) == judged(twin, pairs[3:])


def test_a_window_without_canary_traffic_returns_none() -> None:
    """No canary request in a window: nothing to judge, no verdict, nothing counted."""
    rng = np.random.default_rng(14)
    judge = CanaryJudge(CANARY, CanarySettings())
    judged(judge, [window_pair(rng, i) for i in range(2)])
    _, baseline = window_pair(rng, 2)
    assert judge.update(Partial.empty(CANARY, Window(120, 180), "*"), baseline) is None
    assert (judge.windows, judge.unpaired_windows) == (2, 0)


@pytest.mark.parametrize("missing", ["none", "empty"])
def test_an_unpaired_window_is_counted_and_adds_no_evidence(missing: str) -> None:
    """A canary window with no baseline aggregate (or an empty one) counts in unpaired_windows
    and leaves the evidence, the cumulative values and the paired-window count as they were;
    later verdicts are those of a judge that never saw it (but for that count)."""
    rng = np.random.default_rng(15)
    pairs = [window_pair(rng, i, canary=Arm(latency_scale=1.2)) for i in range(5)]
    lonely, _ = window_pair(rng, 5, canary=Arm(latency_scale=1.2))
    later = [window_pair(rng, i, canary=Arm(latency_scale=1.2)) for i in range(6, 8)]
    judge, twin = CanaryJudge(CANARY, CanarySettings()), CanaryJudge(CANARY, CanarySettings())
    before = judged(judge, pairs)[-1]
    judged(twin, pairs)
    baseline = None if missing == "none" else Partial.empty(BASELINE, lonely.window, "*")
    unpaired = judge.update(lonely, baseline)
    assert unpaired is not None
    assert (unpaired.windows, unpaired.unpaired_windows) == (before.windows, 1)
    assert unpaired.canary_requests == before.canary_requests
    assert _evidence(unpaired) == _evidence(before)
    assert all(m.window.baseline is None for m in unpaired.metrics)
    for mine, theirs in zip(judged(judge, later), judged(twin, later), strict=True):
        assert mine.unpaired_windows == 1
        assert mine.model_copy(update={"unpaired_windows": 0}) == theirs


def test_a_score_that_is_better_low_fails_when_it_rises() -> None:
    """A score whose rise is bad (toxicity; the failure rules' ``lower_is_better``): the same
    rise of the mean is a failing High for it, and a harmless High for a score better high."""
    rollout = Rollout(windows=5, canary=Arm(score_mean=0.9))
    higher_better = run(rollout, seed=7)[-1].metric("score.relevance")
    assert (higher_better.classification, higher_better.failing) == ("High", False)
    settings = CanarySettings(lower_is_better_scores=frozenset({"relevance"}))
    verdict = run(rollout, seed=7, settings=settings)[-1]
    lower_better = verdict.metric("score.relevance")
    assert (lower_better.bad_direction, lower_better.classification) == ("increase", "High")
    assert lower_better.failing
    assert verdict.verdict == "Fail"

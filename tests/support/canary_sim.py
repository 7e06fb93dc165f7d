"""Seeded simulated rollouts for the canary judge: window aggregates built straight from numpy
draws (every request in the sketches and counts, as the map stage would count them), so
hundreds of rollouts run in seconds."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from driftnet.detectors.canary.config import CanarySettings
from driftnet.detectors.canary.judge import CanaryJudge
from driftnet.detectors.canary.state import ARM_COUNTERS
from driftnet.detectors.canary.verdict import Verdict
from driftnet.detectors.windowing.observation import NUMERIC_FEATURES, Cohort
from driftnet.detectors.windowing.partials import Partial
from driftnet.detectors.windowing.score_stats import ScoreStats
from driftnet.detectors.windowing.sketch import Sketch
from driftnet.detectors.windowing.windows import Window

CANARY: Cohort = ("chat", "production", "r2", "canary")
BASELINE: Cohort = ("chat", "production", "r1", "baseline")
FINISH = np.array(["stop", "length", "tool_calls"])


@dataclass(frozen=True)
class Arm:
    """How one arm's requests are drawn."""

    latency_median_ms: float = 900.0
    latency_sigma: float = 0.5
    latency_scale: float = 1.0
    error_rate: float = 0.02
    refusal_rate: float = 0.01
    score_mean: float = 0.8
    score_sd: float = 0.1
    scored_share: float = 0.3
    output_tokens_median: float = 250.0
    finish_length_share: float = 0.05
    content_share: float = 1.0
    """Share of answered requests whose content the producer captured (refusals are only seen
    among those)."""


def arm_window(
    cohort: Cohort, window: Window, arm: Arm, n: int, rng: np.random.Generator
) -> Partial:
    """One window of ``n`` requests of ``arm`` as its merged aggregate."""
    partial = Partial.empty(cohort, window, "*")
    accuracy = partial.settings.sketch_relative_accuracy
    latency = (
        rng.lognormal(math.log(arm.latency_median_ms), arm.latency_sigma, n) * arm.latency_scale
    )
    ttft = latency * rng.uniform(0.1, 0.3, n)
    input_tokens = np.round(rng.lognormal(math.log(600), 0.6, n))
    output_tokens = np.round(rng.lognormal(math.log(arm.output_tokens_median), 0.5, n))
    cost = input_tokens * 3e-6 + output_tokens * 15e-6
    partial.count = n
    partial.errors = int(rng.binomial(n, arm.error_rate))
    refusals = int(rng.binomial(n, arm.refusal_rate))
    partial.with_content = round((n - partial.errors) * arm.content_share)
    partial.with_output_size = partial.with_content
    partial.refusals = min(round(refusals * arm.content_share), partial.with_content)
    values = {
        "latency_ms": latency,
        "ttft_ms": ttft,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cost_usd": cost,
    }
    partial.sketches = {name: Sketch.of(v, accuracy) for name, v in values.items()}
    partial.input_tokens_sum = float(input_tokens.sum())
    partial.output_tokens_sum = float(output_tokens.sum())
    partial.cost_sum = float(cost.sum())
    scored = int(rng.binomial(n, arm.scored_share))
    if scored:
        scores = np.clip(rng.normal(arm.score_mean, arm.score_sd, scored), 0, 1)
        partial.scores = {
            "relevance": ScoreStats(scored, float(scores.sum()), float((scores**2).sum()))
        }
    finish = np.where(rng.uniform(size=n) < arm.finish_length_share, "length", "stop")
    chars = input_tokens * 4
    columns = {
        "latency_ms": latency, "ttft_ms": ttft, "input_tokens": input_tokens,
        "output_tokens": output_tokens, "input_chars": chars, "cost_usd": cost,
    }  # fmt: skip
    for i in range(min(n, partial.settings.reservoir_size)):
        numeric = tuple(float(columns[name][i]) for name in NUMERIC_FEATURES)
        partial.reservoir.add((numeric, (str(finish[i]), "model-" + cohort[2])))
    partial.reservoir.seen = n
    return partial


@dataclass(frozen=True)
class Rollout:
    """A canary rollout: windows of traffic, the canary's share of it, how each arm behaves,
    and from which window on the canary behaves as ``regressed`` (None: never)."""

    windows: int = 10
    requests_per_window: int = 3_000
    canary_share: float = 0.2
    baseline: Arm = Arm()
    canary: Arm = Arm()
    regressed: Arm | None = None
    regressed_from: int = 0
    baseline_history: bool = True
    """Whether the baseline served a window alone before the canary started (as in a real
    rollout): the rate tests then know its rate from the canary's first window on."""


def run(rollout: Rollout, seed: int, settings: CanarySettings | None = None) -> list[Verdict]:
    """Every window's verdict of one rollout."""
    rng = np.random.default_rng(seed)
    before = None
    if rollout.baseline_history:
        alone = arm_window(
            BASELINE, Window(-60, 0), rollout.baseline, rollout.requests_per_window, rng
        )
        before = {name: int(getattr(alone, name)) for name in ARM_COUNTERS}
    judge = CanaryJudge(CANARY, settings or CanarySettings(), before)
    verdicts = []
    for i in range(rollout.windows):
        window = Window(60 * i, 60 * i + 60)
        n_canary = int(rng.binomial(rollout.requests_per_window, rollout.canary_share))
        canary_arm = rollout.canary
        if rollout.regressed is not None and i >= rollout.regressed_from:
            canary_arm = rollout.regressed
        canary = arm_window(CANARY, window, canary_arm, n_canary, rng)
        baseline = arm_window(
            BASELINE, window, rollout.baseline, rollout.requests_per_window - n_canary, rng
        )
        verdict = judge.update(canary, baseline)
        if verdict is not None:
            verdicts.append(verdict)
    return verdicts


def first_fail(verdicts: list[Verdict]) -> int | None:
    """Index of the first window judged Fail (None: never)."""
    return next((i for i, v in enumerate(verdicts) if v.verdict == "Fail"), None)


__all__ = ["Arm", "Rollout", "arm_window", "first_fail", "replace", "run"]

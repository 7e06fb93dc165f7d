"""Seeded synthetic windows for the detector tests: a stationary cohort and step changes.

Every generator takes its own ``numpy.random.Generator``; nothing touches a global RNG.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from driftnet.detectors.settings import AggregateSettings
from driftnet.detectors.windowing.observation import Cohort, Observation
from driftnet.detectors.windowing.partials import Partial
from driftnet.detectors.windowing.windows import Window

COHORT: Cohort = ("support-chat", "production", "gpt-4o+v7", "baseline")
CANARY: Cohort = ("support-chat", "production", "gpt-4o+v8", "canary")
SETTINGS = AggregateSettings(attributes=("locale",))
FINISH = np.array(["stop", "length", "tool_calls"])
MODELS = np.array(["gpt-4o-2024-08-06", "gpt-4o-mini"])
LOCALES = np.array(["en", "de", "fr"])


@dataclass(frozen=True)
class Traffic:
    """What a cohort's events look like in one window. Defaults: the stationary stream."""

    events: float = 200.0
    latency_scale: float = 1.0
    latency_scale_above_500_tokens: float = 1.0
    ttft_scale: float = 1.0
    input_scale: float = 1.0
    output_scale: float = 1.0
    cost_scale: float = 1.0
    error_rate: float = 0.02
    refusal_rate: float = 0.01
    empty_rate: float = 0.01
    truncated_rate: float = 0.02
    invalid_json_rate: float = 0.01
    negative_feedback_rate: float = 0.10
    breach_rate: float = 0.05
    score_shift: float = 0.0
    length_share: float = 0.05
    uncaptured_rate: float = 0.0
    """Share of answers whose content the producer did not capture."""

    def step(self, **changes: float) -> Traffic:
        """The same traffic with some parameters changed."""
        return replace(self, **changes)


STATIONARY = Traffic()


def window_partial(
    rng: np.random.Generator,
    index: int,
    traffic: Traffic = STATIONARY,
    cohort: Cohort = COHORT,
    size_s: int = 60,
) -> Partial:
    """The merged aggregate of window ``index`` of a cohort with ``traffic``."""
    window = Window(index * size_s, (index + 1) * size_s)
    partial = Partial.empty(cohort, window, "*", SETTINGS)
    n = int(rng.poisson(traffic.events * rng.gamma(50.0, 1 / 50))) if traffic.events else 0
    if n == 0:
        return partial
    input_tokens = np.maximum(rng.lognormal(np.log(800), 0.8, n) * traffic.input_scale, 1)
    output_tokens = np.maximum(rng.lognormal(np.log(150), 0.6, n) * traffic.output_scale, 1)
    latency = (rng.lognormal(np.log(900), 0.4, n) + input_tokens * 0.2) * traffic.latency_scale
    latency = np.where(
        input_tokens >= 500, latency * traffic.latency_scale_above_500_tokens, latency
    )
    ttft = rng.lognormal(np.log(250), 0.3, n) * traffic.ttft_scale
    has_ttft = rng.random(n) < 0.8
    cost = (input_tokens * 2.5 + output_tokens * 10) / 1e6 * traffic.cost_scale
    rated = rng.random(n) < 0.5
    rating = np.where(rng.random(n) < traffic.negative_feedback_rate, -1.0, 1.0)
    score = np.clip(rng.normal(0.85 - traffic.score_shift, 0.1, n), 0, 1)
    breach = rng.random(n) < traffic.breach_rate
    flags = rng.random((5, n)) < np.array(
        [
            [traffic.error_rate],
            [traffic.refusal_rate],
            [traffic.empty_rate],
            [traffic.truncated_rate],
            [traffic.invalid_json_rate],
        ]
    )
    finish = rng.choice(FINISH, n, p=[0.95 - traffic.length_share, traffic.length_share, 0.05])
    model = rng.choice(MODELS, n, p=[0.95, 0.05])
    locale = rng.choice(LOCALES, n, p=[0.7, 0.2, 0.1])
    # drawn only when asked for, so the stationary stream is the one it always was
    blind = rng.random(n) < traffic.uncaptured_rate if traffic.uncaptured_rate else np.zeros(n)
    start = float(window.start)
    for i in range(n):
        event_id = f"{cohort[3]}-{index}-{i}"
        partial.add(
            Observation(
                event_id=event_id,
                event_time=start + i * size_s / n,
                cohort=cohort,
                is_error=bool(flags[0, i]),
                refusal=bool(flags[1, i]),
                empty=bool(flags[2, i]),
                truncated=bool(flags[3, i]),
                invalid_json=bool(flags[4, i]),
                has_content=not blind[i],
                latency_ms=float(latency[i]),
                ttft_ms=float(ttft[i]) if has_ttft[i] else None,
                input_tokens=int(input_tokens[i]),
                output_tokens=int(output_tokens[i]),
                cost_usd=float(cost[i]),
                scores={"faithfulness": float(score[i])},
                score_breaches=("faithfulness",) if breach[i] else (),
                feedback_rating=float(rating[i]) if rated[i] else None,
                negative_feedback=bool(rated[i] and rating[i] < 0),
                input_chars=int(input_tokens[i] * 4),
                finish_reason=str(finish[i]),
                response_model=str(model[i]),
                attributes={"locale": str(locale[i])},
                raw=b'{"event_id": "%s"}' % event_id.encode(),
            )
        )
    return partial


def stream(
    seed: int, windows: int, traffic: Traffic = STATIONARY, cohort: Cohort = COHORT, first: int = 0
) -> list[Partial]:
    """``windows`` consecutive windows of one cohort, from a generator seeded with ``seed``."""
    rng = np.random.default_rng(seed)
    return [window_partial(rng, first + i, traffic, cohort) for i in range(windows)]

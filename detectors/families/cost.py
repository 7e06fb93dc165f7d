"""Cost detectors: cost and tokens per request vs the reference, spend per hour vs a budget.

Events without ``cost_usd`` are priced from the price table when their model is in it; the
table's version is then recorded on the findings. Per-request means are candidates when they
are ``relative_increase`` above the reference and confirmed by a one-sided Mann-Whitney U test
on the sampled values.

>>> import numpy as np
>>> from driftnet.detectors.windowing.observation import Observation
>>> from driftnet.detectors.windowing.partials import Partial
>>> from driftnet.detectors.windowing.windows import Window
>>> rng, cohort = np.random.default_rng(3), ("chat", "production", "r1", "baseline")
>>> def window(i, factor):
...     p = Partial.empty(cohort, Window(60 * i, 60 * i + 60), "*")
...     for j, usd in enumerate(rng.gamma(4.0, 0.0005, 300) * factor):
...         p.add(Observation(f"e{i}-{j}", 60.0 * i, cohort, cost_usd=float(usd)))
...     return p
>>> detector = PerRequest("cost_usd")
>>> [detector.update(window(i, 1.0)).drift_detected for i in range(4)]
[False, False, False, False]
>>> detector.update(window(4, 2.0)).findings[0].metric
'cost_usd_per_request'
"""

from __future__ import annotations

from collections.abc import Sequence
from statistics import median
from typing import Any, Final, Literal

from driftnet.detectors.families.base import Sampled, SampledStatisticDetector, WindowedDetector
from driftnet.detectors.families.samples import thin
from driftnet.detectors.families.snapshot import as_float
from driftnet.detectors.finding import Finding, ReferenceKind
from driftnet.detectors.settings import DetectorSettings
from driftnet.detectors.windowing.partials import Partial

PerRequestMetric = Literal["cost_usd", "input_tokens", "output_tokens"]
_NAMES: Final = {
    "cost_usd": "cost.per_request.v1",
    "input_tokens": "cost.input_tokens.v1",
    "output_tokens": "cost.output_tokens.v1",
}


class PerRequest(SampledStatisticDetector):
    """Mean cost (USD) or input/output tokens per request vs the reference."""

    __slots__ = ("metric", "name")

    def __init__(
        self, metric: PerRequestMetric = "cost_usd", settings: DetectorSettings | None = None
    ) -> None:
        if metric not in _NAMES:
            raise ValueError(f"metric must be one of {sorted(_NAMES)}, got {metric!r}")
        self.metric: PerRequestMetric = metric
        self.name = _NAMES[metric]
        super().__init__(settings)

    def _mean(self, window: Partial) -> float | None:
        sketch = window.sketches[self.metric]
        if sketch.count < self.settings.cost.min_samples:
            return None
        total = {
            "cost_usd": window.cost_sum,
            "input_tokens": window.input_tokens_sum,
            "output_tokens": window.output_tokens_sum,
        }[self.metric]
        return total / sketch.count

    def summarize(self, window: Partial) -> Sampled:
        return Sampled(self._mean(window), thin(window.numeric_column(self.metric)))

    def judge(
        self, window: Partial, current: Sampled, reference: Sequence[Sampled], kind: ReferenceKind
    ) -> list[Finding]:
        increase = self.confirmed_increase(
            window, self.metric, current, reference, self.settings.cost
        )
        if increase is None:
            return []
        mean, before, p = increase.observed, increase.reference, increase.p_value
        metric = f"{self.metric}_per_request"
        return [
            self.finding(
                window,
                metric=metric,
                observed=mean,
                reference=before,
                kind=kind,
                threshold=increase.limit,
                effect_size=mean / before,
                p_value=p,
                message=(
                    f"{metric} {mean:.4g} is x{mean / before:.2f} the {kind} "
                    f"reference {before:.4g} (Mann-Whitney p={p:.1e})"
                ),
                example_kind="costliest",
            )
        ]


class SpendPerHour(WindowedDetector[float]):
    """The window's spend, as USD per hour, vs a budget and vs the reference."""

    __slots__ = ()

    name = "cost.spend_per_hour.v1"

    def __init__(self, settings: DetectorSettings | None = None) -> None:
        super().__init__(settings)

    def summarize(self, window: Partial) -> float:
        return window.cost_sum * 3600.0 / (window.window.end - window.window.start)

    def encode_summary(self, summary: float) -> Any:
        return summary

    def decode_summary(self, data: Any) -> float:
        return as_float(data)

    def judgeable(self, window: Partial, current: float) -> bool:
        return window.count >= self.settings.cost.min_samples

    def judge(
        self, window: Partial, current: float, reference: Sequence[float], kind: ReferenceKind
    ) -> list[Finding]:
        if kind == "baseline":
            return []  # spend scales with the traffic share; per-request cost compares arms
        before = median(reference)
        limit = before * (1 + self.settings.cost.spend_relative_increase)
        if before <= 0 or current <= limit or window.count < self.settings.cost.min_samples:
            return []
        sustained = self.settings.cost.spend_windows - 1  # windows before this one, also above
        if sustained > len(reference) or any(
            s <= limit for s in reference[len(reference) - sustained :]
        ):
            return []
        return [
            self.finding(
                window,
                metric="spend_usd_per_hour",
                observed=current,
                reference=before,
                kind=kind,
                threshold=limit,
                effect_size=current / before,
                message=(
                    f"spend ${current:,.2f}/h is x{current / before:.2f} the trailing "
                    f"${before:,.2f}/h"
                ),
                example_kind="costliest",
            )
        ]

    def judge_absolute(self, window: Partial, current: float) -> list[Finding]:
        budget = self.settings.cost.budget_usd_per_hour
        if budget is None or current <= budget:
            return []
        return [
            self.finding(
                window,
                metric="spend_usd_per_hour",
                observed=current,
                reference=None,
                kind="absolute",
                threshold=budget,
                effect_size=current / budget,
                severity="critical",
                message=f"spend ${current:,.2f}/h is over the ${budget:,.2f}/h budget",
                example_kind="costliest",
            )
        ]

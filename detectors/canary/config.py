"""What the canary judge measures and how it is told to judge (the ``[detectors.canary]`` table).

Every metric has a bad direction, a group (the score is a weighted mean over groups), a
tolerance (a change smaller than it is never High or Low, however significant) and a minimum
sample size below which it is Nodata. Overrides name the metric and keep what they leave out::

    [detectors.canary.metrics.latency_p95]
    tolerance = 0.2        # +20% allowed; critical, enabled and min_samples stay the defaults

    [detectors.canary.metrics.latency_p50]
    decisive_e_value = 1e4 # fails the canary alone once its evidence reaches 10,000

    [detectors.canary.metrics.score]   # every evaluation score (score.<name>)
    critical = false

>>> CanarySettings().metric("latency_p95").critical
True
>>> CanarySettings(metrics={"latency_p95": {"tolerance": 0.2}}).metric("latency_p95").tolerance
0.2
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Group = Literal["latency", "errors", "quality", "cost", "drift"]
Direction = Literal["increase", "decrease"]
TestKind = Literal["quantile", "median", "rate", "score", "drift"]


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """One judged metric: what it reads and which way is bad."""

    name: str
    group: Group
    bad: Direction
    test: TestKind
    feature: str
    """The sketch (quantile, rank), the counter (rate) or the score name it reads."""
    unit: str
    relative: bool
    """Whether the tolerance and the effect are relative (ratio - 1) or absolute (difference)."""
    quantile: float | None = None
    example_kind: str | None = None
    """The canary's worst examples harvested when the metric fails (None: none)."""
    description: str = ""


SCORE: Final = "score"
"""The settings key of every evaluation score metric (``score.<name>``)."""

METRICS: Final = (
    MetricSpec("latency_p50", "latency", "increase", "quantile", "latency_ms", "ms", True, 0.5,
               "slowest", "median latency"),
    MetricSpec("latency_p95", "latency", "increase", "quantile", "latency_ms", "ms", True, 0.95,
               "slowest", "95th percentile latency"),
    MetricSpec("ttft_p50", "latency", "increase", "quantile", "ttft_ms", "ms", True, 0.5,
               "slowest", "median time to first token"),
    MetricSpec("error_rate", "errors", "increase", "rate", "errors", "share", False, None,
               "failed", "share of requests with status error"),
    MetricSpec("refusal_rate", "errors", "increase", "rate", "refusals", "share", False, None,
               "failed", "share of refused requests"),
    MetricSpec("negative_feedback_rate", "quality", "increase", "rate", "negative_feedback",
               "share", False, None, "failed", "share of rated requests rated negatively"),
    MetricSpec("cost_per_request", "cost", "increase", "median", "cost_usd", "usd", True, None,
               "costliest", "mean cost of a request"),
    MetricSpec("input_tokens", "cost", "increase", "median", "input_tokens", "tokens", True, None,
               "costliest", "mean input tokens of a request"),
    MetricSpec("output_tokens", "cost", "increase", "median", "output_tokens", "tokens", True,
               None, "costliest", "mean output tokens of a request"),
    MetricSpec("drift", "drift", "increase", "drift", "", "statistic", False, None, None,
               "input/output feature distributions vs the baseline's (KS, total variation)"),
)  # fmt: skip
"""The fixed metrics, in report order; ``score.<name>`` metrics follow them."""


def score_spec(name: str, lower_is_better: bool = False) -> MetricSpec:
    """The metric of evaluation score ``name`` (its mean; a drop is bad unless lower is better)."""
    bad: Direction = "increase" if lower_is_better else "decrease"
    return MetricSpec(f"{SCORE}.{name}", "quality", bad, "score", name, "score", False,
                      None, "failed", f"mean evaluation score {name!r}")  # fmt: skip


class MetricRule(BaseModel):
    """How one metric is judged."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    enabled: bool = True
    """Judge the metric; a disabled one is never judged and takes no share of ``alpha``."""
    critical: bool = False
    """A critical metric on its bad side fails the canary whatever the score."""
    tolerance: float = Field(ge=0)
    """The largest change that is still fine: a side is only shown once the change is beyond
    it. Relative (0.04 = 4%) for latency, cost and tokens, rounded up to whole bins of the
    2%-accurate sketches (4%, 8.3%, 12.6%...); absolute for rates (0.005 = half a point) and
    scores (score units); the KS or total variation statistic for drift."""
    min_samples: int = Field(gt=0)
    """Values each arm needs (cumulatively) before the metric is judged; Nodata below."""
    decisive_e_value: float | None = Field(None, ge=1)
    """A metric that is not critical fails the canary on its own -- whatever the score, even
    before ``min_canary_requests`` and ``min_windows`` -- once the largest e-value of its bad
    side reaches this (None: never; failing, it only lowers the score). Ville's inequality
    bounds the chance that a metric within its tolerance ever gets there by one over it, at
    any window; a value below ``tests / alpha`` (the e-value at which a metric fails) counts
    as that. Default 1000 for ``latency_p50`` and ``ttft_p50`` (a slower median is a latency
    regression, shown windows before the p95 shows it), None for the others."""


DEFAULT_RULES: Final[dict[str, dict[str, Any]]] = {
    "latency_p50": {"tolerance": 0.04, "min_samples": 50, "decisive_e_value": 1000},
    "latency_p95": {"tolerance": 0.04, "min_samples": 100, "critical": True},
    "ttft_p50": {"tolerance": 0.04, "min_samples": 50, "decisive_e_value": 1000},
    "error_rate": {"tolerance": 0.002, "min_samples": 100, "critical": True},
    "refusal_rate": {"tolerance": 0.01, "min_samples": 100},
    "negative_feedback_rate": {"tolerance": 0.02, "min_samples": 50},
    "cost_per_request": {"tolerance": 0.1, "min_samples": 50},
    "input_tokens": {"tolerance": 0.1, "min_samples": 50},
    "output_tokens": {"tolerance": 0.1, "min_samples": 50},
    "drift": {"tolerance": 0.15, "min_samples": 50},
    SCORE: {"tolerance": 0.05, "min_samples": 30, "critical": True},
}


class GroupWeights(BaseModel):
    """Weights of the metric groups in the score (groups with no judged metric drop out)."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    latency: float = Field(30, ge=0)
    """Weight of ``latency_p50``, ``latency_p95`` and ``ttft_p50``."""
    errors: float = Field(30, ge=0)
    """Weight of ``error_rate`` and ``refusal_rate``."""
    quality: float = Field(20, ge=0)
    """Weight of ``negative_feedback_rate`` and the ``score.<name>`` metrics."""
    cost: float = Field(15, ge=0)
    """Weight of ``cost_per_request``, ``input_tokens`` and ``output_tokens``."""
    drift: float = Field(5, ge=0)
    """Weight of ``drift``."""


class CanarySettings(BaseModel):
    """The canary judge: a verdict for every canary cohort against its baseline."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    enabled: bool = True
    """Judge every canary cohort against its baseline and publish verdicts."""
    baseline_variant: str = Field("baseline", min_length=1)
    """The variant of baseline cohorts; every other variant is a canary of the same service
    and environment."""
    alpha: float = Field(0.05, gt=0, lt=1)
    """Bound on the chance that a canary no worse than its baseline is ever failed, over the
    whole rollout however many windows it is judged in (split evenly over the metrics)."""
    pass_score: float = Field(95, ge=0, le=100)
    """A verdict with enough traffic, no failing critical metric and at least this score is
    Pass."""
    marginal_score: float = Field(75, ge=0, le=100)
    """Below ``pass_score`` a verdict is Marginal, below ``marginal_score`` Fail."""
    min_canary_requests: int = Field(500, ge=1)
    """Canary requests over the rollout, and..."""
    min_windows: int = Field(3, ge=1)
    """...paired windows: before both are reached a verdict is Inconclusive, unless a
    critical metric fails."""
    max_scores: int = Field(4, ge=0, le=32)
    """Evaluation scores judged (the first, by name); each takes a share of ``alpha``."""
    weights: GroupWeights = Field(default_factory=GroupWeights)
    metrics: dict[str, MetricRule] = Field(default_factory=dict)
    """How each metric is judged, by name (``score`` for every ``score.<name>``); a table
    keeps the defaults it leaves out, which differ by metric (see the Canary judge section)."""
    lower_is_better_scores: frozenset[str] = frozenset()
    """Scores whose increase is bad (toxicity). The worker adds every score that the failure
    rules (``[rules]``) declare ``direction = "lower_is_better"``."""

    @model_validator(mode="before")
    @classmethod
    def _merged_rules(cls, data: Any) -> Any:
        """Every metric gets a rule: the defaults, updated by what the config gives."""
        if not isinstance(data, Mapping):
            return data
        given = data.get("metrics") or {}
        if not isinstance(given, Mapping):
            return data
        unknown = sorted(set(given) - set(DEFAULT_RULES))
        if unknown:
            raise ValueError(
                f"unknown canary metric {', '.join(map(repr, unknown))}; "
                f"known: {', '.join(DEFAULT_RULES)}"
            )
        metrics = {}
        for name, default in DEFAULT_RULES.items():
            rule = given.get(name, {})
            if isinstance(rule, MetricRule):
                rule = rule.model_dump()
            metrics[name] = {**default, **rule} if isinstance(rule, Mapping) else rule
        return {**data, "metrics": metrics}

    @model_validator(mode="after")
    def _thresholds_ordered(self) -> CanarySettings:
        if self.marginal_score > self.pass_score:
            raise ValueError("marginal_score must not exceed pass_score")
        if not any(self.weights.model_dump().values()):
            raise ValueError("at least one of the weights must be above 0")
        return self

    def metric(self, name: str) -> MetricRule:
        """The rule of metric ``name`` (``score.<x>`` metrics share the ``score`` rule)."""
        key = SCORE if name.startswith(f"{SCORE}.") else name
        if key in self.metrics:
            return self.metrics[key]
        return MetricRule.model_validate(DEFAULT_RULES[key])

    @property
    def tests(self) -> int:
        """Metrics that can be judged, each tested at ``alpha / tests``."""
        fixed = sum(self.metric(m.name).enabled for m in METRICS)
        return fixed + (self.max_scores if self.metric(SCORE).enabled else 0)

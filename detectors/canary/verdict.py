"""A canary verdict: the message on ``driftnet.verdicts`` a deploy system acts on.

Kayenta's vocabulary: each metric is classified Pass, High, Low or Nodata; a 0-100 score comes
from weighted metric groups; the verdict is Pass, Marginal or Fail -- plus Inconclusive (Argo
Rollouts' word) while the canary has too little traffic to say -- with the recommendation a
rollout controller follows: promote, hold or rollback.
"""

from __future__ import annotations

import hashlib
from typing import Any, Final, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, computed_field, model_validator

from driftnet.detectors.canary.config import Direction, Group

JUDGE: Final = "canary.judge.v1"
Classification = Literal["Pass", "High", "Low", "Nodata"]
Outcome = Literal["Pass", "Marginal", "Fail", "Inconclusive"]
Recommendation = Literal["promote", "hold", "rollback"]

RECOMMENDATIONS: Final[dict[str, Recommendation]] = {
    "Pass": "promote",
    "Marginal": "hold",
    "Inconclusive": "hold",
    "Fail": "rollback",
}

_FROZEN = ConfigDict(frozen=True, extra="forbid")


class ArmValues(BaseModel):
    """A metric's value in each arm and the samples behind them."""

    model_config = _FROZEN

    canary: float | None
    baseline: float | None
    canary_n: int
    baseline_n: int


class MetricVerdict(BaseModel):
    """One metric of one verdict."""

    model_config = _FROZEN

    metric: str
    group: Group
    bad_direction: Direction
    critical: bool
    classification: Classification
    """From the evidence since the canary's first window (not this window alone)."""
    failing: bool
    """Classified on its bad side (High when an increase is bad, Low when a decrease is)."""
    unit: str
    cumulative: ArmValues
    """Since the canary's first window, over the windows both arms had traffic."""
    recent: ArmValues
    """The last 3 paired windows (a change that began late shows here first)."""
    window: ArmValues
    """This window alone (context: the classification uses the cumulative evidence)."""
    effect: float | None
    """Relative (canary / baseline - 1) or absolute (canary - baseline), as ``relative`` says;
    for drift, the largest KS or total variation statistic of the window."""
    recent_effect: float | None
    """The same over the last 3 paired windows. A side is High or Low when its evidence is
    strong enough and either effect is beyond the tolerance on that side."""
    relative: bool
    tolerance: float
    e_value: float
    """Evidence for a change on the bad side (an e-process: at most 1 expected when there is
    none); the metric is on its bad side once it reaches ``e_threshold``."""
    e_value_other_side: float | None
    e_threshold: float
    p_value: float
    """Anytime-valid p-value of the bad side (``1 / largest e_value so far``)."""
    test: str

    def headline(self) -> tuple[float | None, Literal["cumulative", "recent"]]:
        """The effect to show: the cumulative one, unless only the recent one is beyond the
        tolerance in the classified direction (a change that began late)."""
        if self.classification in ("High", "Low") and self.effect is not None:
            sign = 1 if self.classification == "High" else -1
            if sign * self.effect <= self.tolerance and self.recent_effect is not None:
                return self.recent_effect, "recent"
        return self.effect, "cumulative"


class Verdict(BaseModel):
    """The canary judge's verdict on one canary after one window."""

    model_config = _FROZEN

    judge: str = JUDGE
    service: str
    environment: str
    release: str
    variant: str
    baseline_release: str | None
    baseline_variant: str
    window_start: int
    window_end: int
    since: int
    """Start of the canary's first judged window."""
    windows: int
    """Windows with traffic in both arms so far."""
    unpaired_windows: int
    """Windows in which the canary had traffic and the baseline none (not judged)."""
    canary_requests: int
    baseline_requests: int
    score: float | None
    verdict: Outcome
    recommendation: Recommendation
    reasons: tuple[str, ...]
    """Why, in sentences: failing metrics first."""
    metrics: tuple[MetricVerdict, ...]
    alpha: float
    method: str
    decided_at: AwareDatetime | None = None

    @model_validator(mode="before")
    @classmethod
    def _derived_id(cls, data: Any) -> Any:
        if isinstance(data, dict) and "verdict_id" in data:
            return {k: v for k, v in data.items() if k != "verdict_id"}
        return data

    @computed_field  # type: ignore[prop-decorator]
    @property
    def verdict_id(self) -> str:
        """Deterministic: the same canary and window give the same id (a replayed window
        re-sends the same verdict, and its regression records keep their ids)."""
        key = "\x1f".join((self.judge, *self.cohort, str(self.window_end)))
        return hashlib.sha256(key.encode()).hexdigest()[:32]

    @property
    def cohort(self) -> tuple[str, str, str, str]:
        return (self.service, self.environment, self.release, self.variant)

    @property
    def failing(self) -> tuple[MetricVerdict, ...]:
        return tuple(m for m in self.metrics if m.failing)

    def metric(self, name: str) -> MetricVerdict:
        """The verdict of metric ``name`` (``KeyError`` when it is not judged)."""
        for metric in self.metrics:
            if metric.metric == name:
                return metric
        raise KeyError(name)

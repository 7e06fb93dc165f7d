"""A detector's finding: what moved, in which cohort and window, against what, and how sure."""

from __future__ import annotations

import hashlib
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, computed_field, model_validator

Severity = Literal["warning", "critical"]
ReferenceKind = Literal["trailing", "baseline", "absolute"]
"""``trailing``: the cohort's own previous windows. ``baseline``: the baseline cohort in the same
window (canary judge). ``absolute``: a configured SLO or budget."""


class Finding(BaseModel):
    """One detector firing on one cohort's window. Frozen; JSON via ``model_dump(mode="json")``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    detector: str
    """Registered, versioned detector name, e.g. ``latency.p95.v1``."""
    cohort: tuple[str, str, str, str]
    window_start: int
    window_end: int
    metric: str
    """What was measured, e.g. ``latency_p95_ms`` or ``error_rate``."""
    observed: float
    reference: float | None
    """The reference's value of the metric (None for an absolute threshold alone)."""
    reference_kind: ReferenceKind
    threshold: float | None
    """The value the observation had to cross (SLO, budget, or reference x (1 + tolerance))."""
    effect_size: float | None = None
    """Ratio to the reference, difference in points, or a test statistic, as ``message`` says."""
    p_value: float | None = None
    severity: Severity = "warning"
    message: str
    example_event_ids: tuple[str, ...] = ()
    """Events that show the problem (their full records travel in the window's partial)."""
    example_kind: str | None = None
    """Which worst examples of the aggregate back the finding (slowest, costliest, failed)."""
    price_table_version: str | None = None
    """Set when some costs of the window were priced from the price table."""
    report: str | None = None
    """Where a report that shows the finding is (evidently's HTML drift report for the full
    drift check), when the stream side stored one."""

    @model_validator(mode="before")
    @classmethod
    def _derived_id(cls, data: Any) -> Any:
        """A finding read back from JSON carries its id; it is derived, so it is dropped."""
        if isinstance(data, dict) and "finding_id" in data:
            return {k: v for k, v in data.items() if k != "finding_id"}
        return data

    @computed_field  # type: ignore[prop-decorator]
    @property
    def finding_id(self) -> str:
        """Deterministic: the same detector, cohort, window, metric and reference kind give the
        same id, so a recomputed window does not alert twice."""
        key = "\x1f".join(
            (
                self.detector,
                "/".join(self.cohort),
                str(self.window_start),
                self.metric,
                self.reference_kind,
            )
        )
        return hashlib.sha256(key.encode()).hexdigest()[:32]

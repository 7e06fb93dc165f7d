"""The sentences a verdict gives as reasons: failing metrics, traffic, score, uncaptured content."""

from __future__ import annotations

from typing import Final

from driftnet.detectors.canary.state import RECENT_WINDOWS, Arm
from driftnet.detectors.canary.verdict import MetricVerdict

CONTENT_GAP: Final = 0.5
"""A canary whose share of answers with captured content is this much below the baseline's
gets a reason saying its content-based metrics are unmeasured."""


def describe(metric: MetricVerdict) -> str:
    """One sentence on a metric: its class, both arms' values, the change and the evidence."""
    effect, over = metric.headline()
    values = metric.recent if over == "recent" else metric.cumulative
    if metric.metric == "drift":
        return f"drift {metric.classification}: features differ from the baseline's (statistic {effect:.2f})"
    change = (
        f"{effect:+.0%}" if metric.relative and effect is not None
        else f"{effect * 100:+.2f} points" if metric.unit == "share" and effect is not None
        else f"{effect:+.3g}" if effect is not None else "?"
    )  # fmt: skip
    critical = "critical metric " if metric.critical else ""
    return (
        f"{critical}{metric.metric} {metric.classification}: canary {_show(values.canary, metric.unit)} "
        f"vs baseline {_show(values.baseline, metric.unit)} ({change}"
        f"{f' over the last {RECENT_WINDOWS} windows' if over == 'recent' else ''}; "
        f"e-value {metric.e_value:g} >= {metric.e_threshold:g})"
    )


def _show(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "ms":
        return f"{value:,.0f} ms"
    if unit == "share":
        return f"{value:.2%}"
    if unit == "usd":
        return f"${value:.4g}"
    if unit == "tokens":
        return f"{value:,.0f} tokens"
    return f"{value:.3g}"


def not_enough_traffic(requests: int, min_requests: int, windows: int, min_windows: int) -> str:
    """Why a verdict is Inconclusive: the canary's traffic so far and what it needs."""
    return (
        f"not enough traffic yet: {requests} canary requests "
        f"(needs {min_requests}) in {windows} paired windows "
        f"(needs {min_windows})"
    )


def score_below(score: float, threshold: float) -> str:
    """Why a verdict is Fail or Marginal without a failing critical metric."""
    return f"score {score:g} below {threshold:g}"


def content_gap(canary: Arm, baseline: Arm) -> str | None:
    """A reason when the canary sends its answers' content far less often than the baseline
    (its refusal rate is then unmeasured, not zero: never a quality win)."""
    mine, theirs = canary.content_share, baseline.content_share
    if mine is None or theirs is None or theirs - mine < CONTENT_GAP:
        return None
    answered = canary.counters.get("count", 0) - canary.counters.get("errors", 0)
    return (
        f"content not captured: the canary sent its answers' content in {mine:.0%} of "
        f"{answered:,} answered requests (baseline {theirs:.0%}); refusal_rate is unmeasured"
    )

"""The sentences a verdict gives as reasons: failing metrics, traffic, score, uncaptured content."""

from __future__ import annotations

import math
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


def decisive_evidence(metrics: list[tuple[MetricVerdict, float | None]]) -> str:
    """Why metrics that are not critical fail the canary whatever the score and the traffic:
    their evidence reached their ``decisive_e_value``."""
    shown = ", ".join(
        f"{m.metric} e-value {_e(1 / m.p_value if m.p_value > 0 else math.inf)} "
        f">= {_e(threshold or 0)}"
        for m, threshold in metrics
    )
    return (
        f"decisive evidence: {shown} (anytime-valid: a metric within its tolerance gets there "
        "with a chance of at most one over the threshold, at any window)"
    )


def _e(value: float) -> str:
    return f"{value:,.0f}" if value < 1e6 else f"{value:.3g}"


def failed_early(requests: int, min_requests: int, windows: int, min_windows: int) -> str:
    """Why a Fail came before the minimum sample: the evidence is valid at any sample size."""
    return (
        f"failed before the minimum sample: {requests} canary requests "
        f"(a Pass needs {min_requests}) in {windows} paired windows "
        f"(a Pass needs {min_windows}); the e-processes are valid at any sample size"
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

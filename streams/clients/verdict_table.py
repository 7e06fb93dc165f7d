"""Canary verdicts as a rich table: the rows ``driftnet canary status`` and ``driftnet demo`` print."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from driftnet.detectors.canary.verdict import MetricVerdict, Verdict

if TYPE_CHECKING:
    from rich.table import Table

COLUMNS = (
    "service",
    "environment",
    "canary",
    "baseline",
    "verdict",
    "score",
    "action",
    "windows",
    "requests",
    "failing",
    "as of",
)
_STYLES = {"Pass": "green", "Marginal": "yellow", "Fail": "bold red", "Inconclusive": "cyan"}


def change(metric: MetricVerdict) -> str:
    """A failing metric in a few characters: ``latency_p95 +80%``, ``error_rate +3.1pt``."""
    effect, _ = metric.headline()
    if effect is None:
        return f"{metric.metric} {metric.classification}"
    if metric.relative:
        return f"{metric.metric} {effect:+.0%}"
    if metric.unit == "share":
        return f"{metric.metric} {effect * 100:+.1f}pt"
    return f"{metric.metric} {effect:+.2g}"


def status_rows(verdicts: list[Verdict]) -> list[tuple[str, ...]]:
    """One row of :data:`COLUMNS` per canary."""
    rows: list[tuple[str, ...]] = []
    for v in verdicts:
        failing = sorted(v.failing, key=lambda m: (not m.critical, m.metric))
        rows.append(
            (
                v.service,
                v.environment,
                f"{v.release} ({v.variant})",
                v.baseline_release or "-",
                v.verdict,
                "-" if v.score is None else f"{v.score:g}",
                v.recommendation,
                str(v.windows),
                f"{v.canary_requests:,} / {v.baseline_requests:,}",
                ", ".join(change(m) for m in failing) or "-",
                datetime.fromtimestamp(v.window_end, UTC).strftime("%Y-%m-%d %H:%M"),
            )
        )
    return rows


def verdict_table(verdicts: list[Verdict], title: str, columns: tuple[str, ...] = COLUMNS) -> Table:
    """The verdicts as a rich table of ``columns`` (of :data:`COLUMNS`), each verdict in its
    colour."""
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for name in columns:
        table.add_column(
            name,
            justify="right" if name in ("score", "windows") else "left",
            no_wrap=name != "failing",  # the one long cell wraps in a narrow terminal
        )
    for verdict, row in zip(verdicts, status_rows(verdicts), strict=True):
        cells = dict(zip(COLUMNS, row, strict=True))
        cells["verdict"] = f"[{_STYLES[verdict.verdict]}]{cells['verdict']}[/]"
        table.add_row(*(cells[name] for name in columns))
    return table

"""Canary verdicts as rich tables: every column (:func:`verdict_table`, ``driftnet canary
status`` in a wide terminal or a pipe) or three that fit 80 columns (:func:`compact_verdict_table`:
``driftnet demo``, and ``canary status`` in a narrow terminal) -- never a verdict, score or
failing metric cut."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from driftnet.detectors.canary.verdict import MetricVerdict, Verdict

if TYPE_CHECKING:
    from collections.abc import Sequence

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


def compact_verdict_table(verdicts: Sequence[Verdict], title: str) -> Table:
    """One row per canary: its service, release and requests (canary / baseline); its
    verdict, the action and the score; each failing metric with its change on a line of its
    own. At 80 columns the failing metrics get 29 characters or more, and wrap past that."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title, title_justify="left", box=box.HEAVY_HEAD)
    table.add_column("canary", no_wrap=True)  # a release is one long word: kept whole
    table.add_column("verdict", no_wrap=True)
    table.add_column("failing", overflow="fold", min_width=12)
    for verdict in verdicts:
        failing = sorted(verdict.failing, key=lambda m: (not m.critical, m.metric))
        requests = f"canary {verdict.canary_requests:,} / baseline {verdict.baseline_requests:,}"
        score = "-" if verdict.score is None else f"{verdict.score:g}"
        outcome = (verdict.verdict, _STYLES[verdict.verdict])
        table.add_row(
            Text.assemble(
                (verdict.service, "bold"), "\n", verdict.release, "\n", (requests, "dim")
            ),
            Text.assemble(outcome, "\n", verdict.recommendation, "\n", f"score {score}"),
            Text("\n".join(change(m) for m in failing) or "-"),
            end_section=True,
        )
    return table


def fitting_verdict_table(verdicts: Sequence[Verdict], title: str, width: int) -> Table:
    """Every column when they fit in ``width``, else the three of
    :func:`compact_verdict_table` (a terminal of 80 columns used to show ``Pa…`` and no score)."""
    from io import StringIO

    from rich.console import Console

    full = verdict_table(list(verdicts), title)
    unbounded = Console(width=10_000, file=StringIO())  # rich clamps a measure to the width
    return (
        full if unbounded.measure(full).maximum <= width else compact_verdict_table(verdicts, title)
    )

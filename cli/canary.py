"""``driftnet canary status``: the current verdict of every canary, read from the verdicts topic."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import click

from driftnet.cli.context import Context, pass_context
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


@click.group()
def canary() -> None:
    """Canary verdicts: each canary release judged against its baseline."""


@canary.command("status")
@click.option("--service", help="Only the canaries of this service.")
@click.option(
    "--since",
    default="24h",
    show_default=True,
    help="Only verdicts published in this last span (30m, 6h, 7d) or since a time (ISO); "
    "'all' reads the whole topic.",
)
@click.option(
    "--format",
    "output",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="A table, or the latest verdicts as JSON lines (everything the deploy system sees).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=10.0,
    show_default=True,
    help="Seconds to spend reading the verdicts topic.",
)
@pass_context
def status(context: Context, service: str | None, since: str, output: str, timeout: float) -> None:
    """Print the latest verdict of every canary (from the verdicts topic), newest first:
    verdict, score, recommended action (promote / hold / rollback) and failing metrics."""
    from driftnet.cli.harvest import parse_time
    from driftnet.streams.verdicts import VerdictsError, read_latest

    settings = context.settings
    now = datetime.now(UTC)
    since_s = None if since == "all" else (now - parse_time(since, now)).total_seconds()
    try:
        latest = read_latest(
            settings.kafka, settings.topics.verdicts.name, timeout_s=timeout, since_s=since_s
        )
    except VerdictsError as exc:
        raise click.ClickException(str(exc)) from None
    verdicts = [v for v in latest.ordered() if service is None or v.service == service]
    if output == "json":
        for verdict in verdicts:
            click.echo(json.dumps(verdict.model_dump(mode="json"), sort_keys=True))
        return
    if latest.unreadable:
        click.echo(f"skipped {latest.unreadable} unreadable messages", err=True)
    if not verdicts:
        click.echo(f"no canary verdicts on {settings.topics.verdicts.name} yet")
        return
    from rich.console import Console

    table = verdict_table(verdicts, f"canary verdicts ({settings.topics.verdicts.name})")
    # Into a pipe or a file, every row whole (rich would cut it at 80 columns).
    Console(width=None if sys.stdout.isatty() else 1_000).print(table)


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

"""``driftnet canary status``: the current verdict of every canary, read from the verdicts topic."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime

import click

from driftnet.cli.context import Context, pass_context
from driftnet.cli.group import Group
from driftnet.cli.params import Choice, Time


@click.group(cls=Group)
def canary() -> None:
    """Canary verdicts: each canary release judged against its baseline."""


@canary.command("status")
@click.option("--service", help="Only the canaries of this service.")
@click.option(
    "--since",
    type=Time(keywords=("all",)),
    default="24h",
    show_default=True,
    help="Only verdicts published in this last span (30m, 6h, 7d) or since a time (ISO); "
    "'all' reads the whole topic.",
)
@click.option(
    "--format",
    "output",
    type=Choice(["table", "json"], "an output format"),
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
def status(
    context: Context, service: str | None, since: datetime | str, output: str, timeout: float
) -> None:
    """Print the latest verdict of every canary (from the verdicts topic), newest first:
    verdict, score, recommended action (promote / hold / rollback) and failing metrics."""
    from driftnet.streams.clients.verdict_table import fitting_verdict_table
    from driftnet.streams.clients.verdicts import VerdictsError, read_latest

    settings = context.settings
    now = datetime.now(UTC)
    since_s = None if isinstance(since, str) else (now - since).total_seconds()
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

    title = f"canary verdicts ({settings.topics.verdicts.name})"
    # Into a pipe or a file, every column, each row whole (rich would cut it at 80 columns);
    # in a terminal too narrow for every column, the three that fit (nothing cut).
    console = Console(width=None if sys.stdout.isatty() else 1_000)
    console.print(fitting_verdict_table(verdicts, title, console.width))

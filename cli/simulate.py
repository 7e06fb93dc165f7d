"""``driftnet simulate``: play a scenario's events to Kafka at a steady rate, or to a file."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any, cast

import click
import orjson

from driftnet.cli.context import Context, pass_context
from driftnet.cli.files import force_option, open_output, output_target
from driftnet.cli.params import Choice, Duration, Time
from driftnet.cli.topics import create_topic_option, require_topics
from driftnet.sandbox.simulation import SCENARIOS, ScenarioName, Simulator, start_of


@click.command()
@click.option(
    "--scenario",
    type=Choice(sorted(SCENARIOS), "a scenario"),
    default="healthy",
    show_default=True,
    help="What goes wrong (see the scenario table in docs/getting-started.md).",
)
@click.option("--rate", type=click.FloatRange(min=0.1), default=200.0, show_default=True,
              help="Events per second of wall time.")  # fmt: skip
@click.option("--duration", type=Duration(), default="10m", show_default=True,
              help="Event time the scenario covers (90s, 30m, 2h).")  # fmt: skip
@click.option("--speedup", type=click.FloatRange(min=1.0), default=1.0, show_default=True,
              help="Event time per wall second: 60 plays 30 minutes in 30 seconds.")  # fmt: skip
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed, same events.")
@click.option("--start", type=Time(), help="Event time of the first event (ISO); default: so that the "
              "scenario ends now (with -o), or when the last event is sent.")  # fmt: skip
@click.option("--canary-share", type=click.FloatRange(0.0, 1.0), default=0.25, show_default=True)
@click.option("--output", "-o", help="Write JSON lines here instead of publishing ('-' for "
              "stdout); no pacing.")  # fmt: skip
@force_option()
@click.option("--topic", help="Topic to publish to [default: topics.events].")
@create_topic_option
@click.option("--quiet", is_flag=True, help="No progress bar.")
@pass_context
def simulate(
    context: Context,
    scenario: str,
    rate: float,
    duration: float,
    speedup: float,
    seed: int,
    start: datetime | None,
    canary_share: float,
    output: str | None,
    force: bool,
    topic: str | None,
    create_topic: bool,
    quiet: bool,
) -> None:
    """Publish realistic v1 events: three services, six tenants, a baseline/canary split, and
    a SCENARIO in which something goes wrong part-way through. Published, the scenario ends
    when its last event is sent (at --rate, so event time keeps pace with the clock); written
    to a file (-o), it ends now."""
    span = duration
    wall = span / speedup
    count = max(1, round(rate * wall))
    # Published, the events go out over `wall` seconds from now: the last one is sent then.
    ends_in = wall if output is None else 0.0
    first = start_of(start) if start else start_of() - timedelta(seconds=span - ends_in)
    chosen = SCENARIOS[cast(ScenarioName, scenario)]
    simulator = Simulator(chosen, first, span, seed=seed, canary_share=canary_share)
    events = simulator.events(count)
    if output is not None:
        _write(events, output_target(output, force=force))
        click.echo(f"wrote {count:,} {scenario} events ({_span(first, span)})", err=True)
        return
    target = topic or context.settings.topics.events.name
    require_topics(context, [target], create=create_topic)
    _publish(context, events, count, rate, target, quiet, f"{scenario} {_span(first, span)}")


def _write(events: Iterable[dict[str, Any]], target: str | None) -> None:
    sink = open_output(target) if target else sys.stdout.buffer
    try:
        for event in events:
            sink.write(orjson.dumps(event) + b"\n")
    finally:
        if target:
            sink.close()
        else:
            sink.flush()


def _span(first: datetime, span: float) -> str:
    last = first + timedelta(seconds=span)
    return f"event time {first:%Y-%m-%d %H:%M:%S} to {last:%H:%M:%S} UTC"


def _publish(
    context: Context,
    events: Iterable[dict[str, Any]],
    count: int,
    rate: float,
    target: str,
    quiet: bool,
    title: str,
) -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from driftnet.streams.clients.publisher import EventPublisher

    settings = context.settings
    started = time.monotonic()
    sent = 0
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]:>8,.0f} events/s"),
        TimeElapsedColumn(),
    )
    with (
        EventPublisher(settings.kafka, target, settings.publisher) as publisher,
        Progress(*columns, disable=quiet, transient=False) as progress,
    ):
        task = progress.add_task(title, total=count, rate=0.0)
        for event in events:
            ahead = started + sent / rate - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
            publisher.publish(event)
            sent += 1
            if sent % 200 == 0 or sent == count:
                elapsed = max(time.monotonic() - started, 1e-9)
                progress.update(task, completed=sent, rate=sent / elapsed)
        publisher.flush(30)
        stats = publisher.stats
    elapsed = time.monotonic() - started
    click.echo(
        f"sent {stats.sent:,} of {count:,} events to {target} at "
        f"{settings.kafka.bootstrap_servers} in {elapsed:.1f} s ({stats.sent / elapsed:,.0f}/s)"
    )
    if stats.dropped_total:
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(stats.dropped.items()))
        why = reasons if stats.reached else "is a broker running?"
        raise click.ClickException(f"{stats.dropped_total} events were not delivered ({why})")

"""The ``driftnet`` command: every subcommand a user runs.

Errors a user can cause (a bad setting, a missing file, a busy port) print one line and
exit non-zero; they never print a traceback.
"""

from __future__ import annotations

import json
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import click

from driftnet.cli.canary import canary
from driftnet.cli.context import Context, pass_context
from driftnet.cli.dlq import dlq
from driftnet.cli.files import FolderPath, InputFile
from driftnet.cli.group import Group
from driftnet.cli.harvest import COMMANDS as HARVEST_COMMANDS
from driftnet.cli.harvest import harvest as harvest_group
from driftnet.cli.silence import silence
from driftnet.cli.simulate import simulate
from driftnet.cli.themes import harvest_themes
from driftnet.cli.topics import create_topic_option, require_topics, topics


@click.group(cls=Group, name="driftnet", context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="TOML settings file (or $DRIFTNET_CONFIG). Environment DRIFTNET_* variables win over it.",
)
@click.version_option(package_name="driftnet")
@click.pass_context
def cli(ctx: click.Context, config_file: Path | None) -> None:
    """driftnet watches LLM features in production: it reads inference events from Kafka,
    flags failing calls and harvests them for evaluation."""
    ctx.obj = Context(config_file)


@cli.command()
def schema() -> None:
    """Print the JSON Schema of the v1 inference event."""
    from driftnet.contract.events import InferenceEvent

    click.echo(json.dumps(InferenceEvent.model_json_schema(), indent=2))


@cli.command()
@click.option(
    "--reference",
    is_flag=True,
    help="Print the reference of every setting (Markdown) instead: key, environment variable, "
    "type, default and description.",
)
@pass_context
def config(context: Context, reference: bool) -> None:
    """Print the effective settings (defaults, file, environment), secrets masked."""
    if reference:
        from driftnet.cli.config_reference import render

        click.echo(render(), nl=False)
        return
    click.echo(json.dumps(context.settings.masked(), indent=2, sort_keys=True))


@cli.command()
@click.argument("path", type=InputFile("rb"))
@click.option(
    "--json", "as_json", is_flag=True, help="Print failure records and dead letters as JSON lines."
)
@pass_context
def check(context: Context, path: IO[bytes], as_json: bool) -> None:
    """Run the decoder and the failure rules over PATH (JSON lines: one message per line,
    an event object or an array of them) and print what failed and why. '-' reads stdin."""
    from driftnet.streams.offline import check_lines

    settings = context.settings
    source = Path(path.name).name if path.name != "<stdin>" else "stdin"
    report = check_lines(path, source, settings, detected_at=datetime.now(UTC))
    if as_json:
        for item in report.items:
            click.echo(item.model_dump_json())
        return
    for line in report.render():
        click.echo(line)


@cli.command()
@click.option("--port", type=click.IntRange(1, 65535), default=9092, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True)
def broker(port: int, host: str) -> None:
    """Run the embedded Kafka-compatible broker (Tansu, in memory) in the foreground."""
    from driftnet.sandbox.broker import BrokerError, EmbeddedBroker

    embedded = EmbeddedBroker(port=port, host=host)
    try:
        embedded.start()
    except BrokerError as exc:
        raise click.ClickException(str(exc)) from None
    # before "ready": a caller may stop it at once. SIGINT too: a process started with it
    # ignored or blocked (inherited from a parent) would otherwise never see Ctrl-C
    for stop in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop, _interrupt)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        click.echo(f"broker ready on {embedded.bootstrap_servers} (in memory; Ctrl-C stops it)")
        code = embedded.wait()
    except KeyboardInterrupt:
        code = 0
    finally:
        embedded.stop()
    if code:
        raise click.ClickException(f"the broker exited with code {code}")
    click.echo("broker stopped")


@cli.command()
@click.argument("path", type=InputFile("rb"))
@click.option("--topic", help="Topic to publish to [default: topics.events from settings].")
@create_topic_option
@click.option(
    "--batch/--no-batch",
    default=True,
    show_default=True,
    help="Group events per cohort into JSON-array messages, or send each line as it is.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0),
    default=30.0,
    show_default=True,
    help="Seconds to wait for Kafka to acknowledge everything at the end.",
)
@pass_context
def publish(
    context: Context,
    path: IO[bytes],
    topic: str | None,
    create_topic: bool,
    batch: bool,
    timeout: float,
) -> None:
    """Publish PATH (JSON lines: an event object or an array of them per line) to Kafka.
    With --batch (the default) object lines are batched per cohort; other lines, including
    malformed ones, are sent as they are, so the worker can dead-letter them. '-' reads stdin.
    A topic that does not exist is refused unless --create-topic."""
    from driftnet.streams.clients.publish_file import publish_lines

    settings = context.settings
    target = topic or settings.topics.events.name
    if target == settings.topics.dlq.name:
        click.echo(
            f"warning: {target} is the dead-letter topic: the worker does not read it, and "
            "`driftnet dlq show` lists what is published there as not a driftnet dead letter",
            err=True,
        )
    require_topics(context, [target], create=create_topic)
    source = path.name if path.name != "<stdin>" else "stdin"
    result = publish_lines(path, settings, target, batch=batch, timeout_s=timeout)
    for line in (*result.raw_lines(source), *result.refusal_lines(source)):
        click.echo(line, err=True)
    click.echo(result.summary(source, settings.kafka.bootstrap_servers))
    error = result.error(settings.kafka.bootstrap_servers)
    if error:
        raise click.ClickException(error)


@cli.command()
@pass_context
def worker(context: Context) -> None:
    """Run the stream worker: decode, dead-letter and flag failures on the events topic
    until Ctrl-C / SIGTERM. Counts by reason are logged every worker.report_interval_s."""
    from driftnet.streams.ops.preflight import WorkerError
    from driftnet.streams.worker import run_worker

    try:
        run_worker(context.settings)
    except WorkerError as exc:
        raise click.ClickException(str(exc)) from None


@cli.command()
@click.option(
    "--dir",
    "directory",
    type=FolderPath(file_okay=False, path_type=Path),
    default=Path("driftnet-demo"),
    show_default=True,
    help="Where the demo keeps its settings, logs and harvest (cleared first if a demo made it).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed, same traffic.")
@pass_context
def demo(context: Context, directory: Path, seed: int) -> None:
    """Watch driftnet catch a bad canary in about a minute and a half: an embedded broker, a
    worker and the simulator's demo story (healthy, a canary slowing down and rolled back,
    another getting worse); alerts as they fire and resolve (and in Slack with
    alerts.slack_token set), then the canary verdicts and a DuckDB summary of the harvest.
    Ctrl-C stops everything."""
    from driftnet.sandbox.demo import DemoError, run_demo

    try:
        run_demo(context.settings, directory, seed=seed)
    except DemoError as exc:
        raise click.ClickException(str(exc)) from None
    except KeyboardInterrupt:  # everything it started is stopped by now
        sys.exit(130)


@cli.command()
@pass_context
def sink(context: Context) -> None:
    """Run the Parquet sink alone: failure records from the failures topic into the harvest
    (harvest.location) until Ctrl-C / SIGTERM. Set harvest.sink_in_worker = false when the
    sink runs this way."""
    from driftnet.streams.sink.stage import SinkError, run_sink

    try:
        run_sink(context.settings)
    except SinkError as exc:
        raise click.ClickException(str(exc)) from None


for _command in (*HARVEST_COMMANDS, topics, simulate, canary, silence, dlq):
    cli.add_command(_command)
harvest_group.add_command(harvest_themes)


def _interrupt(signum: int, frame: object) -> None:
    """SIGINT and SIGTERM: the clean stop of Ctrl-C (KeyboardInterrupt)."""
    raise KeyboardInterrupt


def main() -> None:
    """Console entry point."""
    try:
        cli(prog_name="driftnet")
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)


__all__ = ["cli", "main"]

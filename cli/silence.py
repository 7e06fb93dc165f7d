"""``driftnet silence add|list|expire``: mute matching alerts for a while (the silences topic)."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta

import click

from driftnet.cli.context import Context, pass_context
from driftnet.cli.group import Group
from driftnet.cli.params import Duration
from driftnet.cli.topics import require_topics


def parse_matchers(pairs: tuple[str, ...]) -> dict[str, str]:
    """``release=r2*`` pairs as matchers (fnmatch patterns on alert labels)."""
    matchers: dict[str, str] = {}
    for pair in pairs:
        name, sep, pattern = pair.partition("=")
        if not sep or not name.strip():
            raise click.BadParameter(
                f"{pair!r} is not a matcher: use label=pattern, e.g. release=gpt-4.1*",
                param_hint="--match",
            )
        matchers[name.strip()] = pattern.strip()
    return matchers


def _publish(context: Context, command: object) -> None:
    from driftnet.alerts.silences import SilenceCommand
    from driftnet.streams.clients.silence_topic import SilenceTopicError, publish_command

    assert isinstance(command, SilenceCommand)
    settings = context.settings
    require_topics(context, [settings.topics.silences.name])
    try:
        publish_command(settings.kafka, settings.topics.silences.name, command)
    except SilenceTopicError as exc:
        raise click.ClickException(str(exc)) from None


def _silences(context: Context) -> dict[str, object]:
    from driftnet.alerts.silences import SilenceCommand, fold
    from driftnet.streams.clients.verdicts import VerdictsError, scan_topic

    settings = context.settings
    commands: list[SilenceCommand] = []

    def take(value: bytes | None) -> None:
        with contextlib.suppress(ValueError):
            commands.append(SilenceCommand.model_validate_json(value or b""))

    try:
        scan_topic(settings.kafka, settings.topics.silences.name, take)
    except VerdictsError as exc:
        raise click.ClickException(str(exc)) from None
    return dict(fold(commands))


@click.group(cls=Group)
def silence() -> None:
    """Silences: mute the alerts whose labels match, for a while."""


@silence.command("add")
@click.option("--match", "pairs", multiple=True, required=True,
              help="label=pattern (fnmatch), repeatable: release=gpt-4.1*, service=chat.")  # fmt: skip
@click.option("--for", "duration", type=Duration(), default="2h", show_default=True,
              help="30m, 2h, 1d.")  # fmt: skip
@click.option("--comment", default="", help="Why (shown by `silence list`).")
@click.option("--by", "author", default="", help="Who (shown by `silence list`).")
@pass_context
def add(
    context: Context, pairs: tuple[str, ...], duration: float, comment: str, author: str
) -> None:
    """Mute the alerts matching every --match for --for, starting now."""
    from driftnet.alerts.silences import Silence, SilenceCommand

    matchers = parse_matchers(pairs)
    span = timedelta(seconds=duration)
    now = datetime.now(UTC)
    made = Silence.new(matchers, now, span, comment, author)
    _publish(context, SilenceCommand(action="add", silence=made, at=now))
    until = made.ends_at.strftime("%Y-%m-%d %H:%M UTC")
    click.echo(
        f"silence {made.id} until {until}: {', '.join(f'{k}={v}' for k, v in matchers.items())}"
    )


@silence.command("list")
@click.option("--all", "show_all", is_flag=True, help="Include expired silences.")
@pass_context
def list_(context: Context, show_all: bool) -> None:
    """Print the silences (the active ones unless --all)."""
    from driftnet.alerts.silences import Silence

    now = datetime.now(UTC)
    silences = [s for s in _silences(context).values() if isinstance(s, Silence)]
    shown = [s for s in silences if show_all or s.active(now)]
    if not shown:
        click.echo("no active silences" if not show_all else "no silences")
        return
    for s in sorted(shown, key=lambda s: s.ends_at):
        state = "active" if s.active(now) else "expired"
        matchers = ", ".join(f"{k}={v}" for k, v in s.matchers.items())
        click.echo(f"{s.id}  {state:7}  until {s.ends_at:%Y-%m-%d %H:%M} UTC  {matchers}"
                   f"{f'  ({s.comment})' if s.comment else ''}{f' by {s.created_by}' if s.created_by else ''}")  # fmt: skip


@silence.command("expire")
@click.argument("silence_id")
@pass_context
def expire(context: Context, silence_id: str) -> None:
    """End a silence now."""
    from driftnet.alerts.silences import SilenceCommand

    if silence_id not in _silences(context):
        raise click.ClickException(f"no silence {silence_id!r} (see `driftnet silence list --all`)")
    _publish(context, SilenceCommand(action="expire", id=silence_id, at=datetime.now(UTC)))
    click.echo(f"silence {silence_id} expired")

"""``driftnet topics create``: the Kafka topics driftnet uses; and what the commands that
publish (``publish``, ``simulate``, ``silence``, ``dlq replay``) check first: that the topic
they would write to exists, since a broker that creates topics on first use would otherwise
take the messages onto a topic no worker reads."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from driftnet.cli.context import Context, pass_context
from driftnet.cli.group import Group

F = TypeVar("F", bound=Callable[..., Any])


@click.group(cls=Group)
def topics() -> None:
    """Kafka topics driftnet uses."""


@topics.command("create")
@pass_context
def topics_create(context: Context) -> None:
    """Create every topic driftnet uses (names, partitions, retention from settings).
    Topics that exist are left as they are."""
    from driftnet.streams.clients.topics import TopicsError, create_topics

    settings = context.settings
    try:
        outcomes = create_topics(settings.kafka, settings.topics.by_role())
    except TopicsError as exc:
        raise click.ClickException(str(exc)) from None
    for outcome in outcomes:
        click.echo(outcome.line)
    failed = [o.spec.name for o in outcomes if o.status == "failed"]
    if failed:
        raise click.ClickException(f"could not create {', '.join(failed)}")


def create_topic_option(command: F) -> F:
    """``--create-topic``: create a missing ``--topic`` instead of refusing it."""
    return click.option(
        "--create-topic",
        is_flag=True,
        help="Create the topic if it does not exist (partitions and retention of "
        "topics.events, or of the settings' topic of that name).",
    )(command)


def require_topics(
    context: Context, names: list[str], *, create: bool | None = None, dry_run: bool = False
) -> None:
    """Refuse, in one line, to publish to a topic that does not exist, naming it and how to
    create it; with ``create`` (the user passed ``--create-topic``), create it and say so.
    ``create=None``: the command has no ``--create-topic``. Also the commands' fast "no
    broker" answer (:func:`driftnet.streams.clients.kafka_config.probe`). A ``dry_run``
    checks the same and says what the real run would do: fail (one line, exit 1), or create
    the topic (which it does not)."""
    from driftnet.streams.clients.topics import TopicsError, create_topics, existing_topics

    settings = context.settings
    servers = settings.kafka.bootstrap_servers
    try:
        existing = existing_topics(settings.kafka)
    except TopicsError as exc:
        raise click.ClickException(str(exc)) from None
    missing = [name for name in dict.fromkeys(names) if name not in existing]
    if not missing:
        return
    by_name = {spec.name: (role, spec) for role, spec in settings.topics.by_role().items()}
    if dry_run and create:
        for name in missing:
            click.echo(f"would create {name} (it does not exist on {servers})", err=True)
        return
    if not create:
        name = missing[0]
        if name in by_name:
            how = "run `driftnet topics create`" + (
                "" if create is None else " or pass --create-topic"
            )
        else:
            how = (
                f"pass --create-topic to create it (the worker reads {settings.topics.events.name})"
            )
        why = f"topic {name} does not exist on {servers}: {how}"
        raise click.ClickException(f"the real run would fail: {why}" if dry_run else why)
    events = settings.topics.events
    specs = {
        name: by_name.get(name, ("events", events.model_copy(update={"name": name})))
        for name in missing
    }
    try:
        outcomes = [
            outcome
            for name, (role, spec) in specs.items()
            for outcome in create_topics(settings.kafka, {role: spec})
        ]
    except TopicsError as exc:
        raise click.ClickException(str(exc)) from None
    for outcome in outcomes:
        click.echo(outcome.line, err=True)
        if outcome.status == "failed":
            raise click.ClickException(f"could not create {outcome.spec.name}")

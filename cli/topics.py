"""``driftnet topics create``: the Kafka topics driftnet uses."""

from __future__ import annotations

import click

from driftnet.cli.context import Context, pass_context


@click.group()
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

"""``driftnet dlq show|replay``: list the dead letters, and re-publish them once the producer
(or driftnet's settings) is fixed. The topic is read and written by
:mod:`driftnet.streams.clients.dead_letter_topic`.
"""

from __future__ import annotations

import json

import click

from driftnet.cli.context import Context, pass_context
from driftnet.cli.group import Group
from driftnet.cli.params import Choice
from driftnet.cli.topics import create_topic_option, require_topics
from driftnet.contract.dlq import REASONS, Entry, Selection, plan_replay, reason_counts
from driftnet.streams.clients.dead_letter_topic import DlqError, publish, read_entries


def _selection(reasons: tuple[str, ...], from_offset: int | None) -> Selection:
    return Selection(frozenset(reasons), from_offset)


def _entries(context: Context) -> list[Entry]:
    settings = context.settings
    try:
        return read_entries(settings.kafka, settings.topics.dlq.name)
    except DlqError as exc:
        raise click.ClickException(str(exc)) from None


REASON = click.option(
    "--reason",
    "reasons",
    multiple=True,
    type=Choice(REASONS, "a dead-letter reason"),
    metavar="REASON",
    help=f"Only dead letters of this reason, repeatable: {', '.join(REASONS)}.",
)
FROM_OFFSET = click.option(
    "--from-offset",
    type=click.IntRange(min=0),
    help="Only dead letters at this DLQ offset or later (e.g. after an earlier replay).",
)


@click.group(cls=Group)
def dlq() -> None:
    """The dead-letter queue: messages that were not valid events, and why."""


@dlq.command("show")
@REASON
@FROM_OFFSET
@click.option("--limit", type=click.IntRange(min=0), default=50, show_default=True,
              help="Print at most this many (the newest); 0 prints only the counts.")  # fmt: skip
@click.option(
    "--json", "as_json", is_flag=True, help="One JSON object per dead letter, payload included."
)
@pass_context
def show(
    context: Context, reasons: tuple[str, ...], from_offset: int | None, limit: int, as_json: bool
) -> None:
    """List dead letters: where they sit, when, why (reason, field, message) and where they
    came from, then the count of each reason."""
    selected = [e for e in _entries(context) if _selection(reasons, from_offset)(e)]
    shown = selected[-limit:] if limit else []
    if as_json:
        for entry in shown:
            click.echo(json.dumps(_as_json(entry), ensure_ascii=False))
        return
    for entry in shown:
        click.echo(entry.line())
    counts = reason_counts(selected)
    topic = context.settings.topics.dlq.name
    if not selected:
        click.echo(f"no dead letters on {topic}" + (" matching" if reasons or from_offset else ""))
        return
    more = f" (the newest {len(shown)} shown)" if len(shown) < len(selected) else ""
    click.echo(f"{len(selected)} dead letters on {topic}{more}: "
               + ", ".join(f"{reason} {n}" for reason, n in counts.most_common()))  # fmt: skip


def _as_json(entry: Entry) -> dict[str, object]:
    letter = entry.letter
    body: dict[str, object] = {"dlq": entry.where, "detected_at": entry.detected_at,
                               "replayed": entry.replayed}  # fmt: skip
    if letter is None:
        return body | {"reason": None}
    last = {} if letter.last_offset is None else {"last_offset": letter.last_offset}
    return body | {
        "reason": letter.reason,
        "field": letter.field,
        "message": letter.message,
        "source": str(letter.lineage),
        **last,
        "payload_size": letter.payload_size,
        "payload_truncated": letter.payload_truncated,
        "payload": letter.payload.decode("utf-8", "replace"),
    }


@dlq.command("replay")
@REASON
@FROM_OFFSET
@click.option(
    "--to", "to_topic", help="Publish to this topic [default: each dead letter's source topic]."
)
@create_topic_option
@click.option("--dry-run", is_flag=True, help="Say what would be replayed; send nothing.")
@click.option("--timeout", type=click.FloatRange(min=0), default=30.0, show_default=True,
              help="Seconds to wait for Kafka to acknowledge every message.")  # fmt: skip
@pass_context
def replay(
    context: Context,
    reasons: tuple[str, ...],
    from_offset: int | None,
    to_topic: str | None,
    create_topic: bool,
    dry_run: bool,
    timeout: float,
) -> None:
    """Re-publish dead letters (all, or those of --reason) to where they came from, with their
    key and original bytes, once their producer -- or driftnet's settings -- is fixed. A
    payload cut at decode.payload_cap_bytes cannot be replayed and is skipped (and said).
    Replaying twice sends twice: use --from-offset to replay only newer ones."""
    entries = _entries(context)
    plan = plan_replay(entries, _selection(reasons, from_offset), to_topic)
    for entry, why in plan.skipped:
        click.echo(f"skipped {entry.where}: {why}")
    targets = sorted({topic for _, topic in plan.send})
    if not plan.send:
        click.echo(
            "nothing to replay" + (f" ({len(plan.skipped)} skipped)" if plan.skipped else "")
        )
        return
    verb = "would replay" if dry_run else "replayed"
    require_topics(context, targets, create=create_topic, dry_run=dry_run)
    if not dry_run:
        try:
            publish(context.settings.kafka, plan.send, timeout)
        except DlqError as exc:
            raise click.ClickException(str(exc)) from None
    last = max(entry.offset for entry, _ in plan.send)
    counts = reason_counts(entry for entry, _ in plan.send)
    click.echo(
        f"{verb} {len(plan.send)} dead letters to {', '.join(targets)} ("
        + ", ".join(f"{reason} {n}" for reason, n in counts.most_common())
        + f"); next time --from-offset {last + 1} replays only newer ones"
    )

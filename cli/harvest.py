"""``driftnet query``, ``export``, ``label`` and ``harvest ...``: the harvest from a terminal."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import click
import orjson

from driftnet.cli.context import Context, pass_context
from driftnet.cli.files import force_option, open_output, output_target
from driftnet.cli.group import Group
from driftnet.cli.harvest_access import known_reasons, nothing_between, open_harvest, run_query
from driftnet.cli.params import Choice, Time
from driftnet.storage.sql import (
    KNOWN_EVENT_SQL,
    SHOW_SQL,
    SPAN_SQL,
    count_sql,
    export_condition,
    export_sql,
    reasons_sql,
)


@click.command()
@click.argument("sql")
@click.option(
    "--format",
    "output_format",
    type=Choice(["table", "csv", "json", "parquet"], "an output format"),
    default="table",
    show_default=True,
    help="json writes JSON lines; parquet needs --output.",
)
@click.option("--output", "-o", help="Write to this file ('-': stdout, the default).")
@force_option()
@click.option("--max-rows", type=click.IntRange(min=0), default=100, show_default=True,
              help="Rows shown by --format table (0: all).")  # fmt: skip
@pass_context
def query(
    context: Context, sql: str, output_format: str, output: str | None, force: bool, max_rows: int
) -> None:
    """Run SQL over the harvest with DuckDB. Views: failures (each record once, labels joined),
    failures_all (physical rows), labels. Example:
    driftnet query "select reason, count(*) from failures group by all order by 2 desc" """
    target = output_target(output, force=force, binary=output_format == "parquet")
    harvest = open_harvest(context)
    if output_format == "table":
        result, more = run_query(lambda: harvest.head(sql, max_rows=max_rows))
        text = _table_text(result, target)
        if more:
            text += f"(the first {max_rows} rows; --max-rows 0 shows all)\n"
        _emit(text, target)
        return
    destination = target or "/dev/stdout"
    run_query(lambda: harvest.copy(sql, destination, output_format))


def _table_text(result: Any, target: str | None) -> str:
    """An Arrow result drawn as :func:`~driftnet.storage.result_table.query_table`: to the
    terminal's width on stdout (:func:`~driftnet.cli.tables.output_width`), rows whole in a
    file; ``ok`` for a statement that returns no rows."""
    from driftnet.cli.tables import UNBOUNDED, output_width, table_text
    from driftnet.storage.result_table import query_table

    if not result.num_columns:
        return "ok\n"
    rows = [tuple(row.values()) for row in result.to_pylist()]
    table = query_table(result.column_names, rows)
    return table_text(table, UNBOUNDED if target else output_width())


def _emit(text: str, target: str | None) -> None:
    if target is None:
        click.echo(text, nl=False)
        return
    with open_output(target) as sink:
        sink.write(text.encode())


@click.group(cls=Group)
def harvest() -> None:
    """The failure harvest: canned questions, compaction, retention, deletion."""


@harvest.command("reasons")
@click.option("--since", type=Time(), default="24h", show_default=True,
              help="24h, 7d, or an ISO time.")  # fmt: skip
@click.option("--until", type=Time(), default=None, help="End of the range (default: now).")
@click.option(
    "--by",
    type=Choice(["service", "release", "service,release", "none"], "a grouping"),
    default="service,release",
    show_default=True,
)
@pass_context
def harvest_reasons(context: Context, since: datetime, until: datetime | None, by: str) -> None:
    """Top failure reasons by service and release over a time range (event time). When none
    is in the range, says where the newest failure is."""
    harvest_ = open_harvest(context)
    now = datetime.now(UTC)
    start = since
    end = until or now + timedelta(days=1)
    span = run_query(lambda: harvest_.run(SPAN_SQL, [start, end])).to_pylist()[0]
    if not span["in_range"]:
        click.echo(nothing_between(start, end if until else None, span["newest"], now))
        return
    sql = reasons_sql(by)
    result, _ = run_query(lambda: harvest_.head(sql, [start, end], max_rows=0))
    click.echo(_table_text(result, None), nl=False)


@harvest.command("show")
@click.argument("record_or_event_id")
@pass_context
def harvest_show(context: Context, record_or_event_id: str) -> None:
    """Print the full record(s) of one failure (by record_id or event_id) as JSON."""
    from driftnet.storage.schema import record_document

    harvest_ = open_harvest(context)
    table = run_query(
        lambda: harvest_.run(
            SHOW_SQL,
            [record_or_event_id, record_or_event_id],
        )
    )
    rows = table.to_pylist()
    if not rows:
        raise click.ClickException(f"no harvested failure with id {record_or_event_id}")
    for row in rows:
        document = record_document(row)
        document["label"] = {
            key: row.get(key) for key in ("label", "correction", "label_note", "labelled_at")
        }
        click.echo(orjson.dumps(document, option=orjson.OPT_INDENT_2, default=str).decode())


@harvest.command("compact")
@click.option(
    "--retention-days",
    type=click.IntRange(min=1),
    default=None,
    help="First drop date= partitions older than this many days.",
)
@pass_context
def harvest_compact(context: Context, retention_days: int | None) -> None:
    """Merge each folder's small files into one and remove duplicate records. Safe while
    queries and the sink run."""
    from driftnet.storage.maintenance import compact

    result = compact(open_harvest(context), retention_days=retention_days)
    click.echo(result.summary())


@harvest.command("delete")
@click.option("--where", "where", required=True, help="SQL predicate over failures columns.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_context
def harvest_delete(context: Context, where: str, yes: bool) -> None:
    """Delete the failures matching --where (e.g. "attributes.tenant = 't7'"), rewriting the
    files that hold them, and the labels of their events."""
    from driftnet.storage.maintenance import delete_where

    harvest_ = open_harvest(context)
    count = run_query(lambda: harvest_.run(count_sql(where))).to_pylist()[0]["n"]
    if not count:
        click.echo("no rows match; nothing deleted")
        return
    if not yes:
        click.confirm(f"delete {count} rows matching {where!r}?", abort=True)
    result = run_query(lambda: delete_where(harvest_, where))
    click.echo(result.summary())


@click.command()
@click.argument("event_id")
@click.option("--label", "label", required=True, help="e.g. bad, good, hallucination.")
@click.option("--correction", help="What the answer should have been (for fine-tuning).")
@click.option("--note", help="Free text for the next person.")
@pass_context
def label(
    context: Context, event_id: str, label: str, correction: str | None, note: str | None
) -> None:
    """Label a harvested event (the latest label of an event wins)."""
    from driftnet.storage.maintenance import add_label
    from driftnet.storage.query import Harvest

    logging.basicConfig(format="%(levelname)s: %(message)s", level=logging.WARNING)
    harvest_ = Harvest.at(context.settings.harvest.location)
    known = False
    if harvest_.target.exists():
        found = run_query(lambda: harvest_.run(KNOWN_EVENT_SQL, [event_id]))
        known = found.num_rows > 0
    add_label(harvest_, event_id, label, correction=correction, note=note)
    click.echo(f"labelled {event_id} {label!r}" + ("" if known else " (not harvested yet)"))


@click.command()
@click.option(
    "--format",
    "export_format",
    type=Choice(["eval", "openai-chat", "parquet"], "an export format"),
    required=True,
)
@click.option("--output", "-o", help="File ('-': stdout, the default; parquet needs a file).")
@force_option()
@click.option("--since", type=Time(), help="24h, 7d, or an ISO time (event time).")
@click.option("--until", type=Time(), help="End of the range.")
@click.option("--service", multiple=True)
@click.option("--release", multiple=True)
@click.option("--reason", multiple=True, callback=lambda _c, _p, v: known_reasons(v),
              help="A rule or detector id, e.g. refusal (any of its reasons).")  # fmt: skip
@click.option(
    "--kind",
    multiple=True,
    type=Choice(["rule", "evidence", "regression", "drift"], "a record kind"),
)
@click.option("--label", "labels", multiple=True, help="Only events with this label.")
@click.option("--where", help="Any extra SQL predicate over failures columns.")
@click.option("--theme", help="Only this theme's failures (an ID from driftnet harvest themes, "
              "with the same --since/--until/--service/--reason; --since defaults to 7d).")  # fmt: skip
@pass_context
def export(
    context: Context,
    export_format: str,
    output: str | None,
    force: bool,
    since: datetime | None,
    until: datetime | None,
    service: tuple[str, ...],
    release: tuple[str, ...],
    reason: tuple[str, ...],
    kind: tuple[str, ...],
    labels: tuple[str, ...],
    where: str | None,
    theme: str | None,
) -> None:
    """Export harvested failures: an eval set, a chat fine-tuning set (input + labelled
    correction), or Parquet. Identical inputs are exported once."""
    target = output_target(output, force=force, binary=export_format == "parquet")
    harvest_ = open_harvest(context)
    members: list[str] | None = None
    if theme:
        from driftnet.cli.themes import Period, theme_members

        period = Period.of(since, until, service, None)  # the period harvest themes used
        since, until = period.since, period.until
        members = theme_members(context, harvest_, theme, since, until, service, reason)
    condition, params = export_condition(
        since=since,
        until=until,
        service=service,
        release=release,
        kind=kind,
        labels=labels,
        reason=reason,
        where=where,
    )
    if members is not None:
        condition += " AND record_id IN (SELECT unnest(?::VARCHAR[]))"
        params.append(members)
    sql = export_sql(condition)
    if export_format == "parquet":
        assert target is not None  # output_target refuses stdout for Parquet
        rows = run_query(lambda: harvest_.write_parquet(sql, params, target))
        click.echo(f"exported {rows} rows to {target}", err=True)
        return
    _export_jsonl(harvest_, sql, params, export_format, target)


def _export_jsonl(
    harvest_: Any, sql: str, params: list[Any], export_format: str, output: str | None
) -> None:
    from driftnet.harvest.exports import ExportTally, export_items
    from driftnet.storage.schema import record_document

    table = run_query(lambda: harvest_.run(sql, params))
    tally = ExportTally()
    pairs = (
        (record_document(row), {k: row.get(k) for k in ("label", "correction", "label_note")})
        for row in table.to_pylist()
    )
    sink = open_output(output) if output else sys.stdout.buffer
    try:
        for item in export_items(pairs, export_format, tally):  # type: ignore[arg-type]
            sink.write(orjson.dumps(item, default=str) + b"\n")
    finally:
        if output:
            sink.close()
        else:
            sink.flush()
    click.echo(tally.summary(output or "stdout"), err=True)


COMMANDS = (query, harvest, label, export)

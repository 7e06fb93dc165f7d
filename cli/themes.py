"""``driftnet harvest themes``: the few ways a feature is failing, and ``export --theme``'s
way back to a theme's failures.

Nothing is stored: a theme is re-derived from the failures of its period by the same
deterministic procedure (:func:`driftnet.harvest.themes.find_themes`), so ``driftnet export
--theme ID`` with the same period and filters finds the same theme and the same failures. The
table ends with that export command, its period written out in full.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import click
import orjson

from driftnet.cli.context import Context, pass_context
from driftnet.cli.harvest_access import known_reasons, nothing_between, open_harvest, run_query
from driftnet.cli.params import Choice, Time
from driftnet.contract.content import content_text
from driftnet.harvest.themes import (
    FailureText,
    ThemeReport,
    ThemeSettings,
    failure_text,
    find_themes,
    flag,
)
from driftnet.storage.sql import SPAN_SQL, export_condition, themes_sql

if TYPE_CHECKING:
    from driftnet.alerts.signals import ThemesSignal
    from driftnet.harvest.themes import Theme

DEFAULT_SINCE = "7d"
WIDTH = 80


@dataclass(frozen=True, slots=True)
class Period:
    """What a theme report covers: ``[since, until)`` and the filters; the previous period is
    the same length just before."""

    since: datetime
    until: datetime
    service: tuple[str, ...] = ()
    reason: str | None = None

    @classmethod
    def of(
        cls,
        since: datetime | None,
        until: datetime | None,
        service: Sequence[str],
        reason: str | None,
        now: datetime | None = None,
    ) -> Period:
        """Whole seconds (the export command printed for a theme repeats them exactly)."""
        end = (until or now or datetime.now(UTC)).replace(microsecond=0)
        start = (since or end - timedelta(days=7)).replace(microsecond=0)
        if start >= end:
            raise click.BadParameter(
                f"{_iso(start)} is not before --until {_iso(end)}", param_hint="--since"
            )
        return cls(start, end, tuple(service), reason)

    @property
    def previous_since(self) -> datetime:
        return self.since - (self.until - self.since)

    def scope(self) -> str:
        """The filters, as the scope of a themes signal (``all`` without any)."""
        parts = [f"service={'+'.join(sorted(self.service))}"] if self.service else []
        parts += [f"reason={self.reason}"] if self.reason else []
        return ",".join(parts) or "all"

    def options(self) -> str:
        """The command-line options that give this period back."""
        words = [f"--since {_iso(self.since)}", f"--until {_iso(self.until)}"]
        words += [f"--service {s}" for s in self.service]
        words += [f"--reason {self.reason}"] if self.reason else []
        return " ".join(words)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _failure(row: dict[str, Any], reason: str | None) -> FailureText:
    contents = [
        content_text(orjson.loads(value)) if is_parts and value else value
        for value, is_parts in zip(row["input_contents"], row["input_parts"], strict=True)
    ]
    return FailureText(
        record_id=row["record_id"],
        event_id=row["event_id"],
        reason=reason or row["reason"],
        service=row["service"],
        timestamp=row["timestamp"],
        text=failure_text(contents, row["output_text"]),
    )


def theme_report(harvest_: Any, period: Period, settings: ThemeSettings) -> ThemeReport:
    """The themes of ``period``'s failures (with ``--reason``, every failure that has it is
    themed under it; otherwise under its first reason)."""
    condition, params = export_condition(
        since=period.previous_since,
        until=period.until,
        service=period.service,
        reason=(period.reason,) if period.reason else (),
    )
    rows = run_query(lambda: harvest_.run(themes_sql(condition), params)).to_pylist()
    current: list[FailureText] = []
    previous: list[FailureText] = []
    for row in rows:
        (current if row["timestamp"] >= period.since else previous).append(
            _failure(row, period.reason)
        )
    return find_themes(current, previous, settings)


def theme_members(
    context: Context,
    harvest_: Any,
    theme: str,
    since: datetime | None,
    until: datetime | None,
    service: Sequence[str],
    reasons: Sequence[str],
) -> list[str]:
    """``export --theme``: the record_ids of ``theme`` in the period and filters given (a
    one-line error when that period has no such theme, saying how to list them)."""
    if len(reasons) > 1:
        raise click.BadParameter(
            "takes one value with --theme (the --reason given to harvest themes)",
            param_hint="--reason",
        )
    period = Period.of(since, until, service, reasons[0] if reasons else None)
    report = theme_report(harvest_, period, context.settings.harvest.themes)
    found = report.theme(theme)
    if found is None:
        raise click.ClickException(
            f"no theme {theme} among the failures from {_iso(period.since)} to "
            f"{_iso(period.until)}{' with these filters' if period.service or period.reason else ''}"
            f"; list them with: driftnet harvest themes {period.options()}"
        )
    return list(report.members[found.theme_id])


def _reason_option(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    return known_reasons((value,))[0] if value else None


@click.command("themes")
@click.option("--since", type=Time(), default=DEFAULT_SINCE, show_default=True,
              help="Start of the period: 24h, 7d, or an ISO time (event time).")  # fmt: skip
@click.option("--until", type=Time(), default=None, help="End of the period (default: now).")
@click.option("--service", multiple=True, help="Only this service (repeatable).")
@click.option("--reason", callback=_reason_option,
              help="Only failures with this reason (a rule or detector id), themed under it.")  # fmt: skip
@click.option("--limit", type=click.IntRange(min=0), default=20, show_default=True,
              help="Themes shown, largest first (0: all).")  # fmt: skip
@click.option(
    "--format",
    "output_format",
    type=Choice(["table", "json"], "an output format"),
    default="table",
    show_default=True,
)
@click.option("--signal", is_flag=True,
              help="Also send the new and growing themes to the signals topic: info alerts "
              "driftnet.theme_new and driftnet.theme_growing, routed like any alert.")  # fmt: skip
@pass_context
def harvest_themes(
    context: Context,
    since: datetime,
    until: datetime | None,
    service: tuple[str, ...],
    reason: str | None,
    limit: int,
    output_format: str,
    signal: bool,
) -> None:
    """Group a period's failures into themes by text similarity within each reason: each
    theme's top terms, count, share, first and last seen, trend against the previous period of
    the same length, and examples. Export one with driftnet export --theme ID."""
    if signal:  # a missing broker or topic is said before the theming, not after
        from driftnet.cli.topics import require_topics

        require_topics(context, [context.settings.topics.signals.name])
    harvest_ = open_harvest(context)
    period = Period.of(since, until, service, reason)
    settings = context.settings.harvest.themes
    report = theme_report(harvest_, period, settings)
    if signal:
        _send(context, news_signal(report, period, settings))
    shown = report.themes[:limit] if limit else report.themes
    if output_format == "json":
        click.echo(orjson.dumps(_document(report, shown, period, settings), default=str))
        return
    if not report.total:
        click.echo(_nothing(harvest_, period))
        return
    click.echo(themes_text(report, shown, period), nl=False)


def news_signal(report: ThemeReport, period: Period, settings: ThemeSettings) -> ThemesSignal:
    """The themes of ``report`` that are news (:func:`~driftnet.harvest.themes.flag`), as
    one signal for the alerting stage; none is news too (the earlier news is then stale)."""
    from driftnet.alerts.signals import ThemeEntry, ThemesSignal

    entries = []
    for theme in report.themes:
        news = flag(theme, settings)
        if news is None:
            continue
        entries.append(
            ThemeEntry(
                theme_id=theme.theme_id,
                reason=theme.reason,
                terms=theme.terms,
                flag=news,
                count=theme.count,
                previous=theme.previous,
                service=next(iter(theme.services)),
                share_of_reason=theme.share_of_reason,
            )
        )
    return ThemesSignal(
        scope=period.scope(),
        since_ms=int(period.since.timestamp() * 1000),
        until_ms=int(period.until.timestamp() * 1000),
        entries=tuple(entries),
    )


def _send(context: Context, signal: ThemesSignal) -> None:
    from driftnet.streams.clients.send_one import SendError, send_one

    settings = context.settings
    topic = settings.topics.signals.name
    try:
        send_one(settings.kafka, topic, signal.model_dump_json().encode(), key=b"themes")
    except SendError as exc:
        raise click.ClickException(str(exc)) from None
    news = ", ".join(f"{e.theme_id} {e.flag}" for e in signal.entries) or "no theme new or growing"
    click.echo(f"sent to {topic}: {news}", err=True)


def _nothing(harvest_: Any, period: Period) -> str:
    if period.service or period.reason:
        return (
            f"no failures between {_iso(period.since)} and {_iso(period.until)} (event time) "
            "with these --service/--reason filters"
        )
    span = run_query(lambda: harvest_.run(SPAN_SQL, [period.since, period.until])).to_pylist()[0]
    return nothing_between(period.since, period.until, span["newest"], datetime.now(UTC))


def _document(
    report: ThemeReport, shown: Sequence[Theme], period: Period, settings: ThemeSettings
) -> dict[str, Any]:
    return {
        "since": period.since,
        "until": period.until,
        "previous_since": period.previous_since,
        "failures": report.total,
        "previous_failures": report.previous_total,
        "themes": [
            {**theme.model_dump(mode="json"), "flag": flag(theme, settings)} for theme in shown
        ],
    }


def _trend(theme: Theme) -> str:
    if theme.ratio is None:
        return "new"
    return f"x{theme.ratio:.1f}" if theme.ratio < 10 else f"x{theme.ratio:.0f}"


def themes_text(report: ThemeReport, shown: Sequence[Theme], period: Period) -> str:
    """The table (80 columns), then each theme's period, shares and an example, then the
    export command for the same period."""
    from driftnet.cli.tables import table_text
    from driftnet.storage.result_table import query_table

    rows = [
        (t.theme_id, t.reason, t.name, t.count, f"{t.share_of_all:.0%}", _trend(t)) for t in shown
    ]
    columns = ["theme", "reason", "top terms", "failures", "share", "vs prev"]
    text = table_text(query_table(columns, rows), WIDTH)
    days = (period.until - period.since).total_seconds() / 86400
    lines = [
        f"{report.total:,} failures in {len(report.themes)} themes, "
        f"{_iso(period.since)} to {_iso(period.until)}",
        f"the {days:g} days before: {report.previous_total:,} failures",
        "",
    ]
    for theme in shown:
        lines += _theme_lines(theme)
    if len(shown) < len(report.themes):
        lines.append(f"({len(shown)} of {len(report.themes)} themes; --limit 0 shows all)")
    lines += [
        "export a theme (same period and filters):",
        "  driftnet export --format eval --theme ID \\",
        f"    {period.options()}",
    ]
    return text + "\n" + "\n".join(lines) + "\n"


def _theme_lines(theme: Theme) -> list[str]:
    example = theme.examples[0].text if theme.examples else None
    quoted = "(no content captured)" if example is None else f'"{example}"'
    if len(quoted) > WIDTH - 7:
        quoted = quoted[: WIDTH - 9] + '…"'
    return [
        f"{theme.theme_id}  {theme.reason}: {theme.name}"[:WIDTH],
        f"  {theme.count:,} failures, {theme.share_of_reason:.0%} of {theme.reason}; "
        f"previous period {theme.previous:,}"[:WIDTH],
        f"  seen {theme.first_seen:%Y-%m-%d %H:%M} to {theme.last_seen:%Y-%m-%d %H:%M} UTC; "
        f"top service {next(iter(theme.services))}"[:WIDTH],
        f"  e.g. {quoted}",
        "",
    ]

"""Opening the harvest from a command, and what the harvest commands share: query errors as
one line, failure reasons checked with a did-you-mean, and why a time range found nothing."""

from __future__ import annotations

import logging
import math
from datetime import UTC, datetime
from typing import Any, get_args

import click

from driftnet.cli.context import Context
from driftnet.cli.params import choice_message


class SqlError(click.ClickException):
    """A query DuckDB refused: its message, exit code 2."""

    exit_code = 2


def open_harvest(context: Context) -> Any:
    """The harvest at ``harvest.location`` (a one-line error when there is none)."""
    from driftnet.storage.query import Harvest, MissingDataset
    from driftnet.storage.target import TargetError

    logging.basicConfig(format="%(levelname)s: %(message)s", level=logging.WARNING)
    try:
        harvest = Harvest.at(context.settings.harvest.location)
        harvest.require()
    except (TargetError, MissingDataset) as exc:
        raise click.ClickException(str(exc)) from None
    return harvest


def run_query(action: Any) -> Any:
    """``action()``, a query DuckDB refuses turned into :class:`SqlError`."""
    from driftnet.storage.query import QueryError

    try:
        return action()
    except QueryError as exc:
        raise SqlError(str(exc)) from None


def failure_reasons() -> list[str]:
    """Every ``rule_id`` a failure record's reason can carry: the failure rules, the
    detectors and the canary judge."""
    from driftnet.detectors.canary.verdict import JUDGE
    from driftnet.detectors.families.registry import REGISTRY
    from driftnet.harvest.rules import RuleId

    return [*get_args(RuleId), *sorted(REGISTRY), JUDGE]


def known_reasons(values: tuple[str, ...]) -> tuple[str, ...]:
    known = failure_reasons() if values else []
    for value in values:
        if value not in known:
            listing = "a rule such as refusal, or a detector id such as latency.p95.v1"
            raise click.BadParameter(
                choice_message(value, known, "a failure reason", listing), param_hint="--reason"
            )
    return values


def nothing_between(
    start: datetime, end: datetime | None, newest: datetime | None, now: datetime
) -> str:
    """Why ``harvest reasons`` found nothing between ``start`` and ``end`` (None: now), and
    the ``--since`` or ``--until`` that would find the newest failure.

    >>> from datetime import timedelta
    >>> now = datetime(2026, 12, 7, 22, 0, tzinfo=UTC)
    >>> nothing_between(now - timedelta(days=1), None, datetime(2026, 11, 24, 14, 7), now)
    'no failures between 2026-12-06 22:00 and now (event time); the newest record is from 2026-11-24 14:07 UTC: try --since 14d'
    >>> nothing_between(now - timedelta(days=1), None, None, now)
    'no failures between 2026-12-06 22:00 and now (event time): the harvest holds none yet'
    """
    until = "now" if end is None else f"{end.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
    head = f"no failures between {start.astimezone(UTC):%Y-%m-%d %H:%M} and {until} (event time)"
    if newest is None:
        return head + ": the harvest holds none yet"
    newest = newest if newest.tzinfo else newest.replace(tzinfo=UTC)
    head += f"; the newest record is from {newest.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
    if newest < start:
        ago = (now - newest).total_seconds()
        hint = f"{math.ceil(ago / 3600)}h" if ago < 86_400 else f"{math.ceil(ago / 86_400)}d"
        return head + f": try --since {hint}"
    if end is not None and newest >= end:
        return head + ": try a later --until, or none"
    return head

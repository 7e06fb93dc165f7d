"""Parameter parsers the ``driftnet`` commands share: durations and times as users type them,
and choices whose mistakes answer with the closest value. Every mistake is one line that names
the option (:mod:`driftnet.cli.group` prints it): ``Error: --reason 'invalid-json' is not a
dead-letter reason; did you mean 'invalid_json'? (driftnet dlq show -h lists them)``."""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import click

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
LISTED_INLINE = 6
"""A choice of at most this many values lists them in its error; a longer one points at -h."""


def parse_duration(text: str) -> float:
    """Seconds in ``90s``, ``30m``, ``2h``, ``7d``, ``1w`` or a plain number of seconds."""
    cleaned = text.strip()
    match = _DURATION.match(cleaned)
    try:
        value = float(match.group(1)) * _UNITS[match.group(2)] if match else float(cleaned)
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a duration: use 90s, 30m, 2h or 7d") from None
    if value <= 0:
        raise click.BadParameter(f"{text!r} is not a duration: it must be positive")
    return value


def parse_time(text: str, now: datetime | None = None) -> datetime:
    """``24h`` / ``7d`` / ``90m`` ago, or an ISO date or date-time (UTC when no offset)."""
    now = now or datetime.now(UTC)
    if _DURATION.match(text.strip()):
        return now - timedelta(seconds=parse_duration(text))
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is not a time: use 24h, 7d, 30m, 2026-11-20 or 2026-11-20T10:00:00Z"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def closest(value: str, choices: Sequence[str]) -> str | None:
    """The choice ``value`` most likely meant: the same but for case, ``-`` or ``_``, else
    the closest spelling (None: none is close).

    >>> closest("invalid-json", ["empty_message", "invalid_json"])
    'invalid_json'
    >>> closest("truncatd", ["truncated", "refusal"])
    'truncated'
    >>> closest("xyz", ["truncated", "refusal"]) is None
    True
    """
    folded = {choice.lower().replace("-", "_"): choice for choice in choices}
    same = folded.get(value.lower().replace("-", "_"))
    if same is not None:
        return same
    close = difflib.get_close_matches(value, list(choices), n=1, cutoff=0.6)
    return close[0] if close else None


def choice_message(value: str, choices: Sequence[str], what: str, listing: str) -> str:
    """``'truncatd' is not a failure reason; did you mean 'truncated'? (listing)``."""
    match = closest(value, choices)
    hint = f"; did you mean {match!r}?" if match else ""
    return f"{value!r} is not {what}{hint} ({listing})"


class Choice(click.Choice):  # type: ignore[type-arg]
    """``click.Choice`` whose refusal is one line: the value, what it should have been, the
    closest choice, and the choices (a few) or where they are listed (``-h``)."""

    def __init__(self, choices: Sequence[str], what: str) -> None:
        super().__init__(choices)
        self.what = what

    def get_invalid_choice_message(self, value: Any, ctx: click.Context | None) -> str:
        choices = [str(choice) for choice in self.choices]
        if len(choices) <= LISTED_INLINE:
            listing = "one of " + ", ".join(choices)
        else:
            listing = f"{ctx.command_path if ctx else 'the command'} -h lists them"
        return choice_message(str(value), choices, self.what, listing)


class Time(click.ParamType):
    """A time as :func:`parse_time` reads it (``24h`` ago, an ISO date), or one of
    ``keywords`` (such as ``all``) as it is."""

    name = "time"

    def __init__(self, keywords: tuple[str, ...] = ()) -> None:
        self.keywords = keywords

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, datetime) or value in self.keywords:
            return value
        try:
            return parse_time(str(value))
        except click.BadParameter as exc:
            self.fail(exc.message, param, ctx)


class Duration(click.ParamType):
    """Seconds, as :func:`parse_duration` reads them (``90s``, ``30m``, ``2h``, ``7d``)."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, float):
            return value
        try:
            return parse_duration(str(value))
        except click.BadParameter as exc:
            self.fail(exc.message, param, ctx)

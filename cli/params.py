"""Parameter parsers the ``driftnet`` commands share: durations and times as users type them."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import click

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> float:
    """Seconds in ``90s``, ``30m``, ``2h``, ``7d``, ``1w`` or a plain number of seconds."""
    cleaned = text.strip()
    match = _DURATION.match(cleaned)
    try:
        value = float(match.group(1)) * _UNITS[match.group(2)] if match else float(cleaned)
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a duration: use 90s, 30m, 2h or 7d") from None
    if value <= 0:
        raise click.BadParameter("the duration must be positive")
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

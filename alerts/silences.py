"""Silences: ``driftnet silence add --match release=r2 --for 2h`` mutes the matching alerts.

A silence is added and expired by commands on the silences topic; :func:`fold` turns the
commands, in order, into the silences as they stand. Pure: time is passed in.

>>> from datetime import UTC, datetime, timedelta
>>> now = datetime(2026, 11, 25, 12, tzinfo=UTC)
>>> s = Silence.new({"release": "r2*"}, now, timedelta(hours=2), "deploying", "ana")
>>> s.mutes({"release": "r2-canary", "service": "chat"}, now), s.active(now + timedelta(hours=3))
(True, False)
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from driftnet.alerts.config import matches


class Silence(BaseModel):
    """Alerts whose labels match every matcher (fnmatch) are muted from start to end."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    matchers: dict[str, str] = Field(min_length=1)
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    comment: str = ""
    created_by: str = ""

    @classmethod
    def new(
        cls,
        matchers: dict[str, str],
        now: datetime,
        duration: timedelta,
        comment: str = "",
        created_by: str = "",
    ) -> Silence:
        return cls(
            id=uuid.uuid4().hex[:12],
            matchers=matchers,
            starts_at=now,
            ends_at=now + duration,
            comment=comment,
            created_by=created_by,
        )

    def active(self, now: datetime) -> bool:
        return self.starts_at <= now < self.ends_at

    def mutes(self, labels: dict[str, str], now: datetime) -> bool:
        return self.active(now) and matches(self.matchers, labels)


class SilenceCommand(BaseModel):
    """A message of the silences topic."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    action: Literal["add", "expire"]
    silence: Silence | None = None
    id: str | None = None
    at: AwareDatetime


MAX_SILENCES = 10_000
"""Silences the alerting stage holds at most (the newest are kept)."""


def fold(
    commands: Iterable[SilenceCommand], silences: dict[str, Silence] | None = None
) -> dict[str, Silence]:
    """The silences the commands leave, by id (an expired one ends when it was expired),
    applied in order onto ``silences`` when given."""
    silences = dict(silences or {})
    for command in commands:
        if command.action == "add" and command.silence is not None:
            silences[command.silence.id] = command.silence
        elif command.action == "expire" and command.id in silences:
            silence = silences[command.id]
            ends = min(silence.ends_at, command.at)
            silences[command.id] = silence.model_copy(update={"ends_at": ends})
    return silences


def prune(
    silences: dict[str, Silence], now: datetime, max_count: int = MAX_SILENCES
) -> dict[str, Silence]:
    """The silences that can still mute something (not ended by ``now``), at most
    ``max_count`` of them (those that started last): the commands of a long-lived silences
    topic do not pile up in memory. A command about a silence pruned changes nothing."""
    live = [silence for silence in silences.values() if silence.ends_at > now]
    live.sort(key=lambda silence: silence.starts_at, reverse=True)
    return {silence.id: silence for silence in live[:max_count]}

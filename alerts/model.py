"""What on-call is told: an :class:`Alert` per problem, built from findings, canary verdicts and
driftnet's own health, and the :class:`Notification` of a group of them that a notifier sends.

An alert's ``fingerprint`` is the rule that raised it plus the labels that say where (the
cohort, the metric): the same problem in the next window has the same fingerprint, so it
updates one alert instead of raising another.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Severity = Literal["info", "warning", "critical"]
State = Literal["pending", "firing", "resolved"]
SEVERITY_ORDER: dict[str, int] = {"info": 0, "warning": 1, "critical": 2}

_FROZEN = ConfigDict(frozen=True, extra="forbid")


def fingerprint_of(rule: str, labels: dict[str, str]) -> str:
    """Deterministic: the same rule and labels always give the same 16 hex digits."""
    key = "\x1f".join([rule, *(f"{k}={labels[k]}" for k in sorted(labels))])
    return hashlib.sha256(key.encode()).hexdigest()[:16]


class Details(BaseModel):
    """What was measured, against what, where and on how much."""

    model_config = _FROZEN

    observed: float | None = None
    reference: float | None = None
    threshold: float | None = None
    unit: str | None = None
    window_start: int | None = None
    window_end: int | None = None
    sample_size: int | None = None
    effect_size: float | None = None
    p_value: float | None = None


class Link(BaseModel):
    """A button in Slack, a line on the console."""

    model_config = _FROZEN

    text: str = Field(max_length=75)
    url: str


class Alert(BaseModel):
    """One problem, as it stands now."""

    model_config = _FROZEN

    fingerprint: str
    rule: str
    """What raised it: a detector (``latency.p95.v1``), the canary judge (``canary.judge.v1``) or
    driftnet itself (``driftnet.dlq_spike``, ``driftnet.watchdog``...)."""
    labels: dict[str, str]
    severity: Severity
    state: State
    summary: str
    """One line, e.g. ``support-chat canary gpt-4.1 fails: latency_p95 +62%``."""
    description: str = ""
    details: Details = Field(default_factory=Details)
    links: tuple[Link, ...] = ()
    query: str | None = None
    """The ready-to-paste ``driftnet query`` command that pulls the harvested evidence."""
    source_id: str | None = None
    """The finding or verdict the alert was last updated from."""
    starts_at: datetime
    updated_at: datetime
    ends_at: datetime | None = None
    windows_active: int = 0
    """Consecutive windows (or health checks) with the condition true, up to now."""


class Notification(BaseModel):
    """A group of alerts to send together: one Slack message per group key."""

    model_config = _FROZEN

    group_key: str
    """The values of the route's ``group_by`` labels, e.g. ``service=chat,release=r2``."""
    receiver: str
    alerts: tuple[Alert, ...]
    kind: Literal["new", "update", "repeat", "resolved"]
    """``new``: the group's first message; ``update``: its alerts changed; ``repeat``: nothing
    changed for ``repeat_interval``; ``resolved``: every alert of the group resolved."""
    sequence: int
    """Per group key and receiver, 1 for the first notification: the order they must reach
    the receiver in."""
    created_at: datetime

    @property
    def notification_id(self) -> str:
        """16 hex digits naming this notification alone (receiver, group, sequence, when
        made): a Slack message carries it in its metadata, so a worker that is not sure a
        notification was delivered (it took the outbox over, or the last attempt timed out)
        can find it instead of sending it twice."""
        key = "\x1f".join(
            (self.receiver, self.group_key, str(self.sequence), self.created_at.isoformat())
        )
        return hashlib.sha256(key.encode()).hexdigest()[:16]

    @property
    def firing(self) -> tuple[Alert, ...]:
        return tuple(a for a in self.alerts if a.state == "firing")

    @property
    def severity(self) -> Severity:
        """The worst severity among the alerts still firing (of all, once resolved)."""
        pool = self.firing or self.alerts
        worst = max(pool, key=lambda a: SEVERITY_ORDER[a.severity])
        return worst.severity

    @property
    def title(self) -> str:
        """One line for the whole group."""
        if self.kind == "resolved":
            return (
                f"Resolved: {self.alerts[0].summary}"
                if len(self.alerts) == 1
                else (f"Resolved: {len(self.alerts)} alerts ({self.group_key})")
            )
        shown = self.firing or self.alerts
        if len(shown) == 1:
            return shown[0].summary
        return f"{len(shown)} alerts {'firing' if self.firing else ''} ({self.group_key})".replace(
            "  ", " "
        )

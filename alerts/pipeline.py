"""From alert changes to notifications: mute (silences, inhibition), route, group, dedup.

Alertmanager's stages, as pure functions of the alerts and an injected clock:

- **mute**: an alert matched by an active silence, or inhibited by a firing alert (a failing
  canary mutes the per-metric alerts of its release), is left out of its group's view;
- **route**: the first route whose matchers match gives the receivers and the grouping;
- **group**: one group per (receiver, values of ``group_by``): one message for a burst of
  related alerts. A new group waits ``group_wait`` for more before its first notification;
- **dedup**: a group is notified again only when what it shows changed (an alert joined,
  fired or resolved) and ``group_interval`` has passed, or nothing changed for
  ``repeat_interval`` while something still fires. :func:`decide` says which, and why not.

>>> from datetime import UTC, datetime, timedelta
>>> from driftnet.alerts.config import Route
>>> now = datetime(2026, 11, 25, tzinfo=UTC)
>>> group = Group("service=chat", "console", Route(receivers=("console",)), created_at=now)
>>> decide(group, (("f1", "firing"),), now + timedelta(seconds=5))
(None, 'waiting for group_wait')
>>> decide(group, (("f1", "firing"),), now + timedelta(seconds=10))[0]
'new'
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from driftnet.alerts.config import AlertsSettings, Route, matches
from driftnet.alerts.model import Alert, Notification
from driftnet.alerts.silences import Silence

Kind = Literal["new", "update", "repeat", "resolved"]
Snapshot = tuple[tuple[str, str], ...]


@dataclass(slots=True)
class Group:
    """The alerts one receiver gets together."""

    key: str
    receiver: str
    route: Route
    created_at: datetime
    alerts: dict[str, Alert] = field(default_factory=dict)
    last_sent_at: datetime | None = None
    last_snapshot: Snapshot | None = None
    sequence: int = 0


def decide(group: Group, snapshot: Snapshot, now: datetime) -> tuple[Kind | None, str]:
    """Whether ``group`` (showing ``snapshot``: its visible alerts' fingerprints and states)
    is notified now, and why (or why not)."""
    route = group.route
    firing = any(state == "firing" for _, state in snapshot)
    if group.last_sent_at is None:
        if not firing:
            return None, "nothing fired"
        if (now - group.created_at).total_seconds() < route.group_wait_s:
            return None, "waiting for group_wait"
        return "new", "first notification"
    since = (now - group.last_sent_at).total_seconds()
    if snapshot != group.last_snapshot:
        if since < route.group_interval_s:
            return None, "waiting for group_interval"
        return ("update" if firing else "resolved"), "alerts changed"
    if firing and since >= route.repeat_interval_s:
        return "repeat", "unchanged for repeat_interval"
    return None, "already notified"


def group_key(labels: dict[str, str], group_by: tuple[str, ...]) -> str:
    return ",".join(f"{name}={labels.get(name, '')}" for name in group_by)


class Pipeline:
    """The groups, the silences, and what to notify when."""

    def __init__(self, settings: AlertsSettings) -> None:
        self.settings = settings
        self.groups: dict[tuple[str, str], Group] = {}
        self.silences: dict[str, Silence] = {}

    def add(self, alerts: list[Alert], now: datetime) -> None:
        """Alerts that changed (firing, or resolved); pending ones wait in the book."""
        for alert in alerts:
            if alert.state == "pending":
                continue
            labels = {**alert.labels, "rule": alert.rule}
            route = self.settings.route(labels, alert.severity)
            key = group_key(labels, route.group_by)
            for receiver in route.receivers:
                group = self.groups.get((receiver, key))
                if group is None:
                    if alert.state == "resolved":
                        continue  # resolved before any group knew it: nothing to tell
                    group = self.groups[(receiver, key)] = Group(key, receiver, route, now)
                group.alerts[alert.fingerprint] = alert

    def muted(self, alert: Alert, now: datetime) -> str | None:
        """Why ``alert`` is muted (a silence id, or the inhibiting alert), None when not."""
        labels = {**alert.labels, "rule": alert.rule, "severity": alert.severity}
        for silence in self.silences.values():
            if silence.mutes(labels, now):
                return f"silence {silence.id}"
        sources = {a.fingerprint: a for g in self.groups.values() for a in g.alerts.values()}
        for rule in self.settings.inhibit:
            if not matches(rule.target, labels):
                continue
            for source in sources.values():
                if source.state != "firing" or source.fingerprint == alert.fingerprint:
                    continue
                source_labels = {**source.labels, "rule": source.rule, "severity": source.severity}
                if matches(rule.source, source_labels) and all(
                    source_labels.get(name) == labels.get(name) for name in rule.equal
                ):
                    return f"inhibited by {source.rule} {source.fingerprint}"
        return None

    def tick(self, now: datetime) -> list[Notification]:
        """The notifications due now, in a stable order; groups forget what they told."""
        due: list[Notification] = []
        for group_id in sorted(self.groups):
            group = self.groups[group_id]
            told = {fp for fp, _ in group.last_snapshot or ()}
            for fingerprint, alert in list(group.alerts.items()):
                if alert.state == "resolved" and fingerprint not in told:
                    # resolved while muted (or before its group spoke): it was never shown
                    # to this receiver, so its end is not news either
                    del group.alerts[fingerprint]
            visible = {
                fp: a for fp, a in sorted(group.alerts.items()) if self.muted(a, now) is None
            }
            snapshot: Snapshot = tuple((fp, a.state) for fp, a in visible.items())
            kind, _ = decide(group, snapshot, now)
            if kind is None:
                if group.last_sent_at is None and not any(
                    a.state == "firing" for a in group.alerts.values()
                ):
                    del self.groups[group_id]  # everything resolved before it was told
                continue
            group.sequence += 1
            due.append(
                Notification(
                    group_key=group.key,
                    receiver=group.receiver,
                    alerts=tuple(visible.values()),
                    kind=kind,
                    sequence=group.sequence,
                    created_at=now,
                )
            )
            group.last_sent_at = now
            resolved = [fp for fp, a in group.alerts.items() if a.state == "resolved"]
            for fingerprint in resolved:
                del group.alerts[fingerprint]
            group.last_snapshot = tuple(
                (fp, state) for fp, state in snapshot if state != "resolved"
            )
            if kind == "resolved" or not group.alerts:
                del self.groups[group_id]
        return due

    def group_states(self) -> dict[tuple[str, str], dict[str, Any]]:
        """Every group as JSON, by (receiver, group key): what it holds and what it told."""
        return {group_id: group_to_dict(group) for group_id, group in self.groups.items()}

    def restore_group(self, data: dict[str, Any]) -> None:
        """Take back one group as :meth:`group_states` gave it."""
        group = group_from_dict(data)
        self.groups[(group.receiver, group.key)] = group


def group_to_dict(group: Group) -> dict[str, Any]:
    return {
        "key": group.key,
        "receiver": group.receiver,
        "route": group.route.model_dump(mode="json"),
        "created_at": group.created_at.isoformat(),
        "alerts": [a.model_dump(mode="json") for a in group.alerts.values()],
        "last_sent_at": group.last_sent_at.isoformat() if group.last_sent_at else None,
        "last_snapshot": group.last_snapshot,
        "sequence": group.sequence,
    }


def group_from_dict(data: dict[str, Any]) -> Group:
    alerts = [Alert.model_validate(a) for a in data["alerts"]]
    snapshot = data["last_snapshot"]
    sent = data["last_sent_at"]
    return Group(
        key=str(data["key"]),
        receiver=str(data["receiver"]),
        route=Route.model_validate(data["route"]),
        created_at=datetime.fromisoformat(data["created_at"]),
        alerts={a.fingerprint: a for a in alerts},
        last_sent_at=datetime.fromisoformat(sent) if sent else None,
        last_snapshot=None if snapshot is None else tuple((str(f), str(s)) for f, s in snapshot),
        sequence=int(data["sequence"]),
    )

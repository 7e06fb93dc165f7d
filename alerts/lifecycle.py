"""pending -> firing -> resolved, counted in windows: the :class:`AlertBook`.

Each observation is one *scope* (a cohort's closed window, a worker's health check, a
watchdog period) with the conditions it raised. A condition present for ``for_windows``
consecutive observations of its scope fires; a firing alert absent from more than
``keep_firing_for_windows`` consecutive observations resolves; a pending one that is absent
once is forgotten (it never paged). Counting observations rather than seconds makes an alert
behave the same when events are replayed fast. An observation of a scope is taken once: a
replayed window (its mark not above the last one) changes nothing.

>>> from datetime import UTC, datetime
>>> from driftnet.alerts.config import AlertsSettings
>>> from driftnet.alerts.sources import watchdog_condition
>>> book, now = AlertBook(AlertsSettings()), datetime(2026, 11, 25, tzinfo=UTC)
>>> [a.state for a in book.observe("watchdog", 1, [watchdog_condition(AlertsSettings())], now)]
['firing']
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from driftnet.alerts.config import AlertsSettings
from driftnet.alerts.model import Alert
from driftnet.alerts.sources import AT_ONCE, Condition

MAX_SCOPES = 50_000
"""Scopes whose last mark is remembered (each cohort and worker is one)."""
MAX_QUIET_SCOPES = 1_000
"""Scopes whose alerts have all gone whose mark is still kept in the saved state: a window
replayed upstream after a takeover (a merge stage re-closing it) must not raise again an
alert that resolved. The most recently quieted are kept."""


@dataclass(slots=True)
class Tracked:
    alert: Alert
    scope: str
    active: int = 0
    """Consecutive observations with the condition."""
    clean: int = 0
    """Consecutive observations without it (while firing)."""


class AlertBook:
    """Every alert that is pending, firing or resolved-but-not-yet-notified."""

    def __init__(self, settings: AlertsSettings) -> None:
        self.settings = settings
        self._tracked: dict[str, Tracked] = {}
        self._marks: dict[str, int] = {}
        self._quiet: dict[str, None] = {}
        """Scopes whose last alert was forgotten, oldest first (see :data:`MAX_QUIET_SCOPES`)."""

    def observe(
        self, scope: str, mark: int, conditions: list[Condition], now: datetime
    ) -> list[Alert]:
        """Take one observation of ``scope`` (``mark`` orders them: a window's end, a check's
        time) and return the alerts it changed."""
        if mark <= self._marks.get(scope, mark - 1):
            return []
        self._marks[scope] = mark
        if len(self._marks) > MAX_SCOPES:  # forget the scopes seen longest ago
            busy = {t.scope for t in self._tracked.values()}
            for old in sorted(self._marks, key=self._marks.__getitem__)[: MAX_SCOPES // 10]:
                if old not in busy:
                    del self._marks[old]
                    self._quiet.pop(old, None)
        changed: list[Alert] = []
        present = {c.fingerprint: c for c in conditions}
        for fingerprint, condition in present.items():
            alert = self._activate(fingerprint, condition, scope, now)
            if alert is not None:
                changed.append(alert)
        for fingerprint, tracked in list(self._tracked.items()):
            if tracked.scope == scope and fingerprint not in present:
                alert = self._clean(fingerprint, tracked, now)
                if alert is not None:
                    changed.append(alert)
        return changed

    def _activate(
        self, fingerprint: str, condition: Condition, scope: str, now: datetime
    ) -> Alert | None:
        life = self.settings.lifecycle(condition.labels, condition.severity)
        for_windows = 1 if condition.rule in AT_ONCE else life.for_windows
        tracked = self._tracked.get(fingerprint)
        if tracked is None or tracked.alert.state == "resolved":
            alert = Alert(
                fingerprint=fingerprint,
                rule=condition.rule,
                labels=condition.labels,
                severity=life.severity or condition.severity,
                state="pending",
                summary=condition.summary,
                starts_at=now,
                updated_at=now,
            )
            tracked = self._tracked[fingerprint] = Tracked(alert, scope)
            self._quiet.pop(scope, None)
        tracked.active += 1
        tracked.clean = 0
        before = tracked.alert.state
        state = "firing" if tracked.active >= for_windows else "pending"
        tracked.alert = tracked.alert.model_copy(
            update={
                "state": state,
                "severity": life.severity or condition.severity,
                "summary": condition.summary,
                "description": condition.description,
                "details": condition.details,
                "links": condition.links,
                "query": condition.query,
                "source_id": condition.source_id,
                "updated_at": now,
                "ends_at": None,
                "windows_active": tracked.active,
            }
        )
        return tracked.alert if state == "firing" or before != state else None

    def _clean(self, fingerprint: str, tracked: Tracked, now: datetime) -> Alert | None:
        if tracked.alert.state == "pending":
            self._forget(fingerprint)  # it never fired: nobody was told
            return None
        if tracked.alert.state == "resolved":
            return None
        tracked.active = 0
        tracked.clean += 1
        life = self.settings.lifecycle(tracked.alert.labels, tracked.alert.severity)
        if tracked.clean <= life.keep_firing_for_windows:
            return None
        tracked.alert = tracked.alert.model_copy(
            update={"state": "resolved", "ends_at": now, "updated_at": now}
        )
        return tracked.alert

    def expire(self, prefix: str, before: int, now: datetime) -> list[Alert]:
        """Scopes named ``prefix...`` last observed at a mark below ``before`` are gone (a
        worker that stopped sending health checks): their firing alerts resolve, their
        pending ones are forgotten, and so are the scopes. Returns the alerts resolved."""
        gone = {s for s, mark in self._marks.items() if s.startswith(prefix) and mark < before}
        resolved: list[Alert] = []
        for fingerprint, tracked in list(self._tracked.items()):
            if tracked.scope not in gone:
                continue
            if tracked.alert.state != "firing":
                del self._tracked[fingerprint]  # pending: nobody was told; resolved: told
                continue
            why = f"Resolved because {tracked.scope} stopped sending health checks."
            description = "\n".join(filter(None, (tracked.alert.description, why)))
            tracked.alert = tracked.alert.model_copy(
                update={"state": "resolved", "ends_at": now, "updated_at": now,
                        "description": description}
            )  # fmt: skip
            resolved.append(tracked.alert)
        for scope in gone:
            del self._marks[scope]
            self._quiet.pop(scope, None)
        return resolved

    def forget_resolved(self) -> None:
        """Drop the resolved alerts (once the pipeline has them)."""
        for fingerprint, tracked in list(self._tracked.items()):
            if tracked.alert.state == "resolved":
                self._forget(fingerprint)

    def _forget(self, fingerprint: str) -> None:
        scope = self._tracked.pop(fingerprint).scope
        if scope in self._marks and not any(t.scope == scope for t in self._tracked.values()):
            self._quiet[scope] = None
            if len(self._quiet) > MAX_QUIET_SCOPES:
                del self._quiet[next(iter(self._quiet))]

    @property
    def alerts(self) -> list[Alert]:
        return [t.alert for t in self._tracked.values()]

    def firing(self) -> list[Alert]:
        return [t.alert for t in self._tracked.values() if t.alert.state == "firing"]

    def scopes(self) -> dict[str, dict[str, Any]]:
        """The state worth keeping, by scope (JSON): the scopes with alerts and the most
        recently quieted, each with its mark and its alerts. A scope left out has nothing
        a replay could change (or was seen too long ago to matter)."""
        saved: dict[str, dict[str, Any]] = {
            scope: {"mark": self._marks[scope], "tracked": []}
            for scope in self._quiet
            if scope in self._marks
        }
        for t in self._tracked.values():
            entry = saved.setdefault(t.scope, {"mark": self._marks.get(t.scope), "tracked": []})
            entry["tracked"].append(
                {"alert": t.alert.model_dump(mode="json"), "active": t.active, "clean": t.clean}
            )
        return saved

    def restore_scope(self, scope: str, data: dict[str, Any]) -> None:
        """Take back one scope as :meth:`scopes` gave it."""
        if data.get("mark") is not None:
            self._marks[scope] = int(data["mark"])
        tracked = data.get("tracked", [])
        for item in tracked:
            alert = Alert.model_validate(item["alert"])
            self._tracked[alert.fingerprint] = Tracked(
                alert, scope, int(item["active"]), int(item["clean"])
            )
        if not tracked and scope in self._marks:
            self._quiet[scope] = None

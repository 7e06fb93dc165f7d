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
from driftnet.alerts.sources import WATCHDOG, Condition

MAX_SCOPES = 50_000
"""Scopes whose last mark is remembered (each cohort and worker is one)."""


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

    def observe(
        self, scope: str, mark: int, conditions: list[Condition], now: datetime
    ) -> list[Alert]:
        """Take one observation of ``scope`` (``mark`` orders them: a window's end, a check's
        time) and return the alerts it changed."""
        if mark <= self._marks.get(scope, mark - 1):
            return []
        self._marks[scope] = mark
        if len(self._marks) > MAX_SCOPES:  # forget the scopes seen longest ago
            for old in sorted(self._marks, key=self._marks.__getitem__)[: MAX_SCOPES // 10]:
                if not any(t.scope == old for t in self._tracked.values()):
                    del self._marks[old]
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
        for_windows = 1 if condition.rule == WATCHDOG else life.for_windows
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
            del self._tracked[fingerprint]  # it never fired: nobody was told
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
        return resolved

    def forget_resolved(self) -> None:
        """Drop the resolved alerts (once the pipeline has them)."""
        for fingerprint, tracked in list(self._tracked.items()):
            if tracked.alert.state == "resolved":
                del self._tracked[fingerprint]

    @property
    def alerts(self) -> list[Alert]:
        return [t.alert for t in self._tracked.values()]

    def firing(self) -> list[Alert]:
        return [t.alert for t in self._tracked.values() if t.alert.state == "firing"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "tracked": [
                {
                    "alert": t.alert.model_dump(mode="json"),
                    "scope": t.scope,
                    "active": t.active,
                    "clean": t.clean,
                }
                for t in self._tracked.values()
            ],
            "marks": self._marks,
        }

    @classmethod
    def from_dict(cls, settings: AlertsSettings, data: dict[str, Any]) -> AlertBook:
        book = cls(settings)
        for item in data.get("tracked", []):
            alert = Alert.model_validate(item["alert"])
            book._tracked[alert.fingerprint] = Tracked(
                alert, str(item["scope"]), int(item["active"]), int(item["clean"])
            )
        book._marks = {str(k): int(v) for k, v in data.get("marks", {}).items()}
        return book

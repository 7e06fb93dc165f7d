"""Alerts about a worker (pure, no broker): a worker that stopped sending health checks is gone,
and its alerts resolve instead of firing (and repeating every 4 hours) forever."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from driftnet.alerts.config import AlertsSettings
from driftnet.alerts.lifecycle import AlertBook
from driftnet.alerts.sources import health_conditions

SETTINGS = AlertsSettings()
T0 = datetime(2026, 11, 25, tzinfo=UTC)
INTERVAL_MS = 30_000


def check(book: AlertBook, worker: str, tick: int, sink_error: str | None = None) -> list[str]:
    """Worker ``worker``'s health check number ``tick``: the states of the alerts it changed."""
    conditions = health_conditions(worker, 10, 0, 0, sink_error, SETTINGS)
    at = T0 + timedelta(milliseconds=tick * INTERVAL_MS)
    return [a.state for a in book.observe(f"worker:{worker}", tick * INTERVAL_MS, conditions, at)]


def test_a_silent_workers_firing_alert_resolves_and_says_why() -> None:
    """``sink_failing`` fires for worker a; a stops reporting while b goes on: once a's last
    check is older than the horizon, its alert resolves, saying why; b's is untouched."""
    book = AlertBook(SETTINGS)
    assert check(book, "a", 1, "disk full") == ["firing"]
    assert check(book, "b", 1, "bucket gone") == ["firing"]
    for tick in range(2, 8):
        check(book, "b", tick, "bucket gone")
    assert book.expire("worker:", 1 * INTERVAL_MS, T0) == []  # a's last check is not older
    [gone] = book.expire("worker:", 2 * INTERVAL_MS, T0 + timedelta(minutes=4))
    assert (gone.labels["worker"], gone.state, gone.ends_at) == (
        "a", "resolved", T0 + timedelta(minutes=4))  # fmt: skip
    assert gone.description.endswith("Resolved because worker:a stopped sending health checks.")
    book.forget_resolved()
    assert [a.labels["worker"] for a in book.firing()] == ["b"]


def test_a_gone_worker_that_comes_back_starts_afresh() -> None:
    """Its scope is forgotten with it: a later check of the same name is observed anew (a
    pending alert of a gone worker is forgotten without a word)."""
    book = AlertBook(AlertsSettings(critical_for_windows=2))
    check(book, "a", 1, "disk full")
    assert [a.state for a in book.alerts] == ["pending"]
    assert book.expire("worker:", 5 * INTERVAL_MS, T0) == []
    assert book.alerts == []
    check(book, "a", 1, "disk full")  # the old mark is gone too: observed again
    assert [a.state for a in book.alerts] == ["pending"]


def test_only_the_named_scopes_expire() -> None:
    """Cohort and watchdog scopes are never expired by the workers' horizon."""
    book = AlertBook(SETTINGS)
    conditions = health_conditions("a", 10, 0, 0, "disk full", SETTINGS)
    book.observe("cohort:chat/prod/r1/baseline", 1, conditions, T0)
    assert book.expire("worker:", 10**12, T0) == []
    assert len(book.firing()) == 1


def test_a_worker_restarted_under_its_name_resolves_by_its_own_clean_checks() -> None:
    """The same name after a restart is the same scope: the clean checks of the new process
    resolve what the old one raised (with host:pid names it was a new scope, and the old
    alert fired for ever)."""
    book = AlertBook(SETTINGS)
    assert check(book, "host-1", 1, "disk full") == ["firing"]
    changes = [check(book, "host-1", tick) for tick in range(2, 6)]
    assert ["resolved"] in changes

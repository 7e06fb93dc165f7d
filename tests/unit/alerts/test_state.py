"""The alert state as records of a compacted topic, without a broker: it reads back as it was,
a log that was never compacted reads as its newest records, what is gone is a tombstone, and
only what changed is written again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson

from driftnet.alerts.config import AlertsSettings
from driftnet.alerts.lifecycle import MAX_QUIET_SCOPES
from driftnet.alerts.sources import health_conditions
from driftnet.alerts.state import AlertState, Journal, key, newest

SETTINGS = AlertsSettings.model_validate(
    {"routes": [{"receivers": ["console"], "group_by": ["worker"], "group_wait_s": 0}]}
)
T0 = datetime(2026, 11, 25, tzinfo=UTC)


def busy_state() -> AlertState:
    """A firing alert, told once, a second notification waiting, a thread, an offset."""
    state = AlertState(SETTINGS)
    for worker in ("a", "b"):
        conditions = health_conditions(worker, 10, 0, 0, "disk full", SETTINGS)
        state.pipeline.add(state.book.observe(f"worker:{worker}", 1, conditions, T0), T0)
    for notification in state.pipeline.tick(T0):
        state.outbox.put(notification, T0.timestamp())
    state.outbox.pop("console")
    state.threads[("console", "worker=a")] = {"channel": "C1", "ts": "1.2"}
    state.signals_offset = 41
    return state


def test_the_state_reads_back_as_it_was() -> None:
    """Book, groups, outbox (in order, with its numbering), threads and the offset."""
    state = busy_state()
    again = AlertState.restore(SETTINGS, state.records())
    assert again.records() == state.records()
    assert again.book.alerts == state.book.alerts
    assert [p.notification.group_key for p in again.outbox] == ["worker=b"]
    assert again.outbox.put(state.pipeline.tick(T0 + timedelta(hours=5))[0], 0).seq == 3
    assert again.threads == {("console", "worker=a"): {"channel": "C1", "ts": "1.2"}}
    assert again.signals_offset == 41


def test_an_uncompacted_log_reads_as_its_newest_records() -> None:
    """Every version of every key, in order, with tombstones (None or empty): the newest
    value of each key that is not deleted."""
    log = [(b"a", b"1"), (b"b", b"1"), (b"a", b"2"), (b"b", None), (b"c", b"1"), (b"c", b"")]
    assert newest(log) == {b"a": b"2"}


def test_only_changes_are_written_and_what_is_gone_is_a_tombstone() -> None:
    """After a write, nothing is written again until something changes; a delivered
    notification is a tombstone of its outbox record."""
    state = busy_state()
    journal = Journal()
    first = journal.changes(state.records())
    assert all(value is not None for _, value in first)
    journal.commit(first)
    assert journal.changes(state.records()) == []
    state.outbox.pop("console")
    [(name, value)] = journal.changes(state.records())
    assert orjson.loads(name)[:3] == ["outbox", "console", "worker=b"]
    assert value is None


def test_quiet_scopes_are_kept_up_to_a_bound() -> None:
    """A scope whose alerts are gone keeps its mark in the state (a window replayed upstream
    must not raise its alert again), but only the most recent ones: the topic stays bounded."""
    state = AlertState(AlertsSettings(critical_for_windows=2))
    conditions = health_conditions("w", 10, 0, 0, "disk full", SETTINGS)
    for i in range(MAX_QUIET_SCOPES + 5):
        state.book.observe(f"cohort:{i}", 1, conditions, T0)  # pending
        state.book.observe(f"cohort:{i}", 2, [], T0)  # forgotten: quiet
    scopes = [orjson.loads(name)[1] for name in state.records()]
    assert len(scopes) == MAX_QUIET_SCOPES
    assert "cohort:0" not in scopes
    assert f"cohort:{MAX_QUIET_SCOPES + 4}" in scopes
    assert key("scope", "cohort:4") not in state.records()
    assert key("scope", "cohort:5") in state.records()

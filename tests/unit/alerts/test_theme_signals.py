"""Themes that are news as alerts: the signal, its conditions, the route that matches them, and
the alerting stage firing and resolving them."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from driftnet.alerts.config import AlertsSettings
from driftnet.alerts.signals import ThemeEntry, ThemesSignal, read_signal
from driftnet.alerts.sources import THEME_GROWING, THEME_NEW, theme_conditions
from driftnet.alerts.state import MemoryStore
from driftnet.cli.themes import Period, news_signal
from driftnet.harvest.themes import ThemeSettings, find_themes
from driftnet.streams.alerting.stage import AlertStage
from driftnet.streams.settings import Settings, WorkerSettings
from tests.support.failure_themes import NOW, failure_texts
from tests.support.recording_notifier import Recorder

WEEK_MS = 7 * 86_400_000
UNTIL_MS = int(NOW.timestamp() * 1000)
ROUTES = {
    "receivers": {"ml": {"type": "console"}},
    "routes": [{"match": {"rule": "driftnet.theme_*", "severity": "info"},
                "receivers": ["ml"], "group_by": ["service", "reason"], "group_wait_s": 0,
                "repeat_interval_s": 30 * 86400.0}],
}  # fmt: skip


def legal(flag: str = "new", previous: int = 0) -> ThemeEntry:
    return ThemeEntry.model_validate(
        {"theme_id": "9c1bc331", "reason": "refusal", "terms": ["legal", "lawyer", "lawsuits"],
         "flag": flag, "count": 400, "previous": previous, "service": "support-chat",
         "share_of_reason": 0.15}
    )  # fmt: skip


def signal(*entries: ThemeEntry, until_ms: int = UNTIL_MS) -> ThemesSignal:
    return ThemesSignal(
        scope="all", since_ms=until_ms - WEEK_MS, until_ms=until_ms, entries=entries
    )


def test_a_new_and_a_growing_theme_are_info_conditions_a_route_matches() -> None:
    """Each entry is an info condition (rule by flag; labels service, reason, theme) that a
    route on rule=driftnet.theme_* and severity=info takes."""
    settings = AlertsSettings.model_validate(ROUTES)
    new, growing = theme_conditions(signal(legal(), legal("growing", 100)), settings)
    assert (new.rule, growing.rule) == (THEME_NEW, THEME_GROWING)
    assert new.severity == growing.severity == "info"
    assert new.labels == {"rule": THEME_NEW, "source": "harvest", "service": "support-chat",
                          "reason": "refusal", "theme": "9c1bc331"}  # fmt: skip
    assert new.summary == (
        "support-chat: new failure theme in refusal: legal, lawyer, lawsuits (400 failures)"
    )
    assert "grew x4.0" in growing.summary
    assert "driftnet export --format eval --theme 9c1bc331 --since 2026-11-30T12:00:00Z" in (
        new.description
    )
    assert settings.route(new.labels, new.severity).receivers == ("ml",)
    assert AlertsSettings().route(new.labels, "info").receivers == ("console", "topic")


def test_the_signal_reads_back_from_its_json() -> None:
    """A themes signal as sent is read by the stage's reader."""
    sent = signal(legal())
    assert read_signal(sent.model_dump_json().encode()) == sent


def test_news_signal_holds_only_new_and_growing_themes() -> None:
    """From a report: the new theme (legal) and the tripled one (refund), none of the rest."""
    current, _ = failure_texts({"refund": 90, "medical": 60, "legal": 30})
    previous, _ = failure_texts({"refund": 25, "medical": 60}, seed=8,
                                start=NOW - timedelta(days=14))  # fmt: skip
    report = find_themes(current, previous)
    period = Period.of(NOW - timedelta(days=7), NOW, ("support-chat",), "refusal")
    news = news_signal(report, period, ThemeSettings(min_count=20))
    assert news.scope == "service=support-chat,reason=refusal"
    assert news.until_ms == UNTIL_MS
    flags = {e.flag: e for e in news.entries}
    assert set(flags) == {"new", "growing"}
    assert "legal" in flags["new"].terms
    assert any("refund" in term for term in flags["growing"].terms)


def _stage(tmp_path: Path) -> tuple[AlertStage, Recorder]:
    ml = Recorder()
    settings = Settings(
        worker=WorkerSettings(data_dir=tmp_path), alerts=AlertsSettings.model_validate(ROUTES)
    )
    notifiers: dict[str, Any] = {"ml": ml, "console": Recorder(), "topic": Recorder()}
    return AlertStage(settings, notifiers, clock=lambda: NOW.timestamp(),
                      store=MemoryStore()), ml  # fmt: skip


def _step(stage: AlertStage, value: bytes, now: datetime) -> None:
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(stage.ensure_restored())
        stage.on_signal(value, now)
        stage.tick(now)
        loop.run_until_complete(stage.deliver_due())
    finally:
        loop.close()


def test_the_stage_fires_a_new_theme_at_once_and_resolves_it_when_no_longer_news(
    tmp_path: Path,
) -> None:
    """One run flagging a theme fires its alert at once (for_windows is 2 by default); the
    same run again changes nothing; runs without it resolve it after keep_firing_for (2)."""
    stage, ml = _stage(tmp_path)
    _step(stage, signal(legal()).model_dump_json().encode(), NOW)
    [first] = ml.got
    assert first.kind == "new"
    [alert] = first.alerts
    assert (alert.rule, alert.state, alert.severity) == (THEME_NEW, "firing", "info")
    assert alert.labels["theme"] == "9c1bc331"
    _step(stage, signal(legal()).model_dump_json().encode(), NOW + timedelta(minutes=5))
    assert len(ml.got) == 1  # the same run again: a replay
    for day in (1, 2, 3):
        later = signal(until_ms=UNTIL_MS + day * 86_400_000).model_dump_json().encode()
        _step(stage, later, NOW + timedelta(days=day))
    assert [n.kind for n in ml.got] == ["new", "resolved"]
    assert ml.got[-1].alerts[0].state == "resolved"

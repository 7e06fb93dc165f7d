"""``driftnet harvest themes --signal`` on a real broker: the news reaches the signals topic and,
through the alerting stage, the receiver of the route that matches it."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from driftnet.alerts.config import AlertsSettings
from driftnet.alerts.sources import THEME_NEW
from driftnet.alerts.state import MemoryStore
from driftnet.cli.main import cli
from driftnet.streams.alerting.stage import AlertStage
from driftnet.streams.clients.topics import create_topics
from driftnet.streams.settings import Settings, WorkerSettings
from tests.support.failure_themes import NOW, failure_texts, write_harvest
from tests.support.kafka_helpers import read_topic, settings_env, stream_settings, unique_topics
from tests.support.recording_notifier import Recorder

PERIOD = ["--since", "2026-11-30T12:00:00Z", "--until", "2026-12-07T12:00:00Z"]


def test_a_new_theme_goes_from_the_command_to_the_routed_receiver(
    kafka_bootstrap: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A theme absent last week is sent as news; the stage reading the signals topic fires a
    driftnet.theme_new info alert to the receiver of the route on rule=driftnet.theme_*."""
    settings = stream_settings(kafka_bootstrap, unique_topics("themes"), tmp_path / "data")
    create_topics(settings.kafka, {"signals": settings.topics.signals})
    current, _ = failure_texts({"refund": 60, "legal": 40}, start=NOW - timedelta(days=7))
    previous, _ = failure_texts({"refund": 60}, seed=8, start=NOW - timedelta(days=14))
    write_harvest(settings.harvest.location, [*current, *previous])
    for name, value in settings_env(settings).items():
        monkeypatch.setenv(name, value)

    result = CliRunner().invoke(cli, ["harvest", "themes", *PERIOD, "--signal", "--format", "json"])
    assert result.exit_code == 0, result.output
    themes = json.loads(result.stdout)["themes"]
    legal = next(t for t in themes if "legal" in t["terms"])
    assert legal["flag"] == "new"
    topic = settings.topics.signals.name
    assert f"sent to {topic}: {legal['theme_id']} new" in result.stderr

    [record] = read_topic(kafka_bootstrap, topic, expected=1, settle_s=0.5)
    assert record.key == b"themes"
    alerts = AlertsSettings.model_validate(
        {"receivers": {"ml": {"type": "console"}},
         "routes": [{"match": {"rule": "driftnet.theme_*"}, "receivers": ["ml"],
                     "group_wait_s": 0}]}
    )  # fmt: skip
    ml = Recorder()
    notifiers: dict[str, Any] = {"ml": ml, "console": Recorder(), "topic": Recorder()}
    stage = AlertStage(
        Settings(worker=WorkerSettings(data_dir=tmp_path), alerts=alerts),
        notifiers,
        clock=lambda: NOW.timestamp(),
        store=MemoryStore(),
    )
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(stage.ensure_restored())
        stage.on_signal(record.value, NOW, record.offset)
        stage.tick(NOW)
        loop.run_until_complete(stage.deliver_due())
    finally:
        loop.close()
    [notification] = ml.got
    [alert] = notification.alerts
    assert alert.rule == THEME_NEW
    assert alert.severity == "info"
    assert alert.labels["theme"] == legal["theme_id"]
    assert alert.labels["reason"] == "refusal"
    assert "legal" in alert.summary

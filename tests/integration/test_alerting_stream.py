"""Alerts on a real broker: a canary regression simulated through the worker pages once per
canary in (fake) Slack, is resolved in place once the canary goes quiet, shows on the alerts
topic with the watchdog; silences are added, listed and expired from the CLI.

The simulated quarter of an hour is in the past and played fast: the incident fires until the
stream has been quiet for the idle timeout (15 s here), then the quiet windows that resolve
it close at once; the routes here wait 0 s before a group's first message (10 s by default)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import orjson
import pytest

from driftnet.alerts.config import AlertsSettings
from driftnet.detectors.config import DetectorsConfig
from tests.support.fake_slack import TOKEN, FakeSlack
from tests.support.fake_slack import fake_slack as fake_slack  # the fixture
from tests.support.kafka_helpers import (
    DRIFTNET,
    WorkerProcess,
    detection_settings,
    read_topic,
    settings_env,
)

pytestmark = pytest.mark.integration


def test_a_canary_regression_pages_once_and_resolves_in_place(
    kafka_bootstrap: str, tmp_path: Path, fake_slack: FakeSlack
) -> None:
    settings = detection_settings(kafka_bootstrap, tmp_path, "alerting")
    alerts = AlertsSettings.model_validate(
        {
            "slack_token": TOKEN,
            "slack_base_url": fake_slack.base_url,
            "slack_channel": "#llm-oncall",
            "keep_firing_for_windows": 1,
            "routes": [
                {
                    "match": {"rule": "driftnet.*"},
                    "receivers": ["topic"],
                    "group_by": ["rule"],
                    "group_wait_s": 0,
                },
                {
                    "match": {"source": "canary"},
                    "receivers": ["slack", "topic"],
                    "group_wait_s": 0,
                    "group_interval_s": 2,
                },
                # the detectors' alerts, to the topic: once the canary goes quiet its traffic
                # drop is an alert of its own, which would keep a shared message firing
                {"receivers": ["topic"], "group_wait_s": 0, "group_interval_s": 2},
            ],
        }
    )
    # A quiet stream's windows close after 15 s: the incident fires for that long in wall time
    detectors = DetectorsConfig.model_validate({"windows": {"idle_timeout_s": 15}})
    settings = settings.model_copy(update={"alerts": alerts, "detectors": detectors})
    env = settings_env(settings)
    with WorkerProcess(settings, tmp_path / "worker.log") as worker:
        simulated = subprocess.run(
            [str(DRIFTNET), "simulate", "--scenario", "canary-latency", "--duration", "15m",
             "--speedup", "60", "--rate", "3000", "--seed", "4", "--quiet",
             "--start", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 3600))],
            env=env, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert simulated.returncode == 0, simulated.stderr
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            messages = fake_slack.messages
            if len(messages) == 3 and all("RESOLVED" in m.text.upper() for m in messages):
                break
            time.sleep(1)
        added = subprocess.run(
            [str(DRIFTNET), "silence", "add", "--match", "release=gpt-4.1*", "--for", "2h",
             "--comment", "rolled back", "--by", "ana"],
            env=env, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        listed = subprocess.run([str(DRIFTNET), "silence", "list"], env=env,
                                capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
        assert added.returncode == 0, added.stderr
        silence_id = added.stdout.split()[1]
        expired = subprocess.run([str(DRIFTNET), "silence", "expire", silence_id], env=env,
                                 capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
        relisted = subprocess.run([str(DRIFTNET), "silence", "list"], env=env,
                                  capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
        notified = read_topic(
            kafka_bootstrap, settings.topics.alerts.name, expected=7, timeout_s=30, settle_s=2
        )
        assert worker.stop() == 0, worker.log

    messages = fake_slack.messages
    assert len(messages) == 3, [m.text for m in messages]  # one per canary release
    first_posts = [r for r in fake_slack.calls("chat.postMessage") if "thread_ts" not in r.payload]
    assert len(first_posts) == 3
    assert all("canary" in r.payload["text"] for r in first_posts)
    for message in messages:
        assert message.edits >= 1, message.text  # updated (finally resolved) in place
        assert "RESOLVED" in message.text.upper()
        assert "resolved" in message.replies[-1].text.lower()
    kinds = [orjson.loads(r.value)["kind"] for r in notified]
    rules = {a["rule"] for r in notified for a in orjson.loads(r.value)["alerts"]}
    assert "driftnet.watchdog" in rules
    assert {"new", "resolved"} <= set(kinds)
    assert silence_id in listed.stdout
    assert "release=gpt-4.1*" in listed.stdout
    assert expired.returncode == 0, expired.stderr
    assert silence_id not in relisted.stdout

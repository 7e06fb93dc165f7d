"""Alerting on a real broker, with ``driftnet worker`` processes. The owner of the signals
partition killed: three workers, each with its own data directory (three hosts), the owner
SIGKILLed while a canary's alert fires, then its successor SIGKILLed while the resolve waits
for ``group_interval``. The alert state is in the compacted topic, so the fake Slack gets
exactly one message, updated to resolved once, with one resolve reply -- no second page, no
lost resolve. And a notification Slack refuses for good: dead-lettered, counted, and the next
one delivered.

The tests produce the signals themselves (detection off) and watch the state topic to know
what the owner has taken in. Bounded in time: 3 s sessions, a 40 s ``group_interval``."""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path

import orjson
import pytest
from kafka import KafkaProducer

from driftnet.alerts.config import AlertsSettings
from driftnet.alerts.state import newest
from driftnet.streams.clients.topics import create_topics
from driftnet.streams.settings import Settings
from tests.support.canary_sim import CANARY
from tests.support.fake_slack import TOKEN, FakeSlack
from tests.support.fake_slack import fake_slack as fake_slack  # the fixture
from tests.support.kafka_helpers import WorkerProcess, read_topic, stream_settings, unique_topics
from tests.unit.streams.test_alert_stage import verdicts, window

pytestmark = pytest.mark.integration

GROUP_INTERVAL_S = 40.0
OWNS = "this worker owns the signals partition"
REVOKED = "the signals partition was revoked"
CANARY_SCOPE = "cohort:" + "/".join(CANARY)


def takeover_settings(bootstrap: str, tmp_path: Path, slack: FakeSlack) -> Settings:
    """Workers that only alert (no detection, no harvest sink): a killed member's partitions
    move after 3 s; the canary's alerts go to Slack, at once, then at most every 40 s."""
    settings = stream_settings(bootstrap, unique_topics("alert-takeover"), tmp_path / "data")
    worker = settings.worker.model_copy(
        update={"session_timeout_s": 3.0, "commit_interval_s": 0.5, "detect": False}
    )
    alerts = AlertsSettings.model_validate(
        {
            "slack_token": TOKEN,
            "slack_base_url": slack.base_url,
            "keep_firing_for_windows": 1,
            "routes": [
                {"match": {"source": "driftnet"}, "receivers": ["topic"], "group_wait_s": 0},
                {
                    "match": {"source": "canary"},
                    "receivers": ["slack"],
                    "group_wait_s": 0,
                    "group_interval_s": GROUP_INTERVAL_S,
                },
            ],
        }
    )
    harvest = settings.harvest.model_copy(update={"sink_in_worker": False})
    settings = settings.model_copy(update={"worker": worker, "alerts": alerts, "harvest": harvest})
    create_topics(settings.kafka, settings.topics.by_role())
    return settings


def on_host(settings: Settings, tmp_path: Path, name: str) -> WorkerProcess:
    """A worker named ``name`` with a data directory of its own."""
    worker = settings.worker.model_copy(update={"name": name, "data_dir": tmp_path / name})
    return WorkerProcess(settings.model_copy(update={"worker": worker}), tmp_path / f"{name}.log")


def owner(workers: list[WorkerProcess]) -> WorkerProcess | None:
    """The one live worker whose log last says it owns the signals partition (None while that
    is not exactly one)."""
    owning = [
        w
        for w in workers
        if w.process is not None
        and w.process.poll() is None
        and w.log.rfind(OWNS) > w.log.rfind(REVOKED)
    ]
    return owning[0] if len(owning) == 1 else None


def wait_for(
    check: Callable[[], bool], timeout_s: float, what: str, workers: Sequence[WorkerProcess] = ()
) -> None:
    """Wait for ``check``; on timeout the failure shows what each worker logged (but its
    once-a-second counts), to tell a slow takeover from a lost resolve."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            logs = "".join(
                f"\n--- {w.log_path.name}:\n"
                + "\n".join(line for line in w.log.splitlines() if "  alerts: " not in line)
                for w in workers
            )
            raise AssertionError(f"timed out waiting for {what}{logs}")
        time.sleep(0.2)


def canary_scope(settings: Settings) -> dict[str, object] | None:
    """The canary's record in the alert state topic, as a new owner would read it back."""
    records = read_topic(
        settings.kafka.bootstrap_servers, settings.topics.alerts_state.name,
        expected=10**9, timeout_s=0.5, settle_s=0,
    )  # fmt: skip
    live = newest((r.key, r.value) for r in records)
    value = live.get(orjson.dumps(["scope", CANARY_SCOPE]))
    return None if value is None else dict(orjson.loads(value))


def test_killing_the_alerting_owner_neither_repages_nor_loses_the_resolve(
    kafka_bootstrap: str, tmp_path: Path, fake_slack: FakeSlack
) -> None:
    settings = takeover_settings(kafka_bootstrap, tmp_path, fake_slack)
    failing, passing = verdicts()
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")

    def signal(*messages: bytes) -> None:
        for message in messages:
            producer.send(settings.topics.signals.name, key=b"windows", value=message)
        producer.flush(10)

    workers = [on_host(settings, tmp_path, name) for name in ("host-a", "host-b", "host-c")]
    try:
        for worker in workers:
            worker.start()
        wait_for(lambda: owner(workers) is not None, 30, "one owner of the signals partition",
                 workers)  # fmt: skip
        signal(window(failing, 60), window(failing, 120))
        wait_for(lambda: len(fake_slack.messages) == 1, 30, "the alert's message", workers)
        first = owner(workers)
        assert first is not None
        first.kill()  # SIGKILL, the alert firing

        signal(window(failing, 180))  # the survivors' new owner reads it, after the replay
        wait_for(lambda: (canary_scope(settings) or {}).get("mark") == 180, 40,
                 "the next owner to take in the window of 180", workers)  # fmt: skip
        assert len(fake_slack.messages) == 1, "paged again after the takeover"

        signal(window(passing, 240), window(passing, 300))  # resolves it: the resolve waits
        wait_for(lambda: (canary_scope(settings) or {}).get("tracked") == [], 30,
                 "the owner to resolve the alert", workers)  # fmt: skip
        second = owner(workers)
        assert second is not None
        assert second is not first
        assert fake_slack.calls("chat.update") == [], "resolved before the kill: too slow"
        second.kill()  # SIGKILL, the resolve waiting for group_interval

        wait_for(lambda: "RESOLVED" in fake_slack.messages[0].text.upper(),
                 GROUP_INTERVAL_S + 30, "the resolve", workers)  # fmt: skip
        time.sleep(2)  # room for a second resolve, were there one
    finally:
        producer.close()
        for worker in workers:
            worker.kill()
    [message] = fake_slack.messages
    assert message.edits == 1
    assert ["resolved" in reply.text for reply in message.replies] == [True]
    posts = [r for r in fake_slack.calls("chat.postMessage") if "thread_ts" not in r.payload]
    assert len(posts) == 1


def test_a_notification_slack_refuses_is_dead_lettered_and_the_next_one_is_delivered(
    kafka_bootstrap: str, tmp_path: Path, fake_slack: FakeSlack
) -> None:
    """Two workers' sinks failing, one Slack message each; Slack refuses the first for good
    (``channel_not_found``): it is a record on the alerts dead-letter topic with its reason and
    error, ``driftnet_alerts_dead_lettered_total`` counts it, and the second is delivered."""
    settings = takeover_settings(kafka_bootstrap, tmp_path, fake_slack)
    route = {"match": {"rule": "driftnet.sink_failing"}, "receivers": ["slack"],
             "group_by": ["worker"], "group_wait_s": 0}  # fmt: skip
    alerts = AlertsSettings.model_validate(
        {**settings.alerts.model_dump(mode="json"), "slack_token": TOKEN, "routes": [route]}
    )
    settings = settings.model_copy(update={"alerts": alerts})
    fake_slack.fail_next(1, status=200, error="channel_not_found")
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    worker = on_host(settings, tmp_path, "host-a")
    try:
        worker.start()
        wait_for(lambda: OWNS in worker.log, 30, "the worker to own the signals partition")
        at_ms = int(time.time() * 1000)
        for name in ("ghost-1", "ghost-2"):
            health = {"type": "health", "worker": name, "at_ms": at_ms, "messages": 1,
                      "dead_letters": 0, "sink_error": "disk full"}  # fmt: skip
            producer.send(settings.topics.signals.name, key=b"health", value=orjson.dumps(health))
        producer.flush(10)
        wait_for(lambda: len(fake_slack.messages) == 1, 30, "the second worker's message")
        [letter] = read_topic(kafka_bootstrap, settings.topics.alerts_dlq.name, expected=1)
        url = worker.log.split("health and metrics at ")[1].split("/health")[0]
        with urllib.request.urlopen(url + "/metrics", timeout=5) as response:
            metrics = response.read().decode()
    finally:
        producer.close()
        worker.kill()
    assert "ghost-2" in fake_slack.messages[0].text
    dead = orjson.loads(letter.value)
    assert (dead["receiver"], dead["reason"], dead["attempts"]) == ("slack", "permanent", 1)
    assert "channel_not_found" in dead["error"]
    assert dead["notification"]["alerts"][0]["labels"]["worker"] == "ghost-1"
    assert 'driftnet_alerts_dead_lettered_total{receiver="slack"} 1.0' in metrics

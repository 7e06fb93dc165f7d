"""The alerting stage with the real slack-sdk client against a fake Slack Web API on
127.0.0.1 and an injected clock: one message per problem, resolved in place with a thread
reply; Slack failing for a while delays, never loses or repeats; a restart mid-alert
neither re-pages nor forgets the resolve."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from driftnet.alerts.config import AlertsSettings
from driftnet.alerts.model import Notification
from driftnet.alerts.notify.slack import SlackNotifier
from driftnet.detectors.canary.verdict import Verdict
from driftnet.streams.alerting.stage import AlertStage
from driftnet.streams.detection.window_signals import window_signals
from driftnet.streams.settings import Settings, WorkerSettings
from tests.support.canary_sim import CANARY, Arm, Rollout, run
from tests.support.fake_slack import TOKEN, FakeSlack
from tests.support.fake_slack import fake_slack as fake_slack  # the fixture

T0 = 1_795_000_000.0


class Clock:
    """The stage's wall clock, moved by the test; one event loop for all its deliveries (the
    Slack client's HTTP session belongs to one loop, as in the worker)."""

    def __init__(self) -> None:
        self.now = T0
        self.loop = asyncio.new_event_loop()

    def __call__(self) -> float:
        return self.now


def verdicts() -> tuple[Verdict, Verdict]:
    """A failing canary verdict and a passing one of the same canary."""
    failing = run(Rollout(windows=3, regressed=Arm(latency_scale=1.5)), seed=1)[-1]
    passing = run(Rollout(windows=4), seed=2)[-1]
    return failing, passing


def window(verdict: Verdict, end: int) -> bytes:
    entry = {"cohort": list(CANARY), "window_end": end, "findings": [],
             "verdict": verdict.model_dump(mode="json")}  # fmt: skip
    [message] = window_signals([entry])
    return message


def stage_for(tmp_path: Path, slack: FakeSlack, clock: Clock) -> AlertStage:
    settings = Settings(
        worker=WorkerSettings(data_dir=tmp_path),
        alerts=AlertsSettings.model_validate(
            {
                "slack_token": TOKEN,
                "slack_base_url": slack.base_url,
                "keep_firing_for_windows": 1,
                "routes": [
                    {
                        "match": {"rule": "canary.*"},
                        "receivers": ["slack"],
                        "group_wait_s": 0,
                        "group_interval_s": 30,
                    }
                ],
            }
        ),
    )
    notifiers: dict[str, Any] = {
        "slack": SlackNotifier(TOKEN, "#oncall", base_url=slack.base_url),
        "console": Recorder(),
        "topic": Recorder(),
    }
    return AlertStage(settings, notifiers, clock=clock)


class Recorder:
    def __init__(self) -> None:
        self.got: list[Notification] = []

    async def deliver(self, notification: Notification, thread: Any = None) -> None:
        self.got.append(notification)


def step(stage: AlertStage, clock: Clock, seconds: float, *signals: bytes) -> None:
    clock.now += seconds
    now = datetime.fromtimestamp(clock.now, UTC)
    for value in signals:
        stage.on_signal(value, now)
    stage.tick(now)
    clock.loop.run_until_complete(stage.deliver_due())
    stage.save()


def test_a_regression_is_one_message_resolved_in_place_with_a_thread_reply(
    tmp_path: Path, fake_slack: FakeSlack
) -> None:
    """A failing canary for 3 windows, then passing: one chat.postMessage, then the same
    message updated to resolved, plus a reply in its thread; nothing else."""
    failing, passing = verdicts()
    clock = Clock()
    stage = stage_for(tmp_path, fake_slack, clock)
    for i in range(3):
        step(stage, clock, 60, window(failing, 60 * (i + 1)))
    for i in range(3, 6):
        step(stage, clock, 60, window(passing, 60 * (i + 1)))
    [message] = fake_slack.messages
    assert message.edits == 1
    assert "RESOLVED" in json.dumps(message.blocks)
    assert "resolved" in message.replies[-1].text.lower()
    assert len(fake_slack.calls("chat.postMessage")) == 2  # the message and the reply
    assert fake_slack.calls("chat.postMessage")[0].authorization == f"Bearer {TOKEN}"


def test_slack_failing_for_a_while_delays_but_delivers_each_once_in_order(
    tmp_path: Path, fake_slack: FakeSlack
) -> None:
    """500s, then a 429 with Retry-After: the new message and its resolve wait, then arrive
    once each, in order, and nothing is lost in between."""
    failing, passing = verdicts()
    clock = Clock()
    stage = stage_for(tmp_path, fake_slack, clock)
    fake_slack.fail_next(3, status=500)
    fake_slack.fail_next(1, status=429, retry_after=7)
    step(stage, clock, 60, window(failing, 60))
    assert fake_slack.messages == []
    for i in range(1, 4):
        step(stage, clock, 60, window(passing, 60 * (i + 1)))
    for _ in range(10):
        step(stage, clock, 10)
    [message] = fake_slack.messages
    assert message.edits == 1
    methods = [r.method for r in fake_slack.requests if r.method.startswith("chat.")]
    # the first four answered 500, 500, 500 and 429; then each once, in order
    assert methods[4:] == ["chat.postMessage", "chat.update", "chat.postMessage"]
    assert stage.outbox.head("slack") is None


def test_a_restart_mid_alert_neither_repages_nor_loses_the_resolve(
    tmp_path: Path, fake_slack: FakeSlack
) -> None:
    """The worker stops while the canary's alert fires; a new stage from the same data dir
    sees the same windows again (a replay) and then clean ones: no second message, and the
    first one is resolved in place."""
    failing, passing = verdicts()
    clock = Clock()
    first = stage_for(tmp_path, fake_slack, clock)
    step(first, clock, 60, window(failing, 60))
    step(first, clock, 60, window(failing, 120))
    assert len(fake_slack.messages) == 1
    second = stage_for(tmp_path, fake_slack, clock)
    step(second, clock, 60, window(failing, 60), window(failing, 120))  # replayed
    step(second, clock, 60, window(passing, 180), window(passing, 240))
    step(second, clock, 60)
    [message] = fake_slack.messages
    assert message.edits == 1
    assert "RESOLVED" in json.dumps(message.blocks)


def health(worker: str, at_s: float, sink_error: str | None = None) -> bytes:
    """One worker's health signal."""
    return json.dumps(
        {"type": "health", "worker": worker, "at_ms": int(at_s * 1000), "messages": 10,
         "dead_letters": 0, "consumer_lag": 0, "sink_error": sink_error}
    ).encode()  # fmt: skip


class Picky(Recorder):
    """A notifier with a bug: it cannot encode the notifications about one worker."""

    def __init__(self, bad: str) -> None:
        super().__init__()
        self.bad = bad

    async def deliver(self, notification: Notification, thread: Any = None) -> None:
        if any(a.labels.get("worker") == self.bad for a in notification.alerts):
            "\ud800".encode()  # a UnicodeEncodeError, with no retryable flag
        await super().deliver(notification, thread)


def test_a_notification_that_cannot_be_sent_is_dead_lettered_and_the_next_ones_go_out(
    tmp_path: Path,
) -> None:
    """A notifier raising a non-retryable error (here an encoding error, which carries no
    retryable flag) on one alert: that notification is dead-lettered with its reason, error and
    attempts, counted, and the receiver's next notifications are delivered."""
    settings = Settings(
        worker=WorkerSettings(data_dir=tmp_path),
        alerts=AlertsSettings.model_validate(
            {
                "routes": [
                    {
                        "match": {"rule": "driftnet.sink_failing"},
                        "receivers": ["console"],
                        "group_by": ["worker"],
                        "group_wait_s": 0,
                    }
                ]
            }
        ),
    )
    picky, letters = Picky(bad="w1"), []

    async def publish(letter: Any) -> None:
        letters.append(letter)

    clock = Clock()
    notifiers: dict[str, Any] = {"console": picky, "topic": Recorder()}
    stage = AlertStage(settings, notifiers, clock=clock, dead_letters=publish)
    step(stage, clock, 30, health("w1", clock.now, "disk full"))
    step(stage, clock, 30, health("w2", clock.now, "disk full"), health("w3", clock.now, "gone"))
    assert [n.alerts[0].labels["worker"] for n in picky.got] == ["w2", "w3"]
    [letter] = letters
    assert (letter.receiver, letter.reason, letter.attempts) == ("console", "permanent", 1)
    assert letter.error.startswith("UnicodeEncodeError")
    assert letter.notification.alerts[0].labels["worker"] == "w1"
    assert stage.tally.dead_lettered_by_receiver == {"console": 1}
    assert "dead-lettered 1 (permanent 1)" in stage.tally.line(len(stage.outbox))
    assert stage.outbox.head("console") is None

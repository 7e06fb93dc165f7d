"""The alerting stage with the real slack-sdk client against a fake Slack Web API on
127.0.0.1 and an injected clock: one message per problem, resolved in place with a thread
reply; Slack failing for a while delays, never loses or repeats; a restart mid-alert
neither re-pages nor forgets the resolve."""

from __future__ import annotations

import asyncio
import json
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from driftnet.alerts.config import AlertsSettings
from driftnet.alerts.model import Notification
from driftnet.alerts.notify.slack import SlackNotifier
from driftnet.alerts.state import MemoryStore
from driftnet.detectors.canary.verdict import Verdict
from driftnet.streams.alerting.stage import AlertStage
from driftnet.streams.detection.window_signals import window_signals
from driftnet.streams.ops.counters import Counters
from driftnet.streams.ops.reporting import HealthReporter
from driftnet.streams.settings import Settings, WorkerSettings
from tests.support.canary_sim import CANARY, Arm, Rollout, run
from tests.support.fake_slack import TOKEN, FakeSlack
from tests.support.fake_slack import fake_slack as fake_slack  # the fixture
from tests.support.recording_notifier import Recorder

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


def stage_for(
    tmp_path: Path, slack: FakeSlack, clock: Clock, store: MemoryStore | None = None
) -> AlertStage:
    """A stage paging a canary's alerts to (fake) Slack, its state in ``store`` (a new one by
    default): two stages given the same store are two owners of the signals partition."""
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
    return AlertStage(settings, notifiers, clock=clock, store=store or MemoryStore())


def step(
    stage: AlertStage, clock: Clock, seconds: float, *signals: bytes, offset: int | None = None
) -> None:
    """``seconds`` later: the signals (at offsets from ``offset``, when given), each one's
    state written as the worker's agent does, then a tick and the deliveries."""
    clock.now += seconds
    now = datetime.fromtimestamp(clock.now, UTC)
    run = clock.loop.run_until_complete
    run(stage.ensure_restored())
    for i, value in enumerate(signals):
        stage.on_signal(value, now, None if offset is None else offset + i)
        run(stage.persist())
    stage.tick(now)
    run(stage.persist())
    run(stage.deliver_due())


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
    # the first answered 500, 500, 500 and 429 (the retries after a 500 look in the channel
    # first: Slack may have posted it); then each once, in order
    assert methods[-3:] == ["chat.postMessage", "chat.update", "chat.postMessage"]
    assert len(message.replies) == 1
    assert stage.outbox.head("slack") is None


def test_a_takeover_mid_alert_neither_repages_nor_loses_the_resolve(
    tmp_path: Path, fake_slack: FakeSlack
) -> None:
    """The owner of the signals partition dies while the canary's alert fires; another worker,
    on another host (its own data dir), takes the state over from the store: the signals read
    again (their offsets not committed) change nothing, and the clean windows that follow
    resolve the same message -- no second message."""
    failing, passing = verdicts()
    clock, store = Clock(), MemoryStore()
    first = stage_for(tmp_path / "host-a", fake_slack, clock, store)
    step(first, clock, 60, window(failing, 60), window(failing, 120), offset=0)
    assert len(fake_slack.messages) == 1
    second = stage_for(tmp_path / "host-b", fake_slack, clock, store)
    step(second, clock, 60, window(failing, 120), offset=1)  # read again: already applied
    assert second.tally.replayed == 1
    step(second, clock, 60, window(passing, 180), window(passing, 240), offset=2)
    step(second, clock, 60)
    [message] = fake_slack.messages
    assert message.edits == 1
    assert "RESOLVED" in json.dumps(message.blocks)
    assert not list(tmp_path.rglob("*.json"))  # nothing on the local disk


def test_an_owner_dead_between_slack_and_its_record_is_not_repaged(
    tmp_path: Path, fake_slack: FakeSlack
) -> None:
    """The owner posts the alert and dies before the state topic has the delivery (CI once
    killed it in that window): the next owner reads the notification back as still to send,
    finds it in the channel by the id in its metadata instead of posting it again, and
    resolves that message."""
    failing, passing = verdicts()
    clock, store = Clock(), MemoryStore()
    first = stage_for(tmp_path / "host-a", fake_slack, clock, store)
    recorded = len(store.log)
    step(first, clock, 60, window(failing, 60), window(failing, 120), offset=0)
    assert len(fake_slack.messages) == 1
    delivered = [i for i, (key, value) in enumerate(store.log) if i >= recorded
                 and key.startswith(b'["outbox"') and value is None]  # fmt: skip
    del store.log[delivered[0] :]  # the delivery's record never reached the broker
    second = stage_for(tmp_path / "host-b", fake_slack, clock, store)
    step(second, clock, 60, window(failing, 120), offset=1)
    assert len(fake_slack.messages) == 1
    assert len(fake_slack.calls("conversations.history")) == 1
    step(second, clock, 60, window(passing, 180), window(passing, 240), offset=2)
    step(second, clock, 60)
    [message] = fake_slack.messages
    assert message.edits == 1
    assert "RESOLVED" in json.dumps(message.blocks)


def test_a_restart_mid_alert_neither_repages_nor_loses_the_resolve(
    tmp_path: Path, fake_slack: FakeSlack
) -> None:
    """The worker restarts (same host) while the canary's alert fires: the new process reads
    the state back, a window seen again (re-closed upstream, at a new offset) changes nothing,
    and the clean windows resolve the same message."""
    failing, passing = verdicts()
    clock, store = Clock(), MemoryStore()
    first = stage_for(tmp_path, fake_slack, clock, store)
    step(first, clock, 60, window(failing, 60), window(failing, 120), offset=0)
    assert len(fake_slack.messages) == 1
    second = stage_for(tmp_path, fake_slack, clock, store)
    step(second, clock, 60, window(failing, 60), window(failing, 120), offset=2)  # replayed
    step(second, clock, 60, window(passing, 180), window(passing, 240), offset=4)
    step(second, clock, 60)
    [message] = fake_slack.messages
    assert message.edits == 1
    assert "RESOLVED" in json.dumps(message.blocks)


def test_a_takeover_mid_resolve_delivers_the_pending_resolve_once(
    tmp_path: Path, fake_slack: FakeSlack
) -> None:
    """The owner dies with the resolve decided but not yet due (``group_interval``): the next
    owner sends it when it is due, once."""
    failing, passing = verdicts()
    clock, store = Clock(), MemoryStore()
    first = stage_for(tmp_path / "host-a", fake_slack, clock, store)
    step(first, clock, 60, window(failing, 60), offset=0)
    step(first, clock, 1, window(passing, 120), window(passing, 180), offset=1)
    assert fake_slack.calls("chat.update") == []  # group_interval (30 s) holds the resolve
    second = stage_for(tmp_path / "host-b", fake_slack, clock, store)
    step(second, clock, 1, window(passing, 180), offset=2)
    step(second, clock, 30)
    step(second, clock, 30)
    [message] = fake_slack.messages
    assert message.edits == 1
    assert [r.text[:10] for r in message.replies] == ["✅ resolved"]


def test_a_notification_waiting_for_slack_is_delivered_once_by_the_next_owner(
    tmp_path: Path, fake_slack: FakeSlack
) -> None:
    """Slack is down when the owner dies with a new alert in its outbox: the next owner
    delivers it, once; what the first owner had delivered and recorded is not sent again."""
    failing, _ = verdicts()
    clock, store = Clock(), MemoryStore()
    first = stage_for(tmp_path / "host-a", fake_slack, clock, store)
    fake_slack.fail_next(5, status=503)
    step(first, clock, 60, window(failing, 60), offset=0)
    assert fake_slack.messages == []
    second = stage_for(tmp_path / "host-b", fake_slack, clock, store)
    assert clock.loop.run_until_complete(second.ensure_restored()) is None
    assert len(second.outbox) == 1
    for _ in range(6):
        step(second, clock, 30)
    assert len(fake_slack.messages) == 1
    sent = len(fake_slack.requests)
    third = stage_for(tmp_path / "host-c", fake_slack, clock, store)
    step(third, clock, 30)
    assert len(third.outbox) == 0
    assert len(fake_slack.messages) == 1
    assert len(fake_slack.requests) == sent  # nothing sent again


def test_what_is_gone_is_tombstoned(tmp_path: Path, fake_slack: FakeSlack) -> None:
    """Once the canary's alert is resolved and told, the store holds no group, thread or
    waiting notification of it: only the canary's last mark (a replayed window must not raise
    it again) and the watchdog's."""
    failing, passing = verdicts()
    clock, store = Clock(), MemoryStore()
    stage = stage_for(tmp_path, fake_slack, clock, store)
    step(stage, clock, 60, window(failing, 60), offset=0)
    step(stage, clock, 60, window(passing, 120), window(passing, 180), offset=1)
    live = clock.loop.run_until_complete(store.read())[0]
    kinds = sorted(json.loads(name)[0] for name in live)
    assert kinds == ["group", "scope", "scope", "signals"]  # the group: the watchdog's
    canary = json.dumps(["scope", "cohort:" + "/".join(CANARY)], separators=(",", ":"))
    assert json.loads(live[canary.encode()]) == {"mark": 180, "tracked": []}
    assert any(value is None for _, value in store.log)


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

    async def deliver(
        self, notification: Notification, thread: Any = None, *, unsure: bool = False
    ) -> None:
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


def worker_stage(tmp_path: Path, clock: Clock) -> tuple[AlertStage, Recorder]:
    """A stage whose worker alerts go to a recording console, one group per worker, at once;
    health checks every 30 s."""
    settings = Settings(
        worker=WorkerSettings(data_dir=tmp_path, report_interval_s=30),
        alerts=AlertsSettings.model_validate(
            {
                "routes": [
                    {
                        "match": {"source": "driftnet", "rule": "driftnet.sink_failing"},
                        "receivers": ["console"],
                        "group_by": ["worker"],
                        "group_wait_s": 0,
                        "group_interval_s": 0,
                    }
                ]
            }
        ),
    )
    console = Recorder()
    notifiers: dict[str, Any] = {"console": console, "topic": Recorder()}
    return AlertStage(settings, notifiers, clock=clock), console


def told(console: Recorder) -> list[tuple[str, str]]:
    return [(n.alerts[0].labels["worker"], n.kind) for n in console.got]


def test_a_worker_restarted_under_its_stable_name_resolves_its_own_alert(tmp_path: Path) -> None:
    """Health checks carry ``worker.name`` (default: the host name), not host:pid, so the
    process that replaces a worker whose sink was failing is the same scope: its clean checks
    resolve the alert."""
    counters = Counters()
    named = Settings(worker=WorkerSettings(name="checkout-worker-1"))
    assert HealthReporter(None, named, counters, None).worker == "checkout-worker-1"
    default = HealthReporter(None, Settings(), counters, None).worker
    assert default == socket.gethostname()
    clock = Clock()
    stage, console = worker_stage(tmp_path, clock)
    step(stage, clock, 30, health(default, clock.now, "disk full"))
    for _ in range(4):  # the restarted worker, healthy
        step(stage, clock, 30, health(default, clock.now))
    assert told(console) == [(default, "new"), (default, "resolved")]


def test_the_alerts_of_a_worker_gone_for_good_resolve(tmp_path: Path) -> None:
    """A worker that never comes back (its host was replaced): once the others' checks are
    ``alerts.worker_gone_after_reports`` (5) intervals past its last one, its alert resolves;
    a worker still reporting keeps its own."""
    clock = Clock()
    stage, console = worker_stage(tmp_path, clock)
    step(stage, clock, 30, health("old", clock.now, "disk full"), health("b", clock.now, "gone"))
    for _ in range(5):
        step(stage, clock, 30, health("b", clock.now, "gone"))
    assert ("old", "resolved") not in told(console)
    step(stage, clock, 30, health("b", clock.now, "gone"))
    assert told(console) == [("b", "new"), ("old", "new"), ("old", "resolved")]
    [resolved] = console.got[-1].alerts
    assert "stopped sending health checks" in resolved.description


def test_a_backlog_of_health_checks_or_a_clock_ahead_expires_nobody(tmp_path: Path) -> None:
    """Expiry follows the checks' own times: an hour of checks read at once from a backlog
    expires nobody who kept reporting in it; and it never runs ahead of the stage's clock, so
    a worker whose clock is an hour ahead does not make the others look gone."""
    clock = Clock()
    stage, console = worker_stage(tmp_path, clock)
    old = T0 - 3600
    backlog = [health(w, old + 30 * i, "disk full") for i in range(10) for w in ("a", "b")]
    step(stage, clock, 1, *backlog)
    assert told(console) == [("a", "new"), ("b", "new")]
    step(stage, clock, 1, health("a", clock.now, "disk full"))
    step(stage, clock, 1, health("ahead", clock.now + 3600))
    assert {a.labels.get("worker") for a in stage.book.firing()} == {None, "a"}  # None: watchdog
    assert told(console) == [("a", "new"), ("b", "new"), ("b", "resolved")]

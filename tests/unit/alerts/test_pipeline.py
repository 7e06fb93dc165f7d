"""The alert lifecycle and notification pipeline, table-driven with an injected clock: for /
keep_firing_for in windows, replays ignored, dedup, grouping, inhibition, silences, routing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest

from driftnet.alerts.config import AlertsSettings, Route
from driftnet.alerts.lifecycle import AlertBook
from driftnet.alerts.model import Alert, Details
from driftnet.alerts.pipeline import Group, Pipeline, decide
from driftnet.alerts.silences import Silence, SilenceCommand, fold
from driftnet.alerts.sources import (
    DLQ_SPIKE,
    Condition,
    finding_condition,
    health_conditions,
    scope_of,
    verdict_condition,
)
from driftnet.detectors.finding import Finding
from tests.support.canary_sim import Arm, Rollout, run

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
CHAT = ("chat", "production", "r2", "canary")


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def condition(
    rule: str = "latency.p95.v1",
    severity: str = "warning",
    cohort: tuple[str, str, str, str] = CHAT,
    source: str = "detector",
    metric: str = "latency_p95_ms",
) -> Condition:
    service, environment, release, variant = cohort
    labels = {"service": service, "environment": environment, "release": release,
              "variant": variant, "rule": rule, "source": source, "metric": metric}  # fmt: skip
    return Condition(rule, labels, severity, f"{rule} on {release}", "", Details(), (), None, None)  # type: ignore[arg-type]


# -- lifecycle -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "for_windows", "keep", "states"),
    [
        # x: condition in the window, .: clean window; states after each window
        ("xx..", 2, 0, ["pending", "firing", "resolved", None]),
        ("x.x.", 2, 0, ["pending", None, "pending", None]),
        ("xxx...", 1, 2, ["firing", "firing", "firing", "firing", "firing", "resolved"]),
        ("xx.x..", 1, 1, ["firing", "firing", "firing", "firing", "firing", "resolved"]),
        ("xxxx", 3, 0, ["pending", "pending", "firing", "firing"]),
    ],
)
def test_for_and_keep_firing_for_count_windows(
    pattern: str, for_windows: int, keep: int, states: list[str | None]
) -> None:
    """Pending until ``for_windows`` consecutive windows, firing through ``keep`` clean
    windows, resolved after; a pending alert that misses a window is forgotten."""
    settings = AlertsSettings(for_windows=for_windows, keep_firing_for_windows=keep)
    book = AlertBook(settings)
    seen: list[str | None] = []
    for i, mark in enumerate(pattern):
        conditions = [condition()] if mark == "x" else []
        book.observe(scope_of(CHAT), 60 * (i + 1), conditions, at(i))
        alerts = book.alerts
        seen.append(alerts[0].state if alerts else None)
        book.forget_resolved() if seen[-1] == "resolved" else None
    assert seen == states


def test_a_replayed_window_changes_nothing() -> None:
    """The same window (or an older one) observed again is ignored: no double count."""
    book = AlertBook(AlertsSettings(for_windows=2))
    assert book.observe(scope_of(CHAT), 120, [condition()], at(0)) == []
    assert book.observe(scope_of(CHAT), 120, [condition()], at(1)) == []
    assert book.observe(scope_of(CHAT), 60, [condition()], at(2)) == []
    assert book.alerts[0].state == "pending"
    [fired] = book.observe(scope_of(CHAT), 180, [condition()], at(3))
    assert fired.state == "firing"


def test_critical_alerts_fire_at_once_and_rules_override() -> None:
    """Critical conditions fire in their first window by default; a rule can ask more."""
    settings = AlertsSettings.model_validate(
        {"rules": [{"match": {"rule": "canary.*"}, "for_windows": 3}]}
    )
    book = AlertBook(settings)
    [alert] = book.observe(scope_of(CHAT), 60, [condition(severity="critical")], at(0))
    assert alert.state == "firing"
    judge = condition(rule="canary.judge.v1", severity="critical", source="canary")
    book.observe(scope_of(("chat", "production", "r3", "canary")), 60, [judge], at(0))
    assert [a.state for a in book.alerts if a.rule == "canary.judge.v1"] == ["pending"]


def test_book_state_round_trips() -> None:
    """What the book knows survives a restart (JSON, scope by scope)."""
    book = AlertBook(AlertsSettings(for_windows=1))
    book.observe(scope_of(CHAT), 60, [condition()], at(0))
    again = AlertBook(AlertsSettings(for_windows=1))
    for scope, data in orjson.loads(orjson.dumps(book.scopes())).items():
        again.restore_scope(scope, data)
    assert again.alerts == book.alerts
    assert again.observe(scope_of(CHAT), 60, [condition()], at(1)) == []


# -- dedup and grouping --------------------------------------------------------------------------


ROUTE = Route(receivers=("console",), group_wait_s=10, group_interval_s=60, repeat_interval_s=3600)


@pytest.mark.parametrize(
    ("sent_at", "last", "now", "snapshot", "expected"),
    [
        (None, None, 5, (("a", "firing"),), (None, "waiting for group_wait")),
        (None, None, 10, (("a", "firing"),), ("new", "first notification")),
        (None, None, 30, (("a", "resolved"),), (None, "nothing fired")),
        (0, (("a", "firing"),), 30, (("a", "firing"), ("b", "firing")), (None, "waiting for group_interval")),
        (0, (("a", "firing"),), 60, (("a", "firing"), ("b", "firing")), ("update", "alerts changed")),
        (0, (("a", "firing"),), 60, (("a", "resolved"),), ("resolved", "alerts changed")),
        (0, (("a", "firing"),), 600, (("a", "firing"),), (None, "already notified")),
        (0, (("a", "firing"),), 3600, (("a", "firing"),), ("repeat", "unchanged for repeat_interval")),
    ],
)  # fmt: skip
def test_dedup_decides_when_a_group_is_told(
    sent_at: float | None,
    last: tuple[tuple[str, str], ...] | None,
    now: float,
    snapshot: tuple[tuple[str, str], ...],
    expected: tuple[str | None, str],
) -> None:
    """group_wait before the first message, group_interval between changes, repeat_interval
    for an unchanged firing group, and never the same thing twice."""
    group = Group("k", "console", ROUTE, created_at=at(0))
    group.last_sent_at = None if sent_at is None else at(sent_at)
    group.last_snapshot = last
    assert decide(group, snapshot, at(now)) == expected


def firing(rule: str, cohort: tuple[str, str, str, str] = CHAT, **kw: str) -> Alert:
    c = condition(rule=rule, cohort=cohort, **kw)
    return Alert(fingerprint=c.fingerprint, rule=rule, labels=c.labels, severity=c.severity,
                 state="firing", summary=c.summary, starts_at=T0, updated_at=T0)  # fmt: skip


def test_a_burst_of_related_alerts_is_one_notification_updated_then_resolved() -> None:
    """Three alerts of one release in the same group_wait: one "new" message with the three;
    one resolving later is an "update"; all resolved is "resolved", and the group is gone."""
    pipeline = Pipeline(AlertsSettings())
    alerts = [firing(rule) for rule in ("latency.p95.v1", "latency.p50.v1", "cost.per_request.v1")]
    pipeline.add(alerts, at(0))
    assert pipeline.tick(at(5)) == []
    [first, topic_first] = pipeline.tick(at(10))
    assert (first.kind, len(first.alerts), first.receiver) == ("new", 3, "console")
    assert topic_first.receiver == "topic"
    pipeline.add([alerts[0].model_copy(update={"state": "resolved"})], at(20))
    assert pipeline.tick(at(30)) == []  # group_interval (60 s) since the first
    update = pipeline.tick(at(70))[0]
    assert (update.kind, update.sequence) == ("update", 2)
    assert [a.state for a in update.alerts].count("resolved") == 1
    pipeline.add([a.model_copy(update={"state": "resolved"}) for a in alerts[1:]], at(80))
    resolved = pipeline.tick(at(140))[0]
    assert (resolved.kind, resolved.sequence) == ("resolved", 3)
    assert pipeline.groups == {}


def test_a_failing_canary_mutes_the_per_metric_alerts_of_its_release() -> None:
    """Inhibition: with the canary judge's critical alert firing for r2, r2's latency alert
    is left out; r3's is not."""
    pipeline = Pipeline(AlertsSettings())
    judge = firing("canary.judge.v1", source="canary").model_copy(update={"severity": "critical"})
    latency_r2 = firing("latency.p95.v1")
    latency_r3 = firing("latency.p95.v1", cohort=("chat", "production", "r3", "canary"))
    pipeline.add([judge, latency_r2, latency_r3], at(0))
    assert pipeline.muted(latency_r2, at(1)) is not None
    assert pipeline.muted(latency_r3, at(1)) is None
    assert pipeline.muted(judge, at(1)) is None
    told = {a.fingerprint for n in pipeline.tick(at(10)) for a in n.alerts}
    assert latency_r2.fingerprint not in told
    assert {judge.fingerprint, latency_r3.fingerprint} <= told


def test_alerts_resolved_while_muted_are_not_told_when_the_canary_resolves() -> None:
    """A rolled-back canary: its judge's alert and the per-metric alerts it muted resolve
    together; the resolve message carries the judge's alert only, never the muted ones."""
    pipeline = Pipeline(AlertsSettings())
    judge = firing("canary.judge.v1", source="canary").model_copy(update={"severity": "critical"})
    latency = firing("latency.p95.v1")
    pipeline.add([judge, latency], at(0))
    first = [n for n in pipeline.tick(at(10)) if n.receiver == "console"]
    assert [[a.fingerprint for a in n.alerts] for n in first] == [[judge.fingerprint]]
    pipeline.add([a.model_copy(update={"state": "resolved"}) for a in (judge, latency)], at(20))
    [resolved] = [n for n in pipeline.tick(at(80)) if n.receiver == "console"]
    assert resolved.kind == "resolved"
    assert [a.fingerprint for a in resolved.alerts] == [judge.fingerprint]
    assert pipeline.groups == {}


def test_a_silence_mutes_until_it_expires() -> None:
    """driftnet silence add --match release=r2 --for 2h: r2's alert is not told during the
    silence; expired early, it is told at the next tick."""
    pipeline = Pipeline(AlertsSettings())
    silence = Silence.new({"release": "r2"}, at(0), timedelta(hours=2), "deploying", "ana")
    commands = [SilenceCommand(action="add", silence=silence, at=at(0))]
    pipeline.silences = fold(commands)
    pipeline.add([firing("latency.p95.v1")], at(0))
    assert pipeline.tick(at(10)) == []
    commands.append(SilenceCommand(action="expire", id=silence.id, at=at(20)))
    pipeline.silences = fold(commands)
    assert [n.kind for n in pipeline.tick(at(30))] == ["new", "new"]


def test_routes_send_by_severity_and_the_watchdog_only_to_the_topic() -> None:
    """The first matching route wins; with no route, the watchdog goes to the topic only and
    everything else to the console and the topic (and Slack when a token is set)."""
    settings = AlertsSettings.model_validate(
        {
            "slack_token": "xoxb-test",
            "receivers": {"pager": {"type": "webhook", "url": "http://127.0.0.1:9/hook"}},
            "routes": [{"match": {"severity": "critical"}, "receivers": ["pager", "slack"]}],
        }
    )
    assert settings.route({"rule": "x"}, "critical").receivers == ("pager", "slack")
    assert settings.route({"rule": "x"}, "warning").receivers == ("console", "topic", "slack")
    assert settings.route({"rule": "driftnet.watchdog"}, "info").receivers == ("topic",)
    with pytest.raises(ValueError, match="unknown receiver 'nowhere'"):
        AlertsSettings.model_validate({"routes": [{"receivers": ["nowhere"]}]})


def test_pipeline_state_round_trips() -> None:
    """Groups (what was told, when) survive a restart (JSON, group by group)."""
    pipeline = Pipeline(AlertsSettings())
    pipeline.add([firing("latency.p95.v1")], at(0))
    pipeline.tick(at(10))
    again = Pipeline(AlertsSettings())
    for data in pipeline.group_states().values():
        again.restore_group(orjson.loads(orjson.dumps(data)))
    assert again.group_states() == pipeline.group_states()
    assert again.tick(at(20)) == []


# -- sources --------------------------------------------------------------------------------------


def test_conditions_from_findings_verdicts_and_health() -> None:
    """A finding, a failing verdict and an unhealthy check each give a condition with the labels
    of its fingerprint and a ready-to-paste query; a passing verdict gives none."""
    settings = AlertsSettings(runbook_url="https://runbooks.example/{rule}/{service}")
    finding = Finding(detector="latency.p95.v1", cohort=CHAT, window_start=0, window_end=60,
                      metric="latency_p95_ms", observed=2000.0, reference=1000.0,
                      reference_kind="baseline", threshold=1200.0, message="p95 doubled")  # fmt: skip
    made = finding_condition(finding, settings)
    assert made.labels["metric"] == "latency_p95_ms"
    assert made.links[0].url == "https://runbooks.example/latency.p95.v1/chat"
    assert made.query is not None
    assert made.query.startswith('driftnet query "select')
    failing = run(Rollout(windows=3, regressed=Arm(latency_scale=1.5)), seed=1)[-1]
    judged = verdict_condition(failing, settings)
    assert judged is not None
    assert (judged.severity, judged.labels["source"]) == ("critical", "canary")
    assert verdict_condition(run(Rollout(windows=4), seed=2)[-1], settings) is None
    mine = settings.model_copy(update={"query_command": "driftnet --config /etc/d.toml query"})
    for condition in (finding_condition(finding, mine), verdict_condition(failing, mine)):
        assert condition is not None
        assert condition.query is not None
        assert condition.query.startswith('driftnet --config /etc/d.toml query "select')
    [spike] = health_conditions("w1", 1000, 80, None, None, settings)
    assert spike.rule == DLQ_SPIKE
    assert health_conditions("w1", 1000, 10, None, None, settings) == []
    rules = {c.rule for c in health_conditions("w1", 10, 0, 10**6, "disk full", settings)}
    assert rules == {"driftnet.consumer_lag", "driftnet.sink_failing"}

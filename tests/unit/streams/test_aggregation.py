"""The stream side of the detectors without Kafka: messages of the aggregates topic, the map
stage's examples (redacted before they travel), and a detector bug that must not stop the
merge stage."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from driftnet.contract.decode import decode
from driftnet.contract.events import InferenceEvent, Lineage
from driftnet.detectors.config import DetectorsConfig
from driftnet.detectors.finding import Finding
from driftnet.detectors.windowing.partials import Partial
from driftnet.harvest.redaction import RedactionSettings, Redactor
from driftnet.streams.detection.aggregate_messages import Heartbeat, read_aggregate
from driftnet.streams.detection.map_stage import MapStage
from driftnet.streams.detection.merge_stage import Judged, MergeStage
from driftnet.streams.detection.stage import _encoder
from tests.support.factories import make_event

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC).timestamp()


def test_aggregates_messages_round_trip_and_junk_is_refused() -> None:
    """Heartbeats and partials read back as sent; anything else is a one-line ValueError."""
    stage = MapStage(DetectorsConfig(), "events")
    event = InferenceEvent.model_validate(make_event())
    stage.observe(0, 5, event, [], b"{}", now=T0)
    out = stage.due(now=T0 + 10_000, aggregate_partitions=2)
    kinds = [type(read_aggregate(value)).__name__ for _, _, value, _ in out.messages]
    assert kinds == ["Partial", "Heartbeat", "Heartbeat"]
    beat = read_aggregate(out.messages[-1][2])
    assert isinstance(beat, Heartbeat)
    assert beat.source == "events/0"
    for junk in (b"", b"[]", b'{"type": "gossip"}', b'{"type": "partial", "partial": {}}'):
        with pytest.raises(ValueError, match="not an aggregates message"):
            read_aggregate(junk)


def test_examples_are_redacted_before_they_travel() -> None:
    """An example's JSON (kept in the partial sent on Kafka) has its personal data masked."""
    event = InferenceEvent.model_validate(
        make_event(
            latency_ms=9_000.0,
            input={"messages": [{"role": "user", "content": "I am ana@example.com"}]},
        )
    )
    raw = _encoder(event, Redactor(RedactionSettings()))()
    assert b"ana@example.com" not in raw
    assert b"[REDACTED:email]" in raw
    stage = MapStage(DetectorsConfig(), "events")
    stage.observe(0, 1, event, [], _encoder(event, Redactor(RedactionSettings())), now=T0)
    [partial] = stage._sides[0].close_due(T0 + 10_000)
    [example] = partial.examples.of("slowest")
    assert "[REDACTED:email]" in example.raw


def test_huge_token_counts_are_refused_at_the_door() -> None:
    """A count beyond 64 bits is an invalid_field dead letter, not a crash downstream."""
    payload = (
        InferenceEvent.model_validate(make_event())
        .model_dump_json()
        .replace('"input_tokens":120', '"input_tokens":100000000000000000000')
    )
    decoded = decode(payload.encode(), Lineage("events", 0, 0))
    assert [(d.reason, d.field) for d in decoded.dead_letters] == [
        ("invalid_field", "usage.input_tokens")
    ]


def test_a_detector_bug_skips_its_window_and_the_stage_goes_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """When a cohort's detectors raise, that window is logged and skipped, and later windows
    are still judged."""
    from driftnet.detectors.cohort import CohortDetectors

    config = DetectorsConfig()
    stage = MapStage(config, "events")
    merge = MergeStage(config, "events")
    for minute in range(3):
        event = InferenceEvent.model_validate(
            make_event(event_id=f"e{minute}", timestamp=f"2026-11-25T12:0{minute}:30Z")
        )
        stage.observe(0, minute, event, [], b"{}", now=T0)
    calls = {"n": 0}
    real = CohortDetectors.update

    def flaky(
        self: CohortDetectors, window: Partial, baseline: Partial | None = None
    ) -> list[Finding]:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("a detector bug")
        return real(self, window, baseline)

    monkeypatch.setattr(CohortDetectors, "update", flaky)
    for _, _, value, partition in stage.due(now=T0 + 10_000, aggregate_partitions=1).messages:
        merge.offer(partition or 0, read_aggregate(value), now=T0 + 10_000)
    judged = merge.close_due(now=T0 + 10_000)
    assert merge.failed_windows == 1
    assert len(judged) >= 2


def test_the_judge_learns_which_scores_are_better_low_from_the_rules() -> None:
    """Scores the failure rules call ``lower_is_better`` (in the defaults or a service) are
    the canary judge's ``lower_is_better_scores``; the rest of the config is unchanged."""
    from driftnet.harvest.rules import RulesConfig
    from driftnet.streams.detection.merge_stage import with_score_directions

    rules = RulesConfig.model_validate(
        {
            "defaults": {"scores": {"toxicity": {"threshold": 0.3, "direction": "lower_is_better"}}},
            "services": {"chat": {"scores": {"pii_leak": {"threshold": 0.1, "direction": "lower_is_better"},
                                            "faithfulness": {"threshold": 0.5}}}},
        }
    )  # fmt: skip
    config = DetectorsConfig()
    judged = with_score_directions(config, rules)
    assert judged.canary.lower_is_better_scores == {"toxicity", "pii_leak"}
    assert judged.model_copy(update={"canary": config.canary}) == config
    assert with_score_directions(config, RulesConfig()) is config


def _stages_with_closed_windows() -> tuple[MergeStage, float]:
    """A merge stage holding four minutes of 12 cohorts (canaries and their baselines, one
    slow canary) whose windows are all due."""
    config = DetectorsConfig()
    stage, merge = MapStage(config, "events"), MergeStage(config, "events")
    for minute in range(4):
        for service in range(6):
            for variant in ("baseline", "canary"):
                for n in range(20):
                    slow = variant == "canary" and service == 0 and minute >= 2
                    event = InferenceEvent.model_validate(
                        make_event(
                            event_id=f"e{minute}-{service}-{variant}-{n}",
                            timestamp=f"2026-11-25T12:0{minute}:{n + 10}Z",
                            service=f"svc-{service}",
                            variant=variant,
                            latency_ms=(4_000.0 if slow else 800.0) + 10 * n,
                        )
                    )
                    stage.observe(0, minute, event, [], b"{}", now=T0)
    done = T0 + 10_000
    for _, _, value, partition in stage.due(now=done, aggregate_partitions=1).messages:
        merge.offer(partition or 0, read_aggregate(value), now=done)
    return merge, done


def _seen(judged: list[Judged]) -> list[tuple[object, ...]]:
    return [
        (
            j.window.cohort,
            j.window.window,
            j.window.aggregate.count,
            tuple(f.model_dump_json() for f in j.findings),
            None if j.verdict is None else j.verdict.model_dump_json(exclude={"decided_at"}),
        )
        for j in judged
    ]


def test_a_judging_budget_slices_the_windows_and_judges_them_alike() -> None:
    """With a budget, close_due judges what fits and leaves the rest for the next call (one
    window a call with none to spare); in the end the same windows are judged in the same
    order with the same findings and verdicts (a canary keeps its baseline across slices)."""
    whole, done = _stages_with_closed_windows()
    expected = whole.close_due(now=done, detected_at=datetime.now(UTC))
    assert not whole.judging
    assert any(j.verdict is not None for j in expected)
    assert any(j.findings for j in expected)

    sliced, done = _stages_with_closed_windows()
    calls: list[list[Judged]] = []
    while not calls or sliced.judging:
        calls.append(sliced.close_due(now=done, detected_at=datetime.now(UTC), budget_s=0.0))
    assert [len(c) for c in calls] == [1] * len(expected)
    assert _seen([j for c in calls for j in c]) == _seen(expected)
    assert sliced.close_due(now=done) == []


def _one_window(
    stage: MapStage,
    merge: MergeStage,
    cohorts: list[str],
    minute: int,
    partition: int = 0,
    service: str = "support-chat",
) -> list[Judged]:
    """Events of each of ``cohorts`` (releases of one service) over ``minute`` after 12:00,
    with the wall clock following event time, sent through the map stage; then every window
    the watermark lets close, judged (the minutes before this one)."""
    start = T0 + 60 * minute
    for n in range(12):
        stamp = datetime.fromtimestamp(start + 5 * n, UTC).isoformat().replace("+00:00", "Z")
        for release in cohorts:
            event = InferenceEvent.model_validate(
                make_event(
                    event_id=f"{release}-{minute}-{n}",
                    timestamp=stamp,
                    release=release,
                    service=service,
                )
            )
            stage.observe(partition, minute, event, [], b"{}", now=start + 5 * n)
    at = start + 55
    for _, _, value, target in stage.due(now=at, aggregate_partitions=1).messages:
        merge.offer(target or 0, read_aggregate(value), now=at)
    return merge.close_due(now=at, detected_at=datetime.now(UTC))


def test_a_cohort_silent_past_the_horizon_loses_its_detectors() -> None:
    """A release nobody calls any more (replaced by a deploy) keeps its detectors only for
    forget_after_windows windows: a worker seeing a release a day must not grow for good."""
    config = DetectorsConfig.model_validate({"windows": {"forget_after_windows": 3}})
    stage, merge = MapStage(config, "events"), MergeStage(config, "events")
    _one_window(stage, merge, ["r-old", "r-new"], 0)
    judged = _one_window(stage, merge, ["r-new"], 1)
    assert {j.window.cohort[2] for j in judged} == {"r-old", "r-new"}
    assert merge.cohorts_watched == 2
    for minute in range(2, 8):
        judged = _one_window(stage, merge, ["r-new"], minute)
        if minute <= 4:  # its empty windows are still reported, and judged
            assert {j.window.cohort[2] for j in judged} == {"r-old", "r-new"}
    assert merge.cohorts_watched == 1, "the silent release's detectors were never dropped"
    assert [c[2] for c in merge._watches] == ["r-new"]
    _one_window(stage, merge, ["r-old", "r-new"], 8)  # it comes back: afresh
    judged = _one_window(stage, merge, ["r-new"], 9)
    assert {(j.window.cohort[2], j.window.sources) for j in judged} == {("r-old", 1), ("r-new", 1)}
    assert merge.cohorts_watched == 2


def test_the_baseline_history_of_services_gone_quiet_is_forgotten() -> None:
    """A new canary starts from its service's recent baseline windows; a service (or
    environment) that sends nothing past the horizon must not keep its entry for good."""
    config = DetectorsConfig.model_validate({"windows": {"forget_after_windows": 3}})
    stage, merge = MapStage(config, "events"), MergeStage(config, "events")
    for minute in range(40):
        _one_window(stage, merge, ["r-1"], minute, service=f"svc-{minute}")
    kept = merge._baseline_history
    assert 1 <= len(kept) <= 5, f"{len(kept)} services' baseline history kept"
    assert ("svc-38", "production") in kept  # the last window closed


def test_a_revoked_partition_takes_its_cohorts_detectors_along() -> None:
    """Detectors of cohorts whose aggregates partition moved to another worker go: the new
    owner rebuilds them, and this worker must not judge on stale ones if it gets it back."""
    config = DetectorsConfig()
    stage, merge = MapStage(config, "events"), MergeStage(config, "events")
    _one_window(stage, merge, ["r-1", "r-2"], 0)
    _one_window(stage, merge, ["r-1", "r-2"], 1)
    assert merge.cohorts_watched == 2
    merge.revoke([0])
    assert merge.cohorts_watched == 0

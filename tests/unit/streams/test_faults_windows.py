"""Windows under disorder, without a broker: out-of-order, late and clock-skewed events are
counted and every window's count stays the truth; after a takeover the merge side waits for
the partitions being replayed instead of closing windows without them."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, timedelta

from driftnet.contract.events import InferenceEvent
from driftnet.detectors.config import DetectorsConfig
from driftnet.detectors.windowing.merge import WindowMerge
from driftnet.detectors.windowing.windows import Window, WindowSpec
from driftnet.streams.detection.aggregate_messages import Heartbeat, read_aggregate
from driftnet.streams.detection.map_stage import MapStage
from driftnet.streams.detection.merge_stage import MergeStage
from tests.support.factories import make_event

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
COHORT = ("support-chat", "production", "gpt-4o+prompt-v7", "baseline")
TEMPLATE = InferenceEvent.model_validate(make_event())


def event(i: int, seconds: float) -> InferenceEvent:
    return TEMPLATE.model_copy(
        update={"event_id": f"e{i}", "timestamp": T0 + timedelta(seconds=seconds)}
    )


def test_out_of_order_late_and_skewed_events_are_counted_and_windows_stay_exact() -> None:
    """Partition 0 sends five minutes of events shuffled within the allowed lateness, then
    seven events from its first minute once that window has closed; partition 1's producer
    clock runs 40 s behind. Out-of-order and skewed events land in their event-time windows,
    the seven late ones are counted as late (not lost, not in a window), and every closed
    window holds exactly its on-time events."""
    config = DetectorsConfig()  # 60 s windows, 10 s lateness
    stage, merge = MapStage(config, "events"), MergeStage(config, "events", 2)
    rng = random.Random(7)
    truth: Counter[int] = Counter()
    wall = T0.timestamp() + 600
    stream0 = [(i, float(i) + rng.uniform(-4.0, 4.0)) for i in range(1, 300)]
    for index in range(len(stream0)):  # disorder within the lateness
        j = min(len(stream0) - 1, index + rng.randint(0, 3))
        stream0[index], stream0[j] = stream0[j], stream0[index]
    late = [(10_000 + k, 30.0 + k) for k in range(7)]
    offset = 0
    for n, (i, seconds) in enumerate(stream0):
        stage.observe(0, offset, event(i, seconds), [], b"{}", now=wall)
        offset += 1
        if n == 250:  # by now the watermark (~240 s) has closed [0, 60): these are late
            for k, at in late:
                assert not stage.observe(0, offset, event(k, at), [], b"{}", now=wall)
                offset += 1
    for _, seconds in stream0:
        truth[int(seconds // 60)] += 1
    for i in range(300):  # partition 1: a clock 40 s behind, in order
        seconds = i - 40.0 + 0.5
        stage.observe(1, i, event(20_000 + i, seconds), [], b"{}", now=wall)
        truth[int(seconds // 60)] += 1
    assert stage.late_events == 7
    done = wall + 1_000  # both partitions idle: every window is done
    for _, _, value, partition in stage.due(now=done, aggregate_partitions=1).messages:
        merge.offer(partition or 0, read_aggregate(value), now=done)
    closed = {
        j.window.window.start: j.window.aggregate
        for j in merge.close_due(now=done)
        if j.window.cohort == COHORT and j.window.aggregate.count
    }
    base = int(T0.timestamp())
    assert {(start - base) // 60: a.count for start, a in closed.items()} == dict(truth)
    assert sum(a.late for a in closed.values()) == 7
    assert sum(a.count for a in closed.values()) + 7 == len(stream0) + 7 + 300


def test_a_new_merge_waits_for_every_partition_before_closing() -> None:
    """A merge instance that just took over hears first from a partition far ahead; it closes
    nothing until the partition being replayed reports, then closes with both partials."""
    config = DetectorsConfig()
    stage_a, stage_b = MapStage(config, "events"), MapStage(config, "events")
    wall = T0.timestamp() + 600
    for i in range(120):  # partition 0 is two minutes ahead
        stage_a.observe(0, i, event(i, float(i)), [], b"{}", now=wall)
    stage_a.observe(0, 120, event(999, 200.0), [], b"{}", now=wall)
    merge = MergeStage(config, "events", 2)
    for _, _, value, partition in stage_a.due(now=wall, aggregate_partitions=1).messages:
        merge.offer(partition or 0, read_aggregate(value), now=wall)
    assert merge.close_due(now=wall + 1) == []  # partition 1 has not reported yet
    for i in range(60):  # partition 1, replayed by its new owner
        stage_b.observe(1, i, event(5_000 + i, float(i)), [], b"{}", now=wall + 2)
    stage_b.observe(1, 60, event(6_000, 200.0), [], b"{}", now=wall + 2)
    for _, _, value, partition in stage_b.due(now=wall + 2, aggregate_partitions=1).messages:
        merge.offer(partition or 0, read_aggregate(value), now=wall + 2)
    first = [j for j in merge.close_due(now=wall + 3) if j.window.window.start == T0.timestamp()]
    assert [j.window.aggregate.count for j in first] == [120]  # 60 from each partition


def test_an_expected_partition_that_never_reports_holds_windows_only_until_idle() -> None:
    """A partition that never reports (an empty one) delays closing by the idle timeout, no
    more."""
    spec = WindowSpec(size_s=60, allowed_lateness_s=10, idle_timeout_s=30)
    merge = WindowMerge(spec)
    merge.expect(["p0", "p1"], now=0.0)
    merge.heartbeat("p0", 200.0, now=1.0)
    assert merge.close_due(now=29.0) == []
    assert merge.close_due(now=31.0) == []  # nothing pending; p1 idle now: it no longer holds
    merge.heartbeat("p0", 300.0, now=32.0)
    assert merge._clock.watermark(now=32.0) == 300.0


def test_a_replaying_partition_keeps_holding_windows_while_it_catches_up() -> None:
    """After a takeover the new owner reports a lower watermark than the dead one did, for
    longer than the idle timeout: the partition still counts (it is alive), so windows past
    its old watermark do not close without its partials."""
    spec = WindowSpec(size_s=60, allowed_lateness_s=10, idle_timeout_s=30)
    merge = WindowMerge(spec)
    merge.heartbeat("p0", 500.0, now=0.0)
    merge.heartbeat("p1", 100.0, now=0.0)  # the dead owner's last word
    for t in range(5, 60, 5):
        merge.heartbeat("p0", 500.0 + t, now=float(t))
        merge.heartbeat("p1", 50.0, now=float(t))  # the new owner, replaying from behind
    assert merge._clock.watermark(now=60.0) == 100.0
    assert not merge._clock.closes(Window(120, 180), now=60.0)


def test_heartbeats_read_back() -> None:
    """Heartbeats carry the source and its watermark (what the merge side waits on)."""
    assert read_aggregate(b'{"type": "heartbeat", "source": "e/1", "watermark": 5}') == (
        Heartbeat("e/1", 5.0)
    )


def test_a_replay_that_starts_inside_a_finished_window_does_not_shrink_it() -> None:
    """Partition 0 carries two services in messages of many events each; its owner finishes
    the first minute on the map side (final partials sent, offsets committed) while the merge
    side still waits for a slow partition 1. A new owner replays from the oldest offset still
    feeding an open map-side window, which lies inside that finished minute: the smaller
    partials it sends for the minute must not replace the complete ones (the five-kill fault
    test's undercount, reproduced without a broker)."""
    config = DetectorsConfig()
    wall = T0.timestamp() + 600
    merge = MergeStage(config, "events", 2)

    def ship(stage: MapStage, now: float) -> None:
        for _, _, value, partition in stage.due(now=now, aggregate_partitions=1).messages:
            merge.offer(partition or 0, read_aggregate(value), now=now)

    def service_event(i: int, seconds: float, service: str) -> InferenceEvent:
        return event(i, seconds).model_copy(update={"service": service})

    messages = [  # offset -> (service, second) of each event in that message
        [("support-chat", s) for s in range(0, 56)],
        [("doc-qa", s) for s in range(0, 56)],
        [("support-chat", s) for s in range(56, 76)],
        [("doc-qa", s) for s in range(56, 76)],
    ]
    ids = iter(range(1_000_000))

    def read(stage: MapStage, since: int, now: float) -> None:
        for offset, batch in enumerate(messages[since:], start=since):
            for service, second in batch:
                stage.observe(0, offset, service_event(next(ids), second, service), [], b"{}",
                              now=now)  # fmt: skip

    slow = MapStage(config, "events")
    slow.observe(1, 0, event(next(ids), 1.0), [], b"{}", now=wall)
    ship(slow, wall)
    first = MapStage(config, "events")
    read(first, 0, wall)
    ship(first, wall)
    resume_at = first.safe_offset(0)
    assert resume_at is not None
    assert 0 < resume_at < len(messages)  # the replay starts inside the finished minute
    replay = MapStage(config, "events")
    read(replay, resume_at, wall + 1)
    ship(replay, wall + 1)
    slow.observe(1, 1, event(next(ids), 200.0), [], b"{}", now=wall + 2)
    ship(slow, wall + 2)
    closed = sorted(
        (judged.window.cohort[0], judged.window.aggregate.count)
        for judged in merge.close_due(now=wall + 3)
        if judged.window.window.start == T0.timestamp()
    )
    assert closed == [("doc-qa", 56), ("support-chat", 56 + 4 + 1)]


def test_a_stalled_worker_does_not_take_its_own_pause_for_idle_sources() -> None:
    """The worker stalls for 5 s (CPU starved) in the middle of a window, longer than the
    3 s idle timeout, with the window's last events still unread. Pardoned for the stall,
    neither side closes the window on the silence, and it closes whole once read; unpardoned,
    it closes with the events read before the stall (the rest come as a late partial)."""
    config = DetectorsConfig.model_validate({"windows": {"idle_timeout_s": 3}})
    wall = T0.timestamp() + 600

    def run(pardon: bool) -> int:
        """The count the window [0, 60) closes with (later ones are windows of silence)."""
        stage, merge = MapStage(config, "events"), MergeStage(config, "events", 1)

        def tick(now: float) -> list[int]:
            for _, _, value, partition in stage.due(now=now, aggregate_partitions=1).messages:
                merge.offer(partition or 0, read_aggregate(value), now=now)
            return [j.window.aggregate.count for j in merge.close_due(now=now)
                    if j.window.cohort == COHORT]  # fmt: skip

        for i in range(30):
            stage.observe(0, i, event(i, float(i)), [], b"{}", now=wall)
        assert tick(wall) == []
        resumed = wall + 5.0
        if pardon:
            stage.pardon(5.0 - 1.0, resumed)
            merge.pardon(5.0 - 1.0, resumed)
        early = tick(resumed)
        for i in range(30, 50):
            stage.observe(0, i, event(i, float(i)), [], b"{}", now=resumed)
        return (early + tick(resumed + 10.0))[0]

    assert run(pardon=True) == 50
    assert run(pardon=False) == 30

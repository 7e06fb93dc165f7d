"""Event-time windows, watermarks and the two aggregation stages (map side, merge side)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from driftnet.detectors.windowing.merge import PartitionWindows, WindowMerge
from driftnet.detectors.windowing.observation import Observation
from driftnet.detectors.windowing.partials import Partial
from driftnet.detectors.windowing.windows import Watermarks, Window, WindowSpec

SPEC = WindowSpec(size_s=60, allowed_lateness_s=10, idle_timeout_s=30)
A = ("chat", "production", "r1", "baseline")
B = ("chat", "production", "r2", "canary")


def obs(event_id: str, t: float, cohort: tuple[str, str, str, str] = A) -> Observation:
    return Observation(event_id, t, cohort, latency_ms=100.0, raw=b"{}")


def test_windows_are_aligned_and_half_open() -> None:
    """A window is [start, end) on multiples of its size; an event on the edge opens the next."""
    assert SPEC.window_of(0.0) == Window(0, 60)
    assert SPEC.window_of(59.999) == Window(0, 60)
    assert SPEC.window_of(60.0) == Window(60, 120)
    assert SPEC.window_of(-1.0) == Window(-60, 0)


def test_spec_refuses_nonsense() -> None:
    """A window of no length or a negative lateness is a configuration error."""
    with pytest.raises(ValueError, match="size_s"):
        WindowSpec(size_s=0)
    with pytest.raises(ValueError, match="lateness"):
        WindowSpec(allowed_lateness_s=-1)


def test_watermark_is_max_event_time_minus_lateness_and_never_goes_back() -> None:
    """An older event does not pull the watermark back."""
    marks = Watermarks(SPEC)
    marks.advance("p0", 100.0, now=0.0)
    marks.advance("p0", 50.0, now=1.0)
    assert marks.of("p0") == 90.0


def test_window_closes_on_the_minimum_watermark_across_sources() -> None:
    """One source behind holds the window open until it catches up."""
    marks = Watermarks(SPEC)
    marks.advance("p0", 200.0, now=0.0)
    marks.advance("p1", 100.0, now=0.0)
    assert not marks.closes(Window(60, 120), now=1.0)
    marks.advance("p1", 131.0, now=2.0)
    assert marks.closes(Window(60, 120), now=2.0)


def test_a_quiet_source_stops_holding_windows_open() -> None:
    """A source whose watermark has not moved for the idle timeout no longer counts."""
    marks = Watermarks(SPEC)
    marks.advance("quiet", 70.0, now=0.0)
    marks.advance("busy", 100.0, now=0.0)
    marks.advance("busy", 200.0, now=31.0)
    assert marks.watermark(now=31.0) == 190.0
    assert marks.closes(Window(60, 120), now=31.0)


def test_every_source_idle_closes_the_last_window() -> None:
    """When the whole stream is quiet, the wall-clock idle timer closes what is open."""
    marks = Watermarks(SPEC)
    marks.advance("p0", 100.0, now=0.0)
    assert not marks.closes(Window(60, 120), now=29.0)
    assert marks.closes(Window(60, 120), now=30.0)


def test_late_events_are_flagged() -> None:
    """An event whose window closed for its source is late; within the lateness it is not."""
    marks = Watermarks(SPEC)
    marks.advance("p0", 135.0, now=0.0)  # watermark 125: window [60, 120) closed
    assert marks.assign("p0", 119.0).late
    assert not marks.assign("p0", 121.0).late
    assert not marks.assign("p1", 0.0).late  # a source that showed nothing has closed nothing


def test_map_side_counts_late_events_in_an_open_window() -> None:
    """A late event is counted (in the cohort's oldest open partial), never silently dropped."""
    side = PartitionWindows("events/0", SPEC)
    assert side.add(obs("e1", 130.0), now=0.0, offset=5)
    assert not side.add(obs("e0", 10.0), now=0.0, offset=6)
    (partial,) = side.open_partials()
    assert (partial.window, partial.count, partial.late) == (Window(120, 180), 1, 1)
    assert side.late_events == 1


def test_map_side_never_commits_past_its_oldest_open_window() -> None:
    """The safe offset is the first offset of the oldest open window, until that window closes."""
    side = PartitionWindows("events/0", SPEC)
    side.add(obs("e1", 10.0), now=0.0, offset=100)
    side.add(obs("e2", 70.0), now=0.0, offset=101)
    assert side.safe_offset() == 100
    side.add(obs("e3", 75.0), now=0.0, offset=102)  # watermark 65: [0, 60) is done
    closed = side.close_due(now=0.0)
    assert [p.window for p in closed] == [Window(0, 60)]
    assert side.safe_offset() == 101


def test_map_side_heartbeat_moves_with_the_wall_clock_once_quiet() -> None:
    """A quiet partition's heartbeat watermark follows the wall clock, so windows close."""
    side = PartitionWindows("events/0", SPEC)
    side.add(obs("e1", 1000.0), now=1000.0)
    assert side.watermark(now=1010.0) == 990.0
    assert side.watermark(now=1100.0) == 1100.0 - 10 - 30


def _partial(source: str, cohort: tuple[str, str, str, str], window: Window, n: int) -> Partial:
    partial = Partial.empty(cohort, window, source)
    for i in range(n):
        partial.add(obs(f"{source}-{i}", window.start + i * 0.1, cohort))
    return partial


def test_merge_replaces_a_sources_earlier_partial() -> None:
    """A partial is cumulative: a newer version replaces the older, it does not add to it."""
    merge = WindowMerge(SPEC)
    merge.offer(_partial("p0", A, Window(0, 60), 3))
    merge.offer(_partial("p0", A, Window(0, 60), 5))
    merge.offer(_partial("p1", A, Window(0, 60), 2))
    merge.heartbeat("p0", 60.0, now=0.0)
    merge.heartbeat("p1", 60.0, now=0.0)
    (closed,) = merge.close_due(now=0.0)
    assert (closed.aggregate.count, closed.sources) == (7, 2)


def test_merge_is_idempotent_under_replays() -> None:
    """Offering the same partials again (a replay) gives the same aggregate."""
    once, twice = WindowMerge(SPEC), WindowMerge(SPEC)
    parts = [_partial(f"p{i}", A, Window(0, 60), 4 + i) for i in range(3)]
    for merge, offers in ((once, parts), (twice, [*parts, *reversed(parts), parts[0]])):
        for part in offers:
            merge.offer(part)
        merge.heartbeat("p0", 61.0, now=0.0)
    (a,), (b,) = once.close_due(now=0.0), twice.close_due(now=0.0)
    assert a.aggregate.to_dict() == b.aggregate.to_dict()


def test_merge_waits_for_the_slowest_source() -> None:
    """The window closes only once every (non-idle) source's watermark has passed it."""
    merge = WindowMerge(SPEC)
    merge.offer(_partial("p0", A, Window(0, 60), 1))
    merge.heartbeat("p0", 100.0, now=0.0)
    merge.heartbeat("p1", 30.0, now=0.0)
    assert merge.close_due(now=1.0) == []
    merge.heartbeat("p1", 60.0, now=2.0)
    assert [c.window for c in merge.close_due(now=2.0)] == [Window(0, 60)]


def test_merge_counts_partials_that_come_after_their_window_closed() -> None:
    """A partial for a closed window is refused and counted on the cohort's next window."""
    merge = WindowMerge(SPEC)
    merge.offer(_partial("p0", A, Window(0, 60), 1))
    merge.heartbeat("p0", 60.0, now=0.0)
    merge.close_due(now=0.0)
    assert not merge.offer(_partial("p1", A, Window(0, 60), 1))
    merge.offer(_partial("p0", A, Window(60, 120), 1))
    merge.heartbeat("p0", 120.0, now=1.0)
    (closed,) = merge.close_due(now=1.0)
    assert closed.late_partials == 1


def _release(k: int) -> tuple[str, str, str, str]:
    return ("chat", "production", f"r{k}", "baseline")


def test_late_counts_of_cohorts_that_will_not_close_again_stay_bounded() -> None:
    """A new release every window, for 300 windows; each window a late partial comes for the
    release of the window before (known: reported at the next close) or for one forgotten
    already (a replay of an old release). The merge holds the late counts of at most
    ``forget_after_windows + 2`` cohorts, not one per old release, and every late partial is
    reported once or counted in ``forgotten_late``: none is lost."""
    forget = 3
    merge = WindowMerge(SPEC, forget_after_windows=forget)
    sent = reported = 0
    for k in range(300):
        start = k * 60
        merge.offer(_partial("p0", _release(k), Window(start, start + 60), 1))
        old = k - 1 if k % 2 else k - forget - 2
        if old >= 0:
            assert not merge.offer(_partial("p1", _release(old), Window(old * 60, start), 1))
            sent += 1
        merge.heartbeat("p0", start + 60.0, now=0.0)
        reported += sum(c.late_partials for c in merge.close_due(now=0.0))
        assert merge.late_cohorts <= forget + 2, k
    for k in range(300, 300 + forget + 3):  # silence: what waits is reported or forgotten
        merge.heartbeat("p0", k * 60 + 60.0, now=0.0)
        reported += sum(c.late_partials for c in merge.close_due(now=0.0))
    assert merge.late_cohorts == 0
    assert 0 < reported < sent
    assert reported + merge.forgotten_late == sent


@pytest.mark.parametrize(("back_after", "reported"), [(3, 1), (4, 1), (5, 0)])
def test_a_late_count_waits_for_its_cohort_as_long_as_the_merge_remembers(
    back_after: int, reported: int
) -> None:
    """A late partial of a cohort the merge does not know (its windows closed before, on
    another instance) is reported on the cohort's next window if the cohort sends again
    while the merge remembers it (``forget_after_windows`` windows after the partial came);
    later, it starts afresh and the partial is counted forgotten."""
    merge = WindowMerge(SPEC, forget_after_windows=3)
    for k in range(back_after + 1):
        start = k * 60
        merge.offer(_partial("p0", A, Window(start, start + 60), 1))
        if k == 1:
            assert not merge.offer(_partial("p1", B, Window(0, 60), 2))
        if k == back_after:
            merge.offer(_partial("p0", B, Window(start, start + 60), 1))
        merge.heartbeat("p0", start + 60.0, now=0.0)
        closed = merge.close_due(now=0.0)
    [back] = [c for c in closed if c.cohort == B]
    assert back.late_partials == reported
    assert merge.forgotten_late == 1 - reported


def test_a_cohort_that_stops_sending_gets_empty_windows() -> None:
    """Silence is reported: a known cohort with no partial in a closed window gets an empty one,
    until it has been silent for ``forget_after_windows``."""
    merge = WindowMerge(SPEC, forget_after_windows=3)
    merge.offer(_partial("p0", A, Window(0, 60), 2))
    merge.offer(_partial("p0", B, Window(0, 60), 2))
    for start in range(60, 420, 60):
        merge.offer(_partial("p0", A, Window(start, start + 60), 1))
    merge.heartbeat("p0", 420.0, now=0.0)
    closed = merge.close_due(now=0.0)
    silent = [(c.window.start, c.aggregate.count) for c in closed if c.cohort == B]
    assert silent == [(0, 2), (60, 0), (120, 0), (180, 0)]
    assert all(c.sources == 0 for c in closed if c.cohort == B and c.window.start > 0)


def test_merge_closes_everything_when_all_sources_are_idle() -> None:
    """No watermark progress for the idle timeout closes the last windows of a quiet stream."""
    merge = WindowMerge(SPEC)
    merge.offer(_partial("p0", A, Window(0, 60), 2))
    merge.offer(_partial("p0", A, Window(60, 120), 2))
    merge.heartbeat("p0", 70.0, now=0.0)
    assert [c.window for c in merge.close_due(now=1.0)] == [Window(0, 60)]
    assert [c.window for c in merge.close_due(now=31.0)] == [Window(60, 120)]
    assert merge.open_windows == 0


def test_a_long_gap_in_event_time_is_crossed_at_once() -> None:
    """A watermark that jumps a year ahead closes what is open without walking every window."""
    merge = WindowMerge(SPEC, forget_after_windows=2)
    merge.offer(_partial("p0", A, Window(0, 60), 1))
    merge.offer(_partial("p0", A, Window(31_536_000, 31_536_060), 1))
    merge.heartbeat("p0", 31_536_100.0, now=0.0)
    closed = merge.close_due(now=0.0)
    assert [(c.window.start, c.aggregate.count) for c in closed] == [
        (0, 1),
        (60, 0),
        (120, 0),
        (31_536_000, 1),
    ]


def test_a_replayed_partition_rebuilds_identical_partials() -> None:
    """Replaying a partition from its safe offset into a fresh map side (a restarted or
    rebalanced worker) gives partials equal to the originals, samples and examples included."""
    events = [obs(f"e{i}", 60.0 + i * 0.25, A if i % 3 else B) for i in range(200)]
    for i, o in enumerate(events):
        o.latency_ms = float((i * 37) % 1000)
    first, replay = PartitionWindows("p0", SPEC), PartitionWindows("p0", SPEC)
    for offset, o in enumerate(events):
        first.add(o, now=0.0, offset=offset)
        replay.add(o, now=5.0, offset=offset)
    assert [p.to_dict() for p in first.open_partials()] == [
        p.to_dict() for p in replay.open_partials()
    ]


@settings(max_examples=40, deadline=None)
@given(
    assignment=st.lists(st.integers(min_value=0, max_value=3), min_size=1, max_size=60),
    order=st.randoms(use_true_random=False),
    repeats=st.integers(min_value=1, max_value=3),
)
def test_any_split_over_sources_merges_to_the_same_counts_and_sketches(
    assignment: list[int], order: random.Random, repeats: int
) -> None:
    """However events are spread over sources, and however often and in whatever order the
    partials arrive, the merged counts, sums and sketches equal those of one partial of all."""
    whole = Partial.empty(A, Window(0, 60), "all")
    parts = {s: Partial.empty(A, Window(0, 60), f"p{s}") for s in set(assignment)}
    for i, source in enumerate(assignment):
        event = obs(f"e{i}", i * 0.5)
        event.latency_ms = float(i * 13 % 700 + 1)
        event.is_error = i % 4 == 0
        whole.add(event)
        parts[source].add(event)
    merge = WindowMerge(SPEC)
    offers = list(parts.values()) * repeats
    order.shuffle(offers)
    for part in offers:
        merge.offer(part)
    merge.heartbeat("p", 60.0, now=0.0)
    (closed,) = merge.close_due(now=0.0)
    merged = closed.aggregate.to_dict()
    expected = whole.to_dict()
    for key in ("count", "errors", "cost_sum", "sketches", "by_input_size"):
        assert merged[key] == expected[key]
    assert closed.aggregate.reservoir.seen == len(assignment)
    assert closed.aggregate.example_ids("slowest") == whole.example_ids("slowest")

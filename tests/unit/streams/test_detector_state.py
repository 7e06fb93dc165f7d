"""The detectors' references across a restart, without Kafka: the records saved to the
detector-state topic read back (newest per cohort, tombstones honoured, unreadable ones
skipped), and a merge stage restarted from them goes on as the one that never stopped."""

from __future__ import annotations

import asyncio
import zlib
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from driftnet.contract.events import InferenceEvent
from driftnet.detectors.cohort import CohortDetectors
from driftnet.detectors.config import DetectorsConfig
from driftnet.streams.clients.recent_records import Record
from driftnet.streams.detection.aggregate_messages import read_aggregate
from driftnet.streams.detection.detector_state import (
    DetectorStates,
    DetectorStateWriter,
    decode_saved,
    encode_saved,
    newest_saved,
    state_key,
)
from driftnet.streams.detection.map_stage import MapStage
from driftnet.streams.detection.merge_stage import Judged, MergeStage
from driftnet.streams.settings import Settings
from tests.support.detector_streams import COHORT, stream
from tests.support.factories import make_event

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC).timestamp()
CONFIG = DetectorsConfig.model_validate(
    {"defaults": {"latency": {"min_samples": 10}, "cost": {"min_samples": 10}}}
)
"""Windows of 24 events are judged (the defaults want 30 latencies)."""


def _watch(windows: int) -> CohortDetectors:
    watch = CohortDetectors.of(DetectorsConfig(), COHORT)
    for window in stream(1, windows):
        watch.update(window)
    return watch


def _record(partition: int, offset: int, key: bytes, value: bytes | None) -> Record:
    return Record(partition, offset, key, value, ())


def test_a_saved_record_reads_back_and_junk_is_refused() -> None:
    """A cohort's record decodes to its cohort, aggregates partition, last window and
    snapshot; anything else is a one-line ValueError."""
    watch = _watch(3)
    saved = decode_saved(encode_saved(2, watch))
    assert (saved.cohort, saved.partition, saved.window_end) == (COHORT, 2, 180)
    assert saved.snapshot() == orjson.loads(orjson.dumps(watch.snapshot()))
    other_version = zlib.compress(orjson.dumps({"version": 9, "partition": 0, "snapshot": {}}))
    no_cohort = zlib.compress(orjson.dumps({"version": 1, "partition": 0, "snapshot": {}}))
    for junk, message in [
        (b"", "unreadable"),
        (zlib.compress(b"[]"), "version"),
        (other_version, "version 9"),
        (no_cohort, "unreadable detector state: KeyError"),
    ]:
        with pytest.raises(ValueError, match=message):
            decode_saved(junk)


def test_the_newest_record_of_a_cohort_wins_and_a_tombstone_deletes_it() -> None:
    """Read back uncompacted (the test broker never compacts): a later record of a cohort
    replaces an earlier one, a tombstone deletes it, records of other aggregates partitions
    and unreadable ones are left out."""
    other = (*COHORT[:2], "r-other", "baseline")
    gone = (*COHORT[:2], "r-gone", "baseline")
    elsewhere = (*COHORT[:2], "r-elsewhere", "baseline")
    older, newer = _watch(3), _watch(5)
    records = [
        _record(0, 0, state_key(COHORT), encode_saved(0, older)),
        _record(0, 1, state_key(COHORT), encode_saved(0, newer)),
        _record(0, 2, state_key(gone), encode_saved(0, _rebadged(older, gone))),
        _record(0, 3, state_key(other), b"junk"),
        _record(0, 4, state_key(gone), None),
        _record(1, 0, state_key(other), encode_saved(1, _rebadged(older, other))),
        _record(1, 1, state_key(elsewhere), encode_saved(5, _rebadged(older, elsewhere))),
    ]
    found = newest_saved(records, {0, 1})
    assert sorted(found) == sorted([COHORT, other])
    assert found[COHORT].window_end == 300
    assert found[other].partition == 1


def _rebadged(watch: CohortDetectors, cohort: tuple[str, str, str, str]) -> CohortDetectors:
    twin = CohortDetectors.of(DetectorsConfig(), cohort)
    twin.restore({**watch.snapshot(), "cohort": list(cohort)})
    return twin


def test_bookkeeping_saves_the_newest_forgets_and_drops_revoked_partitions() -> None:
    """A cohort that took several windows since the last save is saved once; one forgotten
    is deleted instead; a revoked partition's cohorts are neither saved nor restored here."""
    states = DetectorStates()
    a, b = _watch(2), _rebadged(_watch(2), (*COHORT[:2], "r-b", "baseline"))
    states.changed(0, a)
    states.changed(0, a)
    states.changed(1, b)
    states.forgotten(a.cohort, 0)
    assert states.take() == ([(1, b)], [(a.cohort, 0)])
    assert states.take() == ([], [])
    states.changed(1, b)
    states.revoke([1])
    assert states.take() == ([], [])


def _minutes(stage: MapStage, merge: MergeStage, minutes: range, slow_from: int) -> list[Judged]:
    """24 events a minute of two releases of one service through the map stage (the wall
    clock following event time); latencies triple from minute ``slow_from`` on."""
    judged: list[Judged] = []
    for minute in minutes:
        start = T0 + 60 * minute
        for n in range(24):
            at = start + 2.5 * n
            stamp = datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z")
            for release in ("r-1", "r-2"):
                latency = (800.0 + 37 * ((n * 7 + minute) % 11)) * (3 if minute >= slow_from else 1)
                event = InferenceEvent.model_validate(
                    make_event(
                        event_id=f"{release}-{minute}-{n}",
                        timestamp=stamp,
                        release=release,
                        latency_ms=latency,
                    )
                )
                stage.observe(0, minute, event, [], b"{}", now=at)
        at = start + 59
        for _, _, value, target in stage.due(now=at, aggregate_partitions=1).messages:
            merge.offer(target or 0, read_aggregate(value), now=at)
        judged += merge.close_due(now=at, detected_at=datetime.now(UTC))
    return judged


class _Topic:
    """The detector-state topic as a list; ``send`` is what the tick hands the writer."""

    def __init__(self) -> None:
        self.records: list[Record] = []

    async def send(self, *, key: bytes, value: bytes | None, partition: int) -> None:
        self.records.append(Record(partition, len(self.records), key, value, ()))


def _save(merge: MergeStage, topic: _Topic) -> None:
    asyncio.run(DetectorStateWriter(Settings()).save(merge.saved, topic.send))


def _snapshots(merge: MergeStage) -> dict[Any, Any]:
    return {
        cohort: orjson.loads(orjson.dumps(w.snapshot())) for cohort, w in merge._watches.items()
    }


@pytest.mark.parametrize("restored", [True, False], ids=["restored", "not-restored"])
def test_a_merge_stage_restarted_from_its_saved_state_goes_on_unchanged(restored: bool) -> None:
    """A worker restarted after 7 windows and given its saved state back judges the next
    windows as the one that never stopped: the same latency findings in the first slow
    window, and the same references after; a replayed window already in the saved state is
    not counted twice. Without the state (today's restart) the slow window goes unseen."""
    topic = _Topic()
    stage, merge = MapStage(CONFIG, "events"), MergeStage(CONFIG, "events")
    _minutes(stage, merge, range(8), slow_from=99)  # windows 0-6 close
    _save(merge, topic)
    assert len(topic.records) == 2

    restarted_stage, restarted = MapStage(CONFIG, "events"), MergeStage(CONFIG, "events")
    if restored:
        restarted.saved.offer(newest_saved(topic.records, {0}), restarted._watches)
    # the restart replays minute 6 (closed and saved, its offsets not yet committed)
    went_on = _minutes(stage, merge, range(8, 10), slow_from=8)  # windows 7 and 8
    came_back = _minutes(restarted_stage, restarted, range(6, 10), slow_from=8)  # 6, 7, 8
    assert [j.window.window.end for j in came_back][:2] == [T0 + 420] * 2
    assert not [f for j in came_back[:2] for f in j.findings]

    def latency(judged: list[Judged]) -> list[tuple[Any, ...]]:
        return [
            (f.cohort, f.window_end, f.detector)
            for j in judged
            for f in j.findings
            if f.detector.startswith("latency.")
        ]

    assert latency(went_on), "the check must compare non-empty findings"
    if restored:
        assert latency(came_back) == latency(went_on)
        assert _snapshots(restarted) == _snapshots(merge)
        assert restarted.saved.restored == 2
    else:
        assert latency(came_back) == []


def test_a_saved_state_that_no_longer_fits_starts_afresh_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A cohort's record of another snapshot version, or with one detector's snapshot
    mangled, never stops the merge: the cohort (or that detector) starts afresh, logged."""
    watch = _watch(4)
    body = orjson.loads(zlib.decompress(encode_saved(0, watch)))
    old = {**body, "snapshot": {**body["snapshot"], "version": 0}}
    mangled = orjson.loads(orjson.dumps(body))
    mangled["snapshot"]["detectors"]["latency.p95.v1"]["state"] = "garbage"
    states = DetectorStates()
    restored = {}
    for label, record in [("old", old), ("mangled", mangled)]:
        saved = decode_saved(zlib.compress(orjson.dumps(record)))
        states.offer({saved.cohort: saved}, watched=())
        restored[label] = CohortDetectors.of(DetectorsConfig(), COHORT)
        with caplog.at_level("WARNING", logger="driftnet.detection"):
            states.restore(restored[label])
    assert restored["old"].last_window_end is None
    assert restored["mangled"].last_window_end == 240
    assert restored["mangled"].detectors["latency.p99.v1"].snapshot() == (
        watch.detectors["latency.p99.v1"].snapshot()
    )
    assert restored["mangled"].detectors["latency.p95.v1"].snapshot()["state"]["windows"] == []
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("start afresh: cohort snapshot version 0" in w for w in warnings), warnings
    assert any("starts afresh: latency.p95.v1: cannot restore" in w for w in warnings), warnings
    assert states.restored == 1

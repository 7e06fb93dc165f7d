"""The pooled past of the count-based detectors (rates, scores): what it holds, that it is
judged against, and that it survives a snapshot (a restart keeps the whole reference)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from driftnet.detectors.families.quality import Rate, ScoreMean
from driftnet.detectors.families.snapshot import SnapshotError
from driftnet.detectors.settings import DetectorSettings
from tests.support.detector_streams import STATIONARY, stream

SMALL = DetectorSettings(reference_windows=3, min_reference_windows=2, long_reference_windows=6)
"""Blocks of 3 windows: a closed one and an open one after a dozen windows."""


def _json(snapshot: dict[str, Any]) -> Any:
    return json.loads(json.dumps(snapshot, allow_nan=False))


def test_the_past_holds_the_last_closed_block_and_the_open_one() -> None:
    """Windows leaving the trailing reference are summed into blocks of
    ``long_reference_windows / 2``; the last closed block and the open one are kept."""
    rate = Rate("error_rate", SMALL)
    for hits in range(12):
        rate.keep((hits, 100))
    # windows 0-8 retired: block 0-2 closed, replaced by 3-5, then by 6-8; 9-11 trailing
    assert rate.long_past() == [(6 + 7 + 8, 300)]
    rate.keep((12, 100))
    assert rate.long_past() == [(21, 300), (9, 100)]
    assert rate.remembered() == [(10, 100), (11, 100), (12, 100)]
    assert Rate("error_rate", DetectorSettings(long_reference_windows=0)).long_past() == []


def test_a_rate_is_judged_against_the_past_too() -> None:
    """A trailing reference that happens to be low does not make an ordinary window a finding
    when the pooled past says the rate was always that high."""
    settings = DetectorSettings(
        reference_windows=3, min_reference_windows=2, long_reference_windows=200
    )
    rate, short = (
        Rate("error_rate", settings),
        Rate("error_rate", settings.model_copy(update={"long_reference_windows": 0})),
    )
    for detector in (rate, short):
        for _ in range(100):
            detector.keep((50, 1000))  # 5%
        for _ in range(3):
            detector.keep((0, 1000))  # three windows without an error
    window = stream(1, 1)[0]
    ordinary = (50, 1000)
    assert rate.judge(window, ordinary, rate.long_past() + rate.remembered(), "trailing") == []
    assert short.judge(window, ordinary, short.long_past() + short.remembered(), "trailing")


@pytest.mark.parametrize("make", [lambda: Rate("error_rate", SMALL), lambda: ScoreMean(SMALL)])
def test_the_past_goes_through_a_snapshot(make: Any) -> None:
    """Restored from JSON, a detector has the same past and trailing windows and goes on with
    the same findings (the step included); a snapshot from before the past existed restores
    with none; a mangled past is refused, changing nothing."""
    windows = stream(5, 14)
    step = stream(6, 2, STATIONARY.step(error_rate=0.3, score_shift=0.3), first=14)
    original = make()
    for window in windows:
        original.update(window)
    snapshot = _json(original.snapshot())
    assert snapshot["state"]["past"]["blocks"]
    assert snapshot["state"]["past"]["open"] is not None
    restored = make().restore(snapshot)
    assert restored.long_past() == original.long_past()
    assert _json(restored.snapshot()) == snapshot
    found = [original.update(w).findings for w in step]
    assert any(found)
    assert [restored.update(w).findings for w in step] == found

    older = {**snapshot, "state": {"windows": snapshot["state"]["windows"]}}
    assert make().restore(older).long_past() == []
    mangled: list[dict[str, Any]] = [
        {"blocks": "x", "open_windows": 0},
        {"blocks": [], "open": None, "open_windows": 2},
    ]
    for past in mangled:
        twin = make().restore(snapshot)
        with pytest.raises(SnapshotError):
            twin.restore({**snapshot, "state": {**snapshot["state"], "past": past}})
        assert _json(twin.snapshot()) == snapshot

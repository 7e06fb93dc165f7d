"""Snapshots of a cohort's detectors (what the merge side saves at window close and a
restarted worker restores): every detector goes on as before, the size stays bounded, and an
unreadable snapshot is refused or, detector by detector, started afresh."""

from __future__ import annotations

import json
import zlib
from typing import Any

import pytest

from driftnet.detectors.cohort import CohortDetectors
from driftnet.detectors.config import DetectorsConfig
from driftnet.detectors.families.drift import DriftDetector
from driftnet.detectors.families.snapshot import SnapshotError
from driftnet.detectors.windowing.observation import Observation
from driftnet.detectors.windowing.partials import Partial
from driftnet.detectors.windowing.windows import Window
from tests.support.detector_streams import COHORT, SETTINGS, STATIONARY, stream

SIZE_LIMIT_BYTES = 40_000
"""JSON bytes of a cohort's snapshot with every detector's reference full (10 windows); about
34 KB measured, 17 KB zlib-compressed as the worker sends it."""


def _json(snapshot: dict[str, Any]) -> Any:
    return json.loads(json.dumps(snapshot, allow_nan=False))


def _watch() -> CohortDetectors:
    return CohortDetectors.of(DetectorsConfig(), COHORT)


def test_a_restored_cohort_goes_on_exactly_as_the_uninterrupted_one() -> None:
    """Every detector of a cohort, snapshotted after 12 windows and restored into fresh ones,
    gives the same findings on the next windows (latency, error-rate, cost and traffic steps)
    as the detectors that ran on; none is skipped."""
    before = stream(1, 12)
    after = [
        *stream(2, 2, STATIONARY.step(latency_scale=1.5), first=12),
        *stream(3, 2, STATIONARY.step(error_rate=0.08, cost_scale=2.0), first=14),
        *stream(4, 1, STATIONARY.step(events=0), first=16),
    ]
    original = _watch()
    for window in before:
        original.update(window)
    restored = _watch()
    assert restored.restore(_json(original.snapshot())) == []
    assert restored.last_window_end == before[-1].window.end
    found = [original.update(window) for window in after]
    assert [restored.update(window) for window in after] == found
    detectors = {f.detector for findings in found for f in findings}
    assert {"latency.p95.v1", "quality.error_rate.v1", "volume.drop.v1"} <= detectors


def test_a_cohort_snapshot_is_bounded_by_the_reference() -> None:
    """With every reference full (10 windows) a cohort's snapshot is under 40 KB of JSON, and
    40 windows later it has not grown (within 5%)."""
    watch = _watch()
    windows = stream(5, 50)
    for window in windows[:10]:
        watch.update(window)
    full = len(json.dumps(watch.snapshot()).encode())
    for window in windows[10:]:
        watch.update(window)
    later = json.dumps(watch.snapshot()).encode()
    assert full <= SIZE_LIMIT_BYTES
    assert len(later) <= 1.05 * full
    assert len(zlib.compress(later, 6)) < len(later)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"version": 2}, "cohort snapshot version 2"),
        ({"cohort": ["chat", "production", "r9", "baseline"]}, "not of"),
        ({"detectors": "none"}, "expected an object"),
        ({"last_window_end": "soon"}, "expected an integer"),
    ],
    ids=["version", "another-cohort", "detectors-not-an-object", "bad-window-end"],
)
def test_an_unreadable_cohort_snapshot_raises_and_changes_nothing(
    change: dict[str, Any], message: str
) -> None:
    """A snapshot of another version or cohort, or a malformed one, raises ``SnapshotError``
    (a ``ValueError``); the detectors keep what they had."""
    watch = _watch()
    for window in stream(6, 5):
        watch.update(window)
    kept = _json(watch.snapshot())
    with pytest.raises(SnapshotError, match=message):
        watch.restore({**kept, **change})
    assert _json(watch.snapshot()) == kept


def test_a_detector_unreadable_in_a_cohort_snapshot_starts_afresh() -> None:
    """One detector's snapshot mangled (or missing: a detector added since) leaves that one
    fresh, says so, and restores the others."""
    watch = _watch()
    for window in stream(7, 5):
        watch.update(window)
    snapshot = _json(watch.snapshot())
    snapshot["detectors"]["latency.p95.v1"]["state"] = {"windows": ["garbage"]}
    del snapshot["detectors"]["volume.drop.v1"]
    fresh = _watch()
    skipped = fresh.restore(snapshot)
    assert [reason.split(":")[0] for reason in skipped] == ["volume.drop.v1", "latency.p95.v1"]
    assert "cannot restore 'latency.p95.v1'" in skipped[1]
    sizes = {name: getattr(d, "history_size", None) for name, d in fresh.detectors.items()}
    assert sizes["latency.p95.v1"] == 0
    assert sizes["volume.drop.v1"] == 0
    assert sizes["latency.p99.v1"] == 5


def _window(index: int, finish_reasons: list[str]) -> Partial:
    partial = Partial.empty(COHORT, Window(60 * index, 60 * index + 60), "*", SETTINGS)
    for i, reason in enumerate(finish_reasons):
        partial.add(
            Observation(f"e{index}-{i}", 60.0 * index, COHORT, finish_reason=reason, latency_ms=9.0)
        )
    return partial


def test_drift_codes_keep_their_meaning_after_a_restore() -> None:
    """The drift detector's reference holds categorical values as codes: its vocabulary is in
    the snapshot, so a window whose values come in another order after the restore is coded
    (and judged) as it would have been."""
    before = [_window(i, ["stop"] * 90 + ["length"] * 10) for i in range(4)]
    after = _window(4, ["length"] * 80 + ["stop"] * 20)
    original = DriftDetector()
    for window in before:
        original.update(window)
    restored = DriftDetector().restore(_json(original.snapshot()))
    assert restored.update(after).findings == original.update(after).findings
    assert original.findings, "the check must compare non-empty findings"
    assert _json(restored.snapshot()) == _json(original.snapshot())

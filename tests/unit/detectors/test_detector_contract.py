"""One check suite over every registered detector (river's ``check_estimator`` for ours).

Each detector must: stay quiet on a seeded stationary stream (false-positive rate <= 1% of
1,000 windows), fire within 2 windows of the step change it exists to catch, behave the same
after ``reset`` as a fresh ``clone``, survive a pickle round trip mid-stream, and go on exactly
as before from a JSON snapshot restored into a fresh twin (a worker restart), refusing garbage.
"""

from __future__ import annotations

import functools
import json
import pickle
from typing import Any, Final

import pytest

from driftnet.detectors.families.base import Detector
from driftnet.detectors.families.registry import REGISTRY, create
from driftnet.detectors.families.snapshot import SnapshotError
from driftnet.detectors.finding import Finding
from driftnet.detectors.settings import DetectorSettings
from driftnet.detectors.windowing.partials import Partial
from tests.support.detector_streams import STATIONARY, Traffic, stream

NAMES: Final = sorted(REGISTRY)
WARM_UP: Final = 12
"""Stationary windows before a step: more than the reference's 10."""

STEPS: Final[dict[str, Traffic]] = {
    "volume.drop.v1": STATIONARY.step(events=0),
    "volume.spike.v1": STATIONARY.step(events=1000),
    "latency.p50.v1": STATIONARY.step(latency_scale=1.5),
    "latency.p95.v1": STATIONARY.step(latency_scale=1.5),
    "latency.p99.v1": STATIONARY.step(latency_scale=1.5),
    "latency.ttft_p95.v1": STATIONARY.step(ttft_scale=1.5),
    "latency.by_input_size.v1": STATIONARY.step(latency_scale_above_500_tokens=1.5),
    "cost.per_request.v1": STATIONARY.step(cost_scale=2.0),
    "cost.input_tokens.v1": STATIONARY.step(input_scale=2.0),
    "cost.output_tokens.v1": STATIONARY.step(output_scale=2.0),
    "cost.spend_per_hour.v1": STATIONARY.step(cost_scale=2.0),
    "quality.error_rate.v1": STATIONARY.step(error_rate=0.09),
    "quality.refusal_rate.v1": STATIONARY.step(refusal_rate=0.08),
    "quality.empty_rate.v1": STATIONARY.step(empty_rate=0.08),
    "quality.truncated_rate.v1": STATIONARY.step(truncated_rate=0.09),
    "quality.invalid_json_rate.v1": STATIONARY.step(invalid_json_rate=0.08),
    "quality.negative_feedback_rate.v1": STATIONARY.step(negative_feedback_rate=0.30),
    "quality.uncaptured_rate.v1": STATIONARY.step(uncaptured_rate=0.05),
    "quality.score_breach_rate.v1": STATIONARY.step(breach_rate=0.13),
    "quality.score_mean.v1": STATIONARY.step(score_shift=0.1),
    "drift.features.v1": STATIONARY.step(input_scale=2.0),
}
"""The step each detector must catch: latency x1.5, an event rate 7 points up, cost x2, input
length x2, traffic to zero or x5. (They were +30% latency and 5 points when every test ran at
alpha 1e-3: at the alphas, the 10% latency tolerance and the pooled past that keep a healthy
day quiet (``test_healthy_day.py``), those smaller steps are found within 2 windows of about
200 events against this suite's 12-window warm-up only most of the time; the issue's own
should-catch sizes, on a realistic reference, are ``test_should_catch.py``'s.) Rates of rarer
denominators need bigger steps to be provable within 2 windows: negative feedback 20 points up
(about 100 rated events a window), score breaches 8 points."""


@pytest.fixture(scope="module")
def stationary() -> list[Partial]:
    """1,000 windows of one stationary cohort (about 200 events each)."""
    return stream(seed=20261125, windows=1000)


def test_every_registered_detector_has_a_step() -> None:
    """The suite knows the step change of every registered detector (a new one must add it)."""
    assert sorted(STEPS) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_name_is_the_registered_one(name: str) -> None:
    """A detector reports the versioned name it is registered under."""
    assert create(name).name == name
    assert name.rsplit(".", 1)[1].startswith("v")


@pytest.mark.parametrize("name", NAMES)
def test_quiet_on_a_stationary_stream(name: str, stationary: list[Partial]) -> None:
    """False-positive rate <= 1% over 1,000 seeded stationary windows."""
    detector = create(name)
    fired = sum(detector.update(window).drift_detected for window in stationary)
    assert fired <= 10, f"{name} fired on {fired} of 1,000 stationary windows"


@functools.cache
def _warm_up(seed: int) -> tuple[Partial, ...]:
    return tuple(stream(seed, WARM_UP))


@functools.cache
def _windows(seed: int, traffic: Traffic) -> tuple[Partial, ...]:
    """WARM_UP stationary windows, then 2 windows of ``traffic`` (cached: shared by detectors)."""
    return (*_warm_up(seed), *stream(seed + 10_000, 2, traffic, first=WARM_UP))


def _firing_windows(name: str) -> list[Partial]:
    """The first seeded stream (warm-up + step) on which a fresh detector fires."""
    for seed in range(20):
        if _windows_to_fire(create(name), seed, STEPS[name]) is not None:
            return list(_windows(seed, STEPS[name]))
    raise AssertionError(f"{name} never fires")


def _windows_to_fire(detector: Detector, seed: int, step: Traffic) -> int | None:
    windows = _windows(seed, step)
    for window in windows[:WARM_UP]:
        detector.update(window)
    for index, window in enumerate(windows[WARM_UP:]):
        if detector.update(window).drift_detected:
            return index + 1
    return None


@pytest.mark.parametrize("name", NAMES)
def test_fires_within_two_windows_of_a_step(name: str) -> None:
    """Over 20 seeded streams, the step change the detector exists for is found in the first or
    second window of the change in at least 19 (windows of about 200 events)."""
    missed = [
        seed for seed in range(20) if _windows_to_fire(create(name), seed, STEPS[name]) is None
    ]
    assert len(missed) <= 1, f"{name} missed the step within 2 windows for seeds {missed}"


def _findings(detector: Detector, windows: list[Partial]) -> list[tuple[Finding, ...]]:
    return [detector.update(window).findings for window in windows]


@pytest.mark.parametrize("name", NAMES)
def test_reset_equals_a_fresh_clone(name: str) -> None:
    """After reset a detector behaves exactly as a fresh clone (nothing learned survives)."""
    windows = _firing_windows(name)
    used = create(name)
    _findings(used, stream(7, WARM_UP, STEPS[name]))
    clone = used.clone()
    used.reset()
    found = _findings(used, windows)
    assert found == _findings(clone, windows)
    assert any(found), "the check must compare non-empty findings"


@pytest.mark.parametrize("name", NAMES)
def test_pickle_round_trip_mid_stream(name: str) -> None:
    """A detector pickled mid-stream goes on exactly as the original (worker restart, state
    stores)."""
    windows = _firing_windows(name)
    original = create(name)
    _findings(original, windows[:WARM_UP])
    restored = pickle.loads(pickle.dumps(original))
    found = _findings(original, windows[WARM_UP:])
    assert _findings(restored, windows[WARM_UP:]) == found
    assert any(found), "the check must compare non-empty findings"


@pytest.mark.parametrize("name", NAMES)
def test_findings_name_cohort_window_and_evidence(name: str) -> None:
    """A finding names its detector, cohort and window, and is JSON-able with a stable id."""
    detector = create(name)
    windows = _firing_windows(name)
    found = [f for window in windows for f in detector.update(window).findings]
    assert found
    finding = found[0]
    assert finding.detector == name
    assert finding.cohort == windows[0].cohort
    assert finding.window_end - finding.window_start == 60
    assert finding.message
    again = Finding.model_validate_json(finding.model_dump_json())
    assert again == finding
    assert again.finding_id == finding.finding_id
    if finding.example_kind is not None and finding.example_kind != "failed":
        assert finding.example_event_ids


def _through_json(snapshot: dict[str, Any]) -> Any:
    """``snapshot`` as a restarted worker reads it back: strict JSON text (no NaN), parsed."""
    return json.loads(json.dumps(snapshot, allow_nan=False))


@pytest.mark.parametrize("name", NAMES)
def test_snapshot_restored_into_a_fresh_twin_goes_on_identically(name: str) -> None:
    """A detector snapshotted mid-stream (as JSON) and restored into a fresh instance gives
    exactly the findings of the uninterrupted one on the next windows, the step included."""
    windows = _firing_windows(name)
    original = create(name)
    _findings(original, windows[:WARM_UP])
    restored = create(name).restore(_through_json(original.snapshot()))
    found = _findings(original, windows[WARM_UP:])
    assert _findings(restored, windows[WARM_UP:]) == found
    assert any(found), "the check must compare non-empty findings"
    assert _through_json(restored.snapshot()) == _through_json(original.snapshot())


@pytest.mark.parametrize("name", NAMES)
def test_restore_replaces_what_a_used_detector_had_learned(name: str) -> None:
    """Restoring into a detector that has seen other windows replaces its reference (nothing
    of its own survives), and the snapshot of the restored one equals the original's."""
    windows = _firing_windows(name)
    original = create(name)
    _findings(original, windows[:WARM_UP])
    used = create(name)
    _findings(used, stream(3, WARM_UP, STEPS[name]))
    used.restore(_through_json(original.snapshot()))
    assert _through_json(used.snapshot()) == _through_json(original.snapshot())
    assert _findings(used, windows[WARM_UP:]) == _findings(original, windows[WARM_UP:])


def _garbage(name: str, snapshot: dict[str, Any]) -> dict[str, Any]:
    """Snapshots no detector named ``name`` can read: not objects, another detector's, another
    version, no state, and its own with the state's windows mangled."""
    other = next(n for n in NAMES if n != name)
    state = snapshot["state"]
    mangled = [
        {**state, "windows": "not a list"},
        {**state, "windows": [*state["windows"][:-1], {"bad": "window"}]},
        {**state, "windows": [*state["windows"][:-1], "%%%not base64%%%"]},
        {**state, "windows": [[None, "AAA="], *state["windows"]]},  # 2 bytes: no float32
        {k: v for k, v in state.items() if k != "windows"},
        None,
    ]
    return {
        "none": None,
        "list": [1, 2, 3],
        "text": "garbage",
        "empty": {},
        "another detector": {**snapshot, "detector": other},
        "future version": {**snapshot, "version": 99},
        "no state": {k: v for k, v in snapshot.items() if k != "state"},
        **{f"mangled {i}": {**snapshot, "state": m} for i, m in enumerate(mangled)},
    }


@pytest.mark.parametrize("name", NAMES)
def test_restoring_garbage_raises_a_value_error_and_changes_nothing(name: str) -> None:
    """An unreadable snapshot raises ``SnapshotError`` (a ``ValueError``) naming the detector,
    and the detector goes on as if it had not been asked."""
    windows = _firing_windows(name)
    original = create(name)
    _findings(original, windows[:WARM_UP])
    twin = create(name)
    _findings(twin, windows[:WARM_UP])
    snapshot = _through_json(original.snapshot())
    for label, garbage in _garbage(name, snapshot).items():
        with pytest.raises(SnapshotError) as raised:
            original.restore(garbage)
        assert isinstance(raised.value, ValueError)
        assert str(raised.value).startswith(f"cannot restore {name!r}: "), label
        assert _through_json(original.snapshot()) == snapshot, f"{label} changed the detector"
    assert _findings(original, windows[WARM_UP:]) == _findings(twin, windows[WARM_UP:])


@functools.cache
def _long_stream() -> tuple[Partial, ...]:
    return tuple(stream(11, 90))


@pytest.mark.parametrize("name", NAMES)
def test_a_snapshot_holds_the_reference_not_every_window_seen(name: str) -> None:
    """A snapshot is bounded by the reference (``reference_windows``, and the pooled blocks of
    ``long_reference_windows`` of the detectors that keep them): after 3 x that many windows it
    is no larger (within 10%) than once the reference first filled."""
    settings = DetectorSettings(long_reference_windows=20)
    detector = create(name, settings)
    windows = _long_stream()
    reference = settings.reference_windows + settings.long_reference_windows
    _findings(detector, list(windows[:reference]))
    full = len(json.dumps(detector.snapshot()))
    _findings(detector, list(windows[reference:]))
    assert len(json.dumps(detector.snapshot())) <= 1.1 * full

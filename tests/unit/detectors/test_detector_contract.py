"""One check suite over every registered detector (river's ``check_estimator`` for ours).

Each detector must: stay quiet on a seeded stationary stream (false-positive rate <= 1% of
1,000 windows), fire within 2 windows of the step change it exists to catch, behave the same
after ``reset`` as a fresh ``clone``, and survive a pickle round trip mid-stream.
"""

from __future__ import annotations

import functools
import pickle
from typing import Final

import pytest

from driftnet.detectors.families.base import Detector
from driftnet.detectors.families.registry import REGISTRY, create
from driftnet.detectors.finding import Finding
from driftnet.detectors.windowing.partials import Partial
from tests.support.detector_streams import STATIONARY, Traffic, stream

NAMES: Final = sorted(REGISTRY)
WARM_UP: Final = 12
"""Stationary windows before a step: more than the reference's 10."""

STEPS: Final[dict[str, Traffic]] = {
    "volume.drop.v1": STATIONARY.step(events=0),
    "volume.spike.v1": STATIONARY.step(events=1000),
    "latency.p50.v1": STATIONARY.step(latency_scale=1.3),
    "latency.p95.v1": STATIONARY.step(latency_scale=1.3),
    "latency.p99.v1": STATIONARY.step(latency_scale=1.3),
    "latency.ttft_p95.v1": STATIONARY.step(ttft_scale=1.3),
    "latency.by_input_size.v1": STATIONARY.step(latency_scale_above_500_tokens=1.3),
    "cost.per_request.v1": STATIONARY.step(cost_scale=2.0),
    "cost.input_tokens.v1": STATIONARY.step(input_scale=2.0),
    "cost.output_tokens.v1": STATIONARY.step(output_scale=2.0),
    "cost.spend_per_hour.v1": STATIONARY.step(cost_scale=2.0),
    "quality.error_rate.v1": STATIONARY.step(error_rate=0.07),
    "quality.refusal_rate.v1": STATIONARY.step(refusal_rate=0.06),
    "quality.empty_rate.v1": STATIONARY.step(empty_rate=0.06),
    "quality.truncated_rate.v1": STATIONARY.step(truncated_rate=0.07),
    "quality.invalid_json_rate.v1": STATIONARY.step(invalid_json_rate=0.06),
    "quality.negative_feedback_rate.v1": STATIONARY.step(negative_feedback_rate=0.30),
    "quality.uncaptured_rate.v1": STATIONARY.step(uncaptured_rate=0.05),
    "quality.score_breach_rate.v1": STATIONARY.step(breach_rate=0.13),
    "quality.score_mean.v1": STATIONARY.step(score_shift=0.1),
    "drift.features.v1": STATIONARY.step(input_scale=2.0),
}
"""The step each detector must catch: +30% latency, +5 points of an event rate, cost x2, input
length x2, traffic to zero or x5. Rates of rarer denominators need bigger steps to be provable
at alpha 1e-3 within 2 windows: negative feedback +20 points (about 100 rated events a window),
score breaches +8 points."""


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

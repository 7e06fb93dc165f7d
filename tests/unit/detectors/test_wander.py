"""Latency that wanders with a provider's load is not a regression, a real slowdown still is
(issue 30, item 3): the latency tests and the drift tier discount ``latency.shift_tolerance``
(10%) of a change of level."""

from __future__ import annotations

import pytest

from driftnet.detectors.families.drift import DriftDetector
from driftnet.detectors.families.latency import LatencyQuantile
from driftnet.detectors.settings import DetectorSettings, LatencySettings
from tests.support.detector_streams import STATIONARY, stream

BEFORE = 12


def _metrics(detector: DriftDetector | LatencyQuantile, scale: float, seed: int) -> set[str]:
    """Metrics the detector finds in the 3 windows after 12 ordinary ones, latency x scale."""
    for window in stream(seed, BEFORE):
        detector.update(window)
    changed = STATIONARY.step(latency_scale=scale, ttft_scale=scale)
    return {
        f.metric
        for window in stream(seed + 1, 3, changed, first=BEFORE)
        for f in detector.update(window).findings
    }


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_ten_percent_of_wander_is_no_drift_and_doubled_latency_is(seed: int) -> None:
    """Latency and TTFT 10% up (about 400 events' samples would prove it) is no drift finding;
    doubled, latency is one (it triggers evidently's check too)."""
    assert not {"drift[latency_ms]", "drift[ttft_ms]"} & _metrics(DriftDetector(), 1.1, seed)
    detector = DriftDetector()
    assert "drift[latency_ms]" in _metrics(detector, 2.0, seed)
    assert detector.full_check is not None or any(
        f.metric == "drift[latency_ms]" for f in detector.findings
    )


def test_the_tolerance_is_what_separates_wander_from_a_regression() -> None:
    """A 12% rise of latency, which the samples of 3 windows prove (the p50 detector with no
    tolerance and a 5% floor finds it on at least 5 of 8 seeded streams), is no finding at the
    default 10% tolerance (none of the 8)."""
    strict = DetectorSettings(latency=LatencySettings(shift_tolerance=0.0, relative_increase=0.05))
    tolerant = DetectorSettings(latency=LatencySettings(relative_increase=0.05))
    seeds = range(1, 9)
    assert sum(bool(_metrics(LatencyQuantile("p50", strict), 1.12, s)) for s in seeds) >= 5
    assert not any(_metrics(LatencyQuantile("p50", tolerant), 1.12, s) for s in seeds)

"""A healthy day of one cohort through every detector (issue 30, item 3): how many findings
does traffic with nothing wrong raise per day?

The day comes from :mod:`tests.support.healthy_day` (its own distributions, not the project's
simulator): 1,440 windows of 60 s at 2-8 requests per second, stationary or with latency and
TTFT wandering +-10-15% over tens of minutes. Any finding on it is a false one.
"""

from __future__ import annotations

from collections import Counter
from typing import Final

import numpy as np
import pytest

from driftnet.detectors.finding import Finding
from tests.support.healthy_day import DAY_WINDOWS, Day, findings, wander_factor, windows

MAX_FALSE_PER_DAY: Final = 1
"""The bound: false findings (any severity) per cohort per healthy day."""


def _tally(found: list[Finding]) -> str:
    counts = Counter((f.metric, f.severity) for f in found)
    return ", ".join(
        f"{metric} ({severity}) x{n}" for (metric, severity), n in sorted(counts.items())
    )


def test_the_simulated_day_is_what_it_says() -> None:
    """Two hours of the day: 2-8 requests a second, ~1% errors and refusals, ~2% truncated,
    a mean score of 0.85; the wander stays within +-10-15% and moves over tens of minutes."""
    parts = list(windows(Day(5, windows=120, first=14 * 60)))
    count = sum(p.count for p in parts)
    assert 2 * 60 * 120 <= count <= 8 * 60 * 120
    assert 0.007 < sum(p.errors for p in parts) / count < 0.013
    assert 0.007 < sum(p.refusals for p in parts) / count < 0.013
    assert 0.015 < sum(p.truncations for p in parts) / count < 0.025
    scores = [p.scores["faithfulness"] for p in parts]
    assert 0.84 < sum(s.total for s in scores) / sum(s.n for s in scores) < 0.86
    factor = wander_factor(np.random.default_rng(5), 24 * 3600)
    assert factor.min() > 0.80
    assert factor.max() < 1.25
    assert np.percentile(np.abs(np.log(factor)), 90) > 0.09
    minute = factor[::6]
    assert np.abs(np.diff(np.log(minute))).max() < 0.03  # smooth: at most 3% a minute


@pytest.mark.parametrize("wander", [False, True], ids=["stationary", "wandering"])
def test_a_healthy_day_raises_at_most_one_finding(wander: bool) -> None:
    """At most one false finding per cohort over a seeded healthy day of 1,440 windows."""
    found = findings(Day(2, wander=wander, windows=DAY_WINDOWS))
    print(f"{'wandering' if wander else 'stationary'}: {len(found)} findings: {_tally(found)}")
    assert len(found) <= MAX_FALSE_PER_DAY, _tally(found)

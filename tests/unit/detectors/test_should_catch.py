"""Regressions of a should-catch size (issue 30, item 3), injected on top of the healthy day of
:mod:`tests.support.healthy_day`: each must be found within 2 windows of its onset, by the
detectors that watch it, with the default settings that keep the healthy day quiet.

The onsets are at four times of day, the quietest (04:30, about 2 requests a second) among
them, on a stationary and on a wandering stream, after two hours and ten minutes of healthy
traffic (the whole reference). Each case is run on a fork of the same warmed-up detectors.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from typing import Final

import pytest

from driftnet.detectors.cohort import CohortDetectors
from driftnet.detectors.config import DetectorsConfig
from tests.support.healthy_day import COHORT, Change, Traffic

WARM_UP: Final = 130
"""Healthy windows before the onset: the trailing reference and the pooled past."""
ONSETS: Final = (8 * 60, 10 * 60, 16 * 60, 21 * 60)
"""Minutes after midnight (about 2, 4.6, 8 and 6.2 requests a second)."""
SEEDS: Final = (11, 12)


def _latency(metric: str) -> bool:
    return metric.startswith(("latency_", "ttft_"))


CASES: Final[dict[str, tuple[Change, Callable[[str], bool]]]] = {
    "latency x1.5": (Change(latency=1.5), _latency),
    "errors 1% -> 6%": (Change(error_rate=0.06), lambda m: m == "error_rate"),
    "cost +40%": (Change(cost=1.4), lambda m: m in ("cost_usd_per_request", "drift[cost_usd]")),
    "refusals 1% -> 8%": (Change(refusal_rate=0.08), lambda m: m == "refusal_rate"),
    "output length halved": (
        Change(output=0.5),
        lambda m: m in ("drift[output_tokens]", "output_tokens_per_request"),
    ),
    "longer inputs on new topics": (
        Change(new_topic_share=0.3, input=3.0),
        lambda m: m in ("drift[topic]", "drift[input_tokens]", "input_tokens_per_request"),
    ),
    "traffic to 10%": (Change(traffic=0.1), lambda m: m == "events"),
    "mean score 0.85 -> 0.70": (
        Change(score_mean=0.70),
        lambda m: m == "score_mean[faithfulness]",
    ),
}
"""Each case and the metrics whose finding catches it."""


@functools.cache
def _warmed(seed: int, wander: bool, onset: int) -> tuple[Traffic, CohortDetectors]:
    traffic = Traffic(seed, wander, onset + 2)
    watch = CohortDetectors.of(DetectorsConfig(), COHORT)
    for index in range(onset - WARM_UP, onset):
        watch.update(traffic.window(index))
    return traffic, watch


def windows_to_catch(case: str, seed: int, wander: bool, onset: int) -> int | None:
    """1 or 2: the window of the change whose findings name it first; None: not in 2."""
    change, catches = CASES[case]
    traffic, watch = copy.deepcopy(_warmed(seed, wander, onset))
    for after in (1, 2):
        found = watch.update(traffic.window(onset + after - 1, change))
        if any(catches(f.metric) for f in found):
            return after
    return None


@pytest.mark.parametrize("wander", [False, True], ids=["stationary", "wandering"])
@pytest.mark.parametrize("case", list(CASES))
def test_caught_within_two_windows(case: str, wander: bool) -> None:
    """Caught in the first or second window of its onset, at every onset and seed."""
    delays = {
        (seed, onset): windows_to_catch(case, seed, wander, onset)
        for seed in SEEDS
        for onset in ONSETS
    }
    print(f"{case} ({'wandering' if wander else 'stationary'}): windows to catch {delays}")
    missed = [key for key, delay in delays.items() if delay is None]
    assert not missed, f"{case}: not caught within 2 windows for (seed, onset) {missed}"

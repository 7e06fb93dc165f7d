"""Regression packs: a failing metric's worst canary requests, each matched with a baseline one."""

from __future__ import annotations

import bisect
import json
from collections.abc import Iterable
from dataclasses import dataclass

from driftnet.detectors.canary.config import MetricSpec
from driftnet.detectors.canary.verdict import MetricVerdict
from driftnet.detectors.windowing.partials import Partial
from driftnet.detectors.windowing.samples import Example, typical_kind


@dataclass(frozen=True, slots=True)
class RegressionPack:
    """What to harvest for one failing metric of a verdict: the canary's worst requests of the
    window and, for each, baseline requests of the same input-size bucket."""

    metric: MetricVerdict
    canary: tuple[Example, ...]
    baseline: tuple[Example, ...]


def regression_pack(
    metric: MetricVerdict, spec: MetricSpec | None, canary: Partial, baseline: Partial | None
) -> RegressionPack:
    """The pack of one failing metric (``spec``: the metric's, None when no longer judged)."""
    if spec is None or spec.example_kind is None or baseline is None:
        return RegressionPack(metric, (), ())
    worst = tuple(canary.examples.of(spec.example_kind))
    return RegressionPack(metric, worst, matched_examples(baseline, worst))


def matched_examples(baseline: Partial, canary_examples: Iterable[Example]) -> tuple[Example, ...]:
    """For each canary example, a baseline example of the same input-size bucket (the nearest
    bucket with one when that one is empty), each baseline request used once."""
    buckets = len(baseline.settings.input_size_buckets) + 1
    pools = {b: list(baseline.examples.of(typical_kind(b))) for b in range(buckets)}
    chosen: list[Example] = []
    for example in canary_examples:
        bucket = _input_bucket(example, baseline.settings.input_size_buckets)
        order = sorted(range(buckets), key=lambda b: (abs(b - bucket), b))
        for candidate in order:
            if pools[candidate]:
                chosen.append(pools[candidate].pop(0))
                break
    return tuple(chosen)


def _input_bucket(example: Example, edges: tuple[int, ...]) -> int:
    try:
        usage = json.loads(example.raw).get("usage") or {}
        tokens = int(usage["input_tokens"])
    except (TypeError, ValueError, AttributeError, KeyError):
        return 0
    return bisect.bisect_right(edges, tokens)

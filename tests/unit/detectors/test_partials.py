"""Window partials: what they count, their JSON form, their merge, and their bounded samples."""

from __future__ import annotations

import json
import pickle

import pytest

from driftnet.detectors.settings import AggregateSettings, PriceEntry, PriceTable
from driftnet.detectors.windowing.observation import Observation
from driftnet.detectors.windowing.partials import Partial
from driftnet.detectors.windowing.samples import Reservoir, WorstExamples
from driftnet.detectors.windowing.sketch import Sketch
from driftnet.detectors.windowing.windows import Window
from tests.support.detector_streams import COHORT, stream

W = Window(0, 60)
PRICES = PriceTable(
    version="2026-11-01", models={"m": PriceEntry(input_per_mtok=2.0, output_per_mtok=8.0)}
)


def test_counts_flags_sums_and_scores() -> None:
    """Every outcome flag, token sum, score and breach is counted once per observation."""
    p = Partial.empty(COHORT, W, "p0")
    p.add(
        Observation(
            "a",
            1.0,
            COHORT,
            is_error=True,
            truncated=True,
            input_tokens=10,
            output_tokens=5,
            cost_usd=0.5,
            scores={"f": 0.2},
            score_breaches=("f",),
            feedback_rating=-1.0,
            negative_feedback=True,
        )
    )
    p.add(Observation("b", 2.0, COHORT, refusal=True, scores={"f": 0.8}, feedback_rating=1.0))
    assert (p.count, p.errors, p.truncations, p.refusals, p.empties) == (2, 1, 1, 1, 0)
    assert (p.rated, p.negative_feedback) == (2, 1)
    assert (p.input_tokens_sum, p.output_tokens_sum, p.cost_sum) == (10, 5, 0.5)
    assert (p.scores["f"].n, p.scores["f"].breaches, p.scores["f"].mean) == (2, 1, 0.5)
    assert p.unpriced == 1


def test_missing_cost_is_priced_from_the_table_and_its_version_kept() -> None:
    """An event without cost_usd is priced per million tokens; the table version is recorded."""
    p = Partial.empty(COHORT, W, "p0")
    p.add(Observation("a", 1.0, COHORT, model="m", input_tokens=1000, output_tokens=500), PRICES)
    p.add(Observation("b", 1.0, COHORT, model="unknown", input_tokens=1), PRICES)
    assert p.cost_sum == pytest.approx((1000 * 2.0 + 500 * 8.0) / 1e6)
    assert (p.priced, p.unpriced, p.price_table_version) == (1, 1, "2026-11-01")


def test_json_round_trip_is_exact() -> None:
    """A partial survives JSON (the Kafka message value) unchanged, samples and examples included."""
    (p,) = stream(1, 1)
    text = json.dumps(p.to_dict())
    assert Partial.from_dict(json.loads(text)).to_dict() == p.to_dict()


def test_unknown_format_is_refused() -> None:
    """A partial format this code does not know is an error, not a guess."""
    (p,) = stream(1, 1)
    with pytest.raises(ValueError, match="format"):
        Partial.from_dict({**p.to_dict(), "format": 99})


def test_merge_adds_counts_and_sketches_whatever_the_order() -> None:
    """Merging partials sums counters and sketches; the order they arrive in does not matter."""
    a, b, c = (stream(seed, 1)[0] for seed in (1, 2, 3))
    parts = [Partial.from_dict({**p.to_dict(), "source": f"p{i}"}) for i, p in enumerate((a, b, c))]
    one = Partial.merge(parts)
    other = Partial.merge(list(reversed(parts)))
    assert one.to_dict() == other.to_dict()
    assert one.count == a.count + b.count + c.count
    assert one.errors == a.errors + b.errors + c.errors
    assert one.latency.count == sum(p.latency.count for p in (a, b, c))
    assert len(one.reservoir.rows) == one.settings.reservoir_size
    assert one.reservoir.seen == one.count


def test_merge_refuses_different_windows() -> None:
    """Partials of different cohorts or windows never merge."""
    with pytest.raises(ValueError, match="cannot merge"):
        Partial.merge(
            [Partial.empty(COHORT, W, "p0"), Partial.empty(COHORT, Window(60, 120), "p1")]
        )


def test_merged_quantiles_match_the_whole_within_the_sketch_accuracy() -> None:
    """p95 of merged sketches is within the relative accuracy of the p95 of all values."""
    whole, halves = Sketch(0.02), [Sketch(0.02), Sketch(0.02)]
    for i in range(1, 2001):
        whole.add(float(i))
        halves[i % 2].add(float(i))
    halves[0].merge(halves[1])
    assert halves[0].quantile(0.95) == whole.quantile(0.95)
    assert halves[0].quantile(0.95) == pytest.approx(1900, rel=0.02)


def test_reservoir_is_bounded_deterministic_and_uniform() -> None:
    """Same input order, same sample; never above capacity; every part of the stream is sampled."""
    first, second = Reservoir(50, "s"), Reservoir(50, "s")
    for i in range(10_000):
        first.add(((float(i),), ()))
        second.add(((float(i),), ()))
    assert first.rows == second.rows
    assert len(first.rows) == 50
    values = [row[0][0] for row in first.rows if row[0][0] is not None]
    assert 2_000 < sum(values) / len(values) < 8_000


def test_reservoir_merge_weights_parts_by_what_they_saw() -> None:
    """A part that saw 9x more events contributes about 9x more rows to the merged sample."""
    big, small = Reservoir(100, "big"), Reservoir(100, "small")
    for _i in range(9_000):
        big.add(((1.0,), ()))
    for _i in range(1_000):
        small.add(((0.0,), ()))
    merged = Reservoir.merged([big, small], 100, "m")
    ones = sum(row[0][0] == 1.0 for row in merged.rows)
    assert merged.seen == 10_000
    assert 80 <= ones <= 98


def test_reservoir_pickles_with_its_generator_state() -> None:
    """A pickled reservoir goes on sampling exactly as the original."""
    original = Reservoir(10, "s")
    for i in range(100):
        original.add(((float(i),), ()))
    copy = pickle.loads(pickle.dumps(original))
    for i in range(100, 200):
        original.add(((float(i),), ()))
        copy.add(((float(i),), ()))
    assert copy.rows == original.rows


def test_worst_examples_are_bounded_ranked_and_full() -> None:
    """At most k per kind, worst first, with the full event JSON kept."""
    examples = WorstExamples(3)
    for i in range(10):
        examples.offer("slowest", float(i), f"e{i}", f'{{"event_id": "e{i}"}}'.encode())
    kept = examples.of("slowest")
    assert [e.event_id for e in kept] == ["e9", "e8", "e7"]
    assert kept[0].raw == '{"event_id": "e9"}'
    assert examples.of("failed") == []


def test_partial_keeps_the_slowest_costliest_and_failed_events() -> None:
    """The worst examples of a window travel in its partial, so evidence needs no lookup."""
    settings = AggregateSettings(top_k=2)
    p = Partial.empty(COHORT, W, "p0", settings)
    for i, ms in enumerate([100.0, 900.0, 300.0, 800.0]):
        p.add(Observation(f"e{i}", 1.0, COHORT, latency_ms=ms, cost_usd=ms / 1e4, raw=b"{}"))
    p.add(Observation("bad", 1.0, COHORT, is_error=True, raw=b'{"status": "error"}'))
    assert p.example_ids("slowest") == ("e1", "e3")
    assert p.example_ids("costliest") == ("e1", "e3")
    assert p.example_ids("failed") == ("bad",)
    assert p.examples.of("failed")[0].raw == '{"status": "error"}'


def test_merged_examples_keep_the_worst_across_sources() -> None:
    """Merging keeps the k worst over all sources, each event once."""
    settings = AggregateSettings(top_k=2)
    parts = []
    for source, values in (("p0", [1.0, 5.0]), ("p1", [3.0, 4.0])):
        p = Partial.empty(COHORT, W, source, settings)
        for ms in values:
            p.add(Observation(f"{source}-{ms:g}", 1.0, COHORT, latency_ms=ms))
        parts.append(p)
    assert Partial.merge(parts).example_ids("slowest") == ("p0-5", "p1-4")


def test_a_sketch_of_many_values_equals_one_built_value_by_value() -> None:
    """Sketch.of (vectorised) puts every value in the bin ddsketch's own add would, zeros
    apart; values that are not finite are left out."""
    import numpy as np

    values = np.random.default_rng(5).lognormal(6, 1.5, 5_000)
    values[:25] = 0.0
    one_by_one = Sketch(0.02)
    for value in values:
        one_by_one.add(float(value))
    assert Sketch.of(values, 0.02).to_dict() == one_by_one.to_dict()
    assert Sketch.of([1.0, float("inf"), float("nan")]).count == 1

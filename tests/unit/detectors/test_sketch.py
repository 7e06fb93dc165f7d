"""driftnet.detectors.windowing.sketch.Sketch answers exactly what the ddsketch package's own DDSketch does."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
from ddsketch import LogarithmicMapping
from ddsketch.ddsketch import BaseDDSketch
from ddsketch.store import DenseStore

from driftnet.detectors.windowing.sketch import Sketch

QUANTILES = [i / 200 for i in range(201)] + [0.001, 0.999, 0.123456]


def _reference(accuracy: float) -> BaseDDSketch:
    """The sketch driftnet used to build: ddsketch's, with dense stores."""
    return BaseDDSketch(
        mapping=LogarithmicMapping(accuracy),
        store=DenseStore(chunk_size=16),
        negative_store=DenseStore(chunk_size=16),
        zero_count=0.0,
    )


def _values(seed: int, n: int) -> list[float]:
    rng = np.random.default_rng(seed)
    values = [float(v) for v in rng.lognormal(6, 2.0, n)]
    values[: n // 20] = [0.0] * (n // 20)
    values[n // 20 : n // 10] = [float(v) for v in rng.uniform(0, 1e-3, n // 20)]
    values.append(5e-324)  # the smallest positive float: below min_possible, a zero
    return values


def _reference_dict(reference: BaseDDSketch, accuracy: float) -> dict[str, object]:
    store = reference._store
    return {
        "relative_accuracy": accuracy,
        "zeros": round(float(reference.count)) - round(store.count),
        "bins": [[store.offset + i, c] for i, c in enumerate(store.bins) if c],
    }


@pytest.mark.parametrize("accuracy", [0.02, 0.01, 0.05])
def test_keys_quantiles_and_json_are_ddsketchs(accuracy: float) -> None:
    """Value by value, the same bins, counts and quantiles as ddsketch's DDSketch."""
    values = _values(3, 2_000)
    mine, reference = Sketch(accuracy), _reference(accuracy)
    for value in values:
        mine.add(value)
        reference.add(max(value, 0.0))
    assert mine.count == round(reference.count)
    assert mine.to_dict() == _reference_dict(reference, accuracy)
    for q in QUANTILES:
        expected = reference.get_quantile_value(q)
        assert mine.quantile(q) == (None if expected is None else float(expected))


def test_merge_equals_one_sketch_of_everything() -> None:
    """Merged sketches (a JSON round trip on the way) hold what one sketch of all the values
    would, as ddsketch's merge does."""
    values = _values(7, 3_000)
    parts = [Sketch(0.02) for _ in range(3)]
    reference_parts = [_reference(0.02) for _ in range(3)]
    for i, value in enumerate(values):
        parts[i % 3].add(value)
        reference_parts[i % 3].add(value)
    merged, reference = Sketch(0.02), _reference(0.02)
    for part, reference_part in zip(parts, reference_parts, strict=True):
        merged.merge(Sketch.from_dict(part.to_dict()))
        reference.merge(reference_part)
    assert merged.to_dict() == _reference_dict(reference, 0.02)
    for q in QUANTILES:
        expected = reference.get_quantile_value(q)
        assert expected is not None
        assert merged.quantile(q) == float(expected)


def test_nan_counts_as_zero_and_empty_answers_none() -> None:
    """NaN lands where ddsketch puts it (with the zeros); an empty sketch has no quantile;
    quantiles outside [0, 1] are None."""
    sketch = Sketch()
    assert sketch.quantile(0.5) is None
    sketch.add(math.nan)
    sketch.add(10.0)
    assert sketch.count == 2
    assert sketch.histogram()[0] == 1.0
    assert sketch.quantile(0.0) == 0.0
    assert sketch.quantile(1.5) is None


def test_merging_another_accuracy_is_refused_and_pickle_round_trips() -> None:
    """Sketches of different accuracies do not merge; pickling keeps every bin."""
    sketch = Sketch(0.02)
    sketch.add(3.0)
    with pytest.raises(ValueError, match="different parameters"):
        sketch.merge(Sketch(0.01))
    assert pickle.loads(pickle.dumps(sketch)).to_dict() == sketch.to_dict()

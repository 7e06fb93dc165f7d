"""A mergeable quantile sketch (DDSketch's logarithmic mapping) with a JSON form.

DDSketch answers every quantile within a relative error (2% by default) and merges exactly,
which is what two-stage aggregation needs. The JSON form keeps only the non-empty bins, so a
partial travels as a few hundred bytes per sketch instead of ddsketch's dense protobuf.

The bins live in one dict (key -> count) rather than in the ``ddsketch`` package's objects
(a sketch, two dense stores of 16-bin chunks): a window partial holds five sketches and the
map and merge sides hold a partial per open window of every cohort, so building, filling and
merging them was a fixed cost per cohort and window, and their objects most of a partial's
memory. The keys, the quantiles and the JSON form are exactly ddsketch's (its
``LogarithmicMapping`` maps values to keys and keys back; a test compares value by value).

>>> sketch = Sketch(0.01)
>>> for value in range(1, 101):
...     sketch.add(float(value))
>>> round(sketch.quantile(0.5))
50
>>> Sketch.from_dict(sketch.to_dict()).to_dict() == sketch.to_dict()
True
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import numpy.typing as npt
from ddsketch import LogarithmicMapping

_COUNTS = tuple(float(n) for n in range(1024))
"""Bin counts are small whole numbers: one float object per value, shared by every sketch."""


@functools.cache
def _mapping(relative_accuracy: float) -> LogarithmicMapping:
    """One key mapping per accuracy, shared by every sketch (it is immutable)."""
    return LogarithmicMapping(relative_accuracy)


class Sketch:
    """Non-negative values (latency, tokens, cost) in a DDSketch; zero is counted apart."""

    __slots__ = ("_bins", "_mapping", "_stored", "_zeros", "relative_accuracy")

    def __init__(self, relative_accuracy: float = 0.02) -> None:
        self.relative_accuracy = relative_accuracy
        self._mapping = _mapping(relative_accuracy)
        self._bins: dict[int, float] = {}
        """Count of each non-zero bin, by key (a higher key holds larger values)."""
        self._stored = 0.0
        """Values in the bins."""
        self._zeros = 0.0
        """Values too small to tell from zero (zero itself, and NaN as ddsketch counts it)."""

    @property
    def count(self) -> int:
        """Values added."""
        return round(self._zeros + self._stored)

    def add(self, value: float) -> None:
        """Add one value (negative values are refused by the event contract)."""
        value = max(value, 0.0)
        mapping = self._mapping
        if value > mapping.min_possible:
            # ddsketch's LogarithmicMapping.key, inlined: the same float operations
            key = int(math.ceil(math.log(value, 2) * mapping._multiplier) + mapping._offset)
            bins = self._bins
            bins[key] = bins.get(key, 0.0) + 1.0
            self._stored += 1.0
        else:
            self._zeros += 1.0

    def add_many(self, values: Iterable[float]) -> None:
        """:meth:`add` each of ``values``."""
        mapping = self._mapping
        smallest, multiplier, offset = mapping.min_possible, mapping._multiplier, mapping._offset
        bins = self._bins
        log, ceil = math.log, math.ceil
        for value in values:
            value = max(value, 0.0)
            if value > smallest:
                key = int(ceil(log(value, 2) * multiplier) + offset)
                bins[key] = bins.get(key, 0.0) + 1.0
                self._stored += 1.0
            else:
                self._zeros += 1.0

    def merge(self, other: Sketch) -> None:
        """Fold ``other`` in; both must have the same relative accuracy."""
        if other._mapping.gamma != self._mapping.gamma:
            raise ValueError(
                "Cannot merge two DDSketches with different parameters, got "
                f"{self._mapping.gamma!r} and {other._mapping.gamma!r}"
            )
        bins = self._bins
        for key, n in other._bins.items():
            bins[key] = bins.get(key, 0.0) + n
        self._stored += other._stored
        self._zeros += other._zeros

    def quantile(self, q: float) -> float | None:
        """The value at quantile ``q`` (0..1), None when empty."""
        count = self._zeros + self._stored
        if q < 0 or q > 1 or count == 0:
            return None
        rank = q * (count - 1)
        if rank < self._zeros:
            return 0.0
        rank -= self._zeros
        running = 0.0
        key = None
        for key in sorted(self._bins):
            running += self._bins[key]
            if running > rank:
                break
        assert key is not None
        return float(self._mapping.value(key))

    @classmethod
    def of(cls, values: npt.ArrayLike, relative_accuracy: float = 0.02) -> Sketch:
        """A sketch of many values at once (vectorised: what ``add`` does value by value)."""
        mapping = _mapping(relative_accuracy)
        array = np.asarray(values, dtype=np.float64).ravel()
        array = np.maximum(array[np.isfinite(array)], 0.0)  # the contract refuses NaN and inf
        positive = array[array > mapping.min_possible]
        keys = np.ceil(np.log2(positive) * mapping._multiplier) + mapping._offset  # its _log_gamma
        unique, counts = np.unique(keys.astype(np.int64), return_counts=True)
        return cls.from_dict(
            {
                "relative_accuracy": relative_accuracy,
                "zeros": len(array) - len(positive),
                "bins": [[int(k), float(c)] for k, c in zip(unique, counts, strict=True)],
            }
        )

    def histogram(self) -> tuple[float, list[tuple[int, float]]]:
        """How many values are zero, and ``(key, count)`` of the other bins in key order: a
        higher key holds larger values, so two sketches of the same accuracy line up bin by bin
        (what a rank test or a threshold count over whole sketches needs)."""
        bins = self._bins
        return self._zeros, [(key, bins[key]) for key in sorted(bins) if bins[key]]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: relative accuracy, zero count, and ``[key, count]`` of non-empty bins."""
        bins = self._bins
        return {
            "relative_accuracy": self.relative_accuracy,
            "zeros": self.count - round(self._stored),
            "bins": [[key, bins[key]] for key in sorted(bins) if bins[key]],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Sketch:
        """The inverse of :meth:`to_dict`."""
        sketch = cls(float(data["relative_accuracy"]))
        bins = sketch._bins
        stored = 0.0
        for key, count in data["bins"]:
            n = float(count)
            bins[int(key)] = bins.get(int(key), 0.0) + n
            stored += n
        for key, n in bins.items():
            if n.is_integer() and 0 <= n < len(_COUNTS):
                bins[key] = _COUNTS[int(n)]
        sketch._stored = stored
        sketch._zeros = float(data["zeros"])
        return sketch

    def __getstate__(self) -> dict[str, Any]:
        return self.to_dict()

    def __setstate__(self, state: dict[str, Any]) -> None:
        restored = Sketch.from_dict(state)
        self.relative_accuracy = restored.relative_accuracy
        self._mapping = restored._mapping
        self._bins = restored._bins
        self._stored = restored._stored
        self._zeros = restored._zeros

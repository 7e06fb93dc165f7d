"""A mergeable quantile sketch (DDSketch, from the ``ddsketch`` package) with a JSON form.

DDSketch answers every quantile within a relative error (2% by default) and merges exactly,
which is what two-stage aggregation needs. The JSON form keeps only the non-empty bins, so a
partial travels as a few hundred bytes per sketch instead of ddsketch's dense protobuf.

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
from typing import Any

import numpy as np
import numpy.typing as npt
from ddsketch import LogarithmicMapping
from ddsketch.ddsketch import BaseDDSketch
from ddsketch.store import DenseStore

_COUNTS = tuple(float(n) for n in range(1024))

CHUNK = 16
"""Bins are allocated 16 at a time (ddsketch's default is 128: mostly empty for one window)."""


@functools.cache
def _mapping(relative_accuracy: float) -> LogarithmicMapping:
    """One key mapping per accuracy, shared by every sketch (it is immutable)."""
    return LogarithmicMapping(relative_accuracy)


class Sketch:
    """Non-negative values (latency, tokens, cost) in a DDSketch; zero is counted apart."""

    __slots__ = ("_ddsketch", "_store", "relative_accuracy")

    def __init__(self, relative_accuracy: float = 0.02) -> None:
        self.relative_accuracy = relative_accuracy
        self._store = DenseStore(chunk_size=CHUNK)
        self._ddsketch = BaseDDSketch(
            mapping=_mapping(relative_accuracy),
            store=self._store,
            negative_store=DenseStore(chunk_size=CHUNK),
            zero_count=0.0,
        )

    @property
    def count(self) -> int:
        """Values added."""
        return round(float(self._ddsketch.count))

    def add(self, value: float) -> None:
        """Add one value (negative values are refused by the event contract)."""
        self._ddsketch.add(max(value, 0.0))

    def merge(self, other: Sketch) -> None:
        """Fold ``other`` in; both must have the same relative accuracy."""
        self._ddsketch.merge(other._ddsketch)

    def quantile(self, q: float) -> float | None:
        """The value at quantile ``q`` (0..1), None when empty."""
        value = self._ddsketch.get_quantile_value(q)
        return None if value is None else float(value)

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
        store = self._store
        bins = [(store.offset + i, c) for i, c in enumerate(store.bins) if c]
        return float(self._ddsketch.count) - store.count, bins

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: relative accuracy, zero count, and ``[key, count]`` of non-empty bins."""
        store = self._store
        bins = [[store.offset + i, c] for i, c in enumerate(store.bins) if c]
        return {
            "relative_accuracy": self.relative_accuracy,
            "zeros": self.count - round(store.count),
            "bins": bins,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Sketch:
        """The inverse of :meth:`to_dict`."""
        sketch = cls(float(data["relative_accuracy"]))
        store = DenseStore(chunk_size=CHUNK)
        for key, count in data["bins"]:
            store.add(int(key), float(count))
        # Bin counts are small whole numbers: share one float object per value (the merge
        # side holds a partial per open window of every cohort; this is a third of a sketch).
        store.bins = [
            _COUNTS[int(c)] if c < len(_COUNTS) and c.is_integer() else c for c in store.bins
        ]
        sketch._store = store
        sketch._ddsketch = BaseDDSketch(
            mapping=_mapping(sketch.relative_accuracy),
            store=store,
            negative_store=DenseStore(chunk_size=CHUNK),
            zero_count=float(data["zeros"]),
        )
        return sketch

    def __getstate__(self) -> dict[str, Any]:
        return self.to_dict()

    def __setstate__(self, state: dict[str, Any]) -> None:
        restored = Sketch.from_dict(state)
        self.relative_accuracy = restored.relative_accuracy
        self._store = restored._store
        self._ddsketch = restored._ddsketch

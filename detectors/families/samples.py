"""The numeric samples detectors keep of their reference windows: a window's values thinned to
a fixed size, the trailing windows' samples in one preallocated block (:class:`SampleRing`),
and the pooled reference sample the two-sample tests compare a window with. Pure numpy.

>>> ring = SampleRing(windows=2, rows=3, columns=1)
>>> for number in (1.0, 2.0, 3.0):
...     ring.append(thin([number] * 10, 3), number)
>>> [(len(sample), n) for sample, n in ring.entries()]
[(3, 2.0), (3, 3.0)]
>>> pooled([s for s, _ in ring.entries()]).ravel().tolist()
[2.0, 2.0, 2.0, 3.0, 3.0, 3.0]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

SAMPLE_PER_WINDOW = 32
"""Values of a numeric feature a detector keeps per reference window (float32)."""


def thin(values: Sequence[float], size: int = SAMPLE_PER_WINDOW) -> npt.NDArray[np.float32]:
    """At most ``size`` of ``values`` (evenly spaced picks of a random-order sample), float32."""
    array = np.asarray(values, dtype=np.float32)
    if len(array) <= size:
        return array
    return array[np.linspace(0, len(array) - 1, size).astype(np.int64)]


def pooled(arrays: Sequence[npt.NDArray[np.float32]]) -> npt.NDArray[np.float32]:
    """The reference sample: every window's sample, concatenated."""
    if not arrays:
        return np.empty(0, dtype=np.float32)
    return np.concatenate(arrays)


class SampleRing:
    """The trailing windows' sampled rows in one float32 block, plus one number per window.

    Per-window objects cost more than the samples: a 32-value numpy array is 128 bytes of data
    behind a 112-byte header. Here a window is a slice of one preallocated block, so a
    detector's reference costs its data and two headers.
    """

    __slots__ = ("_block", "_meta", "_size", "columns", "dtype", "rows", "windows")

    def __init__(
        self, windows: int, rows: int, columns: int, dtype: type[np.generic] = np.float32
    ) -> None:
        self.windows = windows
        self.rows = rows
        self.columns = columns
        self.dtype = dtype
        self._block: npt.NDArray[Any] | None = None
        self._meta: npt.NDArray[np.float64] | None = None
        """Per window slot: its row count and its number."""
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def append(self, sample: npt.NDArray[Any], number: float) -> None:
        """Keep ``sample`` (at most ``rows`` rows of ``columns``) and ``number`` for a window."""
        if self._block is None or self._meta is None:
            self._block = np.zeros((self.windows, self.rows, self.columns), self.dtype)
            self._meta = np.zeros((self.windows, 2), np.float64)
        if self._size == self.windows:
            self._block[:-1] = self._block[1:]
            self._meta[:-1] = self._meta[1:]
            self._size -= 1
        n = min(len(sample), self.rows)
        self._block[self._size, :n] = sample[:n].reshape(n, self.columns)
        self._meta[self._size] = (n, number)
        self._size += 1

    def entries(self) -> list[tuple[npt.NDArray[Any], float]]:
        """``(sample, number)`` of each kept window, oldest first (views: read, do not keep)."""
        if self._block is None or self._meta is None:
            return []
        return [
            (self._block[i, : int(self._meta[i, 0])], float(self._meta[i, 1]))
            for i in range(self._size)
        ]

    def clear(self) -> None:
        self._block = None
        self._meta = None
        self._size = 0

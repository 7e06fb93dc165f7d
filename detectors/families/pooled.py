"""A longer past for detectors whose window summaries add up (counts, sums): the windows that
leave the trailing reference are summed into blocks of ``long_reference_windows / 2`` windows,
of which the reference keeps the last closed one and the one being filled: between one and two
hours of windows at the defaults, as two summaries.

A rate of 1% judged against ten windows of a quiet cohort is judged against a few dozen
events: the reference's own noise was a finding now and then. An hour or two of the same
counts, summed, make the reference's rate nearly exact for two more summaries (a few hundred
bytes a detector), while the trailing windows keep their own place (and the two-window test
its neighbour).

>>> from driftnet.detectors.families.quality import Rate
>>> from driftnet.detectors.settings import DetectorSettings
>>> settings = DetectorSettings(reference_windows=2, min_reference_windows=1, long_reference_windows=4)
>>> rate = Rate("error_rate", settings)
>>> for hits in range(7):
...     rate.keep((hits, 100))
>>> rate.long_past(), rate.remembered()
([(5, 200), (4, 100)], [(5, 100), (6, 100)])
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable
from typing import Any, TypeVar

from driftnet.detectors.families.base import WindowedDetector
from driftnet.detectors.families.snapshot import SnapshotError, as_int, as_list, as_mapping
from driftnet.detectors.settings import DetectorSettings

S = TypeVar("S")


class PooledPast(WindowedDetector[S]):
    """A windowed detector whose reference also holds two summed blocks of older windows."""

    __slots__ = ("_blocks", "_open", "_open_windows")

    def __init__(self, settings: DetectorSettings | None = None) -> None:
        super().__init__(settings)
        self._blocks: list[S] = []
        """The last closed block (none before the first closes, or with no long past)."""
        self._open: S | None = None
        """The block being filled."""
        self._open_windows = 0

    @abstractmethod
    def pool(self, earlier: S, later: S) -> S:
        """Two summaries as one: what both windows saw together."""

    @property
    def _block_windows(self) -> int:
        return self.settings.long_reference_windows // 2

    def retire(self, summary: S) -> None:
        if self._block_windows == 0:
            return
        self._open = summary if self._open is None else self.pool(self._open, summary)
        self._open_windows += 1
        if self._open_windows >= self._block_windows:
            self._blocks = [self._open]
            self._open, self._open_windows = None, 0

    def long_past(self) -> list[S]:
        return self._blocks + ([] if self._open is None else [self._open])

    def forget(self) -> None:
        super().forget()
        self._blocks = []
        self._open, self._open_windows = None, 0

    def _state(self) -> Any:
        return {
            **super()._state(),
            "past": {
                "blocks": [self.encode_summary(b) for b in self._blocks],
                "open": None if self._open is None else self.encode_summary(self._open),
                "open_windows": self._open_windows,
            },
        }

    def _parse_state(self, state: Any) -> Callable[[], None]:
        load_windows = super()._parse_state(state)
        past = as_mapping(as_mapping(state).get("past", {"blocks": [], "open_windows": 0}))
        blocks = [self.decode_summary(b) for b in as_list(past["blocks"])]
        opened = past.get("open")
        open_block = None if opened is None else self.decode_summary(opened)
        open_windows = as_int(past["open_windows"])
        if open_windows < 0 or (open_block is None) != (open_windows == 0):
            raise SnapshotError(f"an open block of {open_windows} windows: {opened!r:.40}")

        def load() -> None:
            load_windows()  # first: the windows it keeps retire nothing (at most the ring)
            self._blocks = blocks[-1:] if self._block_windows else []
            self._open, self._open_windows = open_block, open_windows

        return load

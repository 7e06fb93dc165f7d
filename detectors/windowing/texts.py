"""A window's sampled texts: what a few of its calls asked and answered, for text drift.

At most ``capacity`` events per window, the ones whose :func:`~driftnet.detectors.windowing.
samples.uniform_rank` (a fixed function of the event id) is highest: a uniform sample that
merges exactly (the union's highest ranks) and replays identically, in any order. On the hot
path an event costs one comparison with the lowest rank kept; its texts are made only when it
is kept (``capacity`` times per window, plus a few replacements while it fills: about
``capacity x (1 + ln(events / capacity))`` in all).

>>> sample = TextSample(capacity=2)
>>> for i, rank in enumerate([0.3, 0.9, 0.1, 0.5]):
...     sample.offer(rank, f"e{i}", lambda i=i: SampledText(f"question {i}?", f"answer {i}", 11, 8))
>>> [item.event_id for item in sample.items]
['e1', 'e3']
>>> TextSample.from_dict(sample.to_dict(), 2).to_dict() == sample.to_dict()
True
>>> unpack_texts(pack_texts([item.text for item in sample.items]))[0].input
'question 1?'
"""

from __future__ import annotations

import heapq
import json
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class SampledText:
    """What one call asked (the last user message) and answered, each cut to a few hundred
    characters; None where it was not captured. The map side redacts them like every failure
    record when the window is done, before its partial leaves."""

    input: str | None
    output: str | None
    input_chars: int
    """The length of the whole input text, before it was cut."""
    output_chars: int
    """The length of the whole answer, before it was cut."""

    def side(self, name: str) -> str | None:
        """``input`` or ``output``."""
        return self.input if name == "input" else self.output

    def chars(self, name: str) -> int:
        """The uncut length of side ``name``."""
        return self.input_chars if name == "input" else self.output_chars

    def to_list(self) -> list[Any]:
        return [self.input, self.output, self.input_chars, self.output_chars]

    @classmethod
    def from_list(cls, data: Any) -> SampledText:
        text_in, text_out, chars_in, chars_out = data
        return cls(
            None if text_in is None else str(text_in),
            None if text_out is None else str(text_out),
            int(chars_in),
            int(chars_out),
        )


@dataclass(frozen=True, slots=True, order=True)
class Ranked:
    """A sampled text, ranked by :func:`uniform_rank` (then by event id)."""

    rank: float
    event_id: str
    text: SampledText


class TextSample:
    """The ``capacity`` highest-ranked texts offered (see the module docstring)."""

    __slots__ = ("_heap", "capacity")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._heap: list[Ranked] = []
        """A min-heap: the lowest rank kept is first."""

    def __len__(self) -> int:
        return len(self._heap)

    def offer(self, rank: float, event_id: str, make: Callable[[], SampledText]) -> None:
        """Keep the event if its rank is among the ``capacity`` highest so far; ``make`` is
        called only then."""
        heap = self._heap
        if len(heap) >= self.capacity:
            if self.capacity == 0:
                return
            least = heap[0]
            if (rank, event_id) <= (least.rank, least.event_id):
                return
            heapq.heapreplace(heap, Ranked(rank, event_id, make()))
        else:
            heapq.heappush(heap, Ranked(rank, event_id, make()))

    def _keep(self, item: Ranked) -> None:
        if len(self._heap) < self.capacity:
            heapq.heappush(self._heap, item)
        elif self.capacity and item > self._heap[0]:
            heapq.heapreplace(self._heap, item)

    def rewrite(self, change: Callable[[SampledText], SampledText]) -> None:
        """Replace every kept text by ``change`` of it (its rank kept): the map side redacts
        and cuts them once, when the window is done, not each time one is kept."""
        self._heap = [Ranked(i.rank, i.event_id, change(i.text)) for i in self._heap]

    @property
    def items(self) -> list[Ranked]:
        """The kept texts, highest rank first."""
        return sorted(self._heap, reverse=True)

    def merge(self, others: Iterable[TextSample]) -> None:
        """Fold in other partials' samples: the highest ranks of the union (an event sampled
        by two partials counts once)."""
        known = {item.event_id for item in self._heap}
        for other in others:
            for item in other._heap:
                if item.event_id not in known:
                    known.add(item.event_id)
                    self._keep(item)

    def to_dict(self) -> list[list[Any]]:
        """JSON-able form: ``[[rank, event_id, input, output, input_chars, output_chars]]``."""
        return [[i.rank, i.event_id, *i.text.to_list()] for i in self.items]

    @classmethod
    def from_dict(cls, data: Iterable[Any], capacity: int) -> TextSample:
        """The inverse of :meth:`to_dict` (at most ``capacity`` of them kept)."""
        sample = cls(capacity)
        for rank, event_id, *text in data:
            sample._keep(Ranked(float(rank), str(event_id), SampledText.from_list(text)))
        return sample


def pack_texts(texts: Sequence[SampledText]) -> bytes:
    """``texts`` as one zlib-compressed JSON blob: how a detector keeps a window's texts
    (texts of one cohort repeat words: about a third of their size)."""
    body = json.dumps([t.to_list() for t in texts], ensure_ascii=False, separators=(",", ":"))
    return zlib.compress(body.encode(), 6)


def unpack_texts(blob: bytes) -> list[SampledText]:
    """The inverse of :func:`pack_texts`; raises ``ValueError`` on anything else."""
    try:
        rows = json.loads(zlib.decompress(blob))
    except (zlib.error, UnicodeDecodeError) as exc:
        raise ValueError(f"not packed texts: {exc}") from None
    if not isinstance(rows, list):
        raise ValueError("packed texts are a list")
    try:
        return [SampledText.from_list(row) for row in rows]
    except (TypeError, ValueError) as exc:
        raise ValueError(f"not packed texts: {exc}") from None

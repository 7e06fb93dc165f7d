"""Bounded samples of a window: a seeded reservoir of feature rows and the top-k worst examples.

Both are deterministic: the same events in the same order give the same sample (the reservoir's
generator is seeded from the cohort, window and source), so a replayed partial equals the
original, and merging the same partials gives the same result whatever order they arrive in.

>>> reservoir = Reservoir(capacity=3, seed="demo")
>>> for i in range(100):
...     reservoir.add(((float(i),), ("stop",)))
>>> reservoir.seen, len(reservoir.rows)
(100, 3)
"""

from __future__ import annotations

import hashlib
import heapq
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

Row = tuple[tuple[float | None, ...], tuple[str | None, ...]]
"""One sampled event: its numeric features and its categorical features, in column order."""

EXAMPLE_KINDS: Final = ("slowest", "costliest", "failed")


def seed_of(*parts: object) -> int:
    """A stable 64-bit seed from any printable parts (``hash()`` is salted per process)."""
    digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


class Reservoir:
    """Algorithm R: a uniform sample of at most ``capacity`` rows of everything added."""

    __slots__ = ("_rng", "capacity", "rows", "seed", "seen")

    def __init__(self, capacity: int, seed: str) -> None:
        self.capacity = capacity
        self.seed = seed
        self.seen = 0
        self.rows: list[Row] = []
        self._rng = random.Random(seed_of(seed, 0))

    def add(self, row: Row) -> None:
        """Offer one row."""
        if self.seen < self.capacity:
            self.rows.append(row)
        else:
            slot = self._rng.randrange(self.seen + 1)
            if slot < self.capacity:
                self.rows[slot] = row
        self.seen += 1

    @classmethod
    def merged(cls, parts: Sequence[Reservoir], capacity: int, seed: str) -> Reservoir:
        """A uniform sample of the union: each part contributes in proportion to what it saw
        (a multivariate hypergeometric draw), deterministic for the same parts in any order."""
        ordered = sorted(parts, key=lambda r: (r.seed, r.seen))
        merged = cls(capacity, seed)
        merged.seen = sum(r.seen for r in ordered)
        rng = random.Random(seed_of(seed, "merge", *(f"{r.seed}:{r.seen}" for r in ordered)))
        # Draw `capacity` of the `seen` events without replacement, then map each drawn event
        # to the part it came from; each part gives that many of its (uniform) sample rows.
        picks = sorted(rng.sample(range(merged.seen), min(capacity, merged.seen)))
        taken: list[Row] = []
        start = 0
        index = 0
        for part in ordered:
            end = start + part.seen
            count = 0
            while index < len(picks) and picks[index] < end:
                count += 1
                index += 1
            taken.extend(rng.sample(part.rows, min(count, len(part.rows))))
            start = end
        merged.rows = taken
        merged._rng = random.Random(seed_of(seed, merged.seen))
        return merged

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {
            "seed": self.seed,
            "seen": self.seen,
            "rows": [[list(n), list(c)] for n, c in self.rows],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], capacity: int) -> Reservoir:
        """The inverse of :meth:`to_dict`; adding after it goes on deterministically."""
        reservoir = cls(capacity, str(data["seed"]))
        reservoir.seen = int(data["seen"])
        reservoir.rows = [(tuple(n), tuple(c)) for n, c in data["rows"]]
        reservoir._rng = random.Random(seed_of(reservoir.seed, reservoir.seen))
        return reservoir

    def __getstate__(self) -> dict[str, Any]:
        return {"capacity": self.capacity, **self.to_dict(), "rng": self._rng.getstate()}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.capacity = state["capacity"]
        self.seed = state["seed"]
        self.seen = state["seen"]
        self.rows = [(tuple(n), tuple(c)) for n, c in state["rows"]]
        self._rng = random.Random()
        self._rng.setstate(state["rng"])


@dataclass(frozen=True, slots=True, order=True)
class Example:
    """One event kept as evidence: ranked by ``rank`` (higher is worse), then by id."""

    rank: float
    event_id: str
    raw: str
    """The event's JSON text, as the producer sent it."""


class WorstExamples:
    """The ``k`` worst events of each kind (slowest, costliest, failed), full records included."""

    __slots__ = ("_heaps", "k")

    def __init__(self, k: int) -> None:
        self.k = k
        self._heaps: dict[str, list[Example]] = {kind: [] for kind in EXAMPLE_KINDS}

    def offer(self, kind: str, rank: float, event_id: str, raw: str) -> None:
        """Keep the event if it is among the ``k`` worst of ``kind`` so far."""
        if self.k == 0:
            return
        heap = self._heaps[kind]
        example = Example(rank, event_id, raw)
        if len(heap) < self.k:
            heapq.heappush(heap, example)
        elif example > heap[0]:
            heapq.heapreplace(heap, example)

    def of(self, kind: str) -> list[Example]:
        """The kept examples of ``kind``, worst first."""
        return sorted(self._heaps[kind], reverse=True)

    def merge(self, others: Iterable[WorstExamples]) -> None:
        """Fold in the examples of other windows' partials (an event kept twice counts once)."""
        for other in others:
            for kind, heap in other._heaps.items():
                known = {e.event_id for e in self._heaps[kind]}
                for example in heap:
                    if example.event_id not in known:
                        self.offer(kind, example.rank, example.event_id, example.raw)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form: ``{kind: [[rank, event_id, raw], ...]}``."""
        return {
            kind: [[e.rank, e.event_id, e.raw] for e in self.of(kind)] for kind in EXAMPLE_KINDS
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], k: int) -> WorstExamples:
        """The inverse of :meth:`to_dict`."""
        examples = cls(k)
        for kind in EXAMPLE_KINDS:
            for rank, event_id, raw in data.get(kind, []):
                examples.offer(kind, float(rank), str(event_id), str(raw))
        return examples

    def __getstate__(self) -> dict[str, Any]:
        return {"k": self.k, "examples": self.to_dict()}

    def __setstate__(self, state: dict[str, Any]) -> None:
        restored = WorstExamples.from_dict(state["examples"], state["k"])
        self.k = restored.k
        self._heaps = restored._heaps

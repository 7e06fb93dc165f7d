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

import base64
import hashlib
import heapq
import random
import sys
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import numpy.typing as npt

Row = tuple[tuple[float | None, ...], tuple[str | None, ...]]
"""One sampled event: its numeric features and its categorical features, in column order."""

EXAMPLE_KINDS: Final = ("slowest", "costliest", "failed")
TYPICAL: Final = "typical."
"""Prefix of the kinds holding a uniform sample of each input-size bucket (``typical.0`` is the
smallest inputs): the baseline requests a canary's worst ones are matched with."""


def typical_kind(bucket: int) -> str:
    """The example kind of the uniform sample of input-size bucket ``bucket``."""
    return f"{TYPICAL}{bucket}"


def uniform_rank(event_id: str) -> float:
    """A rank in [0, 1) that is a fixed function of the event id: keeping the k highest is a
    uniform sample that merges exactly (bottom-k sampling) and replays identically."""
    return zlib.crc32(event_id.encode()) / 2**32


def seed_of(*parts: object) -> int:
    """A stable 64-bit seed from any printable parts (``hash()`` is salted per process)."""
    digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


class Reservoir:
    """Algorithm R: a uniform sample of at most ``capacity`` rows of everything added.

    Numeric features live in one float32 matrix (NaN where missing) and categorical ones in a
    list of tuples: a 128-row sample costs about 12 KB instead of 40 KB as Python tuples.
    """

    __slots__ = ("_rng", "_rng_parts", "capacity", "categorical", "numeric", "seed", "seen")

    def __init__(self, capacity: int, seed: str, width: int = 0) -> None:
        self.capacity = capacity
        self.seed = seed
        self.seen = 0
        self.numeric: npt.NDArray[np.float32] = np.empty((0, width), dtype=np.float32)
        """(rows, numeric columns): grown as rows come, up to ``capacity`` rows (most windows
        of a cohort among thousands hold a few events)."""
        self.categorical: list[tuple[str | None, ...]] = []
        self._rng: random.Random | None = None
        """Made when first needed (once ``capacity`` rows are in): seeding one costs more than
        a small window's every add."""
        self._rng_parts: tuple[object, ...] = (seed, 0)

    @property
    def size(self) -> int:
        """Rows held: ``min(seen, capacity)``."""
        return len(self.categorical)

    def _generator(self) -> random.Random:
        rng = self._rng
        if rng is None:
            rng = self._rng = random.Random(seed_of(*self._rng_parts))
        return rng

    def _reseed(self, *parts: object) -> None:
        """The generator is now the one seeded from ``parts`` (made when first needed)."""
        self._rng = None
        self._rng_parts = parts

    def add(self, row: Row) -> None:
        """Offer one row."""
        numeric, categorical = row
        # Labels repeat across rows; each event's decoding made its own copy: keep one.
        categorical = tuple([None if v is None else sys.intern(v) for v in categorical])
        if self.seen < self.capacity:
            slot = len(self.categorical)
            if slot >= len(self.numeric):
                self._grow(slot + 1, len(numeric))
            self.categorical.append(categorical)
        else:
            slot = self._generator().randrange(self.seen + 1)
            if slot >= self.capacity:
                self.seen += 1
                return
            self.categorical[slot] = categorical
        self.numeric[slot] = [np.nan if v is None else v for v in numeric]
        self.seen += 1

    def _grow(self, rows: int, width: int) -> None:
        """Room for at least ``rows`` rows (doubling, at most ``capacity``), kept rows kept."""
        held = len(self.numeric)
        size = min(self.capacity, max(rows, 8, 2 * held))
        grown = np.full((size, width), np.nan, dtype=np.float32)
        if held:
            grown[:held] = self.numeric
        self.numeric = grown

    @property
    def rows(self) -> list[Row]:
        """The sampled rows as tuples (None where missing)."""
        return [
            (tuple(None if np.isnan(v) else float(v) for v in self.numeric[i]), self.categorical[i])
            for i in range(self.size)
        ]

    def numeric_column(self, index: int) -> npt.NDArray[np.float32]:
        """The sampled values of numeric column ``index``, missing ones left out."""
        if self.size == 0:
            return np.empty(0, dtype=np.float32)
        column = self.numeric[: self.size, index]
        return column[~np.isnan(column)]

    def _take(
        self, indexes: Sequence[int]
    ) -> tuple[npt.NDArray[np.float32], list[tuple[str | None, ...]]]:
        index = np.asarray(indexes, dtype=np.int64)
        return self.numeric[index], [self.categorical[i] for i in indexes]

    @classmethod
    def merged(cls, parts: Sequence[Reservoir], capacity: int, seed: str) -> Reservoir:
        """A uniform sample of the union: each part contributes in proportion to what it saw
        (a multivariate hypergeometric draw), deterministic for the same parts in any order."""
        ordered = sorted(parts, key=lambda r: (r.seed, r.seen))
        merged = cls(capacity, seed, max((r.numeric.shape[1] for r in ordered), default=0))
        seen = sum(r.seen for r in ordered)
        rng = random.Random(seed_of(seed, "merge", *(f"{r.seed}:{r.seen}" for r in ordered)))
        # Draw `capacity` of the `seen` events without replacement, then map each drawn event
        # to the part it came from; each part gives that many of its (uniform) sample rows.
        picks = sorted(rng.sample(range(seen), min(capacity, seen)))
        numeric: list[npt.NDArray[np.float32]] = []
        start = 0
        index = 0
        for part in ordered:
            end = start + part.seen
            count = 0
            while index < len(picks) and picks[index] < end:
                count += 1
                index += 1
            chosen = rng.sample(range(part.size), min(count, part.size))
            if chosen:
                rows, labels = part._take(chosen)
                numeric.append(rows)
                merged.categorical.extend(labels)
            start = end
        if numeric:
            merged.numeric = np.concatenate(numeric)
        merged.seen = seen
        merged._reseed(seed, seen)
        return merged

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        numeric = self.numeric[: self.size].tolist()  # Python floats, as float() of each
        return {
            "seed": self.seed,
            "seen": self.seen,
            "rows": [
                [[None if v != v else v for v in values], list(labels)]  # NaN: missing
                for values, labels in zip(numeric, self.categorical, strict=True)
            ],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], capacity: int, width: int = 0) -> Reservoir:
        """The inverse of :meth:`to_dict`; adding after it goes on deterministically."""
        reservoir = cls(capacity, str(data["seed"]), width)
        rows = data["rows"]
        if 0 < len(rows) <= capacity and len({len(n) for n, _ in rows}) == 1:
            # what adding them one by one does, in one go
            reservoir.numeric = np.array(
                [[np.nan if v is None else v for v in numeric] for numeric, _ in rows],
                dtype=np.float32,
            )
            reservoir.categorical = [
                tuple([None if v is None else sys.intern(v) for v in labels]) for _, labels in rows
            ]
        else:
            for numeric, categorical in rows:
                reservoir.add((tuple(numeric), tuple(categorical)))
        reservoir.seen = int(data["seen"])
        reservoir._reseed(reservoir.seed, reservoir.seen)
        return reservoir

    def __getstate__(self) -> dict[str, Any]:
        return {
            "capacity": self.capacity,
            "seed": self.seed,
            "seen": self.seen,
            "numeric": self.numeric,
            "categorical": self.categorical,
            "rng": self._generator().getstate(),
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.capacity = state["capacity"]
        self.seed = state["seed"]
        self.seen = state["seen"]
        self.numeric = state["numeric"]
        self.categorical = state["categorical"]
        self._rng = random.Random()
        self._rng.setstate(state["rng"])
        self._rng_parts = (self.seed, self.seen)


@dataclass(frozen=True, slots=True, order=True)
class Example:
    """One event kept as evidence: ranked by ``rank`` (higher is worse), then by id."""

    rank: float
    event_id: str
    packed: bytes = field(compare=False)
    """The event's JSON as the producer sent it, zlib-compressed (events are about 1.7 KB of
    JSON with repetitive prompts; 9 of them per open window of every cohort add up)."""

    @property
    def raw(self) -> str:
        """The event's JSON text."""
        return zlib.decompress(self.packed).decode("utf-8", "replace")


def _given(packed: bytes) -> Callable[[], bytes]:
    return lambda: packed


def _decoder(text: str) -> Callable[[], bytes]:
    return lambda: base64.b64decode(text)


class WorstExamples:
    """The ``k`` worst events of each kind (slowest, costliest, failed), full records included;
    and ``k`` of each input-size bucket, picked by :func:`uniform_rank` (``typical.N``)."""

    __slots__ = ("_heaps", "k")

    def __init__(self, k: int) -> None:
        self.k = k
        self._heaps: dict[str, list[Example]] = {kind: [] for kind in EXAMPLE_KINDS}

    def _packed(self, event_id: str) -> bytes | None:
        """The compressed JSON of an event already kept under another kind."""
        for heap in self._heaps.values():
            for example in heap:
                if example.event_id == event_id:
                    return example.packed
        return None

    def offer(
        self, kind: str, rank: float, event_id: str, raw: bytes | Callable[[], bytes]
    ) -> None:
        """Keep the event (``raw``: its JSON, or a function making it) if it is among the ``k``
        worst of ``kind`` so far. It is made and compressed only when kept."""
        heap = self._heaps.get(kind)
        if heap is not None and len(heap) >= self.k > 0:
            least = heap[0]
            if (rank, event_id) <= (least.rank, least.event_id):
                return  # not among the k worst: the usual case, so no closure for it
        self.offer_packed(
            kind, rank, event_id, lambda: zlib.compress(raw() if callable(raw) else raw, 1)
        )

    def offer_packed(
        self, kind: str, rank: float, event_id: str, pack: Callable[[], bytes]
    ) -> None:
        """:meth:`offer` with the compressed JSON made by ``pack`` when needed."""
        if self.k == 0:
            return
        heap = self._heaps.get(kind)
        if heap is None:
            if not kind.startswith(TYPICAL):
                raise KeyError(f"unknown example kind {kind!r}")
            heap = self._heaps[kind] = []
        if len(heap) >= self.k and (rank, event_id) <= (heap[0].rank, heap[0].event_id):
            return
        example = Example(rank, event_id, self._packed(event_id) or pack())
        if len(heap) < self.k:
            heapq.heappush(heap, example)
        else:
            heapq.heapreplace(heap, example)

    def of(self, kind: str) -> list[Example]:
        """The kept examples of ``kind``, worst first."""
        return sorted(self._heaps.get(kind, ()), reverse=True)

    @property
    def kinds(self) -> tuple[str, ...]:
        """Every kind with a heap: the worst kinds, then the typical ones met so far."""
        return tuple(self._heaps)

    def merge(self, others: Iterable[WorstExamples]) -> None:
        """Fold in the examples of other windows' partials (an event kept twice counts once)."""
        for other in others:
            for kind, heap in other._heaps.items():
                known = {e.event_id for e in self._heaps.get(kind, ())}
                for example in heap:
                    if example.event_id not in known:
                        self.offer_packed(
                            kind, example.rank, example.event_id, _given(example.packed)
                        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form: ``{kind: [[rank, event_id, base64 of the zlib-compressed JSON]]}``
        (compressed on the wire too: the merge side never recompresses). An event kept under
        several kinds shares one packed object: it is encoded once."""
        encoded: dict[int, str] = {}

        def text(packed: bytes) -> str:
            known = encoded.get(id(packed))
            if known is None:
                known = encoded[id(packed)] = base64.b64encode(packed).decode("ascii")
            return known

        return {
            kind: [[e.rank, e.event_id, text(e.packed)] for e in self.of(kind)]
            for kind in sorted(self._heaps)
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], k: int) -> WorstExamples:
        """The inverse of :meth:`to_dict`."""
        examples = cls(k)
        for kind in (*EXAMPLE_KINDS, *sorted(set(data) - set(EXAMPLE_KINDS))):
            for rank, event_id, packed in data.get(kind, []):
                # decoded only when not kept under another kind already (then it is shared)
                examples.offer_packed(kind, float(rank), str(event_id), _decoder(packed))
        return examples

    def __getstate__(self) -> dict[str, Any]:
        return {"k": self.k, "examples": self.to_dict()}

    def __setstate__(self, state: dict[str, Any]) -> None:
        restored = WorstExamples.from_dict(state["examples"], state["k"])
        self.k = restored.k
        self._heaps = restored._heaps

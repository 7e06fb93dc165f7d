"""Window aggregates: what one source saw of one cohort in one window, and their merge.

A :class:`Partial` is cumulative for its (source, cohort, window): the map side adds every
observation of the window to it and re-sends the whole partial, which *replaces* the earlier
version on the merge side (see :mod:`driftnet.detectors.windowing.merge`); replays and rebalances stay idempotent.
Merging the latest partial of every source gives the window's aggregate (a Partial whose source
is :data:`MERGED`), which is what the detectors read.

>>> from driftnet.detectors.windowing.observation import Observation
>>> from driftnet.detectors.windowing.windows import Window
>>> cohort = ("chat", "production", "r1", "baseline")
>>> p = Partial.empty(cohort, Window(0, 60), source="events/0")
>>> p.add(Observation("e1", 1.0, cohort, latency_ms=800.0, input_tokens=100))
>>> p.add(Observation("e2", 2.0, cohort, latency_ms=1200.0, is_error=True))
>>> p.count, p.errors, round(p.latency.quantile(1.0))
(2, 1, 1213)
>>> Partial.from_dict(p.to_dict()).to_dict() == p.to_dict()
True
"""

from __future__ import annotations

import bisect
import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from driftnet.detectors.settings import AggregateSettings, PriceTable
from driftnet.detectors.windowing.observation import (
    BUILTIN_CATEGORICAL,
    NUMERIC_FEATURES,
    Cohort,
    Observation,
)
from driftnet.detectors.windowing.samples import (
    EXAMPLE_KINDS,
    Reservoir,
    WorstExamples,
    typical_kind,
    uniform_rank,
)
from driftnet.detectors.windowing.score_stats import ScoreStats
from driftnet.detectors.windowing.sketch import Sketch
from driftnet.detectors.windowing.texts import TextSample
from driftnet.detectors.windowing.windows import Window

FORMAT_VERSION: Final = 1
MERGED: Final = "*"
"""The source of a merged aggregate."""

SKETCHED: Final = ("latency_ms", "ttft_ms", "input_tokens", "output_tokens", "cost_usd")

_COUNTERS: Final = (
    "count",
    "late",
    "errors",
    "refusals",
    "empties",
    "truncations",
    "invalid_json",
    "with_content",
    "with_output_size",
    "rated",
    "negative_feedback",
    "priced",
    "unpriced",
)
_ANSWERED_COUNTERS: Final = ("with_content", "with_output_size")
"""Counters a partial written before they existed lacks: read as every answered event (what
the rates were over then)."""
_SUMS: Final = ("input_tokens_sum", "output_tokens_sum", "cost_sum")


@dataclass(slots=True)
class Partial:
    """Counts, sums, sketches and bounded samples of one cohort's window, from one source."""

    cohort: Cohort
    window: Window
    source: str
    settings: AggregateSettings
    categorical: tuple[str, ...]
    """Categorical columns of the reservoir: the built-in ones, then ``settings.attributes``."""
    count: int = 0
    late: int = 0
    """Events that arrived after this window had closed for their source (counted, not added)."""
    errors: int = 0
    refusals: int = 0
    empties: int = 0
    truncations: int = 0
    invalid_json: int = 0
    with_content: int = 0
    """Answered events (status ok) whose content was captured: the denominator of the refusal
    and invalid-JSON rates (absent is not empty: without content they are unmeasured)."""
    with_output_size: int = 0
    """Answered events whose output size is known (content, or an output token count): the
    denominator of the empty-output rate."""
    rated: int = 0
    """Events with a feedback rating."""
    negative_feedback: int = 0
    priced: int = 0
    """Events without ``cost_usd`` that the price table priced."""
    unpriced: int = 0
    """Events whose cost is unknown (no ``cost_usd`` and not in the price table)."""
    price_table_version: str | None = None
    input_tokens_sum: float = 0.0
    output_tokens_sum: float = 0.0
    cost_sum: float = 0.0
    scores: dict[str, ScoreStats] = field(default_factory=dict)
    sketches: dict[str, Sketch] = field(default_factory=dict)
    by_input_size: list[list[float]] = field(default_factory=list)
    """Per input-token bucket: ``[events, latency sum]`` (edges in ``settings``)."""
    reservoir: Reservoir = field(default_factory=lambda: Reservoir(1, ""))
    examples: WorstExamples = field(default_factory=lambda: WorstExamples(0))
    texts: TextSample = field(default_factory=lambda: TextSample(0))
    """What a uniform sample of the window's calls asked and answered (text drift)."""

    @classmethod
    def empty(
        cls,
        cohort: Cohort,
        window: Window,
        source: str,
        settings: AggregateSettings | None = None,
    ) -> Partial:
        """A partial with nothing in it yet (also: a window in which a cohort sent nothing)."""
        settings = settings or AggregateSettings()
        return cls(
            cohort=cohort,
            window=window,
            source=source,
            settings=settings,
            categorical=(
                BUILTIN_CATEGORICAL + settings.attributes if settings.attributes else _BUILTIN_ONLY
            ),
            sketches={name: Sketch(settings.sketch_relative_accuracy) for name in SKETCHED},
            by_input_size=[[0, 0.0] for _ in range(len(settings.input_size_buckets) + 1)],
            reservoir=Reservoir(
                settings.reservoir_size,
                _reservoir_seed(cohort, window, source),
                len(NUMERIC_FEATURES),
            ),
            examples=WorstExamples(settings.top_k),
            texts=TextSample(settings.text_samples),
        )

    @property
    def answered(self) -> int:
        """Events that did not fail (status ok)."""
        return self.count - self.errors

    @property
    def uncaptured(self) -> int:
        """Answered events whose content was not captured."""
        return self.count - self.errors - self.with_content

    @property
    def latency(self) -> Sketch:
        return self.sketches["latency_ms"]

    @property
    def ttft(self) -> Sketch:
        return self.sketches["ttft_ms"]

    def add(self, obs: Observation, prices: PriceTable | None = None) -> None:
        """Count one on-time observation. Its cost is priced from ``prices`` when it has none."""
        # On the hot path (once per event): fields are read once and the loops over feature
        # names are written out, in the orders of SKETCHED and NUMERIC_FEATURES.
        self.count += 1
        self.errors += obs.is_error
        self.refusals += obs.refusal
        self.empties += obs.empty
        self.truncations += obs.truncated
        self.invalid_json += obs.invalid_json
        if not obs.is_error:
            self.with_content += obs.has_content
            self.with_output_size += obs.output_size_known
        if obs.feedback_rating is not None:
            self.rated += 1
            self.negative_feedback += obs.negative_feedback
        cost = obs.cost_usd
        if cost is None:
            cost = prices.price(obs.model, obs.input_tokens, obs.output_tokens) if prices else None
            if cost is None:
                self.unpriced += 1
            else:
                self.priced += 1
                self.price_table_version = prices.version if prices else None
        latency_ms = obs.latency_ms
        latency = None if latency_ms is None else float(latency_ms)
        ttft = None if obs.ttft_ms is None else float(obs.ttft_ms)
        input_tokens = obs.input_tokens
        output_tokens = obs.output_tokens
        inputs = None if input_tokens is None else float(input_tokens)
        outputs = None if output_tokens is None else float(output_tokens)
        sketches = self.sketches
        if latency is not None:
            sketches["latency_ms"].add(latency)
        if ttft is not None:
            sketches["ttft_ms"].add(ttft)
        if inputs is not None:
            sketches["input_tokens"].add(inputs)
        if outputs is not None:
            sketches["output_tokens"].add(outputs)
        if cost is not None:
            sketches["cost_usd"].add(cost)
        self.input_tokens_sum += input_tokens or 0
        self.output_tokens_sum += output_tokens or 0
        self.cost_sum += cost or 0.0
        if obs.scores:
            scores = self.scores
            for name, value in obs.scores.items():
                stats = scores.get(name)
                if stats is None:
                    stats = scores[name] = ScoreStats()
                stats.n += 1
                stats.total += value
                stats.squares += value * value
        for name in obs.score_breaches:
            self.scores.setdefault(name, ScoreStats()).breaches += 1
        settings = self.settings
        size_bucket = (
            None
            if input_tokens is None
            else bisect.bisect_right(settings.input_size_buckets, input_tokens)
        )
        if size_bucket is not None and latency_ms is not None:
            bucket = self.by_input_size[size_bucket]
            bucket[0] += 1
            bucket[1] += latency_ms
        chars = None if obs.input_chars is None else float(obs.input_chars)
        numeric = (latency, ttft, inputs, outputs, chars, cost)  # NUMERIC_FEATURES
        if self.categorical is _BUILTIN_ONLY:
            labels: tuple[str | None, ...] = (obs.finish_reason, obs.response_model)
        else:
            labels = tuple(obs.categorical(c) for c in self.categorical)
        self.reservoir.add((numeric, labels))
        rank = None
        if obs.texts is not None and settings.text_samples:
            rank = uniform_rank(obs.event_id)
            self.texts.offer(rank, obs.event_id, obs.texts)
        if settings.top_k:
            examples, event_id, raw = self.examples, obs.event_id, obs.raw
            if size_bucket is not None and settings.typical_examples:
                rank = uniform_rank(event_id) if rank is None else rank
                examples.offer(typical_kind(size_bucket), rank, event_id, raw)
            if latency_ms is not None:
                examples.offer("slowest", latency_ms, event_id, raw)
            if cost is not None:
                examples.offer("costliest", cost, event_id, raw)
            if obs.failed:
                badness = (
                    obs.is_error
                    + obs.refusal
                    + obs.empty
                    + obs.truncated
                    + obs.invalid_json
                    + obs.negative_feedback
                    + len(obs.score_breaches)
                )
                examples.offer("failed", float(badness), event_id, raw)

    def count_late(self, n: int = 1) -> None:
        """Count events that arrived after the window closed (reported, never silently dropped)."""
        self.late += n

    @classmethod
    def merge(cls, parts: Sequence[Partial], source: str = MERGED) -> Partial:
        """The aggregate of several partials of the same cohort and window (any order)."""
        if not parts:
            raise ValueError("nothing to merge")
        first = parts[0]
        for part in parts:
            if (part.cohort, part.window) != (first.cohort, first.window):
                raise ValueError(
                    f"cannot merge {part.cohort}{part.window} into {first.cohort}{first.window}"
                )
        ordered = sorted(parts, key=lambda p: p.source)
        merged = cls.empty(first.cohort, first.window, source, first.settings)
        for part in ordered:
            for name in (*_COUNTERS, *_SUMS):
                setattr(merged, name, getattr(merged, name) + getattr(part, name))
            merged.price_table_version = part.price_table_version or merged.price_table_version
            for name, stats in part.scores.items():
                merged.scores.setdefault(name, ScoreStats()).merge(stats)
            for name, sketch in part.sketches.items():
                merged.sketches[name].merge(sketch)
            for mine, theirs in zip(merged.by_input_size, part.by_input_size, strict=True):
                mine[0] += theirs[0]
                mine[1] += theirs[1]
        merged.reservoir = Reservoir.merged(
            [p.reservoir for p in ordered],
            first.settings.reservoir_size,
            _reservoir_seed(first.cohort, first.window, source),
        )
        merged.examples.merge(p.examples for p in ordered)
        merged.texts.merge(p.texts for p in ordered)
        return merged

    def numeric_column(self, name: str) -> list[float]:
        """The sampled values of one numeric feature (missing ones left out)."""
        values: list[float] = self.reservoir.numeric_column(NUMERIC_FEATURES.index(name)).tolist()
        return values

    def categorical_column(self, name: str) -> list[str]:
        """The sampled values of one categorical feature (missing ones left out)."""
        index = self.categorical.index(name)
        return [v for v in (row[index] for row in self.reservoir.categorical) if v is not None]

    def example_ids(self, kind: str, limit: int = 5) -> tuple[str, ...]:
        """Ids of the worst examples of ``kind`` (``slowest``, ``costliest``, ``failed``,
        ``typical.N``)."""
        return tuple(e.event_id for e in self.examples.of(kind)[:limit])

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form, the value of a ``driftnet.aggregates`` message."""
        return {
            "format": FORMAT_VERSION,
            "cohort": list(self.cohort),
            "window": [self.window.start, self.window.end],
            "source": self.source,
            "settings": self.settings.model_dump(mode="json"),
            **{name: getattr(self, name) for name in (*_COUNTERS, *_SUMS)},
            "price_table_version": self.price_table_version,
            "scores": {
                name: [s.n, s.total, s.squares, s.breaches]
                for name, s in sorted(self.scores.items())
            },
            "sketches": {name: sketch.to_dict() for name, sketch in self.sketches.items()},
            "by_input_size": self.by_input_size,
            "reservoir": self.reservoir.to_dict(),
            "examples": self.examples.to_dict(),
            "texts": self.texts.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Partial:
        """The inverse of :meth:`to_dict`; refuses a format it does not know."""
        if data.get("format") != FORMAT_VERSION:
            raise ValueError(f"unsupported partial format {data.get('format')!r}")
        settings = _aggregate_settings(json.dumps(data["settings"], sort_keys=True))
        cohort = tuple(str(part) for part in data["cohort"])
        if len(cohort) != 4:
            raise ValueError(f"a cohort has 4 parts, got {cohort!r}")
        partial = cls.empty(
            (cohort[0], cohort[1], cohort[2], cohort[3]),
            Window(*data["window"]),
            str(data["source"]),
            settings,
        )
        for name in _COUNTERS:
            if name in data or name not in _ANSWERED_COUNTERS:
                setattr(partial, name, int(data[name]))
        for name in _ANSWERED_COUNTERS:
            if name not in data:
                setattr(partial, name, partial.answered)
        for name in _SUMS:
            setattr(partial, name, float(data[name]))
        partial.price_table_version = data["price_table_version"]
        partial.scores = {
            name: ScoreStats(int(n), float(t), float(s), int(b))
            for name, (n, t, s, b) in data["scores"].items()
        }
        partial.sketches = {name: Sketch.from_dict(d) for name, d in data["sketches"].items()}
        partial.by_input_size = [[int(n), float(s)] for n, s in data["by_input_size"]]
        partial.reservoir = Reservoir.from_dict(
            data["reservoir"], settings.reservoir_size, len(NUMERIC_FEATURES)
        )
        partial.examples = WorstExamples.from_dict(data["examples"], settings.top_k)
        # a partial from before texts were sampled has none
        partial.texts = TextSample.from_dict(data.get("texts", ()), settings.text_samples)
        return partial


@functools.lru_cache(maxsize=64)
def _aggregate_settings(text: str) -> AggregateSettings:
    """Partials of every cohort carry the same settings: one object for all of them."""
    return AggregateSettings.model_validate_json(text)


_BUILTIN_ONLY: Final = BUILTIN_CATEGORICAL
"""The categorical columns of a partial without chosen attributes (the same tuple object)."""


def _reservoir_seed(cohort: Cohort, window: Window, source: str) -> str:
    """The sample's seed: its cohort, window and partition, not the topic's name (a source is
    ``<events topic>/<partition>``), so the same events sample alike wherever they are read:
    two deployments of one stream, or a stream and its OpenTelemetry copy, raise the same
    findings."""
    return f"{'/'.join(cohort)}@{window.start}#{source.rpartition('/')[2]}"


__all__ = ["EXAMPLE_KINDS", "FORMAT_VERSION", "MERGED", "Partial", "ScoreStats"]

"""Quality detectors: rates of bad outcomes and evaluation scores vs the reference.

A rate fires when it is at least ``min_delta`` (absolute) above the reference's pooled rate, a
one-sided Fisher exact test agrees (p below ``alpha``) and ``min_events`` bad events show it,
with at least ``min_samples`` events in the window and in the reference. Mean scores fire on a
drop of ``score_min_delta`` confirmed by a one-sided Welch test. The reference is the trailing
windows and, summed, the hour or two before them (:mod:`~driftnet.detectors.families.pooled`).

>>> import random
>>> from driftnet.detectors.windowing.observation import Observation
>>> from driftnet.detectors.windowing.partials import Partial
>>> from driftnet.detectors.windowing.windows import Window
>>> rng, cohort = random.Random(5), ("chat", "production", "r1", "baseline")
>>> def window(i, error_rate):
...     p = Partial.empty(cohort, Window(60 * i, 60 * i + 60), "*")
...     for j in range(400):
...         p.add(Observation(f"e{i}-{j}", 60.0 * i, cohort, is_error=rng.random() < error_rate))
...     return p
>>> detector = Rate("error_rate")
>>> [detector.update(window(i, 0.02)).drift_detected for i in range(4)]
[False, False, False, False]
>>> detector.update(window(4, 0.09)).findings[0].metric
'error_rate'
"""

from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from driftnet.detectors.families.pooled import PooledPast
from driftnet.detectors.families.snapshot import as_float, as_int, as_list, as_mapping
from driftnet.detectors.finding import Finding, ReferenceKind
from driftnet.detectors.settings import DetectorSettings
from driftnet.detectors.stats import mean_decrease_p, proportion_increase_p
from driftnet.detectors.windowing.partials import Partial

RateName = Literal[
    "error_rate",
    "refusal_rate",
    "empty_rate",
    "truncated_rate",
    "invalid_json_rate",
    "negative_feedback_rate",
    "uncaptured_rate",
]
_COUNTERS: Final[dict[str, tuple[str, str]]] = {
    # rate: (hits counter, denominator counter) of Partial. The content-based rates are over
    # the answered events whose content (or, for empties, output size) is known: absent is
    # not empty, and a window without content leaves them unmeasured instead of at zero.
    "error_rate": ("errors", "count"),
    "refusal_rate": ("refusals", "with_content"),
    "empty_rate": ("empties", "with_output_size"),
    "truncated_rate": ("truncations", "count"),
    "invalid_json_rate": ("invalid_json", "with_content"),
    "negative_feedback_rate": ("negative_feedback", "rated"),
    # answers whose content was not captured: a producer that stops sending content blinds the
    # content-based rates, and on-call hears of it instead of seeing them go quiet
    "uncaptured_rate": ("uncaptured", "answered"),
}


def _rate_finding(
    detector: Rate | ScoreBreaches,
    window: Partial,
    metric: str,
    counts: tuple[int, int],
    reference: tuple[int, int],
    kind: ReferenceKind,
) -> list[Finding]:
    settings = detector.settings.quality
    (hits, n), (ref_hits, ref_n) = counts, reference
    if min(n, ref_n) < settings.min_samples:
        return []
    rate, before = hits / n, ref_hits / ref_n
    if rate - before < settings.min_delta or hits < settings.min_events:
        return []
    p = proportion_increase_p(hits, n, ref_hits, ref_n)
    if p >= settings.alpha:
        return []
    return [
        detector.finding(
            window,
            metric=metric,
            observed=rate,
            reference=before,
            kind=kind,
            threshold=before + settings.min_delta,
            effect_size=rate - before,
            p_value=p,
            message=(
                f"{metric} {rate:.1%} vs {before:.1%} in the {kind} reference "
                f"({(rate - before) * 100:+.1f} points, p={p:.1e}, {hits}/{n} events)"
            ),
            example_kind="failed",
        )
    ]


class Rate(PooledPast[tuple[int, int]]):
    """One rate of bad outcomes: errors, refusals, empty, truncated or invalid-JSON outputs,
    answers without captured content (per event), or negative feedback (per rated event)."""

    __slots__ = ("name", "rate")

    def __init__(
        self, rate: RateName = "error_rate", settings: DetectorSettings | None = None
    ) -> None:
        if rate not in _COUNTERS:
            raise ValueError(f"rate must be one of {sorted(_COUNTERS)}, got {rate!r}")
        self.rate: RateName = rate
        self.name = f"quality.{rate}.v1"
        super().__init__(settings)

    def summarize(self, window: Partial) -> tuple[int, int]:
        hits, total = _COUNTERS[self.rate]
        return int(getattr(window, hits)), int(getattr(window, total))

    def encode_summary(self, summary: tuple[int, int]) -> Any:
        return list(summary)

    def decode_summary(self, data: Any) -> tuple[int, int]:
        hits, total = as_list(data, 2)
        return as_int(hits), as_int(total)

    def pool(self, earlier: tuple[int, int], later: tuple[int, int]) -> tuple[int, int]:
        return earlier[0] + later[0], earlier[1] + later[1]

    def combine(self, earlier: tuple[int, int], later: tuple[int, int]) -> tuple[int, int] | None:
        if later[1] < self.settings.quality.min_samples:
            return None  # a window too thin to judge alone is not judged through its neighbour
        return earlier[0] + later[0], earlier[1] + later[1]

    def judge(
        self,
        window: Partial,
        current: tuple[int, int],
        reference: Sequence[tuple[int, int]],
        kind: ReferenceKind,
    ) -> list[Finding]:
        pooled = (sum(h for h, _ in reference), sum(n for _, n in reference))
        return _rate_finding(self, window, self.rate, current, pooled, kind)


@dataclass(frozen=True, slots=True)
class _Score:
    n: int
    total: float
    squares: float
    breaches: int


def _scores(window: Partial) -> dict[str, _Score]:
    return {name: _Score(s.n, s.total, s.squares, s.breaches) for name, s in window.scores.items()}


def _combine(
    earlier: dict[str, _Score], later: dict[str, _Score], min_samples: int
) -> dict[str, _Score]:
    """Scores of two windows pooled, for the scores the later window has enough of alone."""
    return {name: _pool([earlier, later], name) for name, s in later.items() if s.n >= min_samples}


def _pool(reference: Sequence[dict[str, _Score]], name: str) -> _Score:
    parts = [r[name] for r in reference if name in r]
    return _Score(
        sum(p.n for p in parts),
        sum(p.total for p in parts),
        sum(p.squares for p in parts),
        sum(p.breaches for p in parts),
    )


class _PerScore(PooledPast[dict[str, _Score]]):
    """A detector of each evaluation score: a window's summary is its scores' running sums,
    which add up over windows."""

    __slots__ = ()

    def __init__(self, settings: DetectorSettings | None = None) -> None:
        super().__init__(settings)

    def summarize(self, window: Partial) -> dict[str, _Score]:
        return _scores(window)

    def encode_summary(self, summary: dict[str, _Score]) -> Any:
        return {name: [s.n, s.total, s.squares, s.breaches] for name, s in summary.items()}

    def decode_summary(self, data: Any) -> dict[str, _Score]:
        scores = {}
        for name, value in as_mapping(data).items():
            n, total, squares, breaches = as_list(value, 4)
            scores[name] = _Score(as_int(n), as_float(total), as_float(squares), as_int(breaches))
        return scores

    def pool(self, earlier: dict[str, _Score], later: dict[str, _Score]) -> dict[str, _Score]:
        return {name: _pool([earlier, later], name) for name in {**earlier, **later}}

    def combine(self, earlier: dict[str, _Score], later: dict[str, _Score]) -> dict[str, _Score]:
        return _combine(earlier, later, self.settings.quality.min_samples)

    def judge(
        self,
        window: Partial,
        current: dict[str, _Score],
        reference: Sequence[dict[str, _Score]],
        kind: ReferenceKind,
    ) -> list[Finding]:
        found: list[Finding] = []
        for name, score in sorted(current.items()):
            found += self.judge_score(window, name, score, _pool(reference, name), kind)
        return found

    @abstractmethod
    def judge_score(
        self, window: Partial, name: str, score: _Score, reference: _Score, kind: ReferenceKind
    ) -> list[Finding]:
        """Findings of one score in the window against the same score pooled over the
        reference."""


class ScoreBreaches(_PerScore):
    """Share of scored events beyond their configured threshold, per score."""

    __slots__ = ()

    name = "quality.score_breach_rate.v1"

    def judge_score(
        self, window: Partial, name: str, score: _Score, reference: _Score, kind: ReferenceKind
    ) -> list[Finding]:
        return _rate_finding(
            self,
            window,
            f"score_breach_rate[{name}]",
            (score.breaches, score.n),
            (reference.breaches, reference.n),
            kind,
        )


def _variance(score: _Score) -> float:
    if score.n < 2:
        return 0.0
    mean = score.total / score.n
    return max(score.squares / score.n - mean * mean, 0.0) * score.n / (score.n - 1)


class ScoreMean(_PerScore):
    """Mean of each evaluation score vs the reference (a drop is the regression; scores where
    lower is better are judged by their breach rate instead)."""

    __slots__ = ()

    name = "quality.score_mean.v1"

    def judge_score(
        self, window: Partial, name: str, score: _Score, reference: _Score, kind: ReferenceKind
    ) -> list[Finding]:
        settings = self.settings.quality
        if min(score.n, reference.n) < settings.min_samples:
            return []
        mean, before = score.total / score.n, reference.total / reference.n
        if before - mean < settings.score_min_delta:
            return []
        p = mean_decrease_p(
            score.n, mean, _variance(score), reference.n, before, _variance(reference)
        )
        if p >= settings.alpha:
            return []
        spread = math.sqrt(_variance(reference)) or 1.0
        return [
            self.finding(
                window,
                metric=f"score_mean[{name}]",
                observed=mean,
                reference=before,
                kind=kind,
                threshold=before - settings.score_min_delta,
                effect_size=(mean - before) / spread,
                p_value=p,
                message=(
                    f"mean {name} {mean:.3f} vs {before:.3f} in the {kind} reference "
                    f"({(mean - before) / spread:+.2f} sd, p={p:.1e})"
                ),
                example_kind="failed",
            )
        ]

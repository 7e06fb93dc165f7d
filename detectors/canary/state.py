"""What a canary judge keeps between windows (arm totals, e-processes), and its JSON form."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final

from driftnet.detectors.canary.config import MetricSpec
from driftnet.detectors.canary.sequential import EFFECT_SIZES, KAPPAS, ODDS_RATIOS, EProcess
from driftnet.detectors.windowing.partials import Partial
from driftnet.detectors.windowing.score_stats import ScoreStats
from driftnet.detectors.windowing.sketch import Sketch

RECENT_WINDOWS: Final = 3
"""Paired windows whose pooled values are reported beside the cumulative ones: a change that
began late in a long rollout shows there first."""
RATE_TOTALS: Final = {"errors": "count", "refusals": "with_content", "negative_feedback": "rated"}
"""Each rate's denominator: refusals are counted among the answers whose content was captured
(absent is not empty: a canary that stops sending content leaves its refusal rate unmeasured,
Nodata, rather than at zero)."""
ARM_COUNTERS: Final = ("errors", "refusals", "with_content", "negative_feedback", "rated", "count")
"""The counters an arm keeps (and the baseline's counters from before a canary's start)."""


@dataclass(slots=True)
class Arm:
    """What one arm has shown since the canary's first paired window."""

    requests: int = 0
    counters: dict[str, int] = field(default_factory=dict)
    sketches: dict[str, Sketch] = field(default_factory=dict)
    sums: dict[str, float] = field(default_factory=dict)
    scores: dict[str, ScoreStats] = field(default_factory=dict)

    def add(self, window: Partial) -> None:
        self.requests += window.count
        for name in ARM_COUNTERS:
            self.counters[name] = self.counters.get(name, 0) + getattr(window, name)
        for name, sketch in window.sketches.items():
            mine = self.sketches.get(name)
            if mine is None:
                mine = self.sketches[name] = Sketch(sketch.relative_accuracy)
            mine.merge(sketch)
        for name, total in window_sums(window).items():
            self.sums[name] = self.sums.get(name, 0.0) + total
        for name, stats in window.scores.items():
            self.scores.setdefault(name, ScoreStats()).merge(stats)

    @classmethod
    def pooled(cls, arms: Iterable[Arm]) -> Arm:
        """One arm holding everything ``arms`` hold."""
        total = cls()
        for arm in arms:
            total.requests += arm.requests
            for name, count in arm.counters.items():
                total.counters[name] = total.counters.get(name, 0) + count
            for name, sketch in arm.sketches.items():
                mine = total.sketches.get(name)
                if mine is None:
                    mine = total.sketches[name] = Sketch(sketch.relative_accuracy)
                mine.merge(sketch)
            for name, value in arm.sums.items():
                total.sums[name] = total.sums.get(name, 0.0) + value
            for name, stats in arm.scores.items():
                total.scores.setdefault(name, ScoreStats()).merge(stats)
        return total

    def to_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "counters": self.counters,
            "sketches": {name: sketch.to_dict() for name, sketch in self.sketches.items()},
            "sums": self.sums,
            "scores": {n: [s.n, s.total, s.squares, s.breaches] for n, s in self.scores.items()},
        }

    @property
    def content_share(self) -> float | None:
        """The share of this arm's answers whose content was captured (None: no answers)."""
        answered = self.counters.get("count", 0) - self.counters.get("errors", 0)
        return self.counters.get("with_content", 0) / answered if answered > 0 else None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Arm:
        return cls(
            requests=int(data["requests"]),
            counters=with_content({str(k): int(v) for k, v in data["counters"].items()}),
            sketches={str(k): Sketch.from_dict(v) for k, v in data["sketches"].items()},
            sums={str(k): float(v) for k, v in data["sums"].items()},
            scores={
                str(k): ScoreStats(int(n), float(t), float(q), int(b))
                for k, (n, t, q, b) in data["scores"].items()
            },
        )


def window_sums(window: Partial) -> dict[str, float]:
    """The sums a window gives the mean-valued metrics (cost and tokens per request)."""
    return {
        "cost_usd": window.cost_sum,
        "input_tokens": window.input_tokens_sum,
        "output_tokens": window.output_tokens_sum,
    }


@dataclass(slots=True)
class Sides:
    """One metric's evidence: an e-process per side (up: an increase, down: a decrease)."""

    up: EProcess
    down: EProcess
    statistic: float | None = None
    """Drift only: the window's largest statistic."""
    batch: tuple[ScoreStats, ScoreStats] | None = None
    """Scores only: what the windows since the last test brought, per arm."""

    def to_list(self) -> list[Any]:
        batch = None if self.batch is None else [
            [b.n, b.total, b.squares, b.breaches] for b in self.batch
        ]  # fmt: skip
        return [self.up.to_list(), self.down.to_list(), self.statistic, batch]

    @classmethod
    def from_list(cls, data: list[Any], size: int) -> Sides:
        up, down = EProcess.from_list(data[0]), EProcess.from_list(data[1])
        if up.alternatives != size or down.alternatives != size:
            raise ValueError(f"{up.alternatives} alternatives, expected {size}")
        batch = None
        if data[3] is not None:
            c, b = (ScoreStats(int(n), float(t), float(q), int(r)) for n, t, q, r in data[3])
            batch = (c, b)
        return cls(up, down, None if data[2] is None else float(data[2]), batch)


def alternatives(spec: MetricSpec) -> int:
    """How many alternatives a metric's e-processes mix (the grid of its kind of test)."""
    if spec.test == "drift":
        return len(KAPPAS)
    if spec.test == "score":
        return len(EFFECT_SIZES)
    return len(ODDS_RATIOS)


def with_content(counters: dict[str, int]) -> dict[str, int]:
    """Counters saved before ``with_content`` existed: every answer had its content counted."""
    if "with_content" not in counters and "count" in counters:
        counters["with_content"] = counters["count"] - counters.get("errors", 0)
    return counters

"""One evaluation score's running statistics in a window's partial."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class ScoreStats:
    """Count, sum and sum of squares of one evaluation score, and how often it breached."""

    n: int = 0
    total: float = 0.0
    squares: float = 0.0
    breaches: int = 0

    @property
    def mean(self) -> float | None:
        return self.total / self.n if self.n else None

    def merge(self, other: ScoreStats) -> None:
        self.n += other.n
        self.total += other.total
        self.squares += other.squares
        self.breaches += other.breaches

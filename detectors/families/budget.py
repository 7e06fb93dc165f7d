"""A CPU budget for the evidently tier: which full drift checks run, and when. Pure.

The caller runs :func:`driftnet.detectors.families.drift_report.full_drift_check` in a separate process; this
decides what to send it. A token bucket accrues ``share`` of a core per wall-clock second (0.1:
10% of a core) up to ``burst_s``; a check may start while the bucket is positive and its
measured CPU time is charged afterwards. Checks the cheap tier asked for (something moved) go
before cadence checks; when too many wait, the oldest cadence checks are dropped and counted.

>>> queue = FullCheckQueue(share=0.1, burst_s=1.0)
>>> queue.push("moved", triggered=True)
>>> queue.push("routine", triggered=False)
>>> queue.next(now=0.0)
'moved'
>>> queue.charge(cpu_s=1.5, now=0.0)  # the check took 1.5 s of CPU: the bucket is overdrawn
>>> queue.next(now=1.0) is None, queue.next(now=6.0)
(True, 'routine')
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(slots=True)
class FullCheckQueue(Generic[T]):
    """Pending full checks, released within a CPU budget."""

    share: float = 0.1
    """Fraction of one core the checks may use on average."""
    burst_s: float = 30.0
    """CPU seconds that may be spent at once after a quiet spell."""
    max_pending: int = 10_000
    dropped: int = 0
    """Cadence checks dropped because too many were waiting."""
    _triggered: deque[T] = field(default_factory=deque)
    _cadence: deque[T] = field(default_factory=deque)
    _tokens: float | None = None
    _at: float = 0.0

    def push(self, request: T, *, triggered: bool) -> None:
        """Queue a check; ``triggered`` when the cheap tier moved (it goes first)."""
        (self._triggered if triggered else self._cadence).append(request)
        while len(self._triggered) + len(self._cadence) > self.max_pending and self._cadence:
            self._cadence.popleft()
            self.dropped += 1

    def _refill(self, now: float) -> float:
        if self._tokens is None:
            self._tokens, self._at = self.burst_s, now
        self._tokens = min(self.burst_s, self._tokens + max(now - self._at, 0.0) * self.share)
        self._at = max(self._at, now)
        return self._tokens

    def next(self, now: float) -> T | None:
        """The next check to run now, or None (nothing waiting, or the budget is spent)."""
        if self._refill(now) <= 0:
            return None
        for waiting in (self._triggered, self._cadence):
            if waiting:
                return waiting.popleft()
        return None

    def charge(self, cpu_s: float, now: float) -> None:
        """Charge the CPU seconds a check took."""
        self._tokens = self._refill(now) - cpu_s

    @property
    def pending(self) -> int:
        return len(self._triggered) + len(self._cadence)

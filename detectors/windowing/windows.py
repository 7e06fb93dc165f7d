"""Event-time tumbling windows, watermarks and when a window may close. Pure: time is passed in.

A window is ``[start, end)`` in epoch seconds, aligned to multiples of its size. A source (one
partition on the map side, one map-side worker's partition on the merge side) has a watermark:
the largest event time it has shown, minus the allowed lateness. A window closes when the
watermark passes its end; the merge side uses the *minimum* over sources, so one slow source
holds windows open, but a source whose watermark has not moved for ``idle_timeout_s`` of wall
clock no longer counts (a quiet partition must not hold windows open forever), and when every
source is idle every open window closes (the last window of a quiet stream).

>>> spec = WindowSpec(size_s=60, allowed_lateness_s=10)
>>> spec.window_of(125.0)
Window(start=120, end=180)
>>> clock = Watermarks(spec)
>>> clock.advance("p0", event_time=185.0, now=1000.0)
>>> clock.watermark(now=1000.0)
175.0
>>> clock.closes(Window(60, 120), now=1000.0), clock.closes(Window(120, 180), now=1000.0)
(True, False)
>>> clock.closes(Window(120, 180), now=1031.0)  # every source idle for 30 s
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import NamedTuple


class Window(NamedTuple):
    """``[start, end)`` in whole epoch seconds."""

    start: int
    end: int

    def __str__(self) -> str:
        return f"[{self.start}, {self.end})"


@dataclass(frozen=True, slots=True)
class WindowSpec:
    """Tumbling windows of ``size_s`` seconds; events up to ``allowed_lateness_s`` late are
    still on time; ``idle_timeout_s`` of wall clock without progress makes a source idle."""

    size_s: int = 60
    allowed_lateness_s: float = 10.0
    idle_timeout_s: float = 30.0

    def __post_init__(self) -> None:
        if self.size_s <= 0:
            raise ValueError(f"size_s must be positive, got {self.size_s}")
        if self.allowed_lateness_s < 0 or self.idle_timeout_s <= 0:
            raise ValueError("allowed_lateness_s must be >= 0 and idle_timeout_s > 0")

    def window_of(self, event_time: float) -> Window:
        """The window holding ``event_time``."""
        start = math.floor(event_time / self.size_s) * self.size_s
        return Window(start, start + self.size_s)

    def windows_between(self, first: Window, last: Window) -> list[Window]:
        """Every window from ``first`` to ``last``, both included."""
        return [
            Window(start, start + self.size_s)
            for start in range(first.start, last.start + 1, self.size_s)
        ]


class Assignment(NamedTuple):
    """Where an event goes: its window, and whether that window had already closed."""

    window: Window
    late: bool


@dataclass(slots=True)
class _Source:
    watermark: float
    moved_at: float
    """Wall-clock time the watermark last moved forward."""


@dataclass(slots=True)
class Watermarks:
    """Watermarks of several sources, and the close decision they imply.

    ``advance`` takes an event time (the watermark becomes ``max event time - lateness``);
    ``heartbeat`` takes a watermark a source reports (the map side sends its own, even when it
    has no new event, so the merge side hears from every partition).
    """

    spec: WindowSpec
    _sources: dict[str, _Source] = field(default_factory=dict)

    def advance(self, source: str, event_time: float, now: float) -> None:
        """``source`` showed an event at ``event_time`` (wall clock ``now``)."""
        self.heartbeat(source, event_time - self.spec.allowed_lateness_s, now)

    def heartbeat(self, source: str, watermark: float, now: float, alive: bool = False) -> None:
        """``source`` reports its watermark. Watermarks never go back. With ``alive``, a
        report that does not move it still proves the source is there: a partition replayed by
        its new owner after a takeover reports a lower watermark until it catches up, and must
        keep holding windows open meanwhile (else they close without its late partials)."""
        known = self._sources.get(source)
        if known is None:
            self._sources[source] = _Source(watermark, now)
        elif watermark > known.watermark:
            known.watermark = watermark
            known.moved_at = now
        elif alive:
            known.moved_at = now

    def expect(self, sources: list[str], now: float) -> None:
        """``sources`` will report: until one does (or is idle) it holds every window open."""
        for source in sources:
            self._sources.setdefault(source, _Source(-math.inf, now))

    def forget(self, source: str) -> None:
        """``source`` is gone (a partition revoked): it no longer holds windows open."""
        self._sources.pop(source, None)

    def pardon(self, seconds: float, now: float) -> None:
        """Take ``seconds`` of silence back from every source (never past ``now``): while the
        process was stalled nothing could be heard, which is not a source going idle."""
        for known in self._sources.values():
            known.moved_at = min(known.moved_at + seconds, now)

    def of(self, source: str) -> float | None:
        """The watermark of one source, None before it showed anything."""
        known = self._sources.get(source)
        return None if known is None else known.watermark

    def assign(self, source: str, event_time: float) -> Assignment:
        """The window of an event from ``source``; late when that window has closed for the
        source (its end is at or before the source's watermark). Call before ``advance``."""
        window = self.spec.window_of(event_time)
        mark = self.of(source)
        return Assignment(window, mark is not None and window.end <= mark)

    def all_idle(self, now: float) -> bool:
        """Whether no source moved for ``idle_timeout_s`` (true with no source at all)."""
        return all(now - s.moved_at >= self.spec.idle_timeout_s for s in self._sources.values())

    def watermark(self, now: float) -> float | None:
        """The minimum watermark over the sources that are not idle; None when all are."""
        active = [
            s.watermark
            for s in self._sources.values()
            if now - s.moved_at < self.spec.idle_timeout_s
        ]
        return min(active) if active else None

    def closes(self, window: Window, now: float) -> bool:
        """Whether ``window`` may close: the watermark passed its end, or every source is idle."""
        mark = self.watermark(now)
        if mark is None:
            return self.all_idle(now)
        return window.end <= mark

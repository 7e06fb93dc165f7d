"""The two stages of window aggregation, without Kafka: map side per partition, merge side.

Map side (:class:`PartitionWindows`, one per source partition): assigns each observation to
its window, keeps a cumulative :class:`Partial` per (cohort, window), says which partials to
send (all of them, each time: a partial *replaces* its earlier versions), which windows are
done, which offset is safe to commit (never past the oldest open window), and the watermark
to send as a heartbeat, which moves with the wall clock once the partition is quiet.

Merge side (:class:`WindowMerge`): keeps the latest partial per source for each (cohort,
window), closes windows on the minimum watermark over the sources, and yields each closed
window's merged aggregate, including an empty one for a known cohort that sent nothing (a
cohort that stops sending is a finding, not silence).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from driftnet.detectors.settings import AggregateSettings, PriceTable
from driftnet.detectors.windowing.observation import Cohort, Observation
from driftnet.detectors.windowing.partials import Partial
from driftnet.detectors.windowing.windows import Watermarks, Window, WindowSpec


@dataclass(slots=True)
class _Open:
    partial: Partial
    first_offset: int | None


@dataclass(slots=True)
class PartitionWindows:
    """Map side of one source partition. Late events are counted in the partial of the
    cohort's oldest open window (or a new one for the current window), never dropped."""

    source: str
    spec: WindowSpec
    settings: AggregateSettings = field(default_factory=AggregateSettings)
    prices: PriceTable | None = None
    late_events: int = 0
    _open: dict[tuple[Cohort, Window], _Open] = field(default_factory=dict)
    _clock: Watermarks = field(init=False)

    def __post_init__(self) -> None:
        self._clock = Watermarks(self.spec)

    def add(self, obs: Observation, now: float, offset: int | None = None) -> bool:
        """Aggregate one observation read at ``offset``; False when it was late."""
        window, late = self._clock.assign(self.source, obs.event_time)
        if late:
            self.late_events += 1
            mark = self._clock.of(self.source) or obs.event_time
            target = min(
                (w for c, w in self._open if c == obs.cohort),
                default=self.spec.window_of(mark + self.spec.allowed_lateness_s),
            )
            self._partial(obs.cohort, target, offset).count_late()
            return False
        self._partial(obs.cohort, window, offset).add(obs, self.prices)
        self._clock.advance(self.source, obs.event_time, now)
        return True

    def _partial(self, cohort: Cohort, window: Window, offset: int | None) -> Partial:
        entry = self._open.get((cohort, window))
        if entry is None:
            entry = _Open(Partial.empty(cohort, window, self.source, self.settings), offset)
            self._open[(cohort, window)] = entry
        return entry.partial

    def open_partials(self) -> list[Partial]:
        """Every open partial, to (re)send: each replaces its earlier version downstream."""
        return [entry.partial for entry in self._open.values()]

    def watermark(self, now: float) -> float | None:
        """The heartbeat to send: event-time watermark, or, once the partition has been quiet
        for ``idle_timeout_s``, the wall clock minus lateness and timeout (so a quiet partition
        lets windows close downstream and silent cohorts are reported)."""
        mark = self._clock.of(self.source)
        if self._clock.all_idle(now):
            wall = now - self.spec.allowed_lateness_s - self.spec.idle_timeout_s
            return wall if mark is None else max(mark, wall)
        return mark

    def close_due(self, now: float) -> list[Partial]:
        """Remove and return the partials whose window is done for this partition (send them
        one last time; their offsets may then be committed)."""
        mark = self.watermark(now)
        done = [key for key in self._open if mark is not None and key[1].end <= mark]
        return [self._open.pop(key).partial for key in done]

    def pardon(self, seconds: float, now: float) -> None:
        """The process was stalled for ``seconds``: not idle time (:meth:`Watermarks.pardon`)."""
        self._clock.pardon(seconds, now)

    def safe_offset(self) -> int | None:
        """The smallest offset that still feeds an open window: commit below it, never past.
        None when no open window has an offset (commit what has been read)."""
        offsets = [e.first_offset for e in self._open.values() if e.first_offset is not None]
        return min(offsets) if offsets else None


@dataclass(slots=True)
class _Late:
    """Partials of one cohort refused as late, to report on its next closed window."""

    count: int
    at: int
    """``_closed_until`` when the latest of them came (the merge's clock, in closed windows)."""


@dataclass(frozen=True, slots=True)
class ClosedWindow:
    """One cohort's window, closed: the merged aggregate the detectors read."""

    cohort: Cohort
    window: Window
    aggregate: Partial
    sources: int
    """How many sources contributed (0: the cohort sent nothing in this window)."""
    late_partials: int
    """Partials of this cohort that came after their window had closed (and were not merged)."""


@dataclass(slots=True)
class WindowMerge:
    """Merge side: latest partial per source per (cohort, window); close on the watermark."""

    spec: WindowSpec
    settings: AggregateSettings = field(default_factory=AggregateSettings)
    forget_after_windows: int = 60
    _partials: dict[tuple[Cohort, Window], dict[str, Partial]] = field(default_factory=dict)
    _clock: Watermarks = field(init=False)
    _closed_until: int | None = None
    """End of the last window closed; partials for windows ending at or before it are late."""
    forgotten_late: int = 0
    """Late partials no closed window will report: their cohort closed no window in the
    ``forget_after_windows`` windows after they came (see :meth:`_forget_late`)."""
    _last_seen: dict[Cohort, int] = field(default_factory=dict)
    """Start of each known cohort's latest window with data."""
    _late: dict[Cohort, _Late] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._clock = Watermarks(self.spec)

    def offer(self, partial: Partial) -> bool:
        """Take a partial; it replaces the same source's earlier version unless it holds fewer
        events. False (and counted) when its window has already closed.

        A source's partials only grow while one owner reads its partition, so a smaller one
        can only come from a replay that started inside the window: a new owner resumes at
        the oldest offset still feeding a window *open on the map side*, and a window the dead
        owner had already finished (its last partial sent, its offsets committed) but that
        had not closed here yet is replayed from there on, without its first events. The
        bigger partial is the truer one."""
        if self._closed_until is not None and partial.window.end <= self._closed_until:
            late = self._late.setdefault(partial.cohort, _Late(0, self._closed_until))
            late.count += 1
            late.at = self._closed_until
            return False
        sources = self._partials.setdefault((partial.cohort, partial.window), {})
        known = sources.get(partial.source)
        if known is None or (partial.count, partial.late) >= (known.count, known.late):
            sources[partial.source] = partial
        return True

    def heartbeat(self, source: str, watermark: float, now: float) -> None:
        """A source's watermark (from the map side's heartbeats). A heartbeat that does not
        move it still keeps the source from going idle: the map side itself switches to the
        wall clock once its partition is quiet, and a partition replayed after a takeover must
        hold windows open until it has caught up."""
        self._clock.heartbeat(source, watermark, now, alive=True)

    def expect(self, sources: list[str], now: float) -> None:
        """Sources that exist but have not reported yet hold windows open until they do, or
        for ``idle_timeout_s``: a merge instance that starts after its aggregates partition
        moved (a takeover) must not close windows on the few sources it has heard from while
        the others' partitions are still being replayed."""
        self._clock.expect(sources, now)

    def pardon(self, seconds: float, now: float) -> None:
        """The process was stalled for ``seconds``: not idle time (:meth:`Watermarks.pardon`)."""
        self._clock.pardon(seconds, now)

    def forget_source(self, source: str) -> None:
        """A source that will not send again (its partition moved: the new owner replays)."""
        self._clock.forget(source)

    def close_due(self, now: float) -> list[ClosedWindow]:
        """Close every window the watermark (or idleness) allows, oldest first."""
        mark = self._clock.watermark(now)
        if (mark is None and not self._clock.all_idle(now)) or mark == -math.inf:
            return []  # a source expected has not reported yet
        pending = sorted({w for _, w in self._partials}, key=lambda w: w.start)
        if mark is not None:
            last = self.spec.window_of(mark)  # the window holding the watermark stays open
            horizon = Window(last.start - self.spec.size_s, last.start)
        elif pending:
            horizon = pending[-1]
        else:
            return []
        if horizon.end <= (self._closed_until or horizon.start):
            return []
        first = pending[0] if pending else horizon
        if self._closed_until is not None:
            first = min(first, Window(self._closed_until, self._closed_until + self.spec.size_s))
        closed: list[ClosedWindow] = []
        window: Window | None = first
        while window is not None and window.start <= horizon.start:
            closed.extend(self._close(window))
            window = self._next_window(window, pending)
        self._closed_until = max(self._closed_until or horizon.end, horizon.end)
        self._forget_late()
        return sorted(closed, key=lambda c: (c.window.start, c.cohort))

    def _forget_late(self) -> None:
        """Drop the late counts no window will report, so that ``_late`` stays bounded.

        A late count is reported (and removed) on its cohort's next closed window: at once for
        a cohort the merge knows (``_last_seen``: it gets a window, with data or empty, at each
        close) or has open windows for. Any other cohort closes a window only if it sends
        again; one whose late partials came ``forget_after_windows`` windows ago and that has
        not, is forgotten as ``_last_seen`` forgets a silent cohort (one that comes back starts
        afresh), its count kept in ``forgotten_late``. Without this, every cohort with a late
        partial after its last window (an old release, a replay after a restart) stayed."""
        if not self._late or self._closed_until is None:
            return
        horizon = self._closed_until - self.forget_after_windows * self.spec.size_s
        pending = {cohort for cohort, _ in self._partials}
        for cohort, late in list(self._late.items()):
            if late.at < horizon and cohort not in self._last_seen and cohort not in pending:
                self.forgotten_late += late.count
                del self._late[cohort]

    @property
    def late_cohorts(self) -> int:
        """Cohorts with late partials waiting to be reported."""
        return len(self._late)

    def _next_window(self, window: Window, pending: list[Window]) -> Window | None:
        """The next window worth closing: the following one while a silent cohort may still be
        reported in it, else the next one with partials (a gap of days costs nothing)."""
        following = Window(window.end, window.end + self.spec.size_s)
        reportable = self.forget_after_windows * self.spec.size_s
        if self._last_seen and max(self._last_seen.values()) + reportable >= following.start:
            return following
        return next((w for w in pending if w.start >= following.start), None)

    def _close(self, window: Window) -> list[ClosedWindow]:
        with_data = {c for c, w in self._partials if w == window}
        closed = [c for cohort in with_data for c in self._close_one(cohort, window)]
        horizon = window.start - self.forget_after_windows * self.spec.size_s
        for cohort, seen in list(self._last_seen.items()):
            if cohort in with_data or seen >= window.start:
                continue
            if seen < horizon:
                del self._last_seen[cohort]
                continue
            closed.append(
                ClosedWindow(
                    cohort,
                    window,
                    Partial.empty(cohort, window, "*", self.settings),
                    0,
                    self._late_count(cohort),
                )
            )
        return closed

    def _close_one(self, cohort: Cohort, window: Window) -> list[ClosedWindow]:
        parts = self._partials.pop((cohort, window), {})
        if not parts:
            return []
        self._last_seen[cohort] = max(self._last_seen.get(cohort, window.start), window.start)
        merged = Partial.merge(list(parts.values()))
        return [ClosedWindow(cohort, window, merged, len(parts), self._late_count(cohort))]

    def _late_count(self, cohort: Cohort) -> int:
        """The cohort's late partials, reported now (so no longer kept)."""
        late = self._late.pop(cohort, None)
        return 0 if late is None else late.count

    @property
    def open_windows(self) -> int:
        """(cohort, window) pairs waiting to close."""
        return len(self._partials)

    @property
    def closed_until(self) -> int | None:
        """End of the last window closed (partials of windows ending by then are done)."""
        return self._closed_until

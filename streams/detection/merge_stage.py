"""The two aggregation stages as the worker runs them: messages in, messages out. No faust.

**Map stage** (:class:`~driftnet.streams.detection.map_stage.MapStage`): one :class:`driftnet.detectors.windowing.merge.PartitionWindows` per events
partition this worker owns. Each valid event becomes an observation in its cohort's window.
When a window is done for a partition, its partial is sent -- whole, cumulative -- to the
aggregates topic; a replayed partition recomputes it and the new version replaces the old one.
Every partition's watermark goes to *every* aggregates partition as a heartbeat, so each merge
instance hears from all sources, quiet ones included. ``MapStage.safe_offset`` is the
oldest offset an open window still needs: the worker commits below it, never past.

**Merge stage** (:class:`MergeStage`): one :class:`driftnet.detectors.windowing.merge.WindowMerge` per aggregates
partition. Aggregates are keyed by (service, environment) -- not the full cohort -- so a
canary and its baseline meet in the same merge instance and a canary's window is judged
against the baseline's window too. A closed window runs its cohort's detectors; each finding
is sent to the findings topic, and the worst examples behind it to the failures topic as
``evidence`` records (redacted like every failure record) tagged with the finding id
(:mod:`driftnet.streams.detection.window_records`). The detectors' references are saved at
window close and restored after a restart (:mod:`driftnet.streams.detection.detector_state`).

Here: the merge stage and what both stages read from the settings; the map stage is in
:mod:`driftnet.streams.detection.map_stage`, the aggregates topic's messages in
:mod:`driftnet.streams.detection.aggregate_messages`.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from driftnet.detectors.canary.judge import CanaryJudge
from driftnet.detectors.canary.state import ARM_COUNTERS
from driftnet.detectors.canary.verdict import Verdict
from driftnet.detectors.cohort import CohortDetectors
from driftnet.detectors.config import DetectorsConfig
from driftnet.detectors.families.drift import FullCheckRequest
from driftnet.detectors.families.text_drift import TextCheckRequest
from driftnet.detectors.finding import Finding
from driftnet.detectors.windowing.cohort_cap import is_overflow
from driftnet.detectors.windowing.merge import ClosedWindow, WindowMerge
from driftnet.detectors.windowing.observation import Cohort
from driftnet.detectors.windowing.partials import Partial
from driftnet.detectors.windowing.windows import WindowSpec
from driftnet.harvest.records import FailureRecord
from driftnet.harvest.rules import RulesConfig
from driftnet.streams.detection.aggregate_messages import Heartbeat
from driftnet.streams.detection.detector_state import DetectorStates
from driftnet.streams.detection.window_records import WindowRecords

log = logging.getLogger("driftnet.detection")

BASELINE_HISTORY_WINDOWS: Final = 5
"""Baseline windows remembered per service and environment, for new canaries' rate tests."""


def with_score_directions(config: DetectorsConfig, rules: RulesConfig) -> DetectorsConfig:
    """``config`` with the canary judge told which scores the failure rules say are better
    low (so a rise of toxicity fails a canary, not a drop)."""
    lower = {
        name
        for settings in (rules.defaults, *rules.services.values())
        for name, score in settings.scores.items()
        if score.direction == "lower_is_better"
    }
    if lower <= config.canary.lower_is_better_scores:
        return config
    canary = config.canary.model_copy(
        update={"lower_is_better_scores": config.canary.lower_is_better_scores | lower}
    )
    return config.model_copy(update={"canary": canary})


def window_spec(config: DetectorsConfig) -> WindowSpec:
    windows = config.windows
    return WindowSpec(windows.size_s, windows.allowed_lateness_s, windows.idle_timeout_s)


@dataclass(slots=True)
class Judged:
    """What one closed window gave: findings, the evidence behind them, the slow drift checks
    (evidently, text) its drift detector asks for, and for a canary its verdict and regression
    pack."""

    window: ClosedWindow
    findings: list[Finding]
    evidence: list[FailureRecord]
    full_checks: list[FullCheckRequest | TextCheckRequest] = field(default_factory=list)
    verdict: Verdict | None = None
    regressions: list[FailureRecord] = field(default_factory=list)
    judge_state: dict[str, Any] | None = None
    """The canary judge's state after this window (it travels with the verdict)."""
    text_reason: str | None = None
    """Why text drift asked for no check of this window though one was due, or could not
    keep its texts (content not captured)."""


@dataclass(frozen=True, slots=True)
class _Queued:
    """A closed window waiting to be judged, with its baseline; or (``window`` None) the
    point after a partition's closed windows where long-silent canaries' judges go."""

    partition: int
    window: ClosedWindow | None
    baseline: Partial | None
    forget_before: int = 0


class MergeStage:
    """Merge side of every aggregates partition this worker owns, and the detectors."""

    def __init__(
        self, config: DetectorsConfig, events_topic: str, events_partitions: int = 0
    ) -> None:
        self.config = config
        self.spec = window_spec(config)
        self.events_topic = events_topic
        self.records = WindowRecords(events_topic)
        self.sources = [f"{events_topic}/{p}" for p in range(events_partitions)]
        """Every map-side source (events partition): a new merge instance waits to hear from
        each, for at most ``idle_timeout_s``, before it closes a window."""
        self.failed_windows = 0
        """Closed windows whose detectors raised (logged, skipped)."""
        self._merges: dict[int, WindowMerge] = {}
        self._watches: dict[Cohort, CohortDetectors] = {}
        self.saved = DetectorStates()
        """Cohorts whose detectors are to be saved, and those read back (restarts)."""
        self._watch_seen: dict[Cohort, tuple[int, int]] = {}
        """(aggregates partition, start of the latest window with events) of each watch: a
        cohort silent for ``forget_after_windows`` (an old release) loses its detectors, as the
        window merge stops reporting its empty windows then."""
        self._judges: dict[Cohort, CanaryJudge] = {}
        self._judge_partitions: dict[Cohort, int] = {}
        self._baseline_history: dict[tuple[str, str], list[tuple[int, dict[str, int]]]] = {}
        self._states: dict[tuple[str, ...], dict[str, Any]] = {}
        """Judge states to restore, by canary (see :meth:`restore`)."""
        self.baseline_variant = config.canary.baseline_variant
        self._unjudged: deque[_Queued] = deque()
        """Windows closed and not judged yet (see :meth:`close_due`'s budget), in order."""

    def _merge(self, partition: int, now: float) -> WindowMerge:
        merge = self._merges.get(partition)
        if merge is None:
            merge = WindowMerge(
                self.spec, self.config.aggregate, self.config.windows.forget_after_windows
            )
            merge.expect(self.sources, now)
            self._merges[partition] = merge
        return merge

    def offer(self, partition: int, message: Partial | Heartbeat, now: float) -> bool:
        """Take one aggregates message; False for a partial whose window had already closed."""
        merge = self._merge(partition, now)
        if isinstance(message, Heartbeat):
            merge.heartbeat(message.source, message.watermark, now)
            return True
        return merge.offer(message)

    def closed_until(self, partition: int) -> int | None:
        """End of the last window closed on ``partition`` (partials ending by then are done)."""
        merge = self._merges.get(partition)
        return None if merge is None else merge.closed_until

    def close_due(
        self, now: float, detected_at: datetime | None = None, budget_s: float | None = None
    ) -> list[Judged]:
        """Close every window the watermarks allow and judge it, in order.

        With ``budget_s``, judging stops once that much time has gone (after one window at
        least) and the rest waits for the next call (:attr:`judging` says whether some does):
        a window boundary at 10,000 cohorts is 10,000 windows to judge, seconds of CPU that
        must not hold the worker's event loop (heartbeats, fetches, /metrics) in one go."""
        at = detected_at or datetime.now(UTC)
        for partition, merge in self._merges.items():
            closed = merge.close_due(now)
            if not closed:
                continue
            baselines = _baselines(closed, self.baseline_variant)
            for window in closed:
                baseline = None
                if window.cohort[3] != self.baseline_variant:
                    baseline = baselines.get((window.cohort[0], window.cohort[1], window.window))
                self._unjudged.append(_Queued(partition, window, baseline))
            # once the partition's windows are judged: drop the judges of long-silent canaries
            self._unjudged.append(_Queued(partition, None, None, closed[-1].window.start))
        deadline = None if budget_s is None else time.perf_counter() + budget_s
        judged: list[Judged] = []
        while self._unjudged:
            queued = self._unjudged.popleft()
            if queued.window is None:
                self._forget(queued.partition, queued.forget_before)
                continue
            window = queued.window
            try:
                judged.append(self._judge(window, queued.baseline, at, queued.partition))
            except Exception as exc:  # a detector bug must not stop the stream
                self.failed_windows += 1
                log.warning(
                    "judging %s %s failed: %s: %s",
                    "/".join(window.cohort),
                    window.window,
                    type(exc).__name__,
                    exc,
                )
            if deadline is not None and time.perf_counter() >= deadline:
                while self._unjudged and self._unjudged[0].window is None:
                    queued = self._unjudged.popleft()
                    self._forget(queued.partition, queued.forget_before)
                break
        return judged

    @property
    def judging(self) -> bool:
        """Whether closed windows wait to be judged (a budgeted :meth:`close_due` left them)."""
        return bool(self._unjudged)

    def _judge(
        self, closed: ClosedWindow, baseline: Partial | None, at: datetime, partition: int = 0
    ) -> Judged:
        if is_overflow(closed.cohort):  # many cohorts' events in one: counted, not judged
            return Judged(closed, [], [])
        watch = self._watches.get(closed.cohort)
        if watch is None:
            watch = CohortDetectors.of(self.config, closed.cohort)
            self.saved.restore(watch)  # what it had learned before a restart, if saved
            self._watches[closed.cohort] = watch
        if closed.sources or closed.cohort not in self._watch_seen:
            self._watch_seen[closed.cohort] = (partition, closed.window.start)
        findings: list[Finding] = []
        checks: list[FullCheckRequest | TextCheckRequest] = []
        text_reason = None
        if watch.last_window_end is None or closed.window.end > watch.last_window_end:
            findings = watch.update(closed.aggregate, baseline)
            checks = [*watch.full_checks, *watch.text_checks]
            text_reason = watch.text_reason
            self.saved.changed(partition, watch)
        # else a replay after a restart brought back a window already in the restored
        # references: its findings were sent before they were saved
        evidence = [
            record for finding in findings for record in self.records.evidence(finding, closed, at)
        ]
        judged = Judged(closed, findings, evidence, checks, text_reason=text_reason)
        if closed.cohort[3] == self.baseline_variant:
            self._remember_baseline(closed)
        elif self.config.canary.enabled:
            judge = self._judges.get(closed.cohort) or self._new_judge(closed)
            self._judges[closed.cohort] = judge
            self._judge_partitions[closed.cohort] = partition
            try:
                judgement = judge.judge(closed.aggregate, baseline, at)
            except Exception:
                # half-updated or unusable (a restored state that no longer fits): drop it
                # rather than fail every later window of the canary the same way
                del self._judges[closed.cohort], self._judge_partitions[closed.cohort]
                raise
            if judgement is not None:
                judged.verdict = judgement.verdict
                judged.regressions = self.records.regressions(
                    judgement.verdict, judgement.packs, at
                )
                judged.judge_state = judge.state()
        return judged

    def restore(self, states: dict[tuple[str, ...], dict[str, Any]]) -> None:
        """Judge states read back from the verdicts topic (they replace the ones read
        before): a canary without a judge here starts from its state instead of from nothing."""
        self._states = {c: s for c, s in states.items() if c not in self._judges}

    def _remember_baseline(self, closed: ClosedWindow) -> None:
        """The counters of a baseline's last windows: a canary's rate tests start from its
        service's baseline rate before the canary's first window."""
        if not closed.aggregate.count:
            return
        key = (closed.cohort[0], closed.cohort[1])
        counters = {name: int(getattr(closed.aggregate, name)) for name in ARM_COUNTERS}
        history = self._baseline_history.setdefault(key, [])
        history.append((closed.window.start, counters))
        history.sort(key=lambda entry: entry[0])
        del history[:-BASELINE_HISTORY_WINDOWS]

    def _new_judge(self, closed: ClosedWindow) -> CanaryJudge:
        cohort = closed.cohort
        state = self._states.pop(cohort, None)
        if state is not None:
            try:
                judge = CanaryJudge.restored(self.config.canary, state)
            except ValueError as exc:
                log.warning("canary %s starts afresh: %s", "/".join(cohort), exc)
            else:
                log.info(
                    "canary %s: evidence of %d windows restored", "/".join(cohort), judge.windows
                )
                return judge
        before: dict[str, int] = {}
        for start, counters in self._baseline_history.get((cohort[0], cohort[1]), []):
            if start < closed.window.start:
                for name, value in counters.items():
                    before[name] = before.get(name, 0) + value
        return CanaryJudge(cohort, self.config.canary, before)

    def _forget(self, partition: int, window_start: int) -> None:
        """Drop the judges of canaries silent for ``forget_after_windows`` (a finished rollout),
        and the detectors of ``partition``'s cohorts silent that long (a replaced release):
        otherwise a worker that sees a release a deploy grows by one cohort's detectors for
        good. A cohort that comes back later starts afresh, as on the window merge."""
        horizon = window_start - self.config.windows.forget_after_windows * self.spec.size_s
        for cohort, (where, seen) in list(self._watch_seen.items()):
            if where == partition and seen < horizon:
                del self._watch_seen[cohort]
                self._watches.pop(cohort, None)
                self.saved.forgotten(cohort, partition)
        self.saved.expire(horizon)
        for cohort, judge in list(self._judges.items()):
            if judge.last_window_end is not None and judge.last_window_end < horizon:
                del self._judges[cohort]
                self._judge_partitions.pop(cohort, None)
        for key, state in list(self._states.items()):
            if int(state.get("last_window_end") or 0) < horizon:
                del self._states[key]  # a canary that comes back this late starts afresh
        for service_env, history in list(self._baseline_history.items()):
            if not history or history[-1][0] < horizon:
                del self._baseline_history[service_env]  # no baseline window for that long

    def pardon(self, seconds: float, now: float) -> None:
        """The worker was stalled for ``seconds``: no source was idle meanwhile."""
        for merge in self._merges.values():
            merge.pardon(seconds, now)

    def revoke(self, partitions: Iterable[int]) -> None:
        """Partitions moved away; their canaries' judges go too (the next owner restores
        them from the verdicts topic)."""
        gone = set(partitions)
        for partition in gone:
            self._merges.pop(partition, None)
        self.saved.revoke(gone)
        self._unjudged = deque(q for q in self._unjudged if q.partition not in gone)
        for cohort, partition in list(self._judge_partitions.items()):
            if partition in gone:
                del self._judges[cohort], self._judge_partitions[cohort]
        for cohort, (partition, _) in list(self._watch_seen.items()):
            if partition in gone:  # the next owner rebuilds them from the replay
                del self._watch_seen[cohort]
                self._watches.pop(cohort, None)

    @property
    def cohorts_watched(self) -> int:
        """Cohorts with detectors here now."""
        return len(self._watches)

    @property
    def watched(self) -> Collection[Cohort]:
        """The cohorts with detectors here now."""
        return self._watches.keys()

    @property
    def open_windows(self) -> int:
        return sum(merge.open_windows for merge in self._merges.values())


def _baselines(
    closed: list[ClosedWindow], baseline_variant: str
) -> dict[tuple[str, str, Any], Partial]:
    """The baseline aggregate of each (service, environment, window) among ``closed``: the
    busiest baseline release when there are several."""
    best: dict[tuple[str, str, Any], Partial] = {}
    for window in closed:
        service, environment, _, variant = window.cohort
        if variant != baseline_variant or not window.aggregate.count:
            continue
        key = (service, environment, window.window)
        if key not in best or window.aggregate.count > best[key].count:
            best[key] = window.aggregate
    return best

"""The windowed detectors on Kafka: the map stage inside the triage agent, the merge stage as
its own agent on the aggregates topic, and a one-second tick that moves both.

Offsets: both stages read with faust's automatic acks off and ack a message only once nothing
open still needs it -- an events message once every window it fed is done for its partition
(:meth:`MapStage.safe_offset`), an aggregates message once its window has closed on the merge
side. faust commits the highest offset below which everything is acked, so a killed worker
replays exactly the windows it had not finished, and the partials it recomputes replace the
ones it sent before.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import time
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from driftnet.contract.events import InferenceEvent
from driftnet.detectors.canary.verdict import Verdict
from driftnet.detectors.families.budget import FullCheckQueue
from driftnet.detectors.families.drift import FullCheckRequest
from driftnet.detectors.finding import Finding
from driftnet.detectors.stats import warm_up
from driftnet.harvest.records import FailureRecord
from driftnet.harvest.redaction import Redactor
from driftnet.harvest.triage import Triaged
from driftnet.streams.aggregation import MapStage, MergeStage, read_aggregate, with_score_directions
from driftnet.streams.judge_state import STATE_HEADER, encode_state, read_states
from driftnet.streams.settings import Settings
from driftnet.streams.stage import Topics
from driftnet.streams.window_signals import window_entry, window_signals

log = logging.getLogger("driftnet.detection")

TICK_S = 1.0
STALL_GRACE_TICKS = 2
"""A tick this many intervals late is a stall (see :meth:`Detection._pardon_stall`)."""
JUDGE_SLICE_S = 0.1
"""A tick judges closed windows in slices of about this long and lets the event loop run
between them (a window boundary at 10,000 cohorts is seconds of judging)."""
RESTORE_TIMEOUT_S = 30.0
RESTORE_ATTEMPTS = 3
FULL_CHECK_CPU_SHARE = 0.1
"""The evidently tier may use this share of one core on average (see driftnet.detectors.families.budget)."""
REPORTS_DIR = "drift-reports"


def exit_with_parent(parent: int) -> None:
    """In the checker process: exit when the worker is gone, even killed with SIGKILL (a
    process pool's worker would otherwise wait for work forever, an orphan)."""
    import threading

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def run_full_check(request: FullCheckRequest) -> tuple[Any, float]:
    """In the checker process: evidently's verdict and HTML report, and the CPU it took."""
    import warnings

    from driftnet.detectors.families.drift_report import full_drift_check

    warnings.simplefilter("ignore")  # evidently's and numpy's chatter on degenerate columns
    started = time.process_time()
    result = full_drift_check(request, html=True)
    return result, time.process_time() - started


def store_report(folder: Path, finding: Finding, html: str) -> Finding:
    """Write ``html`` as the finding's report and return the finding linked to it."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{finding.finding_id}.html"
    temp = path.with_suffix(".html.tmp")
    temp.write_text(html, encoding="utf-8")
    temp.replace(path)
    return finding.model_copy(update={"report": str(path.absolute())})


@dataclass(slots=True)
class DetectionTally:
    """What the detection stages did (for the worker's reports)."""

    windows: int = 0
    findings: Counter[str] = field(default_factory=Counter)
    verdicts: Counter[str] = field(default_factory=Counter)
    evidence: int = 0
    regressions: int = 0
    late_partials: int = 0
    bad_aggregates: int = 0

    def copy(self) -> DetectionTally:
        return DetectionTally(
            self.windows,
            Counter(self.findings),
            Counter(self.verdicts),
            self.evidence,
            self.regressions,
            self.late_partials,
            self.bad_aggregates,
        )

    def lines(self, since: DetectionTally, late_events: int) -> list[str]:
        windows = self.windows - since.windows
        if not windows and not late_events:
            return []
        findings = self.findings - since.findings
        text = f"windows closed {windows}, findings {findings.total()}, late events {late_events}"
        for label, count in (
            ("evidence records", self.evidence - since.evidence),
            ("regression records", self.regressions - since.regressions),
            ("late partials", self.late_partials - since.late_partials),
            ("unreadable aggregates", self.bad_aggregates - since.bad_aggregates),
        ):
            if count:
                text += f", {label} {count}"
        lines = [text]
        if findings:
            lines.append(
                "findings by detector: "
                + ", ".join(f"{name} {n}" for name, n in findings.most_common())
            )
        verdicts = self.verdicts - since.verdicts
        if verdicts:
            lines.append(
                "canary verdicts: " + ", ".join(f"{name} {n}" for name, n in verdicts.most_common())
            )
        return lines


def _encoder(event: InferenceEvent, redactor: Redactor) -> Callable[[], bytes]:
    """The event's JSON, redacted like a failure record: examples travel on the aggregates
    topic and become evidence records, so masking happens before either."""
    return lambda: redactor.redact_event(event)[0].model_dump_json().encode()


def _release(event: Any) -> None:
    """Drop a held event's payload once it has been read: it waits only to be acked (by its
    offset), and the events and partials held for the open windows are the payloads of a
    window's worth of messages (a 12 KB partial per cohort and partition at 1,000+ cohorts)."""
    event.value = None
    event.message.value = None


class Detection:
    """Both stages and their bookkeeping inside one worker."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.topics: Topics = {}
        """Where the stages send (partials, findings, verdicts...): the app's, once attached."""
        self.aggregate_partitions = settings.topics.aggregates.partitions
        self.map = MapStage(settings.detectors, settings.topics.events.name)
        self.merge = MergeStage(
            with_score_directions(settings.detectors, settings.rules),
            settings.topics.events.name,
            settings.topics.events.partitions,
        )
        self._redactor = Redactor(settings.harvest.redaction)
        self.tally = DetectionTally()
        self._reported = DetectionTally()
        self._reported_late = 0
        self._full_checks: FullCheckQueue[FullCheckRequest] = FullCheckQueue(
            share=FULL_CHECK_CPU_SHARE
        )
        self._checker: ProcessPoolExecutor | None = None
        self._running: tuple[FullCheckRequest, asyncio.Future[tuple[Any, float]]] | None = None
        self._reports = Path(settings.worker.data_dir) / REPORTS_DIR
        self._events_pending: dict[int, deque[tuple[int, Any]]] = {}
        self._aggregates_pending: dict[int, deque[tuple[int, Any, int | None]]] = {}
        self._outcomes: dict[str, str] = {}
        """The last verdict of each canary (its changes are logged at info)."""
        self._restore_judges = True
        self._restore_failures = 0
        self._ticked_at: float | None = None
        self.on_judged: Callable[[float], None] | None = None
        """Told the seconds each tick that closed windows spent judging them (detectors and
        canary judge): the worker's ``driftnet_detector_seconds``."""
        warm_up()  # at start-up, not as a one-second stall of the stream at the first window

    def attach(self, app: Any, topics: Topics) -> None:
        """The merge agent, the one-second tick, the revoked partitions' hook and the service
        that stops the checker process with the worker (the map side runs in the triage agent)."""
        import mode

        self.topics = topics
        detection = self
        app.agent(topics["aggregates"], name="merge")(self.merge_agent)

        @app.timer(TICK_S)  # type: ignore[untyped-decorator]
        async def detection_tick() -> None:
            from faust.exceptions import NotReady

            try:
                await detection.tick()
            except NotReady:
                # A tick still sending when the worker stops finds the producer gone. Nothing
                # is lost: the windows it closed are acked only at the tick's end, so the
                # next worker replays and closes them again.
                if not app.should_stop:
                    raise
                logging.getLogger("driftnet.worker").info(
                    "detection tick cut short by the shutdown: its windows replay on restart"
                )

        @app.on_partitions_revoked.connect  # type: ignore[untyped-decorator]
        async def on_revoked(sender: Any, *args: Any, **kwargs: Any) -> None:
            detection.revoked(args[0] if args else kwargs.get("revoked", ()))

        @app.service
        class DetectionChecker(mode.Service):
            """Stops the evidently checker process with the worker."""

            async def on_stop(self) -> None:
                detection.close()

    # -- map side (called by the triage agent) -------------------------------------------------

    def observe(self, event: Any, triaged: Triaged) -> None:
        """Aggregate a message's valid events; hold its ack until its windows are done."""
        message = event.message
        now = time.time()
        for valid, reasons in triaged.judged:
            raw = _encoder(valid, self._redactor)  # called only for the few kept as examples
            self.map.observe(message.partition, message.offset, valid, reasons, raw, now)
        pending = self._events_pending.setdefault(message.partition, deque())
        pending.append((message.offset, event))  # acked by the tick once its windows are done
        _release(event)

    def _ack_events(self, partition: int) -> None:
        pending = self._events_pending.get(partition)
        if not pending:
            return
        safe = self.map.safe_offset(partition)
        while pending and (safe is None or pending[0][0] < safe):
            pending.popleft()[1].ack()

    # -- merge side (its own agent) ------------------------------------------------------------

    async def merge_agent(self, stream: Any) -> None:
        async for event in stream.noack().events():
            message = event.message
            pending = self._aggregates_pending.setdefault(message.partition, deque())
            try:
                aggregate = read_aggregate(message.value or b"")
            except ValueError as exc:
                self.tally.bad_aggregates += 1
                log.warning("skipping %s[%d]@%d: %s", message.topic, message.partition,
                            message.offset, exc)  # fmt: skip
                pending.append((message.offset, event, None))
                continue
            _release(event)
            accepted = self.merge.offer(message.partition, aggregate, time.time())
            window_end = getattr(aggregate, "window", None)
            if not accepted:
                self.tally.late_partials += 1
                window_end = None
            pending.append((message.offset, event, window_end.end if window_end else None))

    def _ack_aggregates(self) -> None:
        for partition, pending in self._aggregates_pending.items():
            closed = self.merge.closed_until(partition)
            while pending:
                end = pending[0][2]
                if end is not None and (closed is None or end > closed):
                    break
                pending.popleft()[1].ack()

    # -- the tick ------------------------------------------------------------------------------

    def _pardon_stall(self, now: float) -> None:
        """A tick far later than its interval means the worker was stalled (CPU starved, a
        long pause, a suspended VM) or busy judging windows (a long tick: its map side sent
        no heartbeat meanwhile): that time must not count as its partitions or sources going
        idle, else windows close without the events still waiting to be read (and those come
        late)."""
        last, self._ticked_at = self._ticked_at, now
        stalled = 0.0 if last is None else now - last - STALL_GRACE_TICKS * TICK_S
        if stalled <= 0:
            return
        self.map.pardon(stalled, now)
        self.merge.pardon(stalled, now)
        log.info(
            "detection tick %.1f s late (the worker was stalled or judging): idle timeouts "
            "paused for it",
            stalled,
        )

    async def tick(self) -> None:
        """Send partials of windows done and heartbeats; close, judge and publish merged
        windows; ack what is no longer needed."""
        self._pardon_stall(time.time())
        if self._restore_judges:
            await self._restore()
            if self._restore_judges:
                return  # retried on the next tick; no window closes without the judges
        now = time.time()
        outgoing = self.map.due(now, self.aggregate_partitions)
        for role, key, value, partition in outgoing.messages:
            await self.topics[role].send(key=key, value=value, partition=partition, force=True)
        for partition in list(self._events_pending):
            self._ack_events(partition)
        entries: list[dict[str, Any]] = []
        while True:
            await self._judge_slice(now, entries)
            if not self.merge.judging:
                break
            await asyncio.sleep(0)  # the loop's other work (heartbeats, fetches) goes on
        if self.settings.alerts.enabled:
            for value in window_signals(entries):
                await self.topics["signals"].send(key=b"windows", value=value, force=True)
        self._ack_aggregates()
        await self._full_check(now)

    async def _judge_slice(self, now: float, entries: list[dict[str, Any]]) -> None:
        """Close the windows due and judge them for at most :data:`JUDGE_SLICE_S`; publish
        what that judged (the windows left wait for the next slice of the same tick)."""
        started = time.perf_counter()
        closed = self.merge.close_due(now, datetime.now(UTC), JUDGE_SLICE_S)
        if closed and self.on_judged is not None:
            self.on_judged(time.perf_counter() - started)
        for judged in closed:
            self.tally.windows += 1
            entries.append(window_entry(judged))
            for request in judged.full_checks:
                self._full_checks.push(request, triggered=request.triggered)
            for finding in judged.findings:
                await self._publish(finding)
            for record in judged.evidence:
                self.tally.evidence += 1
                await self._harvest(record)
            if judged.verdict is not None:
                await self._publish_verdict(judged.verdict, judged.judge_state)
            for record in judged.regressions:
                self.tally.regressions += 1
                await self._harvest(record)

    async def _restore(self) -> None:
        """Read the canary judges' states back before any window closes (see
        :mod:`driftnet.streams.judge_state`). A failed read is retried on the next ticks, a few
        times, with no window closed meanwhile; then the judges start afresh, with a warning."""
        if not self.settings.detectors.canary.enabled:
            self._restore_judges = False
            return
        try:
            states = await asyncio.wait_for(read_states(self.settings), RESTORE_TIMEOUT_S)
        except Exception as exc:  # the broker hiccuped: try again, then go on without
            self._restore_failures += 1
            if self._restore_failures < RESTORE_ATTEMPTS:
                log.warning("cannot read canary judge states back (attempt %d of %d): %s: %s",
                            self._restore_failures, RESTORE_ATTEMPTS, type(exc).__name__, exc)  # fmt: skip
                return
            log.warning("canary judges start without their history: %s: %s",
                        type(exc).__name__, exc)  # fmt: skip
            states = {}
        self._restore_judges = False
        self._restore_failures = 0
        self.merge.restore(states)
        if states:
            log.info("canary judge states read back for %d canaries", len(states))

    def assigned(self, topic_partitions: Any) -> None:
        """Partitions given to this worker: new aggregates partitions bring canaries whose
        judges are restored before the next window closes."""
        aggregates = self.settings.topics.aggregates.name
        if any(tp.topic == aggregates for tp in topic_partitions):
            self._restore_judges = True

    async def _harvest(self, record: FailureRecord) -> None:
        await self.topics["failures"].send(
            key=record.record_id.encode(), value=record.model_dump_json().encode(), force=True
        )

    async def _publish_verdict(self, verdict: Verdict, state: dict[str, Any] | None) -> None:
        self.tally.verdicts[verdict.verdict] += 1
        await self.topics["verdicts"].send(
            key="/".join(verdict.cohort).encode(),
            value=verdict.model_dump_json().encode(),
            headers=[(STATE_HEADER, encode_state(state))] if state is not None else None,
            force=True,
        )
        name = "/".join(verdict.cohort)
        changed = self._outcomes.get(name) != verdict.verdict
        self._outcomes[name] = verdict.verdict
        log.log(
            logging.INFO if changed else logging.DEBUG,
            "canary %s vs %s: %s (score %s, %s)%s",
            name,
            verdict.baseline_release,
            verdict.verdict,
            "-" if verdict.score is None else f"{verdict.score:g}",
            verdict.recommendation,
            f": {verdict.reasons[0]}" if verdict.reasons else "",
        )

    async def _publish(self, finding: Finding) -> None:
        self.tally.findings[finding.detector] += 1
        await self.topics["findings"].send(
            key="/".join(finding.cohort).encode(),
            value=finding.model_dump_json().encode(),
            force=True,
        )
        log.info("finding %s %s: %s", "/".join(finding.cohort), finding.detector, finding.message)

    async def _full_check(self, now: float) -> None:
        """Collect a finished evidently check, or start the next one the budget allows. One
        runs at a time, in a separate process, so the worker never waits for it."""
        from driftnet.detectors.families.drift_report import full_check_findings

        if self._running is not None:
            done, future = self._running
            if not future.done():
                return
            self._running = None
            try:
                result, cpu_s = future.result()
            except Exception as exc:  # a failed check costs a log line, never the worker
                log.warning("full drift check of %s failed: %s", "/".join(done.cohort), exc)
                return
            self._full_checks.charge(cpu_s, now)
            findings = full_check_findings(done, result) if result else []
            if result is not None and result.html:
                try:
                    findings = [store_report(self._reports, f, result.html) for f in findings]
                except OSError as exc:  # the report folder is not writable: publish unlinked
                    log.warning("cannot store the drift report of %s: %s", done.cohort, exc)
            for finding in findings:
                await self._publish(finding)  # on the findings topic, not an alert of its own:
                # the per-window drift detector already alerts on the same drift
        request = self._full_checks.next(now)
        if request is None:
            return
        if self._checker is None:
            context = multiprocessing.get_context("spawn")  # never fork a process with threads
            self._checker = ProcessPoolExecutor(
                max_workers=1,
                mp_context=context,
                initializer=exit_with_parent,
                initargs=(os.getpid(),),
            )
        loop = asyncio.get_running_loop()
        self._running = (request, loop.run_in_executor(self._checker, run_full_check, request))

    def close(self) -> None:
        """Stop the checker process (a check in flight is abandoned)."""
        if self._checker is not None:
            self._checker.shutdown(wait=False, cancel_futures=True)
            self._checker = None

    def revoked(self, topic_partitions: Any) -> None:
        """Partitions moved away: drop their state (the next owner replays them)."""
        events = self.settings.topics.events.name
        aggregates = self.settings.topics.aggregates.name
        gone_events = [tp.partition for tp in topic_partitions if tp.topic == events]
        gone_aggregates = [tp.partition for tp in topic_partitions if tp.topic == aggregates]
        self.map.revoke(gone_events)
        self.merge.revoke(gone_aggregates)
        for partition in gone_events:
            self._events_pending.pop(partition, None)
        for partition in gone_aggregates:
            self._aggregates_pending.pop(partition, None)

    def window_lag(self, now: float) -> float | None:
        """Seconds from the end of the last window closed to ``now``, on the aggregates
        partition that trails most (None until a window has closed here)."""
        closed = [self.merge.closed_until(p) for p in self._aggregates_pending]
        ends = [end for end in closed if end is not None]
        return max(now - min(ends), 0.0) if ends else None

    def report(self) -> list[str]:
        late = self.map.late_events
        lines = self.tally.lines(self._reported, max(late - self._reported_late, 0))
        self._reported = self.tally.copy()
        self._reported_late = late
        return lines

"""The windowed detectors on Kafka: the map stage inside the triage agent, the merge stage as
its own agent on the aggregates topic, and a one-second tick that moves both.

Offsets: both stages read with faust's automatic acks off and ack a message only once nothing
open still needs it -- an events message once every window it fed is done for its partition
(:meth:`MapStage.safe_offset`), an aggregates message once its window has closed on the merge
side -- and in both cases only once the partials, findings, verdicts and records sent for it
are delivered (:mod:`~driftnet.streams.clients.confirmed_sends`: a send the broker refuses is
retried, then the worker stops). faust commits the highest offset below which everything is
acked, so a killed worker replays exactly the windows it had not finished, and the partials it
recomputes replace the ones it sent before.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from driftnet.contract.events import InferenceEvent
from driftnet.detectors.canary.verdict import Verdict
from driftnet.detectors.families.text_drift import NO_TEXT
from driftnet.detectors.finding import Finding
from driftnet.detectors.stats import warm_up
from driftnet.harvest.records import FailureRecord
from driftnet.harvest.redaction import Redactor
from driftnet.harvest.triage import Triaged
from driftnet.streams.clients.confirmed_sends import ConfirmedSends, settle
from driftnet.streams.detection.aggregate_messages import read_aggregate
from driftnet.streams.detection.detector_state import DetectorRestore, DetectorStateWriter
from driftnet.streams.detection.full_checks import FullChecks
from driftnet.streams.detection.judge_state import STATE_HEADER, JudgeRestore, encode_state
from driftnet.streams.detection.map_stage import MapStage
from driftnet.streams.detection.merge_stage import MergeStage, with_score_directions
from driftnet.streams.detection.tally import DetectionTally
from driftnet.streams.detection.window_signals import window_entry, window_signals
from driftnet.streams.settings import Settings
from driftnet.streams.stage import Topics

log = logging.getLogger("driftnet.detection")

TICK_S = 1.0
STALL_GRACE_TICKS = 2
"""A tick this many intervals late is a stall (see :meth:`Detection._pardon_stall`)."""
OUTCOMES_KEPT = 10_000
"""Canaries whose last verdict is remembered to log its changes (a forgotten one's next
verdict is logged at info once more)."""
JUDGE_SLICE_S = 0.1
"""A tick judges closed windows in slices of about this long and lets the event loop run
between them (a window boundary at 10,000 cohorts is seconds of judging)."""


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
        self._redactor = Redactor(settings.harvest.redaction)
        self.map = MapStage(settings.detectors, settings.topics.events.name, self._redact_sampled)
        self.merge = MergeStage(
            with_score_directions(settings.detectors, settings.rules),
            settings.topics.events.name,
            settings.topics.events.partitions,
        )
        self.tally = DetectionTally()
        self._reported = DetectionTally()
        self._reported_late = 0
        self._full_checks = FullChecks(Path(settings.worker.data_dir), self.merge.records)
        self._events_pending: dict[int, deque[tuple[int, Any]]] = {}
        self._aggregates_pending: dict[int, deque[tuple[int, Any, int | None]]] = {}
        self._outcomes: dict[str, str] = {}
        """The last verdict of each canary (its changes are logged at info), the
        :data:`OUTCOMES_KEPT` most recent."""
        self._blind: dict[str, None] = {}
        """Cohorts whose windows had no text to sample, said once (:meth:`_without_text`)."""
        self.sends = ConfirmedSends("detection", give_up_after_s=settings.worker.send_give_up_s)
        self._app: Any = None
        self._restore = JudgeRestore(settings)
        self._states = DetectorStateWriter(settings)
        self._restore_states = DetectorRestore(settings)
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
        self._app = app
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

    def _redact_sampled(self, text: str) -> str:
        """A sampled text, redacted like a failure record (seen once: not cached)."""
        return self._redactor.redact_text(text, remember=False)[0]

    def observe(self, event: Any, triaged: Triaged, hold: Any = None) -> None:
        """Aggregate a message's valid events; hold its ack until its windows are done (then
        ``hold.ack()`` is called, or the event's own ``ack`` without one)."""
        message = event.message
        now = time.time()
        for valid, reasons in triaged.judged:
            raw = _encoder(valid, self._redactor)  # called only for the few kept as examples
            self.map.observe(message.partition, message.offset, valid, reasons, raw, now)
        pending = self._events_pending.setdefault(message.partition, deque())
        pending.append((message.offset, hold or event))  # acked once its windows are done
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
        if self._restore.due:
            await self._restore.run(self.merge)
            if self._restore.due:
                return  # retried on the next tick; no window closes without the judges
        if self._restore_states.due:
            await self._restore_states.run(self.merge.saved, self.merge.watched)
            if self._restore_states.due:
                return  # likewise for the detectors' references
        now = time.time()
        outgoing = self.map.due(now, self.aggregate_partitions)
        for role, key, value, partition in outgoing.messages:
            await self.sends.send(self.topics[role], key=key, value=value, partition=partition)
        self.sends.seal()
        if not await settle(self._app, self.sends, wait=True):
            return  # the worker stops: nothing past an undelivered partial is acked
        for partition in list(self._events_pending):
            self._ack_events(partition)
        entries: list[dict[str, Any]] = []
        while True:
            await self._judge_slice(now, entries)
            if not self.merge.judging:
                break
            await asyncio.sleep(0)  # the loop's other work (heartbeats, fetches) goes on
        # the references of the cohorts judged, confirmed with the rest before the acks
        state = functools.partial(self.sends.send, self.topics["detector_state"])
        await self._states.save(self.merge.saved, state)
        if self.settings.alerts.enabled:
            for value in window_signals(entries):
                await self.sends.send(self.topics["signals"], key=b"windows", value=value)
        self.sends.seal()
        if not await settle(self._app, self.sends, wait=True):
            return  # a finding, verdict or record of these windows is undelivered: not acked
        self._ack_aggregates()
        await self._full_checks.step(now, self._publish, self._harvest_drift)

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
                self._full_checks.push(request)
            if judged.text_reason == NO_TEXT:
                self._without_text(judged.window.cohort)
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

    def _without_text(self, cohort: tuple[str, ...]) -> None:
        """A window with calls and no text: counted, and said once per cohort (the
        :data:`OUTCOMES_KEPT` most recent): a producer that does not capture content leaves
        text drift blind, not quiet."""
        self.tally.without_text += 1
        name = "/".join(cohort)
        if name in self._blind:
            return
        self._blind[name] = None
        if len(self._blind) > OUTCOMES_KEPT:
            del self._blind[next(iter(self._blind))]
        log.info("%s: %s", name, NO_TEXT)

    def assigned(self, topic_partitions: Any) -> None:
        """Partitions given to this worker: new aggregates partitions bring canaries whose
        judges are restored before the next window closes."""
        aggregates = self.settings.topics.aggregates.name
        if any(tp.topic == aggregates for tp in topic_partitions):
            self._restore.due = True
        self._restore_states.assigned(topic_partitions)

    async def _harvest_drift(self, record: FailureRecord) -> None:
        self.tally.drift_evidence += 1
        await self._harvest(record)

    async def _harvest(self, record: FailureRecord) -> None:
        await self.sends.send(
            self.topics["failures"],
            key=record.record_id.encode(),
            value=record.model_dump_json().encode(),
        )

    async def _publish_verdict(self, verdict: Verdict, state: dict[str, Any] | None) -> None:
        self.tally.verdicts[verdict.verdict] += 1
        await self.sends.send(
            self.topics["verdicts"],
            key="/".join(verdict.cohort).encode(),
            value=verdict.model_dump_json().encode(),
            headers=[(STATE_HEADER, encode_state(state))] if state is not None else None,
        )
        name = "/".join(verdict.cohort)
        changed = self._outcomes.pop(name, None) != verdict.verdict
        self._outcomes[name] = verdict.verdict  # last: the oldest is first
        if len(self._outcomes) > OUTCOMES_KEPT:
            del self._outcomes[next(iter(self._outcomes))]
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
        await self.sends.send(
            self.topics["findings"],
            key="/".join(finding.cohort).encode(),
            value=finding.model_dump_json().encode(),
        )
        log.info("finding %s %s: %s", "/".join(finding.cohort), finding.detector, finding.message)

    def close(self) -> None:
        """Stop the checker process (a check in flight is abandoned)."""
        self._full_checks.close()

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

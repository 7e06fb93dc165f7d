"""The detectors' references survive a restart: saved to a compacted topic at window close,
read back before the next window closes.

Each cohort's detectors remember its trailing windows (:meth:`CohortDetectors.snapshot`,
about 17 KB compressed at 10 windows). Without them, a restarted worker -- or one given
another's aggregates partitions -- would be blind for ``min_reference_windows`` windows per
cohort, and a regression starting then would be missed or late.

- **Saving**: the merge stage notes each cohort whose detectors took a window
  (:class:`DetectorStates`); once per tick, after the closed windows are judged,
  :class:`DetectorStateWriter` sends each one's newest snapshot to the ``detector_state``
  topic (``cleanup.policy=compact``, key: the cohort), to the partition of its aggregates
  partition (modulo the topic's partitions, so a worker reads back only its own). The sends
  are confirmed before the windows' aggregates are acked: a window whose aggregates were
  committed is in a saved reference. A cohort forgotten after ``forget_after_windows`` of
  silence gets a tombstone.
- **Restoring**: :class:`DetectorRestore` reads back, at start and when aggregates partitions
  are assigned, the records of those partitions younger than ``forget_after_windows`` windows
  of wall time (the newest record per key wins, a tombstone deletes; the test broker does not
  compact), before the tick closes another window. A cohort without detectors here gets its
  saved ones when its next window closes. A window a replay brings back that is already in
  the restored reference is not fed to the detectors again (its findings went out before).
- An unreadable record, an old format or a detector whose snapshot no longer fits starts
  afresh with a warning; nothing here stops the worker.
"""

from __future__ import annotations

import asyncio
import logging
import time
import zlib
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import orjson

from driftnet.detectors.cohort import CohortDetectors
from driftnet.detectors.windowing.observation import Cohort
from driftnet.streams.clients.recent_records import ReadBack, Record, read_recent
from driftnet.streams.settings import Settings
from driftnet.streams.stage import RECORD_MAX_BYTES

log = logging.getLogger("driftnet.detection")

STATE_VERSION: Final = 1
"""The record's format around the cohort's snapshot (which has its own version)."""
SAVE_SLICE_S: Final = 0.1
"""Saving lets the event loop run after about this long (a record costs about 0.6 ms a cohort)."""

Send = Callable[..., Awaitable[object]]
"""``send(key=..., value=..., partition=...)``: a confirmed send to the detector-state topic."""


def state_key(cohort: Cohort) -> bytes:
    return "/".join(cohort).encode()


def encode_saved(partition: int, watch: CohortDetectors) -> bytes:
    """The record of ``watch`` (a cohort's detectors) merged on aggregates ``partition``."""
    body = {"version": STATE_VERSION, "partition": partition, "snapshot": watch.snapshot()}
    return zlib.compress(orjson.dumps(body), 1)


@dataclass(frozen=True, slots=True)
class Saved:
    """One cohort's saved detectors, as read back."""

    cohort: Cohort
    partition: int
    """The aggregates partition it was merged on."""
    window_end: int
    """End of the last window in the references."""
    value: bytes
    """The record, kept compressed (a third of the snapshot's JSON) until it is restored."""

    def snapshot(self) -> dict[str, Any]:
        """The cohort's snapshot (:meth:`CohortDetectors.snapshot`)."""
        snapshot: dict[str, Any] = orjson.loads(zlib.decompress(self.value))["snapshot"]
        return snapshot


def decode_saved(value: bytes) -> Saved:
    """``ValueError`` when ``value`` is not a record of this format."""
    try:
        body = orjson.loads(zlib.decompress(value))
    except (zlib.error, orjson.JSONDecodeError) as exc:
        raise ValueError(f"unreadable detector state: {exc}") from None
    if not isinstance(body, dict) or body.get("version") != STATE_VERSION:
        version = body.get("version") if isinstance(body, dict) else None
        raise ValueError(f"detector state version {version!r:.20}; this driftnet reads "
                         f"version {STATE_VERSION}")  # fmt: skip
    try:
        snapshot = body["snapshot"]
        parts = tuple(str(part) for part in snapshot["cohort"])
        partition, end = int(body["partition"]), int(snapshot["last_window_end"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"unreadable detector state: {type(exc).__name__}: {exc}") from None
    if len(parts) != 4:
        raise ValueError(f"a cohort has 4 parts, got {parts!r:.80}")
    return Saved((parts[0], parts[1], parts[2], parts[3]), partition, end, value)


def newest_saved(records: Iterable[Record], partitions: Collection[int]) -> dict[Cohort, Saved]:
    """The newest saved detectors of each cohort merged on one of the aggregates
    ``partitions``, from records in offset order per partition: a later record of a key
    replaces an earlier one, a tombstone deletes it; unreadable ones are skipped (logged)."""
    newest: dict[bytes, Saved] = {}
    for record in records:
        key = record.key or b""
        if record.value is None:
            newest.pop(key, None)
            continue
        try:
            saved = decode_saved(record.value)
        except ValueError as exc:
            log.warning("skipping the detector state of %s: %s", key.decode(errors="replace"), exc)
            continue
        known = newest.get(key)
        if saved.partition in partitions and (
            known is None or saved.window_end >= known.window_end
        ):
            newest[key] = saved
    return {saved.cohort: saved for saved in newest.values()}


class DetectorStates:
    """The merge stage's side of it: cohorts to save, cohorts forgotten, and saved detectors
    waiting for their cohort's next window. No I/O."""

    def __init__(self) -> None:
        self._changed: dict[Cohort, tuple[int, CohortDetectors]] = {}
        self._forgotten: dict[Cohort, int] = {}
        self._waiting: dict[Cohort, Saved] = {}
        self.restored = 0
        """Cohorts whose detectors were restored (since start)."""

    def changed(self, partition: int, watch: CohortDetectors) -> None:
        """``watch`` took a window (merged on aggregates ``partition``): save it."""
        self._changed[watch.cohort] = (partition, watch)
        self._forgotten.pop(watch.cohort, None)

    def forgotten(self, cohort: Cohort, partition: int) -> None:
        """``cohort``'s detectors were dropped after its silence: delete what was saved."""
        self._changed.pop(cohort, None)
        self._forgotten[cohort] = partition

    def take(self) -> tuple[list[tuple[int, CohortDetectors]], list[tuple[Cohort, int]]]:
        """What to save, and what to delete, since the last call."""
        changed, forgotten = list(self._changed.values()), list(self._forgotten.items())
        self._changed, self._forgotten = {}, {}
        return changed, forgotten

    def offer(self, saved: Mapping[Cohort, Saved], watched: Collection[Cohort]) -> None:
        """Saved detectors read back (replacing what waited for the same cohorts), but for
        the cohorts ``watched`` already."""
        self._waiting.update((c, s) for c, s in saved.items() if c not in watched)

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def restore(self, watch: CohortDetectors) -> None:
        """Give ``watch``, a cohort's new detectors, what was saved of them, if anything."""
        saved = self._waiting.pop(watch.cohort, None)
        if saved is None:
            return
        name = "/".join(watch.cohort)
        try:
            skipped = watch.restore(saved.snapshot())
        except ValueError as exc:
            log.warning("detectors of %s start afresh: %s", name, exc)
            return
        self.restored += 1
        for reason in skipped:
            log.warning("detector of %s starts afresh: %s", name, reason)
        log.info("detectors of %s: references restored up to window end %d", name,
                 saved.window_end)  # fmt: skip

    def expire(self, horizon: int) -> None:
        """Drop saved detectors whose last window ended before ``horizon`` (a cohort that comes
        back this late starts afresh, as its detectors here would have been forgotten)."""
        for cohort, saved in list(self._waiting.items()):
            if saved.window_end < horizon:
                del self._waiting[cohort]

    def revoke(self, partitions: Collection[int]) -> None:
        """Aggregates ``partitions`` moved away: their next owner reads their state back."""
        self._waiting = {c: s for c, s in self._waiting.items() if s.partition not in partitions}
        self._changed = {c: v for c, v in self._changed.items() if v[0] not in partitions}
        self._forgotten = {c: p for c, p in self._forgotten.items() if p not in partitions}


class DetectorStateWriter:
    """Sends what :class:`DetectorStates` says to save or delete (once per tick)."""

    def __init__(self, settings: Settings) -> None:
        self.partitions = settings.topics.detector_state.partitions
        self.saved = 0
        self.too_large = 0

    async def save(self, states: DetectorStates, send: Send) -> None:
        """Send the newest snapshot of each cohort that took a window since the last call,
        and a tombstone for each one forgotten, with ``send`` (the caller confirms the sends
        before it acks the windows' aggregates); the event loop runs between slices."""
        changed, forgotten = states.take()
        started = time.perf_counter()
        for partition, watch in changed:
            value = encode_saved(partition, watch)
            if len(value) > RECORD_MAX_BYTES:  # the broker would refuse it: not worth a stall
                self.too_large += 1
                log.warning("detectors of %s not saved: %d bytes", "/".join(watch.cohort),
                            len(value))  # fmt: skip
                continue
            await send(
                key=state_key(watch.cohort), value=value, partition=partition % self.partitions
            )
            self.saved += 1
            if time.perf_counter() - started >= SAVE_SLICE_S:
                await asyncio.sleep(0)
                started = time.perf_counter()
        for cohort, partition in forgotten:
            await send(key=state_key(cohort), value=None, partition=partition % self.partitions)


class DetectorRestore:
    """Whether saved detectors are to be read back before the next window closes (at start,
    and when aggregates partitions are assigned), and the reading."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.due = True
        self._partitions: set[int] = set()
        self._attempts = ReadBack("detector states", "detectors start without their references")

    def assigned(self, topic_partitions: Iterable[Any]) -> None:
        """Partitions given to this worker: new aggregates partitions are read back."""
        aggregates = self.settings.topics.aggregates.name
        new = {tp.partition for tp in topic_partitions if tp.topic == aggregates}
        if new:
            self._partitions = new
            self.due = True

    async def run(self, states: DetectorStates, watched: Collection[Cohort]) -> None:
        """Read the saved detectors of the assigned aggregates partitions into ``states``
        (none yet: nothing to read). A failed read is retried on the next ticks, a few times,
        with no window closed meanwhile; then the cohorts start afresh, with a warning."""
        if not self._partitions:
            self.due = False
            return
        saved: dict[Cohort, Saved] | None = await self._attempts.read(self._read, {})
        if saved is None:
            return  # tried again at the next tick
        self.due = False
        states.offer(saved, watched)
        log.info("detector states read back for %d cohorts of aggregates partitions %s",
                 len(saved), sorted(self._partitions))  # fmt: skip

    async def _read(self) -> dict[Cohort, Saved]:
        topics, windows = self.settings.topics, self.settings.detectors.windows
        since_ms = int((time.time() - windows.forget_after_windows * windows.size_s) * 1000)
        wanted = {p % topics.detector_state.partitions for p in self._partitions}
        records = await read_recent(
            self.settings.kafka, topics.detector_state.name, since_ms, wanted
        )
        if records is None:
            log.warning("no %s topic: detectors start without their references",
                        topics.detector_state.name)  # fmt: skip
            return {}
        return newest_saved(records, self._partitions)

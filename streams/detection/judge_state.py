"""The canary judges' evidence survives a restart: it travels with each verdict.

Every verdict on ``driftnet.verdicts`` carries its judge's whole state (the e-processes and the
cumulative sketches, 6-15 KB compressed) in the header :data:`STATE_HEADER`, invisible to a
deploy system reading the JSON. A worker that starts, or that is given aggregates partitions,
reads the verdicts of the last ``forget_after_windows`` windows of wall time back before it
closes another window; a canary that has no judge in the worker yet starts from its newest
state, so its evidence goes on from where it was (no broker compaction needed: the test broker
has none).

The state and the verdict are one message, so they cannot disagree: a window whose verdict was
sent is in the state; one whose verdict was lost to a crash is judged again after the restart.
"""

from __future__ import annotations

import logging
import time
import zlib
from typing import TYPE_CHECKING, Any, Final

import orjson

from driftnet.streams.clients.recent_records import ReadBack, read_recent
from driftnet.streams.settings import Settings

if TYPE_CHECKING:
    from driftnet.streams.detection.merge_stage import MergeStage

log = logging.getLogger("driftnet.detection")

STATE_HEADER: Final = "driftnet.judge.state"
READ_TIMEOUT_S: Final = 30.0


def encode_state(state: dict[str, Any]) -> bytes:
    return zlib.compress(orjson.dumps(state), 6)


def decode_state(value: bytes) -> dict[str, Any]:
    """``ValueError`` when it is not a judge state."""
    try:
        state = orjson.loads(zlib.decompress(value))
    except (zlib.error, orjson.JSONDecodeError) as exc:
        raise ValueError(f"unreadable judge state: {exc}") from None
    if not isinstance(state, dict):
        raise ValueError("unreadable judge state: not an object")
    return state


def newest_states(
    headers_list: list[list[tuple[str, bytes]]],
) -> dict[tuple[str, ...], dict[str, Any]]:
    """The newest state (by its last judged window) of each canary among message headers;
    unreadable ones are skipped (logged)."""
    newest: dict[tuple[str, ...], dict[str, Any]] = {}
    for headers in headers_list:
        for name, value in headers:
            if name != STATE_HEADER:
                continue
            try:
                state = decode_state(value)
                cohort = tuple(str(part) for part in state["cohort"])
                end = int(state["last_window_end"] or 0)
            except (ValueError, KeyError, TypeError) as exc:
                log.warning("skipping a judge state: %s", exc)
                continue
            known = newest.get(cohort)
            if known is None or end >= int(known["last_window_end"] or 0):
                newest[cohort] = state
    return newest


async def read_states(
    settings: Settings, now: float | None = None
) -> dict[tuple[str, ...], dict[str, Any]]:
    """The newest judge state of every canary with a verdict in the last
    ``forget_after_windows`` windows of wall time (empty when the topic does not exist)."""
    topic = settings.topics.verdicts.name
    windows = settings.detectors.windows
    since_ms = int(((now or time.time()) - windows.forget_after_windows * windows.size_s) * 1000)
    records = await read_recent(settings.kafka, topic, since_ms, timeout_s=READ_TIMEOUT_S)
    if records is None:
        log.warning("no %s topic: canary judges start without history", topic)
        return {}
    return newest_states([list(record.headers) for record in records])


class JudgeRestore:
    """Whether the canary judges' states are to be read back before the next window closes
    (at start, and when aggregates partitions are assigned), and the reading."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.due = True
        self._attempts = ReadBack(
            "canary judge states", "canary judges start without their history"
        )

    async def run(self, merge: MergeStage) -> None:
        """Read the canary judges' states back into ``merge`` before any window closes (see
        the module's docstring). A failed read is retried on the next ticks, a few times, with
        no window closed meanwhile; then the judges start afresh, with a warning."""
        if not self.settings.detectors.canary.enabled:
            self.due = False
            return
        states: dict[tuple[str, ...], dict[str, Any]] | None = await self._attempts.read(
            lambda: read_states(self.settings), {}
        )
        if states is None:
            return  # tried again at the next tick
        self.due = False
        merge.restore(states)
        if states:
            log.info("canary judge states read back for %d canaries", len(states))

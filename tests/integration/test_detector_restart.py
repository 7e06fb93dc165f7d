"""A restarted worker is not blind: the detectors' references saved to the detector-state
topic come back, so a latency regression that starts one window after a crash is caught at
once -- with fresh detectors it could not be before ``min_reference_windows`` (4 here) windows
had refilled each reference.

One baseline cohort: five normal windows through a first worker, SIGKILLed once the last of
them is saved; then a second worker, one normal window and two with doubled latency. Event
times are a little ahead of the wall clock (within ``decode.max_future_s``), so that windows
close on the events' watermark only, never on an idle worker's wall clock: an event 11 s into
the next window closes the last one of each phase."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from driftnet.detectors.config import DetectorsConfig
from driftnet.streams.clients.publisher import EventPublisher
from driftnet.streams.clients.topics import create_topics
from driftnet.streams.detection.detector_state import decode_saved
from driftnet.streams.settings import PublisherSettings, Settings
from tests.support.factories import make_event
from tests.support.kafka_helpers import WorkerProcess, read_topic, stream_settings, unique_topics

pytestmark = pytest.mark.integration

PER_WINDOW = 120
BEFORE = 5
"""Windows the first worker sees (its references hold them all: more than the 3 needed)."""
SLOW_FROM = BEFORE + 1
"""The first slow window: one normal window after the restart, then the regression."""


def _event(start: datetime, second: float, name: str, slow: float, rng: random.Random) -> Any:
    at = start + timedelta(seconds=second)
    return make_event(
        event_id=name,
        timestamp=at.isoformat().replace("+00:00", "Z"),
        latency_ms=round(rng.lognormvariate(6.7, 0.25) * slow, 1),
        ttft_ms=round(rng.lognormvariate(5.3, 0.2), 1),
    )


def _publish(settings: Settings, start: datetime, windows: range, rng: random.Random) -> None:
    """``PER_WINDOW`` events in each of ``windows`` (minutes after ``start``), latency doubled
    from ``SLOW_FROM`` on; then, in a message of its own (so that the open window it starts
    replays alone after a kill), one event 11 s into the next window, whose watermark closes
    the last of them (allowed lateness: 10 s)."""
    with EventPublisher(
        settings.kafka, settings.topics.events.name, PublisherSettings()
    ) as publisher:
        for window in windows:
            slow = 2.0 if window >= SLOW_FROM else 1.0
            for i in range(PER_WINDOW):
                second = window * 60 + i * 60 / PER_WINDOW
                assert publisher.publish(_event(start, second, f"w{window}-{i}", slow, rng))
        publisher.flush(30)
        closer = _event(start, windows[-1] * 60 + 71, f"w{windows[-1] + 1}-closer", 1.0, rng)
        assert publisher.publish(closer)
        publisher.flush(30)


def _saved_until(settings: Settings, window_end: int, timeout_s: float) -> list[int]:
    """Wait until the detector-state topic holds the cohort's references up to
    ``window_end``; every saved window end, in order."""
    deadline = time.monotonic() + timeout_s
    ends: list[int] = []
    while time.monotonic() < deadline:
        records = read_topic(
            settings.kafka.bootstrap_servers,
            settings.topics.detector_state.name,
            expected=1,
            timeout_s=2,
            settle_s=0.5,
        )
        ends = [decode_saved(r.value).window_end for r in records if r.value is not None]
        if window_end in ends:
            return ends
    raise AssertionError(f"no saved references up to {window_end}; saved: {ends}")


def test_a_regression_right_after_a_restart_is_caught_against_the_saved_reference(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """The first worker saves the cohort's references at each window close and is killed;
    the second reads them back before it closes a window, and the latency regression that
    starts one window after the restart is found in its first or second window, against the
    trailing reference of the windows before the crash."""
    settings = stream_settings(kafka_bootstrap, unique_topics("restart"), tmp_path / "data")
    worker_settings = settings.worker.model_copy(
        update={"session_timeout_s": 3.0, "commit_interval_s": 0.5, "rebalance_timeout_s": 1.5}
    )
    detectors = DetectorsConfig.model_validate(
        {"windows": {"idle_timeout_s": 2}, "defaults": {"min_reference_windows": 4}}
    )
    settings = settings.model_copy(update={"worker": worker_settings, "detectors": detectors})
    create_topics(settings.kafka, settings.topics.by_role())
    rng = random.Random(27)
    # the next minute: the last event (phase 2) is at most 9.2 minutes ahead of the clock
    start = datetime.fromtimestamp((int(time.time()) // 60 + 1) * 60, UTC)

    def at(window: int) -> int:
        return int((start + timedelta(minutes=window)).timestamp())

    first = WorkerProcess(settings, tmp_path / "first.log").start()
    try:
        _publish(settings, start, range(BEFORE), rng)
        saved = _saved_until(settings, at(BEFORE), timeout_s=60)
        assert saved == sorted(saved), "at most one record per tick, the newest window last"
        time.sleep(1.5)  # the closed windows' offsets are committed (every 0.5 s)
    finally:
        first.kill()  # SIGKILL: no shutdown, no flush

    with WorkerProcess(settings, tmp_path / "second.log") as second:
        _publish(settings, start, range(BEFORE, SLOW_FROM + 2), rng)
        _saved_until(settings, at(SLOW_FROM + 2), timeout_s=60)
        findings = [
            orjson.loads(r.value)
            for r in read_topic(
                kafka_bootstrap, settings.topics.findings.name, expected=1, timeout_s=10
            )
        ]
        assert second.stop() == 0, second.log
    assert "detector states read back for 1 cohorts" in second.log, second.log
    caught = sorted(
        f["window_start"]
        for f in findings
        if f["detector"].startswith("latency.") and f["reference_kind"] == "trailing"
    )
    assert caught, f"the regression was not caught: {findings}\n{second.log[-4000:]}"
    assert caught[0] in (at(SLOW_FROM), at(SLOW_FROM + 1)), caught
    assert all(f["window_start"] >= at(SLOW_FROM) for f in findings), findings
    assert "Traceback" not in first.log + second.log

"""The windowed detectors on a real broker: a canary whose latency doubles is found by the worker,
the finding lands on the findings topic and its worst examples on the failures topic as
evidence; windows of a stream that went quiet still close."""

from __future__ import annotations

import random
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from driftnet.harvest.records import FailureRecord
from driftnet.streams.clients.publisher import EventPublisher
from driftnet.streams.settings import PublisherSettings
from tests.support.factories import make_event
from tests.support.kafka_helpers import (
    DRIFTNET,
    WorkerProcess,
    detection_settings,
    read_topic,
    settings_env,
)

pytestmark = pytest.mark.integration

START = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
WINDOWS = 10
STEP_AT = 6
PER_WINDOW = 120


def traffic(rng: random.Random) -> list[dict[str, Any]]:
    """Ten 60-second windows of a baseline and a canary cohort; from window 6 on, the canary's
    latency doubles. Events of a window are in time order; windows follow each other."""
    events = []
    for window in range(WINDOWS):
        for variant, release in (("baseline", "gpt-4o+v7"), ("canary", "gpt-4o+v8")):
            slow = 2.0 if variant == "canary" and window >= STEP_AT else 1.0
            for i in range(PER_WINDOW):
                at = START + timedelta(seconds=window * 60 + i * 60 / PER_WINDOW)
                events.append(
                    make_event(
                        event_id=f"{variant}-{window:02d}-{i:03d}",
                        timestamp=at.isoformat().replace("+00:00", "Z"),
                        release=release,
                        variant=variant,
                        latency_ms=round(rng.lognormvariate(6.7, 0.25) * slow, 1),
                        ttft_ms=round(rng.lognormvariate(5.3, 0.2), 1),
                    )
                )
    events.sort(key=lambda e: str(e["timestamp"]))
    return events


def test_a_canary_latency_regression_is_found_with_its_evidence(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """The canary's doubled latency gives latency findings for the canary only (from its step
    window on), published as JSON; their slowest events are on the failures topic as evidence
    tagged with the finding id; when the stream stops, its windows still close and the drop
    to zero is found."""
    settings = detection_settings(kafka_bootstrap, tmp_path)
    events = traffic(random.Random(7))
    with WorkerProcess(settings, tmp_path / "worker.log") as worker:
        with EventPublisher(
            settings.kafka, settings.topics.events.name, PublisherSettings()
        ) as publisher:
            for event in events:
                publisher.publish(event)
            publisher.flush(30)
        worker.wait_for("evidently: ", timeout_s=90)  # the full check ran and reported
        findings_raw = read_topic(
            kafka_bootstrap, settings.topics.findings.name, expected=1, timeout_s=30, settle_s=2
        )
        worker.wait_for("windows closed", timeout_s=60)
        assert worker.stop() == 0, worker.log
    findings = [orjson.loads(r.value) for r in findings_raw]
    latency = [f for f in findings if f["detector"].startswith("latency.")]
    assert latency, (findings, worker.log)
    assert {tuple(f["cohort"])[3] for f in latency} == {"canary"}
    first_step = int((START + timedelta(minutes=STEP_AT)).timestamp())
    assert min(f["window_start"] for f in latency) >= first_step
    # the stream then stops: its silent windows close on the idle timer, and the baseline's
    # traffic dropping to zero is a finding, not silence (a canary's volume is not watched)
    last = int((START + timedelta(minutes=WINDOWS)).timestamp())
    drops = {f["cohort"][3] for f in findings if f["detector"] == "volume.drop.v1"}
    assert drops == {"baseline"}
    assert min(f["window_start"] for f in findings if f["detector"] == "volume.drop.v1") >= last

    records = [
        FailureRecord.model_validate_json(r.value)
        for r in read_topic(kafka_bootstrap, settings.topics.failures.name, expected=1)
    ]
    evidence = [r for r in records if r.kind == "evidence"]
    finding_ids = {f["finding_id"] for f in findings}
    assert evidence
    assert {r.finding_id for r in evidence} <= finding_ids
    for record in evidence:
        assert record.event.variant == "canary"
        assert record.event.event_id in next(
            f["example_event_ids"] for f in findings if f["finding_id"] == record.finding_id
        )
    drift_reports = [f for f in findings if f["metric"].startswith("evidently_drift[")]
    assert drift_reports, "the KS finding on latency should have triggered evidently's check"
    for finding in drift_reports:
        assert finding["cohort"][3] == "canary"
        report = Path(finding["report"])
        assert report.is_file()
        assert "<html" in report.read_text()[:2000].lower()
    assert "Traceback" not in worker.log


@pytest.mark.parametrize("kill_after_s", [0.5, 2.0], ids=["kill-early", "kill-late"])
def test_a_killed_worker_replays_its_open_windows(
    kafka_bootstrap: str, tmp_path: Path, kill_after_s: float
) -> None:
    """SIGKILLed while windows are open, a worker restarted in the same group replays what it
    had not finished: every canary window from the step on still gets its latency finding
    against the baseline, however far the first run got."""
    settings = detection_settings(kafka_bootstrap, tmp_path)
    with EventPublisher(
        settings.kafka, settings.topics.events.name, PublisherSettings()
    ) as publisher:
        for event in traffic(random.Random(11)):
            publisher.publish(event)
        publisher.flush(30)
    first = WorkerProcess(settings, tmp_path / "first.log").start()
    try:
        first.wait_for("valid events", timeout_s=60)
        time.sleep(kill_after_s)
    finally:
        first.kill()
    with WorkerProcess(settings, tmp_path / "second.log") as second:
        second.wait_for("evidently: ", timeout_s=90)
        findings_raw = read_topic(
            kafka_bootstrap, settings.topics.findings.name, expected=1, timeout_s=30, settle_s=2
        )
        assert second.stop() == 0, second.log
    findings = [orjson.loads(r.value) for r in findings_raw]
    against_baseline = {
        f["window_start"]
        for f in findings
        if f["detector"] == "latency.p50.v1" and f["reference_kind"] == "baseline"
    }
    step_windows = {
        int((START + timedelta(minutes=window)).timestamp()) for window in range(STEP_AT, WINDOWS)
    }
    assert against_baseline == step_windows, (first.log, second.log)


def test_simulated_canary_latency_regression_is_found(kafka_bootstrap: str, tmp_path: Path) -> None:
    """``driftnet simulate --scenario canary-latency``, 20 minutes in 10 seconds: the worker
    finds the canaries' latency rise against their baselines, and nothing on the baselines'
    latency."""
    settings = detection_settings(kafka_bootstrap, tmp_path)
    with WorkerProcess(settings, tmp_path / "worker.log") as worker:
        simulated = subprocess.run(
            [str(DRIFTNET), "simulate", "--scenario", "canary-latency", "--duration", "20m",
             "--speedup", "120", "--rate", "1500", "--seed", "3", "--quiet"],
            env=settings_env(settings), capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert simulated.returncode == 0, simulated.stderr
        assert "sent 15,000 of 15,000 events" in simulated.stdout
        worker.wait_for("latency.p50.v1", timeout_s=60)
        findings_raw = read_topic(
            kafka_bootstrap, settings.topics.findings.name, expected=1, timeout_s=30, settle_s=3
        )
        assert worker.stop() == 0, worker.log
    findings = [orjson.loads(r.value) for r in findings_raw]
    latency = [f for f in findings if f["detector"] == "latency.p50.v1"]
    assert {f["cohort"][3] for f in latency} == {"canary"}
    assert {f["reference_kind"] for f in latency} >= {"baseline"}
    assert not [f for f in findings if f["metric"] == "drift[response_model]"]


def test_the_drift_checker_process_dies_with_a_killed_worker(tmp_path: Path) -> None:
    """The evidently checker (a spawned process pool worker) exits when its worker is killed
    with SIGKILL instead of waiting for work forever as an orphan."""
    import os
    import signal
    import sys

    parent_code = (
        "import multiprocessing, os, sys, time\n"
        "from concurrent.futures import ProcessPoolExecutor\n"
        "from driftnet.streams.detection.full_checks import exit_with_parent\n"
        "if __name__ == '__main__':\n"
        "    pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context('spawn'),\n"
        "                               initializer=exit_with_parent, initargs=(os.getpid(),))\n"
        "    print(pool.submit(os.getpid).result(), flush=True)\n"
        "    time.sleep(60)\n"
    )
    script = tmp_path / "parent.py"
    script.write_text(parent_code)
    parent = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, text=True, cwd=Path.cwd()
    )
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait(timeout=10)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and Path(f"/proc/{child}").exists():
        status = (
            Path(f"/proc/{child}/status").read_text() if Path(f"/proc/{child}").exists() else ""
        )
        if "State:\tZ" in status:
            break
        time.sleep(0.2)
    alive = Path(f"/proc/{child}/status")
    assert not alive.exists() or "State:\tZ" in alive.read_text()

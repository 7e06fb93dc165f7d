"""The canary judge on a real broker: ``driftnet simulate --scenario canary-latency`` through the
worker gives verdicts on ``driftnet.verdicts`` (Pass-side before the incident, Fail with the
latency metrics after), a regression pack on ``driftnet.failures`` that the harvest shows by
arm, and ``driftnet canary status`` prints the current verdicts."""

from __future__ import annotations

import subprocess
import time
from datetime import datetime
from pathlib import Path

import orjson
import pytest

from driftnet.detectors.canary.verdict import Verdict
from driftnet.storage.query import Harvest
from driftnet.streams.settings import Settings
from tests.support.kafka_helpers import (
    DRIFTNET,
    WorkerProcess,
    detection_settings,
    read_topic,
    settings_env,
    stream_settings,
    unique_topics,
)

pytestmark = pytest.mark.integration

DURATION_MIN = 20
INCIDENT_WINDOW = 8
STREAM_START = "2026-11-20T09:00:00Z"
"""canary-latency starts its incident at 40% of the duration."""


def canary_settings(kafka_bootstrap: str, tmp_path: Path) -> Settings:
    return detection_settings(kafka_bootstrap, tmp_path, "canary")


def test_simulated_canary_latency_regression_fails_the_canaries(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    settings = canary_settings(kafka_bootstrap, tmp_path)
    env = settings_env(settings)
    with WorkerProcess(settings, tmp_path / "worker.log") as worker:
        simulated = subprocess.run(
            [str(DRIFTNET), "simulate", "--scenario", "canary-latency",
             "--duration", f"{DURATION_MIN}m", "--speedup", "120", "--rate", "3000",
             "--seed", "5", "--quiet", "--start", STREAM_START],
            env=env, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert simulated.returncode == 0, simulated.stderr
        worker.wait_for("canary support-chat/production", timeout_s=60)
        worker.wait_for(": Fail (score", timeout_s=60)
        status = subprocess.run(
            [str(DRIFTNET), "canary", "status"],
            env=env, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        harvest = Harvest.at(settings.harvest.location)
        regressions: list[dict[str, object]] = []
        while time.monotonic() < deadline and len({r["arm"] for r in regressions}) < 2:
            time.sleep(1)
            if harvest.failure_files():
                regressions = harvest.run(
                    "select finding_id, arm, count(*) from failures where kind = 'regression' "
                    "group by all order by all"
                ).to_pylist()
        # read after the harvest: every verdict a regression record names is on the topic by
        # now; and all 19 windows of the 3 canaries, the last ones closed once the stream idles
        verdicts_raw = read_topic(
            kafka_bootstrap, settings.topics.verdicts.name, expected=57, timeout_s=60, settle_s=2
        )
        assert worker.stop() == 0, worker.log

    verdicts = [Verdict.model_validate_json(r.value) for r in verdicts_raw]
    by_canary: dict[str, list[Verdict]] = {}
    for verdict in verdicts:
        by_canary.setdefault("/".join(verdict.cohort), []).append(verdict)
    support = sorted(by_canary["support-chat/production/gpt-4.1-2025-04-14+support-v8/canary"],
                     key=lambda v: v.window_end)  # fmt: skip
    # The incident starts INCIDENT_WINDOW minutes into the simulated stream: anchor there,
    # not on the first verdict, which is a window later when a loaded machine's first
    # partials of that window arrived after it closed (they are counted as late).
    start = datetime.fromisoformat(STREAM_START).timestamp()
    assert support[0].since >= start
    before = [v for v in support if v.window_end <= start + INCIDENT_WINDOW * 60]
    after = [v for v in support if v.window_start >= start + (INCIDENT_WINDOW + 3) * 60]
    assert before, [v.window_start for v in support]
    assert after, [v.window_start for v in support]
    assert all(v.verdict in ("Pass", "Inconclusive") for v in before), [
        (v.verdict, v.reasons) for v in before
    ]
    assert all(v.verdict == "Fail" and v.recommendation == "rollback" for v in after)
    failing = {m.metric for v in after for m in v.failing}
    assert "latency_p95" in failing
    assert support[-1].baseline_release == "gpt-4o-2024-08-06+support-v7"
    p95 = after[-1].metric("latency_p95")
    assert p95.effect is not None
    assert p95.effect > 0.3
    assert p95.cumulative.canary_n > 500
    assert p95.e_value >= p95.e_threshold

    fail_ids = {v.verdict_id for v in verdicts if v.verdict == "Fail"}
    assert {r["arm"] for r in regressions} == {"canary", "baseline"}, regressions
    assert {r["finding_id"] for r in regressions} <= fail_ids

    assert status.returncode == 0, status.stderr
    assert "gpt-4.1-2025-04-14+support-v8 (canary)" in status.stdout, status.stdout
    assert "rollback" in status.stdout
    assert "latency_p95" in status.stdout


def test_canary_status_says_what_is_wrong_in_one_line(tmp_path: Path, kafka_bootstrap: str) -> None:
    """No broker, or no verdicts topic: one line, no traceback."""
    settings = stream_settings(kafka_bootstrap, unique_topics("nocanary"), tmp_path)
    env = settings_env(settings)
    missing = subprocess.run(
        [str(DRIFTNET), "canary", "status", "--timeout", "5"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert missing.returncode == 1
    assert "does not exist" in missing.stderr
    assert "Traceback" not in missing.stderr
    env["DRIFTNET_KAFKA__BOOTSTRAP_SERVERS"] = "127.0.0.1:1"
    nobody = subprocess.run(
        [str(DRIFTNET), "canary", "status", "--timeout", "2"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert nobody.returncode == 1
    assert "no Kafka broker at 127.0.0.1:1" in nobody.stderr, nobody.stderr
    assert "Traceback" not in nobody.stderr


def test_canary_status_json_lines_are_verdicts(kafka_bootstrap: str, tmp_path: Path) -> None:
    """``--format json``: one verdict per canary, the newest, readable as a Verdict."""
    from kafka import KafkaProducer

    from tests.support.canary_sim import Rollout, run

    settings = canary_settings(kafka_bootstrap, tmp_path)
    verdicts = run(Rollout(windows=4), seed=1)
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    for verdict in verdicts:
        producer.send(settings.topics.verdicts.name, verdict.model_dump_json().encode())
    producer.send(settings.topics.verdicts.name, b"not a verdict")
    producer.flush()
    producer.close()
    result = subprocess.run(
        [str(DRIFTNET), "canary", "status", "--format", "json"],
        env=settings_env(settings), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = [Verdict.model_validate(orjson.loads(line)) for line in result.stdout.splitlines()]
    assert lines == [verdicts[-1]]


def test_a_killed_worker_goes_on_with_the_canary_s_evidence(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """SIGKILL the worker after 10 minutes of a canary's traffic, restart it, send 10 more:
    the judge's state came back with the verdicts, so the canary's count of judged windows
    goes on (never restarts at 1) and no window gets two different verdicts."""
    settings = canary_settings(kafka_bootstrap, tmp_path)
    env = settings_env(settings)

    def simulate(start: str, seed: int) -> None:
        done = subprocess.run(
            [str(DRIFTNET), "simulate", "--scenario", "healthy", "--duration", "10m",
             "--speedup", "120", "--rate", "3000", "--seed", str(seed), "--quiet",
             "--start", start],
            env=env, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr

    canary = "support-chat/production/gpt-4.1-2025-04-14+support-v8/canary"
    first = WorkerProcess(settings, tmp_path / "first.log").start()
    try:
        simulate("2026-11-20T09:00:00Z", seed=1)
        first.wait_for(f"canary {canary} vs gpt-4o-2024-08-06+support-v7: Pass", timeout_s=60)
        time.sleep(2)
    finally:
        first.kill()
    with WorkerProcess(settings, tmp_path / "second.log") as second:
        second.wait_for("canary judge states read back for 3 canaries", timeout_s=60)
        simulate("2026-11-20T09:10:00Z", seed=2)
        second.wait_for(f"canary {canary}: evidence of", timeout_s=60)
        verdicts_raw = read_topic(
            kafka_bootstrap, settings.topics.verdicts.name, expected=45, timeout_s=90, settle_s=3
        )
        assert second.stop() == 0, second.log

    series = sorted(
        (Verdict.model_validate_json(r.value) for r in verdicts_raw),
        key=lambda v: (v.window_end, v.windows),
    )
    support = [v for v in series if "/".join(v.cohort) == canary]
    by_window: dict[int, set[str]] = {}
    for verdict in support:
        by_window.setdefault(verdict.window_end, set()).add(verdict.model_dump_json(
            exclude={"decided_at"}))  # fmt: skip
    assert all(len(texts) == 1 for texts in by_window.values())
    counts = [v.windows + v.unpaired_windows for v in support]
    assert counts == sorted(counts), counts
    assert len(set(counts)) == len(counts)
    assert support[-1].since == support[0].since
    assert support[-1].window_end >= support[0].since + 15 * 60  # the second half was judged

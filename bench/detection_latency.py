"""Detection latency on a real broker: from the first regressed event's publish to the first
finding about it on the findings topic (and to the first failing canary verdict, and the
first alert), with the worker's default windows, at a steady publish rate.

The simulator's ``canary-latency`` story (every canary 80% slower). So that the detectors
have a reference, ``--history`` windows of healthy traffic are published first, back-dated
and as fast as the publisher goes; once the worker has read them, live traffic continues the
same event-time line at ``--rate`` events/s (event time = wall time + a fixed shift, so
history and live traffic join without a gap), and the canaries regress ``--lead`` seconds
later, on a window boundary. The bound to meet is window + allowed lateness + 5 s: the
regressed window closes when event time passes its end plus the lateness.

Usage: python -m bench.detection_latency [--rate 200] [--history 5] [--lead 15]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import tempfile
import threading
import time
import uuid
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import orjson

from bench.stream_throughput import WorkerRun, _topics, broker_for, worker_env
from driftnet.detectors.settings import WindowSettings
from driftnet.sandbox.simulation import SCENARIOS, Simulator
from driftnet.streams.clients.publisher import EventPublisher
from driftnet.streams.clients.topics import create_topics
from driftnet.streams.settings import KafkaSettings, PublisherSettings

SCENARIO: Final = "canary-latency"
SETTLE_S = 30.0
"""After the finding, how long to wait for the verdict and the alert of the same window."""
TIMEOUT_WINDOWS = 3
"""Give up when nothing was found this many windows after the regression began."""


@dataclasses.dataclass
class Arrivals:
    """Messages read from the output topics, with the wall time each was read."""

    seen: dict[str, list[tuple[float, dict[str, Any]]]] = dataclasses.field(default_factory=dict)
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)
    stop: threading.Event = dataclasses.field(default_factory=threading.Event)

    def watch(self, bootstrap: str, topics: dict[str, str]) -> threading.Thread:
        """Read ``topics`` (role -> name) from the start, group-less (kafka-python's group join
        hangs on the embedded broker), in a thread."""
        thread = threading.Thread(target=self._run, args=(bootstrap, topics), daemon=True)
        thread.start()
        return thread

    def _run(self, bootstrap: str, topics: dict[str, str]) -> None:
        from kafka import KafkaConsumer, TopicPartition

        consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        roles = {name: role for role, name in topics.items()}
        partitions = [
            TopicPartition(name, p)
            for name in topics.values()
            for p in sorted(consumer.partitions_for_topic(name) or {0})
        ]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        try:
            while not self.stop.is_set():
                for tp, messages in consumer.poll(timeout_ms=100).items():
                    now = time.time()
                    with self.lock:
                        for message in messages:
                            try:
                                value = orjson.loads(message.value)
                            except orjson.JSONDecodeError:
                                continue
                            self.seen.setdefault(roles[tp.topic], []).append((now, value))
        finally:
            consumer.close()

    def first(self, role: str, after: float, match: Any) -> float | None:
        """Wall time the first message of ``role`` read after ``after`` matching ``match``."""
        with self.lock:
            for at, value in self.seen.get(role, ()):
                if at >= after and match(value):
                    return at
        return None


def _is_canary_latency(finding: dict[str, Any], regressed_from: int) -> bool:
    return (
        finding.get("cohort", [None] * 4)[3] == "canary"
        and "latency" in f"{finding.get('detector')} {finding.get('metric')}"
        and int(finding.get("window_end", 0)) > regressed_from
    )


def _is_canary_alert(alert: dict[str, Any]) -> bool:
    return "canary" in json.dumps(alert)


def _is_failing_verdict(verdict: dict[str, Any], regressed_from: int) -> bool:
    return verdict.get("verdict") == "Fail" and int(verdict.get("window_end", 0)) > regressed_from


def measure(bootstrap: str, folder: Path, rate: float, history: int, lead: float) -> dict[str, Any]:
    """One run: the seconds from the first regressed event's publish to each output."""
    windows = WindowSettings()
    size, lateness = windows.size_s, windows.allowed_lateness_s
    kafka = KafkaSettings(bootstrap_servers=bootstrap, client_id="driftnet-bench")
    topics = _topics(f"latency-{uuid.uuid4().hex[:6]}")
    create_topics(kafka, topics.by_role())
    arrivals = Arrivals()
    watched = {r: getattr(topics, r).name for r in ("findings", "verdicts", "alerts")}
    reader = arrivals.watch(bootstrap, watched)

    # Event time: history [start, regress - lead), live from there; regress on a boundary.
    regress = (math.floor(time.time() / size) - 1) * size
    live_from = regress - lead
    start = regress - history * size - lead
    span = regress + TIMEOUT_WINDOWS * size - start
    scenario = dataclasses.replace(SCENARIOS[SCENARIO], incident_at=(regress - start) / span)
    simulator = Simulator(scenario, datetime.fromtimestamp(start, UTC), span, seed=1)
    worker = WorkerRun.start(worker_env(bootstrap, topics, folder), folder)
    options = PublisherSettings(buffer_max_bytes=256 * 1024 * 1024)
    result: dict[str, Any] = {
        "scenario": SCENARIO,
        "window_s": size,
        "allowed_lateness_s": lateness,
        "bound_s": size + lateness + 5,
        "rate_events_per_s": rate,
        "history_windows": history,
    }
    try:
        with EventPublisher(kafka, topics.events.name, options) as publisher:
            backlog = round((live_from - start) * rate)
            for i in range(backlog):
                publisher.publish(simulator.event_at(i / rate))
            publisher.flush(120)
            deadline = time.monotonic() + 300
            while not worker.points() or worker.points()[-1][1] < backlog:
                worker.check_alive()
                if time.monotonic() > deadline:
                    raise SystemExit("the worker did not read the history in 5 minutes")
                time.sleep(0.2)
            shift = live_from - time.time()  # event time = wall time + shift from here on
            first_regressed: float | None = None
            sent = 0
            give_up = regress - shift + TIMEOUT_WINDOWS * size
            live_started = time.time()
            while time.time() < give_up:
                now = time.time()
                due = round((now - live_started) * rate)
                while sent < due:
                    offset = (live_started + shift - start) + sent / rate
                    event = simulator.event_at(min(offset, span))
                    publisher.publish(event)
                    sent += 1
                    if (
                        first_regressed is None
                        and offset + start >= regress
                        and event["variant"] == "canary"
                    ):
                        first_regressed = time.time()
                if first_regressed is not None and arrivals.first(
                    "findings", first_regressed, lambda f: _is_canary_latency(f, regress)
                ):
                    break
                time.sleep(0.01)
            if first_regressed is None:
                raise SystemExit("no regressed event was published")
            # a little longer, for the verdict and the alert of the same window
            settle = time.time() + SETTLE_S
            while time.time() < settle and not arrivals.first(
                "alerts", first_regressed, _is_canary_alert
            ):
                t = time.time()
                publisher.publish(simulator.event_at(min(t + shift - start, span)))
                time.sleep(1 / rate)
    finally:
        worker.stop()
        arrivals.stop.set()
        reader.join(10)
    finding = arrivals.first("findings", first_regressed, lambda f: _is_canary_latency(f, regress))
    verdict = arrivals.first("verdicts", first_regressed, lambda v: _is_failing_verdict(v, regress))
    alert = arrivals.first("alerts", first_regressed, _is_canary_alert)
    result["alerts_read"] = len(arrivals.seen.get("alerts", ()))
    for name, at in (("finding", finding), ("verdict", verdict), ("alert", alert)):
        result[f"to_{name}_s"] = None if at is None else round(at - first_regressed, 1)
    # when the regressed window may close at the earliest: its end + lateness, in wall time
    result["window_close_s"] = round(regress + size + lateness - shift - first_regressed, 1)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=200.0, help="live events/s")
    parser.add_argument("--history", type=int, default=5, help="healthy windows first")
    parser.add_argument("--lead", type=float, default=15.0, help="live seconds before it")
    args = parser.parse_args()
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="driftnet-bench-") as tmp:
        folder = Path(tmp)
        bootstrap = broker_for(None, stack, folder)
        result = measure(bootstrap, folder, args.rate, args.history, args.lead)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

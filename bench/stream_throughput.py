"""Stream throughput on a real broker, in one run on the same topic:

- the publisher: ``EventPublisher`` events/s until Kafka acknowledged them all;
- (a) a raw aiokafka consumer that only parses the JSON: the ceiling for one Python process;
- (b) ``driftnet worker`` (decode, validate, failure rules, producing failure records);
- (c) the ratio b / a;

for 100-event batches (the publisher's default) and for one event per message.
The worker's rate is read from its own count reports (every 0.5 s), from the first report
with events in it to the one that reaches the total. Usage:

    python -m bench.stream_throughput [--events 300000] [--single 40000] [--bootstrap HOST:PORT]
                                      [--failing 0.05] [--invalid 0.001]

Without ``--bootstrap`` it starts the embedded broker. Writes bench/stream_throughput.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from bench.corpus import ROOT, unique_events
from streams.broker import EmbeddedBroker
from streams.publisher import EventPublisher
from streams.settings import KafkaSettings, PublisherSettings, TopicSettings
from streams.topics import create_topics

DRIFTNET = Path(sys.executable).parent / "driftnet"
REPORT = re.compile(
    r"^\[(?P<at>[\d-]+ [\d:,]+)\].*total: \d+ messages, (?P<valid>\d+) valid events, "
    r"\d+ failures, (?P<dead>\d+) dead letters"
)


def _topics(tag: str) -> TopicSettings:
    return TopicSettings.model_validate(
        {
            "events": {"name": f"bench-{tag}.events", "partitions": 4},
            "dlq": f"bench-{tag}.dlq",
            "failures": f"bench-{tag}.failures",
            "aggregates": f"bench-{tag}.aggregates",
            "findings": f"bench-{tag}.findings",
        }
    )


def broker_for(bootstrap: str | None, stack: ExitStack, folder: Path) -> str:
    """``bootstrap`` when given, else an embedded broker that lives as long as ``stack``."""
    if bootstrap:
        return bootstrap
    broker = stack.enter_context(EmbeddedBroker(log=folder / "tansu.log"))
    return str(broker.bootstrap_servers)


def publish(kafka: KafkaSettings, topic: str, events: list[dict[str, Any]], batch: int) -> float:
    """Events/s from the first publish() to the last acknowledgement."""
    options = PublisherSettings(batch_max_events=batch, buffer_max_bytes=512 * 1024 * 1024)
    started = time.perf_counter()
    with EventPublisher(kafka, topic, options) as publisher:
        for event in events:
            publisher.publish(event)
        publisher.flush(600)
    elapsed = time.perf_counter() - started
    stats = publisher.stats
    if stats.sent != len(events):
        raise SystemExit(f"publisher delivered {stats.sent} of {len(events)}: {stats}")
    return len(events) / elapsed


async def _raw_consume(bootstrap: str, topic: str, expected: int) -> float:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        partitions = sorted(consumer.partitions_for_topic(topic) or ())
        consumer.assign([TopicPartition(topic, p) for p in partitions])
        await consumer.seek_to_beginning()
        events = 0
        started = time.perf_counter()
        while events < expected:
            for messages in (await consumer.getmany(timeout_ms=1000)).values():
                for message in messages:
                    document = orjson.loads(message.value)
                    events += len(document) if isinstance(document, list) else 1
        return events / (time.perf_counter() - started)
    finally:
        await consumer.stop()


def raw_consume(bootstrap: str, topic: str, expected: int) -> float:
    return asyncio.run(_raw_consume(bootstrap, topic, expected))


def worker_env(
    bootstrap: str,
    topics: TopicSettings,
    folder: Path,
    *,
    detect: bool = True,
    app_id: str | None = None,
    extra: dict[str, str] | None = None,
) -> dict[str, str]:
    """The environment of a bench ``driftnet worker``: this broker and topics, its own group
    (``app_id``; workers given the same one share the partitions), fast count reports, a
    harvest folder and sink group of its own, no default port; ``extra`` on top."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTNET_")}
    env |= {
        "DRIFTNET_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
        "DRIFTNET_WORKER__APP_ID": app_id or f"bench-{uuid.uuid4().hex[:8]}",
        "DRIFTNET_WORKER__DATA_DIR": str(folder / f"worker-{uuid.uuid4().hex[:6]}"),
        "DRIFTNET_WORKER__REPORT_INTERVAL_S": "0.5",
        "DRIFTNET_WORKER__REBALANCE_TIMEOUT_S": "1.5",
        "DRIFTNET_HARVEST__LOCATION": str(folder / "harvest"),
        "DRIFTNET_HARVEST__GROUP_ID": f"bench-harvest-{uuid.uuid4().hex[:8]}",
        "DRIFTNET_WORKER__DETECT": "true" if detect else "false",
        "DRIFTNET_HTTP__PORT": "0",  # never the default port a worker running here may hold
    }
    for role, spec in topics.by_role().items():
        env[f"DRIFTNET_TOPICS__{role.upper()}__NAME"] = spec.name
    return env | (extra or {})


@dataclass
class WorkerRun:
    """One ``driftnet worker`` process of a bench, its log, and what it cost."""

    process: subprocess.Popen[bytes]
    log_path: Path

    @classmethod
    def start(cls, env: dict[str, str], folder: Path) -> WorkerRun:
        log_path = folder / f"worker-{uuid.uuid4().hex[:6]}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen([str(DRIFTNET), "worker"], env=env, stdout=log, stderr=log)
        return cls(process, log_path)

    def points(self) -> list[tuple[float, int]]:
        return _points(self.log_path.read_text(errors="replace"))

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise SystemExit(f"worker exited:\n{self.log_path.read_text()}")

    def cpu_seconds(self) -> float:
        """User + system CPU of the worker and its live children (the evidently checker)."""
        return sum(proc_cpu_seconds(pid) for pid in process_tree(self.process.pid))

    def peak_rss_bytes(self) -> int:
        """The worker process's peak resident memory (VmHWM; its children not included)."""
        return proc_peak_rss(self.process.pid)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        (ROOT / "bench" / "last_worker.log").write_bytes(self.log_path.read_bytes())


def process_tree(pid: int) -> list[int]:
    """``pid`` and its live descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, ()))
    return tree


def proc_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one live process (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_peak_rss(pid: int) -> int:
    """Peak resident bytes (VmHWM) of one live process (0 when it is gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


@dataclass
class WorkerMeasure:
    """A worker's (or a group's) rate over a preloaded topic and what it cost."""

    events_per_s: float
    cpu_seconds: float
    """CPU from start to the last event, start-up (imports, group join) included."""
    steady_cpu_seconds: float
    """CPU from the first count report with events in it to the last event."""
    steady_events: int
    """Events handled in that stretch."""
    peak_rss_bytes: int
    events: int

    @property
    def cpu_s_per_1000(self) -> float:
        """Steady CPU seconds per 1,000 events (start-up left out)."""
        return self.steady_cpu_seconds / max(self.steady_events, 1) * 1000


def measure_workers(
    envs: list[dict[str, str]], folder: Path, expected: int, timeout_s: float = 600
) -> WorkerMeasure:
    """Start one worker per environment (the same ``app_id``: one consumer group), wait until
    their counts add up to ``expected`` events, and stop them. The rate runs from the first
    count report with events in it to the report at which the last worker reached its final
    count; CPU is every worker's (and its children's), read as the counts are polled."""
    runs = [WorkerRun.start(env, folder) for env in envs]
    steady_from: tuple[float, int] | None = None  # (CPU, events) when events first showed
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            series = [run.points() for run in runs]
            done = sum(points[-1][1] for points in series if points)
            if steady_from is None and done > 0:
                steady_from = (sum(run.cpu_seconds() for run in runs), done)
            if done >= expected:
                cpu = sum(run.cpu_seconds() for run in runs)
                rss = max(run.peak_rss_bytes() for run in runs)
                busy = [points for points in series if points[-1][1] > 0]
                first = min(next(p for p in points if p[1] > 0)[0] for points in busy)
                base = sum(
                    max((p[1] for p in points if p[0] <= first), default=0) for points in series
                )
                last = max(next(p for p in points if p[1] >= points[-1][1])[0] for points in busy)
                rate = (expected - base) / max(last - first, 1e-9)
                assert steady_from is not None
                return WorkerMeasure(
                    events_per_s=rate,
                    cpu_seconds=cpu,
                    steady_cpu_seconds=cpu - steady_from[0],
                    steady_events=done - steady_from[1],
                    peak_rss_bytes=rss,
                    events=expected,
                )
            for run in runs:
                run.check_alive()
            time.sleep(0.2)
        raise SystemExit(
            f"workers did not reach {expected} events:\n{runs[0].log_path.read_text()}"
        )
    finally:
        for run in runs:
            run.stop()


def worker_rate(
    bootstrap: str, topics: TopicSettings, expected: int, folder: Path, detect: bool = True
) -> float:
    """Run ``driftnet worker`` until its counts reach ``expected`` events; events/s."""
    env = worker_env(bootstrap, topics, folder, detect=detect)
    return measure_workers([env], folder, expected).events_per_s


def _points(log: str) -> list[tuple[float, int]]:
    """(time, events handled: valid + dead-lettered) from the worker's count reports."""
    points = []
    for line in log.splitlines():
        match = REPORT.match(line.strip())
        if match:
            at = datetime.strptime(match["at"], "%Y-%m-%d %H:%M:%S,%f").timestamp()
            points.append((at, int(match["valid"]) + int(match["dead"])))
    return points


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=300_000, help="events in 100-event batches")
    parser.add_argument("--single", type=int, default=40_000, help="events one per message")
    parser.add_argument("--bootstrap", help="an external broker (default: start the embedded one)")
    parser.add_argument("--failing", type=float, default=0.05, help="share of failing events")
    parser.add_argument("--invalid", type=float, default=0.001, help="share of invalid events")
    parser.add_argument(
        "--no-detect", action="store_true", help="run the worker without the windowed detectors"
    )
    args = parser.parse_args()

    rows = []
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="driftnet-bench-") as tmp:
        folder = Path(tmp)
        bootstrap = broker_for(args.bootstrap, stack, folder)
        kafka = KafkaSettings(bootstrap_servers=bootstrap, client_id="driftnet-bench")
        for shape, count, batch in (("batch100", args.events, 100), ("single", args.single, 1)):
            if count <= 0:
                continue
            topics = _topics(f"{shape}-{uuid.uuid4().hex[:6]}")
            create_topics(kafka, topics.by_role())
            events = unique_events(count, failing=args.failing, invalid=args.invalid)
            size = sum(len(orjson.dumps(e)) for e in events[:1000]) / min(count, 1000)
            published = publish(kafka, topics.events.name, events, batch)
            raw = raw_consume(bootstrap, topics.events.name, count)
            worker = worker_rate(bootstrap, topics, count, folder, detect=not args.no_detect)
            rows.append(
                {
                    "messages": shape,
                    "events": count,
                    "event_bytes": round(size),
                    "publisher_events_per_s": round(published),
                    "raw_consume_parse_events_per_s": round(raw),
                    "worker_events_per_s": round(worker),
                    "worker_ratio_to_raw": round(worker / raw, 3),
                }
            )
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    print(
        f"{machine}, broker: {'external' if args.bootstrap else 'embedded Tansu'}; "
        f"{args.failing:.1%} of events fail a rule, {args.invalid:.1%} are invalid; "
        f"detectors {'off' if args.no_detect else 'on'}"
    )
    print(
        f"{'messages':<10}{'events':>9}{'bytes':>7}{'publisher/s':>13}{'(a) raw/s':>11}"
        f"{'(b) worker/s':>14}{'b/a':>7}"
    )
    for row in rows:
        print(
            f"{row['messages']:<10}{row['events']:>9,}{row['event_bytes']:>7}"
            f"{row['publisher_events_per_s']:>13,}{row['raw_consume_parse_events_per_s']:>11,}"
            f"{row['worker_events_per_s']:>14,}{row['worker_ratio_to_raw']:>7.3f}"
        )
    result = {
        "machine": machine,
        "failing": args.failing,
        "invalid": args.invalid,
        "detect": not args.no_detect,
        "rows": rows,
    }
    (ROOT / "bench" / "stream_throughput.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()

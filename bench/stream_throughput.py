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
import urllib.request
import uuid
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from bench.corpus import ROOT, unique_events
from driftnet.sandbox.broker import EmbeddedBroker
from driftnet.streams.clients.publisher import EventPublisher
from driftnet.streams.clients.topics import create_topics
from driftnet.streams.settings import KafkaSettings, PublisherSettings, TopicSettings

DRIFTNET = Path(sys.executable).parent / "driftnet"
REPORT = re.compile(
    r"^\[(?P<at>[\d-]+ [\d:,]+)\].*total: \d+ messages, (?P<valid>\d+) valid events, "
    r"\d+ failures, (?P<dead>\d+) dead letters"
)
METRICS_AT = re.compile(r"health and metrics at \S+ and (?P<url>http://\S+/metrics)")
LATE_PARTIALS = re.compile(r"late partials (?P<n>\d+)")
IDLE_CPU_PER_S = 0.05
"""A worker (and its children) using less CPU than this per second is idle."""
IDLE_FOR_S = 2.0


def _topics(tag: str) -> TopicSettings:
    """Every topic of a bench run named by its tag: a run must not read back what an
    earlier one left (canary judge states on the verdicts topic, silences, alerts)."""
    names = {role: f"bench-{tag}.{role}" for role in TopicSettings.model_fields}
    return TopicSettings.model_validate(
        names | {"events": {"name": f"bench-{tag}.events", "partitions": 4}}
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

    def metrics_url(self) -> str | None:
        """The worker's ``/metrics`` address, from its log (it binds port 0: a free one)."""
        match = METRICS_AT.search(self.log_path.read_text(errors="replace"))
        return match["url"] if match else None

    def metrics(self, timeout_s: float = 30.0) -> dict[str, float] | None:
        """The worker's Prometheus metrics (:func:`parse_metrics`); None when it does not
        answer (not listening yet, or its loop busy judging windows for ``timeout_s``)."""
        url = self.metrics_url()
        if url is None:
            return None
        try:
            with urllib.request.urlopen(url, timeout=timeout_s) as response:
                return parse_metrics(response.read().decode())
        except OSError:
            return None

    def late_partials(self) -> int:
        """Partials the merge stage left out because their window had closed, summed over
        the worker's reports (each gives those since the last)."""
        log = self.log_path.read_text(errors="replace")
        return sum(int(m["n"]) for m in LATE_PARTIALS.finditer(log))

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise SystemExit(f"worker exited:\n{self.log_path.read_text()}")

    def cpu_seconds(self) -> float:
        """User + system CPU of the worker and its live children (the evidently checker)."""
        return sum(proc_cpu_seconds(pid) for pid in process_tree(self.process.pid))

    def children_cpu_seconds(self) -> float:
        """User + system CPU of the worker's live children alone (the evidently checker)."""
        return sum(proc_cpu_seconds(pid) for pid in process_tree(self.process.pid)[1:])

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


def parse_metrics(text: str) -> dict[str, float]:
    """Prometheus text exposition as ``{sample name: value}``, the samples of a labelled
    metric summed over its labels (``driftnet_findings_total`` is every detector's)."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        name = head.split("{", 1)[0].strip()
        try:
            out[name] = out.get(name, 0.0) + float(value)
        except ValueError:
            continue
    return out


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
class Drain:
    """What a worker did from the moment its counts reached the total until it had judged
    every window its events fill (``drain_until`` of :func:`measure_workers`)."""

    cpu_seconds: float
    """CPU from the first count report with events in it (the start of
    ``WorkerMeasure.steady_cpu_seconds``) to done."""
    tail_s: float
    """Wall seconds from the count report that reached the total to done."""
    tail_cpu_seconds: float
    """CPU from the first scrape after the counts reached the total to done."""
    tail_windows: int
    """Windows closed from that scrape to done (so with ``tail_cpu_seconds``: no triage in
    either, only the windows' partials, merging, judging and publishing)."""
    windows_closed: int
    """``driftnet_windows_closed_total`` at done (every worker's)."""
    late_events: int
    """``driftnet_late_events_total`` at done: events left out of windows already closed."""
    late_partials: int
    """Partials the merge stage left out as late (from the worker's log)."""
    judge_seconds: float
    """``driftnet_detector_seconds_sum`` at done: wall seconds inside the merge stage's
    close (merging, every detector, the canary judge), over the whole run."""
    idle_cpu_per_s: float
    """CPU per second of the worker over the idle stretch that ended the wait."""
    peak_rss_bytes: int
    """The worker's peak resident memory (VmHWM) at done, the drain included."""
    children_cpu_seconds: float
    """CPU of the worker's live children at done, over their lifetime (the evidently checker,
    started at the first full drift check, after the first window closed: inside
    ``cpu_seconds``)."""

    @property
    def tail_cpu_us_per_window(self) -> float | None:
        """CPU µs per window closed once the triage is over (None with under 100 such
        windows): an upper bound on judging one, since the tail also carries the partials'
        transport, findings and verdicts published, the full drift checks and the idle loop."""
        if self.tail_windows < 100:
            return None
        return self.tail_cpu_seconds / self.tail_windows * 1e6

    @property
    def judge_wall_us_per_window(self) -> float | None:
        """Wall µs inside the merge stage's close per window closed, over the whole run."""
        if self.windows_closed <= 0:
            return None
        return self.judge_seconds / self.windows_closed * 1e6


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
    drain: Drain | None = None
    """With ``drain_until``: what the worker did after the last event until done judging."""

    @property
    def cpu_s_per_1000(self) -> float:
        """Steady CPU seconds per 1,000 events (start-up left out)."""
        return self.steady_cpu_seconds / max(self.steady_events, 1) * 1000

    @property
    def cpu_s_per_1000_all(self) -> float | None:
        """CPU seconds per 1,000 events from the same start to the end of the drain: the
        triage and the judging of every window the events fill."""
        if self.drain is None:
            return None
        return self.drain.cpu_seconds / max(self.steady_events, 1) * 1000


def measure_workers(
    envs: list[dict[str, str]],
    folder: Path,
    expected: int,
    timeout_s: float = 600,
    *,
    drain_until: float | None = None,
    drain_timeout_s: float = 600,
) -> WorkerMeasure:
    """Start one worker per environment (the same ``app_id``: one consumer group), wait until
    their counts add up to ``expected`` events, and stop them. The rate runs from the first
    count report with events in it to the report at which the last worker reached its final
    count; CPU is every worker's (and its children's), read as the counts are polled.

    With ``drain_until`` (epoch seconds: the end of the last window holding an event, see
    :func:`event_windows`) they run on after the counts reach ``expected`` (the figures above
    are read then, as without it) until every worker's merge stage has closed the windows up
    to it and holds none open (its ``/metrics``) and the workers' CPU has stayed under
    :data:`IDLE_CPU_PER_S` for :data:`IDLE_FOR_S`; :attr:`WorkerMeasure.drain` then says what
    that cost. Fails (with the log) after ``drain_timeout_s``."""
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
                measure = WorkerMeasure(
                    events_per_s=rate,
                    cpu_seconds=cpu,
                    steady_cpu_seconds=cpu - steady_from[0],
                    steady_events=done - steady_from[1],
                    peak_rss_bytes=rss,
                    events=expected,
                )
                if drain_until is not None:
                    measure.drain = _drain(runs, drain_until, steady_from[0], last, drain_timeout_s)
                return measure
            for run in runs:
                run.check_alive()
            time.sleep(0.2)
        raise SystemExit(
            f"workers did not reach {expected} events:\n{runs[0].log_path.read_text()}"
        )
    finally:
        for run in runs:
            run.stop()


def _metric(scraped: Sequence[dict[str, float]], name: str) -> float:
    return sum(m.get(name, 0.0) for m in scraped)


def _windows_done(scraped: dict[str, float] | None, at: float, until: float) -> bool:
    """Whether a worker's merge stage holds no window open and has closed those up to
    ``until`` (wall time at the scrape minus ``driftnet_window_lag_seconds`` is the end of
    the last window it closed on its most trailing aggregates partition)."""
    if scraped is None or scraped.get("driftnet_open_windows", 1) != 0:
        return False
    lag = scraped.get("driftnet_window_lag_seconds")
    return lag is not None and at - lag >= until - 1.0


def _drain(
    runs: list[WorkerRun], until: float, cpu_from: float, last_report: float, timeout_s: float
) -> Drain:
    """Wait until every run has judged the windows up to ``until`` and gone idle."""
    deadline = time.monotonic() + timeout_s
    marked = [run.metrics() for run in runs]
    while any(m is None for m in marked) and time.monotonic() < deadline:
        time.sleep(0.2)  # a worker busy judging answers late: ask again
        marked = [run.metrics() for run in runs]
    cpu_mark = sum(run.cpu_seconds() for run in runs)  # after the scrape: the same moment
    windows_mark = _metric([m for m in marked if m], "driftnet_windows_closed_total")
    scraped: list[dict[str, float] | None] = marked
    while time.monotonic() < deadline:
        for run in runs:
            run.check_alive()
        scraped = [run.metrics() for run in runs]
        at = time.time()
        if not all(_windows_done(m, at, until) for m in scraped):
            time.sleep(0.5)
            continue
        closed = _metric([m for m in scraped if m], "driftnet_windows_closed_total")
        done_at, done_cpu = at, sum(run.cpu_seconds() for run in runs)
        time.sleep(IDLE_FOR_S)  # no scrape meanwhile: a scrape is work for the worker too
        idle = (sum(run.cpu_seconds() for run in runs) - done_cpu) / IDLE_FOR_S
        confirm = [run.metrics() for run in runs]
        if idle >= IDLE_CPU_PER_S or any(m is None for m in confirm):
            continue
        final = [m for m in confirm if m]
        if _metric(final, "driftnet_windows_closed_total") != closed:
            continue
        return Drain(
            cpu_seconds=done_cpu - cpu_from,
            tail_s=done_at - last_report,
            tail_cpu_seconds=done_cpu - cpu_mark,
            tail_windows=round(closed - windows_mark),
            windows_closed=round(closed),
            late_events=round(_metric(final, "driftnet_late_events_total")),
            late_partials=sum(run.late_partials() for run in runs),
            judge_seconds=_metric(final, "driftnet_detector_seconds_sum"),
            idle_cpu_per_s=idle,
            peak_rss_bytes=max(run.peak_rss_bytes() for run in runs),
            children_cpu_seconds=sum(run.children_cpu_seconds() for run in runs),
        )
    shown = {
        k: v
        for m in scraped
        if m
        for k, v in m.items()
        if k.startswith(("driftnet_open_windows", "driftnet_window", "driftnet_late"))
    }
    raise SystemExit(
        f"workers did not finish judging the windows up to {until:.0f} (epoch s) within "
        f"{timeout_s:.0f} s of their last event (last metrics: {shown}; CPU "
        f"{sum(run.cpu_seconds() for run in runs):.1f} s):\n{runs[0].log_path.read_text()}"
    )


def event_windows(
    events: Sequence[dict[str, Any]], start: datetime, end: datetime, size_s: int = 60
) -> set[tuple[str, str, str, str, int]]:
    """(service, environment, release, variant, window start) of every event whose timestamp
    lies in ``[start, end]`` (the bench corpus's dead letters keep older or unreadable
    timestamps of their own: outside): the cohort windows the events fill."""
    low, high = start.timestamp(), end.timestamp()
    out = set()
    for event in events:
        try:
            at = datetime.fromisoformat(str(event["timestamp"])).timestamp()
        except (KeyError, ValueError):
            continue
        if low <= at <= high:
            service, environment, release, variant = (
                str(event.get(k)) for k in ("service", "environment", "release", "variant")
            )
            out.add((service, environment, release, variant, int(at // size_s * size_s)))
    return out


def last_window_end(windows: set[tuple[str, str, str, str, int]], size_s: int = 60) -> float:
    """The end of the latest of ``windows`` (:func:`event_windows`)."""
    return float(max(w[-1] for w in windows) + size_s)


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

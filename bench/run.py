"""``make bench``: every benchmark in one run on one embedded broker, one JSON, one table.

(a) raw aiokafka consume + JSON parse, (b) ``driftnet worker`` with everything on
(validation, rules, windows, every detector, the harvest sink), (c) b / a, all on the same
preloaded topic of ~1.7 KB events in 100-event batches; (d) detection latency at a steady
rate; (e) the Parquet sink's rows/s; (f) DuckDB's canned queries over generated harvests;
(g) the worker's peak RSS and CPU per 1,000 events at 10, 1,000 and 10,000 cohorts, for the
triage and, the worker run on until it has judged every window, for all of it; (h) two
workers in one consumer group against one. Writes bench/results.json and prints the table.

Usage: python -m bench.run [--events 100000] [--full] [--only throughput,latency,...]
``--full`` adds the 10M-row query tier and 1M events per cohort tier (tens of minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from bench import detection_latency, query_scale
from bench.corpus import ROOT, unique_events
from bench.report import render
from bench.sink_throughput import measure_sink
from bench.stream_throughput import (
    WorkerMeasure,
    _topics,
    broker_for,
    event_windows,
    last_window_end,
    measure_workers,
    publish,
    raw_consume,
    worker_env,
)
from driftnet.streams.clients.publisher import EventPublisher
from driftnet.streams.clients.topics import create_topics
from driftnet.streams.settings import KafkaSettings, PublisherSettings

SECTIONS = ("throughput", "two_workers", "cohorts", "latency", "sink", "queries")
RESULT = ROOT / "bench" / "results.json"
MB = 1024 * 1024


class Bench:
    """One broker and one folder shared by every section of a run."""

    def __init__(self, bootstrap: str, folder: Path, args: argparse.Namespace) -> None:
        self.bootstrap = bootstrap
        self.folder = folder
        self.args = args
        self.kafka = KafkaSettings(bootstrap_servers=bootstrap, client_id="driftnet-bench")
        self.topics = _topics(f"bench-{uuid.uuid4().hex[:6]}")
        self.preloaded = 0

    def _preload(self) -> None:
        """The shared topic of (a), (b) and (h), made once."""
        if self.preloaded:
            return
        create_topics(self.kafka, self.topics.by_role())
        end = datetime.now(UTC)
        span_s = 720.0  # unique_events' default
        events = unique_events(self.args.events, span_s=span_s, end=end)
        self.windows = event_windows(events, end - timedelta(seconds=span_s + 1), end)
        self.publisher_rate = publish(self.kafka, self.topics.events.name, events, 100)
        self.event_bytes = sum(len(orjson.dumps(e)) for e in events[:1000]) / 1000
        self.preloaded = len(events)

    def throughput(self) -> dict[str, Any]:
        self._preload()
        raw = raw_consume(self.bootstrap, self.topics.events.name, self.preloaded)
        drain = self.args.throughput_drain
        env = worker_env(self.bootstrap, self.topics, self.folder)
        until = last_window_end(self.windows) if drain else None
        one = measure_workers([env], self.folder, self.preloaded, drain_until=until)
        self.one_worker = one
        out = {
            "events": self.preloaded,
            "event_bytes": round(self.event_bytes),
            "publisher_events_per_s": round(self.publisher_rate),
            "raw_events_per_s": round(raw),
            "worker_events_per_s": round(one.events_per_s),
            "worker_ratio_to_raw": round(one.events_per_s / raw, 3),
            "worker_cpu_s_per_1000": round(one.cpu_s_per_1000, 4),
            "worker_startup_cpu_s": round(one.cpu_seconds - one.steady_cpu_seconds, 1),
            "worker_peak_rss_mb": round(one.peak_rss_bytes / MB),
        }
        return out | (_drained(one, len(self.windows)) if drain else {})

    def two_workers(self) -> dict[str, Any]:
        self._preload()
        group = f"bench-{uuid.uuid4().hex[:8]}"
        envs = [worker_env(self.bootstrap, self.topics, self.folder, app_id=group) for _ in "ab"]
        two = measure_workers(envs, self.folder, self.preloaded)
        one = getattr(self, "one_worker", None)
        return {
            "events": self.preloaded,
            "events_per_s": round(two.events_per_s),
            "cpu_s_per_1000": round(two.cpu_s_per_1000, 4),
            "ratio_to_one": round(two.events_per_s / one.events_per_s, 2) if one else None,
        }

    def cohorts(self) -> list[dict[str, Any]]:
        rows = []
        for count in (10, 1_000, 10_000):
            topics = _topics(f"cohorts-{count}-{uuid.uuid4().hex[:6]}")
            create_topics(self.kafka, topics.by_role())
            end, span_s = datetime.now(UTC), self.args.cohort_span_s
            events = unique_events(self.args.cohort_events, span_s=span_s, end=end, cohorts=count)
            windows = event_windows(events, end - timedelta(seconds=span_s + 1), end)
            _publish_mixed(self.kafka, topics.events.name, events)
            env = worker_env(self.bootstrap, topics, self.folder)
            measured = measure_workers(
                [env], self.folder, len(events), drain_until=last_window_end(windows)
            )
            rows.append(
                {
                    "cohorts": count,
                    "events": len(events),
                    "windows": round(self.args.cohort_span_s / 60),
                    "events_per_s": round(measured.events_per_s),
                    "cpu_s_per_1000": round(measured.cpu_s_per_1000, 4),
                    "peak_rss_mb": round(measured.peak_rss_bytes / MB),
                }
                | _drained(measured, len(windows))
            )
        return rows

    def latency(self) -> dict[str, Any]:
        return detection_latency.measure(self.bootstrap, self.folder, 200.0, 5, 15.0)

    def sink(self) -> dict[str, Any]:
        return measure_sink(self.bootstrap, self.folder / "sink", self.args.sink_records)

    def queries(self) -> list[dict[str, Any]]:
        tiers = [1_000_000, 10_000_000] if self.args.full else [1_000_000]
        out = []
        for rows in tiers:
            with tempfile.TemporaryDirectory(prefix="driftnet-bench-") as tmp:
                out.append(query_scale.measure(Path(tmp) / "harvest", rows))
        return out


def _drained(measured: WorkerMeasure, windows: int) -> dict[str, Any]:
    """The figures of a worker run on until it had judged every window its events fill (see
    ``DRAIN_DOC``): ``windows`` is how many (cohort, window) pairs the events fill."""
    drain = measured.drain
    assert drain is not None
    assert measured.cpu_s_per_1000_all is not None
    per_window = drain.tail_cpu_us_per_window
    judge = drain.judge_wall_us_per_window
    return {
        "cpu_s_per_1000_all": round(measured.cpu_s_per_1000_all, 4),
        "windows_with_events": windows,
        "windows_judged": drain.windows_closed,
        "tail_s": round(drain.tail_s, 1),
        "tail_cpu_s": round(drain.tail_cpu_seconds, 2),
        "children_cpu_s": round(drain.children_cpu_seconds, 2),
        "tail_windows": drain.tail_windows,
        "tail_cpu_us_per_window": None if per_window is None else round(per_window),
        "judge_wall_us_per_window": None if judge is None else round(judge),
        "late_events": drain.late_events,
        "late_partials": drain.late_partials,
        "idle_cpu_s_per_s": round(drain.idle_cpu_per_s, 3),
        "peak_rss_mb_all": round(drain.peak_rss_bytes / MB),
    }


DRAIN_DOC = (
    "cpu_s_per_1000 (triage): worker + children CPU from the first count report with events "
    "to the report that reaches the total, per 1,000 events (as before). The worker then runs "
    "on, with its default window settings (60 s windows, 10 s lateness, 30 s idle timeout: "
    "a 3 s idle timeout made the merge stage, reading a backlog of partials at 10,000 "
    "cohorts, take its sources for idle and close windows before their partials, which it "
    "then dropped as late), until its /metrics show no window open, the windows closed up to "
    "the end of the last window holding an event (wall time minus "
    "driftnet_window_lag_seconds), and its CPU under 0.05 s per second for 2 s (timeout "
    "600 s). cpu_s_per_1000_all: CPU from the same first count report to that moment, over "
    "the same events, nothing subtracted (so it includes the worker's idle loop, about 0.03 "
    "CPU s per second, while the last window waits for its partitions' 30 s idle timeout and "
    "the wall clock to pass its end + lateness). windows_with_events: (cohort, window) pairs "
    "the events fill; windows_judged: driftnet_windows_closed_total at done, which also "
    "counts the zero-traffic windows the merge stage reports for known cohorts silent in a "
    "window it closes (including whole windows after the last event once the wall clock has "
    "passed them: a long drain makes more). tail_s: from the report that reached the total "
    "to done. tail_cpu_us_per_window: CPU from the first scrape after the counts reached the "
    "total to done, over the windows closed in that time: no triage is left then, so it is a "
    "window's partial sent and read back, its merge, every detector and the canary judge, "
    "what they publish, plus the idle loop and any full drift checks of the tail: an upper "
    "bound on judging a window (none under 100 windows). judge_wall_us_per_window: "
    "driftnet_detector_seconds_sum (wall time inside the merge stage's close) over "
    "windows_judged, the whole run. children_cpu_s: CPU of the worker's children at done "
    "(the evidently checker that runs the full drift checks, started at the first one; "
    "inside cpu_s_per_1000_all). late_events / late_partials: left out of closed windows "
    "(both 0 in a sound run). peak_rss_mb_all: VmHWM at done (peak_rss_mb is read when the "
    "counts reach the total, as before)."
)


def _publish_mixed(kafka: KafkaSettings, topic: str, events: list[dict[str, Any]]) -> None:
    """``events`` as 100-event batches in stream order, whatever their cohorts, so that every
    cohort tier sends the same messages (the publisher batches per cohort: with 10,000
    cohorts its batches would be a few events each, and the message count would dominate)."""
    options = PublisherSettings(buffer_max_bytes=512 * MB)
    with EventPublisher(kafka, topic, options) as publisher:
        for start in range(0, len(events), 100):
            chunk = events[start : start + 100]
            publisher.publish_raw(
                orjson.dumps(chunk), key=f"mix-{start // 100 % 16}", events=len(chunk)
            )
        publisher.flush(600)


def machine() -> str:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{platform.machine()} {cpu}, {os.cpu_count()} cores, {memory:.0f} GiB, "
        f"Python {platform.python_version()}"
    )


def _commit() -> str:
    try:
        out = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return "?"
    return out.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000, help="(a), (b), (h) events")
    parser.add_argument("--cohort-events", type=int, default=None, help="(g) events per tier")
    parser.add_argument("--cohort-span-s", type=float, default=300.0, help="(g) event time")
    parser.add_argument("--sink-records", type=int, default=50_000)
    parser.add_argument("--full", action="store_true", help="the big tiers too")
    parser.add_argument("--only", help=f"comma-separated sections of {', '.join(SECTIONS)}")
    parser.add_argument("--output", type=Path, default=RESULT)
    parser.add_argument(
        "--throughput-drain",
        action="store_true",
        help="(b) also runs on until every window is judged, as (g) does (extra figures)",
    )
    args = parser.parse_args()
    if args.cohort_events is None:
        args.cohort_events = 1_000_000 if args.full else 50_000
    chosen = args.only.split(",") if args.only else list(SECTIONS)
    unknown = set(chosen) - set(SECTIONS)
    if unknown:
        parser.error(
            f"unknown sections {', '.join(sorted(unknown))} (known: {', '.join(SECTIONS)})"
        )
    started = time.monotonic()
    result: dict[str, Any] = {
        "machine": machine(),
        "broker": "embedded Tansu",
        "commit": _commit(),
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "args": {k: str(v) for k, v in vars(args).items()},
    }
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="driftnet-bench-") as tmp:
        folder = Path(tmp)
        bench = Bench(broker_for(None, stack, folder), folder, args)
        for name in SECTIONS:
            if name not in chosen:
                continue
            section: Callable[[], Any] = getattr(bench, name)
            began = time.monotonic()
            print(f"-- {name} ...", flush=True)
            key = "detection_latency" if name == "latency" else name
            result[key] = section()
            if name == "cohorts" or (name == "throughput" and args.throughput_drain):
                result.setdefault("doc", {})["drain"] = DRAIN_DOC
            result.setdefault("section_seconds", {})[name] = round(time.monotonic() - began)
    result["seconds"] = round(time.monotonic() - started)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(render(result))
    print(f"\n(wrote {args.output})")


if __name__ == "__main__":
    main()

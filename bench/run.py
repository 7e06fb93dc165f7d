"""``make bench``: every benchmark in one run on one embedded broker, one JSON, one table.

(a) raw aiokafka consume + JSON parse, (b) ``driftnet worker`` with everything on
(validation, rules, windows, every detector, the harvest sink), (c) b / a, all on the same
preloaded topic of ~1.7 KB events in 100-event batches; (d) detection latency at a steady
rate; (e) the Parquet sink's rows/s; (f) DuckDB's canned queries over generated harvests;
(g) the worker's peak RSS and CPU per 1,000 events at 10, 1,000 and 10,000 cohorts; (h) two
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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from bench import detection_latency, query_scale
from bench.corpus import ROOT, unique_events
from bench.report import render
from bench.sink_throughput import measure_sink
from bench.stream_throughput import (
    _topics,
    broker_for,
    measure_workers,
    publish,
    raw_consume,
    worker_env,
)
from streams.publisher import EventPublisher
from streams.settings import KafkaSettings, PublisherSettings
from streams.topics import create_topics

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
        events = unique_events(self.args.events)
        self.publisher_rate = publish(self.kafka, self.topics.events.name, events, 100)
        self.event_bytes = sum(len(orjson.dumps(e)) for e in events[:1000]) / 1000
        self.preloaded = len(events)

    def throughput(self) -> dict[str, Any]:
        self._preload()
        raw = raw_consume(self.bootstrap, self.topics.events.name, self.preloaded)
        env = worker_env(self.bootstrap, self.topics, self.folder)
        one = measure_workers([env], self.folder, self.preloaded)
        self.one_worker = one
        return {
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
            events = unique_events(
                self.args.cohort_events, span_s=self.args.cohort_span_s, cohorts=count
            )
            _publish_mixed(self.kafka, topics.events.name, events)
            env = worker_env(self.bootstrap, topics, self.folder)
            measured = measure_workers([env], self.folder, len(events))
            rows.append(
                {
                    "cohorts": count,
                    "events": len(events),
                    "windows": round(self.args.cohort_span_s / 60),
                    "events_per_s": round(measured.events_per_s),
                    "cpu_s_per_1000": round(measured.cpu_s_per_1000, 4),
                    "peak_rss_mb": round(measured.peak_rss_bytes / MB),
                }
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
            result.setdefault("section_seconds", {})[name] = round(time.monotonic() - began)
    result["seconds"] = round(time.monotonic() - started)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(render(result))
    print(f"\n(wrote {args.output})")


if __name__ == "__main__":
    main()

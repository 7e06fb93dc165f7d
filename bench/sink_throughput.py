"""Parquet sink throughput on a real broker, in one run on the same topic:

- (a) a raw aiokafka consumer that only parses each failure record's JSON: the ceiling;
- (b) the Parquet sink (validate each record, build its row, write zstd Parquet files with
  fsync + rename, commit offsets): rows/s from its first record read to its last file durable;
- (c) the ratio b / a.

Records are the failure records of realistic ~1.8 KB events, as the worker produces them.
Usage:

    python -m bench.sink_throughput [--records 100000] [--bootstrap HOST:PORT]

Without ``--bootstrap`` it starts the embedded broker. Writes bench/sink_throughput.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import tempfile
import time
import uuid
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from kafka import KafkaProducer

from bench.corpus import ROOT, unique_events
from bench.stream_throughput import broker_for, raw_consume
from driftnet.contract.events import Lineage
from driftnet.harvest.rules import RulesConfig
from driftnet.harvest.triage import Triage
from driftnet.storage.settings import HarvestSettings, RotationPolicy
from driftnet.streams.clients.topics import create_topics
from driftnet.streams.ops.gc_tuning import tune_gc
from driftnet.streams.settings import KafkaSettings, TopicSpec
from driftnet.streams.sink.parquet import ParquetSink


def failure_records(count: int) -> list[bytes]:
    """``count`` encoded failure records (distinct events, all failing a rule)."""
    events = unique_events(count, failing=1.0, invalid=0.0)
    triage = Triage(RulesConfig(), record_max_bytes=1 << 20)
    now = datetime.now(UTC)
    records: list[bytes] = []
    for offset, event in enumerate(events):
        records.extend(triage(orjson.dumps(event), Lineage("bench", 0, offset), now).encoded)
    return records[:count]


def preload(bootstrap: str, topic: str, records: list[bytes]) -> None:
    producer = KafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=20, batch_size=1 << 20
    )
    try:
        for record in records:
            producer.send(topic, value=record)
        producer.flush()
    finally:
        producer.close()


async def _sink_rate(kafka: KafkaSettings, topic: str, folder: Path, expected: int) -> float:
    sink = ParquetSink(
        kafka,
        HarvestSettings(
            location=str(folder),
            group_id=f"bench-{uuid.uuid4().hex[:8]}",
            # the last files of the run wait for this idle time: keep it out of the rate
            rotation=RotationPolicy(idle_s=0.2),
        ),
        failures_topic=topic,
        dlq_topic=f"{topic}.dlq",
        rebalance_timeout_s=1.5,
    )
    stop = asyncio.Event()
    task = asyncio.ensure_future(sink.run(stop))
    started: float | None = None
    try:
        while sink.stats.rows_written < expected:
            if task.done():
                task.result()
                raise SystemExit("the sink stopped early")
            if started is None and sink.stats.records:
                started = time.perf_counter()
            await asyncio.sleep(0.005)
        assert started is not None
        return expected / (time.perf_counter() - started)
    finally:
        stop.set()
        await task


def measure_sink(bootstrap: str, folder: Path, count: int) -> dict[str, Any]:
    """Preload ``count`` failure records on a new topic of the broker at ``bootstrap``, then
    (a) a raw consumer's rate and (b) the Parquet sink's over them; the result's fields."""
    kafka = KafkaSettings(bootstrap_servers=bootstrap, client_id="driftnet-bench")
    topic = f"bench-{uuid.uuid4().hex[:6]}.failures"
    create_topics(
        kafka,
        {
            "failures": TopicSpec(name=topic, partitions=2, retention_hours=None),
            "dlq": TopicSpec(name=f"{topic}.dlq", partitions=1, retention_hours=None),
        },
    )
    records = failure_records(count)
    size = sum(len(r) for r in records) / len(records)
    preload(bootstrap, topic, records)
    tune_gc()  # as `driftnet sink` and `driftnet worker` do
    raw = raw_consume(bootstrap, topic, len(records))
    sink = asyncio.run(_sink_rate(kafka, topic, folder / "harvest", len(records)))
    files = list((folder / "harvest").rglob("*.parquet"))
    parquet_bytes = sum(f.stat().st_size for f in files)
    return {
        "records": len(records),
        "record_bytes": round(size),
        "raw_consume_parse_per_s": round(raw),
        "sink_rows_per_s": round(sink),
        "sink_ratio_to_raw": round(sink / raw, 3),
        "files": len(files),
        "parquet_bytes_per_row": round(parquet_bytes / len(records)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--bootstrap", help="an external broker (default: start the embedded one)")
    args = parser.parse_args()
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="driftnet-bench-") as tmp:
        folder = Path(tmp)
        bootstrap = broker_for(args.bootstrap, stack, folder)
        measured = measure_sink(bootstrap, folder, args.records)
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    result = {"machine": machine, **measured}
    print(f"{machine}, broker: {'external' if args.bootstrap else 'embedded Tansu'}")
    print(
        f"{result['records']:,} failure records of {result['record_bytes']:,} B: "
        f"(a) raw consume + parse {result['raw_consume_parse_per_s']:,}/s, "
        f"(b) Parquet sink {result['sink_rows_per_s']:,} rows/s, "
        f"b/a {result['sink_ratio_to_raw']:.3f}; {result['files']} files, "
        f"{result['parquet_bytes_per_row']} B/row on disk (zstd)"
    )
    (ROOT / "bench" / "sink_throughput.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()

"""DuckDB over a big harvest: the canned queries of ``driftnet harvest`` and ``driftnet export``
timed over 1M (and, with ``--rows 10000000``, 10M) harvested rows.

The rows are generated with pyarrow, not harvested: a template of real failure records of the
bench corpus (redacted, rows built by the sink's own ``row_of``) is tiled, each row given its
own ``record_id``, ``event_id`` and event time, spread over ``--days`` days, and written as the
sink writes them: ``date=/service=`` folders, 10,000 rows a file, zstd, 5,000-row row groups.

Each query runs as the CLI runs it (``Harvest.run``: a fresh DuckDB connection, the views
listing every file, ``failures`` keeping each ``record_id`` once), best of ``--repeat`` runs.
Usage: python -m bench.query_scale [--rows 1000000] [--days 7] [--folder DIR]
"""

from __future__ import annotations

import argparse
import functools
import json
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from bench.sink_throughput import failure_records
from driftnet.harvest.records import FailureRecord
from driftnet.storage.query import Harvest
from driftnet.storage.schema import row_of, table_of
from driftnet.storage.sql import SHOW_SQL, export_sql, reasons_sql
from driftnet.storage.target import Target, partition_value

ROWS_PER_FILE = 10_000
"""The sink's default rotation (``harvest.rotation.max_rows``)."""
TEMPLATE_ROWS = 2_000


def template() -> pa.Table:
    """Rows of real failure records (the bench corpus, redacted as the worker does)."""
    records = [FailureRecord.model_validate_json(r) for r in failure_records(TEMPLATE_ROWS)]
    return table_of([row_of(record) for record in records])


def generate(folder: Path, rows: int, days: int, end: datetime) -> float:
    """Write ``rows`` harvested rows under ``folder``, their event times spread over the ``days``
    days before ``end`` (a midnight); returns the seconds it took."""
    started = time.perf_counter()
    base = template()
    target = Target.of(folder)
    services = sorted(set(base.column("service").to_pylist()))
    by_service = {s: base.filter(pc.equal(base.column("service"), s)) for s in services}
    groups = [(day, service) for day in range(days) for service in services]
    start = end - timedelta(days=days)
    day_us = 86_400_000_000
    written = 0
    for number, (day, service) in enumerate(groups):
        group_rows = rows * (number + 1) // len(groups) - rows * number // len(groups)
        source = by_service[service]
        day_start = int(start.timestamp() * 1e6) + day * day_us
        for first in range(0, group_rows, ROWS_PER_FILE):
            count = min(ROWS_PER_FILE, group_rows - first)
            picks = pa.array([(written + i) % source.num_rows for i in range(count)], pa.int64())
            table = source.take(picks)
            ids = [f"bench-{written + i:010d}" for i in range(count)]
            stamps = pa.array(
                [day_start + (first + i) * (day_us // group_rows) for i in range(count)],
                pa.timestamp("us", tz="UTC"),
            )
            table = _set(table, "record_id", pa.array([f"{e}:rule" for e in ids], pa.string()))
            table = _set(table, "event_id", pa.array(ids, pa.string()))
            table = _set(table, "timestamp", stamps)
            table = _set(table, "detected_at", stamps)
            date = (start + timedelta(days=day)).date().isoformat()
            name = f"driftnet.failures+0+{written:019d}.parquet"
            target.write_parquet(f"date={date}/service={partition_value(service)}/{name}", table)
            written += count
    return time.perf_counter() - started


def _set(table: pa.Table, name: str, column: pa.Array) -> pa.Table:
    index = table.schema.get_field_index(name)
    return table.set_column(
        index, table.schema.field(index), column.cast(table.schema.field(index).type)
    )


def canned(end: datetime, days: int) -> dict[str, tuple[str, list[Any]]]:
    """The queries users run, by name: (SQL, parameters)."""
    last_day = end - timedelta(days=1)
    return {
        "count": ("SELECT count(*) AS n FROM failures", []),
        "reasons (harvest reasons, 1 day)": (reasons_sql("service,release"), [last_day, end]),
        "reasons (all days)": (reasons_sql("service,release"), [end - timedelta(days=days), end]),
        "show (one record)": (SHOW_SQL, ["bench-0000000042:rule", "bench-0000000042:rule"]),
        "export (1 service, 1 day)": (
            export_sql("service = ? AND timestamp >= ? AND timestamp < ?"),
            ["support-chat", last_day, end],
        ),
    }


def _count(harvest: Harvest, sql: str, params: list[Any]) -> int:
    return int(harvest.run(sql, params).num_rows)


def _best(action: Callable[[], int], repeat: int) -> tuple[float, int]:
    best, rows = float("inf"), 0
    for _ in range(repeat):
        started = time.perf_counter()
        rows = action()
        best = min(best, time.perf_counter() - started)
    return best, rows


def measure(folder: Path, rows: int, days: int = 7, repeat: int = 2) -> dict[str, Any]:
    """Generate ``rows`` rows under ``folder`` and time the canned queries over them."""
    end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    generated_s = generate(folder, rows, days, end)
    harvest = Harvest.at(str(folder))
    disk = sum(f.stat().st_size for f in folder.rglob("*.parquet"))
    queries = {}
    for name, (sql, params) in canned(end, days).items():
        if name.startswith("export"):
            out = folder.parent / f"export-{rows}.parquet"
            action = functools.partial(harvest.write_parquet, sql, params, str(out))
        else:
            action = functools.partial(_count, harvest, sql, params)
        seconds, found = _best(action, repeat)
        queries[name] = {"seconds": round(seconds, 3), "result_rows": found}
    return {
        "rows": rows,
        "files": len(list(folder.rglob("*.parquet"))),
        "parquet_bytes_per_row": round(disk / rows),
        "generate_s": round(generated_s, 1),
        "queries": queries,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, action="append", help="rows (repeatable)")
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    results = []
    for rows in args.rows or [1_000_000]:
        with tempfile.TemporaryDirectory(prefix="driftnet-bench-") as tmp:
            results.append(measure(Path(tmp) / "harvest", rows, args.days, args.repeat))
    print(orjson.dumps(results, option=orjson.OPT_INDENT_2).decode())
    (Path(__file__).parent / "query_scale.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()

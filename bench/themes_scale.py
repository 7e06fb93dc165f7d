"""``driftnet harvest themes`` over a big week: 40,000 failures (and 20,000 the week before)
of the seeded synthetic generator (tests/support/failure_themes.py), written as real harvest
files, themed as the command themes them.

Times, best of ``--repeat``: reading what theming needs from the Parquet files (DuckDB), the
theming itself (:func:`~driftnet.harvest.themes.find_themes`), and the whole command (click,
settings, read, theming, table). Run it on one core to measure one core:
``OMP_NUM_THREADS=1 taskset -c 0 python -m bench.themes_scale``.
Usage: python -m bench.themes_scale [--failures 40000] [--repeat 3] [--folder DIR]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from sklearn.metrics import adjusted_rand_score

from driftnet.cli.main import cli
from driftnet.cli.themes import Period, theme_report
from driftnet.harvest.themes import ThemeSettings, find_themes
from driftnet.storage.query import Harvest
from tests.support.failure_themes import NOW, failure_texts, write_harvest

MIX = {"refund": 0.3, "medical": 0.25, "legal": 0.1, "truncated": 0.2, "markdown": 0.15}


def _best(action: Any, repeat: int) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(repeat):
        started = time.perf_counter()
        result = action()
        best = min(best, time.perf_counter() - started)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--failures", type=int, default=40_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--folder", type=Path, default=None)
    args = parser.parse_args()
    folder = args.folder or Path(tempfile.mkdtemp(prefix="driftnet-themes-"))
    since = NOW - timedelta(days=7)
    current, truth = failure_texts({k: int(args.failures * v) for k, v in MIX.items()}, start=since)
    previous, _ = failure_texts(
        {k: int(args.failures * v / 2) for k, v in MIX.items() if k != "legal"},
        seed=8,
        start=since - timedelta(days=7),
    )
    started = time.perf_counter()
    files = write_harvest(folder / "harvest", [*current, *previous])
    print(f"wrote {len(current):,} + {len(previous):,} failures in {files} files "
          f"({time.perf_counter() - started:.1f} s) under {folder}")  # fmt: skip
    harvest = Harvest.at(str(folder / "harvest"))
    period = Period.of(since, NOW, (), None)
    settings = ThemeSettings()
    # the read alone: the command's query, without the theming
    from driftnet.storage.sql import export_condition, themes_sql

    condition, params = export_condition(since=period.previous_since, until=period.until)
    read, _ = _best(lambda: harvest.run(themes_sql(condition), params).to_pylist(), args.repeat)
    theming, report = _best(lambda: find_themes(current, previous, settings), args.repeat)
    whole_report, _ = _best(lambda: theme_report(harvest, period, settings), args.repeat)
    where = {rid: theme for theme, ids in report.members.items() for rid in ids}
    ari = adjusted_rand_score(truth, [where[f.record_id] for f in current])
    os.environ["DRIFTNET_HARVEST__LOCATION"] = str(folder / "harvest")
    command = ["harvest", "themes", "--since", "2026-11-30T12:00:00Z", "--until",
               "2026-12-07T12:00:00Z"]  # fmt: skip
    whole, result = _best(lambda: CliRunner().invoke(cli, command), args.repeat)
    assert result.exit_code == 0, result.output
    print(f"threads: OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, "
          f"cpus allowed {len(os.sched_getaffinity(0))}")  # fmt: skip
    print(f"read (DuckDB, {len(current) + len(previous):,} rows): {read:.2f} s")
    print(f"find_themes ({len(current):,} now, {len(previous):,} before): {theming:.2f} s")
    print(f"read + theming (theme_report): {whole_report:.2f} s")
    print(f"driftnet harvest themes, in process: {whole:.2f} s")
    print(f"themes: {len(report.themes)}; adjusted Rand index vs the generator: {ari:.3f}")
    print(result.output)


if __name__ == "__main__":
    main()

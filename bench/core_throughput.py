"""Core hot-path throughput on one core, no broker: parse, decode (parse + validate), and
decode + failure rules, for single-event messages and 100-event batches of the valid example
events (healthy and failing).

Reported as events/s and as a ratio to the raw JSON parse of the same messages in the same
run, since these machines are noisy. Usage: python -m bench.core_throughput [--seconds 2]
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import time
from collections.abc import Callable

import orjson

from bench.corpus import ROOT, classified
from driftnet.contract.decode import decode
from driftnet.contract.events import Lineage
from driftnet.harvest.rules import FailureRules
from driftnet.streams.settings import load_settings

LINEAGE = Lineage(topic="bench", partition=0, offset=0)


def best_rate(
    work: Callable[[], int], seconds: float, clock: Callable[[], float] = time.perf_counter
) -> float:
    """Best of three runs of about ``seconds`` of ``clock`` each, in units per second."""
    best = 0.0
    for _ in range(3):
        done, start = 0, clock()
        while clock() - start < seconds:
            done += work()
        best = max(best, done / (clock() - start))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=1.0, help="length of one timed run")
    args = parser.parse_args()
    kinds = classified()
    events = kinds["healthy"] + kinds["failing"]
    singles = [orjson.dumps(e) for e in events]
    batch = orjson.dumps([events[i % len(events)] for i in range(100)])
    rules = FailureRules(load_settings(ROOT / "examples" / "driftnet.toml").rules)

    def parse_singles() -> int:
        for message in singles:
            orjson.loads(message)
        return len(singles)

    def parse_batch() -> int:
        return len(orjson.loads(batch))

    def decode_singles() -> int:
        return sum(len(decode(m, LINEAGE).events) for m in singles)

    def decode_batch() -> int:
        return len(decode(batch, LINEAGE).events)

    def check(message: bytes) -> int:
        located = decode(message, LINEAGE).events
        for event, _ in located:
            rules.reasons(event)
        return len(located)

    def rules_singles() -> int:
        return sum(check(m) for m in singles)

    def rules_batch() -> int:
        return check(batch)

    rows = []
    for label, gc_setting in (("default gc", None), ("gc threshold 50k", (50_000, 20, 100))):
        if gc_setting:
            gc.set_threshold(*gc_setting)
        for shape, parse, dec, full in (
            ("single", parse_singles, decode_singles, rules_singles),
            ("batch100", parse_batch, decode_batch, rules_batch),
        ):
            ceiling = best_rate(parse, args.seconds)
            for stage, work in (("parse", parse), ("decode", dec), ("decode+rules", full)):
                rate = ceiling if stage == "parse" else best_rate(work, args.seconds)
                rows.append(
                    {
                        "gc": label,
                        "messages": shape,
                        "stage": stage,
                        "events_per_s": round(rate),
                        "ratio_to_parse": round(rate / ceiling, 3),
                    }
                )
    size = sum(map(len, singles)) / len(singles)
    print(
        f"{platform.processor() or platform.machine()}, Python {platform.python_version()}, {len(events)} distinct events of {size:.0f} B on average"
    )
    print(f"{'gc':<17}{'messages':<10}{'stage':<14}{'events/s':>10}{'ratio':>8}")
    for row in rows:
        print(
            f"{row['gc']:<17}{row['messages']:<10}{row['stage']:<14}{row['events_per_s']:>10,}{row['ratio_to_parse']:>8.3f}"
        )
    (ROOT / "bench" / "core_throughput.json").write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()

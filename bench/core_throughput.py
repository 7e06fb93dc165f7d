"""Core hot-path throughput on one core, no broker: parse, decode (parse + validate), and
decode + failure rules, for single-event messages and 100-event batches of the valid example
events (healthy and failing); then the whole per-event path of a worker, decode + rules + the
map stage's windows (partials, sketches, samples, examples, texts), on events with their own
ids and times, in small windows (50 events per cohort and window: the text sample keeps
most events while it fills) and large ones (1,000), with text sampling on and off.

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

from bench.corpus import ROOT, classified, unique_events
from driftnet.contract.decode import decode
from driftnet.contract.events import InferenceEvent, Lineage
from driftnet.detectors.config import DetectorsConfig
from driftnet.detectors.settings import AggregateSettings
from driftnet.harvest.redaction import Redactor
from driftnet.harvest.rules import FailureRules
from driftnet.streams.detection.map_stage import MapStage
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
    default_gc = gc.get_threshold()
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
    gc.set_threshold(*default_gc)
    rows += window_rows(rules, args.seconds)
    (ROOT / "bench" / "core_throughput.json").write_text(json.dumps(rows, indent=2) + "\n")


WINDOW_SHAPES = {"50 a window": (8, 600.0), "1000 a window": (1, 240.0)}
"""Per cohort and window: 4,000 events over (cohorts, seconds of event time)."""


def _parsing(messages: list[bytes]) -> Callable[[], int]:
    def work() -> int:
        for message in messages:
            orjson.loads(message)
        return len(messages)

    return work


def _windowing(
    messages: list[bytes], rules: FailureRules, config: DetectorsConfig | None, redactor: Redactor
) -> Callable[[], int]:
    """decode + rules (+ the map stage, made afresh each run, with ``config``), as the
    worker runs them: the examples and the sampled texts redacted when kept."""

    def redact(text: str) -> str:  # as the worker's, once per window done
        return redactor.redact_text(text, remember=False)[0]

    def encoder(event: InferenceEvent) -> Callable[[], bytes]:
        return lambda: redactor.redact_event(event)[0].model_dump_json().encode()

    def work() -> int:
        stage = MapStage(config, "bench", redact) if config else None
        count = 0
        at = 0.0
        for offset, message in enumerate(messages):
            for event, _ in decode(message, LINEAGE).events:
                reasons = rules.reasons(event)
                if stage is not None:
                    at = event.timestamp.timestamp()
                    stage.observe(0, offset, event, reasons, encoder(event), at)
                count += 1
        if stage is not None:  # every window done: its partial made and sent, as the worker's
            stage.due(at + 3_600, 1)
        return count

    return work


def window_rows(rules: FailureRules, seconds: float) -> list[dict[str, object]]:
    """Print and return decode + rules, and decode + rules + windows (text sampling off and
    on), per event, on single-event messages of :func:`unique_events`."""
    redactor = Redactor()
    texts_off = DetectorsConfig(aggregate=AggregateSettings(text_samples=0))
    rows: list[dict[str, object]] = []
    print(f"{'windows':<15}{'stage':<31}{'events/s':>10}{'us/event':>10}{'ratio':>8}")
    for shape, (cohorts, span_s) in WINDOW_SHAPES.items():
        messages = [orjson.dumps(e) for e in unique_events(4000, cohorts=cohorts, span_s=span_s)]
        ceiling = best_rate(_parsing(messages), seconds)
        for stage, config in (
            ("decode+rules", None),
            ("decode+rules+windows, no texts", texts_off),
            ("decode+rules+windows", DetectorsConfig()),
        ):
            rate = best_rate(_windowing(messages, rules, config, redactor), seconds)
            rows.append(
                {
                    "gc": "default gc",
                    "messages": f"single, {shape}",
                    "stage": stage,
                    "events_per_s": round(rate),
                    "ratio_to_parse": round(rate / ceiling, 3),
                }
            )
            print(f"{shape:<15}{stage:<31}{rate:>10,.0f}{1e6 / rate:>10.1f}{rate / ceiling:>8.3f}")
    return rows


if __name__ == "__main__":
    main()

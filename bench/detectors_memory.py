"""Detector state per cohort at 10,000 cohorts, and drift CPU per minute at 1,000 cohorts.

Memory: every registered detector of a cohort, its reference full (10 trailing windows of
about 200 events each), plus the cohort's open merged window (a Partial with its sketches,
reservoir, worst examples and sampled texts), measured as the process's resident-memory
growth. 200 cohorts are fed distinct seeded windows; the other cohorts are unpickled copies of
them (same sizes, no object shared, as cohorts fed their own events would be). Each window
samples its texts (16, cut to 200 characters, by default) from this repository's docs
(English prose, a question of 60-200 characters and an answer of 200: less repetitive than a
real cohort's, so their packed reference is a pessimistic size); ``--no-texts`` leaves them
out (content not captured).

Drift CPU (process CPU time, one core): the cheap tier on 1,000 cohorts' windows (every window,
i.e. per minute with 60 s windows), and the evidently tier per report, scaled to the default
cadence (every ``full_check_every_windows`` windows) plus the reports the cheap tier triggers.

Usage: python -m bench.detectors_memory [--cohorts 10000] [--drift-cohorts 1000] [--reports 10]
"""

from __future__ import annotations

import argparse
import base64
import ctypes
import dataclasses
import functools
import gc
import pickle
import random
import time
import zlib
from typing import Any

import orjson

from bench.corpus import ROOT, unique_events
from driftnet.detectors.cohort import CohortDetectors
from driftnet.detectors.families.drift import DriftDetector, FullCheckRequest
from driftnet.detectors.families.text_drift import TextCheckRequest
from driftnet.detectors.settings import DetectorSettings
from driftnet.detectors.windowing.partials import Partial
from driftnet.detectors.windowing.samples import uniform_rank
from driftnet.detectors.windowing.texts import SampledText
from tests.support.detector_streams import stream

DISTINCT = 200


def _rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * 4096


def _trim() -> None:
    """Hand freed heap pages back to the system (glibc), so resident memory is what is live."""
    ctypes.CDLL("libc.so.6").malloc_trim(0)


def _cohort(i: int) -> tuple[str, str, str, str]:
    return (f"service-{i % 97}", "production", f"release-{i}", "baseline")


def _filled(i: int, windows: list[Partial], settings: DetectorSettings) -> CohortDetectors:
    cohort = _cohort(i)
    watch = CohortDetectors(cohort, settings)
    for window in windows:
        watch.update(dataclasses.replace(window, cohort=cohort))
    return watch


@functools.cache
def _corpus() -> list[dict[str, Any]]:
    return unique_events(64)


def _with_real_events(partial: dict[str, Any], seed: int) -> dict[str, Any]:
    """The partial with each kept example's JSON replaced by a realistic event's (the
    bench corpus: about 1.7 KB each; the synthetic windows' are a few bytes)."""
    events = _corpus()
    examples = {
        kind: [
            [
                rank,
                event_id,
                base64.b64encode(zlib.compress(orjson.dumps(events[(seed + i) % 64]), 1)).decode(),
            ]
            for i, (rank, event_id, _) in enumerate(rows)
        ]
        for kind, rows in partial["examples"].items()
    }
    return {**partial, "examples": examples}


@functools.cache
def _prose() -> str:
    text = " ".join(path.read_text() for path in sorted((ROOT / "docs").glob("*.md")))
    return " ".join(text.split())


def _with_texts(windows: list[Partial], seed: int) -> list[Partial]:
    """``windows`` with each one's text sample filled as a cohort capturing content fills it
    (``text_samples`` of its calls), each a question and an answer cut from the docs to
    ``text_chars``."""
    prose, rng = _prose(), random.Random(seed)

    def cut(size: int) -> str:
        start = rng.randrange(len(prose) - size)
        return prose[start : start + size]

    for window in windows:
        chars = window.settings.text_chars
        for i in range(window.texts.capacity):
            asked, said = cut(rng.randint(60, chars)), cut(chars)
            event_id = f"{window.window.start}-{i}"
            text = SampledText(asked, said, len(asked), 900)
            window.texts.offer(uniform_rank(event_id), event_id, functools.partial(_same, text))
    return windows


def _same(text: SampledText) -> SampledText:
    return text


def memory_per_cohort(cohorts: int, texts: bool = True) -> float:
    """Resident bytes per cohort: detectors with a full reference + one open merged window."""
    settings = DetectorSettings()
    pool = [stream(seed, settings.reference_windows + 1) for seed in range(DISTINCT)]
    if texts:
        pool = [_with_texts(windows, seed) for seed, windows in enumerate(pool)]
    gc.collect()
    _trim()
    before = _rss_bytes()
    kept: list[tuple[CohortDetectors, Partial]] = []
    pickled: list[bytes] = []
    for i in range(cohorts):
        windows = pool[i % DISTINCT]
        if i < DISTINCT:
            watch = _filled(i, windows[:-1], settings)
            open_window = Partial.from_dict(_with_real_events(windows[-1].to_dict(), i))
        else:
            watch, open_window = pickle.loads(pickled[i % DISTINCT])
            for detector in watch.detectors.values():  # cohorts share their settings object
                detector.settings = settings
            open_window.settings = kept[0][1].settings  # as Partial.from_dict shares them
        if i < DISTINCT:
            pickled.append(pickle.dumps((watch, open_window)))
        kept.append((watch, open_window))
    del pickled
    gc.collect()
    _trim()
    grown = _rss_bytes() - before
    pool_size = sum(len(p) for p in pool)
    print(
        f"  ({len(kept):,} cohorts held; {pool_size:,} input windows were alive before and after)"
    )
    return grown / cohorts


def drift_cpu(cohorts: int, reports: int) -> None:
    """Print the cheap tier's and the evidently tier's CPU per minute at ``cohorts`` cohorts."""
    settings = DetectorSettings()
    windows = stream(7, 50)
    detectors = [DriftDetector(settings) for _ in range(cohorts)]
    for d, detector in enumerate(detectors):  # fill the references (not timed)
        for w in range(settings.reference_windows):
            detector.update(windows[(d + w) % 40])
    start = time.process_time()
    triggered = 0
    for d, detector in enumerate(detectors):
        triggered += detector.update(windows[40 + d % 10]).drift_detected
    cheap = time.process_time() - start

    from driftnet.detectors.families.drift_report import full_drift_check

    requests: list[FullCheckRequest] = []
    for detector in detectors[:reports]:
        detector.settings = settings.model_copy(
            update={"drift": settings.drift.model_copy(update={"full_check_every_windows": 1})}
        )
        detector.update(windows[45])
        if detector.full_check is not None:
            requests.append(detector.full_check)
    full_drift_check(requests[0])  # warm up: imports and first-call caches
    start = time.process_time()
    for request in requests:
        full_drift_check(request)
    per_report = (time.process_time() - start) / len(requests)
    cadence = settings.drift.full_check_every_windows
    scheduled = cohorts / cadence
    full = (scheduled + triggered) * per_report
    print(f"  cheap tier: {cheap:.2f} CPU s per minute ({cheap / cohorts * 1e3:.2f} ms a cohort)")
    print(
        f"  evidently:  {per_report:.2f} CPU s a report x ({scheduled:.1f} on cadence every "
        f"{cadence} windows + {triggered} triggered) = {full:.2f} CPU s per minute"
    )
    total = cheap + full
    print(f"  total:      {total:.2f} CPU s per minute = {total / 60:.1%} of one core")
    text_cpu(cohorts, reports)


def text_cpu(cohorts: int, checks: int) -> None:
    """Print the text drift checks' CPU per minute at ``cohorts`` cohorts capturing content."""
    from driftnet.detectors.families.text_check import text_drift_check

    settings = DetectorSettings()
    windows = _with_texts(stream(9, 30), 9)
    requests: list[TextCheckRequest] = []
    for c in range(checks):
        detector = DriftDetector(settings)
        for window in windows[c % 10 : c % 10 + 20]:
            detector.update(window)
            if detector.text_check is not None:
                requests.append(detector.text_check)
    text_drift_check(requests[0])  # warm up: imports and first-call caches
    start = time.process_time()
    for request in requests:
        text_drift_check(request)
    per_check = (time.process_time() - start) / len(requests)
    cadence = settings.drift.text.check_every_windows
    per_minute = cohorts / cadence * per_check
    print(
        f"  text drift: {per_check * 1e3:.0f} ms CPU a check ({len(requests)} checks) x "
        f"{cohorts / cadence:.0f} a minute (every {cadence} windows) = {per_minute:.2f} CPU s "
        f"per minute = {per_minute / 60:.1%} of one core (its budget: 5%; beyond it checks "
        "wait, the oldest dropped)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cohorts", type=int, default=10_000)
    parser.add_argument("--drift-cohorts", type=int, default=1_000)
    parser.add_argument("--reports", type=int, default=10)
    parser.add_argument(
        "--no-texts", action="store_true", help="windows without sampled texts (no content)"
    )
    args = parser.parse_args()
    print(
        f"memory at {args.cohorts:,} cohorts (every registered detector, full reference, "
        "bench-corpus events kept as examples):"
    )
    per_cohort = memory_per_cohort(args.cohorts, texts=not args.no_texts)
    print(
        f"  {per_cohort / 1024:.1f} KiB per cohort -> "
        f"{per_cohort * args.cohorts / 2**20:,.0f} MiB for {args.cohorts:,} cohorts"
    )
    print(f"drift CPU at {args.drift_cohorts:,} cohorts, 60 s windows:")
    drift_cpu(args.drift_cohorts, args.reports)


if __name__ == "__main__":
    main()

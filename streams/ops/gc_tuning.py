"""The garbage collector tuned for streams of small objects (the worker and the sink)."""

from __future__ import annotations

import gc

GC_GEN0_THRESHOLD = 50_000
"""Batches allocate many small objects; CPython's default (700) spends a third of the time in
the collector (``make bench-core`` shows the difference). Raised once the app is built."""


def tune_gc() -> None:
    """Move start-up objects out of the collector's way and raise the gen-0 threshold (see
    ``GC_GEN0_THRESHOLD``); the worker and the sink call it once they are set up."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_GEN0_THRESHOLD, *gc.get_threshold()[1:])

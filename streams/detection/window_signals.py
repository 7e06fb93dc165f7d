"""What detection tells the alerting stage: each closed window's findings and canary verdict, as
``WindowsSignal`` messages on the signals topic (read by :func:`driftnet.alerts.signals.read_signal`)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from driftnet.streams.detection.merge_stage import Judged


def window_entry(judged: Judged) -> dict[str, Any]:
    """A closed window as one entry of a ``WindowsSignal``."""
    return {
        "cohort": list(judged.window.cohort),
        "window_end": judged.window.window.end,
        "count": judged.window.aggregate.count,
        "late": judged.window.aggregate.late,
        "findings": [f.model_dump(mode="json") for f in judged.findings],
        "verdict": (None if judged.verdict is None else judged.verdict.model_dump(mode="json")),
    }


def window_signals(entries: list[dict[str, Any]], chunk: int = 200) -> list[bytes]:
    """``WindowsSignal`` messages of at most ``chunk`` entries (a message stays far below the
    broker's size limit whatever the number of cohorts)."""
    out = []
    for start in range(0, len(entries), chunk):
        body = {"type": "windows", "entries": entries[start : start + chunk]}
        out.append(json.dumps(body, separators=(",", ":")).encode())
    return out

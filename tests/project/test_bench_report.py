"""The make bench table: pure formatting of the JSON result (no broker, nothing timed)."""

from __future__ import annotations

from typing import Any

from bench.report import render, rows

RESULT: dict[str, Any] = {
    "machine": "x86_64 test, 2 cores",
    "broker": "embedded Tansu",
    "commit": "abc1234",
    "seconds": 61,
    "throughput": {
        "events": 1000,
        "event_bytes": 1700,
        "publisher_events_per_s": 30000,
        "raw_events_per_s": 60000,
        "worker_events_per_s": 18000,
        "worker_ratio_to_raw": 0.3,
        "worker_cpu_s_per_1000": 0.05,
        "worker_startup_cpu_s": 4.0,
        "worker_peak_rss_mb": 300,
    },
    "detection_latency": {
        "window_s": 60,
        "allowed_lateness_s": 10.0,
        "bound_s": 75.0,
        "rate_events_per_s": 200.0,
        "to_finding_s": 80.0,
        "to_verdict_s": None,
        "to_alert_s": None,
        "window_close_s": 70.0,
    },
    "cohorts": [
        {"cohorts": 10, "events_per_s": 5000, "cpu_s_per_1000": 0.4, "peak_rss_mb": 200},
        {"cohorts": 1000, "events_per_s": 4000, "cpu_s_per_1000": 0.5, "peak_rss_mb": 600},
    ],
}


def test_targets_are_judged() -> None:
    """The ratio target is met at 0.3, a late finding and 600 MB at 1,000 cohorts are not."""
    verdicts = {cells[0]: cells[3] for cells in rows(RESULT)}
    assert verdicts["(c) b / a"] == "met"
    latency = next(v for k, v in verdicts.items() if k.startswith("(d)"))
    assert latency == "NOT met"
    assert verdicts["(g) 1,000 cohorts: worker peak RSS"] == "NOT met"
    assert verdicts["(g) 10 cohorts: worker peak RSS"] == ""


def test_missing_sections_and_figures() -> None:
    """Sections left out of a run make no rows; a missing figure prints as a dash."""
    table = render({**RESULT, "cohorts": []})
    for section in ("(f)", "(g)", "(h)"):
        assert section not in table
    assert "| -> failing canary verdict | - s |" in table.replace("    ", "")
    assert table.splitlines()[0].startswith("driftnet bench: x86_64 test, 2 cores; embedded Tansu")

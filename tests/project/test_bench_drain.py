"""The bench's drain: when a worker has judged every window its events fill, and how the
table shows it (pure: no broker, no worker, nothing timed)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from bench.report import rows
from bench.stream_throughput import _windows_done, event_windows, last_window_end, parse_metrics

EXPOSITION = """\
# HELP driftnet_windows_closed_total Cohort windows closed and judged by the merge stage.
# TYPE driftnet_windows_closed_total counter
driftnet_windows_closed_total 120.0
driftnet_findings_total{detector="drift.features.v1"} 3.0
driftnet_findings_total{detector="quality.score_mean.v1"} 2.0
driftnet_open_windows 0.0
driftnet_window_lag_seconds 14.5
driftnet_detector_seconds_sum 0.25
"""


def test_parse_metrics_sums_labelled_samples() -> None:
    metrics = parse_metrics(EXPOSITION)
    assert metrics["driftnet_windows_closed_total"] == 120
    assert metrics["driftnet_findings_total"] == 5
    assert metrics["driftnet_detector_seconds_sum"] == 0.25


def test_windows_done_needs_none_open_and_the_last_window_closed() -> None:
    metrics = parse_metrics(EXPOSITION)  # closed up to the scrape time minus 14.5 s
    assert _windows_done(metrics, at=1_000_014.5, until=1_000_000)
    assert not _windows_done(metrics, at=1_000_014.5, until=1_000_060)  # the last one: open
    assert not _windows_done({**metrics, "driftnet_open_windows": 3}, 1_000_014.5, 1_000_000)
    lagless = {k: v for k, v in metrics.items() if k != "driftnet_window_lag_seconds"}
    assert not _windows_done(lagless, 1_000_014.5, 1_000_000)  # no window closed yet
    assert not _windows_done(None, 1_000_014.5, 1_000_000)  # no answer


def test_event_windows_are_the_cohort_windows_the_events_fill() -> None:
    end = datetime(2026, 12, 4, 4, 2, 30, tzinfo=UTC)

    def event(seconds_before_end: float, release: str) -> dict[str, Any]:
        at = (end - timedelta(seconds=seconds_before_end)).isoformat().replace("+00:00", "Z")
        cohort = {"service": "s", "environment": "e", "variant": "baseline"}
        return {**cohort, "release": release, "timestamp": at}

    events = [
        event(100, "r1"),  # 04:00:50 -> [04:00, 04:01)
        event(40, "r1"),  # 04:01:50 -> [04:01, 04:02)
        event(20, "r2"),  # 04:02:10 -> [04:02, 04:03)
        event(10, "r2"),  # the same window
        {"release": "dead", "timestamp": "2026-11-24 14:03:00"},  # a dead letter's own time
        {"release": "dead", "timestamp": "not a time"},
    ]
    windows = event_windows(events, end - timedelta(seconds=300), end)
    assert len(windows) == 3
    assert last_window_end(windows) == datetime(2026, 12, 4, 4, 3, tzinfo=UTC).timestamp()


COHORT = {"cohorts": 10_000, "events_per_s": 1600, "cpu_s_per_1000": 0.5, "peak_rss_mb": 700}
DRAINED = {
    "cpu_s_per_1000_all": 2.0,
    "windows_with_events": 49_950,
    "windows_judged": 60_000,
    "tail_s": 100.0,
    "tail_windows": 60_000,
    "tail_cpu_us_per_window": 1300,
    "judge_wall_us_per_window": 700,
    "late_events": 0,
    "late_partials": 0,
    "peak_rss_mb_all": 1500,
}


def test_drained_figures_and_their_ratio() -> None:
    few = {**COHORT, "cohorts": 10, "cpu_s_per_1000": 0.1, **DRAINED, "cpu_s_per_1000_all": 0.4}
    table = {cells[0].strip(): cells for cells in rows({"cohorts": [few, {**COHORT, **DRAINED}]})}
    judged = table["10,000 cohorts: CPU per 1,000 events incl. judging all windows"]
    assert judged[1] == "2.000 s"
    assert "60,000 windows judged (49,950 with events)" in judged[3]
    assert "LATE" not in judged[3]
    assert table["10,000 cohorts: CPU per window closed after the last event"][1] == "1,300 µs"
    assert table["10,000 cohorts: worker peak RSS incl. judging all windows"][1] == "1,500 MB"
    assert table["CPU per event, most / fewest cohorts"][1] == "5.00x"
    assert table["CPU per event incl. judging, most / fewest cohorts"][1:] == (
        "5.00x",
        "flat (<= 1.25x)",
        "NOT met",
    )


def test_late_partials_are_flagged_and_older_results_still_render() -> None:
    late = {**COHORT, **DRAINED, "late_partials": 7}
    notes = [cells[3] for cells in rows({"cohorts": [late]})]
    assert any("LATE: 0 late events, 7 late partials" in note for note in notes)
    older = [cells[0] for cells in rows({"cohorts": [COHORT, {**COHORT, "cohorts": 10}]})]
    assert not any("incl. judging" in item for item in older)

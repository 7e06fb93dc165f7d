"""The demo's tables at 80 columns: every line fits, and nothing a reader needs is cut -- each
canary's verdict, action, score and every failing metric with its change stay whole."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from rich.console import Console
from rich.table import Table

from driftnet.detectors.canary.verdict import ArmValues, MetricVerdict, Verdict
from driftnet.sandbox.demo_tables import query_table, verdicts_table

ARMS = ArmValues(canary=1.0, baseline=1.0, canary_n=500, baseline_n=1500)


def metric(name: str, effect: float, *, unit: str = "ms", relative: bool = True) -> MetricVerdict:
    """A failing metric (High) with ``effect``."""
    return MetricVerdict(
        metric=name, group="latency", bad_direction="increase", critical=False,
        classification="High", failing=True, unit=unit, cumulative=ARMS, recent=ARMS,
        window=ARMS, effect=effect, recent_effect=effect, relative=relative, tolerance=0.1,
        e_value=1e9, e_value_other_side=None, e_threshold=280.0, p_value=1e-9, test="t",
    )  # fmt: skip


def verdict(
    service: str, release: str, outcome: Any, score: float | None, metrics: list[MetricVerdict]
) -> Verdict:
    action = {"Pass": "promote", "Fail": "rollback"}.get(outcome, "hold")
    return Verdict(
        service=service, environment="production", release=release, variant="canary",
        baseline_release="base-v7", baseline_variant="baseline", window_start=0, window_end=60,
        since=0, windows=20, unpaired_windows=0, canary_requests=2_628, baseline_requests=8_043,
        score=score, verdict=outcome, recommendation=action, reasons=(), metrics=tuple(metrics),
        alpha=0.05, method="e-values",
    )  # fmt: skip


VERDICTS = [
    verdict("invoice-extractor", "gpt-4.1-mini+extract-v8", "Pass", 100, []),
    verdict("search-summarizer", "claude-haiku-4-5+sum-v8", "Fail", 65, [
        metric("score.faithfulness", -0.084, unit="score", relative=False),
        metric("negative_feedback_rate", 0.292, unit="share", relative=False),
        metric("refusal_rate", 0.027, unit="share", relative=False),
    ]),
    verdict("support-chat", "gpt-4.1-2025-04-14+support-v8", "Fail", 80, [
        metric("latency_p95", 0.49), metric("latency_p50", 0.27),
    ]),
    verdict("ticket-router", "gpt-4.1-nano+route-v2", "Inconclusive", None, []),
]  # fmt: skip


def render(table: Table, width: int) -> list[str]:
    console = Console(width=width, record=True, file=StringIO())
    console.print(table)
    return console.export_text().splitlines()


@pytest.mark.parametrize("width", [80, 200])
def test_the_verdicts_table_fits_and_keeps_every_verdict_score_and_failing_metric(
    width: int,
) -> None:
    """At 80 columns (and wider) no line is wider than the terminal, and each canary's
    verdict, action, score, release and every failing metric with its change are there whole
    (the old table showed ``Pa…`` / ``Fa…``, a blank score and no failing column at 80)."""
    lines = render(verdicts_table(VERDICTS, "canary verdicts"), width)
    assert max(map(len, lines)) <= width
    assert "…" not in "\n".join(lines)
    release_of = {v.release for v in VERDICTS}
    cells = [[c.strip() for c in line.split("┃" if "┃" in line else "│")] for line in lines]
    assert ["", "canary", "verdict", "failing", ""] in cells
    for name, outcome, action, score, changes in [
        ("support-chat", "Fail", "rollback", "80", ["latency_p50 +27%", "latency_p95 +49%"]),
        ("search-summarizer", "Fail", "rollback", "65", [
            "negative_feedback_rate +29.2pt", "refusal_rate +2.7pt", "score.faithfulness -0.084",
        ]),
        ("invoice-extractor", "Pass", "promote", "100", ["-"]),
        ("ticket-router", "Inconclusive", "hold", "-", ["-"]),
    ]:  # fmt: skip
        [first] = [i for i, row in enumerate(cells) if len(row) > 1 and row[1] == name]
        assert [row[2] for row in cells[first : first + 3]] == [outcome, action, f"score {score}"]
        assert cells[first + 1][1] in release_of
        column = " ".join(row[3] for row in cells[first : first + 4] if len(row) > 3)
        for item in changes:
            assert item in column, (item, column)


def test_a_query_table_fits_80_columns_and_wraps_rather_than_cuts() -> None:
    """The demo's widest summary fits 80 columns as it is; a wider one wraps its cells at 80
    (every character still there) instead of ending them in ``…``."""
    packs = query_table(
        ["service", "arm", "metric", "n", "median_ms", "faith"],
        [("search-summarizer", "baseline", "negative_feedback_rate", 12, 2298.0, 0.92)],
    )
    lines = render(packs, 80)
    assert max(map(len, lines)) <= 80
    assert "negative_feedback_rate │ 12 │     2,298 │  0.92" in lines[-1]
    long = "x" * 120
    wrapped = render(query_table(["service", "note"], [("support-chat", long)]), 80)
    assert max(map(len, wrapped)) <= 80
    assert "".join(line.split("│")[-1].strip() for line in wrapped[2:]) == long


def test_canary_status_keeps_every_column_when_it_fits_and_the_verdict_when_it_does_not() -> None:
    """``driftnet canary status`` at 80 columns read ``Pa…`` with no score: a terminal too
    narrow for every column gets the three-column table, a wide one (or a pipe) every column."""
    from driftnet.streams.clients.verdict_table import fitting_verdict_table

    verdicts = [
        verdict("support-chat", "gpt-4o-mini+prompt-v8", "Fail", 0.0, [metric("latency_p95", 0.8)]),
        verdict("search-summarizer", "claude-haiku+prompt-v3", "Pass", 100.0, []),
    ]
    for width in (80, 100):
        out = StringIO()
        Console(width=width, file=out).print(fitting_verdict_table(verdicts, "canary", width))
        text = out.getvalue()
        assert max(len(line.rstrip()) for line in text.splitlines()) <= width
        for shown in ("Fail", "Pass", "score 0", "score 100"):
            assert shown in text
        assert "latency_p95 +80%" in text
        assert "canary 2,628 / baseline 8,043" in text  # which count is which, said
    out = StringIO()
    Console(width=1_000, file=out).print(fitting_verdict_table(verdicts, "canary", 1_000))
    header = out.getvalue().splitlines()[2]
    assert "baseline" in header  # every column
    assert "as of" in header

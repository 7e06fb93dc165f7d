"""The CLI's tables keep the columns a command exists for: ``harvest reasons`` and ``query``
fold or wrap cells to the terminal's width instead of dropping a column or ending it in ``…``,
and into a pipe each row stays whole on one line (no broker needed)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from driftnet.cli.main import cli
from tests.support.harvest_data import failure, write_failures

SERVICE = "support-chat-assistant"
RELEASE = "2026.11.25-canary-build-1234"


@pytest.fixture
def long_names(location: Path) -> Path:
    """A harvest of three failures of a long service and release name, an hour old."""
    hour_ago = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    records = [
        failure(f"e{i}", offset=i, reason=reason, service=SERVICE, release=RELEASE,
                timestamp=hour_ago)
        for i, reason in enumerate(["latency_slo", "refusal", "refusal"])
    ]  # fmt: skip
    write_failures(location, records)
    return location


def columns(output: str) -> list[list[str]]:
    """The cells of each line of a psql-style table (header included, rule excluded)."""
    return [
        [cell.strip() for cell in line.split("│")] for line in output.splitlines() if "│" in line
    ]


@pytest.mark.parametrize("by", ["service,release", "service"])
def test_harvest_reasons_at_80_columns_keeps_reason_and_failures(
    runner: CliRunner, long_names: Path, by: str
) -> None:
    """At 80 columns ``reason`` and ``failures`` read ``…`` (duckdb's box dropped them); now
    every line fits, every header is there and the counts and reasons are whole."""
    result = runner.invoke(cli, ["harvest", "reasons", "--by", by], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    assert "…" not in result.output
    assert max(len(line) for line in result.output.splitlines()) <= 80
    rows = columns(result.output)
    header = rows[0]
    assert header == [*by.split(","), "reason", "failures", "events", "last_seen"]
    reason, count = header.index("reason"), header.index("failures")
    assert [(row[reason], row[count]) for row in rows[1:] if row[reason]] == [
        ("refusal", "2"),
        ("latency_slo", "1"),
    ]


def test_harvest_reasons_into_a_pipe_keeps_each_row_on_one_line(
    runner: CliRunner, long_names: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Into a pipe (no $COLUMNS) each row is whole on one line, for grep."""
    monkeypatch.delenv("COLUMNS", raising=False)
    result = runner.invoke(cli, ["harvest", "reasons"])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if "refusal" in line]
    assert len(lines) == 1
    assert columns(lines[0])[0][:5] == [SERVICE, RELEASE, "refusal", "2", "2"]


def test_query_at_80_columns_wraps_a_long_cell_and_says_when_rows_are_left_out(
    runner: CliRunner, long_names: Path
) -> None:
    """``query`` draws the same table: a wide result wraps within 80 columns, nothing cut,
    and --max-rows says that rows were left out."""
    sql = "select event_id, service, release, reasons from failures order by event_id"
    result = runner.invoke(cli, ["query", "--max-rows", "2", sql], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    assert "…" not in result.output
    assert max(len(line) for line in result.output.splitlines()) <= 80
    service_cells = "".join(row[1] for row in columns(result.output)[1:])
    assert service_cells == SERVICE * 2
    assert result.output.splitlines()[-1] == "(the first 2 rows; --max-rows 0 shows all)"

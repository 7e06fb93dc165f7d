"""`driftnet harvest themes` and `driftnet export --theme` on real harvest files."""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from driftnet.cli.main import cli
from driftnet.harvest.themes import NO_CONTENT, FailureText, find_themes, theme_id
from tests.support.failure_themes import NOW, failure_texts, write_harvest
from tests.support.harvest_data import failure, write_failures

CURRENT = {"refund": 120, "medical": 80, "legal": 40, "truncated": 60, "markdown": 40}
PREVIOUS = {"refund": 40, "medical": 80, "truncated": 60, "markdown": 40}
SINCE, UNTIL = NOW - timedelta(days=7), NOW
PERIOD = ["--since", "2026-11-30T12:00:00Z", "--until", "2026-12-07T12:00:00Z"]
SILENT = 6


@pytest.fixture(scope="module")
def themed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[FailureText]]:
    """A harvest of known themes this week and last, plus refusals with no content captured."""
    location = tmp_path_factory.mktemp("themes") / "harvest"
    current, _ = failure_texts(CURRENT, start=SINCE)
    previous, _ = failure_texts(PREVIOUS, seed=8, start=SINCE - timedelta(days=7))
    write_harvest(location, [*current, *previous])
    silent = [
        failure(f"silent-{i}", reason="refusal", offset=10_000 + i,
                timestamp=(NOW - timedelta(hours=i + 1)).isoformat(), input={}, output={})
        for i in range(SILENT)
    ]  # fmt: skip
    write_failures(location, silent, start_offset=10_000)
    return location, [*current, *previous]


@pytest.fixture
def run(themed: tuple[Path, list[FailureText]], monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """A runner over the themed harvest, at 80 columns."""
    for name in list(os.environ):
        if name.startswith("DRIFTNET_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("DRIFTNET_HARVEST__LOCATION", str(themed[0]))
    monkeypatch.setenv("COLUMNS", "80")
    return CliRunner()


def _themes(run: CliRunner, *args: str) -> dict[str, object]:
    result = run.invoke(cli, ["harvest", "themes", *PERIOD, "--format", "json", *args])
    assert result.exit_code == 0, result.output
    document: dict[str, object] = json.loads(result.output)
    return document


def test_table_fits_80_columns_and_names_the_themes(run: CliRunner) -> None:
    """The table, the per-theme lines and the export hint fit 80 columns; every theme is there,
    the no-content bucket too, and the hint repeats the period."""
    result = run.invoke(cli, ["harvest", "themes", *PERIOD])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert max(len(line) for line in lines) <= 80, "\n".join(lines)
    assert "legal" in result.output
    assert "markdown" in result.output
    assert NO_CONTENT in result.output
    assert f"{sum(CURRENT.values()) + SILENT:,} failures in 6 themes" in result.output
    assert "--since 2026-11-30T12:00:00Z --until 2026-12-07T12:00:00Z" in lines[-1]


def test_limit_shows_the_largest_and_says_how_many_are_left(run: CliRunner) -> None:
    """--limit 2: the two largest themes, in the table and in JSON, and a line saying so."""
    result = run.invoke(cli, ["harvest", "themes", *PERIOD, "--limit", "2"])
    assert result.exit_code == 0, result.output
    assert "(2 of 6 themes; --limit 0 shows all)" in result.output
    themes = _themes(run, "--limit", "2")["themes"]
    assert isinstance(themes, list)
    assert [t["count"] for t in themes] == [CURRENT["refund"], CURRENT["medical"]]


def test_json_matches_the_pure_theming_of_the_same_failures(
    run: CliRunner, themed: tuple[Path, list[FailureText]]
) -> None:
    """Read back from Parquet, the failures give the very themes (IDs, counts, trends) the
    pure function gives for the generated texts: the text read is the text generated."""
    document = _themes(run, "--limit", "0")
    generated = themed[1]
    current = [f for f in generated if f.timestamp >= SINCE]
    previous = [f for f in generated if f.timestamp < SINCE]
    expected = find_themes(current, previous)
    themes = document["themes"]
    assert isinstance(themes, list)
    silent = theme_id("refusal", [NO_CONTENT])
    got = {t["theme_id"]: (t["count"], t["previous"], t["trend"]) for t in themes}
    assert got.pop(silent) == (SILENT, 0, "new")
    assert got == {t.theme_id: (t.count, t.previous, t.trend) for t in expected.themes}
    flags = {t["theme_id"]: t["flag"] for t in themes}
    legal = next(t for t in themes if "legal" in t["terms"])
    assert flags[legal["theme_id"]] == "new"
    assert flags[silent] is None  # 6 failures: under min_count (20)
    assert document["failures"] == sum(CURRENT.values()) + SILENT


def test_reason_and_service_filters(run: CliRunner) -> None:
    """--reason themes only that reason's failures; --service only that service's."""
    document = _themes(run, "--reason", "invalid_json")
    themes = document["themes"]
    assert isinstance(themes, list)
    assert {t["reason"] for t in themes} == {"invalid_json"}
    assert sum(t["count"] for t in themes) == CURRENT["truncated"] + CURRENT["markdown"]
    one = _themes(run, "--service", "orders-api")
    assert isinstance(one["themes"], list)
    assert {s for t in one["themes"] for s in t["services"]} == {"orders-api"}


def test_a_mistyped_reason_is_one_line_with_the_closest(run: CliRunner) -> None:
    """--reason is checked like export's: one line, the closest reason."""
    result = run.invoke(cli, ["harvest", "themes", "--reason", "refusl"])
    assert result.exit_code == 2
    assert "did you mean 'refusal'?" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_export_theme_gives_exactly_the_themes_failures(run: CliRunner, tmp_path: Path) -> None:
    """export --theme as Parquet holds exactly the theme's records; as an eval set, the
    theme's records less repeated inputs, each an eval line."""
    document = _themes(run, "--limit", "0")
    assert isinstance(document["themes"], list)
    legal = next(t for t in document["themes"] if "legal" in t["terms"])
    out = tmp_path / "legal.parquet"
    args = ["export", "--theme", legal["theme_id"], *PERIOD]
    result = run.invoke(cli, [*args, "--format", "parquet", "-o", str(out)])
    assert result.exit_code == 0, result.output
    table = pq.read_table(out, columns=["record_id", "event_id"]).to_pylist()
    assert len(table) == legal["count"] == CURRENT["legal"]
    assert all(row["event_id"].startswith("evt-7-legal-") for row in table)
    result = run.invoke(cli, [*args, "--format", "eval"])
    assert result.exit_code == 0, result.output
    items = [json.loads(line) for line in result.stdout.splitlines()]
    assert {item["record_id"] for item in items} <= {row["record_id"] for row in table}
    assert all("legal" in (item["actual"] or "") or "lawsuit" in item["actual"] for item in items)
    written = f"exported {len(items)} rows"
    assert written in result.stderr
    duplicates = legal["count"] - len(items)
    assert (f"{duplicates} duplicate inputs" in result.stderr) == (duplicates > 0)


def test_an_unknown_theme_says_how_to_list_them(run: CliRunner) -> None:
    """An ID the period has no theme of: one line naming the harvest themes command to run."""
    result = run.invoke(cli, ["export", "--format", "eval", "--theme", "deadbeef", *PERIOD])
    assert result.exit_code == 1
    assert result.output.strip() == (
        "Error: no theme deadbeef among the failures from 2026-11-30T12:00:00Z to "
        "2026-12-07T12:00:00Z; list them with: driftnet harvest themes "
        "--since 2026-11-30T12:00:00Z --until 2026-12-07T12:00:00Z"
    )


def test_an_empty_period_says_where_the_failures_are(run: CliRunner) -> None:
    """No failure in the period: one line with the newest failure's time."""
    result = run.invoke(cli, ["harvest", "themes", "--since", "2026-12-07T12:00:00Z",
                              "--until", "2026-12-08T00:00:00Z"])  # fmt: skip
    assert result.exit_code == 0
    assert result.output.startswith("no failures between 2026-12-07 12:00 and 2026-12-08 00:00")

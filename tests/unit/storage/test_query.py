"""Querying the harvest: the failures view, unreadable files, and `driftnet query`/`harvest`."""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from driftnet.cli.main import cli
from driftnet.harvest.records import FailureRecord
from driftnet.storage.maintenance import add_label
from driftnet.storage.query import Harvest, MissingDataset, QueryError
from driftnet.storage.schema import record_document
from driftnet.storage.target import Target
from tests.support.harvest_data import failure, write_failures

DAY = "date=2026-11-25/service=support-chat"


def count(harvest: Harvest, view: str = "failures", where: str = "true") -> int:
    """Rows of ``view`` matching ``where``."""
    value = harvest.run(f"select count(*) as n from {view} where {where}").to_pylist()[0]["n"]
    return int(value)


def sample(location: Path) -> list[FailureRecord]:
    """Five failures in three files: 3 latency_slo, 2 refusal (one in the billing service)."""
    records = [
        failure("e1", reason="latency_slo", offset=0),
        failure("e2", reason="latency_slo", offset=1),
        failure("e3", reason="refusal", offset=2),
    ]
    write_failures(location, records, start_offset=0)
    more = [failure("e4", reason="latency_slo", offset=3)]
    write_failures(location, more, start_offset=3)
    other = [failure("e5", reason="refusal", service="billing", offset=4)]
    write_failures(location, other, start_offset=4)
    return [*records, *more, *other]


# -- the views --------------------------------------------------------------------------------


def test_same_record_in_two_files_counts_once(location: Path) -> None:
    """A record written twice (a replay) is one row of failures and two of failures_all."""
    record = failure("dup")
    write_failures(location, [record, failure("other")], start_offset=0)
    write_failures(location, [record], start_offset=1)
    harvest = Harvest.at(str(location))
    assert count(harvest, "failures_all") == 3
    assert count(harvest, "failures") == 2
    assert count(harvest, "failures", "event_id = 'dup'") == 1
    assert count(harvest, "failures_all", "event_id = 'dup'") == 2


def test_latest_label_wins_and_is_joined_by_event_id(location: Path) -> None:
    """labels keeps each event's latest label; failures carries it on every record of the event."""
    write_failures(location, [failure("e1"), failure("e2")])
    harvest = Harvest.at(str(location))
    t = datetime(2026, 11, 25, 14, 0, tzinfo=UTC)
    add_label(harvest, "e1", "bad", correction="first", now=t)
    add_label(harvest, "e1", "good", note="on second look", now=t + timedelta(minutes=5))
    add_label(harvest, "e1", "stale", now=t - timedelta(days=1))  # written last, but older
    rows = harvest.run(
        "select event_id, label, correction, label_note, labelled_at from failures order by 1"
    ).to_pylist()
    assert [(r["event_id"], r["label"], r["correction"], r["label_note"]) for r in rows] == [
        ("e1", "good", None, "on second look"),
        ("e2", None, None, None),
    ]
    assert rows[0]["labelled_at"] == t + timedelta(minutes=5)
    assert count(harvest, "labels") == 1


def test_junk_and_truncated_files_are_skipped_with_a_warning(
    location: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Random bytes and a cut-short copy named *.parquet are skipped, named in a warning; the
    other files are still queried."""
    sample(location)
    real = location / DAY / "driftnet.failures+0+0000000000000000000.parquet"
    junk = location / DAY / "junk.parquet"
    junk.write_bytes(os.urandom(3000))
    truncated = location / DAY / "cut.parquet"
    truncated.write_bytes(real.read_bytes()[: real.stat().st_size // 2])
    harvest = Harvest.at(str(location))
    with caplog.at_level(logging.WARNING, logger="driftnet.query"):
        assert count(harvest) == 5
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    for path in (junk, truncated):
        assert any(str(path) in message for message in warnings), (path, warnings)
    assert sorted(harvest.skipped) == sorted([f"{DAY}/cut.parquet", f"{DAY}/junk.parquet"])


def test_parquet_without_any_harvest_column_is_skipped(
    location: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A Parquet file of something else entirely is skipped with a warning."""
    sample(location)
    stray = location / DAY / "stray.parquet"
    pq.write_table(pa.table({"x": [1, 2, 3]}), stray)
    harvest = Harvest.at(str(location))
    with caplog.at_level(logging.WARNING, logger="driftnet.query"):
        assert count(harvest) == 5
    assert any(str(stray) in r.getMessage() for r in caplog.records)


def test_parquet_without_record_id_is_skipped(
    location: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A Parquet file with no record_id column (here: raw events, which do have event_id) is
    not a harvest file: skipped with a warning, its rows are not counted."""
    sample(location)
    stray = location / DAY / "events-export.parquet"
    pq.write_table(pa.table({"event_id": ["x1", "x2"], "service": ["support-chat"] * 2}), stray)
    harvest = Harvest.at(str(location))
    with caplog.at_level(logging.WARNING, logger="driftnet.query"):
        total = count(harvest)
    assert total == 5, f"rows of a file without record_id were counted: {total} failures"
    assert f"{DAY}/events-export.parquet" in harvest.skipped
    assert any(str(stray) in r.getMessage() for r in caplog.records)


def test_missing_location_is_one_line_missing_dataset(tmp_path: Path) -> None:
    """Querying a location nothing was harvested to raises MissingDataset, one line."""
    harvest = Harvest.at(str(tmp_path / "nothing-here"))
    with pytest.raises(MissingDataset) as caught:
        harvest.run("select 1")
    message = str(caught.value)
    assert "\n" not in message
    assert str(tmp_path / "nothing-here") in message
    assert "harvest.location" in message


def test_empty_location_has_empty_views(location: Path) -> None:
    """A harvest folder with no files yet gives empty views with every column."""
    location.mkdir()
    harvest = Harvest.at(str(location))
    assert count(harvest) == 0
    assert count(harvest, "labels") == 0
    names = harvest.run("select * from failures").column_names
    assert {"record_id", "attributes", "date", "label", "correction"} <= set(names)


def test_file_without_a_column_unions_by_name_and_reads_null(location: Path) -> None:
    """A file written before a column existed still reads; the column is NULL for its rows."""
    write_failures(location, [failure("new", cost_usd=0.5, ttft_ms=10.0)], start_offset=0)
    write_failures(
        location,
        [failure("old", cost_usd=0.7, ttft_ms=20.0)],
        start_offset=1,
        drop_columns=["cost_usd", "usage"],
    )
    rows = (
        Harvest.at(str(location))
        .run(
            "select event_id, cost_usd, ttft_ms, usage.input_tokens as it from failures order by 1"
        )
        .to_pylist()
    )
    assert rows == [
        {"event_id": "new", "cost_usd": 0.5, "ttft_ms": 10.0, "it": 120},
        {"event_id": "old", "cost_usd": None, "ttft_ms": 20.0, "it": None},
    ]


def test_bad_sql_is_a_one_line_query_error(location: Path) -> None:
    """SQL DuckDB refuses raises QueryError with DuckDB's message on one line."""
    sample(location)
    with pytest.raises(QueryError) as caught:
        Harvest.at(str(location)).run("select nope from failures")
    assert "\n" not in str(caught.value)
    assert "nope" in str(caught.value)


def test_query_runs_again_when_a_file_vanishes(
    location: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file deleted after the listing (compaction replaced it) makes the query run again."""
    records = sample(location)
    harvest = Harvest.at(str(location))
    listing = harvest.failure_files()
    victim = listing[0]
    calls = {"n": 0}
    original = Harvest.failure_files

    def first_listing_goes_stale(self: Harvest) -> list[str]:
        calls["n"] += 1
        files = original(self)
        if calls["n"] == 1:
            gone = location / victim
            keep = location / f"{victim}.bak"
            shutil.move(gone, keep)  # vanishes between listing and reading
            merged = location / victim.replace(".parquet", "-merged.parquet")
            shutil.copy(keep, merged)  # and its rows reappear under another name
        return files

    monkeypatch.setattr(Harvest, "failure_files", first_listing_goes_stale)
    assert count(harvest) == len(records)
    assert calls["n"] >= 2


def test_query_runs_again_when_a_file_vanishes_after_the_views_exist(
    location: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file deleted after the views were made, before DuckDB reads it (compaction replaced
    it), makes the query run again on the new file list."""
    records = sample(location)
    harvest = Harvest.at(str(location))
    victim = harvest.failure_files()[0]
    calls = {"n": 0}
    original = Harvest._create_views

    def replaced_after_views(self: Harvest, con: Any, files: list[str], labels: list[str]) -> None:
        original(self, con, files, labels)
        calls["n"] += 1
        if calls["n"] == 1:  # compaction: the merged copy appears, the input goes
            merged = location / victim.replace(".parquet", "-merged.parquet")
            shutil.copy(location / victim, merged)
            (location / victim).unlink()

    monkeypatch.setattr(Harvest, "_create_views", replaced_after_views)
    assert count(harvest) == len(records)
    assert calls["n"] == 2


def test_query_never_misses_rows_when_compaction_swaps_files_during_listing(
    location: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Compaction writing its merged file just after the listing and deleting the inputs
    before they are checked must not make the query miss their rows."""
    records = sample(location)
    harvest = Harvest.at(str(location))
    victim = harvest.failure_files()[0]
    calls = {"n": 0}
    original = Target.list_parquet

    def listing_then_swap(self: Target, relative: str = "") -> list[str]:
        listed = original(self, relative)
        calls["n"] += 1
        if calls["n"] == 1:  # merged copy written after the listing, input deleted
            merged = location / victim.replace(".parquet", "-merged.parquet")
            shutil.copy(location / victim, merged)
            (location / victim).unlink()
        return listed

    monkeypatch.setattr(Target, "list_parquet", listing_then_swap)
    total = count(harvest)
    assert total == len(records), (
        f"query saw {total} of {len(records)} failures: {harvest.skipped} was skipped as "
        "'deleted while listing' and its replacement was never listed"
    )


# -- the CLI ----------------------------------------------------------------------------------


def test_query_table_shows_counts(runner: CliRunner, location: Path) -> None:
    """`driftnet query` prints a table with the grouped counts."""
    sample(location)
    result = runner.invoke(
        cli, ["query", "select reason, count(*) as n from failures group by all order by 2 desc"]
    )
    assert result.exit_code == 0, result.output
    lines = [
        line for line in result.output.splitlines() if "latency_slo" in line or "refusal" in line
    ]
    assert len(lines) == 2
    cells = [[cell.strip() for cell in line.strip("│ ").split("│")] for line in lines]
    assert cells == [["latency_slo", "3"], ["refusal", "2"]]


def test_query_csv_and_json_files_parse(runner: CliRunner, location: Path, tmp_path: Path) -> None:
    """--format csv / json with --output write files that parse to the query's rows."""
    sample(location)
    sql = "select reason, count(*) as n from failures group by all order by reason"
    out_csv, out_json = tmp_path / "r.csv", tmp_path / "r.jsonl"
    result = runner.invoke(cli, ["query", "--format", "csv", "-o", str(out_csv), sql])
    assert result.exit_code == 0, result.output
    assert list(csv.DictReader(io.StringIO(out_csv.read_text()))) == [
        {"reason": "latency_slo", "n": "3"},
        {"reason": "refusal", "n": "2"},
    ]
    result = runner.invoke(cli, ["query", "--format", "json", "-o", str(out_json), sql])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in out_json.read_text().splitlines()]
    assert lines == [{"reason": "latency_slo", "n": 3}, {"reason": "refusal", "n": 2}]


def test_query_csv_to_stdout_parses(
    runner: CliRunner, location: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """--format csv without --output writes parseable CSV to standard output."""
    sample(location)
    sql = "select reason, count(*) as n from failures group by all order by reason"
    result = runner.invoke(cli, ["query", "--format", "csv", sql])
    assert result.exit_code == 0, result.output
    printed = result.output + capfd.readouterr().out
    assert list(csv.DictReader(io.StringIO(printed))) == [
        {"reason": "latency_slo", "n": "3"},
        {"reason": "refusal", "n": "2"},
    ]


def test_query_bad_sql_exits_2_with_one_line(runner: CliRunner, location: Path) -> None:
    """Invalid SQL exits 2 with DuckDB's message on one line and no traceback."""
    sample(location)
    for sql in ("selec reason from failures", "select no_such_column from failures"):
        for output_format in ("table", "csv"):
            result = runner.invoke(cli, ["query", "--format", output_format, sql])
            assert result.exit_code == 2, (sql, output_format, result.output)
            assert "Traceback" not in result.output
            lines = result.output.strip().splitlines()
            assert len(lines) == 1, lines
            assert lines[0].startswith("Error: ")
            assert "Error" in lines[0].removeprefix("Error: ")  # DuckDB's "Parser Error: ..."


def test_query_parquet_needs_output(runner: CliRunner, location: Path) -> None:
    """--format parquet without --output is a usage error."""
    sample(location)
    result = runner.invoke(cli, ["query", "--format", "parquet", "select 1"])
    assert result.exit_code == 2
    assert "--output" in result.output
    assert "Traceback" not in result.output


def test_query_parquet_output(runner: CliRunner, location: Path, tmp_path: Path) -> None:
    """--format parquet --output writes the result as a Parquet file."""
    sample(location)
    out = tmp_path / "r.parquet"
    result = runner.invoke(
        cli, ["query", "--format", "parquet", "-o", str(out), "select event_id from failures"]
    )
    assert result.exit_code == 0, result.output
    assert sorted(pq.read_table(out).column("event_id").to_pylist()) == [
        "e1",
        "e2",
        "e3",
        "e4",
        "e5",
    ]


def test_query_without_harvest_is_one_line(runner: CliRunner) -> None:
    """`driftnet query` before anything was harvested says so in one line, exit 1."""
    result = runner.invoke(cli, ["query", "select 1"])
    assert result.exit_code == 1
    assert len(result.output.strip().splitlines()) == 1
    assert result.output.startswith("Error: no harvest at ")


def test_harvest_show_prints_record_json(runner: CliRunner, location: Path) -> None:
    """`driftnet harvest show EVENT_ID` prints the record as JSON, with its label."""
    records = sample(location)
    add_label(Harvest.at(str(location)), "e3", "bad", correction="Sure: here it is.")
    result = runner.invoke(cli, ["harvest", "show", "e3"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    label = document.pop("label")
    assert label["label"] == "bad"
    assert label["correction"] == "Sure: here it is."
    assert FailureRecord.model_validate(document) == records[2]
    by_record_id = runner.invoke(cli, ["harvest", "show", records[2].record_id])
    assert json.loads(by_record_id.output)["event"]["event_id"] == "e3"


def test_harvest_show_unknown_id(runner: CliRunner, location: Path) -> None:
    """`driftnet harvest show` of an unknown id is a one-line error."""
    sample(location)
    result = runner.invoke(cli, ["harvest", "show", "nope"])
    assert result.exit_code == 1
    assert result.output.strip() == "Error: no harvested failure with id nope"


def test_harvest_reasons_lists_reasons_since(runner: CliRunner, location: Path) -> None:
    """`driftnet harvest reasons --since 30d` counts failures by reason in that range only."""
    now = datetime.now(UTC).replace(microsecond=0)
    recent = (now - timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    old = (now - timedelta(days=40)).isoformat().replace("+00:00", "Z")
    write_failures(
        location,
        [
            failure("r1", reason="truncated", timestamp=recent),
            failure("r2", reason="truncated", timestamp=recent),
            failure("r3", reason="invalid_json", timestamp=recent),
        ],
    )
    write_failures(location, [failure("r4", reason="negative_feedback", timestamp=old)])
    result = runner.invoke(cli, ["harvest", "reasons", "--since", "30d", "--by", "service"])
    assert result.exit_code == 0, result.output
    truncated = [line for line in result.output.splitlines() if "truncated" in line]
    assert len(truncated) == 1
    assert "support-chat" in truncated[0]
    assert " 2 " in truncated[0]
    assert "invalid_json" in result.output
    assert "negative_feedback" not in result.output


def test_record_document_of_a_query_row(location: Path) -> None:
    """A row of the failures view (label columns included) turns back into its record."""
    records = sample(location)
    rows = Harvest.at(str(location)).run("select * from failures order by event_id").to_pylist()
    assert [FailureRecord.model_validate(record_document(r)) for r in rows] == records


def test_target_lists_only_parquet_and_skips_temp_files(location: Path) -> None:
    """list_parquet finds harvest files (sorted, relative) and never a writer's temp file."""
    sample(location)
    (location / DAY / ".driftnet.failures+0+1.parquet.abcd1234.tmp").write_bytes(b"x")
    (location / DAY / ".hidden.parquet").write_bytes(b"x")
    (location / DAY / "notes.txt").write_text("x")
    assert Target.of(location).list_parquet() == [
        "date=2026-11-25/service=billing/driftnet.failures+0+0000000000000000004.parquet",
        f"{DAY}/driftnet.failures+0+0000000000000000000.parquet",
        f"{DAY}/driftnet.failures+0+0000000000000000003.parquet",
    ]

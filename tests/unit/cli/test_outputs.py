"""Files the commands write: never over an existing file without --force, '-' is stdout, and
every path mistake is one line with no traceback (no broker needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner, Result

from driftnet.cli.main import cli
from tests.support.harvest_data import failure, write_failures

PRECIOUS = "an unrelated file nobody asked to replace\n"
SQL = "select event_id from failures order by 1"

WRITERS = {
    "export-eval": ["export", "--format", "eval"],
    "export-openai-chat": ["export", "--format", "openai-chat"],
    "export-parquet": ["export", "--format", "parquet"],
    "query-table": ["query", SQL],
    "query-csv": ["query", "--format", "csv", SQL],
    "query-json": ["query", "--format", "json", SQL],
    "query-parquet": ["query", "--format", "parquet", SQL],
    "simulate": ["simulate", "--duration", "30s", "--rate", "1"],
}


@pytest.fixture
def harvested(location: Path) -> Path:
    """A harvest of two failures (of two inputs: an export keeps one of identical inputs)."""
    other = {"messages": [{"role": "user", "content": "Cancel it."}]}
    write_failures(location, [failure("e1", offset=0), failure("e2", offset=1, input=other)])
    return location


def one_line_error(result: Result) -> str:
    """The single line a failed command printed (asserting there is only that line)."""
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("Error: "), lines
    return lines[0]


@pytest.mark.parametrize("command", list(WRITERS.values()), ids=list(WRITERS))
def test_an_existing_file_is_not_overwritten_without_force(
    runner: CliRunner, harvested: Path, tmp_path: Path, command: list[str]
) -> None:
    """-o FILE that exists: refused in one line naming --force, the file untouched; with
    --force it is replaced."""
    out = tmp_path / "keep.txt"
    out.write_text(PRECIOUS)
    refused = runner.invoke(cli, [*command, "-o", str(out)])
    assert one_line_error(refused) == f"Error: {out} exists; pass --force to overwrite it"
    assert refused.exit_code == 2
    assert out.read_text() == PRECIOUS
    forced = runner.invoke(cli, [*command, "-o", str(out), "--force"])
    assert forced.exit_code == 0, forced.output
    assert out.read_bytes() != PRECIOUS.encode()


@pytest.mark.parametrize("command", list(WRITERS.values()), ids=list(WRITERS))
def test_a_missing_folder_is_one_line(
    runner: CliRunner, harvested: Path, tmp_path: Path, command: list[str]
) -> None:
    """-o into a folder that does not exist: one line naming the folder, exit 2, nothing
    written (export --format eval used to print a FileNotFoundError traceback)."""
    out = tmp_path / "missing" / "dir" / "x.jsonl"
    result = runner.invoke(cli, [*command, "-o", str(out)])
    assert one_line_error(result) == (
        f"Error: cannot write {out}: the folder {out.parent} does not exist"
    )
    assert result.exit_code == 2
    assert not out.parent.exists()


def test_a_directory_as_output_is_one_line(
    runner: CliRunner, harvested: Path, tmp_path: Path
) -> None:
    """-o naming a directory: one line, even with --force."""
    result = runner.invoke(cli, ["export", "--format", "eval", "-o", str(tmp_path), "--force"])
    assert one_line_error(result) == f"Error: cannot write {tmp_path}: it is a directory"


def test_dash_is_stdout(runner: CliRunner, harvested: Path) -> None:
    """-o - writes text to standard output and creates no file named '-'."""
    exported = runner.invoke(cli, ["export", "--format", "eval", "-o", "-"])
    assert exported.exit_code == 0, exported.output
    assert {json.loads(line)["id"] for line in exported.stdout.splitlines()} == {"e1", "e2"}
    table = runner.invoke(cli, ["query", SQL, "-o", "-"])
    assert table.exit_code == 0, table.output
    assert "e1" in table.stdout
    simulated = runner.invoke(cli, ["simulate", "--duration", "10s", "--rate", "1", "-o", "-"])
    assert simulated.exit_code == 0, simulated.output
    assert len(simulated.stdout.splitlines()) == 10
    assert not Path("-").exists()


@pytest.mark.parametrize("command", [["export", "--format", "parquet"],
                                     ["query", "--format", "parquet", SQL]],
                         ids=["export", "query"])  # fmt: skip
def test_parquet_to_stdout_is_refused(
    runner: CliRunner, harvested: Path, command: list[str]
) -> None:
    """Parquet goes to a file: -o - (or no -o) is one line saying so."""
    for output in (["-o", "-"], []):
        result = runner.invoke(cli, [*command, *output])
        assert one_line_error(result) == (
            "Error: --format parquet needs --output FILE (Parquet is not written to stdout)"
        )


def test_new_files_are_written(runner: CliRunner, harvested: Path, tmp_path: Path) -> None:
    """A new file needs no --force."""
    out = tmp_path / "new.parquet"
    result = runner.invoke(cli, ["export", "--format", "parquet", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert sorted(pq.read_table(out).column("event_id").to_pylist()) == ["e1", "e2"]


@pytest.mark.parametrize("command", [["check"], ["publish"]])
def test_a_missing_input_file_is_one_line(runner: CliRunner, command: list[str]) -> None:
    """A missing input file: one line (no usage text), exit 2, before any broker is asked."""
    result = runner.invoke(cli, [*command, "no-such-file.jsonl"])
    assert one_line_error(result) == (
        "Error: Invalid value for 'PATH': 'no-such-file.jsonl': No such file or directory"
    )
    assert result.exit_code == 2


def test_a_file_as_demo_folder_is_one_line(runner: CliRunner, tmp_path: Path) -> None:
    """`demo --dir` naming a file: one line, exit 2, no demo started."""
    afile = tmp_path / "afile"
    afile.write_text("x")
    result = runner.invoke(cli, ["demo", "--dir", str(afile)])
    assert "is a file" in one_line_error(result)
    assert result.exit_code == 2

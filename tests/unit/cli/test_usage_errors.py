"""A mistake on the command line is one line that names the option and, for a choice, the
value meant: never click's usage block, never a 600-character list (no broker needed)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from driftnet.cli.main import cli


def one_line(result_output: str) -> str:
    """The one line a refused command printed."""
    lines = result_output.splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_a_dead_letter_reason_spelled_with_a_dash_suggests_the_reason(runner: CliRunner) -> None:
    """`dlq show --reason invalid-json` printed click's usage block and 14 quoted reasons."""
    result = runner.invoke(cli, ["dlq", "show", "--reason", "invalid-json"])
    assert result.exit_code == 2
    assert one_line(result.output) == (
        "Error: --reason 'invalid-json' is not a dead-letter reason; did you mean "
        "'invalid_json'? (driftnet dlq show -h lists them)"
    )


def test_a_short_choice_lists_its_values(runner: CliRunner) -> None:
    """A choice of a few values lists them in the one line."""
    result = runner.invoke(cli, ["query", "--format", "xml", "select 1"])
    assert result.exit_code == 2
    assert one_line(result.output) == (
        "Error: --format 'xml' is not an output format (one of table, csv, json, parquet)"
    )


@pytest.mark.parametrize(
    ("command", "option", "message"),
    [
        (["harvest", "reasons", "--since", "2x"], "--since", "'2x' is not a time: use 24h"),
        (["harvest", "reasons", "--until", "soon"], "--until", "'soon' is not a time"),
        (["export", "--format", "eval", "--since", "2x"], "--since", "'2x' is not a time"),
        (["canary", "status", "--since", "2x"], "--since", "'2x' is not a time"),
        (["silence", "add", "--match", "a=b", "--for", "2q"], "--for", "'2q' is not a duration"),
        (["simulate", "-o", "-", "--start", "later"], "--start", "'later' is not a time"),
    ],
    ids=["reasons-since", "reasons-until", "export-since", "canary-since", "silence-for", "start"],
)
def test_a_time_or_duration_that_does_not_parse_names_its_option(
    runner: CliRunner, location: Path, command: list[str], option: str, message: str
) -> None:
    """`harvest reasons --since 2x` said `Invalid value: '2x' is not a time` without naming
    --since (and only once a harvest was there); now the option is named, before anything
    is read."""
    result = runner.invoke(cli, command)
    assert result.exit_code == 2, result.output
    line = one_line(result.output)
    assert line.startswith(f"Error: {option} {message}"), line


def test_the_config_option_after_a_command_says_where_it_goes(
    runner: CliRunner, tmp_path: Path
) -> None:
    """`driftnet topics create --config good.toml` said `No such option: --config` under a
    usage block; the one line says to put --config before the command."""
    good = tmp_path / "good.toml"
    good.write_text("")
    for config in (["--config", str(good)], [f"--config={good}"]):
        result = runner.invoke(cli, ["topics", "create", *config])
        assert result.exit_code == 2
        assert one_line(result.output) == (
            "Error: --config belongs to driftnet, not to topics create: put --config before "
            "the command: driftnet --config FILE topics create"
        )


@pytest.mark.parametrize(
    ("command", "line"),
    [
        (["wrker"], "Error: driftnet has no command 'wrker'; did you mean 'worker'?"),
        (["dlq", "shwo"], "Error: driftnet dlq has no command 'shwo'; did you mean 'show'?"),
        (["zzz"], "Error: driftnet has no command 'zzz' (driftnet -h lists them)"),
        (
            ["--confg", "x", "config"],
            "Error: driftnet has no option --confg; did you mean --config?",
        ),
        (
            ["export", "--forse"],
            "Error: driftnet export has no option --forse; did you mean --force?",
        ),
    ],
    ids=["command", "subcommand", "no-match", "root-option", "option"],
)
def test_an_unknown_command_or_option_suggests_the_one_meant(
    runner: CliRunner, command: list[str], line: str
) -> None:
    """`driftnet wrker` said `No such command 'wrker'.` under a usage block, with no hint."""
    result = runner.invoke(cli, command)
    assert result.exit_code == 2
    assert one_line(result.output) == line

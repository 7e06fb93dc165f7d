"""The CLI reference: generated from click's command tree, and its page in the docs
(docs/cli.md)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import click
import pytest

from driftnet.cli.cli_reference import END, START, block, commands, main, render
from driftnet.cli.main import cli
from tests.conftest import ROOT

PAGE = ROOT / "docs" / "cli.md"
REGENERATE = "make docs (or: .venv/bin/python -m driftnet.cli.cli_reference --write docs/cli.md)"


def _every_command() -> dict[str, click.Command]:
    """Every command of the tree, walked here independently of the generator."""
    found: dict[str, click.Command] = {"driftnet": cli}
    for name, command in cli.commands.items():
        found[f"driftnet {name}"] = command
        if isinstance(command, click.Group):
            for sub, subcommand in command.commands.items():
                found[f"driftnet {name} {sub}"] = subcommand
    return found


def test_page_reference_matches_the_commands() -> None:
    """docs/cli.md's reference is exactly what the command tree generates."""
    text = PAGE.read_text(encoding="utf-8")
    assert text.count(START) == 1, f"one {START} needed: run {REGENERATE}"
    assert text.count(END) == 1, f"one {END} needed: run {REGENERATE}"
    assert text.split(START)[1].split(END)[0] == block(), f"run {REGENERATE}"


def test_every_command_and_option_is_listed_with_its_help() -> None:
    """Each command has its section and help, and each option its row with its help."""
    expected = _every_command()
    generated = {command.name: command for command in commands()}
    assert set(generated) == set(expected)
    text = render()
    for name, command in expected.items():
        assert f"`{name}`" in text
        if command.help:
            first_words = " ".join(command.help.split()[:4])
            assert first_words in generated[name].help, name
        options = [p for p in command.params if isinstance(p, click.Option) and not p.hidden]
        listed = " ".join(option.names for option in generated[name].options)
        for option in options:
            assert option.opts[0] in listed, f"{name} {option.opts[0]}"
            if option.help:
                helps = " ".join(o.help for o in generated[name].options)
                assert " ".join(option.help.split()[:3]) in helps, f"{name} {option.opts[0]}"


def test_markdown_shows_help_as_written() -> None:
    """Option values with a pipe stay in one table cell, and nothing in a help text turns into
    emphasis or an HTML tag."""
    text = render()
    assert "| `--format` [table\\|csv\\|json\\|parquet] |" in text
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    assert rows
    for row in rows:
        assert row.replace("\\|", "").count("|") == 3, row
    assert "<" not in text.replace("&lt;", "").replace("\\<", "")


def test_rendering_does_not_depend_on_the_terminal() -> None:
    """The module run with another terminal width and hash seed prints the same reference."""
    done = subprocess.run(
        [sys.executable, "-m", "driftnet.cli.cli_reference"],
        cwd=ROOT,
        env={**os.environ, "COLUMNS": "40", "PYTHONHASHSEED": "12345"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout == render()


def test_write_replaces_only_the_marked_block(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--write FILE` rewrites the text between the markers and nothing else; twice is a no-op."""
    path = tmp_path / "cli.md"
    path.write_text(f"# CLI\n\nHand-written.\n\n{START}\nstale\n{END}\n", encoding="utf-8")
    assert main(["--write", str(path)]) == 0
    written = path.read_text(encoding="utf-8")
    assert written == f"# CLI\n\nHand-written.\n\n{START}{block()}{END}\n"
    assert main(["--write", str(path)]) == 0
    assert "up to date" in capsys.readouterr().out


def test_write_refuses_a_file_without_markers(tmp_path: Path) -> None:
    """Without exactly one pair of markers nothing is written."""
    path = tmp_path / "cli.md"
    path.write_text(f"# CLI\n{END}\n{START}\n", encoding="utf-8")
    with pytest.raises(SystemExit):
        main(["--write", str(path)])
    assert path.read_text(encoding="utf-8") == f"# CLI\n{END}\n{START}\n"

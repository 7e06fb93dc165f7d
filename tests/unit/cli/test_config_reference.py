"""The configuration reference: generated from the settings model, and its page in the docs
(docs/configuration.md)."""

from __future__ import annotations

import inspect
import os
import re
import subprocess
import sys
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

import pytest
from click.testing import CliRunner
from pydantic import BaseModel

from driftnet.cli.config_reference import (
    END,
    START,
    Row,
    block,
    main,
    render,
    replace_block,
    sections,
)
from driftnet.streams.settings import Settings, load_settings
from tests.conftest import ROOT

PAGE = ROOT / "docs" / "configuration.md"
REGENERATE = "make docs (or: .venv/bin/python -m driftnet.cli.config_reference --write docs/configuration.md)"


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with no DRIFTNET_* variable set."""
    for name in list(os.environ):
        if name.startswith("DRIFTNET_"):
            monkeypatch.delenv(name)


def _page_reference() -> str:
    text = PAGE.read_text(encoding="utf-8")
    assert text.count(START) == 1, f"{PAGE.name} needs one {START} marker; then run {REGENERATE}"
    assert text.count(END) == 1, f"{PAGE.name} needs one {END} marker; then run {REGENERATE}"
    return text.split(START)[1].split(END)[0]


def _rows() -> dict[str, Row]:
    return {row.key: row for section in sections() for row in section.rows}


def _bare(tp: Any) -> Any:
    """``tp`` without Annotated metadata and without None."""
    if get_origin(tp) is Annotated:
        return _bare(get_args(tp)[0])
    if get_origin(tp) in (Union, types.UnionType):
        members = [arg for arg in get_args(tp) if arg is not type(None)]
        return _bare(members[0]) if len(members) == 1 else tp
    return tp


def _is_model(tp: Any) -> bool:
    return inspect.isclass(tp) and issubclass(tp, BaseModel)


def _leaves(model: type[BaseModel], prefix: str = "") -> Iterator[str]:
    """Every leaf key of ``model``, walked here independently of the generator."""
    for name, field in model.model_fields.items():
        key, tp = f"{prefix}{name}", _bare(field.annotation)
        args = get_args(tp)
        if _is_model(tp):
            yield from _leaves(tp, f"{key}.")
        elif get_origin(tp) is dict and _is_model(_bare(args[1])):
            yield from _leaves(_bare(args[1]), f"{key}.<name>.")
        elif get_origin(tp) is tuple and _is_model(_bare(args[0])):
            yield from _leaves(_bare(args[0]), f"{key}[].")
        else:
            yield key


def test_page_reference_matches_the_settings_model() -> None:
    """The docs' configuration reference is exactly what the settings model generates."""
    assert _page_reference() == block(), (
        f"{PAGE.name}'s configuration reference differs from the settings model: run {REGENERATE}"
    )


def test_every_leaf_setting_is_in_the_page() -> None:
    """Every leaf setting of the model has a row in the docs' reference."""
    documented = set(re.findall(r"^\| `([^`]+)` \|", _page_reference(), flags=re.MULTILINE))
    leaves = list(_leaves(Settings))
    assert len(leaves) > 100
    missing = [key for key in leaves if key not in documented]
    assert not missing, f"not in {PAGE.name}'s reference: {missing}; run {REGENERATE}"


def test_every_row_has_a_type_a_default_and_a_description() -> None:
    """No setting is listed without a type, a default (or `required`) and a description: a
    new field needs a docstring."""
    rows = list(_rows().values())
    assert {row.key.split(".")[0] for row in rows} == set(Settings.model_fields)
    undescribed = [row.key for row in rows if not row.description]
    assert not undescribed, f"write a docstring for these fields: {undescribed}"
    assert all(row.type for row in rows)
    assert all(row.default for row in rows if row.leaf)


@pytest.mark.parametrize(
    ("key", "value", "read", "expected"),
    [
        ("kafka.bootstrap_servers", "k1:9092", lambda s: s.kafka.bootstrap_servers, "k1:9092"),
        ("worker.offset_reset", "latest", lambda s: s.worker.offset_reset, "latest"),
        ("topics.events.partitions", "8", lambda s: s.topics.events.partitions, 8),
        (
            "detectors.canary.weights.drift",
            "7.5",
            lambda s: s.detectors.canary.weights.drift,
            7.5,
        ),
        (
            "harvest.redaction.kinds",
            '["email"]',
            lambda s: s.harvest.redaction.kinds,
            ("email",),
        ),
        (
            "rules.services.<name>.latency_slo_ms",
            "5000",
            lambda s: s.rules.services["chat"].latency_slo_ms,
            5000.0,
        ),
        (
            "alerts.slack_token",
            "xoxb-1",
            lambda s: s.alerts.slack_token.get_secret_value(),
            "xoxb-1",
        ),
    ],
)
def test_listed_environment_variables_are_accepted(
    monkeypatch: pytest.MonkeyPatch,
    key: str,
    value: str,
    read: Callable[[Settings], Any],
    expected: Any,
) -> None:
    """The variable the reference gives for a setting sets it (a `<NAME>` entry included)."""
    variable = _rows()[key].env
    assert variable is not None
    monkeypatch.setenv(variable.replace("<NAME>", "CHAT"), value)
    assert read(load_settings()) == expected


def test_types_and_defaults_read_like_toml() -> None:
    """Types are readable and defaults are spelt as TOML would; secrets show as unset."""
    rows = _rows()
    expected = {
        "publisher.batch_max_events": ("int ≥ 1", "`100`"),
        "worker.offset_reset": ('"earliest" | "latest"', '`"earliest"`'),
        "worker.data_dir": ("path", '`"driftnet-data/worker"`'),
        "worker.detect": ("boolean", "`true`"),
        "kafka.sasl_password": ("secret string, optional", "unset"),
        "detectors.aggregate.sketch_relative_accuracy": ("0 < float < 1", "`0.02`"),
        "detectors.aggregate.attributes": ("list of string", "`[]`"),
        "harvest.redaction.kinds": (
            'list of ("email" | "phone" | "card" | "api_key")',
            '`["email", "phone", "card", "api_key"]`',
        ),
        "topics.events.name": (
            "string of 1 to 249 characters matching `^[A-Za-z0-9._-]+$`",
            '`"llm.inference.events"`',
        ),
        "detectors.prices.models.<name>.input_per_mtok": ("float ≥ 0", "required"),
        "detectors.canary.metrics.<name>.enabled": ("boolean", "`true`"),
        "detectors.canary.metrics.<name>.tolerance": (
            "float ≥ 0",
            "depends on `<name>`",
        ),
    }
    assert {key: (rows[key].type, rows[key].default) for key in expected} == expected
    assert rows["alerts.routes[].receivers"].env is None
    assert rows["alerts.inhibit"].default.startswith('`[{source = {source = "canary"')


def test_named_tables_and_lists_are_one_row_then_their_entry() -> None:
    """`rules.services` and `alerts.routes` get a row each, then their entry's keys with a
    `<name>` / `[]` placeholder."""
    rows = _rows()
    assert not rows["rules.services"].leaf
    assert rows["rules.services"].type == "table of tables, by name"
    assert rows["rules.services.<name>.scores.<name>.threshold"].env == (
        "DRIFTNET_RULES__SERVICES__<NAME>__SCORES__<NAME>__THRESHOLD"
    )
    assert rows["alerts.routes"].type == "list of tables"
    assert rows["alerts.routes[].group_wait_s"].default == "`10.0`"
    assert rows["detectors.services"].leaf  # partial tables: no fixed keys to list


def test_markdown_cells_escape_pipes() -> None:
    """A `|` in a type or a description does not split a table row."""
    line = next(line for line in render().splitlines() if line.startswith("| `worker.log_level`"))
    assert len(re.split(r"(?<!\\)\|", line)) == 7  # five cells between six pipes


def test_rendering_does_not_depend_on_hash_seed() -> None:
    """The module run under another hash seed prints the same reference (sets are sorted)."""
    done = subprocess.run(
        [sys.executable, "-m", "driftnet.cli.config_reference"],
        cwd=ROOT,
        env={**os.environ, "PYTHONHASHSEED": "12345"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout == render()


def test_write_replaces_only_the_marked_block(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--write FILE` rewrites the text between the markers and nothing else."""
    path = tmp_path / "README.md"
    path.write_text(f"# Title\n\n{START}\nstale\n{END}\n\nAfter.\n", encoding="utf-8")
    assert main(["--write", str(path)]) == 0
    assert path.read_text(encoding="utf-8") == f"# Title\n\n{START}{block()}{END}\n\nAfter.\n"
    assert main(["--write", str(path)]) == 0
    assert "up to date" in capsys.readouterr().out


def test_write_refuses_a_file_without_markers(tmp_path: Path) -> None:
    """Without exactly one pair of markers nothing is written."""
    path = tmp_path / "README.md"
    path.write_text(f"# Title\n{END}\n{START}\n", encoding="utf-8")
    with pytest.raises(SystemExit):
        main(["--write", str(path)])
    assert path.read_text(encoding="utf-8") == f"# Title\n{END}\n{START}\n"
    with pytest.raises(ValueError, match="expected one"):
        replace_block("no markers", "x")


def test_config_reference_flag_prints_the_reference() -> None:
    """`driftnet config --reference` prints the Markdown, without loading any settings."""
    from driftnet.cli.main import cli

    result = CliRunner().invoke(cli, ["--config", "/nonexistent.toml", "config", "--reference"])
    assert result.exit_code == 0, result.output
    assert result.output == render()

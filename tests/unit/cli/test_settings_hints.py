"""A misspelt setting gets a "did you mean": in the TOML file and in DRIFTNET_* variables."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from driftnet.cli.main import cli


def error_line(result: object) -> str:
    """The one line of a failed `driftnet config`."""
    from click.testing import Result

    assert isinstance(result, Result)
    assert result.exit_code == 1, result.output
    [line] = result.output.strip().splitlines()
    return line


@pytest.mark.parametrize(
    ("toml", "key", "meant"),
    [
        ('[kafka]\nbootstrap_server = "k:9092"\n', "kafka.bootstrap_server",
         "kafka.bootstrap_servers"),
        ('[harvests]\nlocation = "h"\n', "harvests", "harvest"),
        ("[rules.defaults]\nlatency_slo = 3\n", "rules.defaults.latency_slo",
         "rules.defaults.latency_slo_ms"),
        ("[rules.services.chat]\nlatency_slo = 3\n", "rules.services.chat.latency_slo",
         "rules.services.chat.latency_slo_ms"),
        ('[topics.evnts]\nname = "x"\n', "topics.evnts", "topics.events"),
    ],
    ids=["key", "section", "nested", "named-table", "topic"],
)  # fmt: skip
def test_unknown_key_in_the_file(
    runner: CliRunner, tmp_path: Path, toml: str, key: str, meant: str
) -> None:
    """An unknown key in the TOML file: one line naming it and the closest known key."""
    path = tmp_path / "c.toml"
    path.write_text(toml)
    line = error_line(runner.invoke(cli, ["--config", str(path), "config"]))
    assert line == (
        f"Error: invalid setting {key}: unknown key, did you mean `{meant}`? "
        f"(from {path} or DRIFTNET_* environment)"
    )


def test_nothing_close_gets_no_guess(runner: CliRunner, tmp_path: Path) -> None:
    """A key like no other is named without a guess."""
    path = tmp_path / "c.toml"
    path.write_text("[kafka]\nbrokers = 3\n")
    line = error_line(runner.invoke(cli, ["--config", str(path), "config"]))
    assert line == f"Error: invalid setting kafka.brokers: unknown key (from {path} or DRIFTNET_* environment)"  # fmt: skip


@pytest.mark.parametrize(
    ("variable", "meant"),
    [
        ("DRIFTNET_KAFKAA__BOOTSTRAP_SERVERS", "DRIFTNET_KAFKA__BOOTSTRAP_SERVERS"),
        ("DRIFTNET_KAFKA_BOOTSTRAP_SERVERS", "DRIFTNET_KAFKA__BOOTSTRAP_SERVERS"),
        ("DRIFTNET_HARVST__LOCATION", "DRIFTNET_HARVEST__LOCATION"),
    ],
    ids=["section", "one-underscore", "harvest"],
)
def test_unknown_variable_section(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, variable: str, meant: str
) -> None:
    """A DRIFTNET_* variable of no section: the variable it was meant to be."""
    monkeypatch.setenv(variable, "x")
    line = error_line(runner.invoke(cli, ["config"]))
    assert line.startswith(
        f"Error: unknown environment variable {variable}: did you mean `{meant}`? (settings are "
    )


def test_unknown_variable_key(runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    """A DRIFTNET_* variable with a misspelt key: the variable, spelt as a variable."""
    monkeypatch.setenv("DRIFTNET_KAFKA__BOOTSTRAP_SERVER", "k:9092")
    line = error_line(runner.invoke(cli, ["config"]))
    assert line == (
        "Error: invalid setting kafka.bootstrap_server: unknown key, did you mean "
        "`DRIFTNET_KAFKA__BOOTSTRAP_SERVERS`? (from DRIFTNET_* environment)"
    )


def test_a_misspelt_config_variable_suggests_driftnet_config(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`DRIFTNET_CONIFG=x` got no guess and a list of names without DRIFTNET_CONFIG."""
    monkeypatch.setenv("DRIFTNET_CONIFG", "x")
    line = error_line(runner.invoke(cli, ["config"]))
    assert line.startswith(
        "Error: unknown environment variable DRIFTNET_CONIFG: did you mean `DRIFTNET_CONFIG`? "
        "(settings are DRIFTNET_CONFIG (the TOML file), DRIFTNET_ALERTS__..., "
    )


def test_a_misspelt_variable_key_is_suggested_as_a_variable(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`DRIFTNET_HTTP__PROT`: the suggestion is spelt as the variable the user set."""
    monkeypatch.setenv("DRIFTNET_HTTP__PROT", "8080")
    line = error_line(runner.invoke(cli, ["config"]))
    assert line == (
        "Error: invalid setting http.prot: unknown key, did you mean `DRIFTNET_HTTP__PORT`? "
        "(from DRIFTNET_* environment)"
    )


@pytest.mark.parametrize(
    ("variable", "value", "said"),
    [
        ("DRIFTNET_HARVEST__SINK_IN_WORKER", "maybe",
         "harvest.sink_in_worker: expected true or false, got 'maybe'"),
        ("DRIFTNET_HTTP__PORT", "eighty", "http.port: expected a whole number, got 'eighty'"),
    ],
    ids=["boolean", "integer"],
)  # fmt: skip
def test_a_bad_boolean_or_number_is_said_plainly(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, said: str
) -> None:
    """`DRIFTNET_HARVEST__SINK_IN_WORKER=maybe` said `Input should be a valid boolean, unable
    to interpret input`: now what is expected, and the value given."""
    monkeypatch.setenv(variable, value)
    line = error_line(runner.invoke(cli, ["config"]))
    assert line == f"Error: invalid setting {said} (from DRIFTNET_* environment)"

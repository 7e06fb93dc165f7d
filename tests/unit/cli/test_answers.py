"""Answers that explain themselves: an empty `harvest reasons` says where the failures are,
an option with a fixed set of values lists them, `simulate -o` ends now (no broker needed)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import get_args

import pytest
from click.testing import CliRunner

from driftnet.cli.main import cli
from driftnet.contract.decode import DeadLetterReason
from driftnet.harvest.rules import RuleId
from tests.support.harvest_data import failure, write_failures


def test_empty_reasons_say_where_the_newest_failure_is(runner: CliRunner, location: Path) -> None:
    """`harvest reasons` over a range with no failure (the example data are days old): one
    line with the range searched, the newest record's event time and the --since to use."""
    now = datetime.now(UTC)
    newest = (now - timedelta(days=13, hours=8)).replace(second=0, microsecond=0)
    write_failures(location, [failure("old", timestamp=newest.isoformat())])
    result = runner.invoke(cli, ["harvest", "reasons"])
    assert result.exit_code == 0, result.output
    [line] = result.output.strip().splitlines()
    assert line.startswith("no failures between ")
    assert line.endswith(
        f"and now (event time); the newest record is from {newest:%Y-%m-%d %H:%M} UTC: "
        "try --since 14d"
    )
    found = runner.invoke(cli, ["harvest", "reasons", "--since", "14d"])
    assert "latency_slo" in found.output


def test_empty_reasons_before_the_range_suggest_a_later_until(
    runner: CliRunner, location: Path
) -> None:
    """A range that ends before the newest failure says so."""
    write_failures(location, [failure("e1", timestamp="2026-11-24T14:06:00Z")])
    result = runner.invoke(
        cli, ["harvest", "reasons", "--since", "2026-11-01", "--until", "2026-11-10"]
    )
    assert result.output.strip() == (
        "no failures between 2026-11-01 00:00 and 2026-11-10 00:00 UTC (event time); the "
        "newest record is from 2026-11-24 14:06 UTC: try a later --until, or none"
    )


def test_dlq_reason_is_one_of_the_contracts_reasons(runner: CliRunner) -> None:
    """`dlq show --reason bogus` is refused in one line before any broker is asked, pointing
    at the help, which lists every reason of the contract; `dlq replay` likewise."""
    for command in ("show", "replay"):
        result = runner.invoke(cli, ["dlq", command, "--reason", "bogus"])
        assert result.exit_code == 2, result.output
        assert result.output.splitlines() == [
            "Error: --reason 'bogus' is not a dead-letter reason "
            f"(driftnet dlq {command} -h lists them)"
        ]
        listed = runner.invoke(cli, ["dlq", command, "-h"]).output
        for reason in get_args(DeadLetterReason):
            assert reason in listed, reason


def test_export_reason_is_a_rule_or_detector(runner: CliRunner, location: Path) -> None:
    """`export --reason truncatd` is one line with the reason meant (it listed all 30 ids on
    one line); every rule and detector id is accepted."""
    write_failures(location, [failure("e1", reason="refusal")])
    result = runner.invoke(cli, ["export", "--format", "eval", "--reason", "truncatd"])
    assert result.exit_code == 2, result.output
    assert result.output.splitlines() == [
        "Error: --reason 'truncatd' is not a failure reason; did you mean 'truncated'? "
        "(a rule such as refusal, or a detector id such as latency.p95.v1)"
    ]
    for rule in (*get_args(RuleId), "latency.p95.v1", "canary.judge.v1"):
        known = runner.invoke(cli, ["export", "--format", "eval", "--reason", rule])
        assert known.exit_code == 0, (rule, known.output)
    ok = runner.invoke(cli, ["export", "--format", "eval", "--reason", "refusal"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["id"] == "e1"


@pytest.mark.parametrize(
    ("command", "option"),
    [
        (["query", "select 1", "--format"], "--format"),
        (["export", "--format"], "--format"),
        (["export", "--format", "eval", "--kind"], "--kind"),
        (["harvest", "reasons", "--by"], "--by"),
        (["canary", "status", "--format"], "--format"),
        (["simulate", "--scenario"], "--scenario"),
        (["dlq", "show", "--reason"], "--reason"),
    ],
    ids=["query-format", "export-format", "export-kind", "reasons-by", "canary", "scenario", "dlq"],
)
def test_every_fixed_set_is_checked(runner: CliRunner, command: list[str], option: str) -> None:
    """Every option with a fixed set of values refuses another in one line naming the option
    (no usage block), with the valid values or where -h lists them."""
    result = runner.invoke(cli, [*command, "bogus"])
    assert result.exit_code == 2, result.output
    [line] = result.output.splitlines()
    assert line.startswith(f"Error: {option} 'bogus' is not ")
    assert line.endswith(" lists them)") or "(one of " in line


def test_simulate_to_a_file_ends_now(runner: CliRunner, tmp_path: Path) -> None:
    """`simulate -o` writes a scenario that ends now, as its help says: an hour of it passes
    `check` with no timestamp_out_of_range (14,986 of 18,000 lines did when it began now)."""
    out = tmp_path / "hour.jsonl"
    before = datetime.now(UTC)
    written = runner.invoke(cli, ["simulate", "--duration", "1h", "--rate", "2", "-o", str(out)])
    assert written.exit_code == 0, written.output
    after = datetime.now(UTC)
    stamps = [
        datetime.fromisoformat(json.loads(line)["timestamp"])
        for line in out.read_text().splitlines()
    ]
    assert len(stamps) == 7200
    assert max(stamps) <= after
    assert max(stamps) >= before - timedelta(seconds=5)
    assert min(stamps) >= before - timedelta(hours=1, seconds=5)
    checked = runner.invoke(cli, ["check", str(out)])
    assert checked.exit_code == 0, checked.output
    assert "timestamp_out_of_range" not in checked.output

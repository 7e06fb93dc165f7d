"""The driftnet command: subcommands print what they promise; user errors are one line."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
from pathlib import Path
from typing import get_args

import pytest
from click.testing import CliRunner

from driftnet.cli.main import cli
from driftnet.contract.decode import DeadLetter
from driftnet.harvest.records import FailureRecord
from driftnet.harvest.rules import RuleId
from driftnet.sandbox.broker import free_port
from tests.conftest import ROOT
from tests.support.kafka_helpers import DRIFTNET, join_publisher_threads

EXAMPLES = ROOT / "examples"


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """A CLI runner with no DRIFTNET_* variable leaking in from the shell."""
    for name in list(os.environ):
        if name.startswith("DRIFTNET_"):
            monkeypatch.delenv(name)
    return CliRunner()


def test_schema_prints_json_schema(runner: CliRunner) -> None:
    """`driftnet schema` prints the event's JSON Schema."""
    result = runner.invoke(cli, ["schema"])
    assert result.exit_code == 0, result.output
    schema = json.loads(result.output)
    assert "event_id" in schema["required"]


def test_config_prints_effective_masked_settings(runner: CliRunner, tmp_path: Path) -> None:
    """`driftnet config` shows file values and masks secrets."""
    path = tmp_path / "c.toml"
    path.write_text('[kafka]\nbootstrap_servers = "k:9092"\nsasl_password = "s3cret"\n')
    result = runner.invoke(cli, ["--config", str(path), "config"])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.output)
    assert printed["kafka"]["bootstrap_servers"] == "k:9092"
    assert printed["kafka"]["sasl_password"] == "**********"
    assert "s3cret" not in result.output


def test_bad_config_is_one_line_without_traceback(runner: CliRunner, tmp_path: Path) -> None:
    """A wrong key in the config file is a one-line error and exit code 1."""
    path = tmp_path / "c.toml"
    path.write_text("[kafka]\nbrokers = 3\n")
    result = runner.invoke(cli, ["--config", str(path), "config"])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"Error: invalid setting kafka.brokers: unknown key (from {path} or DRIFTNET_* environment)"
    ]


def test_check_reports_every_rule_and_dead_letter(runner: CliRunner) -> None:
    """`driftnet check` on the examples shows a failure for each rule and the malformed lines."""
    result = runner.invoke(
        cli, ["--config", str(EXAMPLES / "driftnet.toml"), "check", str(EXAMPLES / "events.jsonl")]
    )
    assert result.exit_code == 0, result.output
    for rule in get_args(RuleId):
        assert f"    {rule}" in result.output, rule
    for reason in (
        "invalid_json",
        "missing_field",
        "invalid_field",
        "unsupported_schema_version",
        "not_an_object",
    ):
        assert f" {reason}:" in result.output, reason
    assert (
        "events.jsonl: 67 messages, 62 valid events, 16 failures, 7 dead letters" in result.output
    )


def test_check_json_lines_are_records(runner: CliRunner) -> None:
    """`driftnet check --json` prints failure records and dead letters that parse back."""
    result = runner.invoke(
        cli,
        [
            "--config",
            str(EXAMPLES / "driftnet.toml"),
            "check",
            "--json",
            str(EXAMPLES / "events.jsonl"),
        ],
    )
    assert result.exit_code == 0, result.output
    records, dead = 0, 0
    for line in result.output.splitlines():
        document = json.loads(line)
        if "record_id" in document:
            FailureRecord.model_validate(document)
            records += 1
        else:
            DeadLetter.model_validate(document)
            dead += 1
    assert (records, dead) == (16, 7)


def test_check_missing_file(runner: CliRunner) -> None:
    """A missing input file is a one-line usage error."""
    result = runner.invoke(cli, ["check", "no-such-file.jsonl"])
    assert result.exit_code == 2
    assert "No such file or directory" in result.output
    assert "Traceback" not in result.output


def test_broker_port_in_use_is_one_line() -> None:
    """`driftnet broker` on a busy port says so in one line (real process, real socket)."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(
            [str(DRIFTNET), "broker", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 1
    assert (
        done.stderr.strip()
        == f"Error: port {port} on 127.0.0.1 is already in use; pick another with --port"
    )


@pytest.mark.integration
@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_broker_runs_in_foreground_and_stops_on_signal(stop: signal.Signals) -> None:
    """`driftnet broker` serves Kafka until Ctrl-C or SIGTERM, then stops and leaves no broker behind."""
    from driftnet.sandbox.broker import free_port

    port = free_port()
    process = subprocess.Popen(
        [str(DRIFTNET), "broker", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        seen: list[str] = []
        while not any(line.startswith(f"broker ready on 127.0.0.1:{port}") for line in seen):
            line = process.stdout.readline()
            assert line, f"driftnet broker ended before it was ready: {seen}"
            seen.append(line)
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            pass
        process.send_signal(stop)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    with (
        pytest.raises(ConnectionRefusedError),
        socket.create_connection(("127.0.0.1", port), timeout=1),
    ):
        pass


def test_publish_with_no_broker_is_one_line_and_exit_1(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`driftnet publish` to an address nobody listens on gives up after --timeout, says how
    many events were not delivered, and exits 1."""
    monkeypatch.setenv("DRIFTNET_KAFKA__BOOTSTRAP_SERVERS", f"127.0.0.1:{free_port()}")
    result = runner.invoke(cli, ["publish", "--timeout", "0.5", str(EXAMPLES / "events.jsonl")])
    assert result.exit_code == 1
    assert "67 lines -> 0 events in 0 messages" in result.output
    assert result.output.strip().splitlines()[-1].startswith("Error: 69 events were not delivered")
    assert "Traceback" not in result.output
    join_publisher_threads()


def test_worker_with_no_broker_is_one_line(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    from driftnet.streams.ops import preflight

    monkeypatch.setenv("DRIFTNET_KAFKA__BOOTSTRAP_SERVERS", f"127.0.0.1:{free_port()}")
    monkeypatch.setattr(preflight, "PREFLIGHT_TIMEOUT_S", 0.5)
    result = runner.invoke(cli, ["worker"])
    assert result.exit_code == 1
    assert result.output.startswith("Error: cannot reach Kafka at 127.0.0.1:")
    assert len(result.output.strip().splitlines()) == 1

"""No broker at the address: every command that talks to Kafka says so in one line within
about 3 s (they took 5-45 s), before it reads or sends anything. Nothing listens on the
port these tests use, so they need no broker."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from driftnet.cli.main import cli
from driftnet.sandbox.broker import free_port
from tests.conftest import ROOT
from tests.support.kafka_helpers import join_publisher_threads

COMMANDS = {
    "topics-create": ["topics", "create"],
    "publish": ["publish", str(ROOT / "examples" / "events.jsonl")],
    "simulate": ["simulate", "--duration", "5s", "--quiet"],
    "dlq-show": ["dlq", "show"],
    "dlq-replay": ["dlq", "replay"],
    "canary-status": ["canary", "status"],
    "silence-list": ["silence", "list"],
    "silence-add": ["silence", "add", "--match", "service=chat"],
    "worker": ["worker"],
    "sink": ["sink"],
}


@pytest.mark.parametrize("command", list(COMMANDS.values()), ids=list(COMMANDS))
def test_no_broker_is_one_line_within_3_s(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, command: list[str]
) -> None:
    """Connection refused: one line naming the address and `driftnet broker`, exit 1, < 3 s."""
    address = f"127.0.0.1:{free_port()}"
    monkeypatch.setenv("DRIFTNET_KAFKA__BOOTSTRAP_SERVERS", address)
    monkeypatch.setenv("DRIFTNET_WORKER__DATA_DIR", str(tmp_path / "worker"))
    monkeypatch.setenv("DRIFTNET_HTTP__ENABLED", "false")
    started = time.monotonic()
    result = runner.invoke(cli, command)
    took = time.monotonic() - started
    join_publisher_threads()
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    [line] = result.output.strip().splitlines()
    assert line.startswith("Error: "), line
    assert f"at {address} (connection refused)" in line
    assert "`driftnet broker` starts one" in line
    assert took < 3.0, f"{took:.1f} s"

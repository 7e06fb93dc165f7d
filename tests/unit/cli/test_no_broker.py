"""No broker at the address: every command that talks to Kafka says so in one line within
about 3 s (they took 5-45 s), before it reads or sends anything. Nothing listens on the
port these tests use, so they need no broker."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

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
    "harvest-themes-signal": ["harvest", "themes", "--signal"],
    "worker": ["worker"],
    "sink": ["sink"],
}


def invoke_against(
    address: str,
    runner: CliRunner,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    command: list[str],
) -> tuple[Result, float]:
    """Run ``command`` with Kafka at ``address`` (no HTTP endpoint): its result and seconds."""
    monkeypatch.setenv("DRIFTNET_KAFKA__BOOTSTRAP_SERVERS", address)
    monkeypatch.setenv("DRIFTNET_WORKER__DATA_DIR", str(tmp_path / "worker"))
    monkeypatch.setenv("DRIFTNET_HTTP__ENABLED", "false")
    started = time.monotonic()
    result = runner.invoke(cli, command)
    took = time.monotonic() - started
    join_publisher_threads()
    return result, took


@pytest.mark.parametrize("command", list(COMMANDS.values()), ids=list(COMMANDS))
def test_no_broker_is_one_line_within_3_s(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, command: list[str]
) -> None:
    """Connection refused: one line naming the address and `driftnet broker`, exit 1, < 3 s."""
    address = f"127.0.0.1:{free_port()}"
    result, took = invoke_against(address, runner, monkeypatch, tmp_path, command)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    [line] = result.output.strip().splitlines()
    assert line.startswith("Error: "), line
    assert f"at {address} (connection refused)" in line
    assert "`driftnet broker` starts one" in line
    assert took < 3.0, f"{took:.1f} s"


@pytest.fixture
def not_kafka() -> Iterator[str]:
    """The address of a server on 127.0.0.1 that accepts connections and never answers (as
    an HTTP server does a request with no line end)."""
    server = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []

    def accept() -> None:
        with contextlib.suppress(OSError):
            while True:
                held.append(server.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.getsockname()[1]}"
    finally:
        server.close()
        for connection in held:
            connection.close()


@pytest.mark.parametrize("command", list(COMMANDS.values()), ids=list(COMMANDS))
def test_something_that_is_not_kafka_is_said_within_about_3_s(
    runner: CliRunner,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    not_kafka: str,
    command: list[str],
) -> None:
    """A port where something listens that does not speak Kafka took 10.8 s and said
    `(KafkaTimeoutError)`: now one line in about 3 s that says what is there."""
    result, took = invoke_against(not_kafka, runner, monkeypatch, tmp_path, command)
    assert result.exit_code == 1, result.output
    [line] = result.output.strip().splitlines()
    assert line == (
        f"Error: no Kafka answered at {not_kafka} within 3 s (something is listening there, "
        "but it does not speak Kafka)"
    )
    assert took < 4.0, f"{took:.1f} s"


@pytest.mark.parametrize("command", list(COMMANDS.values()), ids=list(COMMANDS))
def test_an_address_without_a_port_says_the_port_is_missing(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, command: list[str]
) -> None:
    """`127.0.0.1` without a port said `(not host:port); is a broker running?`."""
    monkeypatch.setenv("DRIFTNET_KAFKA__BOOTSTRAP_SERVERS", "127.0.0.1")
    monkeypatch.setenv("DRIFTNET_WORKER__DATA_DIR", str(tmp_path / "worker"))
    monkeypatch.setenv("DRIFTNET_HTTP__ENABLED", "false")
    result = runner.invoke(cli, command)
    join_publisher_threads()
    assert result.exit_code == 1, result.output
    [line] = result.output.strip().splitlines()
    assert line == (
        "Error: kafka.bootstrap_servers '127.0.0.1' has no port: write host:port, "
        "e.g. 127.0.0.1:9092"
    )

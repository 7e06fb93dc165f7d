"""The driftnet command: subcommands print what they promise; user errors are one line."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import uuid
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
from tests.support.kafka_helpers import DRIFTNET, join_publisher_threads, read_topic

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


def _deaf() -> None:  # pragma: no cover - runs in the child between fork and exec
    """What a parent may hand down: SIGINT ignored (a background job, nohup) and blocked."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})


@pytest.mark.integration
@pytest.mark.parametrize(
    ("stop", "deaf"),
    [(signal.SIGINT, False), (signal.SIGTERM, False), (signal.SIGINT, True)],
    ids=["ctrl-c", "sigterm", "ctrl-c-inherited-ignored"],
)
def test_broker_runs_in_foreground_and_stops_on_signal(stop: signal.Signals, deaf: bool) -> None:
    """`driftnet broker` serves Kafka until Ctrl-C or SIGTERM, then stops and leaves no broker
    behind -- also when it was started with SIGINT ignored and blocked (a full suite run in the
    background hung here twice: Python leaves an inherited ignored SIGINT ignored)."""
    from driftnet.sandbox.broker import free_port

    port = free_port()
    process = subprocess.Popen(
        [str(DRIFTNET), "broker", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=_deaf if deaf else None,
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
        try:
            code = process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            out, _ = process.communicate()
            raise AssertionError(f"still running 30 s after {stop.name}: {[*seen, out]}") from None
        assert code == 0
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
    """`driftnet publish` to an address nobody listens on says so in one line within 3 s
    (it took 31 s: kafka-python's bootstrap retries, then --timeout), and exits 1."""
    monkeypatch.setenv("DRIFTNET_KAFKA__BOOTSTRAP_SERVERS", f"127.0.0.1:{free_port()}")
    started = time.monotonic()
    result = runner.invoke(cli, ["publish", str(EXAMPLES / "events.jsonl")])
    assert time.monotonic() - started < 3.0
    assert result.exit_code == 1
    [line] = result.output.strip().splitlines()
    assert line.startswith("Error: cannot reach Kafka at 127.0.0.1:")
    assert line.endswith(
        "(connection refused); is a broker running? (`driftnet broker` starts one)"
    )
    join_publisher_threads()


def _topic_names(bootstrap: str) -> set[str]:
    from driftnet.streams.clients.topics import existing_topics
    from driftnet.streams.settings import KafkaSettings

    return existing_topics(KafkaSettings(bootstrap_servers=bootstrap))


@pytest.mark.integration
@pytest.mark.parametrize(
    "command",
    [["publish", str(EXAMPLES / "events.jsonl")], ["simulate", "--duration", "2s", "--quiet"]],
    ids=["publish", "simulate"],
)
def test_a_topic_that_does_not_exist_is_refused(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, kafka_bootstrap: str, command: list[str]
) -> None:
    """`--topic nope.<id>`: refused in one line naming the topic and --create-topic, exit 1,
    and the broker did not create it (it used to take the events onto an auto-created topic
    no worker reads, exit 0); with --create-topic the topic is made like the events topic
    and the events are on it."""
    from driftnet.streams.settings import TopicSettings

    monkeypatch.setenv("DRIFTNET_KAFKA__BOOTSTRAP_SERVERS", kafka_bootstrap)
    topic = f"nope.{uuid.uuid4().hex[:8]}"
    refused = runner.invoke(cli, [*command, "--topic", topic])
    assert refused.exit_code == 1, refused.output
    assert refused.output.strip().splitlines() == [
        f"Error: topic {topic} does not exist on {kafka_bootstrap}: pass --create-topic to "
        f"create it (the worker reads {TopicSettings().events.name})"
    ]
    assert topic not in _topic_names(kafka_bootstrap)
    created = runner.invoke(cli, [*command, "--topic", topic, "--create-topic"])
    assert created.exit_code == 0, created.output
    assert f"created  {topic}" in created.output
    assert "4 partitions, retention 72 h" in created.output
    assert read_topic(kafka_bootstrap, topic, expected=1, settle_s=0)
    again = runner.invoke(cli, [*command, "--topic", topic])
    assert again.exit_code == 0, again.output


@pytest.mark.integration
def test_a_settings_topic_not_created_yet_names_topics_create(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, kafka_bootstrap: str
) -> None:
    """A topic of the settings that `driftnet topics create` has not made yet: that command
    is named (silence add has no --create-topic: its topic is always one of the settings)."""
    monkeypatch.setenv("DRIFTNET_KAFKA__BOOTSTRAP_SERVERS", kafka_bootstrap)
    events = f"events.{uuid.uuid4().hex[:8]}"
    silences = f"silences.{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("DRIFTNET_TOPICS__EVENTS__NAME", events)
    monkeypatch.setenv("DRIFTNET_TOPICS__SILENCES__NAME", silences)
    published = runner.invoke(cli, ["publish", str(EXAMPLES / "events.jsonl")])
    assert published.output.strip().splitlines() == [
        f"Error: topic {events} does not exist on {kafka_bootstrap}: run `driftnet topics "
        "create` or pass --create-topic"
    ]
    silenced = runner.invoke(cli, ["silence", "add", "--match", "service=chat"])
    assert silenced.output.strip().splitlines() == [
        f"Error: topic {silences} does not exist on {kafka_bootstrap}: run `driftnet topics create`"
    ]
    assert not {events, silences} & _topic_names(kafka_bootstrap)


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


@pytest.mark.integration
def test_publish_says_which_lines_are_not_events_and_warns_of_the_dead_letter_topic(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, kafka_bootstrap: str, tmp_path: Path
) -> None:
    """`publish README.md --topic llm.inference.dlq` said only `206 lines -> 206 events`: the
    lines that are not events are counted and said to go as they are, and publishing onto the
    dead-letter topic is warned of."""
    monkeypatch.setenv("DRIFTNET_KAFKA__BOOTSTRAP_SERVERS", kafka_bootstrap)
    dlq = f"dlq.{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("DRIFTNET_TOPICS__DLQ__NAME", dlq)
    notes = tmp_path / "notes.md"
    event = (EXAMPLES / "events.jsonl").read_text().splitlines()[0]
    notes.write_text(f"# Notes\n\nnot an event\n{event}\n[1, 2]\n")
    result = runner.invoke(cli, ["publish", str(notes), "--topic", dlq, "--create-topic"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == (
        f"warning: {dlq} is the dead-letter topic: the worker does not read it, and "
        "`driftnet dlq show` lists what is published there as not a driftnet dead letter"
    )
    assert (
        f"{notes}: 2 lines are not JSON; 1 line is JSON but not an event object or an "
        "array of them: sent as they are (the worker will dead-letter them)" in lines
    )
    assert read_topic(kafka_bootstrap, dlq, expected=4, settle_s=0)
    join_publisher_threads()

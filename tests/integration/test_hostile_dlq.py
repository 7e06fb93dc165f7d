"""``driftnet dlq show`` and ``driftnet dlq replay`` on a real broker: dead letters listed with
why and where from, filtered by reason; a replay re-publishes the original bytes with their key
to the source topic (a truncated payload is skipped and said); errors are one line."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner
from kafka import KafkaProducer

from driftnet.cli.main import cli
from driftnet.contract.dlq import REPLAYED_FROM, dead_letter_headers
from driftnet.contract.events import Lineage
from driftnet.harvest.rules import RulesConfig
from driftnet.harvest.triage import Triage
from driftnet.streams.clients.topics import create_topics
from tests.support.factories import make_event
from tests.support.kafka_helpers import headers_of, read_topic, stream_settings, unique_topics

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 25, 12, 5, tzinfo=UTC)


def test_show_and_replay_by_reason(
    kafka_bootstrap: str, tmp_path: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Dead letters of four reasons (and a foreign message) on the DLQ: ``show`` lists and
    counts them, ``--reason`` filters; ``replay --reason timestamp_out_of_range`` sends exactly
    those payloads back to the events topic with their keys, and with the bound lifted they
    are valid events; a replay of everything skips the truncated one and says why."""
    settings = stream_settings(kafka_bootstrap, unique_topics("dlq"), tmp_path)
    create_topics(settings.kafka, settings.topics.by_role())
    topics = settings.topics
    strict = Triage(RulesConfig(), payload_cap=1000, max_past_s=86_400.0)
    old = [make_event(event_id=f"old-{i}", timestamp="2026-11-01T00:00:00Z") for i in range(3)]
    missing = make_event(event_id="no-release")
    del missing["release"]
    payloads = [
        *(json.dumps(e).encode() for e in old),
        json.dumps(missing).encode(),
        b'{"event_id": "cut',
        json.dumps(make_event(schema_version="2", padding="x" * 2000)).encode(),  # > the cap
    ]
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    sent = []
    try:
        for offset, payload in enumerate(payloads):
            [letter] = strict(payload, Lineage(topics.events.name, 1, offset), NOW).dead_letters
            key = f"key-{offset}".encode()
            producer.send(topics.dlq.name, value=letter.payload, key=key,
                          headers=dead_letter_headers(letter, NOW))  # fmt: skip
            sent.append((letter, key))
        producer.send(topics.dlq.name, value=b"something else", key=b"foreign")
        producer.flush()
    finally:
        producer.close()
    for name, value in {
        "DRIFTNET_KAFKA__BOOTSTRAP_SERVERS": kafka_bootstrap,
        "DRIFTNET_TOPICS__DLQ__NAME": topics.dlq.name,
        "DRIFTNET_TOPICS__EVENTS__NAME": topics.events.name,
    }.items():
        monkeypatch.setenv(name, value)

    shown = runner.invoke(cli, ["dlq", "show"])
    assert shown.exit_code == 0, shown.output
    lines = shown.output.splitlines()
    assert len(lines) == 8
    assert "timestamp_out_of_range: timestamp: 2026-11-01T00:00:00+00:00 is 24 d" in lines[0]
    assert f"{topics.events.name}[1]@3 missing_field: release" in lines[3]
    assert "not a driftnet dead letter" in lines[6]
    assert lines[-1] == (
        f"7 dead letters on {topics.dlq.name}: timestamp_out_of_range 3, missing_field 1, "
        "invalid_json 1, unsupported_schema_version 1, (unreadable) 1"
    )
    only = runner.invoke(cli, ["dlq", "show", "--reason", "missing_field", "--json"])
    [record] = [json.loads(line) for line in only.output.splitlines()]
    assert (record["reason"], record["field"]) == ("missing_field", "release")
    assert orjson.loads(record["payload"])["event_id"] == "no-release"

    replayed = runner.invoke(cli, ["dlq", "replay", "--reason", "timestamp_out_of_range"])
    assert replayed.exit_code == 0, replayed.output
    assert replayed.output.strip() == (
        f"replayed 3 dead letters to {topics.events.name} (timestamp_out_of_range 3); "
        "next time --from-offset 3 replays only newer ones"
    )
    back = read_topic(kafka_bootstrap, topics.events.name, expected=3, timeout_s=20, settle_s=1)
    assert sorted((r.key, r.value) for r in back) == sorted(
        (key, letter.payload) for letter, key in sent[:3]
    )
    for record in back:
        assert headers_of(record)[REPLAYED_FROM].startswith(f"{topics.dlq.name}/0/".encode())
    lenient = Triage(RulesConfig())  # the bound lifted: the replayed events are valid now
    assert all(lenient(r.value, Lineage("t", 0, 0), NOW).events == 1 for r in back)

    dry = runner.invoke(cli, ["dlq", "replay", "--dry-run", "--from-offset", "3"])
    assert dry.exit_code == 0, dry.output
    assert "skipped " + f"{topics.dlq.name}/0/5: payload cut at 1,000 of" in dry.output
    assert "skipped " + f"{topics.dlq.name}/0/6: not a driftnet dead letter" in dry.output
    assert "would replay 2 dead letters" in dry.output


def test_a_missing_dlq_topic_is_one_line(
    kafka_bootstrap: str, runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No such topic: one line naming it and what to do, exit 1."""
    monkeypatch.setenv("DRIFTNET_KAFKA__BOOTSTRAP_SERVERS", kafka_bootstrap)
    monkeypatch.setenv("DRIFTNET_TOPICS__DLQ__NAME", "no-such-dlq-topic")
    result = runner.invoke(cli, ["dlq", "show"])
    assert result.exit_code == 1
    assert result.output.strip() == (
        f"Error: topic 'no-such-dlq-topic' does not exist on {kafka_bootstrap} "
        "(create it with `driftnet topics create`)"
    )


def test_a_dry_run_to_a_missing_topic_says_the_replay_would_fail(
    kafka_bootstrap: str, tmp_path: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``replay --to nope.topic --dry-run`` said it would replay while the real run refuses
    the missing topic: the dry run checks the target the same way and says it would fail
    (exit 1); with --create-topic it says it would create it, and creates nothing."""
    from driftnet.streams.clients.topics import existing_topics

    settings = stream_settings(kafka_bootstrap, unique_topics("dlqdry"), tmp_path)
    create_topics(settings.kafka, settings.topics.by_role())
    topics = settings.topics
    [letter] = Triage(RulesConfig())(b"{", Lineage(topics.events.name, 0, 0), NOW).dead_letters
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    try:
        producer.send(topics.dlq.name, value=letter.payload,
                      headers=dead_letter_headers(letter, NOW))  # fmt: skip
        producer.flush()
    finally:
        producer.close()
    monkeypatch.setenv("DRIFTNET_KAFKA__BOOTSTRAP_SERVERS", kafka_bootstrap)
    monkeypatch.setenv("DRIFTNET_TOPICS__DLQ__NAME", topics.dlq.name)
    monkeypatch.setenv("DRIFTNET_TOPICS__EVENTS__NAME", topics.events.name)
    nope = f"nope.{topics.dlq.name}"
    refusal = (
        f"topic {nope} does not exist on {kafka_bootstrap}: pass --create-topic to create it "
        f"(the worker reads {topics.events.name})"
    )
    real = runner.invoke(cli, ["dlq", "replay", "--to", nope])
    assert real.output.strip().splitlines() == [f"Error: {refusal}"]
    dry = runner.invoke(cli, ["dlq", "replay", "--to", nope, "--dry-run"])
    assert dry.exit_code == 1, dry.output
    assert dry.output.strip().splitlines() == [f"Error: the real run would fail: {refusal}"]
    would_create = runner.invoke(
        cli, ["dlq", "replay", "--to", nope, "--dry-run", "--create-topic"]
    )
    assert would_create.exit_code == 0, would_create.output
    assert would_create.output.splitlines() == [
        f"would create {nope} (it does not exist on {kafka_bootstrap})",
        f"would replay 1 dead letters to {nope} (invalid_json 1); next time --from-offset 1 "
        "replays only newer ones",
    ]
    assert nope not in existing_topics(settings.kafka)

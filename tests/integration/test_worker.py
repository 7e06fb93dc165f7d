"""The worker on a real broker: exactly the failing events reach the failures topic and exactly
the malformed ones the DLQ, from single and batched messages; it stops cleanly on a signal."""

from __future__ import annotations

import signal
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest

from driftnet.contract.dlq import read_dead_letter
from driftnet.harvest.records import FailureRecord, record_id
from driftnet.ingest.settings import OtlpSettings
from driftnet.streams.clients.publisher import EventPublisher
from driftnet.streams.clients.topics import create_topics
from driftnet.streams.settings import PublisherSettings, Settings
from tests.support.factories import make_event
from tests.support.kafka_helpers import WorkerProcess, read_topic, stream_settings, unique_topics

pytestmark = pytest.mark.integration

EVENTS = 1000


@dataclass
class Corpus:
    """What was published and what must come out of it."""

    single: list[dict[str, Any]] = field(default_factory=list)
    """Events sent one per message."""
    batched: list[dict[str, Any]] = field(default_factory=list)
    """Events sent in per-cohort batches."""
    raw: list[bytes] = field(default_factory=list)
    """Messages that are not JSON events at all, sent as they are."""
    failing: dict[str, set[str]] = field(default_factory=dict)
    """record_id -> the rule ids it must carry."""
    dead: Counter[tuple[str, str | None]] = field(default_factory=Counter)
    """(reason, field) -> how many dead letters."""
    dead_ids: set[str] = field(default_factory=set)
    """event ids that must be dead-lettered."""


def build_corpus() -> Corpus:
    """1,000 events across four cohorts: a known set fails known rules, a known set is
    malformed; plus raw messages a buggy producer might send."""
    corpus = Corpus()
    for i in range(EVENTS):
        event = make_event(
            event_id=f"evt-{i:04d}",
            variant="canary" if i % 2 else "baseline",
            service="support-chat" if i % 3 else "search-summarizer",
        )
        rules: set[str] = set()
        if i % 10 == 3:
            event.update(status="error", error_type="provider_timeout")
            rules.add("status_error")
        if i % 25 == 7:
            event["latency_ms"] = 45_000.0
            rules.add("latency_slo")
        if i % 40 == 11:
            event["finish_reasons"] = ["length"]
            rules.add("truncated")
        if i % 50 == 17:
            del event["release"]
            corpus.dead[("missing_field", "release")] += 1
            corpus.dead_ids.add(event["event_id"])
            rules.clear()
        elif i % 50 == 29:
            event["usage"] = {"input_tokens": -3, "output_tokens": 5}
            corpus.dead[("invalid_field", "usage.input_tokens")] += 1
            corpus.dead_ids.add(event["event_id"])
            rules.clear()
        if rules:
            corpus.failing[record_id(event["event_id"], "rule")] = rules
        (corpus.single if i < EVENTS // 2 else corpus.batched).append(event)
    corpus.raw = [b'{"event_id": "cut-off", "timest', b"", b'"just a string"', b"[]"]
    corpus.dead[("invalid_json", None)] += 1
    corpus.dead[("empty_message", None)] += 1
    corpus.dead[("not_an_object", None)] += 1
    corpus.dead[("empty_batch", None)] += 1
    return corpus


def publish(settings: Settings, corpus: Corpus) -> None:
    kafka, topic = settings.kafka, settings.topics.events.name
    with EventPublisher(kafka, topic, PublisherSettings(batch_max_events=1)) as single:
        for event in corpus.single:
            assert single.publish(event)
        for value in corpus.raw:
            assert single.publish_raw(value)
    with EventPublisher(kafka, topic, PublisherSettings(batch_max_events=100)) as batched:
        for event in corpus.batched:
            assert batched.publish(event)
    assert single.stats.sent == len(corpus.single) + len(corpus.raw)
    assert single.stats.messages == single.stats.sent
    assert batched.stats.sent == len(corpus.batched)
    assert batched.stats.messages < len(corpus.batched) / 10


def test_exactly_the_failures_and_dead_letters(kafka_bootstrap: str, tmp_path: Path) -> None:
    settings = stream_settings(kafka_bootstrap, unique_topics("worker"), tmp_path / "data")
    topics = settings.topics
    assert {o.status for o in create_topics(settings.kafka, topics.by_role())} == {"created"}
    corpus = build_corpus()
    publish(settings, corpus)

    with WorkerProcess(settings, tmp_path / "worker.log") as worker:
        failures = read_topic(kafka_bootstrap, topics.failures.name, expected=len(corpus.failing))
        dead = read_topic(kafka_bootstrap, topics.dlq.name, expected=corpus.dead.total())
        worker.wait_for("total: ")
        code = worker.stop(signal.SIGTERM)
    log = worker.log

    records = [FailureRecord.model_validate_json(r.value) for r in failures]
    assert [r.key.decode() for r in failures] == [rec.record_id for rec in records]
    assert Counter(rec.record_id for rec in records) == Counter(set(corpus.failing))
    for record in records:
        assert {reason.rule_id for reason in record.reasons} == corpus.failing[record.record_id]
        assert record.lineage.topic == topics.events.name
        assert record.event.event_id not in corpus.dead_ids
    batched_ids = {e["event_id"] for e in corpus.batched}
    for record in records:
        in_batch = record.event.event_id in batched_ids
        assert (record.lineage.batch_index is not None) == in_batch, record.lineage

    letters = [read_dead_letter(r.value, r.headers) for r in dead]
    assert Counter((d.reason, d.field) for d in letters) == corpus.dead
    ids = {orjson.loads(d.payload)["event_id"] for d in letters if d.reason.endswith("_field")}
    assert ids == corpus.dead_ids
    for letter, message in zip(letters, dead, strict=True):
        assert letter.lineage.topic == topics.events.name
        if letter.reason.endswith("_field"):
            event = orjson.loads(letter.payload)
            assert message.key.decode().startswith(f"{event['service']}/production/")

    assert code == 0, log
    totals = (
        f"{EVENTS - len(corpus.dead_ids)} valid events, {len(corpus.failing)} failures, "
        f"{corpus.dead.total()} dead letters"
    )
    assert totals in log, log
    assert "dead letters by reason: " in log
    assert "driftnet worker stopped" in log
    assert "Traceback" not in log, log


def test_worker_refuses_to_start_without_its_topics(kafka_bootstrap: str, tmp_path: Path) -> None:
    """A missing topic is one line naming it and the command that makes it, not a hang."""
    from driftnet.streams.ops.preflight import WorkerError, preflight

    settings = stream_settings(kafka_bootstrap, unique_topics("absent"), tmp_path)
    with pytest.raises(WorkerError, match=r"run `driftnet topics create` first") as caught:
        preflight(settings)
    assert settings.topics.events.name in str(caught.value)
    assert "\n" not in str(caught.value)


def test_the_otlp_ingest_runs_when_its_topic_exists_or_when_asked_to(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """``otlp.enabled=auto`` reads the OTLP spans topic only if it exists (a deployment made
    before it keeps working); ``true`` without the topic is the usual one-line refusal."""
    from driftnet.streams.ops.preflight import WorkerError, preflight

    settings = stream_settings(kafka_bootstrap, unique_topics("otlp-switch"), tmp_path)
    roles = settings.topics.by_role()
    without = {role: spec for role, spec in roles.items() if role != "otlp_spans"}
    create_topics(settings.kafka, without)
    assert preflight(settings).otlp.enabled is False
    asked = settings.model_copy(update={"otlp": OtlpSettings(enabled=True)})
    with pytest.raises(WorkerError, match=r"run `driftnet topics create` first") as caught:
        preflight(asked)
    assert str(caught.value).startswith(f"topic {settings.topics.otlp_spans.name} not found")
    create_topics(settings.kafka, {"otlp_spans": roles["otlp_spans"]})
    assert preflight(settings).otlp.enabled is True
    off = settings.model_copy(update={"otlp": OtlpSettings(enabled=False)})
    assert preflight(off).otlp.enabled is False


def test_sigint_stops_an_idle_worker_cleanly(kafka_bootstrap: str, tmp_path: Path) -> None:
    """Ctrl-C on a worker with nothing to do: exit code 0, the totals, no traceback."""
    settings = stream_settings(kafka_bootstrap, unique_topics("idle"), tmp_path / "data")
    create_topics(settings.kafka, settings.topics.by_role())
    with WorkerProcess(settings, tmp_path / "worker.log") as worker:
        code = worker.stop(signal.SIGINT)
    assert code == 0, worker.log
    assert "driftnet worker stopped after" in worker.log
    assert "Traceback" not in worker.log

"""The Parquet sink on a real broker: a sink killed at random moments loses no failure record
and the ``failures`` view shows none twice; the worker's own sink makes the README's example
queryable; a value that is not a failure record is dead-lettered, not fatal."""

from __future__ import annotations

import random
import signal
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from kafka import KafkaProducer

from driftnet.contract.dlq import read_dead_letter
from driftnet.contract.events import InferenceEvent, Lineage
from driftnet.harvest.records import FailureRecord, Reason, rule_failure
from driftnet.storage.query import Harvest
from driftnet.streams.clients.publish_file import publish_lines
from driftnet.streams.clients.topics import create_topics
from driftnet.streams.settings import Settings
from tests.conftest import ROOT
from tests.support.factories import make_event
from tests.support.kafka_helpers import (
    WorkerProcess,
    headers_of,
    read_topic,
    stream_settings,
    unique_topics,
)

pytestmark = pytest.mark.integration

RECORDS = 20_000
KILLS = 5
SERVICES = ("support-chat", "search-summarizer", "invoice-extractor")


def make_records(count: int) -> list[FailureRecord]:
    """``count`` distinct failure records over three services and two event dates."""
    base = datetime(2026, 11, 24, 23, 50, tzinfo=UTC)
    template = InferenceEvent.model_validate(make_event())
    detected = datetime(2026, 11, 25, 12, tzinfo=UTC)
    reasons = [Reason(rule_id="status_error", message="call failed")]
    records = []
    for i in range(count):
        event = template.model_copy(
            update={
                "event_id": f"evt-{i:06d}",
                "service": SERVICES[i % 3],
                "timestamp": base + timedelta(seconds=i * 0.06),  # crosses midnight
                "attributes": {"tenant": f"t{i % 11}"},
            }
        )
        records.append(rule_failure(event, reasons, Lineage("events", i % 4, i), detected))
    return records


def sink_settings(kafka_bootstrap: str, tmp_path: Path) -> Settings:
    settings = stream_settings(kafka_bootstrap, unique_topics("sink"), tmp_path / "data")
    create_topics(settings.kafka, settings.topics.by_role())
    return settings


def produce_records(bootstrap: str, topic: str, records: list[FailureRecord]) -> None:
    """Put ``records`` on ``topic`` as the worker would (JSON values), acknowledged."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        for record in records:
            producer.send(topic, value=record.model_dump_json().encode())
        producer.flush()
    finally:
        producer.close()


def harvested_ids(settings: Settings) -> list[str]:
    table = Harvest.at(settings.harvest.location).run("SELECT record_id FROM failures")
    return [str(value) for value in table.column("record_id").to_pylist()]


def wait_for_rows(settings: Settings, expected: int, timeout_s: float) -> list[str]:
    deadline = time.monotonic() + timeout_s
    ids: list[str] = []
    target = Harvest.at(settings.harvest.location).target
    while time.monotonic() < deadline:
        if target.exists():
            ids = harvested_ids(settings)
            if len(ids) >= expected:
                return ids
        time.sleep(0.5)
    return ids


def test_sink_killed_five_times_loses_nothing_and_shows_nothing_twice(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """20,000 records stream in (some twice, as an at-least-once worker would send them)
    while the sink is SIGKILLed at 5 random moments: afterwards ``failures`` holds exactly the
    expected record ids, none missing, none twice."""
    settings = sink_settings(kafka_bootstrap, tmp_path)
    # A killed member holds its partitions until its session expires: keep that short.
    worker = settings.worker.model_copy(update={"session_timeout_s": 3.0})
    settings = settings.model_copy(update={"worker": worker})
    records = make_records(RECORDS)
    rng = random.Random(20261125)
    replayed = rng.sample(records, 500)  # the upstream worker replayed these
    stream = [*records, *replayed]
    rng.shuffle(stream)

    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", linger_ms=5)
    done = threading.Event()

    def publish() -> None:
        # about 400 records/s, so that the stream outlives the five kills
        for start in range(0, len(stream), 100):
            for record in stream[start : start + 100]:
                producer.send(
                    settings.topics.failures.name,
                    key=record.record_id.encode(),
                    value=record.model_dump_json().encode(),
                )
            producer.flush()
            time.sleep(0.25)
        done.set()

    publisher = threading.Thread(target=publish, name="test-publisher")
    publisher.start()
    logs = tmp_path / "logs"
    logs.mkdir()
    kills = 0
    try:
        for run in range(KILLS):
            sink = WorkerProcess(settings, logs / f"sink-{run}.log", command="sink").start()
            sink.wait_for("partitions [0, 1]")  # it owns the topic: kill it at work
            time.sleep(rng.uniform(1.0, 6.0))
            sink.kill()  # SIGKILL: no flush, no commit, no goodbye
            kills += 1
        before_last_start = len(harvested_ids(settings))
        sink = WorkerProcess(settings, logs / "sink-final.log", command="sink").start()
        publisher.join(120)
        assert done.is_set(), "the publisher did not finish"
        ids = wait_for_rows(settings, RECORDS, timeout_s=90)
        time.sleep(2.0)  # an extra row would show up now
        ids = harvested_ids(settings)
        assert sink.stop() == 0, sink.log
    finally:
        producer.close()
        publisher.join(5)
    assert kills == KILLS
    assert 0 < before_last_start < RECORDS  # the killed sinks had written, not everything
    assert len(ids) == len(set(ids)) == RECORDS
    assert set(ids) == {r.record_id for r in records}
    harvest = Harvest.at(settings.harvest.location)
    folders = {path.rpartition("/")[0] for path in harvest.failure_files()}
    assert folders == {
        f"date={day}/service={service}"
        for day in ("2026-11-24", "2026-11-25")
        for service in SERVICES
    }


def test_worker_harvests_the_readme_example_into_queryable_parquet(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """With the sink inside the worker, publishing the example file makes
    ``select reason, count(*) from failures`` answer what ``driftnet check`` finds."""
    settings = sink_settings(kafka_bootstrap, tmp_path)
    with WorkerProcess(settings, tmp_path / "worker.log") as worker:
        with (ROOT / "examples" / "events.jsonl").open("rb") as lines:
            result = publish_lines(
                lines, settings, settings.topics.events.name, batch=True, timeout_s=30
            )
        assert not result.stats.dropped_total
        ids = wait_for_rows(settings, 12, timeout_s=60)
        assert worker.stop() == 0, worker.log
    assert len(ids) == 12
    reasons = Harvest.at(settings.harvest.location).run(
        "SELECT reason, count(*) AS n FROM failures GROUP BY ALL ORDER BY reason"
    )
    assert dict(zip(*reasons.to_pydict().values(), strict=True)) == {
        "empty_output": 2,
        "invalid_json": 2,
        "negative_feedback": 3,
        "refusal": 2,
        "status_error": 2,
        "truncated": 1,
    }


def test_a_value_that_is_not_a_failure_record_is_dead_lettered(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """Junk on the failures topic goes to the DLQ with reason invalid_record; the records around
    it are harvested and the sink keeps running."""
    settings = sink_settings(kafka_bootstrap, tmp_path)
    good = make_records(3)
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    topic = settings.topics.failures.name
    try:
        producer.send(topic, value=good[0].model_dump_json().encode(), partition=0)
        producer.send(topic, value=b'{"record_id": "x"}', key=b"junk", partition=0)
        producer.send(topic, value=good[1].model_dump_json().encode(), partition=0)
        producer.send(topic, value=good[2].model_dump_json().encode(), partition=1)
        producer.flush()
    finally:
        producer.close()
    with WorkerProcess(settings, tmp_path / "sink.log", command="sink") as sink:
        ids = wait_for_rows(settings, 3, timeout_s=60)
        dead = read_topic(kafka_bootstrap, settings.topics.dlq.name, expected=1)
        assert sink.process is not None
        assert sink.process.poll() is None, sink.log
        assert sink.stop(signal.SIGINT) == 0, sink.log
    assert sorted(ids) == sorted(r.record_id for r in good)
    assert len(dead) == 1
    letter = read_dead_letter(dead[0].value, headers_of(dead[0]).items())
    assert letter.reason == "invalid_record"
    assert letter.lineage.topic == topic
    assert letter.lineage.offset == 1


def test_an_unwritable_harvest_is_retried_and_nothing_is_lost(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """While a file cannot be written (its folder is blocked), the sink logs one clear line,
    commits nothing and keeps running; once it can write again every record lands, once."""
    settings = sink_settings(kafka_bootstrap, tmp_path)
    records = make_records(30)  # all of 2026-11-24
    harvest = Path(settings.harvest.location)
    harvest.mkdir(parents=True)
    blocker = harvest / "date=2026-11-24"
    blocker.write_text("not a folder")  # makes every write into that date fail
    produce_records(kafka_bootstrap, settings.topics.failures.name, records)
    with WorkerProcess(settings, tmp_path / "sink.log", command="sink") as sink:
        sink.wait_for("cannot write harvest file", timeout_s=60)
        assert "offsets not committed, nothing lost" in sink.log
        assert sink.process is not None
        assert sink.process.poll() is None
        blocker.unlink()
        ids = wait_for_rows(settings, len(records), timeout_s=60)
        assert sink.stop() == 0, sink.log
    assert sorted(ids) == sorted(r.record_id for r in records)
    assert "Traceback" not in sink.log

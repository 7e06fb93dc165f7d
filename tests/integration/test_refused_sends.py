"""A broker that refuses produces mid-run: the worker and the sink commit no offset past a record
they could not deliver, and the record arrives once the broker takes it again (a proxy in front
of the embedded broker answers the chosen topic's produces with MESSAGE_TOO_LARGE)."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaAdminClient, KafkaProducer

from driftnet.contract.dlq import read_dead_letter
from driftnet.harvest.records import FailureRecord, record_id
from driftnet.streams.clients.publisher import EventPublisher
from driftnet.streams.clients.topics import create_topics
from driftnet.streams.settings import PublisherSettings, Settings
from tests.support.factories import make_event
from tests.support.harvest_data import failure
from tests.support.kafka_fault_proxy import FaultyBroker
from tests.support.kafka_fault_proxy import faulty_broker as faulty_broker  # the fixture
from tests.support.kafka_helpers import WorkerProcess, read_topic, stream_settings, unique_topics

pytestmark = pytest.mark.integration

Offsets = dict[int, int]


def settings_for(broker: FaultyBroker, tmp_path: Path, **worker: Any) -> Settings:
    settings = stream_settings(broker.bootstrap, unique_topics("refused"), tmp_path / "data")
    worker = {"detect": False, "commit_interval_s": 0.5, **worker}
    settings = settings.model_copy(update={"worker": settings.worker.model_copy(update=worker)})
    create_topics(settings.kafka, settings.topics.by_role())
    return settings


def publish_failing(settings: Settings, tag: str, count: int) -> set[str]:
    """``count`` events that each fail ``status_error``, one per message; their record ids."""
    events = [
        make_event(event_id=f"{tag}-{i}", status="error", error_type="provider_timeout")
        for i in range(count)
    ]
    with EventPublisher(
        settings.kafka, settings.topics.events.name, PublisherSettings(batch_max_events=1)
    ) as publisher:
        for event in events:
            assert publisher.publish(event)
    return {record_id(event["event_id"], "rule") for event in events}


def end_offsets(bootstrap: str, topic: str, messages: int) -> Offsets:
    """Per partition, one past the last of the ``messages`` in ``topic``, read back: Tansu
    reports the end of a multi-record batch as one past its first record."""
    offsets: Offsets = {}
    for record in read_topic(bootstrap, topic, expected=messages, settle_s=0.5):
        offsets[record.partition] = max(offsets.get(record.partition, 0), record.offset + 1)
    return offsets


def committed(bootstrap: str, group: str, topic: str) -> Offsets:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        offsets = admin.list_group_offsets({group: None})[group]
    finally:
        admin.close()
    return {tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == topic}


def wait_until(
    check: Callable[[], bool],
    what: str,
    timeout_s: float = 60.0,
    detail: Callable[[], object] = lambda: "",
) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}: {detail()}")
        time.sleep(0.2)


def all_committed(bootstrap: str, group: str, topic: str, ends: Offsets) -> bool:
    done = committed(bootstrap, group, topic)
    return all(done.get(p, 0) >= o for p, o in ends.items())


def record_ids(records: list[Any]) -> Counter[str]:
    return Counter(FailureRecord.model_validate_json(r.value).record_id for r in records)


def test_a_refused_failure_record_holds_the_commit_and_arrives_once_the_broker_heals(
    faulty_broker: FaultyBroker, tmp_path: Path
) -> None:
    settings = settings_for(faulty_broker, tmp_path)
    topics, group, bootstrap = settings.topics, settings.worker.app_id, faulty_broker.bootstrap
    events = topics.events.name
    with WorkerProcess(settings, tmp_path / "worker.log") as worker:
        before = publish_failing(settings, "before", 8)
        assert set(record_ids(read_topic(bootstrap, topics.failures.name, expected=8))) == before
        held_at = end_offsets(bootstrap, events, 8)
        wait_until(
            lambda: all_committed(bootstrap, group, events, held_at),
            "all committed",
            detail=lambda: (committed(bootstrap, group, events), held_at),
        )

        faulty_broker.reject(topics.failures.name)
        during = publish_failing(settings, "during", 12)
        wait_until(lambda: faulty_broker.rejected_records > 0, "a produce was refused")
        time.sleep(3.0)  # six commit intervals: a commit past the refused records would be seen
        assert committed(bootstrap, group, events) == held_at, (
            "an offset was committed past a failure record the broker refused"
        )
        assert "again in" in worker.log, worker.log  # the retry is said, in one line

        faulty_broker.heal()
        records = read_topic(bootstrap, topics.failures.name, expected=20)
        ends = end_offsets(bootstrap, events, 20)
        wait_until(lambda: all_committed(bootstrap, group, events, ends), "all committed")
    assert record_ids(records) == Counter(before | during)  # each once: none lost, none doubled
    assert "Traceback" not in worker.log, worker.log


def test_a_record_refused_past_the_budget_stops_the_worker_and_a_restart_delivers_it(
    faulty_broker: FaultyBroker, tmp_path: Path
) -> None:
    settings = settings_for(faulty_broker, tmp_path, send_give_up_s=2.0)
    topics, group, bootstrap = settings.topics, settings.worker.app_id, faulty_broker.bootstrap
    events = topics.events.name
    with WorkerProcess(settings, tmp_path / "first.log") as first:
        before = publish_failing(settings, "before", 4)
        read_topic(bootstrap, topics.failures.name, expected=4)
        held_at = end_offsets(bootstrap, events, 4)
        wait_until(lambda: all_committed(bootstrap, group, events, held_at), "all committed")
        faulty_broker.reject(topics.failures.name)
        during = publish_failing(settings, "during", 6)
        assert first.process is not None
        assert first.process.wait(60) == 1, first.log
    log = first.log
    lines = [line for line in log.splitlines() if "stopping without committing past it" in line]
    assert lines, log
    assert topics.failures.name in lines[0], log
    assert committed(bootstrap, group, events) == held_at

    faulty_broker.heal()
    with WorkerProcess(settings, tmp_path / "second.log") as second:
        records = read_topic(bootstrap, topics.failures.name, expected=10)
        ends = end_offsets(bootstrap, events, 10)
        wait_until(lambda: all_committed(bootstrap, group, events, ends), "all committed")
    assert set(record_ids(records)) == before | during
    assert "Traceback" not in second.log, second.log


def test_the_sink_commits_no_offset_past_a_dead_letter_the_broker_refused(
    faulty_broker: FaultyBroker, tmp_path: Path
) -> None:
    settings = settings_for(faulty_broker, tmp_path)
    topics, bootstrap = settings.topics, faulty_broker.bootstrap
    group = settings.harvest.group_id
    faulty_broker.reject(topics.dlq.name)
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    try:
        good = [failure(event_id=f"good-{i}") for i in range(3)]
        for record in good[:2]:
            producer.send(topics.failures.name, record.model_dump_json().encode(), partition=0)
        producer.send(topics.failures.name, b'{"not": "a failure record"}', partition=0)
        producer.send(topics.failures.name, good[2].model_dump_json().encode(), partition=0)
        producer.flush()
    finally:
        producer.close()
    with WorkerProcess(settings, tmp_path / "sink.log", command="sink") as sink:
        wait_until(lambda: faulty_broker.rejected_records > 0, "the dead letter was refused")
        time.sleep(2.0)
        assert committed(bootstrap, group, topics.failures.name).get(0, 0) <= 2, sink.log
        assert "again in" in sink.log, sink.log
        faulty_broker.heal()
        dead = read_topic(bootstrap, topics.dlq.name, expected=1)
        wait_until(lambda: committed(bootstrap, group, topics.failures.name).get(0) == 4, "4")
    letters = [read_dead_letter(r.value, r.headers) for r in dead]
    assert [(d.reason, d.lineage.offset) for d in letters] == [("invalid_record", 2)]
    import duckdb

    query = f"select count(*) from read_parquet('{tmp_path / 'data'}/**/*.parquet')"
    rows = duckdb.connect().execute(query).fetchall()
    assert rows == [(3,)]
    assert "Traceback" not in sink.log, sink.log

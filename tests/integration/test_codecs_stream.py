"""Real producers on a real broker: confluent-kafka (librdkafka, what Java clients and the
OpenTelemetry Collector's Kafka exporter also write) compressing its batches with gzip, snappy,
lz4 or zstd, on the events topic and on the OTLP spans topic: the worker reads them all. And a
record batch nobody can read: the worker stays up, dead-letters it once as ``unreadable_batch``
naming topic, partition and offsets, counts it, and goes on with the events after it; a
restart does not crash either."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka import Producer
from opentelemetry.trace import SpanKind

from driftnet.contract.dlq import read_dead_letter
from driftnet.harvest.records import record_id
from driftnet.ingest.mapping import event_id
from driftnet.ingest.settings import OtlpSettings
from driftnet.streams.clients.topics import create_topics
from driftnet.streams.settings import Settings
from tests.integration.test_http_endpoint import ServingProcess, address_of, scrape_until
from tests.support.factories import make_event
from tests.support.kafka_helpers import WorkerProcess, read_topic, stream_settings, unique_topics
from tests.support.otel_client import Instrumented, llm_call, otlp_json, proto
from tests.support.record_batches import (
    GARBAGE,
    LZ4,
    SNAPPY,
    ZSTD,
    produce_raw,
    record_batch,
    served_codecs,
)

pytestmark = pytest.mark.integration

CODECS = ("gzip", "snappy", "lz4", "zstd")


def settings_for(bootstrap: str, folder: Path, prefix: str) -> Settings:
    settings = stream_settings(bootstrap, unique_topics(prefix), folder)
    settings = settings.model_copy(update={"otlp": OtlpSettings(enabled=True)})
    create_topics(settings.kafka, settings.topics.by_role())
    return settings


@contextmanager
def producer(bootstrap: str, codec: str) -> Iterator[Producer]:
    """A librdkafka producer batching for 50 ms, so that a batch holds many records; every
    message acknowledged, and the producer closed, on exit."""
    client = Producer({"bootstrap.servers": bootstrap, "compression.type": codec,
                       "linger.ms": 50, "acks": "all"})  # fmt: skip
    try:
        yield client
        assert client.flush(30) == 0
    finally:
        client.close()


def events(tag: str, count: int) -> tuple[list[dict[str, Any]], set[str]]:
    """``count`` events, every fifth failing (status error); and their failure record ids."""
    made, failing = [], set()
    for i in range(count):
        event = make_event(event_id=f"{tag}-{i}", variant="canary" if i % 2 else "baseline")
        if i % 5 == 0:
            event.update(status="error", error_type="provider_timeout")
            failing.add(record_id(event["event_id"], "rule"))
        made.append(event)
    return made, failing


def traces(tag: str, count: int) -> tuple[list[Any], set[str]]:
    """``count`` traces of an instrumented service (a request span, a chat span), every
    other chat failing; the spans and the failure record ids of their events."""
    app = Instrumented({"service.name": f"otel-{tag}", "service.version": "gpt-4o+prompt-v7",
                        "deployment.environment.name": "production"})  # fmt: skip
    failing = set()
    for i in range(count):
        with (
            app.tracer.start_as_current_span("POST /chat", kind=SpanKind.SERVER),
            llm_call(app.tracer, error="timeout" if i % 2 == 0 else None) as chat,
        ):
            ids = chat.get_span_context()
        if i % 2 == 0:
            call = event_id(format(ids.trace_id, "032x"), format(ids.span_id, "016x"))
            failing.add(record_id(call, "rule"))
    return app.take(), failing


def wait_for_keys(bootstrap: str, topic: str, wanted: set[str], timeout_s: float = 60) -> set[str]:
    """The keys on ``topic`` once they include ``wanted`` (or the timeout): a replay may put
    earlier records there again first, so a count would not do."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = read_topic(bootstrap, topic, expected=0, timeout_s=0, settle_s=0.5)
        keys = {r.key.decode() for r in found}
        if wanted <= keys or time.monotonic() > deadline:
            return keys


def test_every_codec_a_producer_may_use_is_read_on_the_events_and_otlp_topics(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """For each codec: 30 events one per message and 20 in two JSON arrays to the events
    topic, and 6 traces in two OTLP messages (protobuf, OTLP/JSON) to the OTLP spans topic.
    The broker serves the batches with the producer's codec; the worker harvests exactly
    the failing events of all of them and dead-letters nothing."""
    settings = settings_for(kafka_bootstrap, tmp_path / "data", "codecs")
    topics = settings.topics
    expected: set[str] = set()
    valid = 0
    for codec in CODECS:
        native, failing = events(codec, 50)
        spans, failing_calls = traces(codec, 6)
        expected |= failing | failing_calls
        valid += len(native) + 6
        with producer(kafka_bootstrap, codec) as client:
            for event in native[:30]:
                client.produce(topics.events.name, orjson.dumps(event), key=b"support-chat")
            for first in (30, 40):
                client.produce(topics.events.name, orjson.dumps(native[first : first + 10]))
            client.produce(topics.otlp_spans.name, proto(spans[:6]), key=codec.encode())
            client.produce(topics.otlp_spans.name, otlp_json(spans[6:]), key=codec.encode())
    assert served_codecs(kafka_bootstrap, topics.events.name, 4 * 32) == set(CODECS)
    assert served_codecs(kafka_bootstrap, topics.otlp_spans.name, 4 * 2) == set(CODECS)

    with WorkerProcess(settings, tmp_path / "worker.log") as worker:
        failures = read_topic(kafka_bootstrap, topics.failures.name, expected=len(expected))
        worker.wait_for(f"{valid} valid events")
        dead = read_topic(kafka_bootstrap, topics.dlq.name, expected=0, settle_s=1.0)
        assert worker.stop() == 0, worker.log

    assert sorted(r.key.decode() for r in failures) == sorted(expected)
    assert dead == []
    assert "0 dead letters" in worker.log
    assert "Traceback" not in worker.log, worker.log


def test_an_unreadable_batch_is_dead_lettered_counted_and_skipped_and_a_restart_goes_on(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """On partition 0 of the events topic: good events (lz4), garbage where lz4 and zstd data
    should be, a batch failing its CRC, then good events (zstd); on the OTLP spans topic
    garbage snappy, then a trace. The worker stays up, sends one ``unreadable_batch`` dead
    letter per bad batch naming topic, partition, first and last offset and the error,
    counts them in /metrics, and harvests every failing event before and after them. A second
    worker in the same group starts, reads on and dead-letters nothing new."""
    settings = settings_for(kafka_bootstrap, tmp_path / "data", "poison")
    topics = settings.topics
    before, failing_before = events("before", 5)
    after, failing_after = events("after", 5)
    spans, failing_calls = traces("poison", 2)
    with producer(kafka_bootstrap, "lz4") as client:
        for event in before:
            client.produce(topics.events.name, orjson.dumps(event), partition=0)
    bad = [
        record_batch(GARBAGE, count=3, codec=LZ4),
        record_batch(GARBAGE, count=2, codec=ZSTD),
        record_batch(b"\x00" * 20, count=1, valid_crc=False),
    ]
    assert [produce_raw(kafka_bootstrap, topics.events.name, batch) for batch in bad] == [0] * 3
    assert produce_raw(kafka_bootstrap, topics.otlp_spans.name, record_batch(GARBAGE, count=2,
                                                                             codec=SNAPPY)) == 0  # fmt: skip
    with producer(kafka_bootstrap, "zstd") as client:
        for event in after:
            client.produce(topics.events.name, orjson.dumps(event), partition=0)
        client.produce(topics.otlp_spans.name, proto(spans), partition=0)
    expected = failing_before | failing_after | failing_calls

    with ServingProcess(settings, tmp_path / "worker.log") as worker:
        url = address_of(worker)
        failures = read_topic(kafka_bootstrap, topics.failures.name, expected=len(expected))
        dead = read_topic(kafka_bootstrap, topics.dlq.name, expected=4, settle_s=1.0)
        events_label = ("topic", topics.events.name)
        got = scrape_until(url, lambda s: s.get(("driftnet_unreadable_batches_total",
                                                 (events_label,))) == 3)  # fmt: skip
        assert worker.stop() == 0, worker.log
    log = worker.log

    assert sorted(r.key.decode() for r in failures) == sorted(expected)
    letters = sorted(
        (read_dead_letter(r.value, r.headers) for r in dead),
        key=lambda d: (d.lineage.topic, d.lineage.offset),
    )
    where = [(d.reason, d.lineage.topic, d.lineage.partition, d.lineage.offset, d.last_offset)
             for d in letters]  # fmt: skip
    events_topic, spans_topic = topics.events.name, topics.otlp_spans.name
    assert where == [
        ("unreadable_batch", events_topic, 0, 5, 7),
        ("unreadable_batch", events_topic, 0, 8, 9),
        ("unreadable_batch", events_topic, 0, 10, 10),
        ("unreadable_batch", spans_topic, 0, 0, 1),
    ]
    assert "(compression: lz4) cannot be read: DecompressionError" in letters[0].message
    assert "CRC mismatch" in letters[2].message
    assert got[("driftnet_unreadable_batches_total", (events_label,))] == 3
    assert got[("driftnet_unreadable_batches_total", (("topic", spans_topic),))] == 1
    assert got[("driftnet_dead_letters_total", (("reason", "unreadable_batch"),))] == 3
    assert log.count("cannot be read, skipped") == 4, log
    assert "Traceback" not in log, log

    later, failing_later = events("later", 5)
    with producer(kafka_bootstrap, "gzip") as client:
        for event in later:
            client.produce(topics.events.name, orjson.dumps(event), partition=0)
    with WorkerProcess(settings, tmp_path / "again.log") as again:
        harvested = wait_for_keys(kafka_bootstrap, topics.failures.name, failing_later)
        assert failing_later <= harvested, again.log
        dead_again = read_topic(kafka_bootstrap, topics.dlq.name, expected=4, settle_s=1.0)
        assert again.stop(signal.SIGTERM) == 0, again.log
    # at least once: a batch whose offset was not committed yet is dead-lettered again, as
    # the same batch; never another
    assert {
        (d.lineage.topic, d.lineage.offset, d.last_offset)
        for d in (read_dead_letter(r.value, r.headers) for r in dead_again)
    } == {(d.lineage.topic, d.lineage.offset, d.last_offset) for d in letters}
    assert "Traceback" not in again.log, again.log

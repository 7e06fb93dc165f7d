"""OTLP ingest on a real broker: the same simulated traffic (a canary latency regression), once
sent as native v1 events and once recorded as GenAI spans by the OpenTelemetry SDK and sent as
the Collector's Kafka exporter would (protobuf and OTLP/JSON, a trace's children and root in
separate messages), gives the same harvested failures, the same closed windows (counts, late
events, findings) and the same canary verdicts."""

from __future__ import annotations

import json
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from kafka import KafkaProducer
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from driftnet.contract.dlq import read_dead_letter
from driftnet.contract.events import Cohort, Lineage
from driftnet.detectors.config import DetectorsConfig
from driftnet.harvest.rules import RulesConfig
from driftnet.harvest.triage import Triage
from driftnet.ingest.mapping import event_id
from driftnet.ingest.settings import OtlpSettings
from driftnet.sandbox.simulation import SCENARIOS, Simulator
from driftnet.storage.query import Harvest
from driftnet.streams.clients.topics import create_topics
from driftnet.streams.settings import Settings
from tests.support.kafka_helpers import WorkerProcess, read_topic, stream_settings, unique_topics
from tests.support.otel_client import Instrumented, llm_call, otlp_json, proto

pytestmark = pytest.mark.integration

EVENTS = 4000
DURATION_S = 8 * 60
CHUNK = 40
"""Events per chunk: one native batch per cohort, or two OTLP messages (children, roots)."""
QUIET_S = 4.0
UNMAPPED = ("cost_usd", "feedback", "prompt_version")
"""Fields no OpenTelemetry convention carries: left out of the native copy too."""


def traffic() -> list[dict[str, Any]]:
    start = (datetime.now(UTC) - timedelta(minutes=30)).replace(second=0, microsecond=0)
    simulator = Simulator(SCENARIOS["canary-latency"], start, DURATION_S, seed=11)
    events = []
    for event in simulator.events(EVENTS):
        for name in UNMAPPED:
            event.pop(name, None)
        events.append(event)
    return events


def _ns(stamp: str) -> int:
    moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1000


class Recorder:
    """The instrumented services: one tracer provider per (service, release, environment)."""

    def __init__(self) -> None:
        self.apps: dict[tuple[str, str, str], Instrumented] = {}

    def app(self, event: dict[str, Any]) -> Instrumented:
        key = (event["service"], event["release"], event["environment"])
        if key not in self.apps:
            self.apps[key] = Instrumented({"service.name": key[0], "service.version": key[1],
                                           "deployment.environment.name": key[2]})  # fmt: skip
        return self.apps[key]

    def record(self, event: dict[str, Any]) -> str:
        """The call as an instrumented app records it: a request span, a retrieval and the
        chat span, with the event's times. Returns the OTLP event id of the chat span."""
        tracer = self.app(event).tracer
        start = _ns(event["timestamp"])
        end = start + round(event["latency_ms"] * 1e6)
        root = tracer.start_span("POST /chat", start_time=start,
                                 attributes={"feature_flag.result.variant": event["variant"]})  # fmt: skip
        context = trace.set_span_in_context(root)
        search = tracer.start_span("vector search", context=context, start_time=start,
                                   attributes={"gen_ai.operation.name": "retrieval"})  # fmt: skip
        search.end(end_time=start + 2_000_000)
        chat = tracer.start_span(f"chat {event['request_model']}", context=context,
                                 kind=SpanKind.CLIENT, start_time=start)  # fmt: skip
        system, user = event["input"]["messages"]
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": event["operation"],
            "gen_ai.provider.name": event["provider"],
            "gen_ai.request.model": event["request_model"],
            "gen_ai.response.model": event["response_model"],
            "gen_ai.request.temperature": event["request"]["temperature"],
            "gen_ai.request.max_tokens": event["request"]["max_tokens"],
            "gen_ai.output.type": event["output_type"],
            "gen_ai.usage.input_tokens": event["usage"]["input_tokens"],
            "gen_ai.usage.output_tokens": event["usage"]["output_tokens"],
            "gen_ai.system_instructions": system["content"],
            "gen_ai.input.messages": json.dumps([{"role": "user", "content": user["content"]}]),
            **event["attributes"],
        }
        if event.get("ttft_ms") is not None:
            attributes["gen_ai.response.time_to_first_chunk"] = event["ttft_ms"] / 1000
        if event.get("finish_reasons"):
            attributes["gen_ai.response.finish_reasons"] = event["finish_reasons"]
        if event["output"]["messages"]:
            attributes["gen_ai.output.messages"] = json.dumps(event["output"]["messages"])
        chat.set_attributes(attributes)
        for name, value in event.get("scores", {}).items():
            chat.add_event("gen_ai.evaluation.result", {"gen_ai.evaluation.name": name,
                                                        "gen_ai.evaluation.score.value": value})  # fmt: skip
        if event["status"] == "error":
            chat.set_attribute("error.type", event["error_type"])
            chat.set_status(Status(StatusCode.ERROR))
        chat.end(end_time=end)
        root.end(end_time=end + 1_000_000)
        ids = chat.get_span_context()
        return event_id(format(ids.trace_id, "032x"), format(ids.span_id, "016x"))

    def take(self) -> list[Any]:
        return [span for app in self.apps.values() for span in app.take()]


def settings_for(bootstrap: str, folder: Path, otlp: bool) -> Settings:
    topics = unique_topics("otlp" if otlp else "native")
    # One partition: the test plays 8 minutes of event time in seconds, so two partitions
    # read 50 ms apart would put 8 s of event-time disorder on the events topic (late events
    # that native traffic, sent in order, does not have). At real speed that skew is nothing.
    spans = topics.otlp_spans.model_copy(update={"partitions": 1})
    topics = topics.model_copy(update={"otlp_spans": spans})
    settings = stream_settings(bootstrap, topics, folder)
    detectors = DetectorsConfig.model_validate({"windows": {"idle_timeout_s": 3}})
    settings = settings.model_copy(
        update={
            "detectors": detectors,
            "otlp": OtlpSettings(enabled=otlp, label_attributes=("tenant", "locale")),
        }
    )
    create_topics(settings.kafka, settings.topics.by_role())
    return settings


def publish(bootstrap: str, native: Settings, otlp: Settings,
            events: list[dict[str, Any]]) -> dict[str, int]:  # fmt: skip
    """Both copies, chunk by chunk in event-time order; returns event id -> index."""
    recorder = Recorder()
    index: dict[str, int] = {}
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    try:
        health = Instrumented({"service.name": "gateway"})  # a service with no LLM calls
        with health.tracer.start_as_current_span("GET /health"):
            pass
        producer.send(otlp.topics.otlp_spans.name, proto(health.take()))
        producer.send(otlp.topics.otlp_spans.name, b"\x0a\xff\xff\xff\xff\x0f", key=b"bad")
        for number, first in enumerate(range(0, len(events), CHUNK)):
            chunk = events[first : first + CHUNK]
            by_cohort: dict[str, list[dict[str, Any]]] = {}
            for i, event in enumerate(chunk, start=first):
                # the native copy gets the span's event id too: samples kept by the windows
                # are drawn by event id, so the two runs must agree on ids to agree on all
                event["event_id"] = recorder.record(event)
                index[event["event_id"]] = i
                by_cohort.setdefault(Cohort.of(event).key, []).append(event)
            for key, batch in by_cohort.items():
                producer.send(native.topics.events.name, orjson.dumps(batch), key=key.encode())
            spans = recorder.take()
            encode = proto if number % 2 else otlp_json
            chunk_key = f"chunk-{number}".encode()  # a trace's two halves: one partition, in order
            children = [s for s in spans if s.parent is not None]
            roots = [s for s in spans if s.parent is None]
            producer.send(otlp.topics.otlp_spans.name, encode(children), key=chunk_key)
            producer.send(otlp.topics.otlp_spans.name, encode(roots), key=chunk_key)
            producer.flush()
            time.sleep(0.02)
    finally:
        producer.close()
    return index


def windows(bootstrap: str, settings: Settings, expected: set[Any]) -> dict[Any, Any]:
    """The closed windows on the signals topic: (cohort, end) -> count, late, findings,
    verdict, of the ``expected`` (cohort, end) pairs (the windows the traffic fell in; later
    ones, zero-traffic windows of quiet cohorts, depend on the wall clock); waits for them."""
    deadline = time.monotonic() + 60
    found: dict[Any, Any] = {}
    while not expected <= found.keys() and time.monotonic() < deadline:
        for record in read_topic(bootstrap, settings.topics.signals.name, expected=0,
                                 timeout_s=0, settle_s=1.0):  # fmt: skip
            signal = orjson.loads(record.value)
            for entry in signal.get("entries", ()) if signal.get("type") == "windows" else ():
                verdict = entry["verdict"]
                found[(tuple(entry["cohort"]), entry["window_end"])] = (
                    entry["count"],
                    entry["late"],
                    sorted((f["detector"], f["metric"], f["severity"]) for f in entry["findings"]),
                    None if verdict is None else (verdict["verdict"], verdict["baseline_release"]),
                )
    return {key: value for key, value in found.items() if key in expected}


def harvested(settings: Settings, ids: dict[str, int], rule_failures: int) -> Counter[Any]:
    """(kind, event index, arm, reasons) of every harvested record, once ``rule_failures``
    rule records are in and nothing new has come for ``QUIET_S`` (window-level records come
    as their windows close)."""
    harvest = Harvest.at(settings.harvest.location)
    deadline = time.monotonic() + 60
    rows: list[dict[str, Any]] = []
    last_change = time.monotonic()
    while time.monotonic() < deadline:
        if harvest.failure_files():
            now = harvest.run("select kind, event_id, arm, reasons from failures").to_pylist()
            if len(now) != len(rows):
                rows, last_change = now, time.monotonic()
            rules = sum(row["kind"] == "rule" for row in rows)
            if rules >= rule_failures and time.monotonic() - last_change > QUIET_S:
                break
        time.sleep(0.5)
    return Counter(
        (row["kind"], ids[row["event_id"]], row["arm"],
         tuple(sorted(r["rule_id"] for r in row["reasons"])))
        for row in rows
    )  # fmt: skip


def test_otlp_spans_and_native_events_give_the_same_failures_windows_and_verdicts(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    events = traffic()
    native = settings_for(kafka_bootstrap, tmp_path / "native", otlp=False)
    otlp = settings_for(kafka_bootstrap, tmp_path / "otlp", otlp=True)
    offline = Triage(RulesConfig())
    rule_failures = sum(
        len(offline(orjson.dumps(e), Lineage("t", 0, 0), datetime.now(UTC)).failures)
        for e in events
    )
    expected_windows = {
        (tuple(Cohort.of(e)), (_ns(e["timestamp"]) // 60_000_000_000 + 1) * 60) for e in events
    }
    with (
        WorkerProcess(native, tmp_path / "native.log") as native_worker,
        WorkerProcess(otlp, tmp_path / "otlp.log") as otlp_worker,
    ):
        otlp_worker.wait_for("otlp ingest consuming")
        ids = publish(kafka_bootstrap, native, otlp, events)
        native_windows = windows(kafka_bootstrap, native, expected_windows)
        otlp_windows = windows(kafka_bootstrap, otlp, expected_windows)
        native_records = harvested(native, ids, rule_failures)
        otlp_records = harvested(otlp, ids, rule_failures)
        dead = read_topic(kafka_bootstrap, otlp.topics.dlq.name, expected=1, settle_s=1.0)
        otlp_worker.wait_for("otlp total: ", timeout_s=10)
        assert native_worker.stop() == 0, native_worker.log
        assert otlp_worker.stop() == 0, otlp_worker.log

    assert native_windows.keys() == expected_windows
    # Window by window the same counts, late events, findings and verdicts: the samples the
    # detectors read are seeded by cohort, window and partition, not by the topic's name.
    assert otlp_windows == native_windows
    verdicts = Counter(v[3][0] for v in native_windows.values() if v[3] is not None)
    assert verdicts["Fail"] > 0, verdicts  # the regression is caught, so the match means a lot
    assert any(v[2] for v in native_windows.values())  # and findings were raised
    rules = sum(n for (kind, *_), n in native_records.items() if kind == "rule")
    assert rules == rule_failures > 0
    assert otlp_records == native_records
    assert [read_dead_letter(r.value, r.headers).reason for r in dead] == ["invalid_otlp"]
    assert "1 spans of traces without an LLM call ignored" in otlp_worker.log
    assert "Traceback" not in otlp_worker.log


def test_a_worker_killed_with_traces_in_its_buffer_loses_none_of_them(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """The chat spans of 40 calls reach a worker, which buffers them waiting for their
    request spans; it is SIGKILLed before those come. The next worker reads the held message
    again: every call becomes an event and each failing call is harvested exactly once."""
    settings = settings_for(kafka_bootstrap, tmp_path, otlp=True)
    settings = settings.model_copy(
        update={"otlp": settings.otlp.model_copy(update={"trace_timeout_s": 600.0})}
    )
    app = Instrumented({"service.name": "support-chat", "service.version": "gpt-4o+prompt-v7",
                        "deployment.environment.name": "production"})  # fmt: skip
    failing: set[str] = set()
    every: set[str] = set()
    for i in range(40):
        with (
            app.tracer.start_as_current_span("POST /chat", kind=SpanKind.SERVER),
            llm_call(app.tracer, error="timeout" if i % 4 == 0 else None) as chat,
        ):
            ids = chat.get_span_context()
        call = event_id(format(ids.trace_id, "032x"), format(ids.span_id, "016x"))
        every.add(call)
        if i % 4 == 0:
            failing.add(call)
    spans = app.take()
    children = [s for s in spans if s.parent is not None]
    roots = [s for s in spans if s.parent is None]
    topic = settings.topics.otlp_spans.name
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    try:
        with WorkerProcess(settings, tmp_path / "first.log") as first:
            first.wait_for("otlp ingest consuming")
            producer.send(topic, proto(children), key=b"calls").get(timeout=10)
            first.wait_for("otlp total: 1 OTLP messages, 40 spans, 0 events")
            time.sleep(2 * settings.worker.commit_interval_s)  # an acked offset is committed
            first.kill()
        with WorkerProcess(settings, tmp_path / "second.log") as second:
            producer.send(topic, otlp_json(roots), key=b"calls").get(timeout=10)
            records = read_topic(kafka_bootstrap, settings.topics.events.name, expected=1)
            sent = [e["event_id"] for r in records for e in orjson.loads(r.value)]
            harvest = Harvest.at(settings.harvest.location)
            deadline = time.monotonic() + 30
            harvested: list[str] = []
            while len(harvested) < len(failing) and time.monotonic() < deadline:
                time.sleep(0.5)
                if harvest.failure_files():
                    query = "select event_id from failures where kind = 'rule'"
                    harvested = [row["event_id"] for row in harvest.run(query).to_pylist()]
            assert second.stop() == 0, second.log
    finally:
        producer.close()
    assert sorted(sent) == sorted(every)
    assert sorted(harvested) == sorted(failing)
    assert "Traceback" not in second.log

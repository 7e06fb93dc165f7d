"""/metrics without a broker: what the triage, the alerting stage and the sink counted, as
Prometheus families with their labels, in a registry of each app's own."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import orjson
from prometheus_client.parser import text_string_to_metric_families

from driftnet.contract.events import Lineage
from driftnet.harvest.triage import Tally, Triage
from driftnet.storage.settings import HarvestSettings
from driftnet.streams.ops.metrics import RULE_IDS, AppMetrics
from driftnet.streams.ops.snapshot import SinkCounts, Snapshot
from driftnet.streams.ops.status import AppStatus, Monotonic, alert_counts
from driftnet.streams.settings import KafkaSettings, Settings
from driftnet.streams.sink.parquet import ParquetSink
from tests.support.factories import make_event
from tests.support.fake_slack import FakeSlack
from tests.support.fake_slack import fake_slack as fake_slack  # the fixture
from tests.unit.streams.test_alert_stage import Clock, stage_for, step, verdicts, window

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(text: bytes) -> Samples:
    """Every sample of an exposition: (name, sorted labels) -> value."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text.decode())
        for sample in family.samples
    }


def scrape(status: AppStatus) -> Samples:
    body, content_type = asyncio.run(status.render_metrics())
    assert content_type.startswith("text/plain; version=0.0.4")
    return samples(body)


def triaged_tally() -> Tally:
    """The real triage over five messages: a healthy event, one failing two rules, a batch
    of two with one missing its release, and bytes that are not JSON."""
    triage = Triage(Settings().rules)
    now = datetime.now(UTC)
    messages = [
        orjson.dumps(make_event(event_id="ok")),
        orjson.dumps(
            make_event(event_id="bad", status="error", error_type="timeout", latency_ms=45_000.0)
        ),
        orjson.dumps([make_event(event_id="b1"), {**make_event(event_id="b2"), "release": None}]),
        b'{"event_id": "cut-off", "timest',
    ]
    tally = Tally()
    for offset, message in enumerate(messages):
        tally.add(triage(message, Lineage("events", 0, offset), now))
    return tally


def test_triage_counts_become_counters_by_rule_and_reason() -> None:
    """Messages, valid events, failure records, failures by rule and dead letters by reason
    are exactly what the triage counted; rules and reasons that never happened are 0."""
    got = scrape(AppStatus(AppMetrics(process=False), tally=triaged_tally()))
    assert got[("driftnet_messages_total", ())] == 4
    assert got[("driftnet_events_total", ())] == 3
    assert got[("driftnet_failure_records_total", ())] == 1
    assert got[("driftnet_failures_total", (("rule", "status_error"),))] == 1
    assert got[("driftnet_failures_total", (("rule", "latency_slo"),))] == 1
    assert got[("driftnet_failures_total", (("rule", "refusal"),))] == 0
    assert {labels for name, labels in got if name == "driftnet_failures_total"} == {
        (("rule", rule),) for rule in RULE_IDS
    }
    assert got[("driftnet_dead_letters_total", (("reason", "invalid_json"),))] == 1
    assert got[("driftnet_dead_letters_total", (("reason", "invalid_field"),))] == 1
    assert got[("driftnet_dead_letters_total", (("reason", "empty_batch"),))] == 0
    assert got[("driftnet_healthy", ())] == 1  # no part that could be unhealthy


def test_a_scrape_reads_the_counts_as_they_are_now() -> None:
    """The counters follow the tally between scrapes (nothing is cached from the first)."""
    tally = Tally()
    status = AppStatus(AppMetrics(process=False), tally=tally)
    assert scrape(status)[("driftnet_messages_total", ())] == 0
    tally.add(Triage(Settings().rules)(b"[]", Lineage("events", 0, 0), datetime.now(UTC)))
    got = scrape(status)
    assert got[("driftnet_messages_total", ())] == 1
    assert got[("driftnet_dead_letters_total", (("reason", "empty_batch"),))] == 1


def test_the_sink_alone_exposes_its_counts_and_health_and_nothing_of_the_worker(
    tmp_path: Path,
) -> None:
    """A sink's metrics are its records, rows, files, dead letters and write errors; it is
    unhealthy until its consumer joins, and while a write fails; no triage metric appears."""
    sink = ParquetSink(
        KafkaSettings(),
        HarvestSettings(location=str(tmp_path)),
        failures_topic="failures",
        dlq_topic="dlq",
    )
    status = AppStatus(AppMetrics(process=False), sink=sink)
    sink.stats.records, sink.stats.rows_written, sink.stats.files_written = 12, 10, 3
    sink.stats.dead_letters, sink.stats.write_errors = 2, 1
    got = scrape(status)
    assert {name: value for (name, _), value in got.items()} == {
        "driftnet_healthy": 0,
        "driftnet_sink_records_total": 12,
        "driftnet_sink_rows_written_total": 10,
        "driftnet_sink_files_written_total": 3,
        "driftnet_sink_dead_letters_total": 2,
        "driftnet_sink_write_errors_total": 1,
    }
    health = asyncio.run(status.health())
    assert health.reasons == ["harvest sink not yet assigned: joining its consumer group"]
    sink.joined = True
    sink.failing = "OSError: disk full"
    assert asyncio.run(status.health()).reasons == [
        "harvest sink failing to write: OSError: disk full"
    ]
    sink.failing = None
    assert asyncio.run(status.health()).ok
    assert scrape(status)[("driftnet_healthy", ())] == 1


def test_alert_deliveries_are_counted_per_receiver(tmp_path: Path, fake_slack: FakeSlack) -> None:
    """Slack answering 500 twice, then delivering: failed attempts and the delivery are
    counted under ``slack``; every receiver appears, at 0 when it did nothing; an API error
    that is not worth retrying is counted as dead-lettered."""
    failing, passing = verdicts()
    clock = Clock()
    stage = stage_for(tmp_path, fake_slack, clock)
    fake_slack.fail_next(2, status=500, method="chat.postMessage")  # (the look-ups pass)
    step(stage, clock, 60, window(failing, 60))
    for _ in range(3):
        step(stage, clock, 10)
    fake_slack.fail_next(1, status=200, error="channel_not_found")
    for i in range(1, 4):
        step(stage, clock, 60, window(passing, 60 * (i + 1)))
    got = scrape(AppStatus(AppMetrics(process=False), alerts=stage))
    assert alert_counts(stage).receivers == ("console", "slack", "topic")
    assert got[("driftnet_alerts_sent_total", (("receiver", "slack"),))] == 1
    assert got[("driftnet_alerts_failed_total", (("receiver", "slack"),))] == 2
    assert got[("driftnet_alerts_dead_lettered_total", (("receiver", "slack"),))] == 1
    assert got[("driftnet_alerts_sent_total", (("receiver", "console"),))] == 0
    assert got[("driftnet_alerts_waiting", (("receiver", "slack"),))] == 0


def test_apps_in_one_process_have_registries_of_their_own() -> None:
    """Two apps' metrics side by side never clash (the global registry would refuse the
    second histogram) nor see each other's numbers; process metrics are there."""
    first, second = AppMetrics(detection=True), AppMetrics(detection=True)
    assert first.detector_seconds is not None
    first.detector_seconds.observe(0.2)
    first.update(Snapshot(healthy=True, sink=SinkCounts(5, 5, 1, 0, 0)))
    second.update(Snapshot(healthy=False))
    one, two = samples(first.render()[0]), samples(second.render()[0])
    assert one[("driftnet_detector_seconds_count", ())] == 1
    assert one[("driftnet_detector_seconds_bucket", (("le", "0.25"),))] == 1
    assert one[("driftnet_detector_seconds_bucket", (("le", "0.1"),))] == 0
    assert two[("driftnet_detector_seconds_count", ())] == 0
    assert ("driftnet_sink_rows_written_total", ()) not in two
    assert two[("driftnet_healthy", ())] == 0
    names = {name for name, _ in one}
    assert {"process_cpu_seconds_total", "process_resident_memory_bytes"} <= names
    assert {"python_info", "python_gc_objects_collected_total"} <= names


def test_openmetrics_is_served_to_a_scraper_that_asks_for_it() -> None:
    """An ``Accept: application/openmetrics-text`` scrape gets OpenMetrics (ending in EOF)."""
    metrics = AppMetrics(process=False)
    metrics.update(Snapshot(healthy=True))
    body, content_type = metrics.render("application/openmetrics-text; version=1.0.0")
    assert content_type.startswith("application/openmetrics-text")
    assert body.endswith(b"# EOF\n")


def test_a_count_that_drops_when_partitions_move_never_makes_its_counter_go_back() -> None:
    """Late events are counted per owned partition: a revoke lowers the count, the counter
    keeps what it had and adds only what comes after."""
    late = Monotonic()
    assert [late.see(n) for n in (0, 4, 10, 3, 5)] == [0, 4, 10, 10, 12]


def test_the_otlp_ingest_counts_spans_events_dead_letters_and_what_its_buffer_holds() -> None:
    """An LLM call whose request span has not come yet is held (an open trace); a trace with
    no LLM call is ignored and counted; bytes that are no OTLP request are an invalid_otlp
    dead letter; the request span closes the trace and its call becomes an event."""
    from opentelemetry.trace import SpanKind

    from driftnet.ingest.settings import OtlpSettings
    from driftnet.ingest.spans_to_events import OtlpIngest
    from tests.support.otel_client import Instrumented, llm_call, proto

    app = Instrumented({"service.name": "support-chat", "service.version": "v7"})
    with app.tracer.start_as_current_span("GET /health"):
        pass
    health = app.take()
    with app.tracer.start_as_current_span("POST /chat", kind=SpanKind.SERVER), llm_call(app.tracer):
        pass
    chat, request = app.take()
    ingest: OtlpIngest[int] = OtlpIngest(OtlpSettings())
    status = AppStatus(AppMetrics(process=False), otlp=ingest)
    lineage = Lineage("otlp_spans", 0, 0)
    for token, payload in enumerate([proto([chat]), proto(health), b"\x0a\xff\xff\xff\xff\x0f"]):
        ingest.add(token, payload, None, lineage, now=0.0)
    got = scrape(status)
    assert got[("driftnet_otlp_messages_total", ())] == 3
    assert got[("driftnet_otlp_spans_total", ())] == 2
    assert got[("driftnet_otlp_events_total", ())] == 0
    assert got[("driftnet_otlp_ignored_spans_total", ())] == 1
    assert got[("driftnet_otlp_dead_letters_total", (("reason", "invalid_otlp"),))] == 1
    assert got[("driftnet_otlp_dead_letters_total", (("reason", "empty_message"),))] == 0
    assert got[("driftnet_otlp_open_traces", ())] == 1
    assert got[("driftnet_otlp_buffered_spans", ())] == 1
    assert got[("driftnet_otlp_traces_closed_total", (("reason", "complete"),))] == 1  # /health
    step = ingest.add(3, proto([request]), None, lineage, now=1.0)
    assert sorted(step.acks) == [0, 3]
    got = scrape(status)
    assert got[("driftnet_otlp_events_total", ())] == 1
    assert got[("driftnet_otlp_child_spans_total", ())] == 1
    assert got[("driftnet_otlp_traces_closed_total", (("reason", "complete"),))] == 2
    assert got[("driftnet_otlp_open_traces", ())] == 0

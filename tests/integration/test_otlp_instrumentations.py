"""Real clients, no hand-built spans: the ``openai`` package calls a fake OpenAI server whose
answer is chosen per call (normal, truncated, empty, HTTP 500, slow, refusing; plain and
streamed), instrumented by each OpenTelemetry instrumentation of it (the official openai-v2 with
content off and on spans, OpenLLMetry with content on and off, OpenInference with and without
its GenAI flag, and with content hidden). The SDK's spans, encoded by the exporters' own OTLP
encoder (protobuf and OTLP/JSON), are mapped, validated and judged: each call fails exactly the
rules the server's answer calls for, and a call whose content was not captured has no
``output`` (absent is not empty). One broker run does the same through a real worker."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import orjson
import pytest
from kafka import KafkaProducer
from opentelemetry.sdk.trace import ReadableSpan

from driftnet.contract.events import InferenceEvent, Lineage
from driftnet.harvest.rules import RulesConfig, RuleSettings
from driftnet.harvest.triage import Triage
from driftnet.ingest.mapping import convention_of, event_id, is_llm_call, to_event
from driftnet.ingest.otlp_proto import OtlpSpan, decode_spans
from driftnet.ingest.settings import OtlpSettings
from driftnet.storage.query import Harvest
from driftnet.streams.clients.topics import create_topics
from tests.support.fake_openai import MODEL, PROMPT_TOKENS, SLOW_S, Answer, FakeOpenAI
from tests.support.kafka_helpers import WorkerProcess, stream_settings, unique_topics
from tests.support.openai_clients import SETUPS, Call, Setup, chat, client, instrumented
from tests.support.otel_client import Instrumented, otlp_json, proto

SETTINGS: Final = OtlpSettings()
SLO_MS: Final = SLOW_S * 1000 * 2 / 3
"""Below a slow answer, far above a normal one (a few milliseconds on 127.0.0.1)."""
RULES: Final = RulesConfig(defaults=RuleSettings(latency_slo_ms=SLO_MS))
PLAIN: Final[tuple[Answer, ...]] = ("normal", "length", "empty", "error500", "slow", "refusal")
STREAMED: Final[tuple[Answer, ...]] = ("normal", "length", "empty", "refusal")
CONVENTION: Final = {"openai-v2": "genai", "openllmetry": "openllmetry",
                     "openinference": "openinference"}  # fmt: skip


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    """The fake OpenAI server of this module's tests."""
    with FakeOpenAI() as server:
        yield server


def service_of(setup: Setup) -> Instrumented:
    return Instrumented({"service.name": f"support-{setup}", "service.version": "gpt-4o-mini+v7",
                         "deployment.environment.name": "staging"})  # fmt: skip


def make_calls(fake: FakeOpenAI, setup: Setup, app: Instrumented,
               streamed: Sequence[Answer] = STREAMED) -> list[Call]:  # fmt: skip
    """Every answer once plain and the ``streamed`` ones streamed, the app instrumented."""
    with instrumented(setup, app):
        api = client(fake.base_url)
        calls = [chat(app, api, answer) for answer in PLAIN]
        calls += [chat(app, api, answer, stream=True) for answer in streamed]
    return calls


def traces(spans: Sequence[ReadableSpan]) -> dict[str, list[OtlpSpan]]:
    """The spans as the worker gets them (protobuf), by trace id."""
    decoded = decode_spans(proto(spans))
    assert not decoded.problems
    by_trace: dict[str, list[OtlpSpan]] = defaultdict(list)
    for span in decoded.spans:
        by_trace[span.trace_id].append(span)
    return by_trace


def expected(setup: Setup, call: Call) -> tuple[str, ...]:
    """The rules a call fails, from what the server answered (and what the span can show)."""
    content = SETUPS[setup].content
    if call.answer == "error500":
        return ("status_error",)
    if call.answer == "slow":
        return ("latency_slo",)
    if call.answer == "length":
        # upstream: openai-v2 2.4b0 never fills gen_ai.response.finish_reasons of a streamed
        # call; only its output message (content on) still says `length`
        return () if call.stream and setup == "openai-v2" else ("truncated",)
    if call.answer == "empty":
        return ("empty_output",)  # with content off, from usage.output_tokens == 0
    if call.answer == "refusal":
        return ("refusal",) if content else ()
    return ()


def judged(document: dict[str, Any]) -> tuple[str, ...]:
    """The rule ids a mapped event fails, through the triage (decode, validate, rules)."""
    triaged = Triage(RULES)(orjson.dumps(document), Lineage("otlp", 0, 0), datetime.now(UTC))
    assert triaged.events == 1, triaged.dead_letters
    return tuple(sorted(r.rule_id for f in triaged.failures for r in f.reasons))


@pytest.mark.parametrize("setup", list(SETUPS))
def test_each_call_fails_the_rules_its_answer_calls_for(fake: FakeOpenAI, setup: Setup) -> None:
    """Per instrumentation and setting: spans -> v1 events -> rules, call by call."""
    app = service_of(setup)
    calls = make_calls(fake, setup, app)
    assert [c.error for c in calls] == [
        "InternalServerError" if c.answer == "error500" else None for c in calls
    ]
    spans = app.take()
    by_trace = traces(spans)
    assert decode_spans(otlp_json(spans)).spans == decode_spans(proto(spans)).spans
    content = SETUPS[setup].content
    for call in calls:
        trace = by_trace[call.trace_id]
        [span] = [s for s in trace if is_llm_call(s, SETTINGS)]
        assert convention_of(span).name == CONVENTION[SETUPS[setup].name]
        document = to_event(span, trace, SETTINGS)
        assert judged(document) == expected(setup, call), (call, document)
        answered = call.error is None
        assert ("output" in document) == (content and answered), document
        assert ("input" in document) == content, document
        event = InferenceEvent.model_validate(document)
        assert event.output_captured == (content and answered)
        assert (event.operation, event.provider, event.request_model) == (
            "chat",
            "openai",
            "gpt-4o-mini",
        )
        assert event.status == ("ok" if answered else "error")
        assert event.error_type == (None if answered else "InternalServerError")
        if answered:
            assert event.response_model == MODEL
            assert event.usage.input_tokens == PROMPT_TOKENS
            assert event.usage.output_tokens == len((call.text or "").split())
        if content and answered:
            assert event.output_text == call.text
            assert [m.role for m in event.input.messages] == ["system", "user"]
    [spans_in_the_trace] = {len(t) for t in by_trace.values()}
    assert spans_in_the_trace == 2  # the request span rides along as the event's child span


def test_openai_v2_span_and_event_mode_also_puts_content_on_spans(fake: FakeOpenAI) -> None:
    """``SPAN_AND_EVENT`` content is read from the span, the log records aside."""
    app = service_of("openai-v2-span-and-event")
    with instrumented("openai-v2-span-and-event", app):
        call = chat(app, client(fake.base_url), "refusal")
    trace = traces(app.take())[call.trace_id]
    [span] = [s for s in trace if is_llm_call(s, SETTINGS)]
    assert judged(to_event(span, trace, SETTINGS)) == ("refusal",)


# -- on the broker: one worker, every instrumentation ---------------------------------------

BROKER_SETUPS: Final[tuple[Setup, ...]] = (
    "openai-v2",
    "openai-v2-span-only",
    "openllmetry",
    "openinference",
)


@pytest.mark.integration
def test_a_worker_harvests_each_failing_call_with_its_reasons(
    fake: FakeOpenAI, kafka_bootstrap: str, tmp_path: Path
) -> None:
    """The instrumented apps' spans on the otlp_spans topic (protobuf and OTLP/JSON); the
    harvest holds each failing call once, with the reasons its answer calls for."""
    topics = unique_topics("clients")
    settings = stream_settings(kafka_bootstrap, topics, tmp_path)
    settings = settings.model_copy(update={"otlp": OtlpSettings(enabled=True), "rules": RULES})
    create_topics(settings.kafka, settings.topics.by_role())
    want: dict[str, tuple[str, ...]] = {}
    messages = []
    for number, setup in enumerate(BROKER_SETUPS):
        app = service_of(setup)
        calls = make_calls(fake, setup, app, streamed=("length",))
        spans = app.take()
        for call in calls:
            [span] = [s for s in traces(spans)[call.trace_id] if is_llm_call(s, SETTINGS)]
            want[event_id(span.trace_id, span.span_id)] = expected(setup, call)
        messages.append((otlp_json if number % 2 else proto)(spans))
    failing = {key: reasons for key, reasons in want.items() if reasons}
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    try:
        rules = {"DRIFTNET_RULES": RULES.model_dump_json(exclude_defaults=True)}
        with WorkerProcess(settings, tmp_path / "worker.log", env=rules) as worker:
            worker.wait_for("otlp ingest consuming")
            for number, message in enumerate(messages):
                producer.send(topics.otlp_spans.name, message, key=f"app-{number}".encode())
            producer.flush()
            harvest = Harvest.at(settings.harvest.location)
            deadline = time.monotonic() + 60
            got: dict[str, tuple[str, ...]] = {}
            while len(got) < len(failing) and time.monotonic() < deadline:
                time.sleep(0.5)
                if harvest.failure_files():
                    rows = harvest.run("select event_id, reasons from failures").to_pylist()
                    got = {row["event_id"]: tuple(sorted(r["rule_id"] for r in row["reasons"]))
                           for row in rows}  # fmt: skip
            assert worker.stop() == 0, worker.log
    finally:
        producer.close()
    assert got == failing
    assert f"{len(want)} events" in worker.log
    assert "Traceback" not in worker.log

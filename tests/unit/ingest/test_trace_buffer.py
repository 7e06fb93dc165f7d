"""The trace buffer and the OTLP ingest without a broker: spans of a trace are joined across
messages within bounded time and size, a message is released only once its traces are handed
on, non-GenAI spans are ignored and counted, and malformed messages become dead letters."""

from __future__ import annotations

from typing import Any

import orjson

from driftnet.contract.dlq import dead_letter_headers
from driftnet.contract.events import InferenceEvent, Lineage
from driftnet.ingest.otlp_proto import OtlpSpan
from driftnet.ingest.settings import OtlpSettings
from driftnet.ingest.spans_to_events import OtlpIngest
from driftnet.ingest.trace_buffer import CLOSED_REMEMBERED, TraceBuffer
from tests.support.otel_client import Instrumented, llm_call, otlp_json, proto

LLM = {"gen_ai.operation.name": "chat"}
RESOURCE = {"service.name": "support-chat", "service.version": "r1"}
LINEAGE = Lineage("otlp_spans", 2, 40)


def span(trace: int, span: int, parent: int | None = None, **attributes: Any) -> OtlpSpan:
    return OtlpSpan(
        f"{trace:032x}",
        f"{span:016x}",
        None if parent is None else f"{parent:016x}",
        f"span-{span}",
        "internal",
        1_000,
        2_000,
        "unset",
        "",
        attributes,
        (),
        RESOURCE,
    )


def is_llm(s: OtlpSpan) -> bool:
    return s.attributes.get("gen_ai.operation.name") == "chat"


def buffer(**bounds: Any) -> TraceBuffer[str]:
    options = {"timeout_s": 10.0, "max_spans": 1000, "max_spans_per_trace": 50} | bounds
    return TraceBuffer(keep=is_llm, **options)


def test_a_trace_across_messages_closes_on_its_root_and_then_releases_both() -> None:
    """Children first, root later: nothing is released until the root completes the trace."""
    traces = buffer()
    first = traces.add("m1", [span(1, 2, parent=1), span(1, 3, parent=1, **LLM)], now=0.0)
    assert (first.traces, first.tokens) == ([], [])
    assert traces.waiting_messages == 1
    second = traces.add("m2", [span(1, 1)], now=1.0)
    [closed] = second.traces
    assert closed.reason == "complete"
    assert [s.span_id[-1] for s in closed.spans] == ["2", "3", "1"]
    assert second.tokens == ["m1", "m2"]
    assert (traces.open_traces, traces.buffered_spans, traces.waiting_messages) == (0, 0, 0)


def test_a_message_feeding_two_traces_waits_for_both() -> None:
    """A token is released only when the last trace its message fed has closed."""
    traces = buffer()
    traces.add("m1", [span(1, 2, parent=1), span(2, 2, parent=1)], now=0.0)
    assert traces.add("m2", [span(1, 1)], now=0.0).tokens == ["m2"]
    assert traces.add("m3", [span(2, 1)], now=0.0).tokens == ["m1", "m3"]


def test_a_trace_without_its_root_closes_after_the_timeout() -> None:
    """Bounded time: at ``timeout_s`` after its first span the trace goes with what it has."""
    traces = buffer(timeout_s=5.0)
    traces.add("m1", [span(1, 2, parent=1, **LLM)], now=100.0)
    traces.add("m2", [span(2, 2, parent=1)], now=103.0)
    assert traces.next_due() == 105.0
    assert traces.due(104.9).traces == []
    released = traces.due(105.0)
    assert [(t.trace_id[-1], t.reason) for t in released.traces] == [("1", "timeout")]
    assert released.tokens == ["m1"]
    assert traces.next_due() == 108.0
    assert traces.tally.closed["timeout"] == 1


def test_a_server_span_is_a_local_root() -> None:
    """A request entering this service (its parent is another service's span) closes the trace."""
    traces = buffer()
    server = OtlpSpan(
        "0" * 31 + "1",
        "0" * 15 + "9",
        "0" * 15 + "8",
        "POST",
        "server",
        1,
        2,
        "ok",
        "",
        {},
        (),
        RESOURCE,
    )
    assert traces.add("m", [server], now=0.0).tokens == ["m"]


def test_the_size_bound_evicts_the_oldest_traces_and_counts_them() -> None:
    """Past ``max_spans`` buffered, the oldest traces are handed on early, never dropped."""
    traces = buffer(max_spans=4)
    traces.add("m1", [span(1, 2, parent=1), span(1, 3, parent=1)], now=0.0)
    traces.add("m2", [span(2, 2, parent=1), span(2, 3, parent=1)], now=1.0)
    released = traces.add("m3", [span(3, 2, parent=1)], now=2.0)
    assert [(t.trace_id[-1], t.reason) for t in released.traces] == [("1", "evicted")]
    assert released.tokens == ["m1"]
    assert traces.buffered_spans == 3
    assert traces.tally.closed["evicted"] == 1


def test_the_per_trace_bound_drops_child_spans_but_never_llm_calls() -> None:
    """Past ``max_spans_per_trace`` child spans are dropped (counted); LLM calls stay."""
    traces = buffer(max_spans_per_trace=2)
    spans = [span(1, n, parent=1) for n in range(2, 6)] + [span(1, 9, parent=1, **LLM)]
    traces.add("m1", spans, now=0.0)
    [closed] = traces.add("m2", [span(1, 1)], now=0.0).traces
    assert [s.span_id[-1] for s in closed.spans] == ["2", "3", "9", "1"]
    assert traces.tally.spans_dropped == 2


def test_late_spans_are_counted_and_a_late_llm_call_is_still_handed_on() -> None:
    """A child arriving after its trace closed is dropped and counted; an LLM call is not lost."""
    traces = buffer()
    traces.add("m1", [span(1, 1)], now=0.0)
    assert traces.add("m2", [span(1, 2, parent=1)], now=1.0).tokens == ["m2"]
    assert traces.tally.late_spans == 1
    traces.add("m3", [span(1, 3, parent=1, **LLM)], now=1.0)
    assert traces.open_traces == 1
    assert CLOSED_REMEMBERED >= 1000


# -- the ingest: decode + buffer + mapping -------------------------------------------------


def ingest(**settings: Any) -> OtlpIngest[str]:
    return OtlpIngest(OtlpSettings(**settings), event_max_bytes=900_000)


def test_sdk_spans_in_both_encodings_become_the_same_v1_events() -> None:
    """protobuf and OTLP/JSON of the same SDK spans give identical event batches."""
    app = Instrumented(RESOURCE)
    with app.tracer.start_as_current_span("POST /chat"), llm_call(app.tracer):
        pass
    spans = app.take()
    steps = [
        ingest().add("m", payload, b"k", LINEAGE, 0.0)
        for payload in (proto(spans), otlp_json(spans))
    ]
    assert steps[0].batches == steps[1].batches
    [(key, value, count)] = steps[0].batches
    assert (key, count) == (b"support-chat/production/r1/baseline", 1)
    event = InferenceEvent.model_validate(orjson.loads(value))
    assert [s.name for s in event.spans] == ["POST /chat"]
    assert steps[0].acks == ["m"]


def test_non_genai_traces_are_ignored_and_counted() -> None:
    """A trace without an LLM call yields no event; its spans are counted and its message acked."""
    app = Instrumented(RESOURCE)
    with app.tracer.start_as_current_span("GET /health"), app.tracer.start_as_current_span("db"):
        pass
    otlp = ingest()
    step = otlp.add("m", proto(app.take()), None, LINEAGE, 0.0)
    assert (step.batches, step.dead_letters, step.acks) == ([], [], ["m"])
    assert (otlp.tally.ignored_spans, otlp.tally.events, otlp.tally.spans) == (2, 0, 2)


def test_malformed_messages_are_invalid_otlp_dead_letters_with_headers() -> None:
    """Undecodable bytes: one ``invalid_otlp`` dead letter keyed like the message; acked."""
    otlp = ingest()
    step = otlp.add("m", b"\x0a\xff\xff\xff\xff\x0f", b"key", LINEAGE, 0.0)
    [(dead, key)] = step.dead_letters
    assert (dead.reason, key, dead.lineage, dead.payload) == (
        "invalid_otlp",
        b"key",
        LINEAGE,
        b"\x0a\xff\xff\xff\xff\x0f",
    )
    assert dead.message.startswith("otlp_proto: not an OTLP protobuf")
    headers = dict(dead_letter_headers(dead, __import__("datetime").datetime(2026, 1, 1)))
    assert headers["driftnet.dlq.reason"] == b"invalid_otlp"
    assert step.acks == ["m"]
    empty = otlp.add("e", b"", None, LINEAGE, 0.0)
    assert [d.reason for d, _ in empty.dead_letters] == ["empty_message"]
    assert otlp.tally.dead_letters_by_reason == {"invalid_otlp": 1, "empty_message": 1}


def test_an_event_too_large_for_a_message_is_a_dead_letter() -> None:
    """An event over the message limit is ``processing_failed`` with the span's lineage."""
    app = Instrumented(RESOURCE)
    with llm_call(app.tracer, prompt="x" * 5000):
        pass
    otlp = OtlpIngest[str](OtlpSettings(), event_max_bytes=2000)
    step = otlp.add("m", proto(app.take()), None, LINEAGE, 0.0)
    [(dead, _)] = step.dead_letters
    assert (dead.reason, dead.lineage) == ("processing_failed", LINEAGE.at(0))
    assert "over the 2,000-byte message limit" in dead.message
    assert (step.batches, step.acks) == ([], ["m"])


def test_a_redelivered_message_gives_each_span_once() -> None:
    """The same spans twice in one open trace (a producer retry) make one event, not two."""
    app = Instrumented(RESOURCE)
    with app.tracer.start_as_current_span("POST /chat"):
        with llm_call(app.tracer):
            pass
        children = proto(app.take())
    root = proto(app.take())
    otlp = ingest()
    otlp.add("a", children, None, LINEAGE, 0.0)
    otlp.add("b", children, None, LINEAGE, 0.0)
    step = otlp.add("c", root, None, LINEAGE, 0.0)
    [(_, _, count)] = step.batches
    assert (count, sorted(step.acks)) == (1, ["a", "b", "c"])


def test_many_events_of_a_cohort_share_batches_within_the_bounds() -> None:
    """Events leave as JSON arrays per cohort key, at most ``batch_max_events`` each."""
    app = Instrumented(RESOURCE)
    for _ in range(5):
        with llm_call(app.tracer):
            pass
    otlp: OtlpIngest[str] = OtlpIngest(OtlpSettings(), batch_max_events=2)
    step = otlp.add("m", proto(app.take()), None, LINEAGE, 0.0)
    assert [count for _, _, count in step.batches] == [2, 2, 1]
    assert all(isinstance(orjson.loads(value), list | dict) for _, value, _ in step.batches)

"""OTLP messages in, v1 event batches and dead letters out: the work of the worker's ``otlp``
agent, without Kafka (time is passed in, offsets are opaque tokens).

Each message is decoded (:mod:`driftnet.ingest.otlp_proto`), its spans are buffered by trace
(:mod:`driftnet.ingest.trace_buffer`), and every closed trace with LLM-call spans becomes one v1 event
per such span (:mod:`driftnet.ingest.mapping`), its other spans the event's ``spans``. A trace
without an LLM-call span is ignored and its spans counted. Events leave as JSON arrays keyed by
cohort, as :class:`~driftnet.streams.clients.publisher.EventPublisher` sends them, so the events topic and
everything after it cannot tell them from a native producer's.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import orjson

from driftnet.contract.batching import Batcher
from driftnet.contract.decode import PAYLOAD_CAP_BYTES, DeadLetter, make_dead_letter
from driftnet.contract.events import Cohort, Lineage
from driftnet.ingest.mapping import is_llm_call, to_event
from driftnet.ingest.otlp_proto import OtlpSpan, decode_spans
from driftnet.ingest.settings import OtlpSettings
from driftnet.ingest.trace_buffer import Released, TraceBuffer

T = TypeVar("T")


@dataclass(slots=True)
class OtlpTally:
    """Running counts of the ingest (the worker's log lines and ``driftnet_otlp_*`` metrics)."""

    messages: int = 0
    spans: int = 0
    """Spans decoded."""
    events: int = 0
    """v1 events produced (LLM-call spans)."""
    child_spans: int = 0
    """Spans carried as some event's ``spans``."""
    ignored_spans: int = 0
    """Spans of traces without an LLM call (in none of the conventions read): ignored."""
    dead_letters_by_reason: Counter[str] = field(default_factory=Counter)

    @property
    def dead_letters(self) -> int:
        return self.dead_letters_by_reason.total()

    def summary(self) -> str:
        return (
            f"{self.messages} OTLP messages, {self.spans} spans, {self.events} events, "
            f"{self.ignored_spans} spans of traces without an LLM call ignored, "
            f"{self.dead_letters} dead letters"
        )


@dataclass(slots=True)
class Step(Generic[T]):
    """What one call gave: event batches to send, dead letters, tokens to ack after both."""

    batches: list[tuple[bytes, bytes, int]] = field(default_factory=list)
    """(key, value, events) of each message for the events topic."""
    dead_letters: list[tuple[DeadLetter, bytes | None]] = field(default_factory=list)
    """Each dead letter with the key of the message it came from."""
    acks: list[T] = field(default_factory=list)


class OtlpIngest(Generic[T]):
    """Decode, buffer and map OTLP messages; see the module docstring."""

    def __init__(
        self,
        settings: OtlpSettings,
        *,
        payload_cap: int = PAYLOAD_CAP_BYTES,
        event_max_bytes: int | None = None,
        batch_max_events: int = 100,
        batch_max_bytes: int = 900_000,
    ) -> None:
        self.settings = settings
        self.payload_cap = payload_cap
        self.event_max_bytes = event_max_bytes
        self.batch_max_events = batch_max_events
        self.batch_max_bytes = batch_max_bytes
        self.tally = OtlpTally()
        self.buffer: TraceBuffer[T] = TraceBuffer(
            timeout_s=settings.trace_timeout_s,
            max_spans=settings.max_buffered_spans,
            max_spans_per_trace=settings.max_spans_per_trace,
            keep=lambda span: is_llm_call(span, settings),
        )
        self._origin: dict[tuple[str, str], Lineage] = {}
        """Where each buffered LLM-call span came from, (trace id, span id) -> its message and
        index there: the lineage of its event's dead letter, should it be too large."""

    def add(self, token: T, payload: bytes | None, key: bytes | None, lineage: Lineage,
            now: float) -> Step[T]:  # fmt: skip
        """One message off the OTLP topic."""
        self.tally.messages += 1
        step: Step[T] = Step()
        data = payload or b""
        if not data or data.isspace():
            dead = make_dead_letter("empty_message", "message value is empty", data, lineage,
                                    self.payload_cap)  # fmt: skip
            self._dead(step, dead, key)
            step.acks.append(token)
            return step
        decoded = decode_spans(data)
        for problem in decoded.problems:
            where = lineage if problem.index is None else lineage.at(problem.index)
            message = f"{decoded.encoding}: {problem.message}"
            dead = make_dead_letter("invalid_otlp", message, data, where, self.payload_cap,
                                    field=problem.field)  # fmt: skip
            self._dead(step, dead, key)
        self.tally.spans += len(decoded.spans)
        for span in decoded.spans:
            if is_llm_call(span, self.settings):
                self._origin.setdefault((span.trace_id, span.span_id), lineage.at(span.index))
        self._emit(step, self.buffer.add(token, decoded.spans, now))
        return step

    def due(self, now: float) -> Step[T]:
        """The traces whose time is up."""
        step: Step[T] = Step()
        self._emit(step, self.buffer.due(now))
        return step

    def _dead(self, step: Step[T], dead: DeadLetter, key: bytes | None) -> None:
        self.tally.dead_letters_by_reason[dead.reason] += 1
        step.dead_letters.append((dead, key))

    def _emit(self, step: Step[T], released: Released[T]) -> None:
        batcher = Batcher(
            max_events=self.batch_max_events, max_bytes=self.batch_max_bytes, linger_s=0.0
        )
        ready = []
        for trace in released.traces:
            # a message delivered twice repeats its spans: each span id counts once
            unique: dict[str, OtlpSpan] = {}
            for span in trace.spans:
                unique.setdefault(span.span_id, span)
            spans = tuple(unique.values())
            calls = [s for s in spans if is_llm_call(s, self.settings)]
            if not calls:
                self.tally.ignored_spans += len(spans)
                continue
            self.tally.child_spans += len(spans) - len(calls)
            for span in calls:
                where = self._origin.pop((span.trace_id, span.span_id), Lineage("?", -1, -1))
                document = to_event(span, spans, self.settings)
                encoded = orjson.dumps(document)
                if self.event_max_bytes is not None and len(encoded) > self.event_max_bytes:
                    message = (
                        f"the event of span {span.span_id} is {len(encoded):,} bytes, over the "
                        f"{self.event_max_bytes:,}-byte message limit"
                    )
                    dead = make_dead_letter("processing_failed", message, encoded, where,
                                            self.payload_cap, field="spans")  # fmt: skip
                    self._dead(step, dead, None)
                    continue
                self.tally.events += 1
                ready += batcher.add(Cohort.of(document).key.encode(), encoded, 0.0)
        ready += batcher.drain()
        step.batches += [(b.key or b"", b.value(), b.events) for b in ready]
        step.acks += released.tokens

"""Spans of one trace, gathered across messages until the trace can be mapped. Pure: time is
passed in.

An exporter sends a span when it ends, so the spans of one trace (the LLM call, the retrieval
and tool calls around it) arrive in several messages, children before their parents. A trace
is *closed* (handed on whole) at the first of:

``complete``
    its local root arrived: a span without a parent, or a ``server`` / ``consumer`` span (where
    a request entered this service, its parent being another service's). A root ends after its
    children, and an exporter sends spans in the order they end.
``timeout``
    ``timeout_s`` after its first span arrived, with whatever arrived by then (a trace whose root
    is never exported here, or a slow one).
``evicted``
    more than ``max_spans`` spans are buffered in all: the oldest traces close early.

A trace holds at most ``max_spans_per_trace`` spans; past it further spans are dropped
(counted), except its local root and those ``keep`` asks for (the LLM calls themselves, which
are the events). A
span whose trace closed a little earlier (one of the last :data:`CLOSED_REMEMBERED` traces)
arrived late: dropped and counted, unless ``keep`` asks for it, which then starts a trace anew.

Offsets: every message handed to :meth:`TraceBuffer.add` comes with a token (the worker passes
the faust event to ack). A token is released once every trace its message fed has closed, so
the worker acks a message only when all it contributed has been handed on.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Final, Generic, Literal, TypeVar

from driftnet.ingest.otlp_proto import OtlpSpan

T = TypeVar("T")

CLOSED_REMEMBERED: Final = 10_000
"""How many closed traces are remembered, to tell a late span from a new trace."""
ROOT_KINDS: Final = frozenset({"server", "consumer"})

CloseReason = Literal["complete", "timeout", "evicted"]


@dataclass(frozen=True, slots=True)
class ClosedTrace:
    """The spans of one trace that arrived before it closed, in arrival order."""

    trace_id: str
    spans: tuple[OtlpSpan, ...]
    reason: CloseReason


@dataclass(slots=True)
class Released(Generic[T]):
    """Traces closed by a call, and the tokens of the messages now wholly handed on."""

    traces: list[ClosedTrace] = field(default_factory=list)
    tokens: list[T] = field(default_factory=list)

    def extend(self, other: Released[T]) -> None:
        self.traces.extend(other.traces)
        self.tokens.extend(other.tokens)


@dataclass(slots=True)
class _Open:
    opened_at: float
    spans: list[OtlpSpan] = field(default_factory=list)
    messages: set[int] = field(default_factory=set)
    complete: bool = False


@dataclass(slots=True)
class _Waiting(Generic[T]):
    token: T
    traces: int = 0
    """Open traces the message fed."""


@dataclass(slots=True)
class BufferTally:
    """What the buffer did since it was made."""

    closed: Counter[CloseReason] = field(default_factory=Counter)
    spans_dropped: int = 0
    """Spans past ``max_spans_per_trace``."""
    late_spans: int = 0
    """Spans of a trace that had already closed."""


def is_local_root(span: OtlpSpan) -> bool:
    """A span without a parent, or where a request entered this service."""
    return span.parent_span_id is None or span.kind in ROOT_KINDS


class TraceBuffer(Generic[T]):
    """Open traces by trace id, oldest first, and the messages waiting on them."""

    def __init__(
        self,
        *,
        timeout_s: float,
        max_spans: int,
        max_spans_per_trace: int,
        keep: Callable[[OtlpSpan], bool] = lambda span: False,
    ) -> None:
        self.timeout_s = timeout_s
        self.max_spans = max_spans
        self.max_spans_per_trace = max_spans_per_trace
        self.keep = keep
        self.tally = BufferTally()
        self._open: dict[str, _Open] = {}
        """Insertion order is opening order: the first is the oldest."""
        self._closed: OrderedDict[str, None] = OrderedDict()
        self._messages: dict[int, _Waiting[T]] = {}
        self._next_message = 0
        self._spans = 0

    @property
    def open_traces(self) -> int:
        return len(self._open)

    @property
    def buffered_spans(self) -> int:
        return self._spans

    @property
    def waiting_messages(self) -> int:
        """Messages whose tokens are not released yet."""
        return len(self._messages)

    def add(self, token: T, spans: Iterable[OtlpSpan], now: float) -> Released[T]:
        """Buffer the spans of one message; returns what closed (its token may be among the
        released ones, e.g. when the message completed every trace it fed)."""
        message = self._next_message
        self._next_message += 1
        entry = self._messages[message] = _Waiting(token)
        touched: list[str] = []
        for span in spans:
            trace_id = span.trace_id
            trace = self._open.get(trace_id)
            if trace is None:
                if trace_id in self._closed and not self.keep(span):
                    self.tally.late_spans += 1
                    continue
                trace = self._open[trace_id] = _Open(opened_at=now)
            root = is_local_root(span)
            if len(trace.spans) >= self.max_spans_per_trace and not (root or self.keep(span)):
                self.tally.spans_dropped += 1
                continue
            trace.spans.append(span)
            self._spans += 1
            if message not in trace.messages:
                trace.messages.add(message)
                entry.traces += 1
                touched.append(trace_id)
            trace.complete = trace.complete or root
        released: Released[T] = Released()
        for trace_id in touched:
            trace = self._open.get(trace_id)
            if trace is not None and trace.complete:
                self._close(trace_id, "complete", released)
        while self._spans > self.max_spans and self._open:
            self._close(next(iter(self._open)), "evicted", released)
        if entry.traces == 0 and message in self._messages:
            del self._messages[message]
            released.tokens.append(token)
        return released

    def due(self, now: float) -> Released[T]:
        """Close the traces that have waited ``timeout_s`` since their first span."""
        released: Released[T] = Released()
        while self._open:
            trace_id, trace = next(iter(self._open.items()))
            if now - trace.opened_at < self.timeout_s:
                break
            self._close(trace_id, "timeout", released)
        return released

    def next_due(self) -> float | None:
        """When the oldest open trace times out; None when none is open."""
        for trace in self._open.values():
            return trace.opened_at + self.timeout_s
        return None

    def _close(self, trace_id: str, reason: CloseReason, released: Released[T]) -> None:
        trace = self._open.pop(trace_id)
        self._spans -= len(trace.spans)
        self.tally.closed[reason] += 1
        self._closed[trace_id] = None
        self._closed.move_to_end(trace_id)
        while len(self._closed) > CLOSED_REMEMBERED:
            self._closed.popitem(last=False)
        released.traces.append(ClosedTrace(trace_id, tuple(trace.spans), reason))
        for message in sorted(trace.messages):
            waiting = self._messages[message]
            waiting.traces -= 1
            if waiting.traces == 0:
                del self._messages[message]
                released.tokens.append(waiting.token)

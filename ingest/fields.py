"""The machinery every OTLP mapping table shares, and the fields filled the same way whatever the
instrumentation (identity, cohort, times, status, the trace's other spans). Pure.

A table is a tuple of :class:`Row`: which v1 field, from which OpenTelemetry names (the first
present wins) in which *scope*:

``span``      the LLM-call span's attributes
``resource``  the attributes of the resource (service) that produced the span
``trace``     the span, its span events, the other spans of its trace, then the resource
``derived``   computed from the span itself (ids, times, status, events, indexed attributes):
              the row says how
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal

import orjson

from driftnet.ingest.otlp_proto import OtlpSpan
from driftnet.ingest.settings import OtlpSettings

Scope = Literal["span", "resource", "trace", "derived"]


@dataclass(frozen=True, slots=True)
class Context:
    """One LLM-call span and the trace it belongs to."""

    span: OtlpSpan
    trace: Sequence[OtlpSpan]
    settings: OtlpSettings
    kind_of: Callable[[OtlpSpan], str]
    """A child span's ``kind`` (``tool``, ``retrieval``... or its OTel span kind), by its own
    convention."""


@dataclass(frozen=True, slots=True)
class Row:
    """How one v1 field is filled."""

    field: str
    """Dotted v1 path: ``usage.input_tokens``."""
    otel: tuple[str, ...]
    """OpenTelemetry names read, in order (for a derived row: what it reads, for the docs)."""
    scope: Scope
    convert: Callable[[Any], Any] | None = None
    """Attribute value -> field value (None: leave the field out); as is when unset."""
    derive: Callable[[Context], Any] | None = None
    """For a derived row: the value from the context (None: leave the field out)."""
    setting: str | None = None
    """An ``otlp.*`` setting naming the attribute instead of ``otel`` (``release_attribute``)."""
    note: str = ""

    def names(self, settings: OtlpSettings) -> tuple[str, ...]:
        return (str(getattr(settings, self.setting)),) if self.setting else self.otel


def fill(document: dict[str, Any], rows: Sequence[Row], context: Context) -> None:
    """Fill ``document`` from ``rows`` (a field no row finds is left out)."""
    for row in rows:
        if row.derive is not None:
            value = row.derive(context)
        else:
            value = first(context, row.names(context.settings), row.scope)
            if value is not None and row.convert is not None:
                value = row.convert(value)
        if value is not None:
            _put(document, row.field, value)


def _put(document: dict[str, Any], path: str, value: Any) -> None:
    *parents, name = path.split(".")
    for part in parents:
        document = document.setdefault(part, {})
    if isinstance(value, dict) and isinstance(document.get(name), dict):
        document[name].update(value)
    else:
        document[name] = value


# -- converters -----------------------------------------------------------------------------


def text(value: Any) -> Any:
    """A label as text (numbers and booleans written out; an empty string is no value)."""
    if isinstance(value, str):
        return value or None
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return str(value)
    return None


def text_list(value: Any) -> Any:
    """A list of strings: a list, a JSON array, or one string."""
    if isinstance(value, str):
        parsed = json_value(value)
        return [str(v) for v in parsed] if isinstance(parsed, list) else [value]
    if isinstance(value, list):
        return [str(v) for v in value]
    return None


def ms_from_s(value: Any) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value * 1000.0
    return value  # not a number: the triage says so


def output_type(value: Any) -> Any:
    return value if value in ("text", "json") else None


def json_value(text: str) -> Any:
    """Parsed JSON, or None when ``text`` is not JSON."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return None


# -- lookups --------------------------------------------------------------------------------


def _scopes(context: Context, scope: Scope) -> Iterator[Mapping[str, Any]]:
    span = context.span
    if scope in ("span", "trace"):
        yield span.attributes
    if scope == "trace":
        for event in span.events:
            yield event.attributes
        for other in context.trace:
            if other is not span:
                yield other.attributes
                for event in other.events:
                    yield event.attributes
    if scope in ("resource", "trace"):
        yield span.resource


def first(context: Context, names: Sequence[str], scope: Scope) -> Any:
    """The value of the first of ``names`` present in ``scope``."""
    for attributes in _scopes(context, scope):
        for name in names:
            value = attributes.get(name)
            if value is not None:
                return value
    return None


def indexed(attributes: Mapping[str, Any], prefix: str) -> list[Any] | None:
    """Attributes flattened with indexes, ``<prefix>.<n>.<path>``, as a list of nested dicts
    (``gen_ai.prompt.0.tool_calls.1.name`` -> ``[{"tool_calls": [{}, {"name": ...}]}]``);
    None when there are none. Indexes become list positions, in order."""
    head = prefix + "."
    tree: dict[Any, Any] = {}
    for name, value in attributes.items():
        if not name.startswith(head):
            continue
        parts = name[len(head) :].split(".")
        if not parts[0].isdigit():
            continue
        node = tree
        for part in parts[:-1]:
            key = int(part) if part.isdigit() else part
            child = node.get(key)
            if not isinstance(child, dict):
                child = node[key] = {}
            node = child
        last = parts[-1]
        node[int(last) if last.isdigit() else last] = value
    if not tree:
        return None
    listed = _lists(tree)
    return listed if isinstance(listed, list) else None


def _lists(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    if node and all(isinstance(k, int) for k in node):
        return [_lists(node[k]) for k in sorted(node)]
    return {k: _lists(v) for k, v in node.items()}


# -- the fields every convention fills the same way -----------------------------------------


def rfc3339(ns: int) -> str:
    """Unix nanoseconds as an RFC 3339 UTC timestamp (microseconds kept)."""
    stamp = datetime.fromtimestamp(ns // 1_000_000_000, UTC)
    return stamp.replace(microsecond=(ns // 1000) % 1_000_000).isoformat()


def event_id(trace_id: str, span_id: str) -> str:
    """The event id of a span: the same on every replay, so the harvest counts it once."""
    return f"otel-{trace_id}-{span_id}"


def _latency(context: Context) -> float | None:
    span = context.span
    return (span.end_ns - span.start_ns) / 1e6 if span.end_ns >= span.start_ns else None


def _status(context: Context) -> str:
    span = context.span
    failed = span.status == "error" or span.attributes.get("error.type") is not None
    return "error" if failed else "ok"


def _error_type(context: Context) -> Any:
    """As the producer sent it (the contract, not the mapping, normalises class names)."""
    value = text(context.span.attributes.get("error.type"))
    if value is not None:
        return value
    for event in context.span.events:
        if event.name == "exception" and event.attributes.get("exception.type"):
            return text(event.attributes["exception.type"])
    return None


def _scores(context: Context) -> dict[str, Any] | None:
    scores = {}
    for event in context.span.events:
        if event.name != "gen_ai.evaluation.result":
            continue
        name = event.attributes.get("gen_ai.evaluation.name")
        value = event.attributes.get("gen_ai.evaluation.score.value")
        if isinstance(name, str) and name and value is not None:
            scores[name] = value
    return scores or None


def _child(span: OtlpSpan, kind: str) -> dict[str, Any]:
    child: dict[str, Any] = {
        "name": span.name or "(unnamed)",
        "span_id": span.span_id,
        "kind": kind,
        "start_time": rfc3339(span.start_ns),
        "attributes": dict(span.attributes),
    }
    if span.parent_span_id is not None:
        child["parent_span_id"] = span.parent_span_id
    if span.end_ns >= span.start_ns:
        child["duration_ms"] = (span.end_ns - span.start_ns) / 1e6
    if span.status != "unset":
        child["status"] = span.status
    return child


def _spans(context: Context) -> list[dict[str, Any]] | None:
    children = [_child(s, context.kind_of(s)) for s in context.trace if s is not context.span]
    return children or None


def _labels(context: Context) -> dict[str, Any] | None:
    labels = {}
    for name in context.settings.label_attributes:
        value = text(first(context, (name,), "trace"))
        if value is not None:
            labels[name] = value
    return labels or None


COMMON: Final[tuple[Row, ...]] = (
    Row("event_id", ("trace_id", "span_id"), "derived",
        derive=lambda c: event_id(c.span.trace_id, c.span.span_id),
        note="`otel-<trace_id>-<span_id>` (hex): the same on every replay"),
    Row("timestamp", ("start_time_unix_nano",), "derived",
        derive=lambda c: rfc3339(c.span.start_ns), note="span start, RFC 3339 UTC"),
    Row("service", ("service.name",), "resource", text),
    Row("environment", ("deployment.environment.name", "deployment.environment"), "resource",
        text, note="`production` when absent (the contract's default)"),
    Row("release", ("service.version",), "trace", text, setting="release_attribute",
        note="`otlp.release_attribute` names another attribute; none: a `missing_field` "
             "dead letter"),
    Row("variant", ("feature_flag.result.variant",), "trace", text,
        note="also from a `feature_flag.evaluation` span event; `baseline` when absent"),
    Row("latency_ms", ("end_time_unix_nano", "start_time_unix_nano"), "derived",
        derive=_latency, note="span duration"),
    Row("status", ("status.code", "error.type"), "derived", derive=_status,
        note="`error` when the span status is ERROR or `error.type` is set, else `ok`"),
    Row("error_type", ("error.type", "`exception.type` of an `exception` event"), "derived",
        derive=_error_type, note="as sent (the contract reduces it to the class's bare name)"),
    Row("scores", ("`gen_ai.evaluation.result` events",), "derived", derive=_scores,
        note="`{gen_ai.evaluation.name: gen_ai.evaluation.score.value}`"),
    Row("trace_id", ("trace_id",), "derived", derive=lambda c: c.span.trace_id, note="hex"),
    Row("span_id", ("span_id",), "derived", derive=lambda c: c.span.span_id, note="hex"),
    Row("spans", ("the trace's other spans",), "derived", derive=_spans,
        note="name, span_id, parent_span_id, kind (see below), start_time, duration_ms, "
             "status, attributes"),
    Row("attributes", ("otlp.label_attributes",), "derived", derive=_labels,
        note="the listed span or resource attributes, as text"),
)  # fmt: skip
"""The v1 fields filled the same way whatever convention the span follows."""

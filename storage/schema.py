"""The harvest's Parquet schema: one explicit pyarrow schema, never inferred from rows.

A row is one :class:`~driftnet.harvest.records.FailureRecord`. The event's fields are top-level columns
(``service``, ``latency_ms``, ``usage.input_tokens``...) so SQL reads naturally; what the
contract leaves free-form stays queryable:

* ``attributes`` and ``scores`` are maps (``attributes.tenant``, ``scores.faithfulness`` in
  DuckDB). Attribute values that are not strings are stored as their JSON text.
* Message ``content`` is a string column when the producer sent a string; a list of parts is
  kept whole as JSON in ``content_json``.
* Fields a producer sent that the contract does not know (``model_extra``) are kept as JSON in
  the ``extra`` column of their level, so nothing a producer sent is lost.

Columns are only ever added (readers union files by column name); ``SCHEMA_VERSION`` is written
into each file's metadata and bumped when one is.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

import orjson
import pyarrow as pa
from pydantic import BaseModel

from driftnet.contract.content import Input, Output
from driftnet.harvest.records import FailureRecord

SCHEMA_VERSION: Final = "1"
METADATA_KEY: Final = b"driftnet.schema_version"

_TS = pa.timestamp("us", tz="UTC")
_JSON = pa.string()
"""JSON text. Plain strings rather than pyarrow's JSON extension type, which older readers
(and pyarrow.dataset scans) do not all understand; DuckDB reads it with ``json_extract``."""

MESSAGE = pa.struct(
    [
        ("role", pa.string()),
        ("content", pa.string()),
        ("content_json", _JSON),
        ("extra", _JSON),
    ]
)
REASON = pa.struct(
    [
        ("rule_id", pa.string()),
        ("message", pa.string()),
        ("subject", pa.string()),
        ("observed", pa.float64()),
        ("threshold", pa.float64()),
    ]
)
SPAN = pa.struct(
    [
        ("name", pa.string()),
        ("span_id", pa.string()),
        ("kind", pa.string()),
        ("start_time", _TS),
        ("duration_ms", pa.float64()),
        ("status", pa.string()),
        ("attributes", _JSON),
        ("extra", _JSON),
    ]
)

FAILURE_SCHEMA: Final = pa.schema(
    [
        # the record
        pa.field("record_id", pa.string(), nullable=False),
        pa.field("record_version", pa.string(), nullable=False),
        pa.field("kind", pa.string(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),  # the first reason's rule_id
        pa.field("reasons", pa.list_(REASON), nullable=False),
        pa.field("finding_id", pa.string()),
        pa.field("arm", pa.string()),
        pa.field("redacted", pa.bool_(), nullable=False),
        pa.field("detected_at", _TS, nullable=False),
        pa.field(
            "lineage",
            pa.struct(
                [
                    ("topic", pa.string()),
                    ("partition", pa.int32()),
                    ("offset", pa.int64()),
                    ("batch_index", pa.int32()),
                ]
            ),
            nullable=False,
        ),
        # the event: identity and cohort
        pa.field("event_id", pa.string(), nullable=False),
        pa.field("timestamp", _TS, nullable=False),
        pa.field("schema_version", pa.string()),
        pa.field("service", pa.string(), nullable=False),
        pa.field("environment", pa.string()),
        pa.field("release", pa.string()),
        pa.field("variant", pa.string()),
        pa.field("prompt_version", pa.string()),
        # model
        pa.field("provider", pa.string()),
        pa.field("operation", pa.string()),
        pa.field("request_model", pa.string()),
        pa.field("response_model", pa.string()),
        pa.field(
            "request",
            pa.struct(
                [
                    ("temperature", pa.float64()),
                    ("top_p", pa.float64()),
                    ("top_k", pa.float64()),
                    ("max_tokens", pa.int64()),
                    ("frequency_penalty", pa.float64()),
                    ("presence_penalty", pa.float64()),
                    ("seed", pa.int64()),
                    ("stop_sequences", pa.list_(pa.string())),
                    ("extra", _JSON),
                ]
            ),
        ),
        # content
        pa.field("input", pa.struct([("messages", pa.list_(MESSAGE)), ("extra", _JSON)])),
        pa.field(
            "output",
            pa.struct([("messages", pa.list_(MESSAGE)), ("text", pa.string()), ("extra", _JSON)]),
        ),
        pa.field("output_text", pa.string()),  # derived: the answer as plain text
        pa.field("finish_reasons", pa.list_(pa.string())),
        pa.field("output_type", pa.string()),
        # performance and cost
        pa.field("latency_ms", pa.float64()),
        pa.field("ttft_ms", pa.float64()),
        pa.field(
            "usage",
            pa.struct(
                [
                    ("input_tokens", pa.int64()),
                    ("output_tokens", pa.int64()),
                    ("cached_input_tokens", pa.int64()),
                    ("reasoning_tokens", pa.int64()),
                    ("extra", _JSON),
                ]
            ),
        ),
        pa.field("cost_usd", pa.float64()),
        # outcome
        pa.field("status", pa.string()),
        pa.field("error_type", pa.string()),
        pa.field("error_type_original", pa.string()),  # added later: NULL in older files
        pa.field("scores", pa.map_(pa.string(), pa.float64())),
        pa.field(
            "feedback",
            pa.struct([("rating", pa.float64()), ("comment", pa.string()), ("extra", _JSON)]),
        ),
        # trace
        pa.field("trace_id", pa.string()),
        pa.field("span_id", pa.string()),
        pa.field("spans", pa.list_(SPAN)),
        pa.field("attributes", pa.map_(pa.string(), pa.string())),
        pa.field("extra", _JSON),  # unknown top-level event fields
    ],
    metadata={METADATA_KEY: SCHEMA_VERSION.encode()},
)

_EVENT_COLUMNS: Final = (
    "event_id",
    "timestamp",
    "schema_version",
    "service",
    "environment",
    "release",
    "variant",
    "prompt_version",
    "provider",
    "operation",
    "request_model",
    "response_model",
    "finish_reasons",
    "output_type",
    "latency_ms",
    "ttft_ms",
    "cost_usd",
    "status",
    "error_type",
    "error_type_original",
    "trace_id",
    "span_id",
)


def _json(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def _extra(model: BaseModel) -> str | None:
    return _json(model.model_extra) if model.model_extra else None


def _loads(text: str | None) -> Any:
    return None if text is None else orjson.loads(text)


def _message(message: BaseModel) -> dict[str, Any]:
    content = getattr(message, "content", None)
    return {
        "role": getattr(message, "role", None),
        "content": content if isinstance(content, str) else None,
        "content_json": None if content is None or isinstance(content, str) else _json(content),
        "extra": _extra(message),
    }


def _plain(model: BaseModel, names: tuple[str, ...]) -> dict[str, Any]:
    row = {name: getattr(model, name) for name in names}
    row["extra"] = _extra(model)
    return row


def row_of(record: FailureRecord) -> dict[str, Any]:
    """The Parquet row of a failure record (a dict keyed by ``FAILURE_SCHEMA`` names)."""
    event = record.event
    lineage = record.lineage
    row: dict[str, Any] = {
        "record_id": record.record_id,
        "record_version": record.record_version,
        "kind": record.kind,
        "reason": record.reasons[0].rule_id if record.reasons else "",
        "reasons": [reason.model_dump() for reason in record.reasons],
        "finding_id": record.finding_id,
        "arm": record.arm,
        "redacted": record.redacted,
        "detected_at": record.detected_at,
        "lineage": {
            "topic": lineage.topic,
            "partition": lineage.partition,
            "offset": lineage.offset,
            "batch_index": lineage.batch_index,
        },
    }
    for name in _EVENT_COLUMNS:
        row[name] = getattr(event, name)
    row["request"] = _plain(event.request, tuple(type(event.request).model_fields))
    row["input"] = {
        "messages": _messages(event.input),
        "extra": _extra(event.input),
    }
    row["output"] = {
        "messages": _messages(event.output),
        "text": event.output.text,
        "extra": _extra(event.output),
    }
    row["output_text"] = event.output_text if event.output_captured else None
    row["usage"] = _plain(event.usage, tuple(type(event.usage).model_fields))
    row["scores"] = list(event.scores.items())
    row["feedback"] = (
        None if event.feedback is None else _plain(event.feedback, ("rating", "comment"))
    )
    row["spans"] = [
        {
            "name": span.name,
            "span_id": span.span_id,
            "kind": span.kind,
            "start_time": span.start_time,
            "duration_ms": span.duration_ms,
            "status": span.status,
            "attributes": _json(span.attributes) if span.attributes else None,
            "extra": _extra(span),
        }
        for span in event.spans
    ]
    row["attributes"] = [
        (key, value if isinstance(value, str) else _json(value))
        for key, value in event.attributes.items()
    ]
    row["extra"] = _extra(event)
    return row


def table_of(rows: list[dict[str, Any]]) -> pa.Table:
    """Rows (from :func:`row_of`) as a table of exactly ``FAILURE_SCHEMA``."""
    return pa.Table.from_pylist(rows, schema=FAILURE_SCHEMA)


# -- back from a row (``driftnet harvest show``, exports, the round-trip test) ------------------


def _unextra(fields: Mapping[str, Any] | None, *, drop_none: bool = True) -> dict[str, Any]:
    if fields is None:
        return {}
    out = {k: v for k, v in fields.items() if k != "extra" and not (drop_none and v is None)}
    out.update(_loads(fields.get("extra")) or {})
    return out


def _message_back(message: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"role": message["role"]}
    if message.get("content_json") is not None:
        out["content"] = _loads(message["content_json"])
    elif message.get("content") is not None:
        out["content"] = message["content"]
    out.update(_loads(message.get("extra")) or {})
    return out


def _messages(side: Input | Output) -> list[dict[str, Any]] | None:
    """A side's messages as rows; NULL when they were left out (absent is not empty)."""
    if "messages" not in side.model_fields_set:
        return None
    return [_message(m) for m in side.messages]


def _messages_back(rows: Any) -> dict[str, Any]:
    """``{"messages": [...]}``, or nothing when the column is NULL (left out, not empty)."""
    return {} if rows is None else {"messages": [_message_back(m) for m in rows]}


def _pairs(value: Any) -> dict[str, Any]:
    """A map column as Python gives it (a list of pairs, or a dict from DuckDB)."""
    return {} if value is None else dict(value)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def record_document(row: Mapping[str, Any]) -> dict[str, Any]:
    """A row as the failure record's JSON document (what the failures topic carried).

    ``FailureRecord.model_validate(record_document(row_of(r)))`` equals ``r``, except that
    non-string attribute values come back as their JSON text.
    """
    event: dict[str, Any] = {name: row.get(name) for name in _EVENT_COLUMNS}
    event["timestamp"] = _iso(row["timestamp"])
    event["request"] = _unextra(row.get("request"))
    given = row.get("input") or {}
    event["input"] = {
        **_messages_back(given.get("messages")),
        **(_loads(given.get("extra")) or {}),
    }
    output = row.get("output") or {}
    event["output"] = {
        **_messages_back(output.get("messages")),
        "text": output.get("text"),
        **(_loads(output.get("extra")) or {}),
    }
    event["usage"] = _unextra(row.get("usage"))
    event["scores"] = _pairs(row.get("scores"))
    event["feedback"] = None if row.get("feedback") is None else _unextra(row["feedback"])
    event["spans"] = [
        {
            **{k: v for k, v in span.items() if k not in ("attributes", "extra", "start_time")},
            "start_time": _iso(span.get("start_time")),
            "attributes": _loads(span.get("attributes")) or {},
            **(_loads(span.get("extra")) or {}),
        }
        for span in row.get("spans") or []
    ]
    event["attributes"] = _pairs(row.get("attributes"))
    event.update(_loads(row.get("extra")) or {})
    lineage = row["lineage"]
    return {
        "record_version": row["record_version"],
        "record_id": row["record_id"],
        "kind": row["kind"],
        "finding_id": row.get("finding_id"),
        "arm": row.get("arm"),
        "redacted": row.get("redacted", False),
        "reasons": [dict(reason) for reason in row.get("reasons") or []],
        "event": event,
        "lineage": dict(lineage),
        "detected_at": _iso(row["detected_at"]),
    }

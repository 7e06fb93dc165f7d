"""Bytes off the events topic -> valid events + dead letters. Pure; never raises.

A message is one event (a JSON object) or a batch (a JSON array of objects). Each element
is validated on its own, so one bad event in a batch dead-letters alone and the rest go on.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

import orjson
from pydantic import BaseModel, ConfigDict, ValidationError

from driftnet.contract import deep
from driftnet.contract.events import SCHEMA_VERSION, InferenceEvent, Lineage

PAYLOAD_CAP_BYTES = 64 * 1024
"""Dead letters keep at most this much of the original payload (its full size and hash too)."""
MAX_BATCH_EVENTS = 5_000
"""A batch with more elements is one dead letter (``batch_too_large``): otherwise a 1 MiB
array of numbers would cost half a million dead letters (and DLQ messages) and half a minute."""

DeadLetterReason = Literal[
    "empty_message",
    "invalid_json",
    "not_an_object",
    "empty_batch",
    "batch_too_large",
    "missing_field",
    "invalid_field",
    "unsupported_schema_version",
    "timestamp_out_of_range",
    "undecodable",
    "processing_failed",
    "invalid_record",
    "invalid_otlp",
    "unreadable_batch",
]


class DeadLetter(BaseModel):
    """A payload that is not a valid v1 event, with why and where it came from."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    reason: DeadLetterReason
    field: str | None = None
    """Dotted path of the offending field (``usage.input_tokens``, ``input.messages.0.role``)."""
    message: str
    lineage: Lineage
    last_offset: int | None = None
    """For an ``unreadable_batch``: the batch's last offset (``lineage.offset`` is its first)."""
    payload: bytes
    """The original bytes (the element's, for a batch), cut at the cap."""
    payload_size: int
    payload_sha256: str
    payload_truncated: bool

    @property
    def summary(self) -> str:
        """One line for logs and the console."""
        field = f" {self.field}:" if self.field else ""
        return f"{self.lineage} {self.reason}:{field} {self.message}"


class LocatedEvent(NamedTuple):
    """A valid event and exactly where it came from."""

    event: InferenceEvent
    lineage: Lineage


@dataclass(slots=True)
class Decoded:
    """What one message decoded to, in message order."""

    events: list[LocatedEvent] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)


def decode(
    payload: bytes | None,
    lineage: Lineage,
    *,
    payload_cap: int = PAYLOAD_CAP_BYTES,
    max_batch: int = MAX_BATCH_EVENTS,
) -> Decoded:
    """Decode one Kafka message value. Any bytes at all give events or dead letters."""
    result = Decoded()
    try:
        _decode_into(result, payload or b"", lineage, payload_cap, max_batch)
    except Exception as exc:  # last line of defence: a monitoring service never crashes
        result.events.clear()
        result.dead_letters = [
            make_dead_letter(
                "undecodable", f"{type(exc).__name__}: {exc}", payload or b"", lineage, payload_cap
            )
        ]
    return result


def _decode_into(
    result: Decoded, payload: bytes, lineage: Lineage, cap: int, max_batch: int
) -> None:
    if not payload.strip():
        result.dead_letters.append(
            make_dead_letter("empty_message", "message value is empty", payload, lineage, cap)
        )
        return
    lenient = False
    try:
        document = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        try:
            # NaN, Infinity and 1e400 are not JSON, but Python's json.dumps writes them. Parse
            # such a message leniently so that only the elements holding them are dead-lettered.
            document = json.loads(payload)
        except (ValueError, RecursionError):
            result.dead_letters.append(
                make_dead_letter("invalid_json", str(exc), payload, lineage, cap)
            )
            return
        lenient = True
    if isinstance(document, list):
        if len(document) > max_batch:
            message = f"batch of {len(document):,} elements, over the limit of {max_batch:,}"
            result.dead_letters.append(
                make_dead_letter("batch_too_large", message, payload, lineage, cap)
            )
            return
        if not document:
            result.dead_letters.append(
                make_dead_letter(
                    "empty_batch", "batch is an empty JSON array", payload, lineage, cap
                )
            )
        for index, element in enumerate(document):
            _validate_into(result, element, None, lineage.at(index), cap, lenient)
    else:
        _validate_into(result, document, payload, lineage, cap, lenient)


def _validate_into(
    result: Decoded,
    document: Any,
    payload: bytes | None,
    lineage: Lineage,
    cap: int,
    lenient: bool,
) -> None:
    """Validate one event; ``payload`` is its original bytes, None for a batch element."""
    problem = _precheck(document, lenient)
    if problem is None:
        try:
            result.events.append(LocatedEvent(InferenceEvent.model_validate(document), lineage))
            return
        except ValidationError as exc:
            problem = describe(exc)
    reason, message, path = problem
    original = payload if payload is not None else _dumps(document, lenient)
    result.dead_letters.append(
        make_dead_letter(reason, message, original, lineage, cap, field=path)
    )


Problem = tuple[DeadLetterReason, str, str | None]
"""(reason, message, field path) of a dead letter."""


def _precheck(document: Any, lenient: bool) -> Problem | None:
    """What must be refused before the model sees the document."""
    if lenient and (found := _unencodable_path(document)) is not None:
        path, value = found
        if isinstance(value, str):
            return "invalid_json", "a string holds a lone surrogate (not UTF-8)", path or None
        return "invalid_json", "NaN and Infinity are not JSON numbers", path or None
    if not isinstance(document, dict):
        kind = type(document).__name__ if document is not None else "null"
        return "not_an_object", f"expected a JSON object, got {kind}", None
    version = document.get("schema_version", SCHEMA_VERSION)
    if version not in (SCHEMA_VERSION, 1) or isinstance(version, bool):
        message = (
            f"schema_version {version!r} is not supported (this build reads {SCHEMA_VERSION!r})"
        )
        return "unsupported_schema_version", message, "schema_version"
    return None


def _unencodable_path(value: Any, path: str = "") -> tuple[str, Any] | None:
    """Dotted path ("" for the value itself) and value of the first thing in ``value`` that
    orjson refused and Python's json accepted: NaN or an infinite number, or a string (or a
    key) holding a lone surrogate such as ``"\\ud800"``, which no UTF-8 encoder can write."""
    if isinstance(value, float) and not math.isfinite(value):
        return path, value
    if isinstance(value, str):
        return (path, value) if _has_surrogate(value) else None
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        if isinstance(key, str) and _has_surrogate(key):
            key = key.encode("utf-8", "backslashreplace").decode()  # a path must be UTF-8
            return (f"{path}.{key}" if path else key), key
        here = f"{path}.{key}" if path else str(key)
        found = _unencodable_path(item, here)
        if found is not None:
            return found
    return None


def _has_surrogate(text: str) -> bool:
    if text.isascii():
        return False
    try:
        text.encode()
    except UnicodeEncodeError:
        return True
    return False


def _dumps(document: Any, lenient: bool) -> bytes:
    """Bytes of one element of a batch, for its dead letter (NaN kept as written when lenient).
    An element nested deeper than orjson writes (254 levels; it reads 1,024) is written by
    :func:`.deep.dumps`: it once made the whole message ``undecodable``, its valid events lost."""
    try:
        if lenient:  # ASCII escapes: a lone surrogate has no UTF-8 form
            return json.dumps(document).encode()
        return orjson.dumps(document)
    except (orjson.JSONEncodeError, RecursionError):
        return deep.dumps(document)


def describe(exc: ValidationError) -> Problem:
    """The first error as a problem; later ones are counted in the message."""
    errors = exc.errors(include_url=False, include_input=False)
    first = errors[0]
    path = ".".join(str(part) for part in first["loc"])
    reason: DeadLetterReason = "missing_field" if first["type"] == "missing" else "invalid_field"
    message = first["msg"]
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    return reason, message, path


def make_dead_letter(
    reason: DeadLetterReason,
    message: str,
    payload: bytes,
    lineage: Lineage,
    cap: int,
    *,
    field: str | None = None,
) -> DeadLetter:
    return DeadLetter(
        reason=reason,
        field=field,
        message=message,
        lineage=lineage,
        payload=payload[:cap],
        payload_size=len(payload),
        payload_sha256=hashlib.sha256(payload).hexdigest(),
        payload_truncated=len(payload) > cap,
    )

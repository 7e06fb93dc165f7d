"""Failure records: a failing call, every reason it failed, and where it came from.

The record schema is stable (``record_version`` "1"): later detectors add *kinds*; a field is
only ever added with a default, so older records still read. ``record_id`` is deterministic, so producing the same record twice (a replay, a
restarted worker) yields the same id and queries can count it once.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Final, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict

from driftnet.contract.events import InferenceEvent, Lineage

RECORD_VERSION: Final = "1"
MAX_EVENT_DEPTH: Final = 128
"""A record carries an event nested at most this many levels (the event object is level 1):
the record adds a level, and the sink's JSON reader (pydantic's) stops at 200, its writer at
255. A failing event nested deeper is a ``processing_failed`` dead letter instead."""

RecordKind = Literal["rule", "evidence", "regression", "drift"]
"""``rule``: a per-event rule fired. ``evidence``: an example kept to back a detector finding
or a canary verdict. ``regression``: an event of a release judged to have regressed.
``drift``: a call whose text is typical of a window whose texts drifted (a new topic, another
language or format), backing a text drift finding."""


class Reason(BaseModel):
    """One reason a call counts as a failure."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rule_id: str
    """The rule or detector that fired, e.g. ``latency_slo`` or ``score_threshold``."""
    message: str
    """One human sentence: what was observed against what was expected."""
    subject: str | None = None
    """What the rule looked at, when it has several: a score name, a finish reason, a phrase."""
    observed: float | None = None
    threshold: float | None = None


class FailureRecord(BaseModel):
    """A harvested failure: the full event, why it failed, and its lineage."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    record_version: Literal["1"] = RECORD_VERSION
    record_id: str
    kind: RecordKind
    finding_id: str | None = None
    """The finding or verdict that produced the record; None for ``rule`` records."""
    arm: str | None = None
    """``canary`` or ``baseline`` for evidence of a comparison; None otherwise."""
    reasons: tuple[Reason, ...]
    event: InferenceEvent
    redacted: bool = False
    """Whether personal data was masked in the event's content before the record was written."""
    lineage: Lineage
    detected_at: AwareDatetime


def record_id(
    event_id: str, kind: RecordKind, finding_id: str | None = None, arm: str | None = None
) -> str:
    """Deterministic id of a record: the same inputs always give the same 32 hex digits."""
    key = "\x1f".join((event_id, kind, finding_id or "", arm or ""))
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def rule_failure(
    event: InferenceEvent,
    reasons: list[Reason],
    lineage: Lineage,
    detected_at: datetime,
    *,
    redacted: bool = False,
) -> FailureRecord:
    """The record for an event that per-event rules flagged (``event`` already redacted when
    ``redacted``)."""
    return FailureRecord(
        record_id=record_id(event.event_id, "rule"),
        kind="rule",
        reasons=tuple(reasons),
        event=event,
        redacted=redacted,
        lineage=lineage,
        detected_at=detected_at,
    )

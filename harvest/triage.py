"""One message in, failure records and dead letters out: the per-message work of the worker.

Pure (no Kafka, no clock reads): ``driftnet check`` runs it over a file and ``driftnet worker``
over the events topic, so both say exactly the same thing about the same bytes.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pydantic_core import PydanticSerializationError

from driftnet.contract import deep
from driftnet.contract.decode import (
    MAX_BATCH_EVENTS,
    PAYLOAD_CAP_BYTES,
    DeadLetter,
    Decoded,
    decode,
    make_dead_letter,
)
from driftnet.contract.events import InferenceEvent, Lineage
from driftnet.harvest.records import MAX_EVENT_DEPTH, FailureRecord, Reason, rule_failure
from driftnet.harvest.redaction import RedactionSettings, Redactor
from driftnet.harvest.rules import FailureRules, RulesConfig


@dataclass(slots=True)
class Triaged:
    """What one message gave: how many valid events, which failed, which were dead letters."""

    events: int
    failures: list[FailureRecord]
    dead_letters: list[DeadLetter]
    encoded: list[bytes] = field(default_factory=list)
    """Each failure record as JSON, in ``failures`` order (when the triage encodes)."""
    judged: list[tuple[InferenceEvent, list[Reason]]] = field(default_factory=list)
    """Every valid event with the reasons it failed (none: healthy), when the triage keeps
    them (``keep_events``): what the windows aggregate."""


class Triage:
    """Decode a message and run the failure rules over each valid event.

    A failing event's content is redacted (``redaction``, on by default) before its failure
    record is built: nothing downstream -- the failures topic, the harvest -- sees what was
    masked.

    With ``record_max_bytes`` set, failure records are also encoded as JSON, and a record
    larger than that (a huge event could not travel as a Kafka message) becomes a
    ``processing_failed`` dead letter instead of a poison message for the producer. So does a
    failing event nested deeper than a record can carry (``MAX_EVENT_DEPTH``), whatever the
    encoding.
    """

    def __init__(
        self,
        rules: RulesConfig,
        *,
        payload_cap: int = PAYLOAD_CAP_BYTES,
        record_max_bytes: int | None = None,
        redaction: RedactionSettings | None = None,
        keep_events: bool = False,
        max_future_s: float | None = None,
        max_past_s: float | None = None,
        max_batch: int = MAX_BATCH_EVENTS,
    ) -> None:
        self._max_batch = max_batch
        self._keep_events = keep_events
        self._future = None if max_future_s is None else timedelta(seconds=max_future_s)
        self._past = None if max_past_s is None else timedelta(seconds=max_past_s)
        self._rules = FailureRules(rules)
        self._redactor = Redactor(redaction)  # does nothing when redaction is off
        self._payload_cap = payload_cap
        self._record_max_bytes = record_max_bytes

    def __call__(self, payload: bytes | None, lineage: Lineage, detected_at: datetime) -> Triaged:
        decoded = decode(payload, lineage, payload_cap=self._payload_cap, max_batch=self._max_batch)
        if self._future is not None or self._past is not None:
            self._bound_timestamps(decoded, payload, detected_at)
        result = Triaged(len(decoded.events), [], decoded.dead_letters)
        for event, event_lineage in decoded.events:
            try:
                reasons = self._rules.reasons(event)
                if self._keep_events:
                    result.judged.append((event, reasons))
                if reasons and _too_deep(event):
                    why = f"nested deeper than {MAX_EVENT_DEPTH} levels: no failure record can carry it"
                    self._dead(result, event, event_lineage, why)
                elif reasons:
                    kept, counts = self._redactor.redact_event(event)
                    record = rule_failure(
                        kept, reasons, event_lineage, detected_at, redacted=bool(counts)
                    )
                    self._keep(result, record)
            except Exception as exc:  # a bug in a rule must not stop the stream or lose the event
                self._dead(result, event, event_lineage, f"{type(exc).__name__}: {exc}")
        return result

    def _bound_timestamps(self, decoded: Decoded, payload: bytes | None, now: datetime) -> None:
        """Dead-letter the events whose timestamp is beyond the configured bounds."""
        latest = None if self._future is None else now + self._future
        earliest = None if self._past is None else now - self._past
        kept = []
        for located in decoded.events:
            stamp = located.event.timestamp
            if latest is not None and stamp > latest:
                why = f"{stamp.isoformat()} is {_ago(stamp - now)} ahead of the worker's clock"
                bound = self._future
            elif earliest is not None and stamp < earliest:
                why = f"{stamp.isoformat()} is {_ago(now - stamp)} behind the worker's clock"
                bound = self._past
            else:
                kept.append(located)
                continue
            assert bound is not None
            single = located.lineage.batch_index is None and payload is not None
            original = payload if single else event_bytes(located.event)
            decoded.dead_letters.append(
                make_dead_letter(
                    "timestamp_out_of_range",
                    f"{why} (the bound is {_ago(bound)})",
                    original or b"",
                    located.lineage,
                    self._payload_cap,
                    field="timestamp",
                )
            )
        decoded.events = kept

    def _keep(self, result: Triaged, record: FailureRecord) -> None:
        if self._record_max_bytes is None:
            result.failures.append(record)
            return
        value = record.model_dump_json().encode()
        if len(value) > self._record_max_bytes:
            message = (
                f"its failure record is {len(value):,} bytes, over the "
                f"{self._record_max_bytes:,}-byte message limit"
            )
            self._dead(result, record.event, record.lineage, message)
            return
        result.failures.append(record)
        result.encoded.append(value)

    def _dead(self, result: Triaged, event: InferenceEvent, lineage: Lineage, why: str) -> None:
        original = event_bytes(event)
        dead = make_dead_letter("processing_failed", why, original, lineage, self._payload_cap)
        result.dead_letters.append(dead)


@dataclass(slots=True)
class Tally:
    """Running counts: messages, valid events, failures by rule, dead letters by reason."""

    messages: int = 0
    events: int = 0
    failures: int = 0
    failures_by_rule: Counter[str] = field(default_factory=Counter)
    dead_letters_by_reason: Counter[str] = field(default_factory=Counter)

    def add(self, triaged: Triaged) -> None:
        self.messages += 1
        self.events += triaged.events
        self.failures += len(triaged.failures)
        for record in triaged.failures:
            self.failures_by_rule.update(reason.rule_id for reason in record.reasons)
        self.dead_letters_by_reason.update(d.reason for d in triaged.dead_letters)

    @property
    def dead_letters(self) -> int:
        return self.dead_letters_by_reason.total()

    def copy(self) -> Tally:
        return self - Tally()

    def __sub__(self, before: Tally) -> Tally:
        """What happened since ``before`` (an earlier copy of this tally)."""
        return Tally(
            self.messages - before.messages,
            self.events - before.events,
            self.failures - before.failures,
            self.failures_by_rule - before.failures_by_rule,
            self.dead_letters_by_reason - before.dead_letters_by_reason,
        )

    def summary(self) -> str:
        """``12 messages, 40 valid events, 3 failures, 2 dead letters``."""
        return (
            f"{self.messages} messages, {self.events} valid events, "
            f"{self.failures} failures, {self.dead_letters} dead letters"
        )

    def breakdown(self) -> list[str]:
        """Lines of counts by rule and by reason, most frequent first (none when zero)."""
        lines = []
        if self.failures_by_rule:
            lines.append("failures by rule: " + _counts(self.failures_by_rule))
        if self.dead_letters_by_reason:
            lines.append("dead letters by reason: " + _counts(self.dead_letters_by_reason))
        return lines


def _too_deep(event: InferenceEvent) -> bool:
    """Whether the event nests deeper than a failure record carries (only failing events are
    walked: the walk would cost the hot path a tenth of its rate)."""
    return deep.deeper_than(event.model_dump(mode="python"), MAX_EVENT_DEPTH)


def event_bytes(event: InferenceEvent) -> bytes:
    """The event as JSON, for a dead letter. One nested deeper than pydantic writes (255
    levels) is written by :func:`driftnet.contract.deep.dumps` (its times as ISO 8601)."""
    try:
        return event.model_dump_json().encode()
    except PydanticSerializationError:
        return deep.dumps(event.model_dump(mode="python"), default=_plain)


def _plain(value: object) -> object:
    """A leaf JSON cannot write, as JSON can: a time as ISO 8601, anything else as text."""
    return value.isoformat() if isinstance(value, datetime) else str(value)


def _ago(delta: timedelta) -> str:
    """``3 d 4 h``, ``10 min``, ``42 s``: a duration for a dead letter's message."""
    seconds = int(delta.total_seconds())
    if seconds >= 86_400:
        return f"{seconds // 86_400} d {seconds % 86_400 // 3600} h"
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min"
    if seconds >= 60:
        return f"{seconds // 60} min"
    return f"{seconds} s"


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{key} {count}" for key, count in counter.most_common())

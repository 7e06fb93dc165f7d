"""One message in, failure records and dead letters out: the per-message work of the worker.

Pure (no Kafka, no clock reads): ``driftnet check`` runs it over a file and ``driftnet worker``
over the events topic, so both say exactly the same thing about the same bytes.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from harvest.records import FailureRecord, rule_failure
from harvest.rules import FailureRules, RulesConfig
from streams.decode import PAYLOAD_CAP_BYTES, DeadLetter, decode, make_dead_letter
from streams.events import Lineage


@dataclass(slots=True)
class Triaged:
    """What one message gave: how many valid events, which failed, which were dead letters."""

    events: int
    failures: list[FailureRecord]
    dead_letters: list[DeadLetter]


class Triage:
    """Decode a message and run the failure rules over each valid event."""

    def __init__(self, rules: RulesConfig, *, payload_cap: int = PAYLOAD_CAP_BYTES) -> None:
        self._rules = FailureRules(rules)
        self._payload_cap = payload_cap

    def __call__(self, payload: bytes | None, lineage: Lineage, detected_at: datetime) -> Triaged:
        decoded = decode(payload, lineage, payload_cap=self._payload_cap)
        failures = []
        dead_letters = decoded.dead_letters
        for event, event_lineage in decoded.events:
            try:
                reasons = self._rules.reasons(event)
                if reasons:
                    failures.append(rule_failure(event, reasons, event_lineage, detected_at))
            except Exception as exc:  # a bug in a rule must not stop the stream or lose the event
                dead_letters.append(
                    make_dead_letter(
                        "processing_failed",
                        f"{type(exc).__name__}: {exc}",
                        event.model_dump_json().encode(),
                        event_lineage,
                        self._payload_cap,
                    )
                )
        return Triaged(len(decoded.events), failures, dead_letters)


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
        return Tally(
            self.messages,
            self.events,
            self.failures,
            Counter(self.failures_by_rule),
            Counter(self.dead_letters_by_reason),
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


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{key} {count}" for key, count in counter.most_common())

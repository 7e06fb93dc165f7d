"""Run the decoder and the failure rules over a JSON-lines file: no broker needed.

Each line stands for one Kafka message; its lineage is (file name, partition 0, line number).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from harvest.records import FailureRecord, rule_failure
from harvest.rules import FailureRules
from streams.decode import DeadLetter, decode
from streams.events import Lineage
from streams.settings import Settings


@dataclass(slots=True)
class CheckReport:
    """Failures and dead letters found in a file, in file order."""

    source: str
    messages: int = 0
    events: int = 0
    items: list[FailureRecord | DeadLetter] = field(default_factory=list)

    @property
    def failures(self) -> list[FailureRecord]:
        return [item for item in self.items if isinstance(item, FailureRecord)]

    @property
    def dead_letters(self) -> list[DeadLetter]:
        return [item for item in self.items if isinstance(item, DeadLetter)]

    def render(self) -> Iterator[str]:
        """Human-readable lines: each failure with its reasons, each dead letter, a summary."""
        for item in self.items:
            if isinstance(item, FailureRecord):
                event = item.event
                yield (
                    f"FAILED {event.event_id}  {event.service} {event.environment} "
                    f"release={event.release} variant={event.variant}  ({item.lineage})"
                )
                for reason in item.reasons:
                    yield f"    {reason.rule_id:<18} {reason.message}"
            else:
                yield f"DEAD   {item.summary}"
        rules = Counter(r.rule_id for f in self.failures for r in f.reasons)
        dead = Counter(d.reason for d in self.dead_letters)
        yield ""
        yield (
            f"{self.source}: {self.messages} messages, {self.events} valid events, "
            f"{len(self.failures)} failures, {len(self.dead_letters)} dead letters"
        )
        if rules:
            yield "  failures by rule:     " + ", ".join(f"{k} {v}" for k, v in rules.most_common())
        if dead:
            yield "  dead letters by reason: " + ", ".join(
                f"{k} {v}" for k, v in dead.most_common()
            )


def check_lines(
    lines: Iterable[bytes], source: str, settings: Settings, *, detected_at: datetime
) -> CheckReport:
    """Decode every non-blank line and apply the failure rules to every valid event."""
    rules = FailureRules(settings.rules)
    report = CheckReport(source=source)
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        report.messages += 1
        decoded = decode(
            line.rstrip(b"\r\n"),
            Lineage(topic=source, partition=0, offset=number),
            payload_cap=settings.decode.payload_cap_bytes,
        )
        report.events += len(decoded.events)
        for event, lineage in decoded.events:
            reasons = rules.reasons(event)
            if reasons:
                report.items.append(rule_failure(event, reasons, lineage, detected_at))
        report.items.extend(decoded.dead_letters)
    return report

"""Run the decoder and the failure rules over a JSON-lines file: no broker needed.

Each line stands for one Kafka message; its lineage is (file name, partition 0, line number).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from driftnet.contract.decode import DeadLetter
from driftnet.contract.events import Lineage
from driftnet.harvest.records import FailureRecord
from driftnet.harvest.triage import Tally, Triage
from driftnet.streams.settings import Settings


@dataclass(slots=True)
class CheckReport:
    """Failures and dead letters found in a file, in file order."""

    source: str
    tally: Tally = field(default_factory=Tally)
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
        yield ""
        yield f"{self.source}: {self.tally.summary()}"
        for line in self.tally.breakdown():
            yield f"  {line}"


def check_lines(
    lines: Iterable[bytes], source: str, settings: Settings, *, detected_at: datetime
) -> CheckReport:
    """Decode every non-blank line and apply the failure rules to every valid event."""
    triage = Triage(
        settings.rules,
        payload_cap=settings.decode.payload_cap_bytes,
        redaction=settings.harvest.redaction,
        max_future_s=settings.decode.max_future_s,
        max_past_s=settings.decode.max_past_s,
        max_batch=settings.decode.max_batch_events,
    )
    report = CheckReport(source=source)
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        triaged = triage(
            line.rstrip(b"\r\n"), Lineage(topic=source, partition=0, offset=number), detected_at
        )
        report.tally.add(triaged)
        report.items.extend(triaged.failures)
        report.items.extend(triaged.dead_letters)
    return report

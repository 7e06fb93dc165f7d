"""The worker's running counts and the lines its periodic log report makes of them."""

from __future__ import annotations

import logging
import time
from collections import Counter
from typing import TYPE_CHECKING

from driftnet.harvest.triage import Tally

if TYPE_CHECKING:
    from driftnet.contract.decode import DeadLetter
    from driftnet.ingest.spans_to_events import OtlpTally
    from driftnet.streams.intake.unreadable import UnreadableBatch

log = logging.getLogger("driftnet.worker")


class Counters:
    """The worker's tally and what was last reported, for the periodic log line."""

    def __init__(self) -> None:
        self.total = Tally()
        self._reported = Tally()
        self._reported_at = time.monotonic()
        self.started_at = self._reported_at
        self.otlp: OtlpTally | None = None
        """The OTLP ingest's tally, when it runs."""
        self._otlp_reported = (0, 0)
        self.unreadable_batches: Counter[str] = Counter()
        """Record batches skipped as unreadable, by topic (:mod:`driftnet.streams.intake.unreadable`)."""

    def unreadable(self, batch: UnreadableBatch) -> DeadLetter:
        """Count and log a record batch the consumer could not read; its dead letter."""
        self.unreadable_batches[batch.topic] += 1
        log.error("%s", batch.describe())
        return batch.dead_letter()

    def report(self) -> list[str]:
        """Lines for the log: what happened since the last report, then the totals; nothing
        when no message came in since (an OTLP message alone gives its ingest's totals)."""
        now = time.monotonic()
        elapsed = max(now - self._reported_at, 1e-9)
        delta = self.total - self._reported
        otlp = self._otlp_lines()
        if not delta.messages:
            return otlp
        self._reported = self.total.copy()
        self._reported_at = now
        head = f"last {elapsed:.0f} s: {delta.summary()} ({delta.events / elapsed:,.0f} events/s)"
        return [
            head,
            *(f"  {line}" for line in delta.breakdown()),
            *otlp,
            f"  total: {self.total.summary()}",
        ]

    def _otlp_lines(self) -> list[str]:
        otlp = self.otlp
        if otlp is None or (otlp.messages, otlp.dead_letters) == self._otlp_reported:
            return []
        self._otlp_reported = (otlp.messages, otlp.dead_letters)
        lines = [f"  otlp total: {otlp.summary()}"]
        if otlp.dead_letters_by_reason:
            reasons = ", ".join(f"{k} {n}" for k, n in otlp.dead_letters_by_reason.most_common())
            lines.append(f"  otlp dead letters by reason: {reasons}")
        return lines

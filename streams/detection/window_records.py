"""The failure records a closed window gives: the evidence behind its findings and the
regression pack of a canary's verdict, made from the examples the window kept."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Final

from driftnet.contract.events import InferenceEvent, Lineage
from driftnet.detectors.canary.examples import RegressionPack
from driftnet.detectors.canary.reasons import describe
from driftnet.detectors.canary.verdict import JUDGE, Verdict
from driftnet.detectors.finding import Finding
from driftnet.detectors.windowing.merge import ClosedWindow
from driftnet.detectors.windowing.samples import Example
from driftnet.harvest.records import FailureRecord, Reason, RecordKind, record_id

REDACTION_MARK: Final = "[REDACTED:"
UNKNOWN: Final = -1
"""Lineage partition/offset of evidence: examples are kept by the window, not by offset."""


class WindowRecords:
    """Failure records of a closed window's examples, their lineage the events topic."""

    def __init__(self, events_topic: str) -> None:
        self.events_topic = events_topic

    def regressions(
        self, verdict: Verdict, packs: tuple[RegressionPack, ...], at: datetime
    ) -> list[FailureRecord]:
        """The regression pack of a verdict: one record per (event, arm), with a reason per
        failing metric it was kept for."""
        chosen: dict[tuple[str, str], tuple[Example, list[Reason]]] = {}
        for pack in packs:
            metric = pack.metric
            sentence = describe(metric)
            for arm, examples in (("canary", pack.canary), ("baseline", pack.baseline)):
                values = metric.cumulative
                reason = Reason(
                    rule_id=JUDGE,
                    message=(
                        sentence
                        if arm == "canary"
                        else f"baseline request of the same input size, for: {sentence}"
                    ),
                    subject=metric.metric,
                    observed=values.canary if arm == "canary" else values.baseline,
                    threshold=values.baseline if arm == "canary" else None,
                )
                for example in examples:
                    entry = chosen.setdefault((example.event_id, arm), (example, []))
                    entry[1].append(reason)
        records = []
        for (_, arm), (example, reasons) in chosen.items():
            record = self._record(example, "regression", verdict.verdict_id, arm, reasons, at)
            if record is not None:
                records.append(record)
        return records

    def _record(
        self,
        example: Example,
        kind: RecordKind,
        finding_id: str,
        arm: str | None,
        reasons: list[Reason],
        at: datetime,
    ) -> FailureRecord | None:
        """The failure record of a kept example (None when it no longer parses)."""
        try:
            event = InferenceEvent.model_validate_json(example.raw)
        except ValueError:
            return None  # an example the map side kept is valid; a corrupted one is skipped
        return FailureRecord(
            record_id=record_id(event.event_id, kind, finding_id, arm),
            kind=kind,
            finding_id=finding_id,
            arm=arm,
            reasons=tuple(reasons),
            event=event,
            redacted=REDACTION_MARK in example.raw,  # examples are redacted on the map side
            lineage=Lineage(self.events_topic, UNKNOWN, UNKNOWN),
            detected_at=at,
        )

    def evidence(self, finding: Finding, closed: ClosedWindow, at: datetime) -> list[FailureRecord]:
        """The ``evidence`` records of a finding: its example events, from the closed window."""
        if finding.example_kind is None or not finding.example_event_ids:
            return []
        examples = closed.aggregate.examples.of(finding.example_kind)
        return self._backing(finding, "evidence", examples, at)

    def drift_evidence(
        self, finding: Finding, examples: Sequence[tuple[str, bytes]], at: datetime
    ) -> list[FailureRecord]:
        """The ``drift`` records of a text drift finding: its example events, from the
        window's kept records (``examples``: event id and zlib-compressed JSON)."""
        kept = [Example(0.0, event_id, packed) for event_id, packed in examples]
        return self._backing(finding, "drift", kept, at)

    def _backing(
        self, finding: Finding, kind: RecordKind, examples: Sequence[Example], at: datetime
    ) -> list[FailureRecord]:
        wanted = set(finding.example_event_ids)
        reason = Reason(
            rule_id=finding.detector,
            message=finding.message,
            subject=finding.metric,
            observed=finding.observed,
            threshold=finding.threshold,
        )
        records = [
            self._record(example, kind, finding.finding_id, None, [reason], at)
            for example in examples
            if example.event_id in wanted
        ]
        return [r for r in records if r is not None]

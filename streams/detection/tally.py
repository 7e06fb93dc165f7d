"""What the detection stages did, counted for the worker's periodic report and ``/metrics``."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass(slots=True)
class DetectionTally:
    """What the detection stages did (for the worker's reports)."""

    windows: int = 0
    findings: Counter[str] = field(default_factory=Counter)
    verdicts: Counter[str] = field(default_factory=Counter)
    evidence: int = 0
    regressions: int = 0
    late_partials: int = 0
    bad_aggregates: int = 0
    drift_evidence: int = 0
    """Records backing text drift findings (``drift``)."""
    without_text: int = 0
    """Windows with calls but no text sampled: text drift cannot judge them."""

    def copy(self) -> DetectionTally:
        return DetectionTally(
            self.windows,
            Counter(self.findings),
            Counter(self.verdicts),
            self.evidence,
            self.regressions,
            self.late_partials,
            self.bad_aggregates,
            self.drift_evidence,
            self.without_text,
        )

    def lines(self, since: DetectionTally, late_events: int) -> list[str]:
        windows = self.windows - since.windows
        if not windows and not late_events:
            return []
        findings = self.findings - since.findings
        text = f"windows closed {windows}, findings {findings.total()}, late events {late_events}"
        for label, count in (
            ("evidence records", self.evidence - since.evidence),
            ("regression records", self.regressions - since.regressions),
            ("drift records", self.drift_evidence - since.drift_evidence),
            (
                "windows without text (text drift cannot judge)",
                self.without_text - since.without_text,
            ),
            ("late partials", self.late_partials - since.late_partials),
            ("unreadable aggregates", self.bad_aggregates - since.bad_aggregates),
        ):
            if count:
                text += f", {label} {count}"
        lines = [text]
        if findings:
            lines.append(
                "findings by detector: "
                + ", ".join(f"{name} {n}" for name, n in findings.most_common())
            )
        verdicts = self.verdicts - since.verdicts
        if verdicts:
            lines.append(
                "canary verdicts: " + ", ".join(f"{name} {n}" for name, n in verdicts.most_common())
            )
        return lines

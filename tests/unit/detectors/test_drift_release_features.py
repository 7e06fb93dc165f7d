"""A canary runs another model by design: drift against its baseline ignores the response
model, while the same change against the cohort's own past still counts."""

from __future__ import annotations

import random

from driftnet.detectors.families.drift import DriftDetector
from driftnet.detectors.settings import AggregateSettings
from driftnet.detectors.windowing.observation import Cohort, Observation
from driftnet.detectors.windowing.partials import Partial
from driftnet.detectors.windowing.windows import Window

BASELINE: Cohort = ("chat", "production", "gpt-4o+v7", "baseline")
CANARY: Cohort = ("chat", "production", "gpt-4.1+v8", "canary")


def window(cohort: Cohort, start: int, model: str, rng: random.Random) -> Partial:
    partial = Partial.empty(cohort, Window(start, start + 60), "events/0", AggregateSettings())
    for i in range(300):
        partial.add(
            Observation(
                f"{cohort[3]}-{start}-{i}",
                start + i * 0.2,
                cohort,
                latency_ms=rng.lognormvariate(6.7, 0.25),
                input_tokens=round(rng.lognormvariate(6.5, 0.4)),
                output_tokens=round(rng.lognormvariate(5.0, 0.4)),
                finish_reason="stop",
                response_model=model,
            )
        )
    return partial


def test_response_model_is_not_drift_against_the_baseline() -> None:
    """Same traffic, other model: no drift finding against the baseline window."""
    rng = random.Random(3)
    detector = DriftDetector()
    findings = detector.update(
        window(CANARY, 0, "gpt-4.1", rng), window(BASELINE, 0, "gpt-4o", rng)
    ).findings
    assert not [f for f in findings if f.metric == "drift[response_model]"]


def test_response_model_change_against_its_own_past_is_drift() -> None:
    """The model a cohort answers from changing under it is drift (trailing reference)."""
    rng = random.Random(4)
    detector = DriftDetector()
    for start in range(0, 600, 60):
        detector.update(window(BASELINE, start, "gpt-4o", rng))
    findings = detector.update(window(BASELINE, 600, "gpt-4o-mini", rng)).findings
    assert [f.reference_kind for f in findings if f.metric == "drift[response_model]"] == [
        "trailing"
    ]

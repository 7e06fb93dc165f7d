"""The canary judge on the simulator's scenarios, through both aggregation stages and the
failure rules (no broker): each scenario gets the verdict a deploy system should act on."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from driftnet.detectors.canary.verdict import Verdict
from driftnet.detectors.config import DetectorsConfig
from driftnet.sandbox.simulation import SCENARIOS, ScenarioName, Simulator
from tests.support.stages import run_stages

START = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
SERVICES = {"support-chat", "search-summarizer", "invoice-extractor"}


def verdicts(scenario: ScenarioName, seed: int = 2) -> dict[str, list[Verdict]]:
    """Each service's canary verdicts, window by window, for 20 minutes of the scenario."""
    simulator = Simulator(SCENARIOS[scenario], START, duration_s=1200, seed=seed)
    judged = run_stages(simulator.events(15_000), DetectorsConfig())
    by_service: dict[str, list[Verdict]] = {}
    for item in judged:
        if item.verdict is not None:
            by_service.setdefault(item.verdict.service, []).append(item.verdict)
    return by_service


@pytest.mark.parametrize("seed", [1, 2])
def test_a_healthy_canary_is_never_failed(seed: int) -> None:
    """healthy: the canary runs another model version that behaves the same: never a Fail,
    and Pass once it has enough traffic."""
    found = verdicts("healthy", seed)
    assert set(found) == SERVICES
    for service, series in found.items():
        assert [v for v in series if v.verdict in ("Fail", "Marginal")] == [], service
        assert series[-1].verdict == "Pass", (service, series[-1].reasons)
        assert series[-1].recommendation == "promote"


def test_a_worse_canary_fails_on_quality() -> None:
    """canary-quality: from 40% in, the canary refuses more, scores lower, is rated worse --
    each of the three metrics fails, and the critical score makes it a Fail."""
    for service, series in verdicts("canary-quality").items():
        last = series[-1]
        assert last.verdict == "Fail", service
        failing = {m.metric for m in last.failing}
        assert {"refusal_rate", "negative_feedback_rate", "score.faithfulness"} <= failing
        assert last.metric("score.faithfulness").classification == "Low"
        assert last.reasons[0].startswith("critical metric score.faithfulness Low")


def test_a_costlier_canary_fails_on_cost_and_latency() -> None:
    """cost-spike: the canary answers at 3x the length -- output tokens and cost per request
    are High, and so is latency (it grows with the output)."""
    for service, series in verdicts("cost-spike").items():
        last = series[-1]
        failing = {m.metric for m in last.failing}
        assert {"output_tokens", "cost_per_request", "latency_p95"} <= failing, service
        assert last.verdict == "Fail"
        assert last.score is not None
        assert last.score < 75


@pytest.mark.parametrize("scenario", ["error-burst", "provider-outage"])
def test_an_incident_shared_with_the_baseline_is_not_the_canary_s_fault(
    scenario: ScenarioName,
) -> None:
    """error-burst, provider-outage: baseline and canary fail alike; compared in the same
    window, the canary is no worse -- never failed (the per-cohort detectors report the
    incident itself)."""
    for service, series in verdicts(scenario).items():
        assert [v.reasons for v in series if v.verdict == "Fail"] == [], service

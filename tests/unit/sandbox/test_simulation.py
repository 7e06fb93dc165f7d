"""The simulator: valid, reproducible events whose scenarios change exactly what they say, when
they say, to whom they say; and the ``driftnet simulate`` command."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from driftnet.cli.main import cli
from driftnet.contract.events import InferenceEvent
from driftnet.sandbox.simulation import SCENARIOS, ScenarioName, Simulator

START = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
DURATION = 1800.0


def events_of(name: ScenarioName, count: int = 12_000, seed: int = 5) -> list[dict[str, Any]]:
    return list(Simulator(SCENARIOS[name], START, DURATION, seed=seed).events(count))


def _phase(event: dict[str, Any], scenario: ScenarioName) -> str:
    progress = (
        datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00")) - START
    ).total_seconds() / DURATION
    s = SCENARIOS[scenario]
    return "during" if s.incident_at <= progress < s.incident_until else "outside"


def _select(
    events: list[dict[str, Any]], scenario: ScenarioName, **match: str
) -> dict[str, list[dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = {"during": [], "outside": []}
    for event in events:
        if all(event.get(k) == v for k, v in match.items()):
            groups[_phase(event, scenario)].append(event)
    return groups


def _median(events: list[dict[str, Any]], value: Callable[[dict[str, Any]], float]) -> float:
    return statistics.median(value(e) for e in events if e["status"] == "ok")


def _rate(events: list[dict[str, Any]], test: Callable[[dict[str, Any]], bool]) -> float:
    return sum(map(test, events)) / len(events)


def test_events_are_valid_v1_and_reproducible() -> None:
    """Every event validates against the contract; the same seed gives the same events and
    another seed other ones."""
    first = events_of("healthy", 3_000)
    for event in first:
        InferenceEvent.model_validate(event)
    assert first == events_of("healthy", 3_000)
    assert first != events_of("healthy", 3_000, seed=6)
    assert {e["service"] for e in first} == {
        "support-chat",
        "search-summarizer",
        "invoice-extractor",
    }
    assert len({e["attributes"]["tenant"] for e in first}) == 6
    assert 0.2 < _rate(first, lambda e: e["variant"] == "canary") < 0.3
    times = [e["timestamp"] for e in first]
    assert times == sorted(times)


@pytest.mark.parametrize(
    ("scenario", "match", "metric", "during_over_outside"),
    [
        ("canary-latency", {"variant": "canary"}, lambda e: e["latency_ms"], (1.6, 2.0)),
        ("canary-latency", {"variant": "baseline"}, lambda e: e["latency_ms"], (0.9, 1.1)),
        ("cost-spike", {"variant": "canary"}, lambda e: e["usage"]["output_tokens"], (2.6, 3.4)),
        ("input-drift", {"service": "search-summarizer"}, lambda e: e["usage"]["input_tokens"], (2.1, 2.9)),
        ("input-drift", {"service": "support-chat"}, lambda e: e["usage"]["input_tokens"], (0.85, 1.15)),
    ],
    ids=["canary-latency-canary", "canary-latency-baseline", "cost-spike-canary",
         "input-drift-summarizer", "input-drift-others"],
)  # fmt: skip
def test_scenario_moves_medians_only_where_and_when_it_says(
    scenario: ScenarioName,
    match: dict[str, str],
    metric: Callable[[dict[str, Any]], float],
    during_over_outside: tuple[float, float],
) -> None:
    """A scenario's median change is there during its incident for its target, and only there."""
    groups = _select(events_of(scenario), scenario, **match)
    ratio = _median(groups["during"], metric) / _median(groups["outside"], metric)
    low, high = during_over_outside
    assert low < ratio < high


def test_quality_error_and_outage_scenarios_change_rates() -> None:
    """canary-quality raises the canary's refusals and lowers its scores; error-burst fails a
    quarter of support-chat during the burst only; provider-outage fails anthropic's calls."""
    quality = _select(events_of("canary-quality"), "canary-quality", variant="canary")
    refusing = lambda e: "can't help" in str(e.get("output"))  # noqa: E731
    assert _rate(quality["during"], refusing) > 0.05 > _rate(quality["outside"], refusing)
    score = lambda e: e["scores"]["faithfulness"]  # noqa: E731
    assert _median(quality["during"], score) < _median(quality["outside"], score) - 0.15

    failing = lambda e: e["status"] == "error"  # noqa: E731
    burst = _select(events_of("error-burst"), "error-burst", service="support-chat")
    assert 0.2 < _rate(burst["during"], failing) < 0.3
    assert _rate(burst["outside"], failing) < 0.03
    outage = events_of("provider-outage")
    anthropic = _select(outage, "provider-outage", provider="anthropic")
    openai = _select(outage, "provider-outage", provider="openai")
    assert _rate(anthropic["during"], failing) > 0.9
    assert _rate(openai["during"], failing) < 0.03


def test_the_demo_scenario_tells_its_story_in_phases() -> None:
    """demo: support-chat's canary is 80% slower from 30% to 55% of the time, then rolled back
    (no canary calls, the baseline takes them); search-summarizer's canary gets worse from 55%
    on; invoice-extractor's canary stays healthy throughout."""
    events = list(Simulator(SCENARIOS["demo"], START, DURATION, seed=5).events(12_000))

    def phase(event: dict[str, Any]) -> int:
        moment = datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00"))
        progress = (moment - START).total_seconds() / DURATION
        return 0 if progress < 0.3 else 1 if progress < 0.55 else 2

    def of(service: str, variant: str, when: int) -> list[dict[str, Any]]:
        return [e for e in events
                if e["service"] == service and e["variant"] == variant and phase(e) == when]  # fmt: skip

    latency = lambda e: e["latency_ms"]  # noqa: E731
    slow = _median(of("support-chat", "canary", 1), latency)
    assert 1.6 < slow / _median(of("support-chat", "canary", 0), latency) < 2.0
    assert of("support-chat", "canary", 2) == []
    assert len(of("support-chat", "baseline", 2)) > 1.2 * len(of("support-chat", "baseline", 0))
    refusing = lambda e: "can't help" in str(e.get("output"))  # noqa: E731
    assert _rate(of("search-summarizer", "canary", 2), refusing) > 0.05
    assert _rate(of("search-summarizer", "canary", 1), refusing) < 0.03
    for when in (0, 1, 2):
        extractor = _median(of("invoice-extractor", "canary", when), latency)
        assert 0.85 < extractor / _median(of("invoice-extractor", "baseline", when), latency) < 1.15


def test_healthy_canary_matches_its_baseline() -> None:
    """In the healthy scenario the canary's latency and error rate match the baseline's."""
    events = events_of("healthy")
    canary = [e for e in events if e["variant"] == "canary"]
    baseline = [e for e in events if e["variant"] == "baseline"]
    latency = lambda e: e["latency_ms"]  # noqa: E731
    assert 0.9 < _median(canary, latency) / _median(baseline, latency) < 1.1


def test_simulate_writes_a_compressed_scenario(tmp_path: Path) -> None:
    """``--speedup 60`` plays 30 minutes of event time in rate x 30 s events, from --start."""
    out = tmp_path / "sim.jsonl"
    result = CliRunner().invoke(
        cli,
        ["simulate", "--scenario", "canary-latency", "--duration", "30m", "--speedup", "60",
         "--rate", "100", "--start", "2026-11-25T09:00:00Z", "--seed", "1", "-o", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    events = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert len(events) == 3_000
    assert events[0]["timestamp"].startswith("2026-11-25T09:00:")
    assert events[-1]["timestamp"].startswith("2026-11-25T09:29:")
    assert "wrote 3,000 canary-latency events" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--duration", "soon"], "'soon' is not a duration"),
        (["--scenario", "meteor"], "'meteor' is not a scenario"),
        (["--speedup", "0.5"], "0.5 is not in the range x>=1.0"),
    ],
    ids=["bad-duration", "unknown-scenario", "slowdown"],
)
def test_simulate_refuses_bad_options_in_one_line(args: list[str], message: str) -> None:
    """A bad option is a usage error naming it, never a traceback."""
    result = CliRunner().invoke(cli, ["simulate", "-o", "-", *args])
    assert result.exit_code == 2
    [line] = result.output.splitlines()
    assert line.startswith(f"Error: {args[0]} ")
    assert message in line

"""Events become observations: the bridge between the contract and the detectors."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson

from driftnet.contract.events import InferenceEvent
from driftnet.detectors.windowing.partials import Partial
from driftnet.detectors.windowing.windows import Window
from driftnet.harvest.rules import FailureRules, RulesConfig, RuleSettings, ScoreThreshold
from driftnet.streams.detection.observations import observation_of
from tests.support.factories import make_event

RULES = FailureRules(
    RulesConfig(defaults=RuleSettings(scores={"faithfulness": ScoreThreshold(threshold=0.5)}))
)


def _observe(**overrides: object) -> tuple[InferenceEvent, bytes]:
    document = make_event(**overrides)
    return InferenceEvent.model_validate(document), orjson.dumps(document)


def test_a_healthy_event_carries_its_measurements() -> None:
    """Identity, cohort, timings, usage, cost, scores and the raw JSON come across as sent."""
    event, raw = _observe()
    obs = observation_of(event, RULES.reasons(event), raw, attributes=("tenant",))
    assert obs.event_id == "evt-1"
    assert obs.event_time == datetime(2026, 11, 25, 12, tzinfo=UTC).timestamp()
    assert obs.cohort == ("support-chat", "production", "gpt-4o+prompt-v7", "baseline")
    assert (obs.latency_ms, obs.ttft_ms, obs.input_tokens, obs.output_tokens) == (
        820.0,
        210.0,
        120,
        40,
    )
    assert (obs.cost_usd, obs.scores, obs.finish_reason) == (0.0012, {"faithfulness": 0.93}, "stop")
    assert obs.input_chars == len("Where is my order?")
    assert obs.attributes == {"tenant": "acme"}
    assert obs.raw == raw
    assert not obs.failed


def test_rule_reasons_become_flags_and_breaches() -> None:
    """Each failure rule sets its flag; a score breach names the score."""
    event, raw = _observe(
        output={"text": "I'm sorry, but I can't help with that."},
        finish_reasons=["length"],
        scores={"faithfulness": 0.2},
        feedback={"rating": -1},
    )
    obs = observation_of(event, RULES.reasons(event), raw)
    assert (obs.refusal, obs.truncated, obs.negative_feedback) == (True, True, True)
    assert obs.score_breaches == ("faithfulness",)
    assert obs.feedback_rating == -1
    assert not obs.is_error


def test_errors_and_empty_outputs() -> None:
    """status error is an error even when its rule is switched off; an empty answer is empty."""
    event, raw = _observe(status="error", error_type="timeout", output={"text": ""})
    obs = observation_of(event, [], raw)
    assert obs.is_error
    ok, ok_raw = _observe(output={"text": "  "})
    assert observation_of(ok, RULES.reasons(ok), ok_raw).empty


def test_missing_cost_is_left_for_the_price_table_and_the_model_named() -> None:
    """No cost_usd: None, with the model to price by (response model, else request model)."""
    document = make_event(response_model="gpt-4o-2024-08-06")
    del document["cost_usd"]
    event = InferenceEvent.model_validate(document)
    obs = observation_of(event, [], b"{}")
    assert (obs.cost_usd, obs.model) == (None, "gpt-4o-2024-08-06")


def test_attributes_are_short_scalar_labels() -> None:
    """Only chosen scalar attributes are kept, cut to 64 characters."""
    event, raw = _observe(attributes={"locale": "x" * 100, "nested": {"a": 1}, "tier": 3})
    obs = observation_of(event, [], raw, attributes=("locale", "nested", "tier", "absent"))
    assert obs.attributes == {"locale": "x" * 64, "tier": "3"}


def test_an_observation_feeds_a_partial_with_its_evidence() -> None:
    """End to end: event -> observation -> partial, the failing event kept with its JSON."""
    event, raw = _observe(status="error", error_type="timeout")
    obs = observation_of(event, RULES.reasons(event), raw)
    window = Window(1_795_608_000, 1_795_608_060)
    partial = Partial.empty(obs.cohort, window, "llm.inference.events/0")
    partial.add(obs)
    assert (partial.count, partial.errors) == (1, 1)
    assert partial.examples.of("failed")[0].raw == raw.decode()

"""Failure rules: each rule fires on what it should, stays silent otherwise, and is configurable."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from driftnet.contract.events import InferenceEvent, Lineage
from driftnet.harvest.records import FailureRecord, record_id, rule_failure
from driftnet.harvest.rules import RULES, FailureRules, RulesConfig, RuleSettings
from tests.support.factories import make_event

SCORES = {
    "faithfulness": {"threshold": 0.5},
    "toxicity": {"threshold": 0.3, "direction": "lower_is_better"},
}
RULES_UNDER_TEST = FailureRules(
    RulesConfig.model_validate({"defaults": {"scores": SCORES, "latency_slo_ms": 5000}})
)


def _event(**overrides: Any) -> InferenceEvent:
    return InferenceEvent.model_validate(make_event(**overrides))


def _assistant(text: str | None, **extra: Any) -> dict[str, Any]:
    return {"messages": [{"role": "assistant", "content": text, **extra}]}


CASES = [
    # (name, overrides, expected rule ids in order)
    ("healthy-call", {}, []),
    ("error-status", {"status": "error", "error_type": "timeout", "output": {}}, ["status_error"]),
    (
        "error-status-does-not-also-flag-empty-output",
        {"status": "error", "output": {}},
        ["status_error"],
    ),
    ("empty-text", {"output": {"text": ""}}, ["empty_output"]),
    ("whitespace-message", {"output": _assistant("  \n ")}, ["empty_output"]),
    ("empty-message-list", {"output": {"messages": []}}, ["empty_output"]),
    # absent is not empty: content not captured is judged by nothing that reads content
    ("content-not-captured", {"output": {}}, []),
    ("output-null-is-not-captured", {"output": None}, []),
    ("messages-null-is-not-captured", {"output": {"messages": None}}, []),
    ("metadata-only-message", {"output": {"messages": [{"role": "assistant"}]}}, []),
    (
        "not-captured-zero-tokens-is-empty",
        {"output": {}, "usage": {"input_tokens": 12, "output_tokens": 0}},
        ["empty_output"],
    ),
    (
        "not-captured-zero-tokens-tool-calls-is-not-empty",
        {"output": {}, "usage": {"output_tokens": 0}, "finish_reasons": ["tool_calls"]},
        [],
    ),
    (
        "not-captured-json-is-not-invalid",
        {"output_type": "json", "output": None, "usage": {"output_tokens": 7}},
        [],
    ),
    ("not-captured-still-truncated", {"output": {}, "finish_reasons": ["length"]}, ["truncated"]),
    ("tool-call-is-not-empty", {"output": _assistant(None, tool_calls=[{"name": "lookup"}])}, []),
    ("truncated-by-length", {"finish_reasons": ["length"]}, ["truncated"]),
    ("stop-is-not-truncated", {"finish_reasons": ["stop"]}, []),
    ("refusal-phrase", {"output": _assistant("I'm sorry, but I can't share that.")}, ["refusal"]),
    (
        "refusal-curly-apostrophe",
        {"output": _assistant("I\u2019m sorry, but I can\u2019t share that.")},
        ["refusal"],
    ),
    (
        "refusal-case-insensitive",
        {"output": {"text": "I CANNOT HELP WITH that request."}},
        ["refusal"],
    ),
    (
        "refusal-beyond-scan-window-ignored",
        {"output": {"text": "x" * 500 + " i cannot help with"}},
        [],
    ),
    ("json-valid", {"output_type": "json", "output": _assistant('{"total": 12}')}, []),
    (
        "json-invalid",
        {"output_type": "json", "output": _assistant('{"total": 12')},
        ["invalid_json"],
    ),
    (
        "json-in-code-fence",
        {"output_type": "json", "output": _assistant('```json\n{"a": 1}\n```')},
        ["invalid_json"],
    ),
    ("json-empty-is-only-empty", {"output_type": "json", "output": {"text": ""}}, ["empty_output"]),
    ("text-output-not-parsed", {"output": _assistant("{not json")}, []),
    ("score-below-threshold", {"scores": {"faithfulness": 0.2}}, ["score_threshold"]),
    ("score-at-threshold-passes", {"scores": {"faithfulness": 0.5}}, []),
    ("lower-is-better-score-above", {"scores": {"toxicity": 0.9}}, ["score_threshold"]),
    ("lower-is-better-score-below", {"scores": {"toxicity": 0.1}}, []),
    ("unconfigured-score-ignored", {"scores": {"helpfulness": 0.0}}, []),
    (
        "two-scores-breached",
        {"scores": {"faithfulness": 0.1, "toxicity": 0.8}},
        ["score_threshold", "score_threshold"],
    ),
    ("negative-feedback", {"feedback": {"rating": -1}}, ["negative_feedback"]),
    ("neutral-feedback", {"feedback": {"rating": 0}}, []),
    ("feedback-without-rating", {"feedback": {"comment": "meh"}}, []),
    ("latency-over-slo", {"latency_ms": 5000.1}, ["latency_slo"]),
    ("latency-at-slo", {"latency_ms": 5000}, []),
    ("latency-unknown", {"latency_ms": None}, []),
    (
        "several-rules-at-once",
        {"status": "error", "latency_ms": 9000, "feedback": {"rating": -1}, "output": {}},
        ["status_error", "negative_feedback", "latency_slo"],
    ),
]


@pytest.mark.parametrize(("overrides", "expected"), [pytest.param(o, e, id=n) for n, o, e in CASES])
def test_rules(overrides: dict[str, Any], expected: list[str]) -> None:
    """Table of events and the rules that must fire on each, in rule order."""
    reasons = RULES_UNDER_TEST.reasons(_event(**overrides))
    assert [r.rule_id for r in reasons] == expected
    assert all(r.message for r in reasons)


def test_score_reason_carries_numbers() -> None:
    """A threshold reason names the score and carries observed value and threshold."""
    [reason] = RULES_UNDER_TEST.reasons(_event(scores={"faithfulness": 0.25}))
    assert (reason.subject, reason.observed, reason.threshold) == ("faithfulness", 0.25, 0.5)
    assert reason.message == "score faithfulness=0.25 is below 0.5"


def test_default_config_judges_without_scores() -> None:
    """Out of the box, the rules need no configuration; scores are not judged without thresholds."""
    rules = FailureRules()
    assert rules.reasons(_event(scores={"faithfulness": 0.0})) == []
    assert [r.rule_id for r in rules.reasons(_event(latency_ms=31_000))] == ["latency_slo"]


def test_every_registered_rule_can_be_disabled() -> None:
    """With no rule enabled nothing fires, whatever the event."""
    config = RulesConfig.model_validate({"defaults": {"enabled": []}})
    worst = _event(
        status="error", latency_ms=1e9, feedback={"rating": -1}, finish_reasons=["length"]
    )
    assert FailureRules(config).reasons(worst) == []
    assert set(RuleSettings().enabled) == set(RULES)


def test_configurable_finish_reasons_and_phrases() -> None:
    """Truncation reasons and refusal phrases come from settings."""
    config = RulesConfig.model_validate(
        {
            "defaults": {
                "truncation_finish_reasons": ["max_tokens"],
                "refusal_phrases": ["computer says no"],
            }
        }
    )
    rules = FailureRules(config)
    assert [r.rule_id for r in rules.reasons(_event(finish_reasons=["max_tokens"]))] == [
        "truncated"
    ]
    assert rules.reasons(_event(finish_reasons=["length"])) == []
    assert [r.rule_id for r in rules.reasons(_event(output={"text": "Computer says no."}))] == [
        "refusal"
    ]


def test_service_override_inherits_defaults() -> None:
    """A per-service override changes only what it sets; scores merge score by score."""
    config = RulesConfig.model_validate(
        {
            "defaults": {"latency_slo_ms": 1000, "scores": {"faithfulness": {"threshold": 0.5}}},
            "services": {
                "batch-summaries": {
                    "latency_slo_ms": 60000,
                    "scores": {"coverage": {"threshold": 0.7}},
                }
            },
        }
    )
    effective = config.for_service("batch-summaries")
    assert effective.latency_slo_ms == 60000
    assert set(effective.scores) == {"faithfulness", "coverage"}
    assert config.for_service("anything-else").latency_slo_ms == 1000
    rules = FailureRules(config)
    slow = {"latency_ms": 5000}
    assert rules.reasons(_event(service="batch-summaries", **slow)) == []
    assert [r.rule_id for r in rules.reasons(_event(service="support-chat", **slow))] == [
        "latency_slo"
    ]


def test_service_override_can_switch_a_rule_off() -> None:
    """latency_slo_ms = None in an override turns the latency rule off for that service only."""
    config = RulesConfig.model_validate({"services": {"offline-batch": {"latency_slo_ms": None}}})
    rules = FailureRules(config)
    assert rules.reasons(_event(service="offline-batch", latency_ms=1e7)) == []
    assert rules.reasons(_event(latency_ms=1e7)) != []


@pytest.mark.parametrize(
    ("config", "location"),
    [
        pytest.param(
            {"defaults": {"enabled": ["status_error", "vibes"]}},
            ("defaults", "enabled", 1),
            id="unknown-rule-id",
        ),
        pytest.param(
            {"defaults": {"latency_slo": 5}}, ("defaults", "latency_slo"), id="unknown-key"
        ),
        pytest.param(
            {"services": {"x": {"scores": {"f": {"threshold": 0.5, "direction": "up"}}}}},
            ("services", "x", "scores", "f", "direction"),
            id="bad-direction",
        ),
        pytest.param(
            {"services": {"x": {"latency_slo_ms": -1}}},
            ("services", "x", "latency_slo_ms"),
            id="negative-slo",
        ),
    ],
)
def test_bad_config_names_the_key(config: dict[str, Any], location: tuple[Any, ...]) -> None:
    """A wrong rules setting is refused with the path of the offending key."""
    with pytest.raises(ValidationError) as caught:
        RulesConfig.model_validate(config)
    assert caught.value.errors()[0]["loc"] == location


def test_record_id_is_deterministic() -> None:
    """The same event, kind, finding and arm give the same id; any change gives another."""
    assert record_id("e1", "rule") == record_id("e1", "rule")
    ids = {
        record_id("e1", "rule"),
        record_id("e2", "rule"),
        record_id("e1", "evidence", "finding-9"),
        record_id("e1", "evidence", "finding-9", "canary"),
        record_id("e1", "evidence", "finding-9", "baseline"),
    }
    assert len(ids) == 5
    assert all(len(i) == 32 for i in ids)


def test_failure_record_carries_event_reasons_and_lineage() -> None:
    """A rule failure holds the full event (unknown fields too), every reason and its lineage."""
    event = _event(status="error", latency_ms=9000, custom_tag="kept")
    lineage = Lineage(topic="llm.inference.events", partition=2, offset=77, batch_index=4)
    detected = datetime(2026, 11, 25, 12, 0, 5, tzinfo=UTC)
    record = rule_failure(event, RULES_UNDER_TEST.reasons(event), lineage, detected)
    assert record.kind == "rule"
    assert record.record_id == record_id(event.event_id, "rule")
    assert [r.rule_id for r in record.reasons] == ["status_error", "latency_slo"]
    again = FailureRecord.model_validate_json(record.model_dump_json())
    assert again == record
    assert again.event.model_extra == {"custom_tag": "kept"}
    assert again.lineage.batch_index == 4


finite = st.floats(allow_nan=False, allow_infinity=False)
any_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | finite | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=10,
)


@given(
    status=st.sampled_from(["ok", "error"]),
    output=st.fixed_dictionaries(
        {},
        optional={
            "text": st.text(max_size=600) | st.none(),
            "messages": st.lists(
                st.fixed_dictionaries({"role": st.text(max_size=8), "content": any_json}),
                max_size=3,
            ),
        },
    ),
    output_type=st.sampled_from(["text", "json"]),
    finish_reasons=st.lists(st.text(max_size=10), max_size=3),
    scores=st.dictionaries(
        st.sampled_from(["faithfulness", "toxicity", "other"]), finite, max_size=3
    ),
    rating=st.none() | st.floats(min_value=-1, max_value=1),
    latency=st.none() | st.floats(min_value=0, max_value=1e12),
)
@settings(max_examples=300)
def test_rules_never_raise_on_a_valid_event(
    status: str,
    output: dict[str, Any],
    output_type: str,
    finish_reasons: list[str],
    scores: dict[str, float],
    rating: float | None,
    latency: float | None,
) -> None:
    """Whatever a valid event holds, the rules return reasons (possibly none) and never raise."""
    event = _event(
        status=status,
        output=output,
        output_type=output_type,
        finish_reasons=finish_reasons,
        scores=scores,
        feedback={"rating": rating},
        latency_ms=latency,
    )
    reasons = RULES_UNDER_TEST.reasons(event)
    assert all(reason.rule_id in RULES for reason in reasons)
    assert ("status_error" in {r.rule_id for r in reasons}) == (status == "error")

"""Per-event failure rules: which production calls are failures, and why. Pure.

Each rule is a small function ``(event, settings) -> reasons``, registered by id in
:data:`RULES`. Settings come from :class:`RulesConfig`: defaults, and per-service overrides
that inherit every key they do not set.

Absent is not empty: the rules that read the answer (``empty_output``, ``refusal``,
``invalid_json``) say nothing of an event whose content was not captured, except
``empty_output`` when the producer counted 0 output tokens (and no tool calls).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Final, Literal, get_args

import orjson
from pydantic import BaseModel, ConfigDict, Field, model_validator

from driftnet.contract.events import InferenceEvent
from driftnet.harvest.records import Reason

RuleId = Literal[
    "status_error",
    "empty_output",
    "truncated",
    "refusal",
    "invalid_json",
    "score_threshold",
    "negative_feedback",
    "latency_slo",
]

DEFAULT_REFUSAL_PHRASES = (
    "i can't help with",
    "i cannot help with",
    "i can't assist with",
    "i cannot assist with",
    "i'm sorry, but i can't",
    "i'm sorry, but i cannot",
    "i am sorry, but i cannot",
    "i'm unable to help",
    "i am unable to help",
    "i won't be able to help",
    "as an ai language model, i cannot",
)

TOOL_CALLS_FINISH: Final = "tool_calls"
"""The finish reason of an answer made of tool calls: no text, yet not empty."""

_STRICT = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class ScoreThreshold(BaseModel):
    """When an evaluation score means failure."""

    model_config = _STRICT

    threshold: float
    """A call whose score is below it (``higher_is_better``) or above it (``lower_is_better``)
    fails the ``score_threshold`` rule."""
    direction: Literal["higher_is_better", "lower_is_better"] = "higher_is_better"
    """Which way the score is good; ``lower_is_better`` also tells the canary judge that a rise
    of the score is bad."""

    def breached_by(self, value: float) -> bool:
        """Whether ``value`` is on the bad side of the threshold."""
        if self.direction == "higher_is_better":
            return value < self.threshold
        return value > self.threshold


class RuleSettings(BaseModel):
    """Rule settings for one service (or the defaults for all)."""

    model_config = _STRICT

    enabled: tuple[RuleId, ...] = get_args(RuleId)
    """Rules to apply, by id; every rule by default."""
    truncation_finish_reasons: frozenset[str] = frozenset({"length"})
    """Finish reasons that make an answer truncated (the ``truncated`` rule)."""
    refusal_phrases: tuple[str, ...] = DEFAULT_REFUSAL_PHRASES
    """Matched case-insensitively in the first ``refusal_scan_chars`` of the output."""
    refusal_scan_chars: int = Field(400, gt=0)
    """How much of the start of the output the ``refusal`` rule searches for the phrases."""
    scores: dict[str, ScoreThreshold] = Field(default_factory=dict)
    """Scores without an entry here are recorded but never judged."""
    negative_feedback_below: float = Field(0.0, ge=-1, le=1)
    """A user rating (-1 to 1) below this fails the ``negative_feedback`` rule."""
    latency_slo_ms: float | None = Field(30_000.0, gt=0)
    """A call slower than this fails the ``latency_slo`` rule; ``null`` (JSON) switches the
    rule off for the service, as leaving it out of ``enabled`` does."""


class RulesConfig(BaseModel):
    """Defaults plus per-service overrides. An override inherits every key it leaves out;
    its ``scores`` table merges into the default one, score by score."""

    model_config = _STRICT

    defaults: RuleSettings = Field(default_factory=RuleSettings)
    """The rule settings of every service without an override."""
    services: dict[str, RuleSettings] = Field(default_factory=dict)
    """Overrides by service name; each inherits every key it leaves out from ``defaults``
    (so its defaults below are those of ``rules.defaults``), and merges its ``scores`` into
    theirs."""

    @model_validator(mode="before")
    @classmethod
    def _inherit_defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not isinstance(data.get("services"), dict):
            return data
        defaults = data.get("defaults", {})
        if isinstance(defaults, RuleSettings):
            defaults = defaults.model_dump()
        if not isinstance(defaults, dict):
            return data
        merged: dict[str, Any] = {}
        for service, override in data["services"].items():
            if not isinstance(override, dict):
                merged[service] = override
                continue
            scores = {**defaults.get("scores", {}), **override.get("scores", {})}
            merged[service] = {**defaults, **override, "scores": scores}
        return {**data, "services": merged}

    def for_service(self, service: str) -> RuleSettings:
        """The effective settings for ``service``."""
        return self.services.get(service, self.defaults)


Rule = Callable[[InferenceEvent, "_Compiled"], Iterator[Reason]]


@dataclass(frozen=True, slots=True)
class _Compiled:
    """RuleSettings pre-digested for the hot path."""

    rules: tuple[Rule, ...]
    settings: RuleSettings
    refusal_phrases: tuple[str, ...]

    @classmethod
    def of(cls, settings: RuleSettings) -> _Compiled:
        return cls(
            rules=tuple(RULES[rule_id] for rule_id in dict.fromkeys(settings.enabled)),
            settings=settings,
            refusal_phrases=tuple(p.lower() for p in settings.refusal_phrases if p),
        )


class FailureRules:
    """Applies the configured rules to events; returns every reason an event failed."""

    def __init__(self, config: RulesConfig | None = None) -> None:
        self.config = config or RulesConfig()
        self._default = _Compiled.of(self.config.defaults)
        self._per_service = {name: _Compiled.of(s) for name, s in self.config.services.items()}

    def reasons(self, event: InferenceEvent) -> list[Reason]:
        """Why ``event`` is a failure; empty when it is not."""
        compiled = self._per_service.get(event.service, self._default)
        return [reason for rule in compiled.rules for reason in rule(event, compiled)]


def _status_error(event: InferenceEvent, _: _Compiled) -> Iterator[Reason]:
    if event.status == "error":
        kind = f" ({event.error_type})" if event.error_type else ""
        yield Reason(rule_id="status_error", message=f"call failed{kind}", subject=event.error_type)


def _answered(event: InferenceEvent) -> bool:
    return event.status == "ok"


def _empty_output(event: InferenceEvent, _: _Compiled) -> Iterator[Reason]:
    if not _answered(event):
        return
    if event.output_captured:
        if not event.output_text.strip() and not event.has_tool_calls:
            yield Reason(rule_id="empty_output", message="output is empty")
        return
    # Content not captured: only the token count can tell an empty answer.
    if event.usage.output_tokens == 0 and TOOL_CALLS_FINISH not in event.finish_reasons:
        yield Reason(
            rule_id="empty_output",
            message="output is empty (0 output tokens; content not captured)",
            observed=0.0,
        )


def _truncated(event: InferenceEvent, compiled: _Compiled) -> Iterator[Reason]:
    hits = [r for r in event.finish_reasons if r in compiled.settings.truncation_finish_reasons]
    if hits:
        yield Reason(
            rule_id="truncated",
            message=f"output truncated (finish reason {hits[0]!r})",
            subject=hits[0],
        )


def _refusal(event: InferenceEvent, compiled: _Compiled) -> Iterator[Reason]:
    if not _answered(event) or not compiled.refusal_phrases or not event.output_captured:
        return
    head = event.output_text[: compiled.settings.refusal_scan_chars].lower().replace("\u2019", "'")
    for phrase in compiled.refusal_phrases:
        if phrase in head:
            yield Reason(rule_id="refusal", message=f"model refused ({phrase!r})", subject=phrase)
            return


def _invalid_json(event: InferenceEvent, _: _Compiled) -> Iterator[Reason]:
    if event.output_type != "json" or not _answered(event) or not event.output_captured:
        return
    text = event.output_text
    if not text.strip():
        return  # empty_output already says so
    try:
        orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        yield Reason(rule_id="invalid_json", message=f"output is not valid JSON: {exc}")


def _score_threshold(event: InferenceEvent, compiled: _Compiled) -> Iterator[Reason]:
    thresholds = compiled.settings.scores
    for name, value in event.scores.items():
        rule = thresholds.get(name)
        if rule is not None and rule.breached_by(value):
            side = "below" if rule.direction == "higher_is_better" else "above"
            yield Reason(
                rule_id="score_threshold",
                message=f"score {name}={value:g} is {side} {rule.threshold:g}",
                subject=name,
                observed=value,
                threshold=rule.threshold,
            )


def _negative_feedback(event: InferenceEvent, compiled: _Compiled) -> Iterator[Reason]:
    feedback = event.feedback
    if feedback is None or feedback.rating is None:
        return
    limit = compiled.settings.negative_feedback_below
    if feedback.rating < limit:
        yield Reason(
            rule_id="negative_feedback",
            message=f"user rated the answer {feedback.rating:g}",
            observed=feedback.rating,
            threshold=limit,
        )


def _latency_slo(event: InferenceEvent, compiled: _Compiled) -> Iterator[Reason]:
    slo = compiled.settings.latency_slo_ms
    if slo is not None and event.latency_ms is not None and event.latency_ms > slo:
        yield Reason(
            rule_id="latency_slo",
            message=f"latency {event.latency_ms:,.0f} ms is above the {slo:,.0f} ms SLO",
            observed=event.latency_ms,
            threshold=slo,
        )


RULES: dict[RuleId, Rule] = {
    "status_error": _status_error,
    "empty_output": _empty_output,
    "truncated": _truncated,
    "refusal": _refusal,
    "invalid_json": _invalid_json,
    "score_threshold": _score_threshold,
    "negative_feedback": _negative_feedback,
    "latency_slo": _latency_slo,
}

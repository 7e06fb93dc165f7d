"""What a valid event contributes to the windows: ``InferenceEvent`` + rule reasons -> Observation.

The one place that knows both the event contract and the detectors' input, so ``detectors/``
never imports ``streams/`` or ``harvest/``. Pure and cheap (on the hot path, once per event).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Final

from driftnet.contract.content import content_text
from driftnet.contract.events import InferenceEvent
from driftnet.detectors.windowing.observation import Observation
from driftnet.detectors.windowing.texts import SampledText, TextSample
from driftnet.harvest.records import Reason

ATTRIBUTE_MAX_CHARS: Final = 64
"""Attribute values are cut to this length: they are labels, not content."""
REDACTION_MARGIN: Final = 64
"""Characters a sampled text keeps past its cut until the window is done: they are redacted
with it, so that an e-mail address or a key the cut goes through is still recognised (and
masked) before it is cut (:func:`finish_texts`)."""

_FLAGS: Final = {
    "status_error": "is_error",
    "refusal": "refusal",
    "empty_output": "empty",
    "truncated": "truncated",
    "invalid_json": "invalid_json",
    "negative_feedback": "negative_feedback",
}


def observation_of(
    event: InferenceEvent,
    reasons: Sequence[Reason],
    raw: bytes | Callable[[], bytes],
    attributes: Sequence[str] = (),
    texts: Callable[[], SampledText] | None = None,
) -> Observation:
    """The observation of one valid event, given why the failure rules flagged it (if they did),
    its JSON as received (kept as evidence), the attribute names watched for drift, and what
    makes its texts for the window's text sample (:func:`texts_of`; kept only when the event
    carries content)."""
    captured = event.output_captured
    input_captured = event.input_captured
    obs = Observation(
        event_id=event.event_id,
        event_time=event.timestamp.timestamp(),
        cohort=(event.service, event.environment, event.release, event.variant),
        is_error=event.status == "error",
        has_content=captured,
        output_size_known=captured or event.usage.output_tokens is not None,
        latency_ms=event.latency_ms,
        ttft_ms=event.ttft_ms,
        input_tokens=event.usage.input_tokens,
        output_tokens=event.usage.output_tokens,
        cost_usd=event.cost_usd,
        model=event.response_model or event.request_model,
        scores=dict(event.scores),
        feedback_rating=event.feedback.rating if event.feedback else None,
        input_chars=(
            sum(len(content_text(m.content)) for m in event.input.messages)
            if input_captured
            else None
        ),
        finish_reason=event.finish_reasons[0] if event.finish_reasons else None,
        response_model=event.response_model,
        attributes=_labels(event.attributes, attributes),
        raw=raw,
        texts=texts if captured or input_captured else None,
    )
    breaches: list[str] = []
    for reason in reasons:
        flag = _FLAGS.get(reason.rule_id)
        if flag is not None:
            setattr(obs, flag, True)
        elif reason.rule_id == "score_threshold" and reason.subject:
            breaches.append(reason.subject)
    obs.score_breaches = tuple(breaches)
    return obs


def _labels(values: dict[str, object], names: Sequence[str]) -> dict[str, str]:
    labels: dict[str, str] = {}
    for name in names:
        value = values.get(name)
        if isinstance(value, str | int | float | bool):
            labels[name] = str(value)[:ATTRIBUTE_MAX_CHARS]
    return labels


def texts_of(event: InferenceEvent, chars: int) -> SampledText:
    """What ``event`` asked (its last user message: a system prompt says little about the
    topic) and answered, each cut to ``chars``; None where that side was not captured."""
    asked: str | None = None
    if event.input_captured:
        messages = event.input.messages
        last = next((m for m in reversed(messages) if m.role == "user"), None)
        last = last or (messages[-1] if messages else None)
        asked = content_text(last.content) if last is not None else ""
    said = event.output_text if event.output_captured else None
    return SampledText(
        None if asked is None else asked[:chars],
        None if said is None else said[:chars],
        len(asked or ""),
        len(said or ""),
    )


def finish_texts(sample: TextSample, chars: int, redact: Callable[[str], str] | None) -> None:
    """A done window's sampled texts (kept :data:`REDACTION_MARGIN` characters past the cut)
    redacted, then cut to ``chars``: redacting past the cut masks an e-mail address or a key
    the cut goes through; redacting once per window, not once per text kept, keeps it off the
    per-event path."""

    def cut(text: str | None) -> str | None:
        if text is None:
            return None
        return (redact(text) if redact else text)[:chars]

    sample.rewrite(
        lambda t: SampledText(cut(t.input), cut(t.output), t.input_chars, t.output_chars)
    )

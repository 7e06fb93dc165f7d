"""What one valid event contributes to a window: a plain slotted record, built by the stream side.

``detectors/`` never sees the event model itself (``driftnet.streams.detection.observations.observation_of`` builds
these from an ``InferenceEvent`` and the failure rules' reasons), so detectors stay free of the
contract's validation and of every I/O library.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from driftnet.detectors.windowing.texts import SampledText

Cohort = tuple[str, str, str, str]
"""(service, environment, release, variant), as ``driftnet.contract.events.Cohort``."""

NUMERIC_FEATURES: Final = (
    "latency_ms",
    "ttft_ms",
    "input_tokens",
    "output_tokens",
    "input_chars",
    "cost_usd",
)
"""Numeric features kept in the reservoir samples (drift, latency by input size, tests)."""

BUILTIN_CATEGORICAL: Final = ("finish_reason", "response_model")
"""Categorical features every observation has; chosen attributes come after them."""


@dataclass(slots=True)
class Observation:
    """One valid event, reduced to what windows aggregate."""

    event_id: str
    event_time: float
    """Epoch seconds (UTC)."""
    cohort: Cohort
    is_error: bool = False
    refusal: bool = False
    empty: bool = False
    truncated: bool = False
    invalid_json: bool = False
    has_content: bool = True
    """Whether the answer's content was captured (absent is not empty: an event without it is
    not measured by the content-based rates: refusals, empties, invalid JSON)."""
    output_size_known: bool = True
    """Whether the answer's size is known: its content, or its output token count (what the
    empty-output rate needs)."""
    latency_ms: float | None = None
    ttft_ms: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    """None when the producer did not send it; priced from the price table when possible."""
    model: str | None = None
    """The model to price by: the response model, else the request model."""
    scores: dict[str, float] = field(default_factory=dict)
    score_breaches: tuple[str, ...] = ()
    """Names of the scores on their bad side of a configured threshold."""
    feedback_rating: float | None = None
    negative_feedback: bool = False
    input_chars: int | None = None
    finish_reason: str | None = None
    response_model: str | None = None
    attributes: dict[str, str] = field(default_factory=dict)
    """The chosen low-cardinality attributes watched for drift (e.g. locale, route)."""
    raw: bytes | Callable[[], bytes] = b""
    """The event's JSON, kept for worst-example evidence; or a function that makes it, called
    only for the few events that are kept (encoding every event would cost more than the
    rest of its aggregation)."""
    texts: Callable[[], SampledText] | None = None
    """What the call asked and answered (cut, redacted), made only if the window's text
    sample keeps it; None when neither was captured."""

    @property
    def failed(self) -> bool:
        """Whether a per-event failure flag is set (evidence ranking, not a detector)."""
        return (
            self.is_error
            or self.refusal
            or self.empty
            or self.truncated
            or self.invalid_json
            or self.negative_feedback
            or bool(self.score_breaches)
        )

    def numeric(self, name: str) -> float | None:
        """The value of one of :data:`NUMERIC_FEATURES`."""
        value: float | int | None = getattr(self, name)
        return None if value is None else float(value)

    def categorical(self, name: str) -> str | None:
        """A built-in categorical feature or a chosen attribute (``attr.<name>`` or ``<name>``)."""
        if name in BUILTIN_CATEGORICAL:
            value: str | None = getattr(self, name)
            return value
        return self.attributes.get(name.removeprefix("attr."))

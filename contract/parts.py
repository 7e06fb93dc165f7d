"""The parts an inference event is built from: shared field types and the small nested models."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Final, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field

KEEP_UNKNOWN = ConfigDict(extra="allow", allow_inf_nan=False, populate_by_name=True)


def otel(name: str, description: str) -> Any:
    """Describe a field and record the OpenTelemetry attribute it corresponds to."""
    return {"description": description, "json_schema_extra": {"x-otel": name}}


def _rfc3339_string(value: Any) -> Any:
    """Only RFC 3339 strings are timestamps; numbers are ambiguous (seconds? millis?)."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise ValueError("must be an RFC 3339 string with a UTC offset, e.g. 2026-11-25T12:00:00Z")
    return value


def _to_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


Timestamp = Annotated[AwareDatetime, BeforeValidator(_rfc3339_string), AfterValidator(_to_utc)]
Label = Annotated[str, Field(min_length=1, max_length=256)]
NonNegative = Annotated[float, Field(ge=0)]
INT64_MAX: Final = 2**63 - 1
Count = Annotated[int, Field(ge=0, le=INT64_MAX)]
"""Token counts and the like: stored as 64-bit integers downstream (Parquet), so bounded here."""


class Usage(BaseModel):
    """Token counts of one call."""

    model_config = KEEP_UNKNOWN

    input_tokens: Count | None = Field(None, **otel("gen_ai.usage.input_tokens", "Prompt tokens."))
    output_tokens: Count | None = Field(
        None, **otel("gen_ai.usage.output_tokens", "Completion tokens.")
    )
    cached_input_tokens: Count | None = Field(
        None,
        **otel("gen_ai.usage.cache_read.input_tokens", "Prompt tokens served from a cache."),
    )
    reasoning_tokens: Count | None = Field(
        None, **otel("gen_ai.usage.reasoning.output_tokens", "Hidden reasoning tokens.")
    )


class RequestParams(BaseModel):
    """Inference parameters of the request; unknown ones are kept as sent."""

    model_config = KEEP_UNKNOWN

    temperature: float | None = Field(
        None, **otel("gen_ai.request.temperature", "Sampling temperature.")
    )
    top_p: float | None = Field(None, **otel("gen_ai.request.top_p", "Nucleus sampling mass."))
    top_k: float | None = Field(None, **otel("gen_ai.request.top_k", "Top-k sampling."))
    max_tokens: Count | None = Field(
        None, **otel("gen_ai.request.max_tokens", "Output token limit.")
    )
    frequency_penalty: float | None = Field(
        None, **otel("gen_ai.request.frequency_penalty", "Frequency penalty.")
    )
    presence_penalty: float | None = Field(
        None, **otel("gen_ai.request.presence_penalty", "Presence penalty.")
    )
    seed: Annotated[int, Field(ge=-(2**63), le=INT64_MAX)] | None = Field(
        None, **otel("gen_ai.request.seed", "Sampling seed.")
    )
    stop_sequences: list[str] | None = Field(
        None, **otel("gen_ai.request.stop_sequences", "Stop sequences.")
    )


class Feedback(BaseModel):
    """End-user feedback on the answer."""

    model_config = KEEP_UNKNOWN

    rating: float | None = Field(
        None, ge=-1, le=1, description="-1 (bad) to 1 (good); below 0 counts as negative."
    )
    comment: str | None = None


class Span(BaseModel):
    """A child operation of the call (retrieval, tool call...). Attributes are not walked."""

    model_config = KEEP_UNKNOWN

    name: str
    span_id: str | None = None
    kind: str | None = Field(None, description="e.g. retrieval, tool, llm.")
    start_time: Timestamp | None = None
    duration_ms: NonNegative | None = None
    status: Literal["ok", "error"] | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)

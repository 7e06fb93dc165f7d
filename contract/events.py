"""The v1 inference event contract: one production LLM call, as producers publish it.

One JSON object (or a JSON array of them) per Kafka message, keyed by the cohort. Names are
flat snake_case; where OpenTelemetry's GenAI semantic conventions have a name for a field, the
field's JSON Schema carries it as ``x-otel`` (see :func:`otel_mapping` and the table in docs/event-contract.md).
The call's content (``input``, ``output``) is read so that absent is not empty: a producer that
does not capture it leaves it out, and that is not an empty answer (:mod:`.content`).

Validation is deliberately lean. The rules and the windows read a handful of fields (identity,
cohort, status, latency, usage, cost, scores, feedback, finish reasons, output); those are typed
and checked. Message *content*, span attributes and request parameters beyond the common ones
are carried as they came (``Any``): walking them on the hot path would cap a core at a fraction
of the broker's rate, and nothing downstream needs them typed.

Evolution policy
----------------
* ``schema_version`` is ``"1"`` (an integer ``1`` is accepted). Any other value is a dead letter
  with reason ``unsupported_schema_version``: a consumer never guesses at a format it does not
  know.
* Within v1 the contract only grows: new *optional* fields with defaults. Unknown fields are
  kept (``model_extra``) and travel with the event into failure records, so a producer may send
  a field before driftnet knows it.
* A v2 may rename, retype or remove fields. It gets its own model; the decoder dispatches on
  ``schema_version`` and upgrades v1 payloads through an explicit alias table (old name -> new
  name), so v1 producers keep working for at least one major release after v2 ships.
* Required fields never become optional by accident and optional ones never become required
  within a major version.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Annotated, Any, Final, Literal, NamedTuple

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from driftnet.contract.content import Input, Output, content_text
from driftnet.contract.parts import (
    Feedback,
    Label,
    NonNegative,
    RequestParams,
    Span,
    Timestamp,
    Usage,
    otel,
)

SCHEMA_VERSION: Final = "1"


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _schema_version(value: Any) -> Any:
    if value == 1 and not isinstance(value, bool):
        return SCHEMA_VERSION
    return value


_QUALIFIED_CLASS: Final = re.compile(
    r"^(?:<class '(?P<wrapped>[^']+)'>|(?P<plain>[A-Za-z_][\w$]*(?:\.[A-Za-z_][\w$]*)+))$"
)


def bare_error_type(value: str) -> str:
    """The class's bare name of an ``error.type``, as clients spell one error differently:
    ``<class 'openai.InternalServerError'>``, ``openai.InternalServerError`` and
    ``InternalServerError`` are all ``InternalServerError`` (Java's
    ``java.net.SocketTimeoutException`` likewise). Codes (``500``, ``timeout``,
    ``rate_limited``) and dotted names whose last part is not a class name (capitalised) are
    kept as sent.

    >>> bare_error_type("<class 'openai.InternalServerError'>")
    'InternalServerError'
    >>> bare_error_type("openai.InternalServerError"), bare_error_type("timeout")
    ('InternalServerError', 'timeout')
    """
    if "." not in value and "<" not in value:
        return value  # already bare, or a code: the common case, without the regex
    match = _QUALIFIED_CLASS.match(value.strip())
    if match is None:
        return value
    wrapped = match["wrapped"]
    name = (wrapped or match["plain"]).rpartition(".")[2]
    if wrapped is not None:
        return name or value
    return name if name[:1].isupper() else value


def _as_sent(data: dict[str, Any]) -> dict[str, Any] | None:
    """What the contract reads differently from how it was sent, or None when nothing: a bare
    ``error_type`` (the original kept), and ``null`` input, output or messages read as left
    out (content not captured), not as a refusal of the event or an empty list. One function
    for all of them: each validator is a Python call per event on the hot path."""
    fixes: dict[str, Any] | None = None
    sent = data.get("error_type")
    if isinstance(sent, str):
        bare = bare_error_type(sent)
        if bare != sent:
            fixes = {"error_type": bare, "error_type_original": sent}
    for side in ("input", "output"):
        value = data.get(side)
        if isinstance(value, dict) and value.get("messages", ()) is None:
            fixes = fixes or {}
            fixes[side] = {k: v for k, v in value.items() if k != "messages"}
        elif value is None and side in data:
            fixes = fixes or {}
            fixes[side] = {}
    return fixes


class Cohort(NamedTuple):
    """The unit every detector watches: a release of a service in an environment."""

    service: str
    environment: str
    release: str
    variant: str

    @property
    def key(self) -> str:
        """The Kafka message key: stable, human-readable, one per cohort."""
        return "/".join(self)

    @classmethod
    def of(cls, document: Mapping[str, Any]) -> Cohort:
        """The cohort a raw (not yet validated) event document claims, with the contract's
        defaults for what it leaves out. Used to key messages before any validation."""
        fields = InferenceEvent.model_fields
        return cls(
            *(
                str(
                    document.get(name)
                    or ("" if fields[name].is_required() else fields[name].default)
                )
                for name in cls._fields
            )
        )


class InferenceEvent(BaseModel):
    """One production LLM call (contract v1). Unknown fields are kept in ``model_extra``."""

    model_config = ConfigDict(
        extra="allow",
        allow_inf_nan=False,
        populate_by_name=True,
        title="driftnet inference event v1",
    )

    # identity
    event_id: Label = Field(description="Idempotency key: unique per call, stable on retry.")
    timestamp: Timestamp = Field(description="When the call started, RFC 3339 with offset.")
    schema_version: Annotated[Literal["1"], BeforeValidator(_schema_version)] = SCHEMA_VERSION

    # where
    service: Label = Field(**otel("service.name", "The product feature making the call."))
    environment: Label = Field(
        "production", **otel("deployment.environment.name", "Deployment environment.")
    )
    release: Label = Field(
        **otel("service.version", "Model setup id: model + provider + prompt + config.")
    )
    variant: Label = Field(
        "baseline",
        **otel("feature_flag.result.variant", "Rollout arm, e.g. baseline or canary."),
    )
    prompt_version: str | None = None

    # model
    provider: str | None = Field(None, **otel("gen_ai.provider.name", "Model provider."))
    operation: str | None = Field(None, **otel("gen_ai.operation.name", "chat, embeddings..."))
    request_model: str | None = Field(None, **otel("gen_ai.request.model", "Model asked for."))
    response_model: str | None = Field(
        None, **otel("gen_ai.response.model", "Model that answered.")
    )
    request: RequestParams = Field(default_factory=RequestParams)

    # content
    input: Input = Field(default_factory=Input)
    output: Output = Field(
        default_factory=Output,
        description="Left out (or null) when content was not captured: not an empty answer.",
    )
    finish_reasons: list[str] = Field(
        default_factory=list, **otel("gen_ai.response.finish_reasons", "Why generation stopped.")
    )
    output_type: Annotated[Literal["text", "json"], BeforeValidator(_lower)] = Field(
        "text", **otel("gen_ai.output.type", "Expected output format.")
    )

    # performance and cost
    latency_ms: NonNegative | None = Field(None, description="Wall time of the call.")
    ttft_ms: NonNegative | None = Field(
        None, **otel("gen_ai.response.time_to_first_chunk", "Time to first token (ms here).")
    )
    usage: Usage = Field(default_factory=Usage)
    cost_usd: NonNegative | None = Field(
        None, description="Cost of the call; priced from the token counts when absent."
    )

    # outcome
    status: Annotated[Literal["ok", "error"], BeforeValidator(_lower)] = Field(
        description="ok, or error when the call failed."
    )
    error_type: str | None = Field(
        None,
        **otel(
            "error.type",
            "Class of the error, by its bare name: `<class 'openai.InternalServerError'>` and "
            "`openai.InternalServerError` are both `InternalServerError`.",
        ),
    )
    error_type_original: str | None = Field(
        None, description="`error_type` as the producer sent it, when that was not the bare name."
    )
    scores: dict[str, float] = Field(
        default_factory=dict, **otel("gen_ai.evaluation.score.value", "Evaluation scores by name.")
    )
    feedback: Feedback | None = None

    # trace
    trace_id: str | None = None
    span_id: str | None = None
    spans: list[Span] = Field(default_factory=list)

    attributes: dict[str, Any] = Field(
        default_factory=dict, description="Free-form low-cardinality labels (tenant, route...)."
    )

    @model_validator(mode="before")
    @classmethod
    def _read_as_sent(cls, data: Any) -> Any:
        if isinstance(data, dict):
            fixes = _as_sent(data)
            if fixes is not None:
                return {**data, **fixes}
        return data

    @property
    def cohort(self) -> Cohort:
        """The (service, environment, release, variant) this event belongs to."""
        return Cohort(self.service, self.environment, self.release, self.variant)

    @cached_property
    def output_text(self) -> str:
        """The answer as plain text: ``output.text`` or the text of the output messages."""
        if self.output.text is not None:
            return self.output.text
        return "".join(content_text(m.content) for m in self.output.messages)

    @cached_property
    def output_captured(self) -> bool:
        """Whether the producer sent the answer's content: ``output.text``, or output messages
        with content or tool calls (an explicitly empty list counts: an answer of nothing).
        False when content was not captured: ``output`` left out (or null), or messages that
        carry only metadata. Cached: the rules and the windows all ask (a copy made with a new
        ``output`` must drop it, as the redactor's copies keep the same content shape)."""
        return self.output.captured

    @property
    def input_captured(self) -> bool:
        """Whether the producer sent what the model was given (``input.messages``)."""
        return self.input.captured

    @property
    def has_tool_calls(self) -> bool:
        """Whether the model answered with tool calls (an answer even without text)."""
        return any((m.model_extra or {}).get("tool_calls") for m in self.output.messages)


def otel_mapping(model: type[BaseModel] = InferenceEvent, prefix: str = "") -> dict[str, str]:
    """Every contract field that has an OpenTelemetry name: ``{"usage.input_tokens": ...}``."""
    mapping: dict[str, str] = {}
    for name, field in model.model_fields.items():
        extra = field.json_schema_extra
        if isinstance(extra, dict) and isinstance(extra.get("x-otel"), str):
            mapping[prefix + name] = str(extra["x-otel"])
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            mapping.update(otel_mapping(annotation, f"{prefix}{name}."))
    return mapping


@dataclass(frozen=True, slots=True)
class Lineage:
    """Where a payload came from: enough to find it again on the broker.

    A plain dataclass rather than a model: one is made per event of a batch, on the hot path.
    """

    topic: str
    partition: int
    offset: int
    batch_index: int | None = None
    """Position in the message's JSON array; None when the message held one object."""

    def at(self, index: int) -> Lineage:
        """The lineage of element ``index`` of a batch message."""
        return Lineage(self.topic, self.partition, self.offset, index)

    def __str__(self) -> str:
        where = f"{self.topic}[{self.partition}]@{self.offset}"
        return where if self.batch_index is None else f"{where}#{self.batch_index}"

"""The ``[otlp]`` settings: which spans are LLM calls and how traces are buffered. Pure."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class OtlpSettings(BaseModel):
    """Ingest of OpenTelemetry GenAI spans from ``topics.otlp_spans`` (see
    docs/opentelemetry.md): each LLM-call span becomes a v1 event on the events topic."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    enabled: bool | Literal["auto"] = "auto"
    """``auto``: the worker reads the topic when it exists (``driftnet topics create`` makes
    it); ``true``: it must exist (the worker refuses to start otherwise); ``false``: never."""
    trace_timeout_s: float = Field(10.0, gt=0, le=3600)
    """A trace whose local root span has not arrived this long after its first span is mapped
    with the spans it has (a root closes its trace at once)."""
    max_buffered_spans: int = Field(100_000, gt=0)
    """Spans held across open traces; past it the oldest traces are mapped early (counted as
    ``evicted``)."""
    max_spans_per_trace: int = Field(256, gt=0)
    """Spans one trace may hold; further child spans are dropped (counted), its root and
    LLM-call spans never."""
    release_attribute: str = Field("service.version", min_length=1)
    """Attribute whose value is the event's ``release`` (the span's, else another span of its
    trace, else the resource's); e.g. ``gen_ai.agent.version`` or your own ``app.release``."""
    event_operations: tuple[str, ...] = ("chat", "text_completion", "generate_content")
    """``gen_ai.operation.name`` values whose spans are LLM calls, one v1 event each; other
    spans of the trace (tools, retrieval, embeddings, agents) become the event's ``spans``."""
    label_attributes: tuple[str, ...] = ()
    """Span or resource attributes copied into the event's ``attributes`` (low-cardinality
    labels such as ``app.tenant``)."""

"""Settings of the harvest: where it lives, when files are written, how the sink runs.

Pure pydantic (no pyarrow, no Kafka), so ``driftnet.streams.settings`` can hold it without pulling in
the storage libraries.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from driftnet.harvest.redaction import RedactionSettings
from driftnet.harvest.themes import ThemeSettings

DEFAULT_LOCATION = "driftnet-data/harvest"

_USERINFO = re.compile(r"//[^/@]*@")
_SECRET_PARAM = re.compile(r"((?:secret|token|key|password)[a-z_]*=)[^&]*", re.IGNORECASE)


def masked_uri(uri: str) -> str:
    """``uri`` with any credentials (``user:secret@``, ``secret_key=...``) replaced by ``***``."""
    return _SECRET_PARAM.sub(r"\1***", _USERINFO.sub("//***@", uri))


class RotationPolicy(BaseModel):
    """When a harvest file is written."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    max_rows: int = Field(10_000, ge=1)
    """Rows per file."""
    max_event_span_s: float = Field(3600.0, gt=0)
    """Event-time span of one file (first to last event timestamp)."""
    idle_s: float = Field(10.0, gt=0)
    """A file no row was added to for this long is written (wall clock, no new record needed)."""
    max_age_s: float = Field(60.0, gt=0)
    """A file is written at the latest this long after its first row (wall clock)."""
    max_buffered_bytes: int = Field(64 * 1024 * 1024, ge=1024)
    """Rows held in memory across all open files; past it the largest files are written."""


class HarvestSettings(BaseModel):
    """The failure harvest: a Parquet dataset written by the sink, read by ``driftnet query``."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    location: str = Field(DEFAULT_LOCATION, min_length=1)
    """A local directory, or a pyarrow filesystem URI such as ``s3://bucket/prefix`` (add
    ``?endpoint_override=host:port&scheme=http`` for an S3-compatible server). Credentials are
    best left to the standard ``AWS_*`` variables; any in the URI are masked in output."""
    sink_in_worker: bool = True
    """Run the Parquet sink inside ``driftnet worker``; false when ``driftnet sink`` runs alone."""
    group_id: str = Field("driftnet-harvest", min_length=1)
    """Consumer group of the sink on the failures topic (offsets committed only once durable)."""
    rotation: RotationPolicy = Field(default_factory=RotationPolicy)
    """When a harvest file is written: the first of these limits reached."""
    redaction: RedactionSettings = Field(default_factory=RedactionSettings)
    """Personal data masked in failing events before their records are written anywhere."""
    themes: ThemeSettings = Field(default_factory=ThemeSettings)
    """How ``driftnet harvest themes`` groups failures, and when a theme is news (a signal)."""

    def __repr_args__(self) -> Any:
        """The repr (and so a traceback's or a debugger's view) masks the URI's credentials."""
        for name, value in super().__repr_args__():
            yield name, masked_uri(value) if name == "location" else value

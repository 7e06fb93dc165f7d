"""What the alerting stage reads from the one-partition signals topic: closed windows (with
their findings and canary verdict), worker health, and failure themes that are news
(``driftnet harvest themes --signal``). (Findings of evidently's full drift
check are not alerts of their own: the per-window drift detector alerts on the same drift,
and the full check's finding, with its report, is on the findings topic.)

Every closed window of every cohort is a signal, findings or not: a window without an alert's
condition is what resolves it. One partition means one owner: two workers never page twice.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from driftnet.detectors.canary.verdict import Verdict
from driftnet.detectors.finding import Finding

_FROZEN = ConfigDict(frozen=True, extra="forbid")


class WindowEntry(BaseModel):
    """One cohort's closed window."""

    model_config = _FROZEN

    cohort: tuple[str, str, str, str]
    window_end: int
    count: int = 0
    """Events in the window (merged over every source), as the detectors saw it."""
    late: int = 0
    """Events that came after the window had closed for their partition (not in ``count``)."""
    findings: tuple[Finding, ...] = ()
    verdict: Verdict | None = None


class WindowsSignal(BaseModel):
    """Windows closed together on one merge instance."""

    model_config = _FROZEN

    type: Literal["windows"] = "windows"
    entries: tuple[WindowEntry, ...]


class HealthSignal(BaseModel):
    """One worker's health since its previous check."""

    model_config = _FROZEN

    type: Literal["health"] = "health"
    worker: str
    at_ms: int
    messages: int = Field(ge=0)
    dead_letters: int = Field(ge=0)
    consumer_lag: int | None = None
    sink_error: str | None = None


class ThemeEntry(BaseModel):
    """A failure theme that is new, or grew past ``harvest.themes.growth_factor``."""

    model_config = _FROZEN

    theme_id: str
    reason: str
    terms: tuple[str, ...]
    flag: Literal["new", "growing"]
    count: int = Field(ge=0)
    previous: int = Field(ge=0)
    """Its failures in the previous period of the same length."""
    service: str
    """The service with most of its failures."""
    share_of_reason: float


class ThemesSignal(BaseModel):
    """One run of ``driftnet harvest themes --signal``: the themes of a period that are news.
    Every run is an observation of its ``scope`` (the filters it ran with): a theme flagged
    before and not in this run's entries is clean for this run."""

    model_config = _FROZEN

    type: Literal["themes"] = "themes"
    scope: str
    """The filters of the run (``all``, or ``service=a,reason=b``)."""
    since_ms: int
    until_ms: int
    entries: tuple[ThemeEntry, ...] = ()


Signal = WindowsSignal | HealthSignal | ThemesSignal


class Envelope(BaseModel):
    model_config = _FROZEN

    signal: Annotated[Signal, Field(discriminator="type")]


def read_signal(value: bytes) -> Signal:
    """A message of the signals topic (``ValueError`` when it is not one)."""
    return Envelope.model_validate_json(b'{"signal":' + value + b"}").signal

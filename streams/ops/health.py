"""What ``/health`` answers: healthy or not, and why, from a few facts about the running app.

Pure: the worker (or ``driftnet sink``) gathers the facts (:class:`HealthFacts`), this module
judges them. Healthy means the process is doing its job now: its consumers have joined their
groups, none has stopped, and the harvest sink can write. Consumer lag and dead letters are
metrics and alerts, not health: a worker catching up on a backlog is healthy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict

RUNNING = "running"
"""The state of a mode service (faust's consumer) that is doing its work."""
STARTING = "init"
"""The state of a mode service not started yet."""


@dataclass(frozen=True, slots=True)
class HealthFacts:
    """What the app knows about itself at one moment; None means "not part of this app"."""

    consumer_assigned: bool | None = None
    """The events consumer has had its first partition assignment (possibly empty: more
    workers than partitions is fine)."""
    consumer_state: str | None = None
    """The events consumer's service state: ``init``, ``running``, ``stopping``, ``shutdown``
    or ``crashed``."""
    sink_assigned: bool | None = None
    """The harvest sink's consumer has joined its group (with or without partitions)."""
    sink_running: bool | None = None
    """The harvest sink's loop is running."""
    sink_failing: str | None = None
    """Why the harvest sink's last write failed, until one succeeds."""


class Health(BaseModel):
    """The body of ``/health``."""

    model_config = ConfigDict(frozen=True)

    status: Literal["ok", "unhealthy"]
    reasons: list[str]
    """One sentence per problem; empty when healthy."""

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def http_status(self) -> int:
        """200 when healthy, 503 (Service Unavailable) otherwise."""
        return 200 if self.ok else 503


def evaluate(facts: HealthFacts) -> Health:
    """Judge ``facts``: every problem found, in a stable order."""
    reasons: list[str] = []
    state = facts.consumer_state
    if state is not None and state not in (RUNNING, STARTING):
        reasons.append(f"events consumer is not running (state {state})")
    elif facts.consumer_assigned is False or state == STARTING:
        reasons.append("events consumer not yet assigned: joining its consumer group")
    if facts.sink_running is False:
        reasons.append("harvest sink stopped")
    elif facts.sink_assigned is False:
        reasons.append("harvest sink not yet assigned: joining its consumer group")
    if facts.sink_failing is not None:
        reasons.append(f"harvest sink failing to write: {facts.sink_failing}")
    return Health(status="unhealthy" if reasons else "ok", reasons=reasons)

"""What a stage of the worker is to its app: something that attaches itself in one call."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

Topics = Mapping[str, Any]
"""The app's faust topics by role (``events``, ``dlq``, ``failures``...; ``TopicSettings.by_role``)."""

MAX_REQUEST_BYTES = 1024 * 1024
"""Kafka's default message size limit (``message.max.bytes``)."""
RECORD_MAX_BYTES = MAX_REQUEST_BYTES - 16 * 1024
"""A failure record larger than this (key and headers need room too) is dead-lettered as
``processing_failed`` rather than sent: the broker would refuse it."""


class Stage(Protocol):
    """A part of the worker that runs on the app: built from the settings and the parts it
    shares (counters, detection...), then attached, once, in the order the app starts them."""

    def attach(self, app: Any, topics: Topics) -> None:
        """Declare on ``app`` the stage's agents, timers, services and partition hooks; the
        messages it sends go to ``topics``."""

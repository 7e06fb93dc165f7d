"""The aggregates topic's messages: the map stage's partials and watermark heartbeats, read back
by the merge stage."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import orjson

from driftnet.detectors.windowing.observation import Cohort
from driftnet.detectors.windowing.partials import Partial


def aggregate_key(cohort: Cohort) -> bytes:
    """The aggregates topic's key: service and environment (see :mod:`driftnet.streams.detection.merge_stage`)."""
    return f"{cohort[0]}/{cohort[1]}".encode()


def partial_message(partial: Partial) -> bytes:
    return orjson.dumps({"type": "partial", "partial": partial.to_dict()})


def heartbeat_message(source: str, watermark: float) -> bytes:
    return orjson.dumps({"type": "heartbeat", "source": source, "watermark": watermark})


@dataclass(frozen=True, slots=True)
class Heartbeat:
    source: str
    watermark: float


def read_aggregate(value: bytes) -> Partial | Heartbeat:
    """A message of the aggregates topic; ``ValueError`` when it is not one."""
    try:
        document = orjson.loads(value)
        kind: Literal["partial", "heartbeat"] = document["type"]
        if kind == "heartbeat":
            return Heartbeat(str(document["source"]), float(document["watermark"]))
        if kind == "partial":
            return Partial.from_dict(document["partial"])
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"not an aggregates message: {exc}") from None
    raise ValueError(f"not an aggregates message: unknown type {kind!r}")

"""Benchmark events: the example events, padded to about 1.8 KB like a typical chat call, and
mixed in chosen proportions of healthy, failing and invalid ones."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from harvest.rules import RulesConfig
from streams.events import Lineage
from streams.triage import Triage

ROOT = Path(__file__).resolve().parent.parent


def realistic_events() -> list[dict[str, Any]]:
    """The example events that claim v1 (valid or not), each with a long system prompt."""
    events = []
    for line in (ROOT / "examples" / "events.jsonl").read_bytes().splitlines():
        try:
            event = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if isinstance(event, dict) and "status" in event and event.get("schema_version") == "1":
            messages = event.setdefault("input", {}).setdefault("messages", [])
            messages.insert(0, {"role": "system", "content": "You are a careful assistant. " * 20})
            events.append(event)
    return events


def classified() -> dict[str, list[dict[str, Any]]]:
    """:func:`realistic_events` split into ``healthy``, ``failing`` (a rule fires under the
    default rules) and ``invalid`` (a dead letter)."""
    triage = Triage(RulesConfig())
    kinds: dict[str, list[dict[str, Any]]] = {"healthy": [], "failing": [], "invalid": []}
    now = datetime.now(UTC)
    for event in realistic_events():
        result = triage(orjson.dumps(event), Lineage("bench", 0, 0), now)
        kind = "invalid" if result.dead_letters else "failing" if result.failures else "healthy"
        kinds[kind].append(event)
    return kinds


def unique_events(n: int, *, failing: float = 0.05, invalid: float = 0.001) -> list[dict[str, Any]]:
    """``n`` events, each with its own id: a share ``failing`` fail a rule and a share
    ``invalid`` are dead letters, spread evenly through the stream (deterministic)."""
    kinds = classified()
    out = []
    for i in range(n):
        if int((i + 1) * invalid) > int(i * invalid):
            pool = kinds["invalid"]
        elif int((i + 1) * failing) > int(i * failing):
            pool = kinds["failing"]
        else:
            pool = kinds["healthy"]
        out.append({**pool[i % len(pool)], "event_id": f"bench-{i:08d}"})
    return out

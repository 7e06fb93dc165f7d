"""Benchmark events: the valid examples, padded to about 1.8 KB like a typical chat call."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent


def realistic_events() -> list[dict[str, Any]]:
    """The valid example events, each with a long system prompt (about 1.8 KB in all)."""
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


def unique_events(n: int) -> list[dict[str, Any]]:
    """``n`` events cycling through :func:`realistic_events`, each with its own id."""
    base = realistic_events()
    return [{**base[i % len(base)], "event_id": f"bench-{i:08d}"} for i in range(n)]

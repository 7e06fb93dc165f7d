"""Benchmark events: the example events, padded to about 1.8 KB like a typical chat call, and
mixed in chosen proportions of healthy, failing and invalid ones."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from driftnet.contract.events import Lineage
from driftnet.harvest.rules import RulesConfig
from driftnet.harvest.triage import Triage

ROOT = Path(__file__).resolve().parent.parent
SERVICES = ("support-chat", "search-summarizer", "invoice-extractor")


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


def unique_events(
    n: int,
    *,
    failing: float = 0.05,
    invalid: float = 0.001,
    span_s: float = 720.0,
    end: datetime | None = None,
    cohorts: int | None = None,
) -> list[dict[str, Any]]:
    """``n`` events, each with its own id: a share ``failing`` fail a rule and a share
    ``invalid`` are dead letters, spread evenly through the stream (deterministic).

    Like production traffic, and unlike the example file cycled: event times advance evenly
    over ``span_s`` seconds ending at ``end`` (default: now), so windows open and close, and
    latency, time to first token, cost and token counts vary by up to 10% from event to event,
    so the worst examples a window keeps do not change hands at every tie. Invalid events keep
    their own (possibly broken) timestamp. With ``cohorts``, valid events are spread evenly over
    exactly that many cohorts (service, environment, release, variant; one in four a canary)."""
    kinds = classified()
    last = (end or datetime.now(UTC)).timestamp()
    step = span_s / max(n, 1)
    out = []
    for i in range(n):
        if int((i + 1) * invalid) > int(i * invalid):
            out.append(
                {**kinds["invalid"][i % len(kinds["invalid"])], "event_id": f"bench-{i:08d}"}
            )
            continue
        pool = kinds["failing"] if int((i + 1) * failing) > int(i * failing) else kinds["healthy"]
        event = {**pool[i % len(pool)], "event_id": f"bench-{i:08d}"}
        at = datetime.fromtimestamp(last - span_s + i * step, UTC)
        event["timestamp"] = at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        jitter = 0.9 + 0.2 * ((i * 2654435761) % 1000) / 1000  # deterministic, in [0.9, 1.1)
        for name in ("latency_ms", "ttft_ms", "cost_usd"):
            if isinstance(event.get(name), int | float):
                event[name] = round(event[name] * jitter, 6)
        usage = event.get("usage")
        if isinstance(usage, dict) and isinstance(usage.get("output_tokens"), int):
            event["usage"] = {
                **usage,
                "output_tokens": max(1, round(usage["output_tokens"] * jitter)),
            }
        if cohorts is not None:  # cohort k: one of the services, a release of its own
            k = i % cohorts
            event["service"] = SERVICES[k % len(SERVICES)]
            event["release"] = f"release-{k:05d}"
            event["variant"] = "canary" if k % 4 == 3 else "baseline"
        out.append(event)
    return out

"""Test data builders."""

from __future__ import annotations

from typing import Any


def make_event(**overrides: Any) -> dict[str, Any]:
    """A valid v1 event as a producer would send it; keyword arguments replace fields."""
    event: dict[str, Any] = {
        "event_id": "evt-1",
        "timestamp": "2026-11-25T12:00:00Z",
        "service": "support-chat",
        "environment": "production",
        "release": "gpt-4o+prompt-v7",
        "variant": "baseline",
        "provider": "openai",
        "operation": "chat",
        "request_model": "gpt-4o",
        "input": {"messages": [{"role": "user", "content": "Where is my order?"}]},
        "output": {"messages": [{"role": "assistant", "content": "It ships tomorrow."}]},
        "finish_reasons": ["stop"],
        "latency_ms": 820.0,
        "ttft_ms": 210.0,
        "usage": {"input_tokens": 120, "output_tokens": 40},
        "cost_usd": 0.0012,
        "status": "ok",
        "scores": {"faithfulness": 0.93},
        "attributes": {"tenant": "acme"},
    }
    event.update(overrides)
    return event

"""Realistic v1 events for demos, tests and load: several services, tenants and locales, a
baseline/canary split, and named scenarios in which something goes wrong. Pure: a seeded
``random.Random`` and event times passed in; no clock, no Kafka.

A scenario lasts ``duration_s`` of *event time*; its incident starts at ``incident_at`` (a
share of the duration) and, for bursts and outages, ends at ``incident_until``. The sender
(``driftnet simulate``) maps event time onto wall time with a speedup, so a 30-minute scenario
can play in 30 seconds while every detector sees 30 minutes of windows.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal

ScenarioName = Literal[
    "healthy",
    "canary-latency",
    "canary-quality",
    "cost-spike",
    "input-drift",
    "error-burst",
    "provider-outage",
    "demo",
]


@dataclass(frozen=True, slots=True)
class Service:
    """A product feature: its model setups (baseline and canary) and how it behaves."""

    name: str
    provider: str
    baseline_model: str
    canary_model: str
    prompt: str
    output_type: Literal["text", "json"]
    latency_base_ms: float
    """Fixed part of a call's latency (network, queueing, prompt processing)."""
    ms_per_output_token: float
    input_tokens_median: float
    output_tokens_median: float
    price_in_per_mtok: float
    price_out_per_mtok: float
    weight: float
    """Share of the traffic (relative)."""


SERVICES: Final = (
    Service("support-chat", "openai", "gpt-4o-2024-08-06", "gpt-4.1-2025-04-14", "support",
            "text", 350.0, 9.0, 900.0, 160.0, 2.5, 10.0, 0.5),
    Service("search-summarizer", "anthropic", "claude-sonnet-4-5", "claude-haiku-4-5", "sum",
            "text", 450.0, 7.0, 2400.0, 220.0, 3.0, 15.0, 0.3),
    Service("invoice-extractor", "openai", "gpt-4o-mini", "gpt-4.1-mini", "extract",
            "json", 250.0, 5.0, 1400.0, 120.0, 0.15, 0.6, 0.2),
)  # fmt: skip
TENANTS: Final = ("acme", "globex", "initech", "umbrella", "hooli", "stark")
LOCALES: Final = ("en", "en", "en", "de", "fr", "es")
ENVIRONMENT: Final = "production"


@dataclass(frozen=True, slots=True)
class Scenario:
    """What goes wrong, to whom, and when (shares of the duration)."""

    name: ScenarioName
    description: str
    incident_at: float = 0.4
    incident_until: float = 1.0
    canary_only: bool = True
    service: str | None = None
    """The service the incident hits; None: every service."""
    provider: str | None = None
    """The provider the incident hits (an outage)."""
    latency_scale: float = 1.0
    output_tokens_scale: float = 1.0
    input_tokens_scale: float = 1.0
    error_rate: float | None = None
    refusal_rate: float | None = None
    score_shift: float = 0.0
    negative_feedback_rate: float | None = None
    locales: tuple[str, ...] | None = None
    canary_traffic: float = 1.0
    """Share of the canary's traffic it keeps (0: rolled back, its calls go to the baseline)."""
    also: tuple[Scenario, ...] = ()
    """Further incidents, each with its own shares of the duration and whom it hits: one
    scenario can tell a story in phases (the first incident that applies wins)."""


SCENARIOS: Final[dict[ScenarioName, Scenario]] = {
    s.name: s
    for s in (
        Scenario("healthy", "steady traffic, canary as good as baseline"),
        Scenario("canary-latency", "the canary's latency rises 80%", latency_scale=1.8),
        Scenario(
            "canary-quality",
            "the canary refuses more, scores lower and users rate it worse",
            refusal_rate=0.08,
            score_shift=-0.2,
            negative_feedback_rate=0.5,
        ),
        Scenario("cost-spike", "the canary answers at 3x the length", output_tokens_scale=3.0),
        Scenario(
            "input-drift",
            "search-summarizer inputs grow 2.5x and shift to German and French",
            canary_only=False,
            service="search-summarizer",
            input_tokens_scale=2.5,
            locales=("de", "fr"),
        ),
        Scenario(
            "error-burst",
            "support-chat fails a quarter of its calls for a while",
            incident_until=0.7,
            canary_only=False,
            service="support-chat",
            error_rate=0.25,
        ),
        Scenario(
            "provider-outage",
            "every anthropic call fails (timeouts) for a while",
            incident_until=0.7,
            canary_only=False,
            provider="anthropic",
            error_rate=0.95,
            latency_scale=3.0,
        ),
        Scenario(
            "demo",
            "healthy, then support-chat's canary slows down 80% and is rolled back, then "
            "search-summarizer's canary refuses more, scores lower and is rated worse",
            incident_at=0.3,
            incident_until=0.55,
            service="support-chat",
            latency_scale=1.8,
            also=(
                Scenario(
                    "demo",
                    "support-chat's canary rolled back",
                    incident_at=0.55,
                    service="support-chat",
                    canary_traffic=0.0,
                ),
                Scenario(
                    "demo",
                    "search-summarizer's canary gets worse",
                    incident_at=0.55,
                    service="search-summarizer",
                    refusal_rate=0.08,
                    score_shift=-0.2,
                    negative_feedback_rate=0.5,
                ),
            ),
        ),
    )
}


@dataclass(slots=True)
class Simulator:
    """Events of one scenario, in event-time order, reproducible from the seed."""

    scenario: Scenario
    start: datetime
    duration_s: float
    seed: int = 0
    canary_share: float = 0.25
    """Share of each service's traffic on the canary release."""
    _rng: random.Random = field(init=False)
    _counter: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def events(self, count: int) -> Iterator[dict[str, Any]]:
        """``count`` events spread evenly over the duration (event time), with jitter."""
        step = self.duration_s / max(count, 1)
        for i in range(count):
            offset = min(i * step + self._rng.random() * step, self.duration_s)
            yield self.event_at(offset)

    def event_at(self, offset_s: float) -> dict[str, Any]:
        """One event ``offset_s`` seconds of event time into the scenario."""
        rng = self._rng
        service = rng.choices(SERVICES, weights=[s.weight for s in SERVICES])[0]
        canary = rng.random() < self.canary_share
        progress = offset_s / self.duration_s if self.duration_s else 0.0
        incident = self._incident(service, canary, progress)
        if (
            incident is not None
            and canary
            and incident.canary_traffic < 1.0  # no draw otherwise: seeds keep their events
            and rng.random() >= incident.canary_traffic
        ):
            canary = False  # rolled back (or dialled down): the call goes to the baseline
            incident = self._incident(service, canary, progress)
        self._counter += 1

        model = service.canary_model if canary else service.baseline_model
        version = 8 if canary else 7
        locale = rng.choice(incident.locales if incident and incident.locales else LOCALES)
        input_tokens = max(
            20,
            round(
                rng.lognormvariate(math.log(service.input_tokens_median), 0.5)
                * (incident.input_tokens_scale if incident else 1.0)
            ),
        )
        output_tokens = max(
            1,
            round(
                rng.lognormvariate(math.log(service.output_tokens_median), 0.45)
                * (incident.output_tokens_scale if incident else 1.0)
            ),
        )
        latency = (
            service.latency_base_ms * rng.lognormvariate(0.0, 0.25)
            + service.ms_per_output_token * output_tokens * rng.lognormvariate(0.0, 0.15)
            + 0.05 * input_tokens
        ) * (incident.latency_scale if incident else 1.0)
        ttft = service.latency_base_ms * rng.lognormvariate(-0.4, 0.3) + 0.04 * input_tokens

        error_rate = incident.error_rate if incident and incident.error_rate is not None else 0.01
        refusal_rate = (
            incident.refusal_rate if incident and incident.refusal_rate is not None else 0.005
        )
        failed = rng.random() < error_rate
        refused = not failed and rng.random() < refusal_rate
        truncated = not failed and not refused and rng.random() < 0.01
        score = min(
            1.0, max(0.0, rng.betavariate(18, 2) + (incident.score_shift if incident else 0.0))
        )
        negative = incident.negative_feedback_rate if incident else None
        event_time = self.start + timedelta(seconds=offset_s)
        event: dict[str, Any] = {
            "event_id": f"sim-{self.seed}-{self._counter:09d}",
            "timestamp": event_time.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "service": service.name,
            "environment": ENVIRONMENT,
            "release": f"{model}+{service.prompt}-v{version}",
            "variant": "canary" if canary else "baseline",
            "prompt_version": f"{service.prompt}-v{version}",
            "provider": service.provider,
            "operation": "chat",
            "request_model": model,
            "response_model": model,
            "request": {"temperature": 0.2, "max_tokens": 1024},
            "input": {"messages": self._messages(service, rng, input_tokens)},
            "output_type": service.output_type,
            "latency_ms": round(latency, 1),
            "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
            "cost_usd": round(
                (
                    input_tokens * service.price_in_per_mtok
                    + output_tokens * service.price_out_per_mtok
                )
                / 1e6,
                6,
            ),
            "attributes": {"tenant": rng.choice(TENANTS), "locale": locale},
        }
        if failed:
            event.update(
                status="error",
                error_type="timeout" if incident and incident.provider else "rate_limited",
                output={"messages": []},
                finish_reasons=[],
            )
            event["usage"]["output_tokens"] = 0
            return event
        event.update(
            status="ok",
            ttft_ms=round(min(ttft, latency), 1),
            output={"messages": [{"role": "assistant", "content": self._answer(service, refused)}]},
            finish_reasons=["length" if truncated else "stop"],
            scores={"faithfulness": round(score, 3)},
        )
        if rng.random() < (0.3 if negative else 0.05):
            bad = negative if negative is not None else 0.1
            event["feedback"] = {"rating": -1.0 if rng.random() < bad else 1.0}
        return event

    def _incident(self, service: Service, canary: bool, progress: float) -> Scenario | None:
        if self.scenario.name == "healthy":
            return None
        for s in (self.scenario, *self.scenario.also):
            if not s.incident_at <= progress < s.incident_until:
                continue
            if s.canary_only and not canary:
                continue
            if s.service is not None and s.service != service.name:
                continue
            if s.provider is not None and s.provider != service.provider:
                continue
            return s
        return None

    @staticmethod
    def _messages(service: Service, rng: random.Random, tokens: int) -> list[dict[str, str]]:
        words = max(tokens * 3 // 4, 5)
        filler = " ".join(rng.choice(_WORDS) for _ in range(min(words, 150)))
        return [
            {"role": "system", "content": f"You are the {service.name} assistant. Be accurate."},
            {"role": "user", "content": filler},
        ]

    @staticmethod
    def _answer(service: Service, refused: bool) -> str:
        if refused:
            return "I'm sorry, but I can't help with that request."
        if service.output_type == "json":
            return '{"invoice_number": "INV-2291", "total": 1234.5, "currency": "EUR"}'
        return "Here is what I found: the order ships on Monday and tracking follows by email."


_WORDS: Final = (
    "order", "invoice", "shipping", "refund", "account", "password", "summary", "report",
    "delivery", "billing", "plan", "upgrade", "error", "page", "article", "search", "total",
    "customer", "support", "policy", "question", "please", "thanks", "today", "status",
)  # fmt: skip


def start_of(moment: datetime | None = None) -> datetime:
    """A scenario start: ``moment`` (UTC) or now, cut to the second."""
    return (moment or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)

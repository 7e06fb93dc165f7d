"""A seeded synthetic failure generator with known themes: several distinct ways each reason
fails, each with its own words, mixed with filler every theme shares."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from driftnet.harvest.records import FailureRecord
from driftnet.harvest.themes import FailureText

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


@dataclass(frozen=True)
class ThemeSpec:
    """A theme the generator writes: its reason, the words it is about, its answers."""

    key: str
    reason: str
    questions: tuple[str, ...]
    subjects: tuple[str, ...]
    answers: tuple[str, ...]


THEMES: dict[str, ThemeSpec] = {
    spec.key: spec
    for spec in (
        ThemeSpec(
            "refund",
            "refusal",
            (
                "Can I get a refund for order {n}?",
                "What is your refund policy for {s}?",
                "I want my money back for the {s} I returned, refund please",
            ),
            ("headphones", "jacket", "subscription", "laptop bag", "gift card"),
            (
                "I'm sorry, I can't help with refund requests.",
                "Sorry, I cannot discuss the refund policy.",
            ),
        ),
        ThemeSpec(
            "medical",
            "refusal",
            (
                "What dose of {s} should I take for my headache?",
                "Is it safe to mix {s} with alcohol? My doctor is away",
                "Which medication dosage of {s} is right for a child?",
            ),
            ("ibuprofen", "paracetamol", "aspirin", "antibiotics", "melatonin"),
            (
                "I'm sorry, I can't give medical advice. Please ask a doctor or pharmacist.",
                "I cannot provide medical dosage advice; consult a pharmacist.",
            ),
        ),
        ThemeSpec(
            "legal",
            "refusal",
            (
                "Can I sue my landlord over the {s}?",
                "Write a lawsuit against my employer about {s}",
                "Is it legal to break my lease because of {s}?",
            ),
            ("deposit", "mould", "noise", "eviction", "contract"),
            (
                "I'm sorry, I can't provide legal advice; please contact a lawyer.",
                "I cannot help with lawsuits or legal claims.",
            ),
        ),
        ThemeSpec(
            "truncated",
            "invalid_json",
            ("Return the order {n} as JSON", "Give me the shipment {s} as JSON"),
            ("tracking", "status", "items", "address", "history"),
            (
                '{{"order": {n}, "items": [{{"sku": "A{n}", "name": "unterminated string',
                '{{"shipment": {{"carrier": "UPS", "events": [{{"at": "2026-',
            ),
        ),
        ThemeSpec(
            "markdown",
            "invalid_json",
            ("Summarise the ticket {n} as JSON", "Classify the complaint about {s} as JSON"),
            ("billing", "delivery", "login", "warranty", "coupon"),
            (
                "Sure! Here is the summary in markdown:\n```markdown\n# Ticket summary\n- bullet\n```",
                "Here you go: **Summary** the customer is unhappy (markdown table below)",
            ),
        ),
    )
}

FILLER = ("thanks", "hello there", "quick question", "asap please", "hi team", "")
CONTEXT = (
    "I am using the mobile app on android.", "My account is on the premium plan.",
    "This is the third time I ask.", "I tried the website first but it did not work.",
    "Please answer in English.", "My colleague had the same issue yesterday.",
    "I am writing from Germany.", "Can you keep it short?", "I already checked the FAQ page.",
    "Thanks in advance for your help with this.",
)  # fmt: skip
"""Sentences any theme's failure may carry (``noise``): words shared across themes."""


def failure_texts(
    counts: dict[str, int],
    *,
    seed: int = 7,
    start: datetime | None = None,
    days: float = 7.0,
    noise: float = 0.0,
) -> tuple[list[FailureText], list[str]]:
    """``counts[theme key]`` failures of each theme (timestamps spread over ``days`` from
    ``start``), shuffled, and each failure's theme key (the truth to compare with). With
    ``noise``, each question word is dropped with that probability and each failure carries
    up to two :data:`CONTEXT` sentences (words shared across themes) in its question."""
    rng = random.Random(seed)
    start = start or NOW - timedelta(days=days)
    rows = [
        (_failure(THEMES[key], index, rng, start, days, seed, noise), key)
        for key, count in counts.items()
        for index in range(count)
    ]
    rng.shuffle(rows)
    return [row for row, _ in rows], [key for _, key in rows]


def _failure(
    spec: ThemeSpec,
    index: int,
    rng: random.Random,
    start: datetime,
    days: float,
    seed: int,
    noise: float,
) -> FailureText:
    values: dict[str, Any] = {"n": rng.randint(1000, 99999), "s": rng.choice(spec.subjects)}
    question = rng.choice(spec.questions).format(**values)
    if noise:
        words = [w for w in question.split() if rng.random() >= noise] or question.split()[:1]
        context = rng.sample(CONTEXT, rng.randint(0, 2))
        question = " ".join([*context[:1], *words, *context[1:]])
    answer = rng.choice(spec.answers).format(**values)
    text = f"{rng.choice(FILLER)} {question}\n{answer}".strip()
    record = f"{seed}-{spec.key}-{index}"
    return FailureText(
        record_id=record,
        event_id=f"evt-{record}",
        reason=spec.reason,
        service=rng.choice(("support-chat", "orders-api")),
        timestamp=start + timedelta(seconds=rng.uniform(0, days * 86400)),
        text=text,
    )


def event_fields(failure: FailureText) -> dict[str, Any]:
    """The event fields (for :func:`tests.support.factories.make_event`) of a generated
    failure: its question as the user message, its answer as the output."""
    assert failure.text is not None
    question, _, answer = failure.text.partition("\n")
    return {
        "event_id": failure.event_id,
        "timestamp": failure.timestamp.isoformat(),
        "service": failure.service,
        "input": {"messages": [{"role": "user", "content": question}]},
        "output": {"messages": [{"role": "assistant", "content": answer}]},
    }


def write_harvest(target: Path | str, failures: list[FailureText]) -> int:
    """Write generated ``failures`` as real harvest files (one per ``date=/service=`` folder,
    as the sink would); returns the number of files."""
    from driftnet.streams.sink.parquet import folder_of
    from tests.support.harvest_data import failure, write_failures

    folders: dict[str, list[FailureRecord]] = {}
    for item in failures:
        record = failure(reason=item.reason, **event_fields(item))
        folders.setdefault(folder_of(record), []).append(record)
    offset = 0
    for records in folders.values():
        write_failures(target, records, start_offset=offset)
        offset += len(records)
    return len(folders)

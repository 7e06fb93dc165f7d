"""Text drift on the stream side, without Kafka: what an event's texts are, redacted before they
travel; a switch of answer language through both aggregation stages to a text check, its
findings and ``drift`` records; and the checker process running it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from driftnet.contract.events import InferenceEvent
from driftnet.detectors.config import DetectorsConfig
from driftnet.detectors.families.text_check import text_check_findings
from driftnet.detectors.families.text_drift import TextCheckRequest
from driftnet.detectors.finding import Finding
from driftnet.detectors.windowing.partials import Partial
from driftnet.harvest.records import FailureRecord
from driftnet.harvest.redaction import Redactor
from driftnet.streams.detection.aggregate_messages import read_aggregate
from driftnet.streams.detection.full_checks import FullChecks, run_text_check
from driftnet.streams.detection.map_stage import MapStage
from driftnet.streams.detection.observations import texts_of
from driftnet.streams.detection.window_records import WindowRecords
from tests.support.factories import make_event
from tests.support.stages import run_stages
from tests.support.texts import answers, questions

START = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
SYSTEM = {"role": "system", "content": "You are a careful support assistant. " * 10}


def test_the_texts_are_the_last_question_and_the_answer() -> None:
    """The input text is the last user message (not the system prompt, not an earlier turn);
    each side keeps its whole length; a side not captured is None."""
    event = InferenceEvent.model_validate(
        make_event(
            input={
                "messages": [
                    SYSTEM,
                    {"role": "user", "content": "Hello"},
                    {"role": "assistant", "content": "Hi, how can I help?"},
                    {"role": "user", "content": [{"type": "text", "text": "Where is my order?"}]},
                ]
            },
            output={"text": "It ships tomorrow. " * 40},
        )
    )
    texts = texts_of(event, 100)
    assert texts.input == "Where is my order?"
    assert texts.output == ("It ships tomorrow. " * 40)[:100]
    assert (texts.input_chars, texts.output_chars) == (18, 19 * 40)
    blind = InferenceEvent.model_validate({k: v for k, v in make_event().items() if k != "output"})
    assert texts_of(blind, 100).output is None


def test_sampled_texts_are_redacted_before_they_travel() -> None:
    """An e-mail address in the question, and one the cut goes through, are masked in the
    window's text sample as it leaves the map side (it travels on the aggregates topic and
    stays in the detectors' state); a call without content samples no text."""
    redactor = Redactor()
    stage = MapStage(DetectorsConfig(), "events", lambda t: redactor.redact_text(t)[0])
    answer = "x" * 185 + " mail ana.lopez@example.com for the refund"  # cut at 200
    asking = make_event(
        input={"messages": [{"role": "user", "content": "I am bob@example.org, help"}]},
        output={"text": answer},
    )
    silent = make_event(event_id="evt-2", output=None, input={})
    for i, document in enumerate((asking, silent)):
        stage.observe(0, i, InferenceEvent.model_validate(document), [], b"{}", now=0.0)
    [message, *_] = stage.due(START.timestamp() + 10_000, 1).messages
    partial = read_aggregate(message[2])
    assert isinstance(partial, Partial)
    [item] = partial.texts.items
    assert item.event_id == "evt-1"
    assert item.text.input == "I am [REDACTED:email], help"
    assert item.text.output is not None
    assert "ana.lopez" not in item.text.output
    assert item.text.output == "x" * 185 + " mail [REDACTED"


def _events(windows: int, language: str, first: int, seed: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    events = []
    for index in range(first, first + windows):
        asked = questions(rng, 60, "billing")
        said = answers(rng, 60, "prose", language)
        for i, (question, answer) in enumerate(zip(asked, said, strict=True)):
            at = START + timedelta(seconds=60 * index + i)
            events.append(
                make_event(
                    event_id=f"{language}-{index}-{i}",
                    timestamp=at.isoformat().replace("+00:00", "Z"),
                    input={"messages": [SYSTEM, {"role": "user", "content": question}]},
                    output={"messages": [{"role": "assistant", "content": answer}]},
                    latency_ms=float(rng.lognormal(7, 0.3)),
                )
            )
    return events


@pytest.fixture(scope="module")
def spanish_check() -> TextCheckRequest:
    """The first text check the merge stage asks for once every window since the last one
    had Spanish answers (its reference: 5 English windows and the first Spanish one)."""
    events = [*_events(12, "en", 0, seed=1), *_events(6, "es", 12, seed=2)]
    judged = run_stages(events, DetectorsConfig())
    checks = [
        (j.window.window.start, c)
        for j in judged
        for c in j.full_checks
        if isinstance(c, TextCheckRequest)
    ]
    assert checks, "the merge stage asked for no text check"
    spanish_group = START.timestamp() + 60 * (12 + 4)
    return next(c for start, c in checks if start >= spanish_group)


def test_a_language_switch_is_checked_found_and_harvested_as_drift_records(
    spanish_check: TextCheckRequest,
) -> None:
    """Both stages sample the texts; the check (as the checker process runs it) finds the
    answers drifted, names Spanish terms, and its evidence becomes ``drift`` records of the
    window's kept events, Spanish answers, the finding's id on them."""
    result, cpu_s = run_text_check(spanish_check)
    assert cpu_s > 0
    findings = text_check_findings(spanish_check, result)
    [finding] = [f for f in findings if f.metric == "drift[text.output]"]
    assert "drift[text.input]" not in {f.metric for f in findings}
    assert finding.example_event_ids
    assert all(i.startswith("es-") for i in finding.example_event_ids)
    assert "'de'" in finding.message or "'su'" in finding.message
    at = datetime.now(UTC)
    records = WindowRecords("events").drift_evidence(finding, spanish_check.examples, at)
    assert {r.event.event_id for r in records} == set(finding.example_event_ids)
    for record in records:
        assert record.kind == "drift"
        assert record.finding_id == finding.finding_id
        assert record.reasons[0].subject == "drift[text.output]"
        assert "su" in record.event.output_text.split()


def test_the_checker_process_runs_a_text_check_and_harvests_its_evidence(
    spanish_check: TextCheckRequest, tmp_path: Path
) -> None:
    """FullChecks runs the text check in its spawned checker process, publishes the findings
    and harvests their ``drift`` records."""
    published: list[Finding] = []
    harvested: list[FailureRecord] = []

    async def publish(finding: Finding) -> None:
        published.append(finding)

    async def harvest(record: FailureRecord) -> None:
        harvested.append(record)

    async def run() -> None:
        checks = FullChecks(tmp_path, WindowRecords("events"))
        checks.push(spanish_check)
        try:
            for _ in range(600):
                await checks.step(0.0, publish, harvest)
                if published:
                    return
                await asyncio.sleep(0.1)
        finally:
            checks.close()

    asyncio.run(run())
    assert "drift[text.output]" in {f.metric for f in published}
    assert harvested
    assert {r.kind for r in harvested} == {"drift"}

"""Absent is not empty, in the windows: events without captured content leave the
content-based rates unmeasured (not zero), in the detectors and in the canary judge."""

from __future__ import annotations

from typing import Any

import numpy as np

from driftnet.contract.events import InferenceEvent
from driftnet.detectors.canary.config import CanarySettings
from driftnet.detectors.canary.judge import CanaryJudge
from driftnet.detectors.families.quality import Rate
from driftnet.detectors.windowing.observation import Observation
from driftnet.detectors.windowing.partials import Partial
from driftnet.detectors.windowing.windows import Window
from driftnet.harvest.rules import FailureRules
from driftnet.streams.detection.observations import observation_of
from tests.support.canary_sim import BASELINE, CANARY, Arm, Rollout, arm_window, run
from tests.support.factories import make_event

COHORT = ("chat", "production", "r1", "baseline")


def _observation(**overrides: Any) -> Observation:
    event = InferenceEvent.model_validate(make_event(**overrides))
    return observation_of(event, FailureRules().reasons(event), b"{}")


def test_an_event_without_content_is_observed_as_such() -> None:
    """No output content: not counted as content, its size known from its tokens only."""
    captured = _observation()
    assert (captured.has_content, captured.output_size_known, captured.empty) == (True, True, False)
    blind = _observation(output=None, input=None, usage={"input_tokens": 12, "output_tokens": 40})
    assert (blind.has_content, blind.output_size_known, blind.empty) == (False, True, False)
    assert blind.input_chars is None, "input not captured is not an input of 0 characters"
    unknown = _observation(output=None, usage={})
    assert (unknown.has_content, unknown.output_size_known) == (False, False)
    zero = _observation(output=None, usage={"output_tokens": 0})
    assert zero.empty
    assert zero.output_size_known


def test_windows_count_answers_with_content() -> None:
    """A window counts its answered events with content apart; errors are not answers."""
    partial = Partial.empty(COHORT, Window(0, 60), "events/0")
    partial.add(_observation())
    partial.add(_observation(event_id="e2", output=None, usage={"output_tokens": 9}))
    partial.add(_observation(event_id="e3", output=None, usage={}))
    partial.add(_observation(event_id="e4", status="error", output=None))
    assert (partial.count, partial.errors, partial.answered) == (4, 1, 3)
    assert (partial.with_content, partial.with_output_size, partial.uncaptured) == (1, 2, 2)
    again = Partial.from_dict(partial.to_dict())
    assert (again.with_content, again.with_output_size) == (1, 2)
    merged = Partial.merge([partial, again])
    assert (merged.with_content, merged.with_output_size) == (2, 4)


def test_a_partial_from_before_the_counters_reads_every_answer_as_content() -> None:
    """A partial written by an older worker (no content counters) keeps its rates as they were."""
    partial = Partial.empty(COHORT, Window(0, 60), "events/0")
    for i in range(5):
        partial.add(_observation(event_id=f"e{i}", status="error" if i == 0 else "ok"))
    old = partial.to_dict()
    del old["with_content"], old["with_output_size"]
    back = Partial.from_dict(old)
    assert (back.with_content, back.with_output_size) == (4, 4)


def _window(i: int, refusals: int, content: bool, n: int = 400) -> Partial:
    partial = Partial.empty(COHORT, Window(60 * i, 60 * i + 60), "*")
    for j in range(n):
        partial.add(
            Observation(f"e{i}-{j}", 60.0 * i, COHORT, refusal=content and j < refusals,
                        has_content=content, output_size_known=content)
        )  # fmt: skip
    return partial


def test_a_window_without_content_is_unmeasured_not_zero() -> None:
    """Windows without content neither fire nor pull the reference's refusal rate to zero."""
    detector = Rate("refusal_rate")
    findings = [detector.update(_window(i, 8, content=True)).findings for i in range(4)]
    findings += [detector.update(_window(i, 0, content=False)).findings for i in range(4, 10)]
    assert [list(f) for f in findings] == [[]] * 10
    # 2% before; 9% now: against a reference diluted by the blind windows' zeros it would be
    # judged against ~0.6%; it is judged against the 2% the content showed
    found = detector.update(_window(10, 36, content=True)).findings
    assert [f.metric for f in found] == ["refusal_rate"]
    assert found[0].reference == 0.02


def test_empty_output_rate_is_not_fired_by_uncaptured_content() -> None:
    """A cohort whose producer turns content capture off raises no empty-output finding."""
    detector = Rate("empty_rate")
    for i in range(4):
        assert not detector.update(_window(i, 0, content=True)).drift_detected
    blind = Partial.empty(COHORT, Window(240, 300), "*")
    for j in range(400):
        blind.add(_observation(event_id=f"b{j}", output=None, usage={"output_tokens": 30}))
    assert blind.empties == 0
    assert not detector.update(blind).drift_detected


def _verdicts(canary: Arm, windows: int = 12) -> list[Any]:
    rollout = Rollout(windows=windows, requests_per_window=4_000, canary_share=0.3, canary=canary)
    return run(rollout, seed=11, settings=CanarySettings())


def test_a_canary_that_stops_sending_content_is_not_a_quality_win() -> None:
    """A canary without content has an unmeasured refusal rate (Nodata), and the verdict says
    why; the same canary with content and a 6% refusal rate fails that metric."""
    blind = _verdicts(Arm(refusal_rate=0.06, content_share=0.0))[-1]
    metric = next(m for m in blind.metrics if m.metric == "refusal_rate")
    assert metric.classification == "Nodata"
    assert metric.cumulative.canary_n == 0
    assert any(r.startswith("content not captured: the canary sent") for r in blind.reasons)
    seen = _verdicts(Arm(refusal_rate=0.06))[-1]
    metric = next(m for m in seen.metrics if m.metric == "refusal_rate")
    assert metric.failing
    assert not any(r.startswith("content not captured") for r in seen.reasons)


def test_a_judge_state_from_before_the_counter_restores() -> None:
    """Judge state saved by an older worker (no with_content) restores with every answer as
    content, and judges on."""
    rng = np.random.default_rng(3)
    judge = CanaryJudge(CANARY, CanarySettings())
    for i in range(3):
        window = Window(60 * i, 60 * i + 60)
        judge.update(
            arm_window(CANARY, window, Arm(), 600, rng),
            arm_window(BASELINE, window, Arm(), 2_400, rng),
        )
    state = judge.state()
    for arm in state["arms"]:
        del arm["counters"]["with_content"]
    restored = CanaryJudge.restored(CanarySettings(), state)
    counters = restored.state()["arms"][0]["counters"]
    assert counters["with_content"] == counters["count"] - counters["errors"]

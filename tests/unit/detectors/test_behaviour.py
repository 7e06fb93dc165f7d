"""What individual detectors decide beyond the generic suite: absolute limits, the baseline
cohort as a reference, evidence, prices, guards."""

from __future__ import annotations

import pytest

from driftnet.detectors.cohort import CohortDetectors
from driftnet.detectors.config import DetectorsConfig
from driftnet.detectors.families.cost import PerRequest, SpendPerHour
from driftnet.detectors.families.latency import LatencyQuantile
from driftnet.detectors.families.quality import Rate
from driftnet.detectors.families.volume import VolumeDrop
from driftnet.detectors.settings import (
    CostSettings,
    DetectorSettings,
    LatencySettings,
    PriceEntry,
    PriceTable,
)
from driftnet.detectors.windowing.observation import Observation
from driftnet.detectors.windowing.partials import Partial
from driftnet.detectors.windowing.windows import Window
from tests.support.detector_streams import CANARY, COHORT, STATIONARY, stream, window_partial


def test_latency_slo_is_absolute_and_needs_no_history() -> None:
    """An SLO breach fires on the first window, critical, against the SLO itself."""
    settings = DetectorSettings(latency=LatencySettings(slo_p95_ms=1000))
    (window,) = stream(1, 1)
    (finding,) = LatencyQuantile("p95", settings).update(window).findings
    assert (finding.reference_kind, finding.threshold, finding.severity) == (
        "absolute",
        1000,
        "critical",
    )
    assert finding.observed > 1000
    assert finding.example_kind == "slowest"
    assert finding.example_event_ids == window.example_ids("slowest")


def test_canary_is_judged_against_the_baseline_in_the_same_window() -> None:
    """With a baseline aggregate given, a canary regression is found with no history at all
    (latency x2 and errors 2% -> 15%: against one baseline window of ~200 events, at the
    alphas that keep a healthy day quiet, x1.5 and 10% are not always provable)."""
    import numpy as np

    rng = np.random.default_rng(5)
    baseline = window_partial(rng, 0, STATIONARY, COHORT)
    canary = window_partial(rng, 0, STATIONARY.step(latency_scale=2.0, error_rate=0.15), CANARY)
    latency, errors = LatencyQuantile("p95"), Rate("error_rate")
    (slow,) = latency.update(canary, baseline).findings
    (failing,) = errors.update(canary, baseline).findings
    assert slow.reference_kind == failing.reference_kind == "baseline"
    assert slow.cohort == CANARY
    assert latency.history_size == 1  # the canary's own window joins its own reference


def test_baseline_like_the_canary_finds_nothing() -> None:
    """Same traffic in both arms: no finding from any detector."""
    import numpy as np

    rng = np.random.default_rng(6)
    watch = CohortDetectors.of(DetectorsConfig(), CANARY)
    baseline = window_partial(rng, 0, STATIONARY, COHORT)
    canary = window_partial(rng, 0, STATIONARY, CANARY)
    assert watch.update(canary, baseline) == []


def test_traffic_to_zero_is_critical() -> None:
    """A cohort that stops sending: the empty window is a critical volume finding."""
    detector = VolumeDrop()
    for window in stream(2, 5):
        detector.update(window)
    (finding,) = detector.update(Partial.empty(COHORT, Window(300, 360), "*")).findings
    assert (finding.observed, finding.severity) == (0, "critical")


def test_thin_windows_are_not_judged() -> None:
    """Below the minimum samples a rate is not judged, however bad it looks."""
    detector = Rate("error_rate")
    for window in stream(3, 5):
        detector.update(window)
    tiny = Partial.empty(COHORT, Window(300, 360), "*")
    for i in range(10):
        tiny.add(Observation(f"e{i}", 300.0, COHORT, is_error=True))
    assert not detector.update(tiny).drift_detected


def test_spend_over_budget_is_critical_and_names_the_price_table() -> None:
    """Spend per hour over the budget fires; priced costs carry the price table's version."""
    settings = DetectorSettings(cost=CostSettings(budget_usd_per_hour=1.0))
    prices = PriceTable(
        version="2026-11-01", models={"m": PriceEntry(input_per_mtok=100, output_per_mtok=100)}
    )
    window = Partial.empty(COHORT, Window(0, 60), "*")
    for i in range(100):
        window.add(Observation(f"e{i}", 1.0, COHORT, model="m", input_tokens=100), prices)
    (finding,) = SpendPerHour(settings).update(window).findings
    assert finding.observed == pytest.approx(100 * 100 * 100 / 1e6 * 60)
    assert finding.price_table_version == "2026-11-01"
    assert finding.severity == "critical"


def test_cost_per_request_findings_point_at_the_costliest_events() -> None:
    """A cost finding's examples are the window's costliest events, whose records it carries."""
    detector = PerRequest("cost_usd")
    windows = [*stream(4, 12), *stream(5, 1, STATIONARY.step(cost_scale=3.0), first=12)]
    findings = [detector.update(w).findings for w in windows][-1]
    (finding,) = findings
    assert finding.example_event_ids == windows[-1].example_ids("costliest")
    assert finding.effect_size is not None
    assert finding.effect_size > 2


def test_a_finding_id_is_stable_and_distinguishes_references() -> None:
    """The same finding recomputed has the same id; trailing and baseline findings differ."""
    settings = DetectorSettings(latency=LatencySettings(slo_p95_ms=1000))
    (window,) = stream(1, 1)
    first = LatencyQuantile("p95", settings).update(window).findings[0]
    again = LatencyQuantile("p95", settings).update(window).findings[0]
    assert first.finding_id == again.finding_id
    other = first.model_copy(update={"reference_kind": "baseline"})
    assert other.finding_id != first.finding_id


def test_importing_detectors_loads_neither_scipy_nor_evidently() -> None:
    """``import driftnet.detectors.families.registry`` stays fast: scipy, pandas and evidently load on first use."""
    import subprocess
    import sys

    code = (
        "import sys, driftnet.detectors.families.registry, driftnet.detectors.cohort\n"
        "print(','.join(m for m in ('scipy', 'pandas', 'evidently') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""


def test_full_check_queue_keeps_to_its_cpu_share() -> None:
    """Checks run while the bucket is positive; an hour at 10% allows about 360 CPU seconds."""
    from driftnet.detectors.families.budget import FullCheckQueue

    queue: FullCheckQueue[int] = FullCheckQueue(share=0.1, burst_s=5.0)
    for i in range(10_000):
        queue.push(i, triggered=False)
    spent = 0.0
    for second in range(3600):
        while (request := queue.next(now=float(second))) is not None:
            assert request >= 0
            queue.charge(cpu_s=0.5, now=float(second))
            spent += 0.5
    assert 355 <= spent <= 370


def test_full_check_queue_runs_triggered_checks_first_and_drops_old_cadence_ones() -> None:
    """A check the cheap tier asked for jumps the queue; overflow drops cadence checks only."""
    from driftnet.detectors.families.budget import FullCheckQueue

    queue: FullCheckQueue[str] = FullCheckQueue(max_pending=2)
    queue.push("cadence-1", triggered=False)
    queue.push("cadence-2", triggered=False)
    queue.push("moved", triggered=True)
    assert (queue.pending, queue.dropped) == (2, 1)
    assert queue.next(now=0.0) == "moved"
    assert queue.next(now=0.0) == "cadence-2"

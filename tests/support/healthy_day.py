"""A seeded day of one cohort's traffic, window by window, for the detectors' healthy-day checks.

Written apart from :mod:`tests.support.detector_streams` and ``sandbox/simulation.py``, with its
own distributions, so the detectors are not tuned to the generator they are tested on:

* requests arrive at 2-8 per second, following a diurnal curve (lowest at 04:00, highest at
  16:00), with a little burstiness from window to window;
* input tokens are lognormal (median 700) and longer on some topics; output tokens lognormal
  (median 220), cut at 1,024 for the ~2% of truncated answers;
* time to first token is lognormal (median 380 ms) plus 0.06 ms per input token, and latency
  is TTFT plus 18 ms (lognormal) per output token; 2% of requests are stuck behind something
  and take 1 + Pareto(1.6) times longer: a heavy tail;
* errors ~1% (fast failures), refusals ~1% (short answers), empties 0.3%;
* costs are priced from :data:`PRICES` (no ``cost_usd`` on the events);
* a faithfulness score on half the events, Beta(8.5, 1.5) (mean 0.85), a breach below 0.5;
  feedback on 4% of events, a fifth of it negative;
* finish reasons stop / length / tool_calls / content_filter, two models, and two attributes
  (``topic``, ``locale``).

In the ``wander`` flavour latency and TTFT are multiplied by a smooth factor: a sinusoid of
amplitude 8% and period 80 minutes plus an Ornstein-Uhlenbeck walk (sd 4%, 20-minute
time constant, smoothed over 5 minutes) -- what a provider's latency does with its load, within +-10-15%.

A :class:`Change` applied from some window on injects a regression on top.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt

from driftnet.detectors.cohort import CohortDetectors
from driftnet.detectors.config import DetectorsConfig
from driftnet.detectors.finding import Finding
from driftnet.detectors.settings import AggregateSettings, PriceEntry, PriceTable
from driftnet.detectors.windowing.observation import Cohort, Observation
from driftnet.detectors.windowing.partials import Partial
from driftnet.detectors.windowing.windows import Window

COHORT: Cohort = ("assistant", "production", "2026.12.1", "baseline")
SETTINGS = AggregateSettings(attributes=("topic", "locale"))
PRICES = PriceTable(
    version="sim-2026-12",
    models={
        "large-2026": PriceEntry(input_per_mtok=2.5, output_per_mtok=10.0),
        "small-2026": PriceEntry(input_per_mtok=0.15, output_per_mtok=0.6),
    },
)
WINDOW_S = 60
DAY_WINDOWS = 24 * 3600 // WINDOW_S
TOPICS = ("billing", "account", "shipping", "returns", "other")
TOPIC_SHARE = (0.3, 0.25, 0.2, 0.15, 0.1)
TOPIC_INPUT = (1.0, 0.8, 1.1, 1.2, 1.5)
"""Input length multiplier of each topic."""
NEW_TOPICS = ("contracts", "legal")
LOCALES = ("en", "de", "fr", "es")
LOCALE_SHARE = (0.6, 0.2, 0.12, 0.08)
MAX_OUTPUT = 1024


@dataclass(frozen=True)
class Change:
    """A regression injected on top of the healthy traffic (defaults: nothing changes)."""

    latency: float = 1.0
    """Latency and TTFT multiplier."""
    error_rate: float | None = None
    refusal_rate: float | None = None
    cost: float = 1.0
    """Multiplier of the prices (what a model or price change does to cost per request)."""
    output: float = 1.0
    """Output tokens multiplier."""
    input: float = 1.0
    """Input tokens multiplier, on the new topics' share of the traffic."""
    new_topic_share: float = 0.0
    """Share of the traffic on topics never seen before (:data:`NEW_TOPICS`)."""
    traffic: float = 1.0
    """Request rate multiplier."""
    score_mean: float | None = None
    """The mean of the faithfulness score (its Beta keeps a total of 10)."""


@dataclass(frozen=True)
class Day:
    """One cohort's day: its seed, whether latency wanders, and an optional regression."""

    seed: int
    wander: bool = False
    windows: int = DAY_WINDOWS
    first: int = 0
    """Index of the first window (its start is ``first * 60`` s after midnight)."""
    change: Change = field(default_factory=Change)
    onset: int | None = None
    """Index of the first window of ``change`` (None: none)."""

    def with_change(self, change: Change, onset: int) -> Day:
        return replace(self, change=change, onset=onset)


def requests_per_second(t: npt.NDArray[np.float64] | float) -> npt.NDArray[np.float64]:
    """The diurnal request rate at ``t`` seconds after midnight: 2 at 04:00 to 8 at 16:00."""
    phase = 2 * np.pi * (np.asarray(t, dtype=np.float64) / 86_400 - 4 / 24)
    return np.asarray(5.0 - 3.0 * np.cos(phase), dtype=np.float64)


def wander_factor(
    rng: np.random.Generator, seconds: int, step_s: float = 10.0
) -> npt.NDArray[np.float64]:
    """The latency multiplier every ``step_s`` seconds over ``seconds``: exp(sinusoid of
    amplitude 0.08, period 80 min + OU walk of sd 0.04, time constant 20 min, smoothed over 5 min)."""
    steps = int(seconds / step_s) + 2
    t = np.arange(steps) * step_s
    phase = rng.uniform(0, 2 * math.pi)
    sine = 0.08 * np.sin(2 * np.pi * t / (80 * 60) + phase)
    keep = math.exp(-step_s / (20 * 60))
    kicks = rng.normal(0.0, 0.04 * math.sqrt(1 - keep * keep), steps)
    walk = np.empty(steps)
    walk[0] = rng.normal(0.0, 0.04)
    for i in range(1, steps):
        walk[i] = keep * walk[i - 1] + kicks[i]
    # smoothed over 5 minutes (a load change takes minutes), back to an sd of 0.04
    box = int(300 / step_s)
    smooth = np.convolve(np.pad(walk, box // 2, mode="edge"), np.ones(box) / box, "same")
    smooth = smooth[box // 2 : box // 2 + steps]
    smooth *= 0.04 / max(float(smooth.std()), 1e-9)
    return np.asarray(np.exp(sine + smooth), dtype=np.float64)


class Traffic:
    """A cohort's traffic, window by window, from one seeded generator; ``copy.deepcopy`` forks
    it (the same healthy past, then different futures)."""

    def __init__(self, seed: int, wander: bool, span_windows: int = DAY_WINDOWS) -> None:
        self.rng = np.random.default_rng(seed)
        self.factor = wander_factor(self.rng, span_windows * WINDOW_S) if wander else None

    def window(self, index: int, change: Change | None = None) -> Partial:
        """The merged aggregate of window ``index`` (its start is ``index`` minutes after
        midnight), with ``change`` on top of the healthy traffic."""
        return _window(self.rng, index, change or Change(), self.factor)


def windows(day: Day) -> Iterator[Partial]:
    """The merged aggregate of each window of ``day``, in order."""
    traffic = Traffic(day.seed, day.wander, day.first + day.windows)
    for index in range(day.first, day.first + day.windows):
        changed = day.onset is not None and index >= day.onset
        yield traffic.window(index, day.change if changed else None)


def _window(
    rng: np.random.Generator,
    index: int,
    change: Change,
    factor: npt.NDArray[np.float64] | None,
) -> Partial:
    window = Window(index * WINDOW_S, (index + 1) * WINDOW_S)
    partial = Partial.empty(COHORT, window, "*", SETTINGS)
    expected = float(requests_per_second(window.start + WINDOW_S / 2)) * WINDOW_S * change.traffic
    n = int(rng.poisson(expected * rng.gamma(100.0, 1 / 100)))
    if n == 0:
        return partial
    at = np.sort(rng.uniform(window.start, window.end, n))
    new = rng.random(n) < change.new_topic_share
    topic_index = rng.choice(len(TOPICS), n, p=TOPIC_SHARE)
    topic = np.where(new, rng.choice(NEW_TOPICS, n), np.asarray(TOPICS)[topic_index])
    locale = rng.choice(LOCALES, n, p=LOCALE_SHARE)
    large = rng.random(n) < 0.93
    model = np.where(large, "large-2026", "small-2026")
    inputs = rng.lognormal(math.log(700), 0.8, n) * np.asarray(TOPIC_INPUT)[topic_index]
    inputs = np.where(new, inputs * change.input, inputs)
    inputs = np.maximum(inputs, 5).astype(np.int64)
    error_rate = 0.01 if change.error_rate is None else change.error_rate
    refusal_rate = 0.01 if change.refusal_rate is None else change.refusal_rate
    u = rng.random(n)
    error = u < error_rate
    refusal = ~error & (u < error_rate + refusal_rate)
    empty = ~error & ~refusal & (u < error_rate + refusal_rate + 0.003)
    truncated = ~error & ~refusal & ~empty & (rng.random(n) < 0.02)
    outputs = rng.lognormal(math.log(220), 0.6, n) * change.output
    outputs = np.where(refusal, rng.integers(15, 45, n), outputs)
    outputs = np.where(truncated, MAX_OUTPUT, np.minimum(outputs, MAX_OUTPUT - 1))
    outputs = np.where(empty, 0, np.maximum(outputs, 1)).astype(np.int64)
    scale = np.full(n, change.latency)
    if factor is not None:
        scale *= factor[(at / 10.0).astype(np.int64)]
    ttft = (rng.lognormal(math.log(380), 0.35, n) + inputs * 0.06) * scale
    per_token = rng.lognormal(math.log(18), 0.25, n)
    latency = ttft + outputs * per_token * scale
    stuck = rng.random(n) < 0.02
    latency = np.where(stuck, latency * (1 + rng.pareto(1.6, n)), latency)
    latency = np.where(error, rng.lognormal(math.log(250), 0.5, n) * scale, latency)
    tool = rng.random(n) < 0.08
    finish = np.where(
        truncated,
        "length",
        np.where(refusal, "content_filter", np.where(tool, "tool_calls", "stop")),
    )
    score_mean = 0.85 if change.score_mean is None else change.score_mean
    scored = ~error & (rng.random(n) < 0.5)
    score = rng.beta(10 * score_mean, 10 * (1 - score_mean), n)
    rated = ~error & (rng.random(n) < 0.04)
    negative = rated & (rng.random(n) < 0.2)
    prices = PRICES if change.cost == 1.0 else _scaled(change.cost)
    columns = zip(
        at.tolist(),
        error.tolist(),
        refusal.tolist(),
        empty.tolist(),
        truncated.tolist(),
        latency.tolist(),
        ttft.tolist(),
        inputs.tolist(),
        outputs.tolist(),
        model.tolist(),
        finish.tolist(),
        topic.tolist(),
        locale.tolist(),
        scored.tolist(),
        score.tolist(),
        rated.tolist(),
        negative.tolist(),
        strict=True,
    )
    for i, (
        t,
        err,
        ref,
        emp,
        trunc,
        ms,
        first,
        ins,
        outs,
        mod,
        fin,
        top,
        loc,
        sc,
        s,
        r,
        neg,
    ) in enumerate(columns):
        event_id = f"{index}-{i}"
        partial.add(
            Observation(
                event_id=event_id,
                event_time=t,
                cohort=COHORT,
                is_error=err,
                refusal=ref,
                empty=emp,
                truncated=trunc,
                latency_ms=ms,
                ttft_ms=None if err else first,
                input_tokens=ins,
                output_tokens=None if err else outs,
                model=mod,
                scores={"faithfulness": s} if sc else {},
                score_breaches=("faithfulness",) if sc and s < 0.5 else (),
                feedback_rating=(-1.0 if neg else 1.0) if r else None,
                negative_feedback=neg,
                input_chars=ins * 4,
                finish_reason="error" if err else fin,
                response_model=mod,
                attributes={"topic": top, "locale": loc},
                raw=event_id.encode(),
            ),
            prices,
        )
    return partial


def _scaled(factor: float) -> PriceTable:
    return PriceTable(
        version=PRICES.version,
        models={
            name: PriceEntry(
                input_per_mtok=entry.input_per_mtok * factor,
                output_per_mtok=entry.output_per_mtok * factor,
            )
            for name, entry in PRICES.models.items()
        },
    )


def findings(day: Day, config: DetectorsConfig | None = None) -> list[Finding]:
    """Every finding a baseline cohort's detectors (default settings unless ``config``) raise
    over ``day``, window by window."""
    watch = CohortDetectors.of(config or DetectorsConfig(), COHORT)
    return [f for window in windows(day) for f in watch.update(window)]

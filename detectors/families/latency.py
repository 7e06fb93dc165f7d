"""Latency detectors: quantiles vs absolute SLOs and vs the reference, and latency by input size.

A quantile is a candidate when it is ``relative_increase`` above the reference's (the median of
the trailing windows' quantiles, or the baseline's); it becomes a finding when a one-sided
Mann-Whitney U test confirms that the sampled latencies are above the reference's raised by
``shift_tolerance`` (p below ``alpha``): a provider's latency wanders 10-15% with its load, and
a shift within the tolerance is no regression however many samples prove it.

>>> import numpy as np
>>> from driftnet.detectors.windowing.observation import Observation
>>> from driftnet.detectors.windowing.partials import Partial
>>> from driftnet.detectors.windowing.windows import Window
>>> rng, cohort = np.random.default_rng(7), ("chat", "production", "r1", "baseline")
>>> def window(i, scale):
...     p = Partial.empty(cohort, Window(60 * i, 60 * i + 60), "*")
...     for j, ms in enumerate(rng.lognormal(6.5, 0.4, 300) * scale):
...         p.add(Observation(f"e{i}-{j}", 60.0 * i, cohort, latency_ms=float(ms)))
...     return p
>>> detector = LatencyQuantile("p95")
>>> [detector.update(window(i, 1.0)).drift_detected for i in range(5)]
[False, False, False, False, False]
>>> detector.update(window(5, 1.5)).findings[0].metric
'latency_p95_ms'
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt

from driftnet.detectors.families.base import Sampled, SampledStatisticDetector, WindowedDetector
from driftnet.detectors.families.samples import SAMPLE_PER_WINDOW, SampleRing, pooled, thin
from driftnet.detectors.families.snapshot import as_list, pack, unpack
from driftnet.detectors.finding import Finding, ReferenceKind
from driftnet.detectors.settings import DetectorSettings
from driftnet.detectors.stats import mann_whitney_greater_p
from driftnet.detectors.windowing.observation import NUMERIC_FEATURES
from driftnet.detectors.windowing.partials import Partial

Quantile = Literal["p50", "p95", "p99", "ttft_p95"]
_LEVEL: Final = {"p50": 0.5, "p95": 0.95, "p99": 0.99, "ttft_p95": 0.95}


class LatencyQuantile(SampledStatisticDetector):
    """One latency quantile (p50, p95, p99 of ``latency_ms``, or p95 of ``ttft_ms``)."""

    __slots__ = ("_feature", "_metric", "name", "quantile")

    def __init__(
        self, quantile: Quantile = "p95", settings: DetectorSettings | None = None
    ) -> None:
        if quantile not in _LEVEL:
            raise ValueError(f"quantile must be one of {sorted(_LEVEL)}, got {quantile!r}")
        self.quantile: Quantile = quantile
        self.name = f"latency.{quantile}.v1"
        self._feature = "ttft_ms" if quantile == "ttft_p95" else "latency_ms"
        self._metric = f"{self._feature.removesuffix('_ms')}_{quantile.removeprefix('ttft_')}_ms"
        super().__init__(settings)

    def _value(self, window: Partial) -> float | None:
        sketch = window.sketches[self._feature]
        if sketch.count < self.settings.latency.min_samples:
            return None
        return sketch.quantile(_LEVEL[self.quantile])

    def summarize(self, window: Partial) -> Sampled:
        return Sampled(self._value(window), thin(window.numeric_column(self._feature)))

    def judge(
        self, window: Partial, current: Sampled, reference: Sequence[Sampled], kind: ReferenceKind
    ) -> list[Finding]:
        increase = self.confirmed_increase(
            window, self._feature, current, reference, self.settings.latency
        )
        if increase is None:
            return []
        value, ref_value, p = increase.observed, increase.reference, increase.p_value
        ratio = value / ref_value
        return [
            self.finding(
                window,
                metric=self._metric,
                observed=value,
                reference=ref_value,
                kind=kind,
                threshold=increase.limit,
                effect_size=ratio,
                p_value=p,
                message=(
                    f"{self._metric} {value:,.0f} ms is {ratio - 1:+.0%} vs the {kind} "
                    f"reference {ref_value:,.0f} ms (Mann-Whitney p={p:.1e})"
                ),
                example_kind="slowest",
            )
        ]

    def judge_absolute(self, window: Partial, current: Sampled) -> list[Finding]:
        slo = getattr(self.settings.latency, f"slo_{self.quantile}_ms")
        if slo is None or current.value is None or current.value <= slo:
            return []
        return [
            self.finding(
                window,
                metric=self._metric,
                observed=current.value,
                reference=None,
                kind="absolute",
                threshold=slo,
                effect_size=current.value / slo,
                severity="critical",
                message=f"{self._metric} {current.value:,.0f} ms is above the {slo:,.0f} ms SLO",
                example_kind="slowest",
            )
        ]


_LATENCY: Final = NUMERIC_FEATURES.index("latency_ms")
_INPUT: Final = NUMERIC_FEATURES.index("input_tokens")


@dataclass(frozen=True, slots=True)
class _Buckets:
    samples: tuple[npt.NDArray[np.float32], ...]
    """Sampled latencies per input-token bucket."""


class LatencyByInputSize(WindowedDetector[_Buckets]):
    """Median latency per input-token bucket vs the reference: exposes input-size sensitivity
    (only long prompts got slower) that a cohort-wide quantile averages away."""

    __slots__ = ("_ring",)

    name = "latency.by_input_size.v1"

    def __init__(self, settings: DetectorSettings | None = None) -> None:
        super().__init__(settings)
        self._ring = SampleRing(self.settings.reference_windows, 2 * SAMPLE_PER_WINDOW, 2)
        """Per window: (latency, bucket index) rows."""

    def remembered(self) -> list[_Buckets]:
        found = []
        for rows, _ in self._ring.entries():
            buckets = rows[:, 1].astype(np.int64)
            count = int(buckets.max(initial=-1)) + 1
            found.append(_Buckets(tuple(rows[buckets == b, 0] for b in range(count))))
        return found

    def keep(self, summary: _Buckets) -> None:
        parts = [
            np.column_stack([sample, np.full(len(sample), b, np.float32)])
            for b, sample in enumerate(summary.samples)
            if len(sample)
        ]
        rows = np.concatenate(parts).astype(np.float32) if parts else np.empty((0, 2), np.float32)
        limit = 2 * SAMPLE_PER_WINDOW
        if len(rows) > limit:
            rows = rows[np.linspace(0, len(rows) - 1, limit).astype(np.int64)]
        self._ring.append(rows, 0.0)

    def forget(self) -> None:
        self._ring.clear()

    @property
    def history_size(self) -> int:
        return len(self._ring)

    def encode_summary(self, summary: _Buckets) -> Any:
        return [pack(sample) for sample in summary.samples]

    def decode_summary(self, data: Any) -> _Buckets:
        return _Buckets(tuple(unpack(sample, np.float32) for sample in as_list(data)))

    def judgeable(self, window: Partial, current: _Buckets) -> bool:
        # a bucket is tested with min_samples of the window's sampled rows or more
        return window.reservoir.size >= self.settings.latency.min_samples

    def _per_bucket(self, window: Partial) -> list[list[float]]:
        edges = window.settings.input_size_buckets
        buckets: list[list[float]] = [[] for _ in range(len(edges) + 1)]
        sample = window.reservoir.numeric[: window.reservoir.size]
        for latency, tokens in zip(sample[:, _LATENCY], sample[:, _INPUT], strict=True):
            if not (np.isnan(latency) or np.isnan(tokens)):
                buckets[bisect.bisect_right(edges, tokens)].append(float(latency))
        return buckets

    def summarize(self, window: Partial) -> _Buckets:
        return _Buckets(tuple(thin(b) for b in self._per_bucket(window)))

    def judge(
        self, window: Partial, current: _Buckets, reference: Sequence[_Buckets], kind: ReferenceKind
    ) -> list[Finding]:
        settings = self.settings.latency
        edges = window.settings.input_size_buckets
        found: list[Finding] = []
        per_bucket = self._per_bucket(window)
        alpha = settings.alpha / len(per_bucket)
        for index, values in enumerate(per_bucket):
            ref = pooled([r.samples[index] for r in reference if len(r.samples) > index])
            if min(len(values), len(ref)) < settings.min_samples:
                continue
            now, before = float(np.median(values)), float(np.median(ref))
            limit = before * (1 + settings.relative_increase)
            if now <= limit:
                continue
            raised = ref * np.float32(1 + settings.shift_tolerance)
            p = mann_whitney_greater_p(np.asarray(values, dtype=np.float32), raised)
            if p >= alpha:
                continue
            low = 0 if index == 0 else edges[index - 1]
            span = f"{low}+" if index == len(edges) else f"{low}-{edges[index]}"
            found.append(
                self.finding(
                    window,
                    metric=f"latency_p50_ms[input_tokens {span}]",
                    observed=now,
                    reference=before,
                    kind=kind,
                    threshold=limit,
                    effect_size=now / before,
                    p_value=p,
                    message=(
                        f"median latency of inputs with {span} tokens is {now:,.0f} ms, "
                        f"{now / before - 1:+.0%} vs the {kind} reference (p={p:.1e})"
                    ),
                    example_kind="slowest",
                )
            )
        return found

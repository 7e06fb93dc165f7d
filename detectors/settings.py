"""The settings sections: windows, aggregates, prices, and each detector family's thresholds.

:class:`driftnet.detectors.config.DetectorsConfig` (the ``[detectors]`` table) composes them and
applies the per-service and per-cohort overrides.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

_STRICT = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class _Section(BaseModel):
    model_config = _STRICT


class WindowSettings(_Section):
    """Event-time windows (see :mod:`driftnet.detectors.windowing.windows`)."""

    size_s: int = Field(60, gt=0)
    """Length of the tumbling event-time windows, in seconds."""
    allowed_lateness_s: float = Field(10.0, ge=0)
    """A window stays open until event time (the newest seen, per source) is this far past
    its end; an event for a closed window is counted as late and left out."""
    idle_timeout_s: float = Field(30.0, gt=0)
    """Wall-clock seconds without watermark progress after which a source stops holding
    windows open (and, when every source is that quiet, the last windows close)."""
    forget_after_windows: int = Field(60, gt=0)
    """A cohort silent for this many windows is no longer reported (as zero traffic)."""
    max_cohorts_per_partition: int = Field(10_000, gt=0)
    """Distinct cohorts one events partition tracks at a time; the events of any further
    cohort (a producer minting a release per event) are counted under the ``_overflow``
    cohort, not judged (``driftnet_cohort_overflow_events_total``). A cohort silent for
    ``forget_after_windows`` windows frees its place."""


class AggregateSettings(_Section):
    """What a window partial keeps besides counts and sums."""

    sketch_relative_accuracy: float = Field(0.02, gt=0, lt=1)
    """DDSketch relative error of every quantile (latency, ttft, tokens, cost)."""
    reservoir_size: int = Field(128, gt=0, le=10_000)
    """Events sampled per window (numeric and categorical features, for tests and drift)."""
    top_k: int = Field(3, ge=0, le=100)
    """Full records kept per kind of worst example (slowest, costliest, failed): at about
    1.7 KB an event, 3 of each is up to 15 KB per open window."""
    typical_examples: bool = True
    """Also keep ``top_k`` full records of each input-size bucket, picked uniformly: the
    baseline requests the canary judge matches a canary's worst requests with."""
    attributes: tuple[str, ...] = ()
    """Event attributes watched for drift as categorical features (low cardinality)."""
    input_size_buckets: tuple[int, ...] = (500, 2_000, 8_000)
    """Input-token bucket edges for latency by input size."""
    text_samples: int = Field(16, ge=0, le=256)
    """Calls whose texts are sampled per window (the last user message and the answer, cut
    to ``text_chars`` and redacted), for text drift; 0 samples none (text drift is off). A
    uniform sample, made only for the calls kept."""
    text_chars: int = Field(200, ge=16, le=4_096)
    """Characters kept of each sampled text (its whole length is kept as a number). 16 texts
    of 200 characters a side cost about 11 KB per open window."""


class PriceEntry(_Section):
    """Price of one model, in USD per million tokens."""

    input_per_mtok: float = Field(ge=0)
    """USD per million input tokens."""
    output_per_mtok: float = Field(ge=0)
    """USD per million output tokens."""


class PriceTable(_Section):
    """Prices for events that carry no ``cost_usd``; its version is recorded on cost findings."""

    version: str = "unset"
    """A label of these prices, recorded on the windows (and cost findings) priced with them."""
    models: dict[str, PriceEntry] = Field(default_factory=dict)
    """Prices by model name: the event's response model, else its request model."""

    def price(
        self, model: str | None, input_tokens: int | None, output_tokens: int | None
    ) -> float | None:
        """The cost of a call, or None when the model is not in the table or no tokens are known."""
        entry = self.models.get(model) if model is not None else None
        if entry is None or (input_tokens is None and output_tokens is None):
            return None
        return (
            (input_tokens or 0) * entry.input_per_mtok
            + (output_tokens or 0) * entry.output_per_mtok
        ) / 1e6


class VolumeSettings(_Section):
    """Traffic vs the cohort's reference (Poisson tests on the window count)."""

    drop_ratio: float = Field(0.5, gt=0, lt=1)
    """A drop fires when the count is below ``drop_ratio`` x the reference mean."""
    spike_ratio: float = Field(3.0, gt=1)
    """A spike fires when the count is above ``spike_ratio`` x the reference mean..."""
    alpha: float = Field(1e-4, gt=0, lt=1)
    """...and, for drops and spikes, the Poisson test of the count gives p below alpha."""
    min_reference_mean: float = Field(5.0, gt=0)
    """Below this mean per window the cohort is too thin to judge."""


class LatencySettings(_Section):
    """Latency quantiles vs absolute SLOs and vs the reference."""

    slo_p50_ms: float | None = Field(None, gt=0)
    """A window's median latency above this is a finding; unset: no such SLO."""
    slo_p95_ms: float | None = Field(None, gt=0)
    """The same for the 95th percentile latency."""
    slo_p99_ms: float | None = Field(None, gt=0)
    """The same for the 99th percentile latency."""
    slo_ttft_p95_ms: float | None = Field(None, gt=0)
    """The same for the 95th percentile time to first token."""
    relative_increase: float = Field(0.2, gt=0)
    """A quantile this much above the reference's (0.2 = +20%) is a candidate..."""
    alpha: float = Field(1e-4, gt=0, lt=1)
    """...confirmed when a one-sided Mann-Whitney U test on the samples gives p below alpha..."""
    shift_tolerance: float = Field(0.10, ge=0)
    """...that the window's latencies are above the reference's raised by this much (0.10 =
    10%): a provider's latency wanders 10-15% with its load over tens of minutes, and the
    trailing reference lags it by minutes; a shift within this is ordinary wander, not a
    regression, however many samples prove it."""
    min_samples: int = Field(30, gt=0)
    """Latencies a window needs (and, for latency by input size, each bucket on both sides)
    before it is judged."""


class CostSettings(_Section):
    """Cost and tokens per request, spend per hour vs a budget and vs the reference."""

    budget_usd_per_hour: float | None = Field(None, gt=0)
    """A window's spend, scaled to an hour, above this is a finding; unset: no budget."""
    relative_increase: float = Field(0.25, gt=0)
    """Cost or tokens per request this much above the reference's (0.25 = +25%) is a
    candidate..."""
    alpha: float = Field(1e-4, gt=0, lt=1)
    """...confirmed, per request, when a one-sided Mann-Whitney U test gives p below alpha..."""
    shift_tolerance: float = Field(0.0, ge=0)
    """...that the window's values are above the reference's raised by this much (0.05 = 5%);
    0: above the reference itself."""
    min_samples: int = Field(30, gt=0)
    """Values a window needs (and each side of the test) before it is judged."""
    spend_relative_increase: float = Field(0.5, gt=0)
    """Spend per hour this much above the reference's (0.5 = +50%) is a finding, once it has
    lasted ``spend_windows``."""
    spend_windows: int = Field(2, ge=1)
    """Consecutive windows the spend per hour must stay above ``spend_relative_increase`` over
    the reference before it is a finding: spend has no test (it is the traffic times the cost per
    request, each judged on its own), and a one-minute burst of traffic is no cost regression.
    """


class QualitySettings(_Section):
    """Rates of bad outcomes vs the reference (one-sided two-proportion tests)."""

    min_delta: float = Field(0.02, gt=0, lt=1)
    """Smallest increase of a rate (absolute, 0.02 = 2 points) worth a finding."""
    score_min_delta: float = Field(0.05, gt=0)
    """Smallest drop of a mean score worth a finding."""
    alpha: float = Field(1e-5, gt=0, lt=1)
    """p-value under which the one-sided test confirms an increase of a rate (or a drop of a
    score)."""
    min_samples: int = Field(50, gt=0)
    """Events (or rated events, or scored events) needed in the window and in the reference."""
    min_events: int = Field(10, ge=0)
    """Bad events (errors, refusals, breaches...) a rate finding needs in the window (or the
    two windows) it judges: 6 of 57 scored events is a tenfold rate that a healthy day shows
    now and then; a regression worth a page shows in more requests than that."""


NumericStatTest = Literal["ks", "wasserstein", "psi", "jensenshannon"]
CategoricalStatTest = Literal["chisquare", "jensenshannon", "psi"]


class TextDriftSettings(_Section):
    """Text drift: what users ask and the model answers, sampled per window (``[aggregate]
    text_samples``), tested in the drift checker process on a cadence: a domain classifier
    (topic, language, format) and text descriptors."""

    check_every_windows: int = Field(5, gt=0)
    """Test the texts sampled since the last test (these windows) against the
    ``reference_windows`` before them this often, and whenever the cheap drift tier moves."""
    reference_windows: int = Field(6, gt=0, le=100)
    """Windows of texts in the reference (the detector keeps these plus the windows since
    the last test)."""
    texts_per_window: int = Field(6, gt=0, le=256)
    """Texts the reference keeps of each window (the newest window is tested with all of
    its sampled texts)."""
    min_texts: int = Field(16, ge=5)
    """Texts with content needed on each side (window and reference) for a test; fewer (or
    content not captured) and the check says it cannot judge."""
    alpha: float = Field(1e-3, gt=0, lt=1)
    """The classifier test fires when its Mann-Whitney p-value is below this..."""
    min_auc: float = Field(0.75, gt=0.5, le=1)
    """...and its cross-validated ROC AUC is at least this (0.5 is chance): a practical size,
    so that a difference nobody would care about does not fire on a large sample."""
    terms: int = Field(6, ge=1, le=50)
    """Terms of the window (and of the reference) named in a finding."""
    evidence: int = Field(3, ge=0, le=20)
    """Kept records of the window that read most like its texts, harvested as ``drift``
    evidence per finding."""


class DriftSettings(_Section):
    """Feature drift: a cheap scipy tier every window, evidently on a slower cadence."""

    alpha: float = Field(1e-5, gt=0, lt=1)
    """Cheap tier: Bonferroni-corrected p-value under which a feature moved..."""
    min_statistic: float = Field(0.15, gt=0, le=1)
    """...and the smallest KS statistic / total variation distance that counts."""
    min_samples: int = Field(50, gt=0)
    """Values of a feature needed in the window and in the reference before it is tested."""
    full_check_every_windows: int = Field(180, gt=0)
    """Run the evidently check at least this often, and whenever the cheap tier moves."""
    numeric_stattest: NumericStatTest = "ks"
    """evidently's test for numeric columns in the full check."""
    numeric_threshold: float = Field(1e-4, gt=0)
    """p-value (ks) below which, or distance (others) above which, a numeric column drifted."""
    categorical_stattest: CategoricalStatTest = "jensenshannon"
    """evidently's test for categorical columns in the full check."""
    categorical_threshold: float = Field(0.2, gt=0)
    """Jensen-Shannon distance by default, at 0.2: evidently's chi-squared takes the reference's
    shares as exact and fired on 6 of 59 stationary windows at p < 0.01; its default distance
    threshold of 0.1 was crossed by 3 of 59 (128 current vs 640 reference rows)."""
    drift_share: float = Field(0.5, gt=0, le=1)
    """evidently's share of drifted columns that makes the dataset drifted (reported)."""
    text: TextDriftSettings = Field(default_factory=TextDriftSettings)
    """Text drift (tested in the drift checker process, not per window); its descriptor
    tests use ``alpha`` and ``min_statistic`` above."""


class DetectorSettings(_Section):
    """Thresholds of every detector for one cohort."""

    reference_windows: int = Field(10, ge=2, le=1_000)
    """The reference of a cohort: its own trailing windows."""
    min_reference_windows: int = Field(3, ge=1)
    """Windows of history needed before a detector compares against the reference."""
    long_reference_windows: int = Field(120, ge=0)
    """Windows before the trailing ones that the count-based detectors (event rates, score
    breaches and means) still pool into their reference, at most: two sums of half as many
    windows each, the last full one and the one filling (between one and two hours of 60-s
    windows at the default): a rate of 1% over ten windows of a quiet cohort is a few dozen
    events, and its own noise made findings. 0: the trailing windows alone."""
    volume: VolumeSettings = Field(default_factory=VolumeSettings)
    latency: LatencySettings = Field(default_factory=LatencySettings)
    cost: CostSettings = Field(default_factory=CostSettings)
    quality: QualitySettings = Field(default_factory=QualitySettings)
    drift: DriftSettings = Field(default_factory=DriftSettings)

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> DetectorSettings:
        """Frozen all the way down: a copy is the same object (10,000 cohorts share a few)."""
        return self

    @model_validator(mode="after")
    def _enough_history(self) -> DetectorSettings:
        if self.min_reference_windows > self.reference_windows:
            raise ValueError("min_reference_windows must not exceed reference_windows")
        return self

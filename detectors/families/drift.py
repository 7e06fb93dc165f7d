"""Feature drift of a cohort vs its reference: a cheap tier every window, evidently on cadence.

Cheap tier (every window, a few ms): a two-sample Kolmogorov-Smirnov test per numeric feature
(input/output tokens, input length, latency, ttft, cost) and a chi-squared test per categorical
one (finish reason, response model, chosen attributes), on the window's reservoir sample vs
the pooled samples of the trailing windows. A feature drifted when its p-value is below
``alpha`` divided by the number of features tested (Bonferroni) *and* the effect (KS statistic,
or total variation distance) is at least ``min_statistic``.

Full tier: evidently's drift report, too slow for every window of every cohort (0.3-0.45 s
for 8 columns). When the cheap tier moves, or every ``full_check_every_windows`` windows, the
detector leaves a :class:`FullCheckRequest` in :attr:`DriftDetector.full_check` for the caller
to run with :func:`driftnet.detectors.families.drift_report.full_drift_check` in another process.

>>> import numpy as np
>>> from driftnet.detectors.windowing.observation import Observation
>>> from driftnet.detectors.windowing.partials import Partial
>>> from driftnet.detectors.windowing.windows import Window
>>> rng, cohort = np.random.default_rng(11), ("chat", "production", "r1", "baseline")
>>> def window(i, shift):
...     p = Partial.empty(cohort, Window(60 * i, 60 * i + 60), "*")
...     for j, n in enumerate(rng.lognormal(7 + shift, 0.5, 200)):
...         p.add(Observation(f"e{i}-{j}", 60.0 * i, cohort, input_chars=int(n)))
...     return p
>>> detector = DriftDetector()
>>> [detector.update(window(i, 0.0)).drift_detected for i in range(4)]
[False, False, False, False]
>>> detector.update(window(4, 0.5)).findings[0].metric
'drift[input_chars]'
>>> detector.full_check is not None
True
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Self

import numpy as np
import numpy.typing as npt

from driftnet.detectors.families.base import WindowedDetector
from driftnet.detectors.families.samples import SAMPLE_PER_WINDOW, SampleRing
from driftnet.detectors.families.snapshot import (
    SnapshotError,
    as_int,
    as_list,
    as_mapping,
    pack,
    unpack,
)
from driftnet.detectors.families.text_drift import TextCheckRequest, TextReference
from driftnet.detectors.finding import Finding, ReferenceKind
from driftnet.detectors.settings import DetectorSettings, DriftSettings
from driftnet.detectors.stats import (
    chi_square_counts,
    ks_statistic,
    ks_two_sample,
    present,
    total_variation,
    wander_discounted,
)
from driftnet.detectors.windowing.observation import NUMERIC_FEATURES, Cohort
from driftnet.detectors.windowing.partials import Partial
from driftnet.detectors.windowing.windows import Window

VOCABULARY_LIMIT: Final = 64
"""Distinct values remembered per categorical feature; the rest count as :data:`OTHER`."""
OTHER: Final = "(other)"
MISSING: Final = -1


@dataclass(frozen=True, slots=True)
class _Rows:
    numeric: npt.NDArray[np.float32]
    """(rows, numeric features); NaN where missing."""
    codes: npt.NDArray[np.int16]
    """(rows, categorical features); vocabulary codes, -1 where missing."""


RELEASE_FEATURES: Final = frozenset({"response_model"})
"""Features a release sets by design: a canary on another model answers from another model, so
comparing them with the baseline's says nothing (against its own past they still count)."""


WANDERING: Final = frozenset({"latency_ms", "ttft_ms"})
"""Numeric features whose level wanders with a provider's load (10-15% over tens of minutes):
before their KS test, up to ``latency.shift_tolerance`` of a change of their median is taken
out of the window's values, as the latency detectors discount it, so a few percent of wander
that 128 vs 320 samples can prove is not drift (a doubled latency still is)."""


@dataclass(frozen=True, slots=True)
class FullCheckRequest:
    """Everything the evidently tier needs, picklable for another process."""

    cohort: Cohort
    window: Window
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    reference: dict[str, list[Any]]
    current: dict[str, list[Any]]
    settings: DriftSettings
    reference_kind: ReferenceKind
    triggered: bool
    """The cheap tier moved (else the check is on cadence): it goes first in the budget queue."""
    price_table_version: str | None = None


class DriftDetector(WindowedDetector[_Rows]):
    """Drift of the sampled numeric and categorical features vs the trailing windows (or the
    baseline cohort's window)."""

    __slots__ = (
        "_codes",
        "_full_check",
        "_ring",
        "_since_full_check",
        "_text_check",
        "_texts",
        "_vocabulary",
    )

    name = "drift.features.v1"

    def __init__(self, settings: DetectorSettings | None = None) -> None:
        super().__init__(settings)
        self._vocabulary: dict[str, dict[str, int]] = {}
        self._since_full_check = 0
        self._full_check: FullCheckRequest | None = None
        self._ring: SampleRing | None = None
        """Per window: the numeric features (float32)."""
        self._codes: SampleRing | None = None
        """Per window: the categorical features' vocabulary codes (int8)."""
        self._texts = TextReference()
        self._text_check: TextCheckRequest | None = None

    def remembered(self) -> list[_Rows]:
        if self._ring is None or self._codes is None:
            return []
        return [
            _Rows(numeric, codes.astype(np.int16))
            for (numeric, _), (codes, _) in zip(
                self._ring.entries(), self._codes.entries(), strict=True
            )
        ]

    def keep(self, summary: _Rows) -> None:
        width = summary.codes.shape[1]
        if self._ring is None or self._codes is None or self._codes.columns != width:
            windows = self.settings.reference_windows
            self._ring = SampleRing(windows, SAMPLE_PER_WINDOW, len(NUMERIC_FEATURES))
            self._codes = SampleRing(windows, SAMPLE_PER_WINDOW, width, np.int8)
        self._ring.append(summary.numeric, 0.0)
        self._codes.append(summary.codes.astype(np.int8), 0.0)

    def forget(self) -> None:
        self._ring = None
        self._codes = None

    def reset(self) -> None:
        super().reset()
        self._vocabulary = {}
        self._since_full_check = 0
        self._full_check = None
        self._texts.clear()
        self._text_check = None

    def encode_summary(self, summary: _Rows) -> Any:
        # codes below VOCABULARY_LIMIT (64) fit int8, as in the ring
        return [pack(summary.numeric), pack(summary.codes.astype(np.int8)), summary.codes.shape[1]]

    def decode_summary(self, data: Any) -> _Rows:
        numeric, codes, width = as_list(data, 3)
        rows = unpack(numeric, np.float32, len(NUMERIC_FEATURES))
        columns = as_int(width)
        if columns < 0:
            raise SnapshotError(f"a negative number of categorical features: {columns}")
        decoded = unpack(codes, np.int8).astype(np.int16)
        if len(decoded) != len(rows) * columns:
            raise SnapshotError(f"{len(decoded)} codes for {len(rows)} rows of {columns}")
        return _Rows(rows, decoded.reshape(len(rows), columns))

    def _state(self) -> Any:
        return {
            **super()._state(),
            "vocabulary": self._vocabulary,
            "since_full_check": self._since_full_check,
            "text": self._texts.state(),
        }

    def _parse_state(self, state: Any) -> Callable[[], None]:
        body = as_mapping(state)
        vocabulary = {
            feature: {value: as_int(code) for value, code in as_mapping(codes).items()}
            for feature, codes in as_mapping(body["vocabulary"]).items()
        }
        since = as_int(body["since_full_check"])
        # a snapshot from before text drift has no texts: they start afresh
        texts = TextReference.parse(body["text"]) if "text" in body else TextReference()
        load_windows = super()._parse_state(state)

        def load() -> None:
            load_windows()
            self._vocabulary = vocabulary
            self._since_full_check = since
            self._texts = texts

        return load

    @property
    def full_check(self) -> FullCheckRequest | None:
        """The evidently check the last update asks for (None: not due)."""
        return self._full_check

    @property
    def text_check(self) -> TextCheckRequest | None:
        """The text drift check the last update asks for (None: not due, or cannot judge:
        :attr:`text_reason` says why)."""
        return self._text_check

    @property
    def text_reason(self) -> str | None:
        """Why the last update asked for no text check though one was due, or kept no texts
        (content not captured); None otherwise."""
        return self._texts.reason

    def _code(self, feature: str, value: str | None) -> int:
        if value is None:
            return MISSING
        vocabulary = self._vocabulary.setdefault(feature, {})
        code = vocabulary.get(value)
        if code is None:
            if len(vocabulary) >= VOCABULARY_LIMIT - 1:
                return vocabulary.setdefault(OTHER, len(vocabulary))
            code = vocabulary[value] = len(vocabulary)
        return code

    def _rows(self, window: Partial) -> _Rows:
        reservoir = window.reservoir
        numeric = reservoir.numeric[: reservoir.size]
        codes = np.array(
            [
                [self._code(name, value) for name, value in zip(window.categorical, c, strict=True)]
                for c in reservoir.categorical
            ],
            dtype=np.int16,
        ).reshape(reservoir.size, len(window.categorical))
        return _Rows(numeric, codes)

    def summarize(self, window: Partial) -> _Rows:
        return self._rows(window)

    def remember(self, summary: _Rows) -> _Rows:
        if len(summary.numeric) <= SAMPLE_PER_WINDOW:
            return summary
        picks = np.linspace(0, len(summary.numeric) - 1, SAMPLE_PER_WINDOW).astype(np.int64)
        return _Rows(summary.numeric[picks], summary.codes[picks])

    @property
    def history_size(self) -> int:
        return 0 if self._ring is None else len(self._ring)

    def judgeable(self, window: Partial, current: _Rows) -> bool:
        return self._enough_rows(window)

    def _enough_rows(self, window: Partial) -> bool:
        """Whether the window has the sampled rows a test needs (min_samples)."""
        return window.reservoir.size >= self.settings.drift.min_samples

    def update(self, window: Partial, baseline: Partial | None = None) -> Self:
        self._full_check = None
        self._text_check = None
        ready = self.history_size >= self.settings.min_reference_windows
        # the reference before this window joins it: read only when a full check can be due
        # (on cadence, or because the window drifted, which needs a judgeable window)
        cadence = self._since_full_check + 1 >= self.settings.drift.full_check_every_windows
        reference = (
            [_Rows(r.numeric.copy(), r.codes) for r in self.remembered()]
            if ready and (cadence or self._enough_rows(window))
            else []
        )
        super().update(window, baseline)
        self._since_full_check += 1
        due = (
            self.drift_detected
            or self._since_full_check >= self.settings.drift.full_check_every_windows
        )
        if ready and due:
            kind: ReferenceKind = "trailing"
            if baseline is not None:
                reference, kind = [self._rows(baseline)], "baseline"
            self._full_check = self._request(window, reference, kind)
            self._since_full_check = 0
        self._text_check = self._texts.update(
            window, self.settings.drift, triggered=ready and self.drift_detected
        )
        return self

    def judge(
        self, window: Partial, current: _Rows, reference: Sequence[_Rows], kind: ReferenceKind
    ) -> list[Finding]:
        settings = self.settings.drift
        now = current
        ref = _stack(reference, len(window.categorical))
        # The effect is screened first (numpy, microseconds); scipy's test, a few hundred
        # microseconds each, runs only on features whose effect could make a finding.
        tests: list[tuple[str, float, float]] = []
        for index, feature in enumerate(NUMERIC_FEATURES):
            a, b = present(now.numeric[:, index]), present(ref.numeric[:, index])
            if min(len(a), len(b)) < settings.min_samples:
                continue
            if feature in WANDERING:
                a = wander_discounted(a, b, self.settings.latency.shift_tolerance)
            statistic = ks_statistic(a, b)
            p = ks_two_sample(a, b)[1] if statistic >= settings.min_statistic else 1.0
            tests.append((feature, statistic, p))
        for index, feature in enumerate(window.categorical):
            if kind == "baseline" and feature in RELEASE_FEATURES:
                continue
            mine, theirs = now.codes[:, index], ref.codes[:, index]
            mine, theirs = mine[mine != MISSING], theirs[theirs != MISSING]
            if min(len(mine), len(theirs)) < settings.min_samples:
                continue
            size = int(max(mine.max(initial=0), theirs.max(initial=0))) + 1
            counts = np.bincount(mine, minlength=size).tolist()
            ref_counts = np.bincount(theirs, minlength=size).tolist()
            distance = total_variation(counts, ref_counts)
            p = (
                chi_square_counts(counts, ref_counts)[1]
                if distance >= settings.min_statistic
                else 1.0
            )
            tests.append((feature, distance, p))
        if not tests:
            return []
        alpha = settings.alpha / len(tests)
        return [
            self.finding(
                window,
                metric=f"drift[{feature}]",
                observed=statistic,
                reference=None,
                kind=kind,
                threshold=settings.min_statistic,
                effect_size=statistic,
                p_value=p,
                message=(
                    f"{feature} drifted vs the {kind} reference "
                    f"({'KS D' if feature in NUMERIC_FEATURES else 'total variation'} "
                    f"{statistic:.2f}, p={p:.1e})"
                ),
            )
            for feature, statistic, p in tests
            if p < alpha and statistic >= settings.min_statistic
        ]

    def _request(
        self, window: Partial, reference: Sequence[_Rows], kind: ReferenceKind
    ) -> FullCheckRequest:
        inverse = {
            name: {code: value for value, code in vocabulary.items()}
            for name, vocabulary in self._vocabulary.items()
        }

        def columns(rows: _Rows) -> dict[str, list[Any]]:
            table: dict[str, list[Any]] = {
                name: [None if np.isnan(v) else float(v) for v in rows.numeric[:, i]]
                for i, name in enumerate(NUMERIC_FEATURES)
            }
            for i, name in enumerate(window.categorical):
                values = inverse.get(name, {})
                table[name] = [values.get(int(c)) for c in rows.codes[:, i]]
            return table

        categorical = tuple(
            c for c in window.categorical if kind != "baseline" or c not in RELEASE_FEATURES
        )
        reference_columns = columns(_stack(reference, len(window.categorical)))
        current_columns = columns(self._rows(window))
        for name in set(window.categorical) - set(categorical):
            del reference_columns[name], current_columns[name]
        return FullCheckRequest(
            cohort=window.cohort,
            window=window.window,
            numeric=NUMERIC_FEATURES,
            categorical=categorical,
            reference=reference_columns,
            current=current_columns,
            settings=self.settings.drift,
            reference_kind=kind,
            triggered=self.drift_detected,
            price_table_version=window.price_table_version if window.priced else None,
        )


def _stack(rows: Sequence[_Rows], categorical: int) -> _Rows:
    if not rows:
        return _Rows(
            np.empty((0, len(NUMERIC_FEATURES)), dtype=np.float32),
            np.empty((0, categorical), dtype=np.int16),
        )
    width = min(r.codes.shape[1] for r in rows)
    return _Rows(
        np.concatenate([r.numeric for r in rows]),
        np.concatenate([r.codes[:, :width] for r in rows]),
    )

"""The full drift check: evidently's data drift report on a :class:`FullCheckRequest`.

Slow (about 2 s to import evidently and pandas, 0.3-0.45 s per 8-column report) and so never
imported by ``detectors`` itself: the caller runs :func:`full_drift_check` in a separate process
on the requests :class:`driftnet.detectors.families.drift.DriftDetector` leaves, on a CPU budget. Only numeric and
categorical columns are checked, with explicit stat tests, so evidently never needs NLTK data
or any download.

The result carries evidently's HTML report: on-call would rather look than read. The caller
stores it next to each drift finding (:func:`full_check_findings`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from driftnet.detectors.families.drift import FullCheckRequest
from driftnet.detectors.finding import Finding

P_VALUE_TESTS: Final = frozenset({"ks", "chisquare"})
"""Stat tests whose score is a p-value (drift below the threshold); the others are distances
(drift at or above it)."""


@dataclass(frozen=True, slots=True)
class ColumnDrift:
    """evidently's verdict on one column."""

    column: str
    stattest: str
    score: float
    threshold: float
    drifted: bool


@dataclass(frozen=True, slots=True)
class FullDriftResult:
    """The evidently tier's answer: per-column verdicts and the HTML report."""

    columns: tuple[ColumnDrift, ...]
    drifted_share: float
    dataset_drift: bool
    html: str | None
    """evidently's standalone HTML report (a few MB, scripts inlined); rendered when a column
    drifted or when asked for, since that is when someone will look at it."""

    @property
    def drifted(self) -> tuple[ColumnDrift, ...]:
        return tuple(c for c in self.columns if c.drifted)


def _usable(request: FullCheckRequest) -> tuple[list[str], list[str]]:
    """Columns with enough values on both sides (evidently refuses empty columns)."""
    need = request.settings.min_samples

    def enough(name: str) -> bool:
        return all(
            sum(v is not None for v in side[name]) >= need
            for side in (request.reference, request.current)
        )

    numeric = [c for c in request.numeric if enough(c)]
    categorical = [c for c in request.categorical if enough(c)]
    return numeric, categorical


def full_drift_check(request: FullCheckRequest, *, html: bool = False) -> FullDriftResult | None:
    """Run evidently's DataDriftPreset on the request; None when no column has enough data.
    The HTML report is rendered when a column drifted, or always with ``html=True``."""
    numeric, categorical = _usable(request)
    if not numeric and not categorical:
        return None
    import pandas as pd
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    settings = request.settings
    columns = numeric + categorical
    definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)

    def dataset(table: dict[str, list[object]]) -> Dataset:
        frame = pd.DataFrame({name: table[name] for name in columns})
        for name in numeric:
            frame[name] = frame[name].astype("float64")
        for name in categorical:
            frame[name] = frame[name].astype("object")
        return Dataset.from_pandas(frame, data_definition=definition)

    methods = dict.fromkeys(numeric, settings.numeric_stattest) | dict.fromkeys(
        categorical, settings.categorical_stattest
    )
    thresholds = dict.fromkeys(numeric, settings.numeric_threshold) | dict.fromkeys(
        categorical, settings.categorical_threshold
    )
    report = Report(
        [
            DataDriftPreset(
                columns=columns,
                per_column_method=dict(methods),
                per_column_threshold=thresholds,
                drift_share=settings.drift_share,
            )
        ]
    )
    snapshot = report.run(
        current_data=dataset(request.current), reference_data=dataset(request.reference)
    )
    verdicts: list[ColumnDrift] = []
    for metric in snapshot.dict()["metrics"]:
        config = metric.get("config", {})
        if not str(config.get("type", "")).endswith("ValueDrift"):
            continue
        method = str(config["method"])
        score = float(metric["value"])
        column = str(config["column"])
        threshold = float(config.get("threshold") or thresholds[column])
        drifted = score < threshold if method in P_VALUE_TESTS else score >= threshold
        verdicts.append(ColumnDrift(column, method, score, threshold, drifted))
    share = sum(v.drifted for v in verdicts) / len(verdicts) if verdicts else 0.0
    return FullDriftResult(
        columns=tuple(verdicts),
        drifted_share=share,
        dataset_drift=share >= settings.drift_share,
        html=snapshot.get_html_str(as_iframe=False) if html or share > 0 else None,
    )


def full_check_findings(request: FullCheckRequest, result: FullDriftResult) -> list[Finding]:
    """One finding per drifted column; attach ``result.html`` to each when storing them."""
    return [
        Finding(
            detector="drift.features.v1",
            cohort=request.cohort,
            window_start=request.window.start,
            window_end=request.window.end,
            metric=f"evidently_drift[{column.column}]",
            observed=column.score,
            reference=None,
            reference_kind=request.reference_kind,
            threshold=column.threshold,
            effect_size=result.drifted_share,
            p_value=column.score if column.stattest in P_VALUE_TESTS else None,
            severity="warning",
            message=(
                f"evidently: {column.column} drifted vs the {request.reference_kind} reference "
                f"({column.stattest} {column.score:.3g}, threshold {column.threshold:g}; "
                f"{result.drifted_share:.0%} of columns drifted)"
            ),
            price_table_version=request.price_table_version,
        )
        for column in result.drifted
    ]

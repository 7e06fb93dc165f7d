"""The text drift check: a domain-classifier two-sample test and descriptor tests on a window's
sampled texts vs the reference's, for each side (what users asked, what the model answered).

Slow next to the cheap tier (scikit-learn takes about a second to import, a check tens of
milliseconds), so, like :mod:`driftnet.detectors.families.drift_report`, never imported by
``detectors`` itself: the worker's checker process runs :func:`text_drift_check` on the
:class:`~driftnet.detectors.families.text_drift.TextCheckRequest` a drift detector leaves.

**Topic test** (evidently's text drift method, made cross-validated): label the window's texts
1 and the reference's 0; a linear model (logistic regression) on TF-IDF features of words,
word pairs and punctuation runs (``{"``, ````` ``` `````, ``**``: formats show) tries to tell
them apart. Its out-of-fold scores give a ROC AUC; under "same distribution" the AUC is that of
a random ranking, whose p-value is the one-sided Mann-Whitney U test of the window's scores
against the reference's. Drift is ``p < alpha`` *and* ``AUC >= min_auc``: significance alone
fires on differences nobody would care about once samples are large. The vocabulary is fit per
check on the two samples only (a ``CountVectorizer``-style TF-IDF rather than a hashing one):
nothing is learnt or kept between checks, and the model's weights map back to the words that
separate the windows, which the finding names.

**Descriptors** (:mod:`~driftnet.detectors.families.text_descriptors`): script, language,
format, question, length and character shares, tested like the cheap tier's features (KS or
chi-squared, Bonferroni over every descriptor of both sides, and the effect at least
``min_statistic``): they say how the texts moved (to Spanish, to JSON, to Cyrillic).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from driftnet.detectors.families.drift import DriftDetector
from driftnet.detectors.families.text_descriptors import (
    CATEGORICAL_DESCRIPTORS,
    NUMERIC_DESCRIPTORS,
    Descriptors,
    describe,
)
from driftnet.detectors.families.text_drift import SIDES, TextCheckRequest
from driftnet.detectors.finding import Finding
from driftnet.detectors.settings import DriftSettings
from driftnet.detectors.stats import chi_square_counts, ks_statistic, ks_two_sample, total_variation
from driftnet.detectors.windowing.texts import SampledText

FOLDS: Final = 5
SNIPPET_CHARS: Final = 100
"""Characters of a characteristic text quoted in a finding's message."""
TOKENS: Final = (
    r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]"  # CJK: one character a token
    r"|[^\W\d_]+|\d+|[^\w\s]+"  # words, digit runs (all read as 0s), punctuation runs
)
_DIGITS: Final = re.compile(r"\d")


@dataclass(frozen=True, slots=True)
class ClassifierTest:
    """How well a linear model tells the window's texts from the reference's."""

    auc: float
    """Cross-validated ROC AUC: 0.5 is chance, 1.0 separates them completely."""
    p_value: float
    """One-sided Mann-Whitney U of the window's out-of-fold scores against the reference's."""
    window_terms: tuple[str, ...]
    """The terms that most say "this window" (the model's largest positive weights)."""
    reference_terms: tuple[str, ...]
    """The terms that most say "the reference"."""
    window_scores: tuple[float, ...]
    """The out-of-fold score of each window text, in order (higher: more like the window)."""
    candidate_scores: tuple[float, ...]
    """The probability, under the model fit on every text, that each candidate is a window text."""


@dataclass(frozen=True, slots=True)
class DescriptorShift:
    """A descriptor whose distribution moved, and how."""

    side: str
    descriptor: str
    statistic: float
    """KS D (numeric) or total variation distance (categorical)."""
    p_value: float
    now: str
    before: str
    """What it mostly was in the window and in the reference (a share or a median)."""


@dataclass(frozen=True, slots=True)
class SideResult:
    """The verdict on one side (``input`` or ``output``)."""

    side: str
    texts: int
    reference_texts: int
    classifier: ClassifierTest | None
    drifted: bool
    """The topic test fired: p below alpha and AUC at least min_auc."""
    shifts: tuple[DescriptorShift, ...]
    characteristic: tuple[str, ...]
    """The window texts the classifier found most typical of the window, cut for quoting."""
    evidence: tuple[str, ...]
    """Event ids of the candidates (the window's kept full records) the model reads as window
    texts, most typical first."""
    reason: str | None = None
    """Why this side was not judged (too few texts: content absent or not captured)."""


@dataclass(frozen=True, slots=True)
class TextDriftResult:
    sides: tuple[SideResult, ...]

    def side(self, name: str) -> SideResult:
        return next(s for s in self.sides if s.side == name)


def _prepare(text: str) -> str:
    return _DIGITS.sub("0", text.lower())


def classifier_test(
    window: Sequence[str],
    reference: Sequence[str],
    *,
    seed: int,
    terms: int = 8,
    candidates: Sequence[str] = (),
    explain_from: tuple[float, float] = (0.0, 1.0),
) -> ClassifierTest:
    """The domain-classifier two-sample test of ``window`` against ``reference`` (each at
    least 2 texts). When the AUC is at least ``explain_from[0]`` and the p-value below
    ``explain_from[1]`` (drift: by default always), a model fit on every text names the
    terms and scores the ``candidates``; else they are left empty."""
    from scipy.stats import mannwhitneyu
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    texts = [*reference, *window]
    labels = np.r_[np.zeros(len(reference), dtype=np.int8), np.ones(len(window), dtype=np.int8)]
    vectorizer = TfidfVectorizer(
        preprocessor=_prepare,
        token_pattern=TOKENS,
        ngram_range=(1, 2),
        min_df=2,
        sublinear_tf=True,
        dtype=np.float32,
    )
    try:
        features = vectorizer.fit_transform(texts)
    except ValueError:  # no term in two texts: nothing tells them apart
        chance = tuple(0.0 for _ in window)
        return ClassifierTest(0.5, 1.0, (), (), chance, tuple(0.0 for _ in candidates))

    def model() -> Any:
        return LogisticRegression(C=1.0, class_weight="balanced", solver="liblinear")

    scores = np.zeros(len(texts))
    folds = StratifiedKFold(min(FOLDS, len(window), len(reference)), shuffle=True,
                            random_state=seed % 2**32)  # fmt: skip
    for train, test in folds.split(features, labels):
        scores[test] = model().fit(features[train], labels[train]).decision_function(features[test])
    mine, theirs = scores[labels == 1], scores[labels == 0]
    test = mannwhitneyu(mine, theirs, alternative="greater")
    auc = float(test.statistic) / (len(mine) * len(theirs))
    window_scores = tuple(float(s) for s in mine)
    if auc < explain_from[0] or test.pvalue >= explain_from[1]:
        return ClassifierTest(auc, float(test.pvalue), (), (), window_scores, ())
    fitted = model().fit(features, labels)
    weights = fitted.coef_[0]
    names = vectorizer.get_feature_names_out()
    order = np.argsort(weights)
    window_terms = tuple(str(names[i]) for i in order[::-1][:terms] if weights[i] > 0)
    reference_terms = tuple(str(names[i]) for i in order[:terms] if weights[i] < 0)
    scored = (
        fitted.predict_proba(vectorizer.transform(list(candidates)))[:, 1].tolist()
        if candidates
        else []
    )
    return ClassifierTest(
        auc=auc,
        p_value=float(test.pvalue),
        window_terms=window_terms,
        reference_terms=reference_terms,
        window_scores=window_scores,
        candidate_scores=tuple(float(s) for s in scored),
    )


def descriptor_tests(
    window: Mapping[str, Sequence[Descriptors]],
    reference: Mapping[str, Sequence[Descriptors]],
    settings: DriftSettings,
) -> list[DescriptorShift]:
    """The descriptors of each side that moved: p below ``alpha`` over the number of tests
    (Bonferroni, both sides) and the effect at least ``min_statistic``."""
    tests: list[DescriptorShift] = []
    for side in window:
        now, before = window[side], reference[side]
        for index, name in enumerate(NUMERIC_DESCRIPTORS):
            a = np.array([d.numeric[index] for d in now])
            b = np.array([d.numeric[index] for d in before])
            statistic = ks_statistic(a, b)
            p = ks_two_sample(a, b)[1] if statistic >= settings.min_statistic else 1.0
            tests.append(
                DescriptorShift(side, name, statistic, p, _median(a, name), _median(b, name))
            )
        for index, name in enumerate(CATEGORICAL_DESCRIPTORS):
            values = [d.categorical[index] for d in now]
            ref_values = [d.categorical[index] for d in before]
            categories = sorted(set(values) | set(ref_values))
            counts = [values.count(c) for c in categories]
            ref_counts = [ref_values.count(c) for c in categories]
            distance = total_variation(counts, ref_counts)
            p = (
                chi_square_counts(counts, ref_counts)[1]
                if distance >= settings.min_statistic
                else 1.0
            )
            tests.append(
                DescriptorShift(side, name, distance, p, _mostly(values), _mostly(ref_values))
            )
    alpha = settings.alpha / max(len(tests), 1)
    return [t for t in tests if t.p_value < alpha and t.statistic >= settings.min_statistic]


def _median(values: Any, name: str) -> str:
    middle = float(np.median(values)) if len(values) else 0.0
    return f"median {middle:.0f} chars" if name == "length" else f"median {middle:.0%}"


def _mostly(values: Sequence[str]) -> str:
    if not values:
        return "none"
    top = max(set(values), key=lambda v: (values.count(v), v))
    return f"{values.count(top) / len(values):.0%} {top}"


def text_drift_check(
    request: TextCheckRequest, candidates: Mapping[str, SampledText] | None = None
) -> TextDriftResult:
    """The verdict on each side of ``request``; ``candidates`` (event id -> its texts) are
    the window's kept full records, scored to pick the drift evidence."""
    settings = request.settings
    text = settings.text
    current, reference = request.texts()
    candidates = candidates or {}
    results: dict[str, SideResult] = {}
    now: dict[str, list[Descriptors]] = {}
    before: dict[str, list[Descriptors]] = {}
    judged: dict[str, tuple[list[str], list[str], ClassifierTest]] = {}
    for side in SIDES:
        mine = [(t.side(side) or "", t.chars(side)) for t in current if t.side(side) is not None]
        theirs = [(t.side(side) or "", t.chars(side)) for t in reference if t.side(side) is not None]  # fmt: skip
        if min(len(mine), len(theirs)) < text.min_texts:
            reason = _too_few(side, len(mine), len(theirs), text.min_texts)
            results[side] = SideResult(
                side, len(mine), len(theirs), None, False, (), (), (), reason
            )
            continue
        now[side] = [describe(t, n) for t, n in mine]
        before[side] = [describe(t, n) for t, n in theirs]
        ids = [i for i, t in candidates.items() if t.side(side)]
        window_texts = [t for t, _ in mine]
        test = classifier_test(
            window_texts,
            [t for t, _ in theirs],
            seed=request.seed,
            terms=text.terms,
            candidates=[candidates[i].side(side) or "" for i in ids],
            explain_from=(text.min_auc, text.alpha),
        )
        judged[side] = (window_texts, ids, test)
    shifts = descriptor_tests(now, before, settings)
    for side, (window_texts, ids, test) in judged.items():
        drifted = test.p_value < text.alpha and test.auc >= text.min_auc
        typical = np.argsort(test.window_scores)[::-1][:3]
        likely = sorted(zip(test.candidate_scores, ids, strict=False), reverse=True)
        results[side] = SideResult(
            side=side,
            texts=len(window_texts),
            reference_texts=len(before[side]),
            classifier=test,
            drifted=drifted,
            shifts=tuple(s for s in shifts if s.side == side),
            characteristic=tuple(_snippet(window_texts[i]) for i in typical),
            evidence=tuple(i for score, i in likely if score >= 0.5)[: text.evidence],
        )
    return TextDriftResult(tuple(results[side] for side in SIDES))


def _too_few(side: str, mine: int, theirs: int, need: int) -> str:
    what = "questions" if side == "input" else "answers"
    return (
        f"cannot judge {side} text drift: {mine} {what} with content in the window and "
        f"{theirs} in the reference, {need} needed on each side (content not captured, or "
        "too little traffic)"
    )


def _snippet(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= SNIPPET_CHARS else flat[: SNIPPET_CHARS - 1] + "…"


def _quoted(terms: Sequence[str]) -> str:
    return ", ".join(f"'{t}'" for t in terms) or "none"


def _what(side: str) -> str:
    return "questions" if side == "input" else "answers"


def _drift_message(kind: str, side: SideResult, test: ClassifierTest) -> str:
    moved = "; ".join(f"{s.descriptor} {s.now} (was {s.before})" for s in side.shifts)
    parts = [
        f"{side.side} text drifted vs the {kind} reference: a classifier tells this window's "
        f"{_what(side.side)} from the reference's (AUC {test.auc:.2f}, p={test.p_value:.1e}; "
        f"{side.texts} vs {side.reference_texts} texts).",
        f"Terms of the window: {_quoted(test.window_terms)}; of the reference: "
        f"{_quoted(test.reference_terms)}.",
    ]
    if moved:
        parts.append(f"Descriptors: {moved}.")
    if side.characteristic:
        parts.append(f'Most typical: "{side.characteristic[0]}"')
    return " ".join(parts)


def _shift_message(kind: str, shift: DescriptorShift) -> str:
    test = "KS D" if shift.descriptor in NUMERIC_DESCRIPTORS else "total variation"
    return (
        f"the {shift.descriptor} of the {_what(shift.side)} drifted vs the {kind} reference: "
        f"{shift.now} in the window, {shift.before} before ({test} {shift.statistic:.2f}, "
        f"p={shift.p_value:.1e})"
    )


def text_check_findings(request: TextCheckRequest, result: TextDriftResult) -> list[Finding]:
    """A finding per side whose topic test fired (``drift[text.output]``; its evidence: the
    kept records the model reads as window texts) and per descriptor that moved
    (``drift[text.output.language]``)."""
    kind = request.reference_kind

    def finding(metric: str, observed: float, **rest: Any) -> Finding:
        return Finding(
            detector=DriftDetector.name,
            cohort=request.cohort,
            window_start=request.window.start,
            window_end=request.window.end,
            metric=metric,
            observed=observed,
            reference=None,
            reference_kind=kind,
            effect_size=observed,
            **rest,
        )

    findings = []
    for side in result.sides:
        test = side.classifier
        if test is not None and side.drifted:
            findings.append(
                finding(
                    f"drift[text.{side.side}]",
                    test.auc,
                    threshold=request.settings.text.min_auc,
                    p_value=test.p_value,
                    message=_drift_message(kind, side, test),
                    example_event_ids=side.evidence,
                    example_kind="drift" if side.evidence else None,
                )
            )
        findings += [
            finding(
                f"drift[text.{side.side}.{shift.descriptor}]",
                shift.statistic,
                threshold=request.settings.min_statistic,
                p_value=shift.p_value,
                message=_shift_message(kind, shift),
            )
            for shift in side.shifts
        ]
    return findings

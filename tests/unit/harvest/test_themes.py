"""Failure themes on a seeded synthetic harvest with known themes (tests/support/failure_themes)."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import timedelta

import pytest
from sklearn.metrics import adjusted_rand_score

from driftnet.harvest.themes import (
    EXAMPLE_CHARS,
    NO_CONTENT,
    FailureText,
    ThemeReport,
    ThemeSettings,
    failure_text,
    find_themes,
    flag,
    member_ids,
    theme_id,
)
from tests.support.failure_themes import NOW, failure_texts

CURRENT = {"refund": 300, "medical": 200, "legal": 100, "truncated": 150, "markdown": 80}
PREVIOUS = {"refund": 100, "medical": 190, "truncated": 140, "markdown": 80}
EXPECTED_TERM = {
    "refund": "refund",
    "medical": "medical",
    "legal": "legal",
    "truncated": "shipment",
    "markdown": "markdown",
}


def _previous() -> list[FailureText]:
    rows, _ = failure_texts(PREVIOUS, seed=8, start=NOW - timedelta(days=14))
    return rows


@pytest.fixture(scope="module")
def generated() -> tuple[list[FailureText], list[str], ThemeReport]:
    current, truth = failure_texts(CURRENT)
    return current, truth, find_themes(current, _previous())


def _theme_of(report: ThemeReport) -> dict[str, str]:
    return {rid: theme for theme, ids in report.members.items() for rid in ids}


def _by_truth(current: list[FailureText], truth: list[str], report: ThemeReport) -> dict[str, str]:
    """Each generated theme key -> the theme ID most of its failures landed in."""
    where = _theme_of(report)
    found: dict[str, str] = {}
    for key in CURRENT:
        ids = [where[f.record_id] for f, t in zip(current, truth, strict=True) if t == key]
        found[key] = max(set(ids), key=ids.count)
    return found


def test_recovers_the_generated_themes(
    generated: tuple[list[FailureText], list[str], ThemeReport],
) -> None:
    """Every failure is in one theme, and the themes match the generator's (ARI >= 0.8)."""
    current, truth, report = generated
    where = _theme_of(report)
    assert len(where) == len(current) == sum(t.count for t in report.themes)
    assert adjusted_rand_score(truth, [where[f.record_id] for f in current]) >= 0.8


def test_themes_are_named_by_their_top_terms(
    generated: tuple[list[FailureText], list[str], ThemeReport],
) -> None:
    """A theme's name holds the word its failures are about, and it stays within one reason."""
    current, truth, report = generated
    for key, identifier in _by_truth(current, truth, report).items():
        theme = report.theme(identifier)
        assert theme is not None
        assert any(EXPECTED_TERM[key] in term for term in theme.terms), (key, theme.terms)
        assert len(theme.terms) == 3
        assert theme.theme_id == theme_id(theme.reason, theme.terms)
    assert {t.reason for t in report.themes} == {"refusal", "invalid_json"}
    refusal = [t for t in report.themes if t.reason == "refusal"]
    assert sum(t.share_of_reason for t in refusal) == pytest.approx(1.0)
    assert sum(t.share_of_all for t in report.themes) == pytest.approx(1.0)
    assert refusal[0].count >= refusal[-1].count  # largest first


def test_trend_against_the_previous_period(
    generated: tuple[list[FailureText], list[str], ThemeReport],
) -> None:
    """A theme absent before is new; one that tripled is growing; the rest steady."""
    current, truth, report = generated
    found = _by_truth(current, truth, report)
    theme = {key: report.theme(identifier) for key, identifier in found.items()}
    assert theme["legal"] is not None
    assert theme["legal"].trend == "new"
    assert theme["legal"].previous == 0
    assert theme["legal"].ratio is None
    assert theme["refund"] is not None
    assert theme["refund"].trend == "growing"
    assert 85 <= theme["refund"].previous <= 100
    for key in ("medical", "truncated", "markdown"):
        steady = theme[key]
        assert steady is not None
        assert steady.trend == "steady", key
        assert 0.85 * PREVIOUS[key] <= steady.previous <= PREVIOUS[key]
    settings = ThemeSettings(min_count=50)
    assert flag(theme["legal"], settings) == "new"
    assert flag(theme["refund"], settings) == "growing"
    assert flag(theme["legal"], ThemeSettings(min_count=101)) is None
    assert flag(theme["medical"], settings) is None  # type: ignore[arg-type]


def test_ids_are_stable_across_runs_and_orders(
    generated: tuple[list[FailureText], list[str], ThemeReport],
) -> None:
    """The same failures in another order give the same themes, IDs and members; a few more
    failures keep every theme's ID."""
    current, _, report = generated
    shuffled = list(current)
    random.Random(3).shuffle(shuffled)
    again = find_themes(shuffled, _previous())
    assert [t.theme_id for t in again.themes] == [t.theme_id for t in report.themes]
    assert {k: set(v) for k, v in again.members.items()} == {
        k: set(v) for k, v in report.members.items()
    }
    more, _ = failure_texts({"refund": 10, "legal": 10}, seed=99)
    grown = find_themes([*current, *more], _previous())
    assert {t.theme_id for t in grown.themes} == {t.theme_id for t in report.themes}


def test_examples_are_close_distinct_and_short(
    generated: tuple[list[FailureText], list[str], ThemeReport],
) -> None:
    """Up to three distinct examples, members of their theme, cut to EXAMPLE_CHARS."""
    _, _, report = generated
    for theme in report.themes:
        assert 1 <= len(theme.examples) <= 3
        texts = [e.text for e in theme.examples]
        assert len(set(texts)) == len(texts)
        assert all(e.record_id in member_ids(report, theme.theme_id) for e in theme.examples)
        assert all(text is not None and len(text) <= EXAMPLE_CHARS for text in texts)
        assert theme.first_seen <= theme.last_seen


def test_failures_without_content_are_their_own_theme() -> None:
    """Failures with no captured text form the reason's 'no content captured' theme, never
    clustered with the rest, and their previous count is of silent failures too."""
    current, _ = failure_texts({"refund": 60, "medical": 60})
    silent = [replace(f, record_id=f"s{i}", text=None) for i, f in enumerate(current[:25])]
    before = [replace(f, record_id=f"p{i}", text=None) for i, f in enumerate(current[:7])]
    report = find_themes([*current, *silent], before)
    bucket = report.theme(theme_id("refusal", [NO_CONTENT]))
    assert bucket is not None
    assert bucket.terms == (NO_CONTENT,)
    assert bucket.count == 25
    assert bucket.previous == 7
    assert set(member_ids(report, bucket.theme_id)) == {f.record_id for f in silent}
    assert bucket.examples[0].text is None
    assert len(report.themes) == 3


def test_a_capped_sample_still_finds_the_themes() -> None:
    """With the clustering capped to a sample, every failure is still placed, rightly."""
    current, truth = failure_texts({"refund": 400, "medical": 300, "legal": 200}, seed=5)
    report = find_themes(current, [], ThemeSettings(sample_size=150))
    where = _theme_of(report)
    assert len(where) == len(current)
    assert adjusted_rand_score(truth, [where[f.record_id] for f in current]) >= 0.8
    assert all(t.trend == "new" for t in report.themes)


def test_noisy_texts_still_give_the_themes() -> None:
    """A third of the question words dropped and sentences every theme may carry added: the
    themes are still found (ARI >= 0.8)."""
    current, truth = failure_texts(CURRENT, seed=2, noise=0.3)
    where = _theme_of(find_themes(current, []))
    assert adjusted_rand_score(truth, [where[f.record_id] for f in current]) >= 0.8


@pytest.mark.parametrize("key", sorted(CURRENT))
def test_a_reason_with_one_theme_is_one_theme(key: str) -> None:
    """A reason whose failures are all one theme is not split by how they are phrased."""
    current, _ = failure_texts({key: 300})
    assert len(find_themes(current, []).themes) == 1


def test_a_handful_of_failures_is_one_theme() -> None:
    """A reason with too few failures to split is one theme, named by its own words."""
    current, _ = failure_texts({"legal": 4})
    report = find_themes(current, [])
    assert len(report.themes) == 1
    assert report.themes[0].count == 4


def test_failure_text_joins_input_and_answer() -> None:
    """Input contents (strings or parts) and the answer make the text; nothing is None."""
    parts = [{"type": "text", "text": "what dose"}]
    assert failure_text(["hello", parts, None], "no.") == "hello\nwhat dose\nno."
    assert failure_text([], None) is None
    assert failure_text(["  "], "") is None

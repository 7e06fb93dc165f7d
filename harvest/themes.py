"""Failure themes: the few ways a feature is failing, out of thousands of harvested failures.

:func:`find_themes` groups a period's failures by text similarity *within* each reason (a
refusal and a truncated JSON answer are never one theme), names each theme by its top terms
and compares it with the previous period of the same length. Pure: records in, themes out;
the clustering itself is :mod:`driftnet.harvest.theme_clusters` (imported when first used:
the settings here are read by every command, scikit-learn takes a second to import).

* **Text**: the input messages' text and the answer's. A failure without either (content
  capture off) is in its reason's explicit *no content captured* theme, never clustered as an
  empty string.
* **Scale**: per reason, at most ``sample_size`` texts are clustered -- the ones whose
  ``record_id`` hashes lowest, so the sample is the same on every run and mostly the same when
  a few records come or go -- and every other text goes to its nearest theme.
* **Theme ID**: 8 hex digits of a hash of the reason and the theme's sorted top terms: the
  same on every run over the same failures (and, as long as the theme keeps its top terms,
  over a period that moved on), so ``driftnet export --theme ID`` can find it again.
* **Trend**: the previous period's failures of the reason are placed on the current themes; a
  theme none of them is close to is ``new``. :func:`flag` says which themes deserve a signal.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from driftnet.contract.content import content_text

if TYPE_CHECKING:
    from driftnet.harvest.theme_clusters import ClusterParams

NO_CONTENT: Final = "no content captured"
EXAMPLE_CHARS: Final = 160
EXAMPLES: Final = 3

Trend = Literal["new", "growing", "steady", "shrinking"]
Flag = Literal["new", "growing"]


@dataclass(frozen=True, slots=True)
class FailureText:
    """One failure as theming sees it."""

    record_id: str
    event_id: str
    reason: str
    service: str
    timestamp: datetime
    text: str | None
    """Input and answer text; None when neither was captured."""


def failure_text(input_contents: Iterable[Any], output_text: str | None) -> str | None:
    """The text a failure is themed on: its input messages' contents (strings, or JSON parts
    as text) and its answer; None when there is none of either."""
    parts = [content_text(content) for content in input_contents if content is not None]
    if output_text:
        parts.append(output_text)
    joined = "\n".join(part.strip() for part in parts if part and part.strip())
    return joined or None


class ThemeSettings(BaseModel):
    """How failures are grouped into themes, and when a theme is news (``harvest.themes``)."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    sample_size: int = Field(5_000, ge=50)
    """Failures of one reason clustered at most (the rest join their nearest theme)."""
    max_themes: int = Field(12, ge=1, le=50)
    """The most themes one reason is split into."""
    merge_similarity: float = Field(0.1, gt=0, lt=1)
    """Groups of failures whose centres are at least this cosine-similar are one theme:
    lower gives fewer, broader themes; higher, more and narrower ones."""
    growth_factor: float = Field(3.0, gt=1)
    """A theme with this many times its previous period's failures is ``growing``."""
    min_count: int = Field(20, ge=1)
    """A theme raises a signal (new or growing) only with at least this many failures."""

    def cluster_params(self) -> ClusterParams:
        from driftnet.harvest.theme_clusters import ClusterParams

        return ClusterParams(max_themes=self.max_themes, merge_similarity=self.merge_similarity)


class Example(BaseModel):
    """A failure close to its theme's centre, its text cut to :data:`EXAMPLE_CHARS`."""

    model_config = ConfigDict(frozen=True)

    record_id: str
    event_id: str
    service: str
    timestamp: datetime
    text: str | None


class Theme(BaseModel):
    """One way a reason is failing, in one period."""

    model_config = ConfigDict(frozen=True)

    theme_id: str
    reason: str
    terms: tuple[str, ...]
    """Top terms, best first (``("no content captured",)`` for that theme)."""
    count: int
    share_of_reason: float
    share_of_all: float
    first_seen: datetime
    last_seen: datetime
    previous: int
    """Failures of the previous period of the same length that belong to this theme."""
    trend: Trend
    services: dict[str, int]
    """Failures by service, most first."""
    examples: tuple[Example, ...]

    @property
    def name(self) -> str:
        return ", ".join(self.terms) or "(no distinctive terms)"

    @property
    def ratio(self) -> float | None:
        """This period's failures over the previous period's (None: new)."""
        return self.count / self.previous if self.previous else None


class ThemeReport(BaseModel):
    """Every theme of a period, the largest first (of any reason)."""

    model_config = ConfigDict(frozen=True)

    total: int
    previous_total: int
    themes: tuple[Theme, ...]
    members: dict[str, tuple[str, ...]] = Field(exclude=True)
    """Theme ID -> the record_ids of its failures (this period)."""

    def theme(self, theme_id: str) -> Theme | None:
        return next((t for t in self.themes if t.theme_id == theme_id.lower()), None)


def theme_id(reason: str, terms: Sequence[str]) -> str:
    """8 hex digits from the reason and the sorted terms.

    >>> theme_id("refusal", ["refund", "policy"]) == theme_id("refusal", ["policy", "refund"])
    True
    """
    key = "\x1f".join([reason, *sorted(terms)])
    return hashlib.sha256(key.encode()).hexdigest()[:8]


def trend_of(count: int, previous: int, growth_factor: float) -> Trend:
    """``new`` with nothing before, ``growing`` at ``growth_factor`` times or more,
    ``shrinking`` at its inverse or less, else ``steady``.

    >>> [trend_of(10, 0, 3.0), trend_of(30, 10, 3.0), trend_of(3, 10, 3.0), trend_of(12, 10, 3.0)]
    ['new', 'growing', 'shrinking', 'steady']
    """
    if previous == 0:
        return "new"
    if count >= growth_factor * previous:
        return "growing"
    if count * growth_factor <= previous:
        return "shrinking"
    return "steady"


def flag(theme: Theme, settings: ThemeSettings) -> Flag | None:
    """Whether ``theme`` is news: ``new`` or ``growing`` with at least ``min_count``
    failures (None: not news)."""
    if theme.count < settings.min_count or theme.trend not in ("new", "growing"):
        return None
    return "new" if theme.trend == "new" else "growing"


def _sample_order(record_id: str) -> bytes:
    return hashlib.blake2b(record_id.encode(), digest_size=8).digest()


@dataclass(slots=True)
class _Group:
    terms: tuple[str, ...]
    members: list[FailureText]
    sims: list[float]
    previous: int = 0


def find_themes(
    current: Sequence[FailureText],
    previous: Sequence[FailureText],
    settings: ThemeSettings | None = None,
) -> ThemeReport:
    """The themes of ``current`` failures, with their trend against ``previous`` ones (the
    period of the same length just before)."""
    settings = settings or ThemeSettings()
    by_reason: dict[str, list[FailureText]] = {}
    for failure in current:
        by_reason.setdefault(failure.reason, []).append(failure)
    before: dict[str, list[FailureText]] = {}
    for failure in previous:
        before.setdefault(failure.reason, []).append(failure)
    themes: list[Theme] = []
    members: dict[str, tuple[str, ...]] = {}
    for reason in sorted(by_reason):
        groups = _reason_groups(by_reason[reason], before.get(reason, []), settings)
        for identifier, group in groups.items():
            themes.append(
                _theme(identifier, reason, group, len(by_reason[reason]), len(current), settings)
            )
            members[identifier] = tuple(f.record_id for f in group.members)
    themes.sort(key=lambda t: (-t.count, t.reason, t.theme_id))
    return ThemeReport(
        total=len(current), previous_total=len(previous), themes=tuple(themes), members=members
    )


def _reason_groups(
    failures: list[FailureText], previous: list[FailureText], settings: ThemeSettings
) -> dict[str, _Group]:
    """One reason's failures by theme ID."""
    from driftnet.harvest.theme_clusters import cluster_texts  # scikit-learn: only when used

    groups: dict[str, _Group] = {}
    texts = [f for f in failures if f.text is not None]
    silent = [f for f in failures if f.text is None]
    reason = failures[0].reason
    if silent:
        groups[theme_id(reason, [NO_CONTENT])] = _Group(
            (NO_CONTENT,), silent, [1.0] * len(silent), sum(1 for f in previous if f.text is None)
        )
    if not texts:
        return groups
    ordered = sorted(texts, key=lambda f: _sample_order(f.record_id))
    sample = ordered[: settings.sample_size]
    clusters = cluster_texts([f.text or "" for f in sample], settings.cluster_params())
    nearest, sims = clusters.assign([f.text or "" for f in ordered])
    ids = [theme_id(reason, terms) for terms in clusters.terms]
    for index, failure in enumerate(ordered):
        cluster = int(nearest[index])
        group = groups.get(ids[cluster])
        if group is None:  # two clusters with the same top terms are one theme
            group = groups[ids[cluster]] = _Group(clusters.terms[cluster], [], [])
        group.members.append(failure)
        group.sims.append(float(sims[index]))
    spoken = [f for f in previous if f.text is not None]
    if spoken:
        near, sim = clusters.assign([f.text or "" for f in spoken])
        close = sim >= clusters.radius[near] - 1e-9
        for cluster, count in Counter(near[close].tolist()).items():
            groups[ids[cluster]].previous += count
    return groups


def _theme(
    identifier: str,
    reason: str,
    group: _Group,
    reason_total: int,
    total: int,
    settings: ThemeSettings,
) -> Theme:
    members = group.members
    times = [f.timestamp for f in members]
    order = sorted(range(len(members)), key=lambda i: (-group.sims[i], members[i].record_id))
    examples: list[Example] = []
    seen: set[str | None] = set()
    for index in order:
        failure = members[index]
        if failure.text in seen:
            continue
        seen.add(failure.text)
        examples.append(_example(failure))
        if len(examples) == EXAMPLES:
            break
    services = Counter(f.service for f in members)
    return Theme(
        theme_id=identifier,
        reason=reason,
        terms=group.terms,
        count=len(members),
        share_of_reason=len(members) / reason_total,
        share_of_all=len(members) / total,
        first_seen=min(times),
        last_seen=max(times),
        previous=group.previous,
        trend=trend_of(len(members), group.previous, settings.growth_factor),
        services=dict(sorted(services.items(), key=lambda item: (-item[1], item[0]))),
        examples=tuple(examples),
    )


def _example(failure: FailureText) -> Example:
    text = failure.text
    if text is not None:
        text = " ".join(text.split())
        if len(text) > EXAMPLE_CHARS:
            text = text[: EXAMPLE_CHARS - 1].rstrip() + "…"
    return Example(
        record_id=failure.record_id,
        event_id=failure.event_id,
        service=failure.service,
        timestamp=failure.timestamp,
        text=text,
    )


def member_ids(report: ThemeReport, theme: str) -> tuple[str, ...]:
    """The record_ids of theme ``theme`` (empty when the report has no such theme)."""
    return report.members.get(theme.lower(), ())

"""The README and the documentation site's pages, as the doc tests read them."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

from tests.conftest import ROOT

DOCS = ROOT / "docs"
README = ROOT / "README.md"


def page(name: str) -> str:
    """The text of ``docs/<name>``."""
    return (DOCS / name).read_text(encoding="utf-8")


def pages() -> list[Path]:
    """Every page of the site."""
    return sorted(DOCS.glob("*.md"))


def documents() -> list[Path]:
    """The README and every page: what the doc tests hold to the code."""
    return [README, *pages()]


def headings(text: str) -> list[tuple[int, str]]:
    """The (level, text) of each Markdown heading, those inside fenced code left out."""
    found, fenced = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and (match := re.match(r"^(#{1,6}) (.+)$", line)):
            found.append((len(match.group(1)), match.group(2)))
    return found


def section(text: str, heading: str) -> str:
    """The section under the heading ``heading`` (e.g. ``"## The worker"``), up to the next
    heading of the same or a higher level."""
    level = len(heading) - len(heading.lstrip("#"))
    lines = text.splitlines()
    start = lines.index(heading)
    body, fenced = [], False
    for line in lines[start + 1 :]:
        if line.startswith("```"):
            fenced = not fenced
        elif (
            not fenced and (match := re.match(r"^(#{1,6}) ", line)) and len(match.group(1)) <= level
        ):
            break
        body.append(line)
    return "\n".join(body)


def slug(heading: str) -> str:
    """The anchor MkDocs (Python-Markdown's toc) and GitHub give a heading like these."""
    text = unicodedata.normalize("NFKD", heading.replace("`", ""))
    text = re.sub(r"[^\w\s-]", "", text.encode("ascii", "ignore").decode("ascii"))
    return re.sub(r"[-\s]+", "-", text.strip().lower())


def anchors(text: str) -> set[str]:
    """The anchors of a document's headings."""
    return {slug(heading) for _, heading in headings(text)}

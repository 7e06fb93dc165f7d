"""Generated blocks in hand-written Markdown: the text between a pair of HTML-comment markers
(``<!-- x:start -->`` ... ``<!-- x:end -->``) that a generator rewrites (``make docs``) and a
test compares with what the code says. Pure, except :func:`write_block`.
"""

from __future__ import annotations

from pathlib import Path


def between(text: str, start: str, end: str) -> str:
    """What stands between the one ``start`` marker and the one ``end`` marker after it."""
    _check(text, start, end)
    return text.split(start)[1].split(end)[0]


def replace_between(text: str, start: str, end: str, block: str) -> str:
    """``text`` with what stands between the two markers replaced by ``block``."""
    _check(text, start, end)
    head, rest = text.split(start)
    _, tail = rest.split(end)
    return f"{head}{start}{block}{end}{tail}"


def write_block(path: Path, start: str, end: str, block: str, what: str) -> str:
    """Put ``block`` between the markers of the file at ``path``; the line to print.

    Raises :class:`ValueError` when the file does not hold exactly one pair of markers (then
    nothing is written)."""
    text = path.read_text(encoding="utf-8")
    updated = replace_between(text, start, end, block)
    if updated == text:
        return f"{path}: the {what} is up to date"
    path.write_text(updated, encoding="utf-8")
    return f"{path}: {what} rewritten"


def _check(text: str, start: str, end: str) -> None:
    if text.count(start) != 1 or text.count(end) != 1 or text.index(start) > text.index(end):
        raise ValueError(f"expected one {start} followed by one {end}")

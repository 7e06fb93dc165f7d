"""Generated blocks in hand-written Markdown: the text between a pair of HTML-comment markers
(``<!-- x:start -->`` ... ``<!-- x:end -->``) that a generator rewrites (``make docs``) and a
test compares with what the code says, and the Markdown cells the generators write. Pure,
except :func:`write_block` and :func:`reference_main`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
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


def cell(text: str) -> str:
    """``text`` safe in a Markdown table cell (a ``|`` would split the row)."""
    return text.replace("|", "\\|")


def code(text: str) -> str:
    """``text`` as inline code in a table cell (double backticks when it holds one)."""
    fence = "``" if "`" in text else "`"
    pad = " " if fence == "``" else ""
    return f"{fence}{pad}{cell(text)}{pad}{fence}"


def reference_main(
    argv: Sequence[str] | None,
    *,
    description: str | None,
    render: Callable[[], str],
    block: Callable[[], str],
    markers: tuple[str, str],
    what: str,
    example: str,
) -> int:
    """A generator's command line: print the reference, or with ``--write FILE`` put its block
    between the markers of FILE (``make docs``)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--write", type=Path, metavar="FILE", help=f"e.g. {example}")
    args = parser.parse_args(argv)
    if args.write is None:
        sys.stdout.write(render())
        return 0
    try:
        print(write_block(args.write, *markers, block(), what))
    except ValueError as exc:
        parser.error(f"{args.write}: {exc}")
    return 0

"""How the ``driftnet`` commands print a table: as wide as the terminal (cells wrap, no column
is dropped or cut); into a pipe or a file as wide as ``$COLUMNS`` when it is set, else each row
whole on one line (for grep and cut)."""

from __future__ import annotations

import os
import sys
from io import StringIO
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.table import Table

UNBOUNDED = 10_000
"""The width of a table written where no terminal bounds it: rows are never wrapped."""


def output_width() -> int | None:
    """The width to draw at on stdout: None (the terminal's own, or ``$COLUMNS``) in a
    terminal or when ``$COLUMNS`` is set, else :data:`UNBOUNDED`."""
    if sys.stdout.isatty() or os.environ.get("COLUMNS", "").isdigit():
        return None
    return UNBOUNDED


def table_text(table: Table, width: int | None) -> str:
    """``table`` drawn at ``width`` columns (None: the terminal's), lines right-stripped, no
    colour when it is not going to a terminal."""
    from rich.console import Console

    console = Console(width=width, file=StringIO(), force_terminal=False, color_system=None)
    console.print(table)
    text = console.file.getvalue()  # type: ignore[attr-defined]
    return "".join(line.rstrip() + "\n" for line in text.splitlines())


def print_table(table: Table) -> None:
    """``table`` on stdout at :func:`output_width` (coloured in a terminal)."""
    from rich.console import Console

    width = output_width()
    if sys.stdout.isatty():
        Console(width=width).print(table)
        return
    sys.stdout.write(table_text(table, width))

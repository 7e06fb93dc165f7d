"""A query's result as a table for people: psql-style, drawn with rich, cells folded or
wrapped to the terminal instead of cut -- no column a query returns is ever dropped or shown as
``…``. ``driftnet query``, ``driftnet harvest reasons`` and the demo's summary all draw their
results with :func:`query_table`. Pure: values in, a rich table out.

>>> from io import StringIO
>>> from rich.console import Console
>>> console = Console(width=80, file=StringIO())
>>> console.print(query_table(["service", "failures"], [("support-chat", 202)]))
>>> for line in console.file.getvalue().splitlines():
...     print(line.rstrip())
 service      │ failures
──────────────┼──────────
 support-chat │      202
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich import box
from rich.table import Table
from rich.text import Text


def query_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> Table:
    """A query's result as psql draws one (no outer frame: three columns of frame per column
    of data), numbers right-aligned; a cell too wide for the terminal wraps (long words
    folded) instead of being cut, and every column keeps at least its header's width."""
    table = Table(box=box.SQUARE, show_edge=False, header_style="bold")
    numeric = [
        bool(rows) and all(isinstance(row[i], int | float) for row in rows if row[i] is not None)
        for i in range(len(columns))
    ]
    for name, is_number in zip(columns, numeric, strict=True):
        table.add_column(
            name,
            justify="right" if is_number else "left",
            overflow="fold",
            min_width=min(len(name), 12),
        )
    for row in rows:
        table.add_row(*(Text("NULL" if cell is None else cell_text(cell)) for cell in row))
    return table


def cell_text(value: Any) -> str:
    """A value as a table cell: thousands separated, floats without trailing zeros."""
    if isinstance(value, float):
        return f"{value:,.2f}".rstrip("0").rstrip(".") if value % 1 else f"{value:,.0f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


__all__ = ["cell_text", "query_table"]

"""The demo's tables, built to fit the terminal: the canary verdicts
(:func:`~driftnet.streams.clients.verdict_table.compact_verdict_table`, which ``driftnet canary
status`` prints in a narrow terminal too) and the harvest queries' results as rich tables that
fit 80 columns. Cells wrap (at spaces, long words folded) rather
than being cut: the verdict, the score and every failing metric stay whole in any terminal at
least 80 columns wide. Pure: values in, rich tables out.

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

from driftnet.streams.clients.verdict_table import compact_verdict_table as verdicts_table


def query_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> Table:
    """A query's result as psql draws one (no outer frame: three columns of frame per column
    of data), numbers right-aligned; a cell too wide for the terminal wraps (long words
    folded) instead of being cut."""
    table = Table(box=box.SQUARE, show_edge=False, header_style="bold")
    numeric = [
        bool(rows) and all(isinstance(row[i], int | float) for row in rows if row[i] is not None)
        for i in range(len(columns))
    ]
    for name, is_number in zip(columns, numeric, strict=True):
        table.add_column(name, justify="right" if is_number else "left", overflow="fold")
    for row in rows:
        table.add_row(*(Text("NULL" if cell is None else _cell(cell)) for cell in row))
    return table


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}".rstrip("0").rstrip(".") if value % 1 else f"{value:,.0f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


__all__ = ["query_table", "verdicts_table"]

"""The demo's tables, built to fit the terminal: the canary verdicts
(:func:`~driftnet.streams.clients.verdict_table.compact_verdict_table`, which ``driftnet canary
status`` prints in a narrow terminal too) and the harvest queries' results
(:func:`~driftnet.storage.result_table.query_table`, which ``driftnet query`` and ``driftnet
harvest reasons`` print too). Cells wrap (at spaces, long words folded) rather than being cut:
the verdict, the score and every failing metric stay whole in any terminal at least 80 columns
wide.
"""

from __future__ import annotations

from driftnet.storage.result_table import query_table
from driftnet.streams.clients.verdict_table import compact_verdict_table as verdicts_table

__all__ = ["query_table", "verdicts_table"]

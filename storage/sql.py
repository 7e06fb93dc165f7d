"""The SQL the harvest commands run over the ``failures`` view: canned questions and export filters."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

SHOW_SQL = (
    "SELECT * EXCLUDE (date) FROM failures WHERE record_id = ? OR event_id = ? ORDER BY detected_at"
)
"""``driftnet harvest show``: every record of one record or event id (two parameters)."""

KNOWN_EVENT_SQL = "SELECT 1 FROM failures WHERE event_id = ?"
"""``driftnet label``: a row when the event was harvested (one parameter)."""


def reasons_sql(by: str) -> str:
    """``driftnet harvest reasons``: failures by reason, grouped by the comma-separated
    columns ``by`` (``none``: no grouping), between two timestamps (two parameters)."""
    groups = [] if by == "none" else by.split(",")
    keys = "".join(f"{g}, " for g in groups)
    return (
        f"SELECT {keys}r.rule_id AS reason, count(*) AS failures, "
        "count(DISTINCT event_id) AS events, "
        "strftime(max(timestamp), '%Y-%m-%d %H:%M') AS last_seen "
        "FROM failures, unnest(reasons) AS u(r) "
        "WHERE timestamp >= ? AND timestamp < ? "
        "GROUP BY ALL ORDER BY failures DESC, reason"
    )


SPAN_SQL = (
    "SELECT count(*) FILTER (WHERE timestamp >= ? AND timestamp < ?) AS in_range, "
    "max(timestamp) AS newest FROM failures"
)
"""``driftnet harvest reasons``: how many failures fall between two timestamps (two
parameters) and the newest one's event time (NULL: none at all), for an empty answer to say
where the failures are."""


def count_sql(where: str) -> str:
    """``driftnet harvest delete``: how many failures match ``where`` (SQL), as column ``n``."""
    return f"SELECT count(*) AS n FROM failures WHERE {where}"


def export_sql(condition: str) -> str:
    """``driftnet export``: the failures matching ``condition`` (SQL), in a stable order."""
    return f"SELECT * EXCLUDE (date) FROM failures WHERE {condition} ORDER BY timestamp, record_id"


def export_condition(
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    service: Sequence[str] = (),
    release: Sequence[str] = (),
    kind: Sequence[str] = (),
    labels: Sequence[str] = (),
    reason: Sequence[str] = (),
    where: str | None = None,
) -> tuple[str, list[Any]]:
    """``driftnet export``'s filters as a condition for :func:`export_sql` and its ``?``
    parameters: every filter given must hold (``true`` when none is).

    >>> export_condition()
    ('true', [])
    >>> export_condition(service=["chat", "search"], where="latency_ms > 1000")
    ('service IN (?, ?) AND (latency_ms > 1000)', ['chat', 'search'])
    """
    clauses: list[str] = []
    params: list[Any] = []
    if since:
        clauses.append("timestamp >= ?")
        params.append(since)
    if until:
        clauses.append("timestamp < ?")
        params.append(until)
    for column, values in (("service", service), ("release", release), ("kind", kind)):
        if values:
            clauses.append(f"{column} IN ({', '.join('?' for _ in values)})")
            params.extend(values)
    if labels:
        clauses.append(f"label IN ({', '.join('?' for _ in labels)})")
        params.extend(labels)
    if reason:
        clauses.append("list_has_any(list_transform(reasons, lambda r: r.rule_id), ?)")
        params.append(list(reason))
    if where:
        clauses.append(f"({where})")
    return " AND ".join(clauses) or "true", params


def themes_sql(condition: str) -> str:
    """``driftnet harvest themes`` and ``export --theme``: what theming reads of the failures
    matching ``condition`` (SQL): ids, reason, service, event time, the input messages'
    contents (a string, or a list of parts as JSON) and the answer's text."""
    return (
        "SELECT record_id, event_id, reason, service, timestamp, "
        "list_transform(coalesce(input.messages, []), "
        "lambda m: coalesce(m.content, m.content_json)) AS input_contents, "
        "list_transform(coalesce(input.messages, []), "
        "lambda m: m.content IS NULL AND m.content_json IS NOT NULL) AS input_parts, "
        f"output_text FROM failures WHERE {condition} ORDER BY record_id"
    )

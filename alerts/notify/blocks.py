"""Slack's Block Kit rendering of a notification: pure, total, within every Block Kit limit.

:func:`render_blocks` is pure and total: whatever the alerts hold (huge texts, thirty alerts,
any unicode), its Block Kit payload stays within Slack's limits, truncating with "…", and
carries non-empty fallback text. Texts from alerts are escaped (``&``, ``<``, ``>``), so a
summary can never mention ``@channel`` or forge a link.
"""

from __future__ import annotations

import re
from typing import Any

from driftnet.alerts.model import SEVERITY_ORDER, Alert, Notification
from driftnet.alerts.notify.console import (
    STATE_EMOJI,
    alert_facts,
    comparison,
    format_duration,
    format_time,
    headline,
    since,
    state_key,
    state_word,
)

Block = dict[str, Any]

HEADER_MAX = 150
FIELDS_MAX = 10
FIELD_MAX = 2000
TEXT_MAX = 3000
BUTTON_TEXT_MAX = 75
URL_MAX = 3000
BUTTONS_MAX = 5
BLOCKS_MAX = 50
GROUP_LINES_MAX = 10
FALLBACK_MAX = 3000


# ----------------------------------------------------------------------------- text limits


def _units(text: str) -> int:
    """Length as Slack may count it (UTF-16 code units): never less than ``len``."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def clip(text: str, limit: int) -> str:
    """``text`` if it fits in ``limit`` UTF-16 units, else its longest prefix that fits with
    a trailing "…"."""
    if _units(text) <= limit:
        return text
    kept: list[str] = []
    used = 0
    for char in text:
        width = 2 if ord(char) > 0xFFFF else 1
        if used + width > limit - 1:
            break
        kept.append(char)
        used += width
    return "".join(kept) + "…"


def escape_mrkdwn(text: str) -> str:
    """Slack's three control characters as entities: no mention, link or markup injection."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def one_line(text: str) -> str:
    """Runs of whitespace (newlines too) as one space."""
    return " ".join(text.split())


def _fit(escaped: str, limit: int) -> str:
    """Escaped text clipped to ``limit`` without cutting an entity in half."""
    clipped = clip(escaped, limit)
    return clipped if clipped == escaped else re.sub(r"&[a-z]*…$", "…", clipped)


def _mrkdwn(text: str, limit: int) -> str:
    """Raw text escaped, then clipped to ``limit``."""
    return _fit(escape_mrkdwn(text), limit)


def _plain(text: str, limit: int) -> dict[str, Any]:
    """A plain_text object (no escaping needed), clipped, never empty."""
    return {"type": "plain_text", "text": clip(text.strip() or "-", limit), "emoji": True}


def _md(escaped: str, limit: int = TEXT_MAX) -> dict[str, Any]:
    """A mrkdwn object from escaped text, clipped, never empty."""
    return {"type": "mrkdwn", "text": _fit(escaped.strip() or "-", limit)}


# ----------------------------------------------------------------------------- rendering


def _ordered(alerts: tuple[Alert, ...]) -> list[Alert]:
    """Firing first, worst severity first, then by start."""
    return sorted(
        alerts,
        key=lambda a: (a.state != "firing", -SEVERITY_ORDER[a.severity], a.starts_at),
    )


def _alert_line(alert: Alert) -> str:
    emoji = STATE_EMOJI["resolved" if alert.state == "resolved" else alert.severity]
    summary = _mrkdwn(one_line(alert.summary) or alert.rule, 200)
    line = (
        f"{emoji} ~{summary}~ (resolved)" if alert.state == "resolved" else f"{emoji} *{summary}*"
    )
    measured = comparison(alert)
    if measured:
        line += f" — {escape_mrkdwn(measured)}"
    return _fit(line, 280)


def _group_lines(alerts: tuple[Alert, ...]) -> str:
    ordered = _ordered(alerts)
    lines = [_alert_line(a) for a in ordered[:GROUP_LINES_MAX]]
    if len(ordered) > GROUP_LINES_MAX:
        lines.append(f"+{len(ordered) - GROUP_LINES_MAX} more")
    return "\n".join(lines)


GROUP_FACTS = ("Service", "Environment", "Release / variant", "Window (UTC)")
"""The facts a group's message shows once, when all its alerts share them."""


def _shared_facts(alerts: tuple[Alert, ...]) -> list[tuple[str, str]]:
    """Where the group is (service, environment, release, window), as far as all agree."""
    first, *rest = [dict(alert_facts(a)) for a in alerts]
    return [
        (name, first[name])
        for name in GROUP_FACTS
        if name in first and all(other.get(name) == first[name] for other in rest)
    ]


def _fields(facts: list[tuple[str, str]]) -> list[dict[str, Any]]:
    return [
        _md(f"*{name}*\n{escape_mrkdwn(value)}", FIELD_MAX) for name, value in facts[:FIELDS_MAX]
    ]


def _buttons(alerts: list[Alert]) -> list[dict[str, Any]]:
    """Up to five link buttons, one per distinct http(s) URL (a URL too long to send whole
    is left out: a truncated URL is a broken link)."""
    buttons: list[dict[str, Any]] = []
    seen: set[str] = set()
    for link in (link for alert in alerts for link in alert.links):
        url = link.url.strip()
        if url in seen or not url.startswith(("https://", "http://")) or _units(url) > URL_MAX:
            continue
        seen.add(url)
        buttons.append(
            {
                "type": "button",
                "text": _plain(link.text, BUTTON_TEXT_MAX),
                "url": url,
                "action_id": f"link-{len(buttons)}",
            }
        )
        if len(buttons) == BUTTONS_MAX:
            break
    return buttons


def _query_block(alerts: list[Alert]) -> Block | None:
    """The ready-to-paste ``driftnet query`` commands as a code block, clipped to fit."""
    queries = list(dict.fromkeys(a.query.strip() for a in alerts if a.query and a.query.strip()))
    if not queries:
        return None
    title = "*Evidence*" if len(queries) == 1 else "*Evidence* (one command per alert)"
    body = "\n".join(queries).replace("```", "'''")
    room = TEXT_MAX - _units(title) - len("\n``````")
    return {"type": "section", "text": _md(f"{title}\n```{_mrkdwn(body, room)}```")}


def _context(notification: Notification) -> Block:
    start, age = since(notification)
    alerts = notification.alerts
    if len(alerts) == 1:
        who = f"rule `{alerts[0].rule}` · fingerprint `{alerts[0].fingerprint}`"
    else:
        who = f"group `{notification.group_key}` · {len(alerts)} alerts"
    duration = format_duration(age)
    when = (
        f"resolved after {duration}"
        if notification.kind == "resolved"
        else f"since {format_time(start)} (for {duration})"
    )
    meta = f"notification {notification.sequence} ({notification.kind})"
    return {"type": "context", "elements": [_md(escape_mrkdwn(f"{who} · {when} · {meta}"))]}


def fallback_text(notification: Notification) -> str:
    """The notification's one line, for push notifications and clients without blocks."""
    line = f"{state_word(notification)} [{notification.severity}] {headline(notification)}"
    return _mrkdwn(line, FALLBACK_MAX)


def header_text(notification: Notification) -> str:
    """``🔴 FIRING · <title>``, ``✅ RESOLVED · <title>``, clipped to the header's limit."""
    emoji = STATE_EMOJI[state_key(notification)]
    return clip(
        one_line(f"{emoji} {state_word(notification)} · {headline(notification)}"), HEADER_MAX
    )


def render_blocks(notification: Notification) -> tuple[str, list[Block]]:
    """Fallback text (never empty) and the message's blocks, within every Block Kit limit.

    One alert: its facts as fields, its description, its evidence command, a context line and
    link buttons. Several: the facts they share, one line per alert (ten, then "+N more").
    Resolved: a green header and the facts as muted context text, without buttons.
    """
    alerts = _ordered(notification.alerts)
    single = len(alerts) == 1
    facts = alert_facts(alerts[0]) if single else _shared_facts(notification.alerts)
    blocks: list[Block] = [
        {"type": "header", "text": _plain(header_text(notification), HEADER_MAX)}
    ]
    if notification.kind == "resolved":
        muted = [escape_mrkdwn(" · ".join(f"{name}: {value}" for name, value in facts))]
        if not single:
            muted.append(_group_lines(notification.alerts))
        if any(muted):
            blocks.append({"type": "context", "elements": [_md("\n".join(filter(None, muted)))]})
        blocks.append(_context(notification))
        return fallback_text(notification), blocks[:BLOCKS_MAX]

    if facts:
        blocks.append({"type": "section", "fields": _fields(facts)})
    if single and alerts[0].description.strip():
        blocks.append({"type": "section", "text": _md(escape_mrkdwn(alerts[0].description))})
    if not single:
        blocks.append({"type": "section", "text": _md(_group_lines(notification.alerts))})
    query = _query_block(alerts)
    if query is not None:
        blocks.append(query)
    blocks.append(_context(notification))
    buttons = _buttons(alerts)
    if buttons:
        blocks.append({"type": "actions", "elements": buttons})
    return fallback_text(notification), blocks[:BLOCKS_MAX]


def thread_text(notification: Notification) -> str:
    """The thread reply that says what happened to the group: ``resolved after 12 min``,
    ``still firing (repeat) for 4 h``, ``now 3 alerts firing: …``."""
    _, age = since(notification)
    firing = _ordered(notification.firing)
    if notification.kind == "resolved":
        text = f"✅ resolved after {format_duration(age)}"
    elif notification.kind == "repeat":
        text = f"still firing (repeat) for {format_duration(age)}: {notification.title}"
    else:
        names = "; ".join(one_line(a.summary) or a.rule for a in firing[:5])
        more = f" (+{len(firing) - 5} more)" if len(firing) > 5 else ""
        count = f"{len(firing)} alert{'s' if len(firing) != 1 else ''} firing"
        text = f"now {count}: {names}{more}" if firing else "no alert firing any more"
        resolved = [
            one_line(a.summary) or a.rule for a in notification.alerts if a.state == "resolved"
        ]
        if resolved:
            text += f"\nresolved: {'; '.join(resolved[:5])}"
    return _mrkdwn(text, TEXT_MAX)

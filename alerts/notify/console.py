"""The console receiver, and the plain-text facts of an alert that every notifier shows.

The helpers here are pure (no I/O, no Slack): :mod:`driftnet.alerts.notify.blocks` renders the same facts as
Block Kit, so the console and Slack never disagree on what an alert says.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import IO

from rich.console import Console
from rich.markup import escape

from driftnet.alerts.model import Alert, Notification
from driftnet.alerts.notify.base import Notifier, Thread

STATE_EMOJI: dict[str, str] = {"critical": "🔴", "warning": "🟠", "info": "🔵", "resolved": "✅"}
_STYLES: dict[str, str] = {
    "critical": "bold red",
    "warning": "bold yellow",
    "info": "bold blue",
    "resolved": "bold green",
}


def format_number(value: float) -> str:
    """A measurement as people read it: ``12,345``, ``812.5``, ``0.0312``."""
    if not math.isfinite(value):
        return str(value)
    if value == int(value) and abs(value) < 1e15:
        return f"{int(value):,}"
    if abs(value) >= 100:
        return f"{value:,.1f}"
    return f"{value:.3g}"


def format_value(value: float, unit: str | None) -> str:
    """``812 ms``, ``3.2%``, or the bare number without a unit."""
    number = format_number(value)
    if not unit:
        return number
    return f"{number}{unit}" if unit == "%" else f"{number} {unit}"


def format_time(moment: datetime) -> str:
    """``2024-11-25 16:03 UTC`` (naive datetimes are taken as UTC)."""
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def format_window(start: int, end: int) -> str:
    """``[start, end)`` in epoch seconds as ``2024-11-25 16:00 → 16:01`` (UTC)."""
    first = datetime.fromtimestamp(start, UTC)
    last = datetime.fromtimestamp(end, UTC)
    clock = "%H:%M" if first.second == last.second == 0 else "%H:%M:%S"
    tail = last.strftime(clock if last.date() == first.date() else f"%Y-%m-%d {clock}")
    return f"{first.strftime(f'%Y-%m-%d {clock}')} → {tail}"


def format_duration(seconds: float) -> str:
    """``45 s``, ``12 min``, ``2 h 5 min``, ``3 d 4 h`` (never negative)."""
    whole = max(0, round(seconds))
    if whole < 60:
        return f"{whole} s"
    minutes = whole // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def state_key(notification: Notification) -> str:
    """``resolved`` for a resolved notification, else the group's worst firing severity."""
    return "resolved" if notification.kind == "resolved" else notification.severity


def state_word(notification: Notification) -> str:
    """``RESOLVED``, ``FIRING``, or the alerts' state when none fires (``PENDING``)."""
    if notification.kind == "resolved":
        return "RESOLVED"
    return "FIRING" if notification.firing else notification.alerts[0].state.upper()


def headline(notification: Notification) -> str:
    """The notification's title, without the "Resolved: " the state word already says."""
    if notification.kind == "resolved":
        return notification.title.removeprefix("Resolved: ")
    return notification.title


def comparison(alert: Alert) -> str | None:
    """``1,310 ms vs 812 ms (threshold 1,000 ms)``, or None when nothing was measured."""
    d = alert.details
    if d.observed is None:
        return None
    text = format_value(d.observed, d.unit)
    if d.reference is not None:
        text += f" vs {format_value(d.reference, d.unit)}"
    if d.threshold is not None:
        text += f" (threshold {format_value(d.threshold, d.unit)})"
    return text


def alert_facts(alert: Alert) -> list[tuple[str, str]]:
    """At most ten (name, value) pairs, the missing ones left out, in a fixed order."""
    labels = alert.labels
    d = alert.details
    cohort = " / ".join(v for v in (labels.get("release"), labels.get("variant")) if v)
    effect = None
    if d.effect_size is not None:
        effect = format_number(d.effect_size)
        if d.p_value is not None:
            effect += f" (p={d.p_value:.2g})"
    window = None
    if d.window_start is not None and d.window_end is not None:
        window = format_window(d.window_start, d.window_end)
    state: str = alert.state
    if alert.windows_active and alert.state != "resolved":
        state += f" for {alert.windows_active} window{'s' if alert.windows_active != 1 else ''}"
    facts = [
        ("Service", labels.get("service")),
        ("Environment", labels.get("environment")),
        ("Release / variant", cohort),
        ("Metric", labels.get("metric")),
        ("Observed vs reference", comparison(alert)),
        ("Window (UTC)", window),
        ("Sample size", None if d.sample_size is None else format_number(d.sample_size)),
        ("Effect size", effect),
        ("Severity", alert.severity),
        ("State", state),
    ]
    return [(name, value) for name, value in facts if value]


def since(notification: Notification) -> tuple[datetime, float]:
    """When the group's first alert started, and how long ago (until resolution, once
    resolved) in seconds."""
    start = min(a.starts_at for a in notification.alerts)
    ends = [a.ends_at for a in notification.alerts if a.ends_at is not None]
    end = max(ends) if notification.kind == "resolved" and ends else notification.created_at
    return start, (end - start).total_seconds()


def render_console(notification: Notification) -> str:
    """Multi-line rich markup: red for critical, yellow for warning, green once resolved.
    Every text that comes from an alert is escaped, so it can never inject markup."""
    style = _STYLES[state_key(notification)]
    emoji = STATE_EMOJI[state_key(notification)]
    start, age = since(notification)
    lines = [
        f"[{style}]{emoji} {state_word(notification)} {notification.severity}[/] "
        f"[bold]{escape(headline(notification))}[/]",
        f"  group {escape(notification.group_key)} · since {format_time(start)} "
        f"({format_duration(age)}) · notification {notification.sequence} ({notification.kind})",
    ]
    for alert in notification.alerts:
        alert_style = "green" if alert.state == "resolved" else _STYLES[alert.severity]
        lines.append(f"  [{alert_style}]●[/] [bold]{escape(alert.summary or alert.rule)}[/]")
        facts = " · ".join(f"{name.lower()}: {value}" for name, value in alert_facts(alert))
        lines.append(f"    {escape(facts)}")
        if alert.description:
            lines.extend(f"    {escape(line)}" for line in alert.description.splitlines())
        lines.append(f"    rule {escape(alert.rule)} · fingerprint {escape(alert.fingerprint)}")
        lines.extend(f"    {escape(link.text)}: {escape(link.url)}" for link in alert.links)
        if alert.query:
            lines.append(f"    query: [cyan]{escape(alert.query)}[/]")
    return "\n".join(lines)


class ConsoleNotifier(Notifier):
    """Prints each notification to a terminal; never fails for the pipeline to retry."""

    def __init__(
        self,
        console: Console | None = None,
        *,
        file: IO[str] | None = None,
        no_color: bool = False,
    ) -> None:
        self.console = console or Console(file=file, no_color=no_color, emoji=False)

    async def deliver(
        self, notification: Notification, thread: Thread | None = None, *, unsure: bool = False
    ) -> None:
        """Print the notification (the thread is ignored: a console has no threads); printed
        again when ``unsure``: a console cannot look back."""
        self.console.print(render_console(notification), highlight=False, soft_wrap=True)

    async def close(self) -> None:
        """Nothing to release; here so every notifier can be closed alike."""

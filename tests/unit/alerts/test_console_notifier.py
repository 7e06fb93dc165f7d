"""The console receiver: what on-call reads in a terminal, coloured by severity and state."""

from __future__ import annotations

import asyncio
import io
import subprocess
import sys

import pytest
from rich.console import Console

from driftnet.alerts.model import Notification, Severity
from driftnet.alerts.notify.console import (
    ConsoleNotifier,
    format_duration,
    format_window,
    render_console,
)
from tests.unit.alerts.test_slack import QUERY, Kind, make_alert, notify, resolved

ANSI = {"red": "\x1b[1;31m", "yellow": "\x1b[1;33m", "green": "\x1b[1;32m"}


def printed(notification: Notification, *, no_color: bool = False) -> str:
    """What ConsoleNotifier.deliver writes to a colour terminal 200 columns wide."""
    out = io.StringIO()
    console = Console(
        file=out, force_terminal=True, color_system="standard", width=200, no_color=no_color
    )
    asyncio.run(ConsoleNotifier(console).deliver(notification))
    return out.getvalue()


def test_output_has_the_title_the_measurement_and_the_query() -> None:
    """The summary, observed vs reference with the unit, the window and the ready-to-paste
    query command are all printed, the query unbroken on one line."""
    out = printed(notify([make_alert()]))
    assert "support-chat canary gpt-4.1 fails: latency_p95 +62%" in out
    assert "1,310 ms vs 812.5 ms (threshold 1,000 ms)" in out
    assert "2024-11-25 16:00 → 16:01" in out
    assert any(QUERY in line for line in out.splitlines())
    assert "https://wiki.example.com/runbooks/latency" in out


@pytest.mark.parametrize(
    ("severity", "kind", "colour"),
    [
        pytest.param("critical", "new", "red", id="critical-red"),
        pytest.param("warning", "new", "yellow", id="warning-yellow"),
        pytest.param("critical", "resolved", "green", id="resolved-green"),
    ],
)
def test_the_headline_is_coloured_by_severity_and_state(
    severity: Severity, kind: Kind, colour: str
) -> None:
    """Critical prints red, warning yellow, a resolved group green."""
    alert = make_alert(severity=severity)
    notification = notify([resolved(alert)] if kind == "resolved" else [alert], kind)
    first_line = printed(notification).splitlines()[0]
    assert first_line.startswith(ANSI[colour])


def test_no_color_prints_plain_text() -> None:
    """With ``no_color`` there is no colour escape sequence in the output."""
    out = io.StringIO()
    notifier = ConsoleNotifier(file=out, no_color=True)
    asyncio.run(notifier.deliver(notify([make_alert()])))
    assert "\x1b[" not in out.getvalue()
    assert "FIRING critical" in out.getvalue()


def test_texts_from_alerts_cannot_inject_markup() -> None:
    """Square brackets in a summary print literally instead of styling the output."""
    markup = render_console(notify([make_alert(summary="[bold red]fake[/] [link=x]y")]))
    out = printed(notify([make_alert(summary="[bold red]fake[/] [link=x]y")]), no_color=True)
    assert "[bold red]fake[/] [link=x]y" in out
    assert r"\[bold red]" in markup


def test_durations_and_windows_read_like_people_write_them() -> None:
    """Durations in s/min/h/d; a window as its UTC date and start → end."""
    assert [format_duration(s) for s in (45, 720, 7500, 3 * 86400 + 4 * 3600)] == [
        "45 s",
        "12 min",
        "2 h 5 min",
        "3 d 4 h",
    ]
    assert format_window(1732550400, 1732550460) == "2024-11-25 16:00 → 16:01"
    assert format_window(1732550430, 1732636830) == "2024-11-25 16:00:30 → 2024-11-26 16:00:30"


def test_the_console_receiver_needs_no_slack_library() -> None:
    """driftnet.alerts.notify.console imports neither slack_sdk nor aiohttp: it works without Slack."""
    code = "import sys, driftnet.alerts.notify.console; print(sorted({'slack_sdk', 'aiohttp'} & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"

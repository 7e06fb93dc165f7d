"""The Slack receivers against a fake Slack on 127.0.0.1, through the real slack-sdk client:
payloads stay within Block Kit limits whatever the alerts hold, a group lives in one message
updated in place with a thread of changes, and every failure says whether to retry."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable, Coroutine, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from driftnet.alerts.model import Alert, Details, Link, Notification, fingerprint_of
from driftnet.alerts.notify.base import DeliveryError
from driftnet.alerts.notify.blocks import render_blocks, thread_text
from driftnet.alerts.notify.slack import (
    SlackNotifier,
    SlackThread,
    SlackWebhookNotifier,
    retry_after,
)
from tests.support.fake_slack import TOKEN, FakeSlack, block_kit_problems, free_port, utf16_len
from tests.support.fake_slack import fake_slack as fake_slack  # the fixture

T0 = datetime(2024, 11, 25, 16, 0, tzinfo=UTC)
CHANNEL = "#llm-oncall"
QUERY = "driftnet query --since 2024-11-25T16:00Z --where \"service = 'support-chat'\" --limit 50"
Kind = Literal["new", "update", "repeat", "resolved"]
R = TypeVar("R")


def make_alert(index: int = 0, **changes: Any) -> Alert:
    labels = {
        "service": "support-chat",
        "environment": "production",
        "release": "r2",
        "variant": "canary",
        "metric": f"latency_p95_ms_{index}" if index else "latency_p95_ms",
    }
    values: dict[str, Any] = {
        "fingerprint": fingerprint_of("latency.p95.v1", labels),
        "rule": "latency.p95.v1",
        "labels": labels,
        "severity": "critical",
        "state": "firing",
        "summary": "support-chat canary gpt-4.1 fails: latency_p95 +62%",
        "description": "The canary's p95 latency is 62% above the baseline's for 3 windows.",
        "details": Details(
            observed=1310.0,
            reference=812.5,
            threshold=1000.0,
            unit="ms",
            window_start=1732550400,
            window_end=1732550460,
            sample_size=12345,
            effect_size=0.62,
            p_value=0.0031,
        ),
        "links": (Link(text="Runbook", url="https://wiki.example.com/runbooks/latency"),),
        "query": QUERY,
        "starts_at": T0,
        "updated_at": T0 + timedelta(minutes=12),
        "windows_active": 3,
    }
    return Alert(**{**values, **changes})


def resolved(alert: Alert) -> Alert:
    return alert.model_copy(update={"state": "resolved", "ends_at": T0 + timedelta(minutes=12)})


def notify(alerts: list[Alert], kind: Kind = "new", sequence: int = 1) -> Notification:
    return Notification(
        group_key="service=support-chat,environment=production,release=r2",
        receiver="oncall",
        alerts=tuple(alerts),
        kind=kind,
        sequence=sequence,
        created_at=T0 + timedelta(minutes=12),
    )


def texts(blocks: list[dict[str, Any]]) -> str:
    """Every text of the blocks, one per line (to search in)."""
    found: list[str] = []
    for block in blocks:
        objects = [block.get("text"), *block.get("fields", []), *block.get("elements", [])]
        for obj in objects:
            if isinstance(obj, dict):
                inner = obj.get("text")
                found.append(inner["text"] if isinstance(inner, dict) else str(inner))
    return "\n".join(found)


def run(scenario: Callable[[], Coroutine[Any, Any, R]]) -> R:
    return asyncio.run(scenario())


def deliver(
    fake: FakeSlack, *steps: tuple[Notification, SlackThread | None]
) -> list[SlackThread | None]:
    """Deliver the notifications in order with one notifier; the thread None means "the
    thread the previous step returned" (as JSON, the way the alert stage keeps it)."""

    async def scenario() -> list[SlackThread | None]:
        notifier = SlackNotifier(TOKEN, CHANNEL, base_url=fake.base_url)
        threads: list[SlackThread | None] = []
        try:
            for notification, thread in steps:
                given = thread if thread is not None or not threads else threads[-1]
                kept = await notifier.deliver(notification, given and given.model_dump())
                threads.append(None if kept is None else SlackThread.model_validate(kept))
        finally:
            await notifier.close()
        return threads

    return run(scenario)


def failure_of(notifier: SlackNotifier | SlackWebhookNotifier) -> DeliveryError:
    """The DeliveryError a new notification raises."""

    async def scenario() -> DeliveryError:
        try:
            await notifier.deliver(notify([make_alert()]), None)
        except DeliveryError as exc:
            return exc
        finally:
            await notifier.close()
        raise AssertionError("delivered")

    return run(scenario)


# ----------------------------------------------------------------------------- rendering


def test_one_alert_shows_its_facts_evidence_and_runbook() -> None:
    """One firing alert: red header with the summary, the measurement with its unit, the
    window, the sample size, the query as a code block and the runbook as a button."""
    text, blocks = render_blocks(notify([make_alert()]))
    assert block_kit_problems(text, blocks) == []
    assert text == "FIRING [critical] support-chat canary gpt-4.1 fails: latency_p95 +62%"
    assert (
        blocks[0]["text"]["text"]
        == "🔴 FIRING · support-chat canary gpt-4.1 fails: latency_p95 +62%"
    )
    shown = texts(blocks)
    for fact in (
        "1,310 ms vs 812.5 ms (threshold 1,000 ms)",
        "2024-11-25 16:00 → 16:01",
        "12,345",
        "0.62 (p=0.0031)",
        "r2 / canary",
        "firing for 3 windows",
        "for 12 min",
    ):
        assert fact in shown
    assert f"```{QUERY}```" in shown
    assert [b["type"] for b in blocks] == [
        "header",
        "section",
        "section",
        "section",
        "context",
        "actions",
    ]
    assert blocks[-1]["elements"][0]["url"] == "https://wiki.example.com/runbooks/latency"


def test_texts_from_alerts_cannot_mention_or_link() -> None:
    """``<!channel>`` or ``<url|text>`` in a summary or label reaches Slack escaped."""
    evil = "<!channel> see <https://evil.example|the runbook> & more"
    alert = make_alert(summary=evil, description=evil, labels={"service": evil})
    text, blocks = render_blocks(notify([alert]))
    mrkdwn = text + texts(blocks[1:])
    assert "<!channel>" not in mrkdwn
    assert "<https://" not in mrkdwn
    assert "&lt;!channel&gt; see &lt;https://evil.example|the runbook&gt; &amp; more" in text


def test_long_texts_are_truncated_with_an_ellipsis_never_mid_entity() -> None:
    """A 10,000-character summary and description are clipped to the header's 150 and the
    section's 3000 characters, ending in "…" and never in half an ``&amp;``."""
    alert = make_alert(summary="x" * 10_000, description="&" * 10_000)
    text, blocks = render_blocks(notify([alert]))
    assert block_kit_problems(text, blocks) == []
    assert utf16_len(blocks[0]["text"]["text"]) == 150
    assert blocks[0]["text"]["text"].endswith("x…")
    description = blocks[2]["text"]["text"]
    assert description.endswith("&amp;…")
    assert len(description) <= 3000


def test_a_group_lists_ten_alerts_then_how_many_more() -> None:
    """30 alerts: the shared facts, ten lines (critical first) and "+20 more"."""
    alerts = [make_alert(i, severity="warning" if i % 2 else "critical") for i in range(30)]
    text, blocks = render_blocks(notify(alerts))
    assert block_kit_problems(text, blocks) == []
    assert text.startswith("FIRING [critical] 30 alerts firing")
    lines = blocks[2]["text"]["text"].split("\n")
    assert len(lines) == 11
    assert lines[-1] == "+20 more"
    assert all(line.startswith("🔴") for line in lines[:10])
    shared = texts([blocks[1]])
    assert "support-chat" in shared
    assert "Metric" not in shared


def test_resolved_is_a_green_header_and_muted_text_without_buttons() -> None:
    """Resolved: ✅ header, facts in context (small grey) text, how long it lasted, no
    buttons and no fields."""
    text, blocks = render_blocks(notify([resolved(make_alert())], kind="resolved", sequence=3))
    assert block_kit_problems(text, blocks) == []
    assert blocks[0]["text"]["text"].startswith("✅ RESOLVED · support-chat canary")
    assert [b["type"] for b in blocks] == ["header", "context", "context"]
    assert "resolved after 12 min" in texts(blocks)


def test_thread_replies_say_what_happened() -> None:
    """Replies: "resolved after 12 min", "still firing (repeat)", "now 3 alerts firing: …"."""
    one = make_alert()
    assert thread_text(notify([resolved(one)], kind="resolved")) == "✅ resolved after 12 min"
    assert thread_text(notify([one], kind="repeat")).startswith("still firing (repeat) for 12 min")
    update = thread_text(
        notify([make_alert(i) for i in range(3)] + [resolved(make_alert(9))], "update")
    )
    assert update.startswith("now 3 alerts firing: support-chat canary")
    assert "\nresolved: support-chat canary" in update


SLACK_TEXT = st.one_of(
    st.text(max_size=60),
    st.builds(lambda s, n: s * n, st.text(min_size=1, max_size=8), st.integers(1, 2000)),
    st.sampled_from(["", " ", "\n", "&<>" * 900, "🔥" * 400, "é" * 2001, "`" * 3001]),
)
LINKS = st.lists(
    st.builds(
        Link,
        text=st.text(min_size=0, max_size=75),
        url=st.text(max_size=10) | SLACK_TEXT.map(lambda s: "https://x.example/" + s),
    ),
    max_size=8,
)
ALERTS = st.builds(
    make_alert,
    st.integers(0, 5),
    summary=SLACK_TEXT,
    description=SLACK_TEXT,
    labels=st.dictionaries(
        st.sampled_from(["service", "environment", "release", "variant", "metric"]), SLACK_TEXT
    ),
    severity=st.sampled_from(["info", "warning", "critical"]),
    state=st.sampled_from(["pending", "firing", "resolved"]),
    query=st.none() | SLACK_TEXT,
    links=LINKS.map(tuple),
    details=st.builds(Details, observed=st.none() | st.floats(), unit=st.none() | SLACK_TEXT),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    alerts=st.lists(ALERTS, min_size=1, max_size=30),
    kind=st.sampled_from(["new", "update", "repeat", "resolved"]),
)
def test_any_notification_fits_block_kit(alerts: list[Alert], kind: Kind) -> None:
    """Whatever the alerts hold (huge or empty texts, unicode, 30 alerts, odd links), the
    payload breaks no Block Kit limit, has fallback text, and the thread reply fits."""
    notification = notify(alerts, kind)
    text, blocks = render_blocks(notification)
    assert block_kit_problems(text, blocks) == []
    assert len(blocks) <= 50
    reply = thread_text(notification)
    assert reply.strip()
    assert utf16_len(reply) <= 3000


# ----------------------------------------------------------------------------- delivery


def test_a_new_group_posts_one_message_with_the_bot_token(fake_slack: FakeSlack) -> None:
    """ "new" posts exactly one message (text and blocks) with ``Authorization: Bearer``,
    and returns the channel id Slack answered with and the message's ts."""
    [thread] = deliver(fake_slack, (notify([make_alert()]), None))
    [request] = fake_slack.requests
    assert request.method == "chat.postMessage"
    assert request.authorization == f"Bearer {TOKEN}"
    assert request.payload["channel"] == CHANNEL
    assert request.payload["blocks"]
    [message] = fake_slack.messages
    assert thread == SlackThread(channel=message.channel, ts="1732550000.000100")
    assert message.channel.startswith("C")
    assert message.text.startswith("FIRING")


def test_an_update_edits_the_message_in_place_and_replies(fake_slack: FakeSlack) -> None:
    """ "update": the same message (same ts) now shows the new alerts, and one thread reply
    says what changed."""
    first = notify([make_alert()])
    later = notify([make_alert(), make_alert(1)], kind="update", sequence=2)
    threads = deliver(fake_slack, (first, None), (later, None))
    assert threads[0] == threads[1]
    assert threads[0] is not None
    [message] = fake_slack.messages
    assert message.ts == threads[0].ts
    assert message.edits == 1
    assert message.text.startswith("FIRING [critical] 2 alerts firing")
    [reply] = message.replies
    assert reply.text.startswith("now 2 alerts firing")
    assert [r.method for r in fake_slack.requests] == [
        "chat.postMessage",
        "chat.update",
        "chat.postMessage",
    ]


def test_a_repeat_only_replies_in_the_thread(fake_slack: FakeSlack) -> None:
    """ "repeat": no edit, no new message, one thread reply."""
    alert = make_alert()
    deliver(fake_slack, (notify([alert]), None), (notify([alert], "repeat", 2), None))
    [message] = fake_slack.messages
    assert message.edits == 0
    assert [r.text[:21] for r in message.replies] == ["still firing (repeat)"]
    assert fake_slack.calls("chat.update") == []


def test_resolved_edits_the_message_to_the_resolved_look_and_replies(fake_slack: FakeSlack) -> None:
    """ "resolved": the same message turns to the ✅ header and a reply says how long it
    lasted."""
    alert = make_alert()
    done = notify([resolved(alert)], kind="resolved", sequence=2)
    deliver(fake_slack, (notify([alert]), None), (done, None))
    [message] = fake_slack.messages
    assert message.edits == 1
    assert message.blocks is not None
    assert message.blocks[0]["text"]["text"].startswith("✅ RESOLVED")
    assert [r.text for r in message.replies] == ["✅ resolved after 12 min"]


def test_a_deleted_message_moves_the_group_to_a_new_one(fake_slack: FakeSlack) -> None:
    """An update of a message Slack no longer has (message_not_found) posts a new message and
    returns its thread, instead of failing the group forever."""
    gone = SlackThread(channel="C0000000000", ts="1700000000.000100")
    [thread] = deliver(fake_slack, (notify([make_alert()], "update", 2), gone))
    [message] = fake_slack.messages
    assert thread == SlackThread(channel=message.channel, ts=message.ts)
    assert [r.method for r in fake_slack.requests] == ["chat.update", "chat.postMessage"]


# ----------------------------------------------------------------------------- failures


@pytest.mark.parametrize(
    ("script", "retryable", "wait", "error"),
    [
        pytest.param({"status": 500}, True, None, None, id="500-retryable"),
        pytest.param({"status": 503, "retry_after": 30}, True, 30.0, None, id="503-retry-after"),
        pytest.param(
            {"status": 429, "retry_after": 7}, True, 7.0, "ratelimited", id="429-retry-after"
        ),
        pytest.param(
            {"status": 200, "error": "internal_error"},
            True,
            None,
            "internal_error",
            id="transient-api-error",
        ),
        pytest.param(
            {"status": 200, "error": "channel_not_found"},
            False,
            None,
            "channel_not_found",
            id="channel-not-found",
        ),
        pytest.param(
            {"status": 200, "error": "msg_too_long"}, False, None, "msg_too_long", id="msg-too-long"
        ),
        pytest.param(
            {"status": 400, "error": "invalid_arguments"},
            False,
            None,
            "invalid_arguments",
            id="400-not-retryable",
        ),
    ],
)
def test_api_failures_say_whether_to_retry_and_the_sdk_does_not(
    fake_slack: FakeSlack,
    script: dict[str, Any],
    retryable: bool,
    wait: float | None,
    error: str | None,
) -> None:
    """5xx, 429 and transient API errors are retryable (after Retry-After, when sent); other
    errors are not; slack-sdk itself sent exactly one request."""
    fake_slack.fail_next(**script)
    exc = failure_of(SlackNotifier(TOKEN, CHANNEL, base_url=fake_slack.base_url))
    assert (exc.retryable, exc.retry_after_s, exc.error) == (retryable, wait, error)
    assert exc.status == script["status"]
    assert len(fake_slack.requests) == 1
    assert fake_slack.messages == []


def test_a_wrong_token_is_not_retryable(fake_slack: FakeSlack) -> None:
    """invalid_auth will not heal by itself, and the token is not in the error."""
    exc = failure_of(SlackNotifier("xoxb-wrong-token", CHANNEL, base_url=fake_slack.base_url))
    assert (exc.retryable, exc.error) == (False, "invalid_auth")
    assert "xoxb-wrong-token" not in str(exc)


def test_connection_refused_is_retryable() -> None:
    """Nothing listening on the port: retryable."""
    exc = failure_of(SlackNotifier(TOKEN, CHANNEL, base_url=f"http://127.0.0.1:{free_port()}/api/"))
    assert exc.retryable
    assert exc.status is None


class Hangup:
    """A TCP server on 127.0.0.1 that counts connections and either closes each at once
    (``close``) or never answers (``silent``)."""

    def __init__(self, mode: Literal["close", "silent"]) -> None:
        self.mode = mode
        self.accepted = 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.held: list[socket.socket] = []
        self.running = True
        self.thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/api/"

    def _serve(self) -> None:
        while self.running:
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            self.accepted += 1
            if self.mode == "close":
                conn.close()
            else:
                self.held.append(conn)

    def __enter__(self) -> Hangup:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.running = False
        self.thread.join()
        for conn in self.held:
            conn.close()
        self.sock.close()


@pytest.fixture
def hangup(request: pytest.FixtureRequest) -> Iterator[Hangup]:
    """A :class:`Hangup` server in the mode the test is parametrized with."""
    with Hangup(request.param) as server:
        yield server


@pytest.mark.parametrize("hangup", ["close", "silent"], indirect=True)
def test_disconnects_and_timeouts_are_retryable_and_not_retried_by_the_sdk(hangup: Hangup) -> None:
    """A server that hangs up, or never answers within the timeout, gives a retryable error
    after one connection: slack-sdk's connection-error retry handler is off."""
    exc = failure_of(SlackNotifier(TOKEN, CHANNEL, base_url=hangup.url, timeout_s=0.3))
    assert exc.retryable
    assert exc.status is None
    assert hangup.accepted == 1


def test_retry_after_reads_seconds_and_http_dates() -> None:
    """Retry-After as seconds or an HTTP date (past dates are 0); garbage is no hint."""
    assert retry_after("7") == 7.0
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert retry_after("soon") is None
    assert retry_after(None) is None


# ----------------------------------------------------------------------------- webhook


def test_the_webhook_posts_every_notification_as_a_new_message(fake_slack: FakeSlack) -> None:
    """A webhook cannot edit: new and resolved are two messages, the second in the resolved
    look; no token is sent and no thread is returned."""
    alert = make_alert()

    async def scenario() -> None:
        notifier = SlackWebhookNotifier(fake_slack.webhook_url)
        try:
            await notifier.deliver(notify([alert]))
            await notifier.deliver(notify([resolved(alert)], "resolved", 2))
        finally:
            await notifier.close()

    run(scenario)
    assert [(r.method, r.authorization) for r in fake_slack.requests] == [("webhook", None)] * 2
    first, second = fake_slack.messages
    assert first.text.startswith("FIRING")
    assert second.text.startswith("RESOLVED")
    assert second.blocks is not None
    assert second.blocks[0]["text"]["text"].startswith("✅")


@pytest.mark.parametrize(
    ("script", "retryable", "wait"),
    [
        pytest.param({"status": 500}, True, None, id="500-retryable"),
        pytest.param({"status": 429, "retry_after": 7}, True, 7.0, id="429-retry-after"),
        pytest.param(
            {"status": 404, "error": "channel_not_found"}, False, None, id="404-not-retryable"
        ),
        pytest.param(
            {"status": 403, "error": "action_prohibited"}, False, None, id="403-not-retryable"
        ),
    ],
)
def test_webhook_failures_say_whether_to_retry(
    fake_slack: FakeSlack, script: dict[str, Any], retryable: bool, wait: float | None
) -> None:
    """The webhook maps statuses like the Web API: 5xx and 429 retryable, other 4xx not; one
    request only."""
    fake_slack.fail_next(**script)
    exc = failure_of(SlackWebhookNotifier(fake_slack.webhook_url))
    assert (exc.retryable, exc.retry_after_s, exc.status) == (retryable, wait, script["status"])
    assert len(fake_slack.requests) == 1


def test_webhook_connection_refused_is_retryable() -> None:
    """Nothing listening at the webhook's URL: retryable."""
    url = f"http://127.0.0.1:{free_port()}/webhook/T0001/B0001/x"
    assert failure_of(SlackWebhookNotifier(url)).retryable

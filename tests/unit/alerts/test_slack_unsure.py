"""A Slack notification that may have been delivered already -- its worker died between
Slack's answer and recording it, or the attempt timed out after Slack took it in -- is looked
for (by the id in its message metadata) and only what is missing is sent: nobody is paged
twice, a resolve is not shown twice. When Slack cannot be read, it is sent anyway."""

from __future__ import annotations

import logging

import pytest

from driftnet.alerts.model import Notification
from driftnet.alerts.notify.slack import METADATA_EVENT, SlackNotifier, SlackThread
from tests.support.fake_slack import TOKEN, FakeSlack
from tests.support.fake_slack import fake_slack as fake_slack  # the fixture
from tests.unit.alerts.test_slack import CHANNEL, make_alert, notify, resolved, run


def send(
    fake: FakeSlack, notification: Notification, thread: SlackThread | None, unsure: bool
) -> SlackThread | None:
    """One delivery by a fresh notifier (a worker that just took the outbox over)."""

    async def scenario() -> SlackThread | None:
        notifier = SlackNotifier(TOKEN, CHANNEL, base_url=fake.base_url)
        try:
            kept = await notifier.deliver(notification, thread and thread.model_dump(),
                                          unsure=unsure)  # fmt: skip
        finally:
            await notifier.close()
        return None if kept is None else SlackThread.model_validate(kept)

    return run(scenario)


def test_every_message_carries_its_notification_id(fake_slack: FakeSlack) -> None:
    first = notify([make_alert()])
    thread = send(fake_slack, first, None, unsure=False)
    [message] = fake_slack.messages
    assert message.metadata == {"event_type": METADATA_EVENT,
                                "event_payload": {"notification_id": first.notification_id}}  # fmt: skip
    later = notify([make_alert(), make_alert(1)], kind="update", sequence=2)
    send(fake_slack, later, thread, unsure=False)
    [message] = fake_slack.messages
    [reply] = message.replies
    assert message.metadata is not None
    assert reply.metadata is not None
    assert message.metadata["event_payload"]["notification_id"] == later.notification_id
    assert reply.metadata["event_payload"]["notification_id"] == later.notification_id
    assert first.notification_id != later.notification_id


def test_an_unsure_new_message_already_posted_is_found_not_posted_again(
    fake_slack: FakeSlack,
) -> None:
    """The channel is given by name: its id comes from conversations.list, the message from
    the channel's history; the thread returned is the message's, for the group's next one."""
    first = notify([make_alert()])
    posted = send(fake_slack, first, None, unsure=False)
    again = send(fake_slack, first, None, unsure=True)
    assert again == posted
    assert len(fake_slack.messages) == 1
    assert len(fake_slack.calls("chat.postMessage")) == 1
    [history] = fake_slack.calls("conversations.history")
    assert history.payload["include_all_metadata"] in {"1", "true"}


def test_an_unsure_new_message_not_posted_is_posted(fake_slack: FakeSlack) -> None:
    """Another group's message in the channel is not this one."""
    send(fake_slack, notify([make_alert(5)]).model_copy(update={"group_key": "other"}), None,
         unsure=False)  # fmt: skip
    send(fake_slack, notify([make_alert()]), None, unsure=True)
    assert len(fake_slack.messages) == 2


def test_an_unsure_resolve_updated_but_not_replied_only_replies(fake_slack: FakeSlack) -> None:
    """The worker died after chat.update and before the thread reply: the next one sends the
    reply alone, the message is edited once."""
    alert = make_alert()
    thread = send(fake_slack, notify([alert]), None, unsure=False)
    assert thread is not None
    done = notify([resolved(alert)], kind="resolved", sequence=2)
    send(fake_slack, done, thread, unsure=False)
    [message] = fake_slack.messages
    message.replies.clear()  # as if the reply had not been sent
    assert send(fake_slack, done, thread, unsure=True) == thread
    assert message.edits == 1
    assert [r.text for r in message.replies] == ["✅ resolved after 12 min"]
    send(fake_slack, done, thread, unsure=True)  # and once replied, nothing more
    assert (message.edits, len(message.replies)) == (1, 1)


def test_an_unsure_update_not_delivered_is_delivered(fake_slack: FakeSlack) -> None:
    thread = send(fake_slack, notify([make_alert()]), None, unsure=False)
    later = notify([make_alert(), make_alert(1)], kind="update", sequence=2)
    send(fake_slack, later, thread, unsure=True)
    [message] = fake_slack.messages
    assert message.edits == 1
    assert len(message.replies) == 1


def test_when_slack_cannot_be_read_the_notification_is_sent_with_one_warning(
    fake_slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    """No channels:history scope (``missing_scope``): sent, perhaps twice, and said so."""
    first = notify([make_alert()])
    send(fake_slack, first, None, unsure=False)
    fake_slack.fail_next(status=200, error="missing_scope")
    with caplog.at_level(logging.WARNING, logger="driftnet.alerts"):
        send(fake_slack, first, None, unsure=True)
    assert len(fake_slack.messages) == 2
    [warning] = [r.getMessage() for r in caplog.records]
    assert "may show twice" in warning
    assert "missing_scope" in warning

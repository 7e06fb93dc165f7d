"""The outbox without a broker or Slack: which failures are retried and which are given up at
once, how long retries go on (a Slack outage of hours delays, a day gives up), and the order
a receiver's notifications keep through failures and dead letters."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from driftnet.alerts.model import Alert, Notification
from driftnet.alerts.notify.base import DeliveryError
from driftnet.alerts.outbox import (
    GiveUp,
    Outbox,
    Pending,
    Retry,
    RetryPolicy,
    after_failure,
    classify,
    error_line,
)

T0 = 1_795_000_000.0
MOMENT = datetime(2026, 11, 18, tzinfo=UTC)


class HttpError(Exception):
    """An exception from some other client: an HTTP status and no retryable flag."""

    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status


def unicode_error() -> UnicodeEncodeError:
    try:
        "\ud800".encode()
    except UnicodeEncodeError as exc:
        return exc
    raise AssertionError("encoded")


@pytest.mark.parametrize(
    ("exc", "retryable"),
    [
        pytest.param(DeliveryError("HTTP 503", retryable=True), True, id="delivery-error-retryable"),
        pytest.param(DeliveryError("channel_not_found", retryable=False), False, id="delivery-error-permanent"),
        pytest.param(ConnectionRefusedError("refused"), True, id="connection-refused"),
        pytest.param(ConnectionResetError(), True, id="connection-reset"),
        pytest.param(TimeoutError(), True, id="timeout"),
        pytest.param(OSError("network unreachable"), True, id="os-error"),
        pytest.param(HttpError(500), True, id="status-500"),
        pytest.param(HttpError(502), True, id="status-502"),
        pytest.param(HttpError(429), True, id="status-429"),
        pytest.param(HttpError(400), False, id="status-400"),
        pytest.param(HttpError(403), False, id="status-403"),
        pytest.param(HttpError(404), False, id="status-404"),
        pytest.param(TypeError("deliver() takes 2 arguments"), False, id="type-error"),
        pytest.param(KeyError("channel"), False, id="key-error"),
        pytest.param(ValueError("bad payload"), False, id="value-error"),
        pytest.param(unicode_error(), False, id="unicode-encode-error"),
        pytest.param(RuntimeError("bug"), False, id="runtime-error"),
    ],
)  # fmt: skip
def test_failures_are_retryable_or_permanent(exc: Exception, retryable: bool) -> None:
    """Connection errors, timeouts, 5xx and 429 are retryable; programming errors, other 4xx
    and encoding errors are permanent; a notifier's own ``retryable`` flag wins."""
    assert classify(exc).retryable is retryable


def test_retry_after_is_kept_only_when_a_retry_can_help() -> None:
    """A 429's Retry-After is the wait; a permanent failure has none."""
    assert classify(DeliveryError("429", retryable=True, retry_after_s=7)).retry_after_s == 7
    assert classify(DeliveryError("400", retryable=False, retry_after_s=7)).retry_after_s is None


def test_the_error_is_one_short_line() -> None:
    """Type and first line of the message, capped, for the dead letter and the log."""
    assert error_line(ValueError("first\nsecond")) == "ValueError: first"
    assert error_line(TimeoutError()) == "TimeoutError"
    assert len(error_line(ValueError("x" * 1000))) == 300


def test_retries_back_off_from_one_second_to_five_minutes_or_wait_retry_after() -> None:
    """1, 2, 4 ... s up to 300 s between attempts; a Retry-After is waited as given."""
    policy = RetryPolicy()
    failure = classify(ConnectionRefusedError())
    waits = [after_failure(n, T0, failure, T0, policy) for n in (1, 2, 3, 9, 10, 50)]
    assert [w.at - T0 for w in waits if isinstance(w, Retry)] == [1, 2, 4, 256, 300, 300]
    limited = classify(DeliveryError("429", retryable=True, retry_after_s=30))
    assert after_failure(1, T0, limited, T0, policy) == Retry(T0 + 30)


def test_a_permanent_failure_is_given_up_at_the_first_attempt() -> None:
    assert after_failure(1, T0, classify(TypeError()), T0, RetryPolicy()) == GiveUp("permanent")


def test_the_budget_gives_up_after_max_attempts_or_max_age() -> None:
    """Whichever comes first: the attempts, or the time the notification has waited."""
    policy = RetryPolicy(max_attempts=5, max_age_s=600)
    failure = classify(TimeoutError())
    assert isinstance(after_failure(4, T0, failure, T0 + 10, policy), Retry)
    assert after_failure(5, T0, failure, T0 + 10, policy) == GiveUp("attempts")
    assert isinstance(after_failure(2, T0, failure, T0 + 599, policy), Retry)
    assert after_failure(2, T0, failure, T0 + 600, policy) == GiveUp("age")


def outage(policy: RetryPolicy, hours: float) -> tuple[int, Retry | GiveUp]:
    """Fail every attempt of one notification for ``hours``: the attempts made and the last
    decision."""
    failure, now, attempts = classify(DeliveryError("HTTP 503", retryable=True)), T0, 0
    while True:
        attempts += 1
        decision = after_failure(attempts, T0, failure, now, policy)
        if isinstance(decision, GiveUp) or decision.at > T0 + hours * 3600:
            return attempts, decision
        now = decision.at


def test_the_default_budget_outlasts_an_outage_of_hours_but_not_of_days() -> None:
    """Slack down for 8 hours: still retrying, about every 5 minutes (a hundred attempts);
    down for two days: given up after 24 hours."""
    attempts, decision = outage(RetryPolicy(), hours=8)
    assert isinstance(decision, Retry)
    assert 90 < attempts < 110
    assert outage(RetryPolicy(), hours=48)[1] == GiveUp("age")


def notification(group: str, receiver: str = "slack", sequence: int = 1) -> Notification:
    alert = Alert(fingerprint=group, rule="r", labels={"service": group}, severity="warning",
                  state="firing", summary=group, starts_at=MOMENT, updated_at=MOMENT)  # fmt: skip
    return Notification(group_key=f"service={group}", receiver=receiver, alerts=(alert,),
                        kind="new", sequence=sequence, created_at=MOMENT)  # fmt: skip


def test_a_receiver_delivers_in_order_and_a_failing_head_holds_only_its_own_queue() -> None:
    """The head of a receiver waits for its retry; the rest of that queue waits behind it,
    another receiver goes on."""
    box, policy = Outbox(), RetryPolicy()
    for group in ("a", "b"):
        box.put(notification(group), T0)
    box.put(notification("a", receiver="console"), T0)
    assert [p.notification.group_key for p in box.due(T0)] == ["service=a", "service=a"]
    decision = box.failed("slack", classify(TimeoutError()), T0, policy)
    assert decision == Retry(T0 + 1)
    assert [p.receiver for p in box.due(T0)] == ["console"]
    box.pop("console")
    assert box.due(T0) == []
    [head] = box.due(T0 + 1)
    assert (head.notification.group_key, head.attempts, head.last_error) == (
        "service=a", 1, "TimeoutError")  # fmt: skip
    box.pop("slack")
    assert [p.notification.group_key for p in box.due(T0 + 1)] == ["service=b"]
    assert box.waiting() == {"slack": 1, "console": 0}


def test_a_given_up_head_is_a_dead_letter_and_the_next_one_comes_up() -> None:
    """The dead letter says who, what, why, the last error, the attempts and when; once it is
    taken off, the receiver's next notification is due at once."""
    box = Outbox()
    box.put(notification("bad"), T0)
    box.put(notification("good"), T0 + 1)
    decision = box.failed("slack", classify(unicode_error()), T0 + 5, RetryPolicy())
    assert decision == GiveUp("permanent")
    letter = box.dead_letter("slack", decision.reason, T0 + 5)
    assert letter.receiver == "slack"
    assert letter.notification.group_key == "service=bad"
    assert (letter.reason, letter.attempts) == ("permanent", 1)
    assert letter.error.startswith("UnicodeEncodeError: 'utf-8' codec can't encode")
    assert letter.queued_at == datetime.fromtimestamp(T0, UTC)
    assert letter.at == datetime.fromtimestamp(T0 + 5, UTC)
    box.pop("slack")
    [head] = box.due(T0 + 5)
    assert head.notification.group_key == "service=good"


def test_a_restored_outbox_keeps_each_queue_in_order_and_goes_on_numbering() -> None:
    """What a previous owner left, read back in any order, is queued as it was; new
    notifications come after it."""
    first = Outbox()
    for group in ("a", "b", "c"):
        first.put(notification(group), T0)
    saved = [Pending.model_validate_json(p.model_dump_json()) for p in first]
    second = Outbox()
    second.load(reversed(saved))
    added = second.put(notification("d"), T0 + 1)
    assert added.seq == 4
    order = []
    while (head := second.head("slack")) is not None:
        order.append(second.pop("slack").notification.group_key)
        assert head.seq == len(order)
    assert order == ["service=a", "service=b", "service=c", "service=d"]


@pytest.mark.parametrize(
    ("exc", "ambiguous"),
    [
        pytest.param(TimeoutError(), True, id="timeout"),
        pytest.param(ConnectionResetError(), True, id="connection-reset"),
        pytest.param(DeliveryError("HTTP 503", retryable=True, status=503), True, id="503"),
        pytest.param(HttpError(502), True, id="status-502"),
        pytest.param(DeliveryError("ratelimited", retryable=True, status=429), False, id="429"),
        pytest.param(
            DeliveryError(
                "channel_not_found", retryable=False, status=200, error="channel_not_found"
            ),
            False,
            id="ok-false",
        ),
        pytest.param(HttpError(400), False, id="status-400"),
    ],
)
def test_a_failure_without_a_clear_refusal_may_have_been_delivered(
    exc: Exception, ambiguous: bool
) -> None:
    """No answer, or a 5xx: the receiver may have taken the notification in; an answer that
    refuses it (4xx, 429, ``ok: false``) says it did not."""
    assert classify(exc).ambiguous is ambiguous


def test_what_may_have_been_delivered_is_marked_unsure() -> None:
    """A notification read back from a previous owner's outbox may have been sent just before
    that owner died; one whose attempt timed out may have arrived. Both are ``unsure`` (the
    notifier looks before sending again); one refused outright is not."""
    fresh = Outbox()
    fresh.put(notification("a"), T0)
    fresh.put(notification("b"), T0)
    assert [p.unsure for p in fresh] == [False, False]
    refused = DeliveryError("ratelimited", retryable=True, status=429)
    fresh.failed("slack", classify(refused), T0, RetryPolicy())
    assert [p.unsure for p in fresh] == [False, False]
    fresh.failed("slack", classify(TimeoutError()), T0, RetryPolicy())
    assert [p.unsure for p in fresh] == [True, False]
    taken_over = Outbox()
    taken_over.load(Pending.model_validate_json(p.model_dump_json()) for p in fresh)
    assert [p.unsure for p in taken_over] == [True, True]

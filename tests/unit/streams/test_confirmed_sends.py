"""A message is acked only once every record it sent is delivered; a refused record is sent
again, and after the budget the worker stops rather than ack past it (no broker: a fake topic
whose futures the test resolves)."""

from __future__ import annotations

import asyncio
from functools import partial
from typing import Any

import pytest

from driftnet.streams.clients.confirmed_sends import AckWhenAll, ConfirmedSends, DeliveryFailed


class RefusedError(Exception):
    """What the broker answers a refused produce with (MessageSizeTooLarge, say)."""


class FakeTopic:
    """A faust topic whose sends resolve as the test says: ``refuse`` the next N sends."""

    def __init__(self, *, resolve_now: bool = True) -> None:
        self.sent: list[dict[str, Any]] = []
        self.futures: list[asyncio.Future[Any]] = []
        self.refuse = 0
        self.resolve_now = resolve_now

    def as_future_message(self, **kwargs: Any) -> asyncio.Future[Any]:
        """faust's promise of a message (resolved by the producer's callback)."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.sent.append(kwargs)
        self.futures.append(future)
        return future

    async def publish_message(self, future: asyncio.Future[Any]) -> None:
        """Sent at once, not attached to the event."""
        if self.resolve_now:
            self.resolve(future)

    def resolve(self, future: asyncio.Future[Any]) -> None:
        if self.refuse:
            self.refuse -= 1
            future.set_exception(RefusedError("MESSAGE_TOO_LARGE"))
        else:
            future.set_result("metadata")

    def get_topic_name(self) -> str:
        return "driftnet.failures"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def sends(clock: Clock, give_up_after_s: float = 60.0, max_pending: int = 64) -> ConfirmedSends:
    return ConfirmedSends(
        "triage",
        give_up_after_s=give_up_after_s,
        max_pending=max_pending,
        clock=clock,
        sleep=clock.sleep,
    )


def test_a_message_is_acked_only_once_its_records_are_delivered_and_in_order() -> None:
    async def run() -> list[int]:
        topic = FakeTopic(resolve_now=False)
        confirmed = sends(Clock())
        acked: list[int] = []
        for message in range(3):
            await confirmed.send(topic, key=b"k", value=b"v%d" % message)
            confirmed.seal(partial(acked.append, message))
        await confirmed.settle()
        assert acked == []  # nothing delivered yet
        topic.resolve(topic.futures[1])
        await confirmed.settle()
        assert acked == []  # the second is delivered, the first is not: order holds
        topic.resolve(topic.futures[0])
        await confirmed.settle()
        assert acked == [0, 1]
        topic.resolve(topic.futures[2])
        await confirmed.settle()
        return acked

    assert asyncio.run(run()) == [0, 1, 2]


def test_a_refused_record_is_sent_again_with_backoff_and_then_the_message_is_acked() -> None:
    async def run() -> None:
        topic = FakeTopic()
        clock = Clock()
        confirmed = sends(clock)
        acked: list[str] = []
        topic.refuse = 3
        await confirmed.send(topic, key=b"k", value=b"record", headers=[("h", b"1")])
        confirmed.seal(lambda: acked.append("message"))
        await confirmed.settle()
        assert acked == ["message"]
        assert [s["value"] for s in topic.sent] == [b"record"] * 4
        assert all(s["headers"] == [("h", b"1")] for s in topic.sent)
        assert clock.slept == [0.5, 1.0, 2.0]
        assert confirmed.retried == 3
        assert confirmed.failing_since is None

    asyncio.run(run())


def test_a_record_refused_past_the_budget_stops_without_acking() -> None:
    async def run() -> None:
        topic = FakeTopic()
        clock = Clock()
        confirmed = sends(clock, give_up_after_s=30.0)
        acked: list[str] = []
        topic.refuse = 1_000
        await confirmed.send(topic, key=None, value=b"record")
        confirmed.seal(lambda: acked.append("message"))
        with pytest.raises(DeliveryFailed, match=r"driftnet.failures .* RefusedError"):
            await confirmed.settle()
        assert acked == []
        assert confirmed.pending == 1  # still held: never acked past
        assert clock.now >= 30.0

    asyncio.run(run())


def test_settle_waits_for_the_oldest_only_when_too_many_are_in_flight() -> None:
    async def run() -> None:
        topic = FakeTopic(resolve_now=False)
        confirmed = sends(Clock(), max_pending=2)
        acked: list[int] = []
        for message in range(2):
            await confirmed.send(topic, key=None, value=b"x")
            confirmed.seal(partial(acked.append, message))
            await confirmed.settle()  # within the limit: returns at once
        await confirmed.send(topic, key=None, value=b"x")
        confirmed.seal(lambda: acked.append(2))
        waiting = asyncio.ensure_future(confirmed.settle())
        await asyncio.sleep(0)
        assert not waiting.done()  # three in flight: waits for the oldest
        topic.resolve(topic.futures[0])
        await waiting
        assert acked == [0]

    asyncio.run(run())


def test_a_batch_with_no_sends_is_acked_at_the_next_settle() -> None:
    async def run() -> list[str]:
        confirmed = sends(Clock())
        acked: list[str] = []
        confirmed.seal(lambda: acked.append("empty"))
        await confirmed.settle()
        return acked

    assert asyncio.run(run()) == ["empty"]


def test_a_message_held_by_two_is_acked_when_both_let_go() -> None:
    class Event:
        acks = 0

        def ack(self) -> None:
            self.acks += 1

    event = Event()
    held = AckWhenAll(event, 2)
    held.ack()
    assert event.acks == 0
    held.ack()
    assert event.acks == 1

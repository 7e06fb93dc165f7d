"""Sends an offset commit depends on: each produce is checked before the offsets it covers are
acked, retried with backoff when the broker refuses it, and the worker stops rather than commit
past a record it could not deliver.

faust's ``await topic.send(..., force=True)`` hands a message to the producer and returns a
future (here: :func:`publish_now`, the same send keeping faust's promise of the message). In faust 0.15 a produce the broker rejects (message too large, topic deleted, not
enough replicas, a timeout) only logs a warning, and the producer flush faust runs before a
commit waits for sends to *finish*, not to *succeed*: an offset acked at the send was committed
with its failure record lost. Here every send joins the current :class:`Batch`; a stage seals
the batch with what to do once all of it is delivered (ack a message), and :meth:`settle` runs
those in order as the futures resolve. A send that failed is sent again, with backoff, until
``give_up_after_s``; then :class:`DeliveryFailed` is raised and the stage stops the worker
(:meth:`ConfirmedSends.fail_loudly`): a restart reads again from the last committed offset,
which no undelivered record is behind.

Typical use in an agent (sends pipelined: a message waits for its own produce only when more
than ``max_pending`` messages are in flight)::

    for record in records:
        await sends.send(failures, key=record.key, value=record.value)
    sends.seal(event.ack)
    await sends.settle()
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final

log = logging.getLogger("driftnet.worker")

BACKOFF_MIN_S: Final = 0.5
BACKOFF_MAX_S: Final = 10.0
MAX_PENDING: Final = 2048
"""Sealed batches in flight before :meth:`ConfirmedSends.settle` waits for the oldest: enough
that reading does not wait on a produce round trip (with one event per message the producer's
20 ms linger alone spans ~100 messages), few enough to bound what waits (each batch holds only
its sends and an ack)."""


class DeliveryFailed(Exception):
    """A record the broker kept refusing for longer than the retry budget."""


@dataclass(slots=True)
class _Send:
    """One produce and what is needed to make it again."""

    topic: Any
    kwargs: dict[str, Any]
    future: asyncio.Future[Any]
    first_failed_at: float | None = None
    attempts: int = 1


@dataclass(slots=True)
class Batch:
    """The sends of one unit of work (a message), and what to run once they are delivered."""

    sends: list[_Send] = field(default_factory=list)
    on_delivered: Callable[[], None] | None = None


class ConfirmedSends:
    """Produces whose delivery gates an ack, settled in order (see the module docstring)."""

    def __init__(
        self,
        name: str,
        *,
        give_up_after_s: float,
        max_pending: int = MAX_PENDING,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        self.name = name
        self.give_up_after_s = give_up_after_s
        self.max_pending = max_pending
        self.clock = clock
        self.sleep = sleep
        self._current = Batch()
        self._sealed: deque[Batch] = deque()
        self._lock = asyncio.Lock()
        self.retried = 0
        """Sends made again after the broker refused them (``driftnet_send_retries_total``)."""
        self.failing_since: float | None = None
        """When the oldest send still failing first failed (None while all is well)."""

    @property
    def pending(self) -> int:
        """Sealed batches not yet settled."""
        return len(self._sealed)

    async def send(
        self,
        topic: Any,
        *,
        key: bytes | None,
        value: bytes,
        headers: Any = None,
        partition: int | None = None,
    ) -> None:
        """Hand a record to the producer; it belongs to the batch sealed next."""
        kwargs: dict[str, Any] = {"key": key, "value": value}
        if headers is not None:
            kwargs["headers"] = headers
        if partition is not None:
            kwargs["partition"] = partition
        self._current.sends.append(_Send(topic, kwargs, await publish_now(topic, kwargs)))

    def seal(self, on_delivered: Callable[[], None] | None = None) -> None:
        """Close the current batch: ``on_delivered`` runs (in order) once all of it is
        delivered -- at once, at the next :meth:`settle`, for a batch with no sends."""
        batch, self._current = self._current, Batch()
        batch.on_delivered = on_delivered
        self._sealed.append(batch)

    async def settle(self, *, wait: bool = False) -> None:
        """Run ``on_delivered`` of the delivered batches at the head, in order. Waits for the
        oldest batch while more than ``max_pending`` are in flight, or for all with ``wait``;
        sends a refused record again with backoff; raises :class:`DeliveryFailed` once one has
        been refused for longer than ``give_up_after_s``."""
        async with self._lock:
            while self._sealed:
                head = self._sealed[0]
                must_wait = wait or len(self._sealed) > self.max_pending
                if not must_wait and not all(s.future.done() for s in head.sends):
                    return
                for sent in head.sends:
                    await self._delivered(sent)
                self._sealed.popleft()
                if head.on_delivered is not None:
                    head.on_delivered()
            self.failing_since = None

    async def _delivered(self, sent: _Send) -> None:
        """Wait until ``sent`` is delivered, sending it again while the broker refuses it."""
        while True:
            try:
                await asyncio.shield(sent.future)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                error = exc
            now = self.clock()
            if sent.first_failed_at is None:
                sent.first_failed_at = now
            if self.failing_since is None:
                self.failing_since = now
            failing_for = now - sent.first_failed_at
            topic = _topic_name(sent.topic)
            if failing_for >= self.give_up_after_s:
                raise DeliveryFailed(
                    f"{self.name}: the broker refused a record for {topic} {sent.attempts} times "
                    f"over {failing_for:.0f} s (last: {_error_line(error)}); stopping without "
                    f"committing past it: a restart reads again from the last committed offset"
                ) from error
            wait = min(BACKOFF_MAX_S, BACKOFF_MIN_S * 2 ** (sent.attempts - 1))
            log.warning(
                "%s: sending to %s failed (%s): attempt %d, again in %.1f s (its offset is "
                "not committed meanwhile)",
                self.name,
                topic,
                _error_line(error),
                sent.attempts,
                wait,
            )
            await self.sleep(wait)
            sent.attempts += 1
            self.retried += 1
            sent.future = await publish_now(sent.topic, sent.kwargs)

    @staticmethod
    async def fail_loudly(app: Any, error: DeliveryFailed) -> None:
        """Log one line and stop the worker with exit status 1 (a supervisor restarts it)."""
        log.error("%s", error)
        await app.crash(error)


async def publish_now(topic: Any, kwargs: dict[str, Any]) -> asyncio.Future[Any]:
    """Send now (as faust's ``send(force=True)`` does) and return faust's own promise of the
    message, which its producer callback resolves or fails. ``send`` returns the producer's
    future instead, and the promise it fails is then never read: asyncio logs "exception was
    never retrieved" with a traceback for every refused record."""
    message = topic.as_future_message(**kwargs)
    await topic.publish_message(message)
    return message  # type: ignore[no-any-return]


def _topic_name(topic: Any) -> str:
    get = getattr(topic, "get_topic_name", None)
    return str(get()) if get is not None else repr(topic)


def _error_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


class AckWhenAll:
    """A message acked once each of its ``holders`` has called :meth:`ack` (its sends
    delivered, and the windows it fed done): faust commits an offset only once it is acked."""

    __slots__ = ("event", "holders")

    def __init__(self, event: Any, holders: int) -> None:
        self.event = event
        self.holders = holders

    def ack(self) -> None:
        self.holders -= 1
        if self.holders == 0:
            self.event.ack()


async def settle(app: Any, sends: ConfirmedSends, *, wait: bool = False) -> bool:
    """:meth:`ConfirmedSends.settle` inside a faust app: False once the worker is stopping --
    because a record could not be delivered (logged, the app crashed: exit status 1) or because
    it was asked to (a send finding the producer gone; what was not acked is read again)."""
    from faust.exceptions import NotReady

    try:
        await sends.settle(wait=wait)
    except DeliveryFailed as exc:
        await ConfirmedSends.fail_loudly(app, exc)
        return False
    except NotReady:
        if not app.should_stop:
            raise
        return False
    return True

"""``EventPublisher``: how a production service sends inference events to driftnet.

It must never be the thing that breaks the service that embeds it, so:

- :meth:`EventPublisher.publish` never blocks and never raises. It encodes the event, adds it
  to the batch of its cohort and returns True, or counts it as dropped and returns False
  (buffer full, not encodable, larger than the producer's ``max_request_size``, publisher
  closed). Batches close before they would outgrow ``max_request_size``, so only an event too
  large on its own is refused; a batch the broker refuses as too large is split in two and
  sent again, down to single events.
- A background thread owns the Kafka producer (kafka-python): it connects, reconnects, sends
  due batches and counts what Kafka does not acknowledge within ``delivery_timeout_s``.
- Memory is bounded: events waiting or in flight never exceed ``buffer_max_bytes``; past it
  new events are dropped and counted. Drops are logged as they start, then at most every ``DROP_LOG_INTERVAL_S``, and at close.
- :meth:`close` (or the ``with`` block, or interpreter exit) flushes what it can in the time
  it is given.

Messages are keyed by cohort (``service/environment/release/variant``) so a cohort's events
stay in order on one partition, and batched per key as a JSON array (see ``batching.py``).
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, Self

import orjson

from driftnet.contract.batching import Batch, Batcher, record_bytes
from driftnet.contract.events import Cohort, InferenceEvent
from driftnet.streams.clients.delivery import (
    DropReason,
    Drops,
    PublisherStats,
    failure,
    is_too_large,
    too_large,
)
from driftnet.streams.clients.kafka_config import publisher_producer
from driftnet.streams.settings import KafkaSettings, PublisherSettings

log = logging.getLogger("driftnet.publisher")

DROP_LOG_INTERVAL_S = 10.0
RECONNECT_BACKOFF_S = (0.5, 30.0)
"""First and longest wait between attempts to create the producer."""
CONNECT_TIMEOUT_MS = 5_000
EXIT_FLUSH_S = 2.0
"""How long interpreter exit waits for a publisher nobody closed."""

__all__ = ["DropReason", "EventPublisher", "PublisherStats"]


class EventPublisher:
    """Publish events to Kafka from any thread, batched per cohort, without ever blocking.

    With a broker to talk to (this needs one, so it is an illustration, not a doctest)::

        with EventPublisher(settings.kafka, settings.topics.events.name) as publisher:
            publisher.publish({"event_id": "e-1", "service": "support-chat", "release": "r1"})
    """

    def __init__(
        self,
        kafka: KafkaSettings,
        topic: str,
        options: PublisherSettings | None = None,
    ) -> None:
        self.topic = topic
        self.options = options or PublisherSettings()
        self._kafka = kafka
        self.max_request_size = self.options.request_limit
        """The producer's ``max_request_size``: no message is larger."""
        self._batcher = Batcher(
            max_events=self.options.batch_max_events,
            max_bytes=self.options.batch_max_bytes,
            linger_s=self.options.linger_ms / 1000,
            max_record_bytes=self.max_request_size,
        )
        self._cond = threading.Condition()
        self._ready: deque[Batch] = deque()
        self._buffered_bytes = 0
        self._pending = 0
        self._accepted = 0
        self._sent = 0
        self._messages = 0
        self._drops = Drops()
        self._reached = False
        self._generation = 0
        """Producers made so far: a batch remembers the one it was sent with."""
        self._spent = False
        """The broker refused a message as too large: the producer is replaced (kafka-python's
        idempotent producer fails everything after such an error) before the next send."""
        self._close_started = False
        self._closing = False
        self._closed = False
        self._close_deadline = 0.0
        self._thread = threading.Thread(target=self._run, name="driftnet-publisher", daemon=True)
        self._thread.start()
        self._at_exit = _exit_hook(self)
        atexit.register(self._at_exit)

    # -- the application's side: never blocks, never raises ---------------------------------

    def publish(self, event: InferenceEvent | Mapping[str, Any]) -> bool:
        """Queue one event (a model or a JSON-ready mapping) for its cohort's next batch."""
        try:
            if isinstance(event, InferenceEvent):
                document: Mapping[str, Any] = event.model_dump(mode="json", exclude_none=True)
            else:
                document = event
            encoded = orjson.dumps(document)
            key = Cohort.of(document).key
        except Exception as exc:
            self._drop_one("unencodable", f"{type(exc).__name__}: {exc}")
            return False
        return self._offer(key.encode(), encoded, verbatim=False)

    def publish_encoded(self, event: bytes, key: str) -> bool:
        """Queue one event already encoded as a JSON object, batched under ``key``."""
        try:
            return self._offer(key.encode(), bytes(event), verbatim=False)
        except Exception as exc:
            self._drop_one("unencodable", f"{type(exc).__name__}: {exc}")
            return False

    def publish_raw(self, value: bytes, key: str | None = None, *, events: int = 1) -> bool:
        """Send ``value`` as one message exactly as it is (a batch already built, or bytes
        that are not an event at all: the worker dead-letters those). ``events`` is what the
        stats count it as."""
        try:
            encoded_key = key.encode() if key is not None else None
            return self._offer(encoded_key, bytes(value), verbatim=True, events=max(1, events))
        except Exception as exc:
            self._drop_one("unencodable", f"{type(exc).__name__}: {exc}")
            return False

    def oversize(self, value: bytes, key: str | None) -> int | None:
        """The size of ``value`` as a message under ``key`` when it is over
        :attr:`max_request_size` (the publish methods refuse it), else None."""
        size = record_bytes(None if key is None else len(key.encode()), len(value))
        return size if size > self.max_request_size else None

    @property
    def stats(self) -> PublisherStats:
        with self._cond:
            return PublisherStats(
                accepted=self._accepted,
                sent=self._sent,
                messages=self._messages,
                pending=self._pending,
                dropped=dict(self._drops.counts),
                reached=self._reached,
                last_error=self._drops.last_error,
            )

    def flush(self, timeout: float | None = None) -> bool:
        """Send every open batch now and wait until all accepted events are acknowledged or
        dropped; False when ``timeout`` (seconds) ran out first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            self._ready.extend(self._batcher.drain())
            self._cond.notify_all()
            while self._pending:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    def close(self, timeout: float = 10.0) -> PublisherStats:
        """Flush for up to ``timeout`` seconds, then stop; what is still pending is dropped
        (counted as ``closed``). Safe to call more than once, from any thread."""
        with self._cond:
            first = not self._close_started
            if first:
                self._close_started = True
                self._close_deadline = time.monotonic() + timeout
        if first:
            self.flush(timeout)
            with self._cond:
                self._closing = True
                self._cond.notify_all()
        self._thread.join(max(0.1, self._close_deadline - time.monotonic()))
        if first:
            atexit.unregister(self._at_exit)
            with self._cond:
                self._closed = True
                self._drops.count("closed", self._pending)
                self._pending = 0
                self._cond.notify_all()
            self._log_drops(force=True)
        return self.stats

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _offer(self, key: bytes | None, item: bytes, *, verbatim: bool, events: int = 1) -> bool:
        size = record_bytes(None if key is None else len(key), len(item))
        if size > self.max_request_size:
            with self._cond:
                self._drops.count("too_large", events, too_large(item, size, self.max_request_size))
            self._log_drops()
            return False
        with self._cond:
            if self._closing:
                self._drops.count("closed", events)
                return False
            if self._buffered_bytes + len(item) > self.options.buffer_max_bytes:
                self._drops.count("buffer_full", events)
                full = True
            else:
                full = False
        if full:
            self._log_drops()
            return False
        with self._cond:
            self._buffered_bytes += len(item)
            self._pending += events
            self._accepted += events
            was_idle = self._batcher.next_due() is None
            if verbatim:
                ready = self._batcher.add_verbatim(key, item, events=events)
            else:
                ready = self._batcher.add(key, item, time.monotonic())
            if ready:
                self._ready.extend(ready)
            if ready or was_idle:
                self._cond.notify_all()
            return True

    def _drop_one(self, reason: DropReason, detail: str) -> None:
        with self._cond:
            self._drops.count(reason, 1, detail)
        self._log_drops()

    # -- the background thread: owns the producer -------------------------------------------

    def _run(self) -> None:
        producer: Any = None
        backoff = RECONNECT_BACKOFF_S[0]
        while True:
            ready, stopping = self._next_work()
            self._log_drops()  # rate-limited: logs only what is new, at most every interval
            if producer is not None and self._spent:
                self._replace(producer)
                producer = None  # connect anew
            if ready and producer is None and not stopping:
                producer = self._connect()
                if producer is None:
                    with self._cond:
                        self._ready.extendleft(reversed(ready))
                        self._cond.wait_for(lambda: self._closing, backoff)
                    backoff = min(backoff * 2, RECONNECT_BACKOFF_S[1])
                    continue
                backoff = RECONNECT_BACKOFF_S[0]
            if producer is None:
                for batch in ready:
                    self._settle(batch, None)
            else:
                for batch in ready:
                    self._send(producer, batch)
            if stopping:
                break
        if producer is not None:
            try:
                producer.close(timeout=max(0.0, self._close_deadline - time.monotonic()))
            except Exception as exc:  # closing must never raise into the host
                log.warning("closing the Kafka producer failed: %s", exc)
        self._log_drops()

    def _next_work(self) -> tuple[list[Batch], bool]:
        """Wait for batches to send, or to stop; returns at least every drop-log interval."""
        wake_by = time.monotonic() + DROP_LOG_INTERVAL_S
        with self._cond:
            while True:
                now = time.monotonic()
                self._ready.extend(self._batcher.due(now))
                if self._closing:
                    self._ready.extend(self._batcher.drain())
                if self._ready or self._closing or now >= wake_by:
                    ready = list(self._ready)
                    self._ready.clear()
                    return ready, self._closing
                due = self._batcher.next_due()
                self._cond.wait(min(wake_by, due if due is not None else wake_by) - now)

    def _connect(self) -> Any:
        try:
            producer = publisher_producer(self._kafka, self.options, CONNECT_TIMEOUT_MS)
        except Exception as exc:
            message = f"cannot reach Kafka at {self._kafka.bootstrap_servers}: {exc}"
            with self._cond:
                first = self._drops.last_error != message
                self._drops.last_error = message
            if first:
                log.warning(
                    "%s; events are kept up to %d bytes, then dropped and counted",
                    message,
                    self.options.buffer_max_bytes,
                )
            return None
        with self._cond:
            self._reached = True
        return producer

    def _replace(self, producer: Any) -> None:
        """Close a producer after the broker refused a message as too large; what it still
        held comes back to be sent by the next one (see :meth:`_settle`)."""
        with self._cond:
            self._generation += 1
            self._spent = False
        try:
            producer.close(timeout=min(5.0, max(0.0, self._close_deadline - time.monotonic())))
        except Exception as exc:  # closing must never raise into the host
            log.warning("closing the Kafka producer failed: %s", exc)

    def _send(self, producer: Any, batch: Batch) -> None:
        generation = self._generation
        try:
            future = producer.send(self.topic, key=batch.key, value=batch.value())
        except Exception as exc:
            self._settle(batch, exc, sent_with=generation)
            return
        future.add_callback(lambda _metadata: self._settle(batch, None, delivered=True))
        future.add_errback(
            lambda exc: self._settle(batch, exc, sent_with=generation, by_broker=True)
        )

    def _settle(
        self,
        batch: Batch,
        error: BaseException | None,
        *,
        delivered: bool = False,
        sent_with: int | None = None,
        by_broker: bool = False,
    ) -> None:
        """A batch is done: acknowledged, failed (``error``; ``sent_with``: the generation of
        the producer it was sent with; ``by_broker``: the broker's answer), or given up at
        close. A batch the broker refused as too large is split in two and queued again, and
        its producer is replaced; what that producer failed besides is queued again as it is."""
        oversized = error is not None and is_too_large(error)
        with self._cond:
            if self._closed:
                return  # already counted as dropped by close()
            if error and sent_with is not None and (sent_with != self._generation or self._spent):
                self._ready.appendleft(batch)  # failed with a producer given up
                self._cond.notify_all()
                return
            if oversized and by_broker:
                self._spent = True
                if not batch.verbatim and len(batch.items) > 1:
                    self._ready.extendleft(reversed(batch.halves()))
                    self._cond.notify_all()
                    return
            self._pending -= batch.events
            self._buffered_bytes -= batch.item_bytes
            if delivered:
                self._sent += batch.events
                self._messages += 1
            elif error is not None:
                self._drops.count(*failure(batch, error, by_broker=by_broker))
            else:
                self._drops.count("closed", batch.events)
            self._cond.notify_all()
        if not delivered:
            self._log_drops()

    def _log_drops(self, *, force: bool = False) -> None:
        """Log the drops not logged yet: at most once per ``DROP_LOG_INTERVAL_S`` (a drop, the
        background thread's regular check), or now when ``force`` (close)."""
        with self._cond:
            due = self._drops.due(time.monotonic(), DROP_LOG_INTERVAL_S, force=force)
        if due is not None:
            new, breakdown, last_error = due
            log.warning(
                "dropped %d events for %s (in all so far: %s); last error: %s",
                new,
                self.topic,
                breakdown,
                last_error,
            )


def _exit_hook(publisher: EventPublisher) -> Callable[[], None]:
    """Flush a publisher nobody closed when the interpreter exits, without keeping it alive."""
    ref = weakref.ref(publisher)

    def hook() -> None:
        alive = ref()
        if alive is not None:
            alive.close(EXIT_FLUSH_S)

    return hook

"""The Parquet sink: failure records off Kafka into the harvest, each exactly where it belongs.

An aiokafka consumer reads the failures topic with auto-commit off. Each record becomes a row
of the open file for its partition and folder (``date=<event date>/service=<service>``, see
:mod:`driftnet.storage.buffers` for when files are written). After files are durable the offsets below
their rows are committed, never earlier; so a sink killed at any moment re-reads what is not
yet in a file, and the replay rewrites the same file names. What a replay writes twice under
another name (a file cut at a different row) carries the same ``record_id``: the ``failures``
view counts it once and ``driftnet harvest compact`` removes the copy.

A value that is not a failure record is dead-lettered (reason ``invalid_record``) and skipped.
A file that cannot be written (disk full, bucket gone) is retried with backoff; its offsets
stay uncommitted and, while too much waits, reading pauses.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiokafka.abc import ConsumerRebalanceListener
from pydantic import ValidationError

from driftnet.contract.decode import PAYLOAD_CAP_BYTES, DeadLetter, describe, make_dead_letter
from driftnet.contract.dlq import dead_letter_headers
from driftnet.contract.events import Lineage
from driftnet.harvest.records import FailureRecord
from driftnet.storage.buffers import FileBuffers, OpenFile, TopicPartition
from driftnet.storage.schema import row_of
from driftnet.storage.settings import HarvestSettings
from driftnet.storage.target import Target, first_line, partition_value
from driftnet.streams.clients.kafka_config import kafka_python_options
from driftnet.streams.settings import KafkaSettings

log = logging.getLogger("driftnet.sink")

POLL_MAX_RECORDS = 2_000
POLL_TIMEOUT_S = 0.5
RETRY_MIN_S = 1.0
RETRY_MAX_S = 30.0


def folder_of(record: FailureRecord) -> str:
    """The Hive folder of a record: its event's UTC date and service."""
    event = record.event
    return f"date={event.timestamp.date().isoformat()}/service={partition_value(event.service)}"


@dataclass(slots=True)
class SinkStats:
    """What the sink did (since start)."""

    records: int = 0
    rows_written: int = 0
    files_written: int = 0
    dead_letters: int = 0
    write_errors: int = 0
    commits: int = 0

    def summary(self) -> str:
        return (
            f"{self.records} records read, {self.rows_written} rows in {self.files_written} "
            f"files, {self.dead_letters} dead letters, {self.write_errors} write errors"
        )


class DeadLetterUndelivered(Exception):
    """A dead letter the broker kept refusing for longer than ``send_give_up_s``."""


@dataclass(slots=True)
class _DeadLetterSend:
    """A dead letter sent, and what is needed to send it again."""

    topic: str
    partition: int
    offset: int
    kwargs: dict[str, Any]
    future: Any


class ParquetSink:
    """Consumes the failures topic into the harvest until ``stop`` is set."""

    def __init__(
        self,
        kafka: KafkaSettings,
        harvest: HarvestSettings,
        *,
        failures_topic: str,
        dlq_topic: str,
        clock: Callable[[], float] = time.monotonic,
        session_timeout_s: float = 10.0,
        rebalance_timeout_s: float = 5.0,
        send_give_up_s: float = 120.0,
    ) -> None:
        self.kafka = kafka
        self.harvest = harvest
        self.target = Target.of(harvest.location)
        self.failures_topic = failures_topic
        self.dlq_topic = dlq_topic
        self.buffers = FileBuffers(harvest.rotation)
        self.stats = SinkStats()
        self._clock = clock
        self._session_timeout_s = session_timeout_s
        self._rebalance_timeout_s = rebalance_timeout_s
        self.send_give_up_s = send_give_up_s
        self._committed: dict[TopicPartition, int] = {}
        self._retry: list[OpenFile] = []
        self._retry_at = 0.0
        self._retry_wait = RETRY_MIN_S
        self._lock = asyncio.Lock()
        self._paused = False
        self.ready = asyncio.Event()
        """Set once the consumer has joined its group and has partitions."""
        self.joined = False
        """True once the consumer has had an assignment, even an empty one (health)."""
        self.stopped = False
        """True once :meth:`run` has ended (health)."""
        self.failing: str | None = None
        """Why the last write failed, until one succeeds (driftnet's own sink alert)."""

    async def run(self, stop: asyncio.Event) -> None:
        """Consume, write and commit until ``stop`` is set; then write what is held and commit."""
        from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

        options = kafka_python_options(self.kafka)
        consumer = AIOKafkaConsumer(
            **options,
            group_id=self.harvest.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=int(self._session_timeout_s * 1000),
            heartbeat_interval_ms=int(min(3.0, self._session_timeout_s / 3) * 1000),
            rebalance_timeout_ms=int(self._rebalance_timeout_s * 1000),
            max_poll_interval_ms=300_000,
        )
        producer = AIOKafkaProducer(**options, acks="all")
        await consumer.start()
        await producer.start()
        try:
            consumer.subscribe([self.failures_topic], listener=_Listener(self))
            await self._loop(consumer, producer, stop)
        finally:
            self.stopped = True
            try:
                await self._finish(consumer)
            finally:
                await producer.stop()
                await consumer.stop()
            log.info("harvest sink stopped: %s", self.stats.summary())

    async def _loop(self, consumer: Any, producer: Any, stop: asyncio.Event) -> None:
        stopping = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set():
                now = self._clock()
                wait = self.buffers.next_due_in(now)
                timeout = POLL_TIMEOUT_S if wait is None else min(wait, POLL_TIMEOUT_S)
                self._pause_when_full(consumer)
                batch = await consumer.getmany(
                    timeout_ms=int(timeout * 1000), max_records=POLL_MAX_RECORDS
                )
                if consumer.assignment():
                    self.ready.set()
                await self._accept(batch, producer)
                await self._write(self.buffers.take_due(self._clock()))
                await self._commit(consumer)
        finally:
            stopping.cancel()

    async def _accept(self, batch: dict[Any, list[Any]], producer: Any) -> None:
        now = self._clock()
        sends: list[_DeadLetterSend] = []
        for tp, messages in batch.items():
            for message in messages:
                self.stats.records += 1
                try:
                    record = FailureRecord.model_validate_json(message.value or b"")
                    row = row_of(record)
                except (ValidationError, ValueError, TypeError, OverflowError) as exc:
                    dead = _dead_letter(message, exc)
                    kwargs = {
                        "value": dead.payload,
                        "key": message.key,
                        "headers": dead_letter_headers(dead, datetime.now(UTC)),
                    }
                    future = await producer.send(self.dlq_topic, **kwargs)
                    sends.append(
                        _DeadLetterSend(tp.topic, tp.partition, message.offset, kwargs, future)
                    )
                    self.stats.dead_letters += 1
                    # not committed past until the dead letter is acknowledged
                    self.buffers.hold(tp.topic, tp.partition, message.offset)
                    continue
                self.buffers.add(
                    tp.topic,
                    tp.partition,
                    message.offset,
                    folder_of(record),
                    record.event.timestamp.timestamp(),
                    row,
                    len(message.value),
                    now,
                )
        for send in sends:  # every dead letter acknowledged before any offset past it is committed
            await self._deliver(send, producer)
            self.buffers.release(send.topic, send.partition, send.offset)

    async def _deliver(self, send: _DeadLetterSend, producer: Any) -> None:
        """Wait for a dead letter's acknowledgement, sending it again with backoff while the
        broker refuses it; :class:`DeadLetterUndelivered` after ``send_give_up_s`` (the sink
        stops, its offset held: the next start reads the record again)."""
        first_failed_at: float | None = None
        wait = RETRY_MIN_S
        while True:
            try:
                await send.future
                if first_failed_at is not None:
                    self.failing = None
                return
            except Exception as exc:
                now = self._clock()
                first_failed_at = now if first_failed_at is None else first_failed_at
                self.failing = f"cannot deliver a dead letter: {_one_line(exc)}"
                if now - first_failed_at >= self.send_give_up_s:
                    raise DeadLetterUndelivered(
                        f"the broker refused the dead letter of {send.topic}[{send.partition}]"
                        f"@{send.offset} for {now - first_failed_at:.0f} s ({_one_line(exc)}); "
                        "stopping without committing past it: the next start reads it again"
                    ) from exc
                log.warning(
                    "cannot deliver the dead letter of %s[%d]@%d: %s; again in %.0f s "
                    "(its offset is not committed meanwhile)",
                    send.topic,
                    send.partition,
                    send.offset,
                    _one_line(exc),
                    wait,
                )
            await asyncio.sleep(wait)
            wait = min(wait * 2, RETRY_MAX_S)
            send.future = await producer.send(self.dlq_topic, **send.kwargs)

    async def _write(self, files: list[OpenFile]) -> None:
        """Write due files (and retry failed ones when their backoff is over)."""
        now = self._clock()
        if self._retry and now >= self._retry_at:
            files = [*self._retry, *files]
            self._retry = []
        elif self._retry:
            self._retry.extend(files)
            return
        async with self._lock:
            for index, open_file in enumerate(files):
                try:
                    await asyncio.to_thread(self._write_file, open_file)
                except Exception as exc:  # disk full, permission, bucket gone...
                    self._retry = files[index:]
                    self.stats.write_errors += 1
                    self.failing = _one_line(exc)
                    self._retry_at = self._clock() + self._retry_wait
                    log.error(
                        "cannot write harvest file %s: %s; retrying in %.0f s "
                        "(offsets not committed, nothing lost)",
                        self.target.path(open_file.relative_path),
                        _one_line(exc),
                        self._retry_wait,
                    )
                    self._retry_wait = min(self._retry_wait * 2, RETRY_MAX_S)
                    return
                self.buffers.written(open_file)
                log.debug(
                    "wrote %s: %d rows (rotated by %s)",
                    open_file.relative_path,
                    open_file.rows,
                    open_file.why,
                )
                self.stats.files_written += 1
                self.stats.rows_written += open_file.rows
            self._retry_wait = RETRY_MIN_S
            self.failing = None

    def _write_file(self, open_file: OpenFile) -> None:
        self.target.write_parquet(open_file.relative_path, open_file.table())

    async def _commit(self, consumer: Any) -> None:
        from aiokafka import TopicPartition as KafkaTopicPartition
        from aiokafka.errors import KafkaError

        owned = {(tp.topic, tp.partition) for tp in consumer.assignment()}
        offsets = {
            tp: offset
            for tp, offset in self.buffers.committable().items()
            if tp in owned and self._committed.get(tp) != offset
        }
        if not offsets:
            return
        try:
            await consumer.commit({KafkaTopicPartition(*tp): off for tp, off in offsets.items()})
        except KafkaError as exc:  # a rebalance is under way: the next round commits
            log.debug("commit deferred: %s", exc)
            return
        self._committed.update(offsets)
        self.stats.commits += 1

    async def _finish(self, consumer: Any) -> None:
        await self._write(self.buffers.take_all())
        if self._retry:
            rows = sum(f.rows for f in self._retry)
            log.error(
                "%d rows could not be written; they stay uncommitted and are read again from "
                "Kafka at the next start",
                rows,
            )
        await self._commit(consumer)

    def _pause_when_full(self, consumer: Any) -> None:
        full = self.buffers.pending_bytes >= self.harvest.rotation.max_buffered_bytes
        if full and not self._paused:
            consumer.pause(*consumer.assignment())
            log.warning("harvest writes are failing: reading paused until they succeed")
        elif not full and self._paused:
            consumer.resume(*consumer.assignment())
        self._paused = full

    async def forget(self, partitions: list[TopicPartition]) -> None:
        """Partitions were revoked: drop their unwritten rows (their next owner re-reads them
        from the committed offset), after any write in flight has finished."""
        async with self._lock:
            dropped = self.buffers.forget(partitions)
            self._retry = [f for f in self._retry if (f.topic, f.partition) not in partitions]
            for tp in partitions:
                self._committed.pop(tp, None)
        if dropped:
            log.info(
                "partitions %s revoked: %d unwritten rows left to their next owner",
                partitions,
                dropped,
            )


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    """aiokafka rebalance callbacks."""

    def __init__(self, sink: ParquetSink) -> None:
        self.sink = sink

    async def on_partitions_revoked(self, revoked: Any) -> None:
        await self.sink.forget([(tp.topic, tp.partition) for tp in revoked])

    async def on_partitions_assigned(self, assigned: Any) -> None:
        self.sink.joined = True
        mine = sorted(tp.partition for tp in assigned)
        log.info("harvest sink: %s partitions %s", self.sink.failures_topic, mine or "none")


def _dead_letter(message: Any, exc: Exception) -> DeadLetter:
    field = None
    if isinstance(exc, ValidationError):
        _, text, field = describe(exc)  # the decoder's wording for the first problem
    else:
        text = _one_line(exc)
    lineage = Lineage(message.topic, message.partition, message.offset)
    return make_dead_letter(
        "invalid_record",
        f"not a failure record: {text}",
        message.value or b"",
        lineage,
        PAYLOAD_CAP_BYTES,
        field=field or None,
    )


def _one_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {first_line(exc)}"

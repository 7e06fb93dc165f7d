"""A fault-injecting Kafka-protocol proxy for the tests: a broker that refuses produces mid-run.

Tansu, the embedded broker, never refuses a produce (it ignores ``max.message.bytes`` and
creates a deleted topic again), so the tests that prove a client never commits past a record
it failed to send put :class:`KafkaFaultProxy` in front of it. The proxy forwards every Kafka
request and response frame (a 4-byte big-endian length, then the frame) unchanged, except
ProduceRequests (api key 0) to a topic the test chose with :meth:`KafkaFaultProxy.reject`: the
client gets a real ProduceResponse for the same correlation id with an error code on each
partition of that topic (10, MESSAGE_TOO_LARGE, by default; 3, UNKNOWN_TOPIC_OR_PARTITION, for a
deleted topic; 7, REQUEST_TIMED_OUT, ...), and those records never reach the broker:

* a request whose every topic is refused is answered by the proxy, without the broker;
* a request that mixes refused and accepted topics goes to the broker without the refused
  ones, and the refused topics' errors are added to the broker's response.

Responses leave in the order of the requests on each connection, as Kafka clients expect.
ProduceRequest v0-v8 are read and written with aiokafka's own classes
(:mod:`aiokafka.protocol.produce`); v9-v12, the flexible versions kafka-python 3 and librdkafka
send, with schemas built here from aiokafka's compact types (aiokafka itself sends up to v7).

The proxy runs an event loop in a thread of its own, so synchronous tests, async tests and
worker subprocesses can all use it. Clients learn the broker's address from metadata, so the
broker must advertise the proxy: :class:`FaultyBroker` starts a fresh embedded broker that does,
and the :func:`faulty_broker` fixture yields one per test::

    from tests.support.kafka_fault_proxy import FaultyBroker
    from tests.support.kafka_fault_proxy import faulty_broker as faulty_broker  # the fixture

    def test_it(faulty_broker: FaultyBroker) -> None:
        faulty_broker.reject("events", 10)  # every produce to "events" fails from now on
        ...  # clients on faulty_broker.bootstrap
        assert faulty_broker.rejected_records > 0
        faulty_broker.heal()  # and produces succeed again
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
import tempfile
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import pytest
from aiokafka.protocol import produce
from aiokafka.protocol.types import (
    CompactArray,
    CompactBytes,
    CompactString,
    Int16,
    Int32,
    Int64,
    Schema,
    TaggedFields,
    UnsignedVarInt32,
)

from driftnet.sandbox.broker import BrokerError, EmbeddedBroker, free_port

log = logging.getLogger(__name__)

PRODUCE = 0
"""The api key of ProduceRequest."""
FLEXIBLE_FROM = 9
"""The first ProduceRequest version with compact fields, tagged fields and header v2."""
MAX_PRODUCE_VERSION = 12
"""The last ProduceRequest version that names its topics (v13 gives topic ids)."""

MESSAGE_TOO_LARGE = 10
UNKNOWN_TOPIC_OR_PARTITION = 3
REQUEST_TIMED_OUT = 7

_LENGTH = struct.Struct(">i")
_HEADER = struct.Struct(">hhi")  # api_key, api_version, correlation_id


class _Tags(TaggedFields):  # type: ignore[misc]  # aiokafka is untyped for mypy here
    """Tagged fields that encode their values' sizes (aiokafka's ``TaggedFields.encode``
    leaves them out, which only matters when a broker sends a tag)."""

    @classmethod
    def encode(cls, value: dict[int, bytes]) -> bytes:
        parts = [UnsignedVarInt32.encode(len(value))]
        for tag in sorted(value):
            parts += [
                UnsignedVarInt32.encode(tag),
                UnsignedVarInt32.encode(len(value[tag])),
                value[tag],
            ]
        return b"".join(parts)


_FLEXIBLE_REQUEST = Schema(
    ("transactional_id", CompactString("utf-8")),
    ("acks", Int16),
    ("timeout_ms", Int32),
    (
        "topic_data",
        CompactArray(
            ("name", CompactString("utf-8")),
            (
                "partition_data",
                CompactArray(("index", Int32), ("records", CompactBytes), ("tags", _Tags)),
            ),
            ("tags", _Tags),
        ),
    ),
    ("tags", _Tags),
)
_FLEXIBLE_RESPONSE = Schema(
    (
        "responses",
        CompactArray(
            ("name", CompactString("utf-8")),
            (
                "partition_responses",
                CompactArray(
                    ("index", Int32),
                    ("error_code", Int16),
                    ("base_offset", Int64),
                    ("log_append_time_ms", Int64),
                    ("log_start_offset", Int64),
                    (
                        "record_errors",
                        CompactArray(
                            ("batch_index", Int32),
                            ("batch_index_error_message", CompactString("utf-8")),
                            ("tags", _Tags),
                        ),
                    ),
                    ("error_message", CompactString("utf-8")),
                    ("tags", _Tags),
                ),
            ),
            ("tags", _Tags),
        ),
    ),
    ("throttle_time_ms", Int32),
    ("tags", _Tags),
)


def request_schema(version: int) -> Schema:
    """The body schema of ProduceRequest ``version`` (0 to :data:`MAX_PRODUCE_VERSION`)."""
    if version >= FLEXIBLE_FROM:
        return _FLEXIBLE_REQUEST
    return getattr(produce, f"ProduceRequest_v{version}").SCHEMA


def response_schema(version: int) -> Schema:
    """The body schema of ProduceResponse ``version`` (0 to :data:`MAX_PRODUCE_VERSION`)."""
    if version >= FLEXIBLE_FROM:
        return _FLEXIBLE_RESPONSE
    return getattr(produce, f"ProduceResponse_v{version}").SCHEMA


def count_records(records: bytes | None) -> int:
    """The records in a produce request's record set: each v2 batch's record count (a v0/v1
    message counts as one, a compressed wrapper too)."""
    if not records:
        return 0
    total, position = 0, 0
    while position + 17 <= len(records):
        size = _LENGTH.unpack_from(records, position + 8)[0]
        magic = records[position + 16]
        if magic >= 2 and position + 61 <= len(records):
            total += _LENGTH.unpack_from(records, position + 57)[0]
        else:
            total += 1
        position += 12 + size
    return total


@dataclass
class ProduceFrame:
    """A decoded ProduceRequest: its raw header (kept as sent) and its body's fields."""

    version: int
    correlation_id: int
    header: bytes
    fields: list[Any]

    @property
    def topics(self) -> list[Any]:
        return list(self.fields[-2 if self.version >= FLEXIBLE_FROM else -1])

    @property
    def acks(self) -> int:
        return int(self.fields[1 if self.version >= 3 else 0])

    def with_topics(self, topics: Sequence[Any]) -> bytes:
        """The request frame (without its length) with only ``topics``."""
        fields = list(self.fields)
        fields[-2 if self.version >= FLEXIBLE_FROM else -1] = list(topics)
        return self.header + bytes(request_schema(self.version).encode(fields))


def parse_produce(frame: bytes) -> ProduceFrame:
    """A ProduceRequest frame (without its length), v0 to :data:`MAX_PRODUCE_VERSION`."""
    _, version, correlation_id = _HEADER.unpack_from(frame)
    client_id_length = Int16.decode(BytesIO(frame[8:10]))
    data = BytesIO(frame)
    data.seek(10 + max(client_id_length, 0))
    if version >= FLEXIBLE_FROM:
        _Tags.decode(data)  # request header v2 ends in tagged fields
    header = frame[: data.tell()]
    fields = list(request_schema(version).decode(data))
    return ProduceFrame(version, correlation_id, header, fields)


@dataclass(frozen=True)
class Refusal:
    """A refused topic of one request: its partitions, and the error code they get."""

    topic: str
    partitions: tuple[int, ...]
    error_code: int


def _error_partition(version: int, partition: int, code: int, topic: str) -> tuple[Any, ...]:
    fields: list[Any] = [partition, code, -1]
    if version >= 2:
        fields.append(-1)  # log_append_time_ms
    if version >= 5:
        fields.append(-1)  # log_start_offset
    if version >= 8:
        fields += [[], f"produce to {topic} refused by the test's fault proxy"]
    if version >= FLEXIBLE_FROM:
        fields.append({})
    return tuple(fields)


def _error_topics(version: int, refusals: Sequence[Refusal]) -> list[Any]:
    topics: list[Any] = []
    for refusal in refusals:
        partitions = [
            _error_partition(version, p, refusal.error_code, refusal.topic)
            for p in refusal.partitions
        ]
        topics.append(
            (refusal.topic, partitions, {})
            if version >= FLEXIBLE_FROM
            else (refusal.topic, partitions)
        )
    return topics


def _response_header(version: int, correlation_id: int) -> bytes:
    header = bytes(Int32.encode(correlation_id))
    return header + _Tags.encode({}) if version >= FLEXIBLE_FROM else header


def refusal_response(version: int, correlation_id: int, refusals: Sequence[Refusal]) -> bytes:
    """A ProduceResponse frame (without its length) with the refusals' errors only."""
    fields: list[Any] = [_error_topics(version, refusals)]
    if version >= 1:
        fields.append(0)  # throttle_time_ms
    if version >= FLEXIBLE_FROM:
        fields.append({})
    return _response_header(version, correlation_id) + bytes(
        response_schema(version).encode(fields)
    )


def merge_refusals(version: int, frame: bytes, refusals: Sequence[Refusal]) -> bytes:
    """The broker's ProduceResponse frame (without its length) with the refusals' errors
    added to its topics."""
    data = BytesIO(frame)
    correlation_id = Int32.decode(data)
    tags = _Tags.decode(data) if version >= FLEXIBLE_FROM else None
    schema = response_schema(version)
    fields = list(schema.decode(data))
    fields[0] = list(fields[0]) + _error_topics(version, refusals)
    header = _response_header(version, correlation_id)
    if tags:  # the broker's tags on the response header, kept
        header = header[:4] + _Tags.encode(tags)
    return header + bytes(schema.encode(fields))


@dataclass
class _Slot:
    """A request that awaits its response on a connection, in request order: either an
    answer made here, or the broker's next response (with refusals to add, maybe)."""

    correlation_id: int
    version: int = 0
    answer: bytes | None = None
    refusals: list[Refusal] = field(default_factory=list)


class ProxyError(Exception):
    """The proxy met a frame it cannot handle (kept in :attr:`KafkaFaultProxy.errors`)."""


class KafkaFaultProxy:
    """A Kafka-protocol proxy on ``host:port`` (a free port by default) in front of the
    broker at ``upstream_host:upstream_port``, in a thread of its own; :meth:`reject` and
    :meth:`heal` may be called from any thread, at any time.

    Counters: :attr:`rejected_requests` (ProduceRequests with a refused topic),
    :attr:`rejected_records` (the records in their refused partitions),
    :attr:`rejected_by_topic`, and :attr:`split_requests` (those of the rejected requests that
    went to the broker with their other topics); :attr:`requests_seen` counts every request by
    ``(api_key, api_version)``. :attr:`errors` lists what the proxy could not handle.
    """

    def __init__(
        self, upstream_host: str, upstream_port: int, *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.host = host
        self.port = port
        self.errors: list[str] = []
        self._requests_seen: Counter[tuple[int, int]] = Counter()
        self._rules: dict[str, int] = {}
        self._rejected_requests = 0
        self._split_requests = 0
        self._rejected_records: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    # -- the test's controls ------------------------------------------------------------------

    @property
    def address(self) -> str:
        """``host:port`` of the proxy."""
        return f"{self.host}:{self.port}"

    def reject(self, topic: str, error_code: int = MESSAGE_TOO_LARGE) -> None:
        """From now on, answer every produce to ``topic`` with ``error_code``."""
        with self._lock:
            self._rules[topic] = error_code

    def heal(self, topic: str | None = None) -> None:
        """Forward the produces to ``topic`` (to every topic, by default) again."""
        with self._lock:
            if topic is None:
                self._rules.clear()
            else:
                self._rules.pop(topic, None)

    @property
    def rejected_requests(self) -> int:
        """ProduceRequests that had at least one refused topic."""
        with self._lock:
            return self._rejected_requests

    @property
    def rejected_records(self) -> int:
        """Records in the refused topics' partitions of those requests."""
        with self._lock:
            return sum(self._rejected_records.values())

    @property
    def split_requests(self) -> int:
        """Rejected requests whose other topics went to the broker."""
        with self._lock:
            return self._split_requests

    @property
    def requests_seen(self) -> Counter[tuple[int, int]]:
        """Every request from the clients so far, by ``(api_key, api_version)``."""
        with self._lock:
            return Counter(self._requests_seen)

    @property
    def rejected_by_topic(self) -> dict[str, int]:
        """Refused records by topic."""
        with self._lock:
            return dict(self._rejected_records)

    # -- start and stop -----------------------------------------------------------------------

    def start(self, timeout_s: float = 10.0) -> Self:
        """Listen, and return once connections are accepted."""
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._listen())
            except BaseException as exc:
                failure.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()

        self._loop = loop
        self._thread = threading.Thread(target=run, name="kafka-fault-proxy", daemon=True)
        self._thread.start()
        if not ready.wait(timeout_s):
            raise ProxyError(f"the proxy did not listen within {timeout_s} s")
        if failure:
            raise failure[0]
        return self

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = int(self._server.sockets[0].getsockname()[1])

    def stop(self, timeout_s: float = 10.0) -> None:
        """Close the listener and every connection. Safe to call twice."""
        loop, thread, self._loop, self._thread = self._loop, self._thread, None, None
        if loop is None or thread is None:
            return
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._close(), loop).result(timeout_s)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout_s)
        if not thread.is_alive():
            loop.close()

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # -- in the proxy's thread ----------------------------------------------------------------

    async def _serve(
        self, client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        broker_out: asyncio.StreamWriter | None = None
        try:
            broker_in, broker_out = await asyncio.open_connection(*self.upstream)
            pending: asyncio.Queue[_Slot | None] = asyncio.Queue()
            requests = asyncio.create_task(self._requests(client_in, broker_out, pending))
            responses = asyncio.create_task(self._responses(broker_in, client_out, pending))
            try:
                done, _ = await asyncio.wait(
                    {requests, responses}, return_when=asyncio.FIRST_COMPLETED
                )
                if requests in done and requests.exception() is None:
                    await asyncio.wait({responses})  # the client is done: its answers still go out
            finally:
                for part in (requests, responses):
                    part.cancel()
                await asyncio.gather(requests, responses, return_exceptions=True)
                for part in (requests, responses):
                    if part.done() and not part.cancelled():
                        self._note(part.exception())
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            for writer in (client_out, broker_out):
                if writer is not None:
                    writer.close()
            self._connections.discard(task)

    def _note(self, exc: BaseException | None) -> None:
        if exc is None or isinstance(exc, (OSError, asyncio.IncompleteReadError)):
            return
        log.error("kafka fault proxy: %r", exc)
        self.errors.append(repr(exc))

    async def _requests(
        self,
        client_in: asyncio.StreamReader,
        broker_out: asyncio.StreamWriter,
        pending: asyncio.Queue[_Slot | None],
    ) -> None:
        """Each request from the client, forwarded (or answered) in order."""
        try:
            while True:
                try:
                    frame = await _read_frame(client_in)
                except asyncio.IncompleteReadError:
                    return
                api_key, version, correlation_id = _HEADER.unpack_from(frame)
                with self._lock:
                    self._requests_seen[api_key, version] += 1
                    rules = dict(self._rules)
                if api_key == PRODUCE and rules:
                    slot, frame_out = self._produce(frame, version, correlation_id, rules)
                else:
                    slot, frame_out = _Slot(correlation_id), frame
                if frame_out is not None:
                    broker_out.write(_LENGTH.pack(len(frame_out)) + frame_out)
                    await broker_out.drain()
                if slot is not None:
                    await pending.put(slot)
        finally:
            await pending.put(None)

    def _produce(
        self, frame: bytes, version: int, correlation_id: int, rules: dict[str, int]
    ) -> tuple[_Slot | None, bytes | None]:
        """The slot for a ProduceRequest (None when acks=0) and what goes to the broker (None
        when nothing does)."""
        if version > MAX_PRODUCE_VERSION:
            self._note(ProxyError(f"ProduceRequest v{version} names no topics: forwarded"))
            return _Slot(correlation_id), frame
        request = parse_produce(frame)
        kept: list[Any] = []
        refusals: list[Refusal] = []
        records: Counter[str] = Counter()
        for topic in request.topics:
            name, partitions = topic[0], topic[1]
            if name not in rules:
                kept.append(topic)
                continue
            refusals.append(Refusal(name, tuple(p[0] for p in partitions), rules[name]))
            records[name] += sum(count_records(p[1]) for p in partitions)
        if not refusals:
            return _Slot(correlation_id), frame
        with self._lock:
            self._rejected_requests += 1
            self._split_requests += bool(kept)
            self._rejected_records.update(records)
        log.info("kafka fault proxy: refused %s", refusals)
        expects_answer = request.acks != 0
        if not kept:
            answer = refusal_response(version, correlation_id, refusals)
            return (_Slot(correlation_id, version, answer) if expects_answer else None), None
        slot = _Slot(correlation_id, version, refusals=refusals) if expects_answer else None
        return slot, request.with_topics(kept)

    async def _responses(
        self,
        broker_in: asyncio.StreamReader,
        client_out: asyncio.StreamWriter,
        pending: asyncio.Queue[_Slot | None],
    ) -> None:
        """Each response to the client, in the order of its requests."""
        while (slot := await pending.get()) is not None:
            frame = slot.answer
            if frame is None:
                frame = await _read_frame(broker_in)
                (correlation_id,) = _LENGTH.unpack_from(frame)
                if correlation_id != slot.correlation_id:
                    raise ProxyError(
                        f"the broker answered correlation id {correlation_id}, "
                        f"expected {slot.correlation_id}"
                    )
                if slot.refusals:
                    frame = merge_refusals(slot.version, frame, slot.refusals)
            client_out.write(_LENGTH.pack(len(frame)) + frame)
            await client_out.drain()


async def _read_frame(reader: asyncio.StreamReader) -> bytes:
    (length,) = _LENGTH.unpack(await reader.readexactly(4))
    return await reader.readexactly(length)


class FaultyBroker:
    """A fresh embedded broker that advertises a :class:`KafkaFaultProxy` in front of it, so
    that every client (aiokafka, faust, kafka-python, confluent-kafka; in this process or a
    subprocess) reaches it through the proxy. Use :attr:`bootstrap` as the bootstrap address.
    """

    def __init__(self, *, log: Path | None = None, host: str = "127.0.0.1") -> None:
        self.host = host
        self.log = log
        self.proxy = KafkaFaultProxy(host, free_port(host), host=host)
        self.broker: EmbeddedBroker | None = None

    @property
    def bootstrap(self) -> str:
        """The proxy's ``host:port``, for Kafka clients."""
        return self.proxy.address

    def reject(self, topic: str, code: int = MESSAGE_TOO_LARGE) -> None:
        """From now on, every produce to ``topic`` fails with error ``code``."""
        self.proxy.reject(topic, code)

    def heal(self, topic: str | None = None) -> None:
        """Produces to ``topic`` (to every topic, by default) reach the broker again."""
        self.proxy.heal(topic)

    @property
    def rejected_requests(self) -> int:
        return self.proxy.rejected_requests

    @property
    def rejected_records(self) -> int:
        return self.proxy.rejected_records

    @property
    def rejected_by_topic(self) -> dict[str, int]:
        return self.proxy.rejected_by_topic

    @property
    def split_requests(self) -> int:
        return self.proxy.split_requests

    def start(self) -> Self:
        """Start the proxy, then the broker behind it (advertising the proxy)."""
        self.proxy.start()
        host, port = self.proxy.upstream
        self.broker = EmbeddedBroker(
            port,
            host,
            log=self.log,
            advertised_host=self.proxy.host,
            advertised_port=self.proxy.port,
        )
        try:
            self.broker.start()
        except BaseException:
            self.proxy.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the broker, then the proxy. Safe to call twice."""
        if self.broker is not None:
            self.broker.stop()
        self.proxy.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


@pytest.fixture
def faulty_broker() -> Iterator[FaultyBroker]:
    """A fresh embedded broker behind a fault proxy, for one test; fails the test if the proxy
    met a frame it could not handle."""
    with tempfile.TemporaryDirectory(prefix="driftnet-faulty-broker-") as folder:
        log_path = Path(folder) / "tansu.log"
        broker = FaultyBroker(log=log_path)
        try:
            broker.start()
        except BrokerError as exc:
            pytest.fail(f"embedded broker did not start: {exc}\n{_tail(log_path)}")
        try:
            yield broker
        finally:
            broker.stop()
        assert not broker.proxy.errors, broker.proxy.errors


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""

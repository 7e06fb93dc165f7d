"""The tests' fault proxy (tests/support/kafka_fault_proxy.py): a broker that refuses produces
to chosen topics mid-run, for every client the worker and the CLI use.

Its frames are checked against kafka-python's own protocol classes (an implementation
independent of the aiokafka classes and schemas the proxy uses), for every ProduceRequest
version that names its topics; then, on a real broker behind the proxy: aiokafka round-trips;
a refused topic's sends fail with the error chosen while another topic's succeed, and nothing
of them is stored; ``heal()`` lets them through again; a request mixing a refused and an
accepted topic loses only the refused one; faust's producer (the worker's options) and
kafka-python's (the CLI's) see the refusal.
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import MessageSizeTooLargeError, UnknownTopicOrPartitionError
from kafka import KafkaProducer
from kafka.errors import MessageSizeTooLargeError as KafkaPythonMessageSizeTooLargeError
from kafka.protocol.metadata.api_versions import ApiVersionsRequest
from kafka.protocol.producer import ProduceRequest, ProduceResponse
from kafka.record.default_records import DefaultRecordBatchBuilder

from driftnet.streams.app import faust_app
from tests.support.kafka_fault_proxy import (
    MAX_PRODUCE_VERSION,
    UNKNOWN_TOPIC_OR_PARTITION,
    FaultyBroker,
    Refusal,
    count_records,
    merge_refusals,
    parse_produce,
    refusal_response,
)
from tests.support.kafka_fault_proxy import faulty_broker as faulty_broker  # the fixture
from tests.support.kafka_helpers import read_topic, stream_settings, unique_topics

VERSIONS = range(MAX_PRODUCE_VERSION + 1)


def produce_request(version: int, *topics: tuple[str, int, int]) -> Any:
    """A kafka-python ProduceRequest: ``(topic, partition, records)`` each."""
    topic = ProduceRequest.TopicProduceData
    partition = topic.PartitionProduceData
    return ProduceRequest(
        transactional_id=None,
        acks=-1,
        timeout_ms=1500,
        topic_data=[
            topic(name=name, partition_data=[partition(index=index, records=record_set(count))])
            for name, index, count in topics
        ],
        version=version,
    )


def values_on(bootstrap: str, topic: str, expected: int) -> list[bytes]:
    """The values on ``topic``, in offset order within each partition."""
    return [r.value for r in read_topic(bootstrap, topic, expected=expected, settle_s=1.0)]


# -- the frames, against kafka-python's protocol classes ----------------------------------------


def record_set(count: int) -> bytes:
    builder = DefaultRecordBatchBuilder(
        magic=2,
        compression_type=0,
        is_transactional=False,
        producer_id=-1,
        producer_epoch=-1,
        base_sequence=-1,
        batch_size=1 << 20,
    )
    for offset in range(count):
        builder.append(offset, timestamp=None, key=None, value=b"v%d" % offset, headers=[])
    return bytes(builder.build())


@pytest.mark.parametrize("version", VERSIONS)
def test_a_produce_request_reads_back_and_loses_a_topic(version: int) -> None:
    """A request kafka-python encodes is read (header, acks, topics, record counts), written
    back byte for byte, and written without one topic as kafka-python reads it."""
    request = produce_request(version, ("t", 0, 3), ("u", 2, 2))
    request.with_header(correlation_id=41, client_id="driftnet-tests")
    frame = bytes(request.encode(header=True))

    parsed = parse_produce(frame)
    assert (parsed.version, parsed.correlation_id, parsed.acks) == (version, 41, -1)
    assert [t[0] for t in parsed.topics] == ["t", "u"]
    assert [count_records(t[1][0][1]) for t in parsed.topics] == [3, 2]
    assert parsed.with_topics(parsed.topics) == frame

    shorter = ProduceRequest.decode(parsed.with_topics(parsed.topics[1:]), version, header=True)
    assert shorter.header.correlation_id == 41
    assert [(t.name, [p.index for p in t.partition_data]) for t in shorter.topic_data] == [
        ("u", [2])
    ]


@pytest.mark.parametrize("version", VERSIONS)
def test_a_refusal_is_a_produce_response_kafka_python_reads(version: int) -> None:
    refusals = [Refusal("t", (0, 3), 10), Refusal("gone", (1,), UNKNOWN_TOPIC_OR_PARTITION)]
    response: Any = ProduceResponse.decode(
        refusal_response(version, 77, refusals), version, header=True
    )
    assert response.header.correlation_id == 77
    assert [
        (t.name, [(p.index, p.error_code, p.base_offset) for p in t.partition_responses])
        for t in response.responses
    ] == [("t", [(0, 10, -1), (3, 10, -1)]), ("gone", [(1, 3, -1)])]


@pytest.mark.parametrize("version", VERSIONS)
def test_refusals_join_the_brokers_response_which_keeps_its_fields(version: int) -> None:
    """The broker's topics, throttle time and tagged fields (v10's current leader and node
    endpoints) stay as they were; the refused topics come after them."""
    topic = ProduceResponse.TopicProduceResponse
    partition = topic.PartitionProduceResponse
    extra: dict[str, Any] = {}
    tagged: dict[str, Any] = {}
    if version >= 10:
        tagged["current_leader"] = partition.LeaderIdAndEpoch(leader_id=5, leader_epoch=9)
        extra["node_endpoints"] = [
            ProduceResponse.NodeEndpoint(node_id=5, host="h", port=9092, rack=None)
        ]
    broker: Any = ProduceResponse(
        responses=[
            topic(
                name="u",
                partition_responses=[
                    partition(
                        index=2, error_code=0, base_offset=12, log_append_time_ms=-1, **tagged
                    )
                ],
            )
        ],
        throttle_time_ms=3,
        version=version,
        **extra,
    )
    broker.with_header(correlation_id=5)
    frame = bytes(broker.encode(header=True))

    merged: Any = ProduceResponse.decode(
        merge_refusals(version, frame, [Refusal("t", (0,), 10)]), version, header=True
    )
    assert merged.header.correlation_id == 5
    assert [
        (t.name, [(p.index, p.error_code, p.base_offset) for p in t.partition_responses])
        for t in merged.responses
    ] == [("u", [(2, 0, 12)]), ("t", [(0, 10, -1)])]
    if version >= 1:
        assert merged.throttle_time_ms == 3
    if version >= 10:
        assert merged.responses[0].partition_responses[0].current_leader.leader_id == 5
        assert [n.port for n in merged.node_endpoints] == [9092]


def test_count_records_counts_each_batchs_records() -> None:
    assert count_records(None) == 0
    assert count_records(record_set(1) + record_set(4)) == 5


# -- on a broker behind the proxy ---------------------------------------------------------------


@pytest.mark.integration
def test_aiokafka_round_trips_through_the_proxy(faulty_broker: FaultyBroker) -> None:
    async def scenario() -> list[bytes]:
        producer = AIOKafkaProducer(bootstrap_servers=faulty_broker.bootstrap)
        await producer.start()
        try:
            for value in (b"a", b"b", b"c"):
                await producer.send_and_wait("rt", value, partition=0)
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(
            bootstrap_servers=faulty_broker.bootstrap, group_id=None, auto_offset_reset="earliest"
        )
        await consumer.start()
        try:
            consumer.subscribe(["rt"])
            seen: list[bytes] = []
            async with asyncio.timeout(20):
                while len(seen) < 3:
                    for records in (await consumer.getmany(timeout_ms=500)).values():
                        seen.extend(r.value for r in records)
            return seen
        finally:
            await consumer.stop()

    assert asyncio.run(scenario()) == [b"a", b"b", b"c"]
    seen = faulty_broker.proxy.requests_seen
    assert any(key == 0 for key, _ in seen), seen  # produce
    assert any(key == 1 for key, _ in seen), seen  # fetch
    assert faulty_broker.rejected_requests == 0


@pytest.mark.integration
def test_a_refused_topic_fails_until_healed_and_stores_nothing(
    faulty_broker: FaultyBroker,
) -> None:
    """After ``reject("t", 10)``, aiokafka's send to "t" raises MessageSizeTooLargeError while
    "u" still takes records; after ``heal()`` the same send succeeds; "t" holds only what was
    sent before and after."""

    async def scenario() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=faulty_broker.bootstrap)
        await producer.start()
        try:
            await producer.send_and_wait("t", b"before", partition=0)
            faulty_broker.reject("t", 10)
            with pytest.raises(MessageSizeTooLargeError):
                await producer.send_and_wait("t", b"refused", partition=0)
            await producer.send_and_wait("u", b"other", partition=0)
            faulty_broker.heal()
            await producer.send_and_wait("t", b"after", partition=0)
        finally:
            await producer.stop()

    asyncio.run(scenario())
    assert (faulty_broker.rejected_requests, faulty_broker.rejected_records) == (1, 1)
    assert faulty_broker.rejected_by_topic == {"t": 1}
    assert values_on(faulty_broker.bootstrap, "t", expected=2) == [b"before", b"after"]
    assert values_on(faulty_broker.bootstrap, "u", expected=1) == [b"other"]


@pytest.mark.integration
def test_a_retriable_refusal_is_retried_until_the_producer_gives_up(
    faulty_broker: FaultyBroker,
) -> None:
    """Code 3 (UNKNOWN_TOPIC_OR_PARTITION, a deleted topic) is retriable: aiokafka asks again
    until its request timeout, every attempt refused, then fails with that error; nothing is
    stored."""

    async def scenario() -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=faulty_broker.bootstrap, request_timeout_ms=1500
        )
        await producer.start()
        try:
            await producer.send_and_wait("gone", b"before", partition=0)
            faulty_broker.reject("gone", UNKNOWN_TOPIC_OR_PARTITION)
            with pytest.raises(UnknownTopicOrPartitionError):
                await producer.send_and_wait("gone", b"refused", partition=0)
        finally:
            await producer.stop()

    asyncio.run(scenario())
    assert faulty_broker.rejected_requests > 1
    assert faulty_broker.rejected_records == faulty_broker.rejected_requests
    assert values_on(faulty_broker.bootstrap, "gone", expected=1) == [b"before"]


@pytest.mark.integration
def test_faust_sees_the_refusal_on_its_future(faulty_broker: FaultyBroker, tmp_path: Path) -> None:
    """The worker's faust app (streams.app.faust_app): the future ``topic.send(force=True)``
    returns fails while the topic is refused, and succeeds once healed."""
    settings = stream_settings(faulty_broker.bootstrap, unique_topics("fault"), tmp_path / "data")

    async def scenario() -> None:
        app = faust_app(settings)
        topic = app.topic("t", key_serializer="raw", value_serializer="raw")
        try:
            await (await topic.send(value=b"before", partition=0, force=True))
            faulty_broker.reject("t")
            refused = await topic.send(value=b"refused", partition=0, force=True)
            with pytest.raises(MessageSizeTooLargeError):
                await refused
            faulty_broker.heal()
            await (await topic.send(value=b"after", partition=0, force=True))
        finally:
            await app.producer.stop()

    asyncio.run(scenario())
    assert faulty_broker.rejected_records == 1
    assert values_on(faulty_broker.bootstrap, "t", expected=2) == [b"before", b"after"]


@pytest.mark.integration
def test_kafka_python_sees_the_refusal_and_the_rest_of_its_request_lands(
    faulty_broker: FaultyBroker,
) -> None:
    """kafka-python (the CLI's producer; ProduceRequest v9, a flexible version) sends "t" and
    "u" in one request: "t" fails with MessageSizeTooLargeError, "u" is stored. The refusal is
    fatal to its idempotent producer (as the publisher knows): once healed, a new producer's
    send to "t" succeeds."""

    def producer() -> Any:
        return KafkaProducer(bootstrap_servers=faulty_broker.bootstrap, linger_ms=300)

    first = producer()
    try:
        for topic in ("t", "u"):  # metadata first, so that both batches wait in one linger
            first.send(topic, b"before", partition=0).get(10)
        faulty_broker.reject("t")
        refused = first.send("t", b"refused", partition=0)
        accepted = first.send("u", b"accepted", partition=0)
        with pytest.raises(KafkaPythonMessageSizeTooLargeError):
            refused.get(10)
        accepted.get(10)
    finally:
        first.close(timeout=5)
    faulty_broker.heal()
    second = producer()
    try:
        second.send("t", b"after", partition=0).get(10)
    finally:
        second.close(timeout=5)
    assert (faulty_broker.rejected_requests, faulty_broker.split_requests) == (1, 1)
    assert any(key == 0 and version >= 9 for key, version in faulty_broker.proxy.requests_seen)
    assert values_on(faulty_broker.bootstrap, "t", expected=2) == [b"before", b"after"]
    assert values_on(faulty_broker.bootstrap, "u", expected=2) == [b"before", b"accepted"]


@pytest.mark.integration
def test_answers_keep_the_order_of_the_requests_on_a_connection(
    faulty_broker: FaultyBroker,
) -> None:
    """A refused produce the proxy answers itself waits behind the requests sent before it on
    the same connection, which the broker answers."""
    faulty_broker.reject("t")
    requests: list[Any] = [
        ApiVersionsRequest(version=0),
        ApiVersionsRequest(version=0),
        produce_request(7, ("t", 0, 2)),
        ApiVersionsRequest(version=0),
    ]
    for correlation_id, request in enumerate(requests, start=1):
        request.with_header(correlation_id=correlation_id, client_id="pipelined")
    host, port = faulty_broker.bootstrap.split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"".join(bytes(r.encode(header=True, framed=True)) for r in requests))
        stream = sock.makefile("rb")
        frames = [stream.read(int.from_bytes(stream.read(4), "big")) for _ in requests]
    assert [int.from_bytes(frame[:4], "big") for frame in frames] == [1, 2, 3, 4]
    refused: Any = ProduceResponse.decode(frames[2], 7, header=True)
    assert [(t.name, [p.error_code for p in t.partition_responses]) for t in refused.responses] == [
        ("t", [10])
    ]
    assert (faulty_broker.rejected_requests, faulty_broker.rejected_records) == (1, 2)

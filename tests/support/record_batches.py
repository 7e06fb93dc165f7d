"""Kafka v2 record batches built by hand, readable or not, and produced as they are.

A real producer never writes an unreadable batch; these stand in for a buggy client, a
corrupted disk or a codec the consumer lacks. :func:`record_batch` writes the v2 header
(``RecordBatch`` in Kafka's ``DefaultRecordBatch.java``) around any records bytes, with a
correct CRC-32C unless asked otherwise, so the batch gets as far as decompression;
:func:`produce_raw` sends it in a ProduceRequest of its own, which is how a broker receives
a producer's batch (the broker assigns its base offset).
"""

from __future__ import annotations

import asyncio
import struct
import time
from collections.abc import Sequence
from typing import Any

import crc32c
from aiokafka.structs import TopicPartition

GZIP, SNAPPY, LZ4, ZSTD = 1, 2, 3, 4
CODEC_IDS = {"gzip": GZIP, "snappy": SNAPPY, "lz4": LZ4, "zstd": ZSTD}

GARBAGE = b"\x13\x37 these bytes are no compressed record set of any codec \xde\xad\xbe\xef" * 3


def record_batch(
    records: bytes,
    *,
    count: int,
    codec: int = 0,
    base_offset: int = 0,
    valid_crc: bool = True,
    timestamp_ms: int | None = None,
) -> bytes:
    """A v2 record batch claiming ``count`` records and ``codec`` (the attributes' low three
    bits), holding ``records`` as its (compressed) record set."""
    stamp = int(time.time() * 1000) if timestamp_ms is None else timestamp_ms
    # attributes, last offset delta, first and max timestamp, producer id, epoch, base
    # sequence, record count: the part the CRC covers, with the records
    body = struct.pack(">hiqqqhii", codec, count - 1, stamp, stamp, -1, -1, -1, count) + records
    crc = crc32c.crc32c(body) ^ (0 if valid_crc else 0xBADC0DE)
    head = struct.pack(">ibI", -1, 2, crc)  # partition leader epoch, magic, CRC
    return struct.pack(">qi", base_offset, len(head) + len(body)) + head + body


def good_batch(values: Sequence[bytes], *, codec: int = 0, base_offset: int = 0) -> bytes:
    """A readable batch of ``values`` compressed with ``codec``, built by aiokafka."""
    from aiokafka.record.default_records import DefaultRecordBatchBuilder

    builder = DefaultRecordBatchBuilder(
        magic=2, compression_type=codec, is_transactional=0, producer_id=-1,
        producer_epoch=-1, base_sequence=-1, batch_size=1 << 20,
    )  # fmt: skip
    stamp = int(time.time() * 1000)
    for offset, value in enumerate(values):
        builder.append(offset, timestamp=stamp, key=None, value=value, headers=[])
    built = bytes(builder.build())
    return struct.pack(">q", base_offset) + built[8:]  # the base offset is outside the CRC


async def _produce(bootstrap: str, topic: str, partition: int, batch: bytes) -> int:
    from aiokafka.client import AIOKafkaClient
    from aiokafka.protocol.produce import ProduceRequest

    client = AIOKafkaClient(bootstrap_servers=bootstrap)
    try:
        await client.bootstrap()
        leader = client.cluster.leader_for_partition(TopicPartition(topic, partition))
        if leader is None:  # a topic made after the client's first metadata
            await client.force_metadata_update()
            leader = client.cluster.leader_for_partition(TopicPartition(topic, partition))
        assert leader is not None, f"no leader for {topic}[{partition}]"
        response: Any = await client.send(
            leader, ProduceRequest(None, -1, 10_000, [(topic, [(partition, batch)])])
        )
    finally:
        await client.close()
    [(_, [(_, error_code, *_)])] = response.topics
    return int(error_code)


def produce_raw(bootstrap: str, topic: str, batch: bytes, partition: int = 0) -> int:
    """Send ``batch`` as it is to ``topic``[``partition``]; the broker's error code (0: ok)."""
    return asyncio.run(_produce(bootstrap, topic, partition, batch))


async def _codecs(bootstrap: str, topic: str, expected: int) -> set[int]:
    from aiokafka import AIOKafkaConsumer
    from aiokafka.consumer import fetcher

    seen: set[int] = set()
    patched = fetcher.PartitionRecords

    class Recording(patched):  # type: ignore[misc,valid-type]
        def __init__(self, tp: Any, records: Any, *args: Any) -> None:
            batches = []
            while records.has_next():
                batch = records.next_batch()
                seen.add(batch.compression_type)
                batches.append(batch)
            super().__init__(tp, _Replay(batches), *args)

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                                enable_auto_commit=False)  # fmt: skip
    fetcher.PartitionRecords = Recording
    try:
        await consumer.start()
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        read = 0
        for _ in range(60):
            read += sum(len(r) for r in (await consumer.getmany(timeout_ms=500)).values())
            if read >= expected:
                break
    finally:
        fetcher.PartitionRecords = patched
        await consumer.stop()
    return seen


class _Replay:
    """Batches already taken from a MemoryRecords, handed out again."""

    def __init__(self, batches: list[Any]) -> None:
        self._batches = batches

    def has_next(self) -> bool:
        return bool(self._batches)

    def next_batch(self) -> Any:
        return self._batches.pop(0)


def served_codecs(bootstrap: str, topic: str, expected: int) -> set[str]:
    """The codecs of the record batches the broker serves for ``topic`` (its first
    ``expected`` records), as aiokafka receives them."""
    names = {0: "none", **{v: k for k, v in CODEC_IDS.items()}}
    return {names[c] for c in asyncio.run(_codecs(bootstrap, topic, expected))}

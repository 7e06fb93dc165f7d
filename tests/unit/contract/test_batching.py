"""Per-cohort batching: bounded by events, bytes and linger; order kept per key; valid JSON."""

from __future__ import annotations

import orjson
from hypothesis import given
from hypothesis import strategies as st

from driftnet.contract.batching import Batch, Batcher


def _item(n: int, size: int = 10) -> bytes:
    return orjson.dumps({"n": n, "pad": "x" * size})


def test_a_batch_closes_at_max_events() -> None:
    batcher = Batcher(max_events=3, max_bytes=10_000, linger_s=1.0)
    assert batcher.add(b"a", _item(1), 0.0) == []
    assert batcher.add(b"a", _item(2), 0.0) == []
    [ready] = batcher.add(b"a", _item(3), 0.0)
    assert orjson.loads(ready.value()) == [orjson.loads(_item(n)) for n in (1, 2, 3)]
    assert batcher.next_due() is None


def test_a_batch_never_grows_past_max_bytes() -> None:
    """The item that would not fit closes the open batch and starts the next one."""
    item = _item(0, size=300)
    batcher = Batcher(max_events=100, max_bytes=1000, linger_s=1.0)
    ready = [b for i in range(10) for b in batcher.add(b"k", item, 0.0)]
    ready += batcher.drain()
    assert all(len(b.value()) <= 1000 for b in ready)
    assert sum(b.events for b in ready) == 10
    assert all(b.size == len(b.value()) for b in ready if b.events > 1)


def test_an_oversized_event_travels_alone() -> None:
    batcher = Batcher(max_events=100, max_bytes=1024, linger_s=1.0)
    big = _item(1, size=5000)
    assert batcher.add(b"k", _item(0), 0.0) == []
    first, second = batcher.add(b"k", big, 0.0)
    assert (first.events, second.events) == (1, 1)
    assert second.value() == big


def test_linger_makes_a_partial_batch_due_oldest_first() -> None:
    batcher = Batcher(max_events=100, max_bytes=10_000, linger_s=0.05)
    batcher.add(b"a", _item(1), 10.0)
    batcher.add(b"b", _item(2), 10.02)
    assert batcher.next_due() == 10.05
    assert batcher.due(10.049) == []
    [a] = batcher.due(10.06)
    assert a.key == b"a"
    [b] = batcher.due(10.08)
    assert b.key == b"b"
    assert batcher.next_due() is None


def test_one_event_is_sent_as_an_object_and_verbatim_messages_as_they_are() -> None:
    batcher = Batcher(max_events=100, max_bytes=10_000, linger_s=1.0)
    batcher.add(b"k", _item(1), 0.0)
    [only] = batcher.drain()
    assert only.value() == _item(1)
    batcher.add(b"k", _item(2), 0.0)
    pending, verbatim = batcher.add_verbatim(b"k", b"[not json", events=3)
    assert pending.value() == _item(2), "the key's open batch goes first, keeping key order"
    assert (verbatim.value(), verbatim.events) == (b"[not json", 3)


@given(
    st.lists(st.tuples(st.sampled_from([b"a", b"b", b"c", None]), st.integers(0, 400))),
    st.integers(1, 7),
    st.integers(64, 2000),
)
def test_every_event_comes_out_once_in_key_order_within_bounds(
    adds: list[tuple[bytes | None, int]], max_events: int, max_bytes: int
) -> None:
    batcher = Batcher(max_events=max_events, max_bytes=max_bytes, linger_s=0.5)
    sent: list[Batch] = []
    expected: dict[bytes | None, list[bytes]] = {}
    for n, (key, size) in enumerate(adds):
        item = _item(n, size)
        expected.setdefault(key, []).append(item)
        sent += batcher.add(key, item, now=n * 0.1)
        sent += batcher.due(now=n * 0.1)
    sent += batcher.drain()
    got: dict[bytes | None, list[bytes]] = {}
    for batch in sent:
        assert batch.events <= max_events
        assert len(batch.value()) <= max_bytes or batch.events == 1
        items = [orjson.loads(item) for item in batch.items]
        assert orjson.loads(batch.value()) == (items if batch.events > 1 else items[0])
        got.setdefault(batch.key, []).extend(batch.items)
    assert got == expected

"""FileBuffers: when harvest files are cut, and which offsets are safe to commit."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from driftnet.storage.buffers import FileBuffers, OpenFile
from driftnet.storage.schema import FAILURE_SCHEMA, row_of
from driftnet.storage.settings import RotationPolicy
from tests.support.harvest_data import failure

TOPIC = "driftnet.failures"
A = "date=2026-11-25/service=a"
B = "date=2026-11-25/service=b"
C = "date=2026-11-25/service=c"
ROW: dict[str, Any] = row_of(failure())
T0 = 1_764_072_000.0  # event time of the first row (seconds)


def policy(**fields: Any) -> RotationPolicy:
    """A policy that never rotates on its own unless a test says so."""
    values: dict[str, Any] = {
        "max_rows": 1_000,
        "max_event_span_s": 1e9,
        "idle_s": 1e9,
        "max_age_s": 1e9,
        "max_buffered_bytes": 1 << 30,
    }
    values.update(fields)
    return RotationPolicy(**values)


def add(
    buffers: FileBuffers,
    offset: int,
    folder: str = A,
    *,
    partition: int = 0,
    event_time: float = T0,
    size: int = 10,
    now: float = 0.0,
) -> None:
    """Add one row read at ``offset`` of ``partition``."""
    buffers.add(TOPIC, partition, offset, folder, event_time, ROW, size, now)


def test_rotates_on_max_rows_and_names_file_by_first_offset() -> None:
    """A file is due at max_rows rows and is named by the 19-digit offset of its first row."""
    buffers = FileBuffers(policy(max_rows=3))
    for offset in (120, 121):
        add(buffers, offset)
    assert buffers.take_due(0.0) == []
    add(buffers, 122)
    [due] = buffers.take_due(0.0)
    assert due.why == "rows"
    assert due.rows == 3
    assert due.name == f"{TOPIC}+0+0000000000000000120.parquet"
    assert due.relative_path == f"{A}/{TOPIC}+0+0000000000000000120.parquet"
    assert len(due.name.split("+")[2].removesuffix(".parquet")) == 19
    assert buffers.open_files == 0
    add(buffers, 123)
    assert buffers.open_files == 1
    assert buffers.committable() == {(TOPIC, 0): 120}


def test_due_file_table_has_the_explicit_schema() -> None:
    """A due file's rows come out as one table of FAILURE_SCHEMA."""
    buffers = FileBuffers(policy(max_rows=2))
    add(buffers, 0)
    add(buffers, 1)
    [due] = buffers.take_due(0.0)
    table = due.table()
    assert table.schema.equals(FAILURE_SCHEMA)
    assert table.num_rows == 2


def test_rotates_when_event_time_span_would_be_exceeded() -> None:
    """A row that would stretch a file past max_event_span_s starts a new file."""
    buffers = FileBuffers(policy(max_event_span_s=60.0))
    add(buffers, 0, event_time=T0)
    add(buffers, 1, event_time=T0 + 60.0)  # exactly the span: same file
    add(buffers, 2, event_time=T0 - 0.5)  # earlier than the first: 60.5 s span
    [due] = buffers.take_due(0.0)
    assert (due.why, due.rows, due.start_offset) == ("event_span", 2, 0)
    assert buffers.open_files == 1
    assert buffers.committable() == {(TOPIC, 0): 0}
    buffers.written(due)
    assert buffers.committable() == {(TOPIC, 0): 2}


def test_idle_file_is_due_without_a_new_record() -> None:
    """A file nobody added to for idle_s is due on the clock alone."""
    buffers = FileBuffers(policy(idle_s=10.0, max_age_s=1000.0))
    add(buffers, 0, now=100.0)
    add(buffers, 1, now=105.0)
    assert buffers.take_due(114.9) == []
    [due] = buffers.take_due(115.0)
    assert (due.why, due.rows) == ("idle", 2)


def test_trickle_is_written_at_max_age() -> None:
    """A file that keeps getting a row now and then is written max_age_s after it opened."""
    buffers = FileBuffers(policy(idle_s=10.0, max_age_s=30.0))
    now = 0.0
    for offset in range(6):  # a row every 5 s: never idle
        add(buffers, offset, now=now)
        assert buffers.take_due(now) == []
        now += 5.0
    add(buffers, 6, now=now)  # now == 30
    [due] = buffers.take_due(now)
    assert (due.why, due.rows, due.start_offset) == ("age", 7, 0)


def test_memory_bound_writes_largest_files_first() -> None:
    """Past max_buffered_bytes the largest open files are cut, and what stays is under it."""
    buffers = FileBuffers(policy(max_buffered_bytes=1024))
    add(buffers, 0, A, size=600)
    add(buffers, 1, B, size=300)
    add(buffers, 2, C, size=100)
    assert buffers.take_due(0.0) == []
    assert buffers.buffered_bytes == 1000
    add(buffers, 3, C, size=100)  # 1100 > 1024
    due = buffers.take_due(0.0)
    assert [(f.folder, f.why) for f in due] == [(A, "memory")]
    assert buffers.buffered_bytes == 500
    assert buffers.buffered_bytes <= 1024
    assert buffers.pending_bytes == 600


def test_memory_bound_holds_after_every_add() -> None:
    """However rows spread over folders, buffered bytes never stay above the bound."""
    buffers = FileBuffers(policy(max_buffered_bytes=2048))
    folders = [f"date=2026-11-25/service=s{i}" for i in range(7)]
    for offset in range(300):
        add(buffers, offset, folders[offset * 5 % 7], size=37 + offset % 11)
        assert buffers.buffered_bytes <= 2048
    assert all(f.why == "memory" for f in buffers.take_due(0.0))


def test_committable_is_smallest_first_offset_of_open_and_pending_files() -> None:
    """Until a file is durable its first offset holds the commit; with none, the next offset."""
    buffers = FileBuffers(policy(max_rows=2))
    assert buffers.committable() == {}
    add(buffers, 10)
    assert buffers.committable() == {(TOPIC, 0): 10}
    add(buffers, 11)  # file [10, 11] due
    add(buffers, 12)  # new open file
    [due] = buffers.take_due(0.0)  # pending
    assert buffers.committable() == {(TOPIC, 0): 10}
    buffers.written(due)
    assert buffers.committable() == {(TOPIC, 0): 12}
    [last] = buffers.take_all()
    assert last.why == "stop"
    assert buffers.committable() == {(TOPIC, 0): 12}
    buffers.written(last)
    assert buffers.committable() == {(TOPIC, 0): 13}


def test_skipped_offsets_advance_the_commit() -> None:
    """A read offset that needs no row (a dead letter) is committable once nothing holds it."""
    buffers = FileBuffers(policy())
    buffers.skip(TOPIC, 3, 41)
    assert buffers.committable() == {(TOPIC, 3): 42}


def test_two_folders_of_one_partition_hold_the_commit_at_the_older_file() -> None:
    """Rows of one partition in two folders: the commit waits for the older file."""
    buffers = FileBuffers(policy(max_rows=2))
    add(buffers, 0, A)
    add(buffers, 1, B)
    add(buffers, 2, B)  # B [1, 2] due
    [b_file] = buffers.take_due(0.0)
    assert b_file.folder == B
    buffers.written(b_file)
    assert buffers.committable() == {(TOPIC, 0): 0}  # A still holds offset 0
    [a_file] = buffers.take_all()
    buffers.written(a_file)
    assert buffers.committable() == {(TOPIC, 0): 3}


def test_partitions_are_committed_independently() -> None:
    """One partition's open file does not hold back another partition's commit."""
    buffers = FileBuffers(policy(max_rows=1))
    add(buffers, 5, partition=0)
    add(buffers, 9, partition=1)
    for due in buffers.take_due(0.0):
        if due.partition == 1:
            buffers.written(due)
    assert buffers.committable() == {(TOPIC, 0): 5, (TOPIC, 1): 10}


def test_forget_drops_a_revoked_partition() -> None:
    """forget() drops the open and pending files and the position of revoked partitions only."""
    buffers = FileBuffers(policy(max_rows=2))
    add(buffers, 0, A, partition=0)
    add(buffers, 1, A, partition=0)  # due
    assert len(buffers.take_due(0.0)) == 1  # pending (its write failed, say)
    add(buffers, 2, B, partition=0)  # open
    add(buffers, 7, A, partition=1)  # open, other partition
    dropped = buffers.forget([(TOPIC, 0)])
    assert dropped >= 1
    assert buffers.committable() == {(TOPIC, 1): 7}
    assert buffers.open_files == 1
    assert buffers.pending_bytes == 0
    assert [f.partition for f in buffers.take_all()] == [1]


def test_forget_counts_every_dropped_row() -> None:
    """forget() returns how many rows were dropped: pending rows count as well as open ones."""
    buffers = FileBuffers(policy(max_rows=2))
    add(buffers, 0, A)
    add(buffers, 1, A)
    assert len(buffers.take_due(0.0)) == 1  # 2 rows pending (not durable)
    add(buffers, 2, B)  # 1 row open
    assert buffers.forget([(TOPIC, 0)]) == 3, "pending rows dropped by forget() are not counted"


def test_forget_drops_files_rotated_but_not_yet_taken() -> None:
    """A file cut by max_rows but not yet taken is dropped too: nothing of the partition is left."""
    buffers = FileBuffers(policy(max_rows=2))
    add(buffers, 0, A)
    add(buffers, 1, A)  # rotated into the due list, take_due() not called yet
    buffers.forget([(TOPIC, 0)])
    assert buffers.committable() == {}, "forget() left the revoked partition's due file behind"
    assert buffers.take_due(0.0) == [], "take_due() returned a file of a revoked partition"


def test_written_after_forget_is_harmless() -> None:
    """A file that finishes writing after its partition was revoked releases nothing else and
    brings nothing back."""
    buffers = FileBuffers(policy(max_rows=1))
    add(buffers, 4, partition=0)
    add(buffers, 8, partition=1)
    due = {f.partition: f for f in buffers.take_due(0.0)}
    buffers.forget([(TOPIC, 0)])
    buffers.written(due[0])
    assert buffers.committable() == {(TOPIC, 1): 8}
    buffers.written(due[1])
    assert buffers.committable() == {(TOPIC, 1): 9}


def test_next_due_in() -> None:
    """Seconds until the first open file is due on the clock (idle or age), never negative."""
    buffers = FileBuffers(policy(idle_s=10.0, max_age_s=60.0))
    assert buffers.next_due_in(0.0) is None
    add(buffers, 0, A, now=0.0)
    add(buffers, 1, A, now=55.0)  # idle at 65, old at 60
    assert buffers.next_due_in(56.0) == 4.0
    add(buffers, 2, B, now=57.0)  # idle at 67
    assert buffers.next_due_in(57.0) == 3.0
    assert buffers.next_due_in(100.0) == 0.0
    buffers.take_due(100.0)
    assert buffers.next_due_in(100.0) is None


# -- the commit never passes a row that is not durable ----------------------------------------

FOLDERS = (A, B, C)
Step = tuple[str, int, int]
steps = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.integers(0, 1), st.integers(0, 2)),  # partition, folder
        st.tuples(st.just("skip"), st.integers(0, 1), st.just(0)),
        st.tuples(st.just("tick"), st.integers(0, 30), st.just(0)),  # seconds, then take_due
        st.tuples(st.just("write"), st.integers(0, 20), st.just(0)),  # which pending file
        st.tuples(st.just("all"), st.just(0), st.just(0)),
    ),
    max_size=80,
)


@settings(max_examples=300, deadline=None)
@given(steps=steps, max_rows=st.integers(1, 4), span=st.sampled_from([5.0, 1e9]))
def test_every_offset_below_committable_is_in_a_written_file(
    steps: list[Step], max_rows: int, span: float
) -> None:
    """For any adds and take_due/written interleaving, every offset below committable() is
    in a file that was written."""
    buffers = FileBuffers(
        RotationPolicy(
            max_rows=max_rows,
            max_event_span_s=span,
            idle_s=7.0,
            max_age_s=19.0,
            max_buffered_bytes=1024,
        )
    )
    next_offset = {0: 0, 1: 0}
    where: dict[tuple[int, int], int] = {}  # (partition, offset) -> file id
    added: dict[tuple[int, str], list[int]] = {}  # (partition, folder) -> offsets, in order
    files: dict[int, OpenFile] = {}
    durable: set[int] = set()
    skipped: set[tuple[int, int]] = set()
    pending: list[OpenFile] = []
    now = 0.0

    def track(due: list[OpenFile]) -> None:
        for open_file in due:
            files[id(open_file)] = open_file
            pending.append(open_file)
            # a file holds the next `rows` offsets of its partition and folder from its first
            run = added[(open_file.partition, open_file.folder)]
            held = [o for o in run if o >= open_file.start_offset][: open_file.rows]
            assert held[0] == open_file.start_offset
            assert held[-1] == open_file.last_offset
            for offset in held:
                assert (open_file.partition, offset) not in where, "offset in two files"
                where[(open_file.partition, offset)] = id(open_file)

    for action, a, b in steps:
        if action == "add":
            offset = next_offset[a]
            next_offset[a] += 1
            event_time = T0 + (offset * 3 % 11)
            buffers.add(TOPIC, a, offset, FOLDERS[b], event_time, ROW, 100, now)
            added.setdefault((a, FOLDERS[b]), []).append(offset)
        elif action == "skip":
            offset = next_offset[a]
            next_offset[a] += 1
            buffers.skip(TOPIC, a, offset)
            skipped.add((a, offset))
        elif action == "tick":
            now += a
            track(buffers.take_due(now))
        elif action == "write" and pending:
            open_file = pending.pop(a % len(pending))
            buffers.written(open_file)
            durable.add(id(open_file))
        elif action == "all":
            track(buffers.take_all())
        for (_, partition), committable in buffers.committable().items():
            for offset in range(committable):
                if (partition, offset) in skipped:
                    continue
                holder = where.get((partition, offset))
                assert holder is not None, f"offset {offset} below {committable} is in no file"
                assert holder in durable, (
                    f"offset {offset} of partition {partition} is below committable "
                    f"{committable} but its file was not written"
                )


def test_a_dead_letter_not_yet_delivered_holds_back_the_commit() -> None:
    buffers = FileBuffers(policy(max_rows=1))
    add(buffers, 10)
    buffers.hold(TOPIC, 0, 11)  # offset 11 is a dead letter in flight
    add(buffers, 12)
    for open_file in buffers.take_due(0.0):
        buffers.written(open_file)
    assert buffers.committable() == {(TOPIC, 0): 11}  # rows 10 and 12 are durable, 11 is not
    buffers.release(TOPIC, 0, 11)
    assert buffers.committable() == {(TOPIC, 0): 13}
    buffers.hold(TOPIC, 0, 13)
    assert buffers.forget([(TOPIC, 0)]) == 0
    assert buffers.committable() == {}

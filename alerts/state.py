"""The alerting owner's whole state as records of a compacted topic: what a worker that takes
the signals partition over reads back, so it continues where the last owner stopped. Pure:
the alert stage sends the records and reads them back.

One record per thing that changes on its own, keyed (a JSON array) like the alert groups:

- ``["scope", scope]``: the :class:`~driftnet.alerts.lifecycle.AlertBook` of one cohort,
  worker or the watchdog -- its last mark and its alerts with their counts;
- ``["group", receiver, group key]``: a :class:`~driftnet.alerts.pipeline.Group` -- its alerts,
  what it last told the receiver and when;
- ``["thread", receiver, group key]``: where the group's notifications go on (its Slack
  message): the notification log, written when a notification is delivered;
- ``["outbox", receiver, group key, seq]``: a notification waiting to be delivered;
- ``["signals"]``: the offset of the last signal whose changes are recorded, so a signal read
  again after a takeover (its offset not yet committed) changes nothing.

What is gone -- an alert resolved and told, a group done, a notification delivered or
dead-lettered -- is a **tombstone** (a record with no value): the state stays as small as what
is live. A compacting broker keeps only the newest record of each key; :func:`newest` reads
a log that was never compacted the same way.

>>> newest([(b'["a"]', b"1"), (b'["b"]', b"2"), (b'["a"]', None)])
{b'["b"]': b'2'}
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

import orjson

from driftnet.alerts.config import AlertsSettings
from driftnet.alerts.lifecycle import AlertBook
from driftnet.alerts.notify.base import Thread
from driftnet.alerts.outbox import Outbox, Pending
from driftnet.alerts.pipeline import Pipeline

Records = dict[bytes, bytes]
"""Key -> value of every live record."""
Change = tuple[bytes, bytes | None]
"""A record to write: None is a tombstone."""


def key(*parts: str | int) -> bytes:
    return orjson.dumps(list(parts))


def newest(records: Iterable[tuple[bytes, bytes | None]]) -> Records:
    """The live records of a log read in order: the newest value of each key, a tombstone
    (None or empty) deleting it."""
    live: Records = {}
    for name, value in records:
        if value:
            live[name] = value
        else:
            live.pop(name, None)
    return live


class AlertState:
    """Book, pipeline groups, outbox, threads and the last signal offset applied."""

    def __init__(self, settings: AlertsSettings) -> None:
        self.settings = settings
        self.book = AlertBook(settings)
        self.pipeline = Pipeline(settings)
        self.outbox = Outbox()
        self.threads: dict[tuple[str, str], Thread] = {}
        """Per (receiver, group key): where the group's message is (a Slack channel and ts)."""
        self.signals_offset = -1
        """The last offset of the signals partition whose changes are in this state."""

    def records(self) -> Records:
        """Every live record (see the module's docstring)."""
        out: Records = {}
        for scope, data in self.book.scopes().items():
            out[key("scope", scope)] = orjson.dumps(data)
        for (receiver, group_key), data in self.pipeline.group_states().items():
            out[key("group", receiver, group_key)] = orjson.dumps(data)
        for (receiver, group_key), thread in self.threads.items():
            out[key("thread", receiver, group_key)] = orjson.dumps(thread)
        for pending in self.outbox:
            name = key("outbox", pending.receiver, pending.notification.group_key, pending.seq)
            out[name] = pending.model_dump_json().encode()
        if self.signals_offset >= 0:
            out[key("signals")] = orjson.dumps({"offset": self.signals_offset})
        return out

    @classmethod
    def restore(cls, settings: AlertsSettings, records: Mapping[bytes, bytes]) -> AlertState:
        """The state the live records describe (the output of :meth:`records`, read back)."""
        state = cls(settings)
        pending: list[Pending] = []
        for name, value in sorted(records.items()):
            kind, *parts = orjson.loads(name)
            data: Any = orjson.loads(value)
            if kind == "scope":
                state.book.restore_scope(str(parts[0]), data)
            elif kind == "group":
                state.pipeline.restore_group(data)
            elif kind == "thread":
                state.threads[(str(parts[0]), str(parts[1]))] = data
            elif kind == "outbox":
                pending.append(Pending.model_validate(data))
            elif kind == "signals":
                state.signals_offset = int(data["offset"])
        state.outbox.load(pending)
        return state

    def summary(self) -> str:
        return (
            f"{len(self.book.alerts)} alerts, {len(self.pipeline.groups)} groups, "
            f"{len(self.outbox)} notifications to deliver"
        )


class Journal:
    """What the topic holds (as far as this owner knows): the changes to bring it to a state."""

    def __init__(self, written: Records | None = None) -> None:
        self.written: Records = dict(written or {})

    def changes(self, live: Records) -> list[Change]:
        """The records to write for the topic to hold ``live``: new or changed values, and a
        tombstone for each key no longer live."""
        out: list[Change] = [(k, v) for k, v in live.items() if self.written.get(k) != v]
        out += [(k, None) for k in self.written if k not in live]
        return out

    def commit(self, changes: Iterable[Change]) -> None:
        """The broker has acknowledged ``changes``."""
        for name, value in changes:
            if value is None:
                self.written.pop(name, None)
            else:
                self.written[name] = value


class StateStore(Protocol):
    """Where the state's records live: the compacted topic in the worker
    (:class:`driftnet.streams.alerting.state_topic.KafkaStateStore`), a list in tests."""

    async def write(self, changes: list[Change]) -> None:
        """Write the records; return once every one is durable, raise when one is not."""

    async def read(self) -> tuple[Records, int | None]:
        """Every live record, and the end offset of the signals partition (None: unknown)."""


class MemoryStore:
    """A :class:`StateStore` in a list, as a broker that never compacts keeps it: two alert
    stages given the same store are two owners of the signals partition, one after the other."""

    def __init__(self) -> None:
        self.log: list[Change] = []
        self.signals_end: int | None = None
        self.failing_writes = 0
        """Writes that fail (``ConnectionError``) before the next one succeeds."""

    async def write(self, changes: list[Change]) -> None:
        if self.failing_writes:
            self.failing_writes -= 1
            raise ConnectionError("the broker is unavailable")
        self.log.extend(changes)

    async def read(self) -> tuple[Records, int | None]:
        return newest(self.log), self.signals_end

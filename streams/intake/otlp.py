"""The OTLP ingest in the worker: the ``otlp`` agent on the spans topic and its timeout timer."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from driftnet.contract.dlq import dead_letter_headers
from driftnet.contract.events import Lineage
from driftnet.ingest.spans_to_events import OtlpIngest, Step
from driftnet.streams.clients.confirmed_sends import ConfirmedSends, settle
from driftnet.streams.intake.unreadable import unreadable_batch
from driftnet.streams.ops.counters import Counters
from driftnet.streams.settings import Settings
from driftnet.streams.stage import RECORD_MAX_BYTES, Topics

OTLP_TICK_S = 0.5
"""How often traces that timed out in the OTLP buffer are handed on."""


def _acking(events: list[Any]) -> Callable[[], None]:
    def ack() -> None:
        for event in events:
            event.ack()

    return ack


class OtlpStage:
    """Joins each trace's spans and sends one v1 event per LLM-call span to the events topic."""

    def __init__(self, settings: Settings, counters: Counters) -> None:
        self.settings = settings
        self.counters = counters
        self.ingest: OtlpIngest[Any] = OtlpIngest(
            settings.otlp,
            payload_cap=settings.decode.payload_cap_bytes,
            event_max_bytes=RECORD_MAX_BYTES,
            batch_max_events=min(
                settings.publisher.batch_max_events, settings.decode.max_batch_events
            ),
            batch_max_bytes=min(settings.publisher.batch_max_bytes, RECORD_MAX_BYTES),
        )

    def attach(self, app: Any, topics: Topics) -> None:
        """The ``otlp`` agent on the OTLP spans topic and the timer that hands on timed-out traces.

        Every OTLP message is held (faust's acks off) until the ingest releases it: once every
        trace it fed has been delivered to the events topic
        (:class:`~driftnet.streams.clients.confirmed_sends.ConfirmedSends`), so what a killed
        worker had buffered, or the broker refused, is read again, never lost.
        """
        settings, counters, ingest = self.settings, self.counters, self.ingest
        events, dlq = topics["events"], topics["dlq"]
        sends = ConfirmedSends("otlp", give_up_after_s=settings.worker.send_give_up_s)

        async def hand_on(step: Step[Any]) -> bool:
            now = datetime.now(UTC)
            for key, value, _ in step.batches:
                await sends.send(events, key=key, value=value)
            for dead, source_key in step.dead_letters:
                await sends.send(dlq, key=source_key, value=dead.payload,
                                 headers=dead_letter_headers(dead, now))  # fmt: skip
            sends.seal(_acking(step.acks))
            return await settle(app, sends)

        @app.agent(topics["otlp_spans"], name="otlp")  # type: ignore[untyped-decorator]
        async def otlp_agent(stream: Any) -> None:
            async for event in stream.noack().events():
                message = event.message
                skipped = unreadable_batch(message.headers)
                if skipped is not None:  # dead-lettered and acked like a message that is no OTLP
                    dead = counters.unreadable(skipped)
                    await sends.send(dlq, key=None, value=b"",
                                     headers=dead_letter_headers(dead, datetime.now(UTC)))  # fmt: skip
                    sends.seal(event.ack)
                    if not await settle(app, sends):
                        return
                    continue
                lineage = Lineage(message.topic, message.partition, message.offset)
                step = ingest.add(event, message.value, message.key, lineage, time.monotonic())
                if not await hand_on(step):
                    return

        @app.timer(min(OTLP_TICK_S, settings.otlp.trace_timeout_s / 2))  # type: ignore[untyped-decorator]
        async def otlp_tick() -> None:
            from faust.exceptions import NotReady

            try:
                await hand_on(ingest.due(time.monotonic()))
            except NotReady:
                # The producer is gone (the worker stops): the traces not sent were not acked,
                # so the next worker reads their messages again.
                if not app.should_stop:
                    raise

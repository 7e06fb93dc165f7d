"""The triage agent on the events topic: failure records and dead letters out, detection fed."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from driftnet.contract.dlq import dead_letter_headers
from driftnet.contract.events import Lineage
from driftnet.harvest.triage import Triage, Triaged
from driftnet.streams.clients.confirmed_sends import AckWhenAll, ConfirmedSends, settle
from driftnet.streams.intake.unreadable import unreadable_batch
from driftnet.streams.ops.counters import Counters
from driftnet.streams.settings import Settings
from driftnet.streams.stage import RECORD_MAX_BYTES, Topics

if TYPE_CHECKING:
    from driftnet.streams.detection.stage import Detection


SETTLE_INTERVAL_S = 0.25
"""How often the acks of delivered messages are run when no message comes to run them."""


class TriageStage:
    """The ``triage`` agent: each message of the events topic through the
    :class:`~driftnet.harvest.triage.Triage`, its failure records to the failures topic, its
    dead letters to the DLQ, its valid events to detection's map side (when it runs)."""

    def __init__(self, settings: Settings, counters: Counters, detection: Detection | None) -> None:
        self.counters = counters
        self.detection = detection
        self.give_up_after_s = settings.worker.send_give_up_s
        self.sends: ConfirmedSends | None = None
        self.triage = Triage(
            settings.rules,
            payload_cap=settings.decode.payload_cap_bytes,
            record_max_bytes=RECORD_MAX_BYTES,
            redaction=settings.harvest.redaction,
            keep_events=settings.worker.detect,
            max_future_s=settings.decode.max_future_s,
            max_past_s=settings.decode.max_past_s,
            max_batch=settings.decode.max_batch_events,
        )

    def attach(self, app: Any, topics: Topics) -> None:
        events, dlq, failures = topics["events"], topics["dlq"], topics["failures"]
        triage, counters, detection = self.triage, self.counters, self.detection

        sends = ConfirmedSends("triage", give_up_after_s=self.give_up_after_s)
        self.sends = sends

        @app.agent(events, name="triage")  # type: ignore[untyped-decorator]
        async def triage_agent(stream: Any) -> None:
            # Acks off: a message is acked once its failure records and dead letters are
            # delivered and, with detection on, once the windows it fed are done.
            async for event in stream.noack().events():
                message = event.message
                now = datetime.now(UTC)
                skipped = unreadable_batch(message.headers)
                if skipped is None:
                    lineage = Lineage(message.topic, message.partition, message.offset)
                    triaged = triage(message.value, lineage, now)
                else:
                    triaged = Triaged(0, [], [counters.unreadable(skipped)])
                counters.total.add(triaged)
                for record, value in zip(triaged.failures, triaged.encoded, strict=True):
                    await sends.send(failures, key=record.record_id.encode(), value=value)
                for dead in triaged.dead_letters:
                    await sends.send(
                        dlq,
                        key=message.key,
                        value=dead.payload,
                        headers=dead_letter_headers(dead, now),
                    )
                if detection is not None:
                    held = AckWhenAll(event, 2)
                    detection.observe(event, triaged, held)
                    sends.seal(held.ack)
                else:
                    sends.seal(event.ack)
                if not await settle(app, sends):
                    return

        @app.timer(SETTLE_INTERVAL_S)  # type: ignore[untyped-decorator]
        async def triage_settle() -> None:
            await settle(app, sends)

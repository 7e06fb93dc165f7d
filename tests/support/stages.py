"""Both aggregation stages run in one process without Kafka: simulated events in, what the merge
stage judged out (for tests of whole scenarios, seconds instead of a broker run)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import orjson

from driftnet.contract.events import Lineage
from driftnet.detectors.config import DetectorsConfig
from driftnet.harvest.triage import Triage
from driftnet.streams.detection.aggregate_messages import read_aggregate
from driftnet.streams.detection.map_stage import MapStage
from driftnet.streams.detection.merge_stage import Judged, MergeStage, with_score_directions
from driftnet.streams.settings import Settings

PARTITIONS = 2


def run_stages(
    events: Iterable[dict[str, Any]], config: DetectorsConfig, settings: Settings | None = None
) -> list[Judged]:
    """Every closed window's judgement for ``events`` (in event-time order, each through the
    failure rules as in the worker), spread over two source partitions, with the wall clock
    following event time."""
    settings = settings or Settings()
    triage = Triage(settings.rules, keep_events=True)
    map_stage = MapStage(config, "events")
    merge = MergeStage(with_score_directions(config, settings.rules), "events")
    judged: list[Judged] = []
    now = 0.0

    def flush(at: float) -> None:
        for _, _, value, partition in map_stage.due(at, 1).messages:
            merge.offer(partition or 0, read_aggregate(value), at)
        judged.extend(merge.close_due(at, datetime.fromtimestamp(at, UTC)))

    for offset, document in enumerate(events):
        raw = orjson.dumps(document)
        partition = offset % PARTITIONS
        triaged = triage(raw, Lineage("events", partition, offset), datetime.now(UTC))
        for event, reasons in triaged.judged:
            now = event.timestamp.timestamp()
            map_stage.observe(partition, offset, event, reasons, raw, now)
        if offset % 500 == 0:
            flush(now)
    settle = now + config.windows.size_s + config.windows.allowed_lateness_s
    flush(settle + config.windows.idle_timeout_s + 1)
    flush(settle + 2 * config.windows.size_s + config.windows.idle_timeout_s + 1)
    return judged

"""The demo's plan: its worker's settings let windows close as the story plays, and the
story says which alerts each of its scenes causes."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from kafka.partitioner.default import murmur2

from driftnet.contract.events import Cohort
from driftnet.sandbox import demo_plan
from driftnet.sandbox.simulation import Simulator
from driftnet.streams.settings import load_settings

START = datetime(2026, 12, 2, 20, 52, tzinfo=UTC)


def test_every_events_partition_carries_a_cohort_from_the_first_window_to_the_last(
    tmp_path: Path,
) -> None:
    """Each partition of the demo's events topic (as the publisher's murmur2 partitioner
    places the story's cohorts) has events in the first and the last minute of the story: an
    empty partition, or one whose cohorts stop (a rolled-back canary), holds every window
    open for the 30 s idle timeout, and the alerts then came all at once, after the story
    had moved on."""
    config = tmp_path / "driftnet.toml"
    config.write_text(demo_plan.worker_config("127.0.0.1:9092", tmp_path, slack_channel=None))
    settings = load_settings(config)
    partitions = settings.topics.events.partitions
    assert partitions == demo_plan.EVENTS_PARTITIONS
    assert settings.detectors.windows.idle_timeout_s == 30.0  # the production default stays
    simulator = Simulator(demo_plan.SCENARIO, START, demo_plan.DURATION_S, seed=0)
    first: dict[int, float] = {}
    last: dict[int, float] = {}
    for event in simulator.events(12_000):
        key = Cohort.of(event).key.encode()
        partition = (murmur2(key) & 0x7FFFFFFF) % partitions
        moment = datetime.fromisoformat(event["timestamp"]).timestamp() - START.timestamp()
        first[partition] = min(first.get(partition, moment), moment)
        last[partition] = max(last.get(partition, moment), moment)
    assert sorted(first) == list(range(partitions))
    assert all(at < 60 for at in first.values()), first
    assert all(at > demo_plan.DURATION_S - 60 for at in last.values()), last


def test_each_scene_names_the_alerts_it_causes() -> None:
    """The slowdown fires support-chat's alert; the rollback resolves it while the next
    incident fires search-summarizer's; the healthy start and invoice-extractor cause none."""
    story = demo_plan.phases()
    assert [(p.fires, p.resolves) for p in story] == [
        ((), ()),
        (("support-chat",), ()),
        (("search-summarizer",), ("support-chat",)),
    ]
    assert [p.at for p in story] == sorted(p.at for p in story)

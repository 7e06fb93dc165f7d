"""``driftnet topics create`` on a real broker: idempotent, and shaped by settings."""

from __future__ import annotations

import pytest
from kafka.admin import ConfigResource, ConfigResourceType

from driftnet.streams.clients.kafka_config import admin_client
from driftnet.streams.clients.topics import TopicsError, create_topics
from driftnet.streams.settings import KafkaSettings, TopicSettings
from tests.support.kafka_helpers import unique_topics

pytestmark = pytest.mark.integration


def _shaped(topics: TopicSettings, partitions: int, hours: float) -> TopicSettings:
    events = topics.events.model_copy(update={"partitions": partitions, "retention_hours": hours})
    return topics.model_copy(update={"events": events})


def test_create_twice_creates_once_with_partitions_and_retention(kafka_bootstrap: str) -> None:
    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap)
    topics = _shaped(unique_topics("topics"), partitions=3, hours=5)

    first = create_topics(kafka, topics.by_role())
    second = create_topics(kafka, topics.by_role())

    assert [(o.role, o.status) for o in first] == [
        ("events", "created"),
        ("dlq", "created"),
        ("failures", "created"),
        ("aggregates", "created"),
        ("findings", "created"),
        ("verdicts", "created"),
        ("signals", "created"),
        ("alerts", "created"),
        ("silences", "created"),
        ("otlp_spans", "created"),
        ("alerts_dlq", "created"),
        ("detector_state", "created"),
        ("alerts_state", "created"),
    ]
    assert [o.status for o in second] == ["exists"] * 13
    assert [o.partitions for o in second] == [3, 1, 2, 4, 1, 1, 1, 1, 1, 4, 1, 4, 1]
    assert second[0].line.startswith(f"exists   {topics.events.name}")
    assert "compacted" in first[-1].line
    admin = admin_client(kafka)
    try:
        described = admin.describe_configs(
            [
                ConfigResource(ConfigResourceType.TOPIC, topics.events.name),
                ConfigResource(ConfigResourceType.TOPIC, topics.detector_state.name),
                ConfigResource(ConfigResourceType.TOPIC, topics.alerts_state.name),
            ],
            config_filter="all",
        )
    finally:
        admin.close()
    retention = described["topic"][topics.events.name]["retention.ms"]["value"]
    assert retention == str(5 * 3_600_000)
    for compacted in (topics.detector_state.name, topics.alerts_state.name):
        assert described["topic"][compacted]["cleanup.policy"]["value"] == "compact"


def test_a_partition_count_that_differs_is_reported_and_left_alone(kafka_bootstrap: str) -> None:
    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap)
    topics = unique_topics("mismatch")
    create_topics(kafka, topics.by_role())
    outcomes = create_topics(kafka, _shaped(topics, partitions=9, hours=72).by_role())
    assert outcomes[0].status == "exists"
    assert outcomes[0].line.endswith("has 4 partitions, settings say 9: left as is")


def test_unreachable_kafka_is_one_line() -> None:
    from driftnet.sandbox.broker import free_port

    kafka = KafkaSettings(bootstrap_servers=f"127.0.0.1:{free_port()}")
    with pytest.raises(TopicsError, match=r"^cannot reach Kafka at 127\.0\.0\.1:\d+ ") as caught:
        create_topics(kafka, unique_topics("x").by_role(), timeout_s=1.0)
    assert "\n" not in str(caught.value)

"""/health's verdict from what an app knows about itself: healthy, or 503 with every reason."""

from __future__ import annotations

from dataclasses import replace

import pytest

from driftnet.streams.ops.health import Health, HealthFacts, evaluate

WORKING = HealthFacts(
    consumer_assigned=True, consumer_state="running", sink_assigned=True, sink_running=True
)


def test_a_working_worker_is_healthy() -> None:
    """Consumer running and assigned, sink joined and writing: 200 with no reasons."""
    health = evaluate(WORKING)
    assert health == Health(status="ok", reasons=[])
    assert health.http_status == 200


def test_parts_an_app_does_not_run_are_not_judged() -> None:
    """The sink alone has no events consumer, a worker without the sink no sink: None is
    neither healthy nor unhealthy."""
    assert evaluate(HealthFacts(sink_assigned=True, sink_running=True)).ok
    assert evaluate(HealthFacts(consumer_assigned=True, consumer_state="running")).ok


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"consumer_assigned": False}, "events consumer not yet assigned: joining its consumer group"),
        ({"consumer_state": "init"}, "events consumer not yet assigned: joining its consumer group"),
        ({"consumer_state": "crashed"}, "events consumer is not running (state crashed)"),
        ({"consumer_state": "stopping"}, "events consumer is not running (state stopping)"),
        ({"sink_assigned": False}, "harvest sink not yet assigned: joining its consumer group"),
        ({"sink_running": False}, "harvest sink stopped"),
        ({"sink_failing": "OSError: [Errno 28] No space left on device"},
         "harvest sink failing to write: OSError: [Errno 28] No space left on device"),
    ],
)  # fmt: skip
def test_each_problem_is_a_503_with_its_reason(change: dict[str, object], reason: str) -> None:
    """One thing wrong: unhealthy, 503, and the one sentence saying what."""
    health = evaluate(replace(WORKING, **change))  # type: ignore[arg-type]
    assert health.http_status == 503
    assert health.model_dump() == {"status": "unhealthy", "reasons": [reason]}


def test_every_problem_is_listed_and_a_stopped_part_is_not_also_unassigned() -> None:
    """Several problems give every reason, in a stable order; a stopped consumer or sink is
    reported as stopped only (its assignment no longer matters)."""
    facts = HealthFacts(
        consumer_assigned=False,
        consumer_state="crashed",
        sink_assigned=False,
        sink_running=False,
        sink_failing="OSError: bucket gone",
    )
    assert evaluate(facts).reasons == [
        "events consumer is not running (state crashed)",
        "harvest sink stopped",
        "harvest sink failing to write: OSError: bucket gone",
    ]

"""The "On Kafka" steps of the README and docs/getting-started.md, run as a new user would:
``driftnet topics create``, ``driftnet worker``, ``driftnet publish examples/events.jsonl``,
``driftnet query``. What lands in the failures topic, the DLQ and the harvest is exactly what
``driftnet check`` says about the same file offline."""

from __future__ import annotations

import json
import re
import signal
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from driftnet.contract.dlq import read_dead_letter
from driftnet.streams.settings import Settings
from tests.conftest import ROOT
from tests.support.kafka_helpers import (
    DRIFTNET,
    WorkerProcess,
    read_topic,
    settings_env,
    stream_settings,
    unique_topics,
)

pytestmark = pytest.mark.integration

EXAMPLE = ROOT / "examples" / "events.jsonl"
README_QUERY = (
    "select reason, count(*) as failures from failures group by reason order by failures desc"
)


def test_readme_shows_the_query_the_walkthrough_runs() -> None:
    """The query the walkthrough checks is the one the README's walkthrough and Getting
    started's "On Kafka, by hand" tell a new user to run."""
    for doc in (ROOT / "README.md", ROOT / "docs" / "getting-started.md"):
        assert f'driftnet query "{README_QUERY}"' in doc.read_text(), doc.name


def _driftnet(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(DRIFTNET), *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_readme_steps_put_the_expected_records_on_kafka(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    settings = stream_settings(kafka_bootstrap, unique_topics("readme"), tmp_path / "data")
    env = settings_env(settings)
    topics = settings.topics

    offline = _driftnet(env, "check", "--json", str(EXAMPLE))
    assert offline.returncode == 0, offline.stderr
    items = [json.loads(line) for line in offline.stdout.splitlines()]
    expected_failures = {i["record_id"] for i in items if "record_id" in i}
    expected_dead = Counter((i["reason"], i["field"]) for i in items if "reason" in i)
    assert expected_failures
    assert expected_dead

    created = _driftnet(env, "topics", "create")
    assert created.returncode == 0, created.stderr
    assert [line.split()[0] for line in created.stdout.splitlines()] == ["created"] * len(
        Settings().topics.by_role()
    )

    with WorkerProcess(settings, tmp_path / "worker.log") as worker:
        published = _driftnet(env, "publish", str(EXAMPLE))
        assert published.returncode == 0, published.stderr
        match = re.search(r"67 lines -> (\d+) events in (\d+) messages", published.stdout)
        assert match, published.stdout
        failures = read_topic(
            kafka_bootstrap, topics.failures.name, expected=len(expected_failures)
        )
        dead = read_topic(kafka_bootstrap, topics.dlq.name, expected=expected_dead.total())
        worker.wait_for("failures by rule: ")
        assert worker.stop(signal.SIGINT) == 0, worker.log

    # the README's query, after Ctrl-C (the worker's sink writes what it holds on stop)
    reasons = Counter(i["reasons"][0]["rule_id"] for i in items if "record_id" in i)
    query = _driftnet(env, "query", README_QUERY, "--format", "json")
    assert query.returncode == 0, query.stderr
    answered = {
        row["reason"]: row["failures"] for row in map(json.loads, query.stdout.splitlines())
    }
    assert answered == dict(reasons)
    table = _driftnet(env, "query", README_QUERY)
    assert table.returncode == 0, table.stderr
    assert "negative_feedback" in table.stdout

    assert {r.key.decode() for r in failures} == expected_failures
    assert len(failures) == len(expected_failures)
    letters = [read_dead_letter(r.value, r.headers) for r in dead]
    assert Counter((d.reason, d.field) for d in letters) == expected_dead
    assert "Traceback" not in worker.log

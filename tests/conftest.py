"""Shared fixtures: a real Kafka-protocol broker for the session, and event factories."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from driftnet.sandbox.broker import EmbeddedBroker

ROOT = Path(__file__).resolve().parent.parent
BOOTSTRAP_ENV_VAR = "DRIFTNET_TEST_BOOTSTRAP"


def _docker_answers() -> bool:
    """Whether a Docker engine answers (the client alone is not enough)."""
    try:
        import docker

        client = docker.from_env(timeout=3)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """Bootstrap address of a real broker: $DRIFTNET_TEST_BOOTSTRAP, else a testcontainers
    Kafka when a Docker engine answers, else the embedded Tansu broker on a free port."""
    external = os.environ.get(BOOTSTRAP_ENV_VAR)
    if external:
        yield external
        return
    if _docker_answers():
        from testcontainers.community.kafka import KafkaContainer

        with KafkaContainer("confluentinc/cp-kafka:7.6.0").with_kraft() as container:
            yield container.get_bootstrap_server()
        return
    with tempfile.TemporaryDirectory(prefix="driftnet-broker-") as folder:
        log = Path(folder) / "tansu.log"
        broker = EmbeddedBroker(log=log)
        try:
            broker.start()
        except Exception as exc:
            pytest.fail(f"embedded broker did not start: {exc}\n{_tail(log)}")
        try:
            yield broker.bootstrap_servers
        finally:
            broker.stop()


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


@pytest.fixture
def location(tmp_path: Path) -> Path:
    """The harvest root of a test."""
    return tmp_path / "harvest"


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch, location: Path) -> CliRunner:
    """A CLI runner whose harvest.location is the test's (no other DRIFTNET_* variable)."""
    for name in list(os.environ):
        if name.startswith("DRIFTNET_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("DRIFTNET_HARVEST__LOCATION", str(location))
    return CliRunner()

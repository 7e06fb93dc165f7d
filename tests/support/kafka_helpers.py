"""Helpers for integration tests on the real broker: fresh topic names, reading a topic back
(group-less, as kafka-python's group join hangs on Tansu), and a ``driftnet worker`` process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from kafka import KafkaConsumer, TopicPartition

from driftnet.storage.settings import HarvestSettings, RotationPolicy
from driftnet.streams.settings import (
    HttpSettings,
    KafkaSettings,
    Settings,
    TopicSettings,
    WorkerSettings,
)

DRIFTNET = Path(sys.executable).parent / "driftnet"
"""The ``driftnet`` console script of the environment running the tests."""


def unique_topics(prefix: str) -> TopicSettings:
    """Topic names nobody else uses on the session's broker."""
    tag = f"{prefix}-{uuid.uuid4().hex[:8]}"
    return TopicSettings.model_validate(
        {role: f"{tag}.{role}" for role in TopicSettings.model_fields}
    )


def stream_settings(bootstrap: str, topics: TopicSettings, data_dir: Path) -> Settings:
    """Settings for a test: its own topics, consumer groups and harvest folder, quick
    rebalances, reports and file rotation, and its health endpoint on a free port (tests
    run many workers at once)."""
    tag = uuid.uuid4().hex[:8]
    return Settings(
        kafka=KafkaSettings(bootstrap_servers=bootstrap, client_id="driftnet-tests"),
        topics=topics,
        harvest=HarvestSettings(
            location=str(data_dir / "harvest"),
            group_id=f"driftnet-test-harvest-{tag}",
            rotation=RotationPolicy(idle_s=1.0, max_age_s=3.0),
        ),
        worker=WorkerSettings(
            app_id=f"driftnet-test-{tag}",
            data_dir=data_dir,
            report_interval_s=1.0,
            rebalance_timeout_s=1.5,
            session_timeout_s=6.0,
        ),
        http=HttpSettings(port=0),
    )


def detection_settings(bootstrap: str, tmp_path: Path, prefix: str = "detect") -> Settings:
    """Stream settings with quick idle timeouts (a quiet stream's windows close in 3 s) and
    every topic created."""
    from driftnet.detectors.config import DetectorsConfig
    from driftnet.streams.clients.topics import create_topics

    settings = stream_settings(bootstrap, unique_topics(prefix), tmp_path / "data")
    detectors = DetectorsConfig.model_validate({"windows": {"idle_timeout_s": 3}})
    settings = settings.model_copy(update={"detectors": detectors})
    create_topics(settings.kafka, settings.topics.by_role())
    return settings


def settings_env(settings: Settings) -> dict[str, str]:
    """The same settings as DRIFTNET_* variables, for a ``driftnet`` subprocess."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTNET_")}
    env["DRIFTNET_KAFKA__BOOTSTRAP_SERVERS"] = settings.kafka.bootstrap_servers
    env["DRIFTNET_KAFKA__CLIENT_ID"] = settings.kafka.client_id
    for role, spec in settings.topics.by_role().items():
        env[f"DRIFTNET_TOPICS__{role.upper()}__NAME"] = spec.name
    for key, value in settings.worker.model_dump(mode="json", exclude_none=True).items():
        env[f"DRIFTNET_WORKER__{key.upper()}"] = str(value)
    env["DRIFTNET_DETECTORS"] = settings.detectors.model_dump_json(exclude_defaults=True)
    env["DRIFTNET_OTLP"] = settings.otlp.model_dump_json(exclude_defaults=True)
    alerts = settings.alerts.model_dump(mode="json", exclude_defaults=True)
    if settings.alerts.slack_token is not None:
        alerts["slack_token"] = settings.alerts.slack_token.get_secret_value()
    env["DRIFTNET_ALERTS"] = json.dumps(alerts)
    env["DRIFTNET_HTTP__ENABLED"] = str(settings.http.enabled).lower()
    env["DRIFTNET_HTTP__HOST"] = settings.http.host
    env["DRIFTNET_HTTP__PORT"] = str(settings.http.port)
    harvest = settings.harvest
    env["DRIFTNET_HARVEST__LOCATION"] = harvest.location
    env["DRIFTNET_HARVEST__GROUP_ID"] = harvest.group_id
    env["DRIFTNET_HARVEST__SINK_IN_WORKER"] = str(harvest.sink_in_worker).lower()
    for key, value in harvest.rotation.model_dump(mode="json").items():
        env[f"DRIFTNET_HARVEST__ROTATION__{key.upper()}"] = str(value)
    return env


def read_topic(
    bootstrap: str, topic: str, *, expected: int, timeout_s: float = 60.0, settle_s: float = 2.0
) -> list[Any]:
    """Every record of ``topic`` from the beginning: waits until ``expected`` have arrived (or
    the timeout), then ``settle_s`` longer so that an unexpected extra record shows up too."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    try:
        deadline = time.monotonic() + timeout_s
        partitions = consumer.partitions_for_topic(topic)
        while not partitions and time.monotonic() < deadline:
            time.sleep(0.2)
            partitions = consumer.partitions_for_topic(topic)
        assignment = [TopicPartition(topic, p) for p in sorted(partitions or ())]
        consumer.assign(assignment)
        consumer.seek_to_beginning(*assignment)
        records: list[Any] = []
        settle_until: float | None = None
        while True:
            now = time.monotonic()
            if settle_until is None and (len(records) >= expected or now >= deadline):
                settle_until = now + settle_s
            if settle_until is not None and now >= settle_until:
                return records
            for batch in consumer.poll(timeout_ms=200).values():
                records.extend(batch)
    finally:
        consumer.close()


class WorkerProcess:
    """``driftnet worker`` (or another long-running subcommand such as ``sink``) in a
    subprocess, its output in a log file."""

    READY = "consuming"

    def __init__(
        self,
        settings: Settings,
        log_path: Path,
        command: str = "worker",
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.settings = settings
        self.log_path = log_path
        self.command = command
        self.env = dict(env or {})
        """Variables added to the settings' (e.g. a secret settings_env leaves out)."""
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, ready_timeout_s: float = 60.0) -> Self:
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [str(DRIFTNET), self.command],
                env=settings_env(self.settings) | self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + ready_timeout_s
        while self.READY not in self.log:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"{self.command} exited with {self.process.returncode}:\n{self.log}"
                )
            if time.monotonic() > deadline:
                self.kill()
                raise AssertionError(f"worker not ready in {ready_timeout_s} s:\n{self.log}")
            time.sleep(0.1)
        return self

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for(self, text: str, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while text not in self.log:
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} not in the worker's log:\n{self.log}")
            time.sleep(0.1)

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout_s: float = 30.0) -> int:
        assert self.process is not None
        self.process.send_signal(sig)
        try:
            return self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"worker did not stop in {timeout_s} s:\n{self.log}") from None

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.kill()


def headers_of(record: Any) -> Mapping[str, bytes]:
    return dict(record.headers or ())


def join_publisher_threads(timeout_s: float = 20.0) -> None:
    """Wait for publisher threads still trying to reach an absent broker (close() returns on
    time; the thread finishes its connection attempt afterwards), so that they do not run into
    the next test."""
    import threading

    for thread in threading.enumerate():
        if thread.name == "driftnet-publisher":
            thread.join(timeout_s)

"""The rooms keep their dependencies pointing inward (see README, Architecture)."""

from __future__ import annotations

import subprocess
import sys

import pytest

IO_MODULES = ("faust", "aiokafka", "kafka", "slack_sdk", "duckdb", "pyarrow", "testcontainers")


@pytest.mark.parametrize(
    "module",
    [
        "detectors",
        "driftnet.detectors.windowing.windows",
        "driftnet.detectors.windowing.observation",
        "driftnet.detectors.windowing.sketch",
        "driftnet.detectors.windowing.samples",
        "driftnet.detectors.windowing.partials",
        "driftnet.detectors.windowing.merge",
        "driftnet.detectors.config",
        "driftnet.detectors.finding",
        "driftnet.detectors.stats",
        "driftnet.detectors.families.base",
        "driftnet.detectors.families.volume",
        "driftnet.detectors.families.latency",
        "driftnet.detectors.families.cost",
        "driftnet.detectors.families.quality",
        "driftnet.detectors.families.drift",
        "driftnet.detectors.families.drift_report",
        "driftnet.detectors.families.budget",
        "driftnet.detectors.families.registry",
        "driftnet.detectors.cohort",
        "driftnet.detectors.canary.sequential",
        "driftnet.detectors.canary.two_arm",
        "driftnet.detectors.canary.config",
        "driftnet.detectors.canary.verdict",
        "driftnet.detectors.canary.judge",
        "driftnet.alerts.model",
        "driftnet.alerts.config",
        "driftnet.alerts.sources",
        "driftnet.alerts.lifecycle",
        "driftnet.alerts.pipeline",
        "driftnet.alerts.silences",
        "driftnet.alerts.signals",
        "driftnet.alerts.notify.console",
        "driftnet.streams.observations",
        "driftnet.harvest.rules",
        "driftnet.harvest.records",
        "driftnet.harvest.redaction",
        "driftnet.harvest.exports",
        "driftnet.harvest.openai_chat",
        "driftnet.storage.settings",
        "driftnet.contract.events",
        "driftnet.contract.decode",
        "driftnet.streams.settings",
        "driftnet.harvest.triage",
        "driftnet.contract.batching",
        "driftnet.contract.dlq",
        "driftnet.streams.offline",
        "driftnet.streams.health",
        "driftnet.streams.metrics",
        "driftnet.streams.status",
        "driftnet.streams.delivery",
        "driftnet.ingest.mapping",
        "driftnet.ingest.fields",
        "driftnet.ingest.genai",
        "driftnet.ingest.openinference",
        "driftnet.ingest.openllmetry",
    ],
)
def test_pure_modules_import_no_io_library(module: str) -> None:
    """Pure logic imports no Kafka, Slack or file-format library, so it runs without a broker."""
    code = (
        f"import sys, {module}\n"
        f"loaded = sorted(m for m in {IO_MODULES!r} if m in sys.modules)\n"
        "print(','.join(loaded))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "", f"{module} pulls in {done.stdout.strip()}"


def test_detectors_import_neither_streams_nor_harvest() -> None:
    """detectors/ is the inner room: the event contract reaches it only as Observations."""
    code = (
        "import sys, pkgutil, importlib, detectors\n"
        "for m in pkgutil.iter_modules(detectors.__path__, 'detectors.'):\n"
        "    importlib.import_module(m.name)\n"
        "print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in ('streams', 'harvest'))))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "", f"detectors pulls in {done.stdout.strip()}"

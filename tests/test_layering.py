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
        "detectors.windows",
        "detectors.observation",
        "detectors.sketch",
        "detectors.samples",
        "detectors.partials",
        "detectors.merge",
        "detectors.config",
        "detectors.finding",
        "detectors.stats",
        "detectors.base",
        "detectors.volume",
        "detectors.latency",
        "detectors.cost",
        "detectors.quality",
        "detectors.drift",
        "detectors.drift_report",
        "detectors.budget",
        "detectors.registry",
        "detectors.cohort",
        "detectors.sequential",
        "detectors.two_arm",
        "detectors.canary_config",
        "detectors.verdict",
        "detectors.canary",
        "alerts.model",
        "alerts.config",
        "alerts.sources",
        "alerts.lifecycle",
        "alerts.pipeline",
        "alerts.silences",
        "alerts.signals",
        "alerts.console",
        "streams.observations",
        "harvest.rules",
        "harvest.records",
        "harvest.redaction",
        "harvest.exports",
        "harvest.openai_chat",
        "storage.settings",
        "streams.events",
        "streams.decode",
        "streams.settings",
        "streams.triage",
        "streams.batching",
        "streams.dlq",
        "streams.offline",
        "streams.health",
        "streams.metrics",
        "streams.status",
        "streams.delivery",
        "streams.otlp_mapping",
        "streams.otlp_fields",
        "streams.otlp_genai",
        "streams.otlp_openinference",
        "streams.otlp_openllmetry",
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

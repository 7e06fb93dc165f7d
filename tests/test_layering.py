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
        "harvest.rules",
        "harvest.records",
        "harvest.redaction",
        "harvest.exports",
        "storage.settings",
        "streams.events",
        "streams.decode",
        "streams.settings",
        "streams.triage",
        "streams.batching",
        "streams.dlq",
        "streams.offline",
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

"""The evidently tier of drift: requests, verdicts, findings, the HTML report, offline use."""

from __future__ import annotations

import dataclasses
import pickle
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor

import pytest

from driftnet.detectors.families.drift import DriftDetector, FullCheckRequest
from driftnet.detectors.families.drift_report import (
    FullDriftResult,
    full_check_findings,
    full_drift_check,
)
from driftnet.detectors.settings import DetectorSettings, DriftSettings
from tests.support.detector_streams import STATIONARY, stream

pytestmark = pytest.mark.evidently
EVERY_WINDOW = DetectorSettings(drift=DriftSettings(full_check_every_windows=1))


def _requests(seed: int, windows: int) -> list[FullCheckRequest]:
    detector = DriftDetector(EVERY_WINDOW)
    checks = [detector.update(window).full_check for window in stream(seed, windows)]
    return [check for check in checks if check is not None]


def _shifted_request() -> FullCheckRequest:
    detector = DriftDetector()
    for window in stream(31, 12):
        detector.update(window)
    (window,) = stream(32, 1, STATIONARY.step(input_scale=2.0, length_share=0.3), first=12)
    request = detector.update(window).full_check
    assert request is not None
    assert request.triggered
    return request


def test_shifted_inputs_are_found_with_a_report() -> None:
    """Input length x2 and many more truncations: evidently flags those columns, the findings
    name them, and the HTML report comes back to be stored."""
    request = _shifted_request()
    result = full_drift_check(request)
    assert result is not None
    drifted = {c.column for c in result.drifted}
    assert {"input_tokens", "input_chars", "finish_reason"} <= drifted
    assert "locale" not in drifted
    assert result.html is not None
    assert result.html.lstrip().lower().startswith("<!doctype html>")
    assert "input_chars" in result.html
    findings = full_check_findings(request, result)
    assert {f.metric for f in findings} == {f"evidently_drift[{c}]" for c in drifted}
    assert all(f.detector == "drift.features.v1" for f in findings)


def _check(request: FullCheckRequest) -> FullDriftResult | None:
    return full_drift_check(request)


def test_stationary_stream_is_quiet_over_25_windows() -> None:
    """Seeded stationary stream, the evidently tier every window: no drifted column in any of
    the 25 checks (run as the caller would: requests pickled to worker processes). 25, not
    more: each report is about a second of CPU, and the suite shares two cores."""
    requests = _requests(41, 28)
    assert len(requests) == 25
    with ProcessPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(_check, requests))
    drifted = [
        (r.window, [c.column for c in res.drifted])
        for r, res in zip(requests, results, strict=True)
        if res is not None and res.drifted
    ]
    assert drifted == []
    assert all(res is not None and res.html is None for res in results)


def test_a_request_survives_pickling() -> None:
    """Requests cross a process boundary unchanged."""
    request = _shifted_request()
    assert pickle.loads(pickle.dumps(request)) == request


def test_too_little_data_gives_no_result() -> None:
    """With no column holding enough values on both sides, nothing is run."""
    request = _shifted_request()
    empty = {name: [None] * 5 for name in request.current}
    assert full_drift_check(dataclasses.replace(request, current=empty)) is None


def test_evidently_tier_opens_no_network_connection() -> None:
    """Offline use: the full check runs with every socket connection refused and tries none
    (numeric and categorical columns only: no NLTK data, no telemetry)."""
    code = """
import pickle, socket, sys
attempts = []
def refuse(self, address, *args, **kwargs):
    attempts.append(address)
    raise OSError("network disabled by the test")
socket.socket.connect = refuse
socket.socket.connect_ex = refuse
socket.create_connection = lambda address, *a, **k: refuse(None, address)
from driftnet.detectors.families.drift_report import full_drift_check
result = full_drift_check(pickle.loads(sys.stdin.buffer.read()), html=True)
assert result is not None and result.html
print(attempts)
"""
    done = subprocess.run(
        [sys.executable, "-c", code],
        input=pickle.dumps(_shifted_request()),
        capture_output=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert done.stdout.decode().strip() == "[]"

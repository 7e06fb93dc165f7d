"""The slow tiers of drift detection in the worker: evidently's full checks and the text drift
checks run one at a time in a separate process, each kind on its own CPU budget; evidently's
HTML reports are stored in the worker's data folder, the text drift findings' evidence is
harvested as ``drift`` records."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import time
import zlib
from collections.abc import Awaitable, Callable
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from driftnet.contract.events import InferenceEvent
from driftnet.detectors.families.budget import FullCheckQueue
from driftnet.detectors.families.drift import FullCheckRequest
from driftnet.detectors.families.text_drift import TextCheckRequest
from driftnet.detectors.finding import Finding
from driftnet.harvest.records import FailureRecord
from driftnet.streams.detection.observations import texts_of
from driftnet.streams.detection.window_records import WindowRecords

log = logging.getLogger("driftnet.detection")

FULL_CHECK_CPU_SHARE = 0.1
"""The evidently tier may use this share of one core on average (see driftnet.detectors.families.budget)."""
TEXT_CHECK_CPU_SHARE = 0.05
"""The text drift checks may use this share of one core on average, besides evidently's."""
TEXT_CHECKS_PENDING = 256
"""Text checks waiting at most (each holds a few tens of KB of texts and records): beyond
it the oldest cadence ones are dropped (counted), a cohort's next one comes a few windows on."""
REPORTS_DIR = "drift-reports"
Request = FullCheckRequest | TextCheckRequest


def exit_with_parent(parent: int) -> None:
    """In the checker process: exit when the worker is gone, even killed with SIGKILL (a
    process pool's worker would otherwise wait for work forever, an orphan)."""
    import threading

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def run_full_check(request: FullCheckRequest) -> tuple[Any, float]:
    """In the checker process: evidently's verdict and HTML report, and the CPU it took."""
    import warnings

    from driftnet.detectors.families.drift_report import full_drift_check

    warnings.simplefilter("ignore")  # evidently's and numpy's chatter on degenerate columns
    started = time.process_time()
    result = full_drift_check(request, html=True)
    return result, time.process_time() - started


def run_text_check(request: TextCheckRequest) -> tuple[Any, float]:
    """In the checker process: the text drift verdict and the CPU it took. The window's kept
    records (already redacted) are read back to their texts, cut as the sample's were, to
    pick the drift evidence from."""
    from driftnet.detectors.families.text_check import text_drift_check

    started = time.process_time()
    candidates = {}
    for event_id, packed in request.examples:
        try:
            event = InferenceEvent.model_validate_json(zlib.decompress(packed))
        except (zlib.error, ValueError):
            continue  # a corrupted record is no evidence
        candidates[event_id] = texts_of(event, request.chars)
    result = text_drift_check(request, candidates)
    return result, time.process_time() - started


def store_report(folder: Path, finding: Finding, html: str) -> Finding:
    """Write ``html`` as the finding's report and return the finding linked to it."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{finding.finding_id}.html"
    temp = path.with_suffix(".html.tmp")
    temp.write_text(html, encoding="utf-8")
    temp.replace(path)
    return finding.model_copy(update={"report": str(path.absolute())})


class FullChecks:
    """The full checks the drift detectors asked for, and the checker process that runs them."""

    def __init__(self, data_dir: Path, records: WindowRecords) -> None:
        self._full_checks: FullCheckQueue[FullCheckRequest] = FullCheckQueue(
            share=FULL_CHECK_CPU_SHARE
        )
        self._text_checks: FullCheckQueue[TextCheckRequest] = FullCheckQueue(
            share=TEXT_CHECK_CPU_SHARE, max_pending=TEXT_CHECKS_PENDING
        )
        self._checker: ProcessPoolExecutor | None = None
        self._running: tuple[Request, asyncio.Future[tuple[Any, float]]] | None = None
        self._reports = data_dir / REPORTS_DIR
        self._records = records

    def push(self, request: Request) -> None:
        """Queue a check a closed window's drift detector asked for."""
        if isinstance(request, TextCheckRequest):
            self._text_checks.push(request, triggered=request.triggered)
        else:
            self._full_checks.push(request, triggered=request.triggered)

    @property
    def dropped(self) -> int:
        """Cadence checks dropped because too many were waiting."""
        return self._full_checks.dropped + self._text_checks.dropped

    async def step(
        self,
        now: float,
        publish: Callable[[Finding], Awaitable[None]],
        harvest: Callable[[FailureRecord], Awaitable[None]],
    ) -> None:
        """Collect a finished check (its findings to ``publish``, a text drift finding's
        evidence records to ``harvest``), or start the next one the budgets allow. One runs at
        a time, in a separate process, so the worker never waits for it."""
        if self._running is not None:
            done, future = self._running
            if not future.done():
                return
            self._running = None
            try:
                result, cpu_s = future.result()
            except Exception as exc:  # a failed check costs a log line, never the worker
                log.warning("drift check of %s failed: %s", "/".join(done.cohort), exc)
                return
            if isinstance(done, TextCheckRequest):
                self._text_checks.charge(cpu_s, now)
                await self._text_findings(done, result, publish, harvest)
            else:
                self._full_checks.charge(cpu_s, now)
                await self._evidently_findings(done, result, publish)
        request: Request | None = self._full_checks.next(now) or self._text_checks.next(now)
        if request is None:
            return
        if self._checker is None:
            context = multiprocessing.get_context("spawn")  # never fork a process with threads
            self._checker = ProcessPoolExecutor(
                max_workers=1,
                mp_context=context,
                initializer=exit_with_parent,
                initargs=(os.getpid(),),
            )
        loop = asyncio.get_running_loop()
        if isinstance(request, TextCheckRequest):
            future = loop.run_in_executor(self._checker, run_text_check, request)
        else:
            future = loop.run_in_executor(self._checker, run_full_check, request)
        self._running = (request, future)

    async def _evidently_findings(
        self, done: FullCheckRequest, result: Any, publish: Callable[[Finding], Awaitable[None]]
    ) -> None:
        from driftnet.detectors.families.drift_report import full_check_findings

        findings = full_check_findings(done, result) if result else []
        if result is not None and result.html:
            try:
                findings = [store_report(self._reports, f, result.html) for f in findings]
            except OSError as exc:  # the report folder is not writable: publish unlinked
                log.warning("cannot store the drift report of %s: %s", done.cohort, exc)
        for finding in findings:
            await publish(finding)  # on the findings topic, not an alert of its own:
            # the per-window drift detector already alerts on the same drift

    async def _text_findings(
        self,
        done: TextCheckRequest,
        result: Any,
        publish: Callable[[Finding], Awaitable[None]],
        harvest: Callable[[FailureRecord], Awaitable[None]],
    ) -> None:
        from driftnet.detectors.families.text_check import text_check_findings

        for side in result.sides:
            if side.reason:
                log.debug("%s: %s", "/".join(done.cohort), side.reason)
        at = datetime.now(UTC)
        for finding in text_check_findings(done, result):
            await publish(finding)  # on the findings topic (it comes windows after the
            # window's alerts were decided: see docs/detectors.md)
            for record in self._records.drift_evidence(finding, done.examples, at):
                await harvest(record)

    def close(self) -> None:
        """Stop the checker process (a check in flight is abandoned)."""
        if self._checker is not None:
            self._checker.shutdown(wait=False, cancel_futures=True)
            self._checker = None

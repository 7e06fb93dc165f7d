"""The evidently tier of drift detection in the worker: full checks run one at a time in a
separate process, on a CPU budget, their HTML reports stored in the worker's data folder."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from driftnet.detectors.families.budget import FullCheckQueue
from driftnet.detectors.families.drift import FullCheckRequest
from driftnet.detectors.finding import Finding

log = logging.getLogger("driftnet.detection")

FULL_CHECK_CPU_SHARE = 0.1
"""The evidently tier may use this share of one core on average (see driftnet.detectors.families.budget)."""
REPORTS_DIR = "drift-reports"


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

    def __init__(self, data_dir: Path) -> None:
        self._full_checks: FullCheckQueue[FullCheckRequest] = FullCheckQueue(
            share=FULL_CHECK_CPU_SHARE
        )
        self._checker: ProcessPoolExecutor | None = None
        self._running: tuple[FullCheckRequest, asyncio.Future[tuple[Any, float]]] | None = None
        self._reports = data_dir / REPORTS_DIR

    def push(self, request: FullCheckRequest) -> None:
        """Queue a check a closed window's drift detector asked for."""
        self._full_checks.push(request, triggered=request.triggered)

    async def step(self, now: float, publish: Callable[[Finding], Awaitable[None]]) -> None:
        """Collect a finished evidently check (its findings to ``publish``), or start the next
        one the budget allows. One runs at a time, in a separate process, so the worker never
        waits for it."""
        from driftnet.detectors.families.drift_report import full_check_findings

        if self._running is not None:
            done, future = self._running
            if not future.done():
                return
            self._running = None
            try:
                result, cpu_s = future.result()
            except Exception as exc:  # a failed check costs a log line, never the worker
                log.warning("full drift check of %s failed: %s", "/".join(done.cohort), exc)
                return
            self._full_checks.charge(cpu_s, now)
            findings = full_check_findings(done, result) if result else []
            if result is not None and result.html:
                try:
                    findings = [store_report(self._reports, f, result.html) for f in findings]
                except OSError as exc:  # the report folder is not writable: publish unlinked
                    log.warning("cannot store the drift report of %s: %s", done.cohort, exc)
            for finding in findings:
                await publish(finding)  # on the findings topic, not an alert of its own:
                # the per-window drift detector already alerts on the same drift
        request = self._full_checks.next(now)
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
        self._running = (request, loop.run_in_executor(self._checker, run_full_check, request))

    def close(self) -> None:
        """Stop the checker process (a check in flight is abandoned)."""
        if self._checker is not None:
            self._checker.shutdown(wait=False, cancel_futures=True)
            self._checker = None

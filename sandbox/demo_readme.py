"""Rewrite the README's demo sample and timings from a real run: ``make readme-demo``, or
``python -m driftnet.sandbox.demo_readme [--readme README.md] [--transcript FILE]``.

It clones the repository's HEAD (commit first: uncommitted changes are not in the clone) into
a temporary folder, runs ``make demo`` there as a new user would (a fresh ``.venv``, the
terminal 80 columns wide, no ``DRIFTNET_*`` settings), notes when each line came, and replaces
two blocks of the README: the output between ``<!-- demo-output:start -->`` and
``<!-- demo-output:end -->`` (:func:`driftnet.sandbox.demo_transcript.trim`'s cut of it) and
the timings between ``<!-- demo-timing:start -->`` and ``<!-- demo-timing:end -->``
(:func:`claims`). It refuses to write a run whose alerts are out of the story's order.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from driftnet.sandbox import demo_plan
from driftnet.sandbox.demo_transcript import outline, story_problems, trim

OUTPUT = ("<!-- demo-output:start -->", "<!-- demo-output:end -->")
TIMING = ("<!-- demo-timing:start -->", "<!-- demo-timing:end -->")
WIDTH = 80
"""The terminal width the run gets: every table the demo prints must fit it."""
RUN_TIMEOUT_S = 600.0


@dataclass(frozen=True, slots=True)
class Stamped:
    """One printed line and the seconds since ``make demo`` started when it came."""

    at: float
    text: str


@dataclass(frozen=True, slots=True)
class Timing:
    """What a run took, in seconds since ``make demo`` started, and on what machine."""

    installer: str
    """What installed ``.venv``: ``uv`` or ``pip``."""
    venv_s: float
    worker_s: float
    """When the worker was running (its line printed)."""
    scene_s: float
    """When the first scene that fires an alert was printed."""
    alert_s: float
    """When the first alert was printed."""
    done_s: float
    cores: int
    load: float
    """The one-minute load average when the run started."""


def run_demo(repo: Path, workdir: Path) -> list[Stamped]:
    """``make demo`` in a fresh clone of ``repo`` under ``workdir``: its output, stamped."""
    clone = workdir / "driftnet"
    subprocess.run(["git", "clone", "-q", str(repo), str(clone)], check=True)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DRIFTNET_", "MAKE")) and k not in ("MFLAGS", "VIRTUAL_ENV")
    }
    env["COLUMNS"] = str(WIDTH)
    started = time.monotonic()
    process = subprocess.Popen(
        ["make", "demo"], cwd=clone, env=env, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    watchdog = threading.Timer(RUN_TIMEOUT_S, process.kill)
    watchdog.start()
    lines = []
    try:
        for line in process.stdout:
            lines.append(Stamped(time.monotonic() - started, line.rstrip("\n")))
            print(line, end="", flush=True)
    finally:
        watchdog.cancel()
    if process.wait() != 0:
        raise SystemExit(f"make demo exited with code {process.returncode}")
    lines.append(Stamped(time.monotonic() - started, ""))
    return lines


def timing(lines: Sequence[Stamped], cores: int, load: float) -> Timing:
    """The moments :class:`Timing` names, read off a stamped run of ``make demo``."""

    def first(test: str) -> Stamped:
        found = [s for s in lines if re.search(test, s.text)]
        if not found:
            raise ValueError(f"no line matches {test!r}")
        return found[0]

    said = [s.text for s in lines if s.text.startswith(("installing into ", "uv failed"))]
    installer = "uv" if said and "/uv, pinned" in said[-1] else "pip"  # what make said last
    venv = [s.at for s in lines if s.text.endswith("/driftnet demo")]  # make echoes the command
    firing = first(r"^\S+ FIRING ")
    alerted = firing.text.split()[3]
    [cause] = [phase.text for phase in demo_plan.phases() if alerted in phase.fires]
    scene = first(f"^▶ .* UTC {re.escape(cause)}$")
    return Timing(
        installer=installer,
        venv_s=venv[0] if venv else 0.0,
        worker_s=first(r"^worker running ").at,
        scene_s=scene.at,
        alert_s=firing.at,
        done_s=lines[-1].at,
        cores=cores,
        load=load,
    )


def claims(t: Timing) -> str:
    """The README's sentence on how long ``make demo`` took, from a run's :class:`Timing`."""
    text = (
        f"From a fresh clone, `make demo` printed its first alert {t.alert_s:.0f} s after the "
        f"command and was done in {t.done_s:.0f} s here ({t.cores} cores, load average "
        f"{t.load:.1f}): {t.venv_s:.0f} s creating `.venv` with "
        f"{t.installer} (once), {t.worker_s - t.venv_s:.0f} s starting the broker and the "
        f"worker, then the story; the first alert printed {t.alert_s - t.scene_s:.0f} s after "
        "the scene that caused it."
    )
    return textwrap.fill(text, width=96)


def replace_between(text: str, markers: tuple[str, str], body: str) -> str:
    """``text`` with what lies between the two marker lines replaced by ``body``."""
    start, end = markers
    before, found, rest = text.partition(f"{start}\n")
    _, found_end, after = rest.partition(f"{end}\n")
    if not found or not found_end:
        raise ValueError(f"the README has no {start} ... {end} block")
    return f"{before}{start}\n{body.rstrip()}\n{end}\n{after}"


def block(text: str, markers: tuple[str, str]) -> str:
    """What lies between the two marker lines of ``text``."""
    _, found, rest = text.partition(f"{markers[0]}\n")
    inside, found_end, _ = rest.partition(f"{markers[1]}\n")
    if not found or not found_end:
        raise ValueError(f"the README has no {markers[0]} ... {markers[1]} block")
    return inside


def sample(lines: Sequence[str]) -> str:
    """The README's fenced sample of a run's lines."""
    return "```\n" + "\n".join(trim(lines)) + "\n```"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--readme", type=Path, default=None, help="default: the repo's README.md")
    parser.add_argument("--transcript", type=Path, help="also save the stamped output here")
    args = parser.parse_args(argv)
    root = Path(
        subprocess.run(
            ["git", "rev-parse", "--show-toplevel"], capture_output=True, text=True, check=True
        ).stdout.strip()
    )
    readme: Path = args.readme or root / "README.md"
    load, cores = os.getloadavg()[0], os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="driftnet-readme-") as workdir:
        lines = run_demo(root, Path(workdir))
    if args.transcript:
        args.transcript.write_text("".join(f"{s.at:7.1f} {s.text}\n" for s in lines))
    texts = [s.text for s in lines]
    problems = story_problems(outline(texts))
    if problems:
        raise SystemExit("not writing a run whose story is out of order:\n" + "\n".join(problems))
    text = replace_between(readme.read_text(), OUTPUT, sample(texts))
    text = replace_between(text, TIMING, claims(timing(lines, cores, load)))
    readme.write_text(text)
    print(f"\nrewrote {readme}'s demo sample and timings", file=sys.stderr)


if __name__ == "__main__":
    main()

"""The README's demo sample and timings are what ``python -m driftnet.sandbox.demo_readme``
writes from a real run: a trimmed transcript whose alerts follow the scenes that caused them,
tables within 80 columns, and the timing sentence in the script's words (numbers aside)."""

from __future__ import annotations

import re

import pytest

from driftnet.sandbox import demo_plan
from driftnet.sandbox.demo_readme import (
    OUTPUT,
    TIMING,
    WIDTH,
    Stamped,
    Timing,
    block,
    claims,
    replace_between,
    timing,
)
from driftnet.sandbox.demo_transcript import outline, story_problems, trim
from tests.conftest import ROOT

README = (ROOT / "README.md").read_text()
SCENES = [f"▶ 20:{52 + 7 * n} UTC {phase.text}" for n, phase in enumerate(demo_plan.phases())]
TITLES = [title for title, _ in demo_plan.summary_queries()]


def alert(state: str, service: str) -> list[str]:
    """An alert as the demo prints it (five lines of detail)."""
    emoji = "🔴" if state == "FIRING" else "✅"
    return [
        f"{emoji} {state} critical {service} canary v8 (production): Fail, rollback -- x   ",
        f"  group service={service} · since 2026-12-02 21:16 UTC (2 s) · notification 1 (new)",
        f"  ● {service} canary v8 (production): Fail, rollback -- x",
        "    service: ... · window (utc): 2026-12-02 21:00 → 21:01",
        "    rule canary.judge.v1 · fingerprint b050d84a23d8a5e6",
        "",
    ]


def summary(n: int) -> list[str]:
    return [TITLES[n], "select 1", " a │ b ", "───┼───", " 1 │ 2 ", ""]


RUN = [
    "python3 -m venv .venv",
    "installing into .venv with .venv/bin/uv, pinned by constraints.txt",
    ".venv/bin/driftnet demo",
    "driftnet demo · embedded broker on 127.0.0.1:44855",
    "worker running (log: driftnet-demo/worker.log); alerts to the console",
    "playing 24 minutes of production traffic at 30x (38,400 events, 800/s; ...)",
    "",
    SCENES[0],
    "",
    SCENES[1],
    "",
    *alert("FIRING", "support-chat"),
    SCENES[2],
    "",
    *alert("FIRING", "search-summarizer"),
    *alert("RESOLVED", "support-chat"),
    "",
    "",
    "sent 38,400 events in 48 s",
    "",
    "canary verdicts (driftnet.verdicts)          ",
    "┃ canary ┃",
    "",
    *summary(0),
    *summary(1),
    *summary(2),
    "dig further (DuckDB over the harvest; no broker needed):",
    "  .venv/bin/driftnet --config driftnet-demo/driftnet.toml harvest reasons --since 2h",
    "",
    "done in 66 s: 3 alert notifications, 3 canary verdicts; ...",
]


def test_trim_keeps_the_first_alert_whole_and_cuts_the_rest() -> None:
    """From the demo's first line: make's lines, trailing spaces and repeated blank lines gone;
    the first alert whole, the later ones cut after their first alert line; the first two
    summaries as one ``...``, the regression packs whole. Trimming a trimmed run changes
    nothing."""
    trimmed = trim(RUN)
    assert trimmed[0].startswith("driftnet demo · ")
    text = "\n".join(trimmed)
    assert "\n\n\n" not in text
    assert all(line == line.rstrip() for line in trimmed)
    assert text.count("rule canary.judge.v1") == 1  # the first alert, whole
    assert text.count("\n    ...\n") == 2  # the two later ones, cut
    assert "  ● search-summarizer canary v8 (production): Fail, rollback -- x\n    ...\n" in text
    i = trimmed.index("canary verdicts (driftnet.verdicts)")
    assert trimmed[i : i + 6] == [trimmed[i], "┃ canary ┃", "", "...", "", TITLES[2]]
    assert TITLES[0] not in text
    assert trim(trimmed) == trimmed


def test_story_problems_catch_alerts_that_come_late_or_from_nowhere() -> None:
    """In order, no problem. The user's run -- both alerts after the rollback scene, in one
    burst -- and an alert for a service no scene touches are both caught."""
    assert story_problems(outline(RUN)) == []
    burst = [*RUN[:10], SCENES[2], *alert("FIRING", "support-chat"), *RUN[10 + 6 :]]
    [problem] = story_problems(outline(burst))
    assert problem.startswith(
        "FIRING support-chat should first come after scene 1 and before scene 2"
    )
    stray = [*RUN, *alert("FIRING", "invoice-extractor")]
    assert story_problems(outline(stray)) == [
        "FIRING invoice-extractor: no scene of the story causes it"
    ]
    missing = [line for line in RUN if line != SCENES[1]]
    assert story_problems(outline(missing))[0].startswith("the story's scenes are missing")


def test_timing_reads_the_run_and_claims_says_it() -> None:
    """The moments of a stamped run: the venv ready when make echoes the demo command, the
    worker's line, the scene that fired the first alert and that alert, the end; pip named
    when uv failed and make fell back to it."""
    at = {".venv/bin/driftnet demo": 7.0, "worker running": 16.0, SCENES[1]: 30.0}
    stamped = [Stamped(next((t for k, t in at.items() if line.startswith(k)), 0.0), line)
               for line in RUN]  # fmt: skip
    stamped[RUN.index(alert("FIRING", "support-chat")[0])] = Stamped(37.5, RUN[11])
    stamped.append(Stamped(80.0, ""))
    t = timing(stamped, cores=2, load=1.5)
    assert t == Timing("uv", 7.0, 16.0, 30.0, 37.5, 80.0, 2, 1.5)
    text = " ".join(claims(t).split())
    assert "first alert 38 s after the command and was done in 80 s here (2 cores" in text
    assert "7 s creating `.venv` with uv (once), 9 s starting the broker and the worker" in text
    assert "printed 8 s after the scene that caused it" in text
    failed = [*stamped[:2], Stamped(5.0, "uv failed: installing with pip instead"), *stamped[2:]]
    assert timing(failed, cores=2, load=1.5).installer == "pip"


def test_replace_between_rewrites_only_the_block() -> None:
    """The text between the markers is replaced; the rest stays; no markers, an error."""
    text = f"a\n{OUTPUT[0]}\nold\n{OUTPUT[1]}\nb\n"
    assert replace_between(text, OUTPUT, "new") == f"a\n{OUTPUT[0]}\nnew\n{OUTPUT[1]}\nb\n"
    with pytest.raises(ValueError, match="no <!-- demo-timing:start -->"):
        replace_between(text, TIMING, "new")


def test_the_readme_sample_is_a_trimmed_run_told_in_order() -> None:
    """The README's sample is the script's cut of a run (trimming it changes nothing), its
    landmarks are the demo's in order, each alert follows the scene that caused it, and every
    line of its tables fits 80 columns."""
    fenced = block(README, OUTPUT).strip()
    assert fenced.startswith("```\n")
    assert fenced.endswith("\n```")
    lines = fenced.removeprefix("```\n").removesuffix("\n```").splitlines()
    assert trim(lines) == lines
    marks = outline(lines)
    assert story_problems(marks) == []
    assert [m for m in marks if not m.startswith(("FIRING", "RESOLVED"))] == [
        "start", "worker", "playing", "scene 0", "scene 1", "scene 2", "sent", "verdicts",
        "...", "summary 2", "dig further", "done",
    ]  # fmt: skip
    tables = [line for line in lines if line[:1] in "┏┃┡│├└ " and set(line) & set("│┃─━")]
    assert len(tables) > 15
    assert max(len(line) for line in tables) <= WIDTH


def test_the_readme_timing_is_in_the_scripts_words() -> None:
    """The README's timing sentence is what :func:`claims` writes, numbers aside (they change
    from run to run), and says uv built the venv."""
    numbers = re.compile(r"\d+(\.\d+)?")
    written = " ".join(block(README, TIMING).split())
    expected = " ".join(claims(Timing("uv", 7, 16, 30, 37, 80, 2, 1.5)).split())
    assert numbers.sub("N", written) == numbers.sub("N", expected)

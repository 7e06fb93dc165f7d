"""What ``driftnet demo`` printed, read back: its landmarks in order, whether each alert came
right after the scene of the story that caused it, and the README's cut of it. Pure: the
printed lines in, no broker, no clock.

>>> lines = [
...     "driftnet demo · embedded broker on 127.0.0.1:4000",
...     "▶ 20:52 UTC healthy traffic: 3 services, each with a canary release on 25% of its calls",
...     "▶ 20:59 UTC support-chat's canary gets 80% slower",
...     "🔴 FIRING critical support-chat canary v8 (production): Fail, rollback -- latency_p95",
... ]
>>> outline(lines)
['start', 'scene 0', 'scene 1', 'FIRING support-chat']
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from driftnet.sandbox import demo_plan

START = "driftnet demo · "
ELIDED = "..."
_CUT_ALERT = "    ..."
_SCENE = re.compile(r"^▶ \d\d:\d\d UTC (?P<text>.+)$")
_ALERT = re.compile(r"^\S+ (?P<state>[A-Z]+) (?P<severity>\w+) (?P<service>\S+) ")
_LANDMARKS = (
    ("worker", "worker running "),
    ("playing", "playing "),
    ("sent", "sent "),
    ("verdicts", "canary verdicts "),
    ("dig further", "dig further"),
    ("done", "done in "),
)


def outline(lines: Sequence[str]) -> list[str]:
    """The landmarks, in the order printed: ``start``, ``worker``, ``playing``, ``scene N``
    (the story's Nth turn), ``FIRING service`` / ``RESOLVED service`` (an alert's first
    line), ``sent``, ``verdicts``, ``summary N`` (the Nth harvest query), ``...`` (a cut),
    ``dig further``, ``done``."""
    scenes = [phase.text for phase in demo_plan.phases()]
    titles = [title for title, _ in demo_plan.summary_queries()]
    marks: list[str] = []
    for line in lines:
        scene = _SCENE.match(line)
        alert = _ALERT.match(line)
        if line.startswith(START):
            marks.append("start")
        elif scene and scene["text"] in scenes:
            marks.append(f"scene {scenes.index(scene['text'])}")
        elif alert and alert["state"] in ("FIRING", "RESOLVED"):
            marks.append(f"{alert['state']} {alert['service']}")
        elif line in titles:
            marks.append(f"summary {titles.index(line)}")
        elif line == ELIDED:
            marks.append(ELIDED)
        else:
            marks.extend(mark for mark, prefix in _LANDMARKS if line.startswith(prefix))
    return marks


def story_problems(marks: Sequence[str]) -> list[str]:
    """What is out of order in an outline: every scene printed, in order; each alert a scene
    causes (``Phase.fires``, ``Phase.resolves``) first printed after that scene and before
    the next one (after the last scene, before the verdicts); no other service alerted."""
    story = demo_plan.phases()
    at = {mark: i for i, mark in reversed(list(enumerate(marks)))}  # first position of each
    found = [at.get(f"scene {n}") for n in range(len(story))]
    scenes = [i for i in found if i is not None]
    if len(scenes) < len(story) or scenes != sorted(scenes):
        return [f"the story's scenes are missing or out of order: {marks}"]
    bounds = [*scenes, at.get("verdicts", len(marks))]
    names = [*(f"scene {n}" for n in range(1, len(story))), "the verdicts"]
    problems: list[str] = []
    expected = set()
    for n, phase in enumerate(story):
        for state, services in (("FIRING", phase.fires), ("RESOLVED", phase.resolves)):
            for service in services:
                mark = f"{state} {service}"
                expected.add(mark)
                if not bounds[n] < at.get(mark, -1) < bounds[n + 1]:
                    problems.append(
                        f"{mark} should first come after scene {n} and before {names[n]}: {marks}"
                    )
    alerted = {m for m in marks if m.startswith(("FIRING ", "RESOLVED "))}
    problems.extend(f"{m}: no scene of the story causes it" for m in sorted(alerted - expected))
    return problems


def trim(lines: Sequence[str]) -> list[str]:
    """The README's cut of a run: from the demo's first line on, trailing spaces and repeated
    blank lines gone; the first alert whole, each later one to its first alert line then
    ``...``; every harvest summary but the last (the regression packs) as one ``...``."""
    titles = [title for title, _ in demo_plan.summary_queries()]
    starts = [i for i, line in enumerate(lines) if line.startswith(START)]
    out: list[str] = []
    alerts = 0
    block: str | None = None  # "alert", "cut alert", "cut summary" while inside one
    for raw in lines[starts[0] if starts else 0 :]:
        line = raw.rstrip()
        if not line:
            block = None
            if out and out[-1]:
                out.append("")
            continue
        if block == "cut summary" or (block == "cut alert" and out[-1] == _CUT_ALERT):
            continue
        if block is None and _ALERT.match(line):
            alerts += 1
            block = "alert" if alerts == 1 else "cut alert"
        elif block is None and line in titles[:-1]:
            block = "cut summary"
            if out[-2:] != [ELIDED, ""]:  # the summaries before are cut already
                out.append(ELIDED)
            continue
        out.append(line)
        if block == "cut alert" and line.startswith("  ● "):
            out.append(_CUT_ALERT)
    while out and not out[-1]:
        out.pop()
    return out


__all__ = ["outline", "story_problems", "trim"]

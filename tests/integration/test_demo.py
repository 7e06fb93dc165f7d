"""``driftnet demo`` as a newcomer runs it (what ``make demo`` runs): the alerts fire and
resolve on the console, each right after the scene of the story that caused it, the canaries
get the right verdicts in tables that fit an 80-column terminal, the harvest summary and the
commands it prints work, and nothing it started outlives it -- Ctrl-C included."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import time
from pathlib import Path

import pytest

from driftnet.sandbox.demo_transcript import outline, story_problems
from tests.support.fake_slack import TOKEN, FakeSlack
from tests.support.fake_slack import fake_slack as fake_slack  # the fixture
from tests.support.kafka_helpers import DRIFTNET

pytestmark = pytest.mark.integration


def clean_env() -> dict[str, str]:
    """A newcomer's environment: no DRIFTNET_* settings, an 80-column terminal-less output."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTNET_")}
    env["COLUMNS"] = "80"
    return env


def survivors(marker: str) -> list[str]:
    """Command lines of live processes that mention ``marker`` (the demo's folder)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if marker in command:
            found.append(command)
    return found


def test_the_demo_catches_the_bad_canaries_and_cleans_up(
    tmp_path: Path, fake_slack: FakeSlack
) -> None:
    """The slowed-down canary pages after the scene that slows it and before the next one,
    and is resolved once rolled back; the worse one pages after its scene; the healthy one
    never does (on the console and, with a token, in Slack); verdicts Fail / Fail / Pass
    with their scores and failing metrics, every table within 80 columns; the summary shows
    the regression packs; a printed command runs as printed; no broker or worker is left
    behind."""
    directory = tmp_path / "demo"
    env = {
        **clean_env(),
        "DRIFTNET_ALERTS__SLACK_TOKEN": TOKEN,
        "DRIFTNET_ALERTS__SLACK_BASE_URL": fake_slack.base_url,
        "DRIFTNET_ALERTS__SLACK_CHANNEL": "#llm-oncall",
    }
    result = subprocess.run(
        [str(DRIFTNET), "demo", "--dir", str(directory)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    output = result.stdout
    assert result.returncode == 0, output + result.stderr
    assert re.search(r"FIRING critical support-chat canary .*Fail, rollback -- latency_p", output)
    assert re.search(r"FIRING critical search-summarizer canary .*Fail, rollback", output)
    assert re.search(r"RESOLVED critical support-chat canary", output)
    assert "invoice-extractor canary" not in output.split("canary verdicts")[0]
    # in the story's order: before, the alerts all came after the rollback scene, in a burst
    marks = outline(output.splitlines())
    assert marks.index("FIRING support-chat") < marks.index("scene 2"), marks
    assert story_problems(marks) == []
    assert "alerts to the console and Slack (#llm-oncall)" in output
    posts = {m.text.split(" canary ")[0].split()[-1]: m for m in fake_slack.messages}
    assert set(posts) == {"support-chat", "search-summarizer"}, [m.text for m in posts.values()]
    assert "RESOLVED" in posts["support-chat"].text.upper()
    assert posts["support-chat"].edits >= 1  # resolved in place

    tables = [line for line in output.splitlines() if set(line) & set("│┃━─")]
    assert max(len(line) for line in tables) <= 80
    assert "…" not in "\n".join(tables)
    table = output.split("canary verdicts (driftnet.verdicts)")[1].split("what was harvested")[0]
    rows: dict[str, list[list[str]]] = {}
    for line in table.splitlines():  # a row's first line names the service
        cells = [cell.strip() for cell in line.split("│")[1:-1]]
        if cells and cells[0] in ("support-chat", "search-summarizer", "invoice-extractor"):
            current = rows.setdefault(cells[0], [])
        if cells and "─" not in line:
            current.append(cells)
    verdict = {name: [r[1] for r in row][:3] for name, row in rows.items()}
    failing = {name: " ".join(r[2] for r in row) for name, row in rows.items()}
    for name in ("support-chat", "search-summarizer"):
        assert verdict[name][:2] == ["Fail", "rollback"]
        assert re.fullmatch(r"score \d+", verdict[name][2])
    assert "latency_p95 +" in failing["support-chat"]
    assert "score.faithfulness -" in failing["search-summarizer"]
    assert verdict["invoice-extractor"] == ["Pass", "promote", "score 100"]

    summary = output.split("the canaries' regression packs")[1]
    assert re.search(r"support-chat\s+│ canary\s+│ latency_p", summary)
    assert re.search(r"search-summarizer\s+│ baseline", summary)

    commands = output.split("dig further")[1].splitlines()
    [show] = [line.strip() for line in commands if " harvest show " in line]
    shown = subprocess.run(
        [str(DRIFTNET), *shlex.split(show)[1:]],
        cwd=tmp_path, env=clean_env(), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    assert '"kind": "regression"' in shown.stdout
    assert re.search(r"done in \d+ s", output)
    assert survivors(str(directory)) == []


def test_ctrl_c_stops_the_demo_and_everything_it_started(tmp_path: Path) -> None:
    """Ctrl-C while the traffic plays: the demo says so, exits 130 within seconds, and
    leaves no broker or worker running."""
    directory = tmp_path / "demo"
    process = subprocess.Popen(
        [str(DRIFTNET), "demo", "--dir", str(directory)],
        cwd=tmp_path, env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    assert process.stdout is not None
    seen = []
    deadline = time.monotonic() + 120
    for line in process.stdout:
        seen.append(line)
        if line.startswith("playing ") or time.monotonic() > deadline:
            break
    time.sleep(3)
    assert survivors(str(directory)), "the worker should be running by now"
    process.send_signal(signal.SIGINT)
    rest, _ = process.communicate(timeout=150)  # the worker stops cleanly first, then the broker
    output = "".join(seen) + rest
    assert process.returncode == 130, output
    assert "interrupted" in output
    time.sleep(1)
    assert survivors(str(directory)) == []

"""The documentation site builds: ``mkdocs build --strict`` (into a temporary folder) fails on a
broken link or anchor, a page missing from the nav or a nav entry without its page; and it
builds offline (no plugin that downloads, no web fonts)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import ROOT
from tests.support.docs import pages

CONFIG = ROOT / "mkdocs.yml"


def _config() -> dict[str, Any]:
    loaded = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def _nav_pages(entries: list[Any]) -> list[str]:
    found: list[str] = []
    for entry in entries:
        value = next(iter(entry.values())) if isinstance(entry, dict) else entry
        found += _nav_pages(value) if isinstance(value, list) else [value]
    return found


def test_the_site_builds_strict(tmp_path: Path) -> None:
    """``mkdocs build --strict`` succeeds: every link, anchor and nav entry resolves."""
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "WARNING" not in done.stderr, done.stderr
    built = {path.name for path in tmp_path.glob("*.html")}
    assert {page.with_suffix(".html").name for page in pages()} <= built


def test_every_page_is_in_the_nav_once() -> None:
    """The nav lists each page of docs/ exactly once, and nothing else."""
    listed = _nav_pages(_config()["nav"])
    assert sorted(listed) == sorted(page.name for page in pages())
    assert len(listed) == len(set(listed))


def test_the_build_needs_no_network() -> None:
    """Only the built-in search plugin (Material's social and privacy plugins download), no web
    fonts, and strict validation of links and anchors."""
    config = _config()
    assert config["plugins"] == ["search"]
    assert config["theme"]["name"] == "material"
    assert config["theme"]["font"] is False
    assert config["strict"] is True
    assert set(config["validation"].values()) == {"warn"}

"""The wheel installs one package, driftnet, with every room and module the repository has."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.conftest import ROOT
from tests.support.rooms import rooms


def test_the_wheel_holds_driftnet_and_nothing_else(tmp_path: Path) -> None:
    """Built offline from a copy of the sources: no generic top-level module (`streams`,
    `storage`, ...) lands in a user's site-packages, and no room's module is left out."""
    folders = rooms()
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for folder in folders.values():
        shutil.copytree(
            ROOT / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__")
        )
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--quiet",
            "--disable-pip-version-check",
            str(source),
            "-w",
            str(tmp_path / "dist"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "dist").glob("driftnet-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {name.split("/")[0] for name in names} == {
        "driftnet",
        wheel.name.split("-py")[0] + ".dist-info",
    }
    expected = {
        f"driftnet/{room.replace('.', '/')}/{path.relative_to(ROOT / folder)}"
        for room, folder in folders.items()
        for path in (ROOT / folder).rglob("*.py")
    }
    assert expected <= set(names), sorted(expected - set(names))
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "driftnet = driftnet.cli.main:main" in zipfile.ZipFile(wheel).read(entry_points).decode()

"""The rooms as pyproject.toml maps them: ``driftnet.<room>`` -> its folder at the top."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def rooms() -> dict[str, str]:
    """Room name (``streams``, ...) -> its folder, from setuptools' ``package-dir``."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    mapping: dict[str, str] = project["tool"]["setuptools"]["package-dir"]
    return {name.removeprefix("driftnet."): folder for name, folder in mapping.items()}

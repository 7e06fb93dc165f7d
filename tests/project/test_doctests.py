"""Every example in a docstring of driftnet's runs and shows what it says."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

ROOMS = (
    "contract",
    "detectors",
    "harvest",
    "ingest",
    "alerts",
    "storage",
    "streams",
    "sandbox",
    "cli",
)


def _modules() -> list[str]:
    names = []
    for room in ROOMS:
        package = importlib.import_module(f"driftnet.{room}")
        names.append(package.__name__)
        names += [m.name for m in pkgutil.walk_packages(package.__path__, f"{package.__name__}.")]
    return sorted(names)


MODULES = _modules()


def test_every_room_is_walked() -> None:
    """The walk finds the rooms' modules, so the examples below are not vacuously green."""
    assert {name.split(".")[1] for name in MODULES} == set(ROOMS)
    assert len(MODULES) > 100


@pytest.mark.parametrize("module", MODULES)
def test_docstring_examples_run(module: str) -> None:
    """The module's examples parse and pass (a module without any passes trivially)."""
    failed, _ = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert failed == 0

"""mypy over the driftnet namespace: ``python -m tests.support.typecheck [mypy args]``.

The rooms sit at the top of the repository and install as ``driftnet.<room>`` through
setuptools' ``package-dir``; an editable install reaches them with an import hook mypy cannot
follow. mypy reads them through ``.typecheck/driftnet/<room>`` instead: symlinks to the rooms,
made here, so a new module is type-checked without reinstalling anything.
"""

from __future__ import annotations

import sys
from pathlib import Path

from mypy import api

from tests.support.rooms import ROOT, rooms

TREE = ROOT / ".typecheck" / "driftnet"


def link_rooms() -> None:
    """Make (or refresh) one symlink per room under .typecheck/driftnet."""
    TREE.mkdir(parents=True, exist_ok=True)
    for room, folder in rooms().items():
        link = TREE / room
        target = Path("..", "..", folder)
        if link.is_symlink() and Path(link.readlink()) == target:
            continue
        if link.is_symlink():
            link.unlink()
        link.symlink_to(target, target_is_directory=True)


def main(argv: list[str]) -> int:
    link_rooms()
    stdout, stderr, status = api.run(argv)
    sys.stdout.write(stdout)
    sys.stderr.write(stderr)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""The rooms keep their dependencies pointing inward (docs/architecture.md, "Rooms and layers").

Every import is read from the source, those inside functions and ``TYPE_CHECKING`` blocks
included: an edge the layer table forbids fails, and so does any cycle between modules.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.support.rooms import rooms

MAY_IMPORT: dict[str, frozenset[str]] = {
    "contract": frozenset(),
    "detectors": frozenset(),
    "harvest": frozenset({"contract"}),
    "ingest": frozenset({"contract"}),
    "alerts": frozenset({"detectors"}),
    "storage": frozenset({"contract", "harvest"}),
    "streams": frozenset({"contract", "detectors", "harvest", "ingest", "alerts", "storage"}),
    "sandbox": frozenset(
        {"contract", "detectors", "harvest", "ingest", "alerts", "storage", "streams"}
    ),
    "cli": frozenset(
        {"contract", "detectors", "harvest", "ingest", "alerts", "storage", "streams", "sandbox"}
    ),
}
"""Room -> the other rooms it may import: the layer table of docs/architecture.md."""

LIBRARIES: dict[str, frozenset[str]] = {
    "faust": frozenset({"driftnet.streams", "driftnet.sandbox"}),
    "aiokafka": frozenset({"driftnet.streams", "driftnet.sandbox"}),
    "kafka": frozenset({"driftnet.streams", "driftnet.sandbox"}),
    "duckdb": frozenset({"driftnet.storage"}),
    "pyarrow": frozenset({"driftnet.storage"}),
    "slack_sdk": frozenset({"driftnet.alerts.notify"}),
    "evidently": frozenset({"driftnet.detectors.families.drift_report"}),
    "click": frozenset({"driftnet.cli"}),
    "sklearn": frozenset(
        {"driftnet.harvest.theme_clusters", "driftnet.detectors.families.text_check"}
    ),
}
"""An I/O or heavy library -> the only packages (or modules) that may import it."""


@dataclass(frozen=True)
class Import:
    source: str
    target: str
    line: int


def room_dirs() -> dict[str, Path]:
    return {room: ROOT / folder for room, folder in rooms().items()}


@cache
def modules() -> dict[str, Path]:
    """Every driftnet module, by its dotted name."""
    found = {}
    for room, folder in room_dirs().items():
        for path in folder.rglob("*.py"):
            parts = ["driftnet", room, *path.relative_to(folder).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def imports_of(name: str, path: Path) -> Iterator[Import]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(name, alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                full = f"{base}.{alias.name}"
                yield Import(name, full if full in modules() else base, node.lineno)


@cache
def all_imports() -> tuple[Import, ...]:
    return tuple(
        edge for name, path in sorted(modules().items()) for edge in imports_of(name, path)
    )


def room_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "driftnet" and len(parts) > 1 else None


def where(edge: Import) -> str:
    return f"{modules()[edge.source].relative_to(ROOT)}:{edge.line} imports {edge.target}"


def test_the_table_covers_every_room() -> None:
    """A new room must be placed in the table before anything may import it."""
    assert set(room_dirs()) == set(MAY_IMPORT)
    assert len(all_imports()) > 500


def test_rooms_import_only_rooms_below_them() -> None:
    """Dependencies point inward: contract innermost, cli outermost."""
    bad = []
    for edge in all_imports():
        source, target = room_of(edge.source), room_of(edge.target)
        if target is not None and source != target and target not in MAY_IMPORT[str(source)]:
            bad.append(where(edge))
    assert not bad, "forbidden edges:\n" + "\n".join(bad)


def test_the_architecture_doc_shows_this_table() -> None:
    """docs/architecture.md's layer table says what this test enforces."""
    doc = (ROOT / "docs" / "architecture.md").read_text()
    table = doc.split("<!-- layers:begin -->")[1].split("<!-- layers:end -->")[0]
    documented = {}
    for row in table.strip().splitlines()[2:]:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        documented[cells[1].strip("`")] = frozenset(re.findall(r"`(\w+)`", cells[3]))
    assert documented == MAY_IMPORT


def test_nothing_imports_tests_or_bench() -> None:
    """tests/ and bench/ may import anything; nothing of driftnet's imports them."""
    bad = [where(e) for e in all_imports() if e.target.split(".")[0] in ("tests", "bench")]
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("library", sorted(LIBRARIES))
def test_io_libraries_stay_in_their_rooms(library: str) -> None:
    """Kafka clients only in the runtime and the sandbox, duckdb/pyarrow only in storage,
    slack-sdk only in notify, click only in cli."""
    allowed = LIBRARIES[library]
    bad = [
        where(e)
        for e in all_imports()
        if e.target.split(".")[0] == library
        and not any(e.source == a or e.source.startswith(a + ".") for a in allowed)
    ]
    assert not bad, "\n".join(bad)


def import_graph() -> dict[str, set[str]]:
    """Module -> the driftnet modules it imports (a name imported from a module counts as it)."""
    graph: dict[str, set[str]] = {name: set() for name in modules()}
    for edge in all_imports():
        target = edge.target
        while target and target not in modules():
            target = target.rpartition(".")[0]
        if target and target != edge.source and target.startswith("driftnet."):
            graph[edge.source].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_cycles_between_modules() -> None:
    """No module imports, however indirectly, a module that imports it back."""
    assert cycles(import_graph()) == []


def test_the_reader_sees_imports_in_functions_and_relative_ones(tmp_path: Path) -> None:
    """So a green run means something: nested and relative imports are edges too."""
    source = "def f():\n    from driftnet.cli import main\n    from . import events\n"
    path = tmp_path / "probe.py"
    path.write_text(source)
    found = {e.target for e in imports_of("driftnet.contract.probe", path)}
    assert found == {"driftnet.cli.main", "driftnet.contract.events"}


def test_a_cycle_is_found_however_long() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(graph) == [["a", "b", "c"]]


def test_every_package_says_what_it_is_for_and_where_to_start() -> None:
    """Each room and sub-package opens with its job and the module to read first, which exists."""
    packages = [path for path in modules().values() if path.name == "__init__.py"]
    assert len(packages) >= len(MAY_IMPORT)
    for path in packages:
        doc = ast.get_docstring(ast.parse(path.read_text())) or ""
        start = re.search(r"Start at :mod:`([\w.]+)`", doc)
        assert start, f"{path.relative_to(ROOT)}: no 'Start at :mod:`...`' in its docstring"
        assert start.group(1) in modules(), (
            f"{path.relative_to(ROOT)}: {start.group(1)} is no module"
        )

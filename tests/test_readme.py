"""The README, the front door, stays true to the code."""

from __future__ import annotations

import re

from streams.events import otel_mapping
from tests.conftest import ROOT

README = (ROOT / "README.md").read_text()


def test_otel_table_matches_the_contract() -> None:
    """The README's OpenTelemetry table lists exactly the mapping the contract declares."""
    table = README.split("<!-- otel-mapping:start -->")[1].split("<!-- otel-mapping:end -->")[0]
    rows = dict(re.findall(r"^\| `([^`]+)` \| `([^`]+)` \|$", table, flags=re.MULTILINE))
    assert rows == otel_mapping()


def test_front_door_commands() -> None:
    """The README gives the two commands, and the Makefile and CI run them."""
    assert "make demo" in README
    assert "make test" in README
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^demo:", makefile, flags=re.MULTILINE)
    assert re.search(r"^test:", makefile, flags=re.MULTILINE)
    assert "make test" in (ROOT / ".ci" / "run").read_text()

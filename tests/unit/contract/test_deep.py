"""contract.deep: the depth of a JSON value and its bytes, at depths no recursive writer reaches."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from driftnet.contract.deep import deeper_than, dumps

values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=4), children, max_size=4)
    ),
    max_leaves=20,
)


def _depth(value: Any) -> int:
    """The reference: containers counted recursively (fine at the depths hypothesis draws)."""
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    return 0


@given(values)
@settings(max_examples=200)
def test_dumps_writes_what_json_dumps_writes(value: Any) -> None:
    """Where Python's json can write a value, ``dumps`` gives the same bytes (NaN included)."""
    assert dumps(value) == json.dumps(value).encode()


@given(values, st.integers(min_value=0, max_value=6))
@settings(max_examples=200)
def test_deeper_than_counts_containers(value: Any, levels: int) -> None:
    """A value is deeper than ``levels`` exactly when its containers nest more than that."""
    assert deeper_than(value, levels) == (_depth(value) > levels)


@pytest.mark.parametrize("opener", ["list", "dict"])
def test_far_past_the_recursion_limit(opener: str) -> None:
    """Ten times the interpreter's recursion limit, where Python's json gives up: measured,
    and written as json.dumps would write it."""
    depth = 10 * sys.getrecursionlimit()
    value: Any = 1
    for _ in range(depth):
        value = [value] if opener == "list" else {"a": value}
    assert deeper_than(value, depth - 1)
    assert not deeper_than(value, depth)
    with pytest.raises(RecursionError):
        json.dumps(value)
    start, end = ("[", "]") if opener == "list" else ('{"a": ', "}")
    assert dumps(value) == (start * depth + "1" + end * depth).encode()


def test_default_writes_what_json_cannot() -> None:
    """``default`` turns a leaf JSON cannot write (a datetime) into one it can."""
    stamp = datetime(2026, 11, 25, 12, tzinfo=UTC)
    assert dumps({"t": [stamp]}, default=datetime.isoformat) == (
        b'{"t": ["2026-11-25T12:00:00+00:00"]}'
    )

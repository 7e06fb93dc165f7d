"""JSON values nested to any depth: how deep they go, and their bytes, without recursion.

A producer may send any nesting orjson reads (1,024 levels), but the writers and readers after
the decoder stop sooner: orjson writes 254 levels, pydantic writes 255 and its JSON reader (the
sink's) reads 200, Python's json stops near the interpreter's recursion limit. What must not
fail on such a value -- a dead letter's bytes, the check that a failure record can travel --
walks a stack here instead of recursing.

>>> deeper_than({"a": [[1]]}, 2)
True
>>> deeper_than({"a": [[1]]}, 3)
False
>>> dumps({"a": [1, "x"], "b": None}) == b'{"a": [1, "x"], "b": null}'
True
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any


def deeper_than(value: Any, levels: int) -> bool:
    """Whether ``value`` nests more than ``levels`` containers (an object or an array is one
    level, what it holds the next; a number, a string or null none)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        if depth > levels:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


class _Raw(str):
    """Text that :func:`dumps` writes as it is (a value of the document is never one)."""


def dumps(value: Any, default: Callable[[Any], Any] | None = None) -> bytes:
    """``json.dumps(value, default=default).encode()``, the same bytes, at any depth (keys
    are written as strings, which is what JSON gives)."""
    out: list[str] = []
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, _Raw):
            out.append(item)
            continue
        if isinstance(item, dict):
            pieces: list[Any] = [_Raw("{")]
            for i, (key, child) in enumerate(item.items()):
                pieces += [_Raw((", " if i else "") + json.dumps(str(key)) + ": "), child]
            pieces.append(_Raw("}"))
        elif isinstance(item, list | tuple):
            pieces = [_Raw("[")]
            for i, child in enumerate(item):
                pieces += [_Raw(", "), child] if i else [child]
            pieces.append(_Raw("]"))
        else:
            out.append(json.dumps(item, default=default))
            continue
        stack.extend(reversed(pieces))
    return "".join(out).encode()

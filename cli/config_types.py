"""How the configuration reference spells a setting: its type in words, its default as TOML."""

from __future__ import annotations

import json
import re
import types
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types
from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo
from pydantic.types import PathType

# --- types ---------------------------------------------------------------------------------


def unwrap(tp: Any) -> Any:
    """``tp`` without ``None`` (optional) and without ``Annotated`` metadata."""
    if get_origin(tp) is Annotated:
        return unwrap(get_args(tp)[0])
    args = non_none(tp)
    return unwrap(args[0]) if args is not None and len(args) == 1 else tp


def non_none(tp: Any) -> tuple[Any, ...] | None:
    """The members of a union other than None; None when ``tp`` is not a union."""
    if get_origin(tp) in (Union, types.UnionType):
        return tuple(arg for arg in get_args(tp) if arg is not type(None))
    return None


def type_of(field: FieldInfo) -> str:
    """The field's type as the reference words it: ``int ≥ 1``, ``list of string, optional``..."""
    tp = field.annotation
    members = non_none(tp)
    optional = members is not None and len(members) < len(get_args(tp))
    if members is not None and len(members) == 1:
        tp = members[0]
    text = _type(tp, tuple(field.metadata))
    return f"{text}, optional" if optional else text


def _type(tp: Any, metadata: tuple[Any, ...] = ()) -> str:
    origin, args = get_origin(tp), get_args(tp)
    if origin is Annotated:
        return _type(args[0], (*args[1:], *metadata))
    if origin is Literal:
        return " | ".join(json.dumps(arg) for arg in args)
    members = non_none(tp)
    if members is not None:
        text = " or ".join(_type(member) for member in members)
        return f"{text}, optional" if len(members) < len(args) else text
    if origin in (tuple, list, frozenset, set):
        item = _type(args[0]) if args else "any"
        return f"list of ({item})" if " | " in item or " or " in item else f"list of {item}"
    if origin is dict:
        value = unwrap(args[1]) if args else Any
        if value is Any:
            return "table"
        if get_origin(value) is dict:
            return "table of tables, by name"
        return f"table of {_type(value)}"
    if tp is SecretStr:
        return "secret string"
    if tp is Path:
        kinds = {m.path_type for m in metadata if isinstance(m, PathType)}
        return "path to an existing file" if "file" in kinds else "path"
    if tp is bool:
        return "boolean"
    if tp is str:
        return _string(metadata)
    if tp in (int, float):
        return _number(tp.__name__, metadata)
    if tp is Any:
        return "any"
    raise TypeError(f"no reference text for the type {tp!r}")


def _string(metadata: tuple[Any, ...]) -> str:
    low = next((m.min_length for m in metadata if isinstance(m, annotated_types.MinLen)), 0)
    high = next((m.max_length for m in metadata if isinstance(m, annotated_types.MaxLen)), None)
    pattern = next((m.pattern for m in metadata if getattr(m, "pattern", None)), None)
    text = "non-empty string" if low == 1 and high is None else "string"
    if high is not None:
        text += f" of {low} to {high} characters"
    elif low > 1:
        text += f" of at least {low} characters"
    if pattern is not None:
        text += f" matching `{pattern}`"
    return text


def _number(name: str, metadata: tuple[Any, ...]) -> str:
    """``int ≥ 1``, ``float > 0``, ``0 < float < 1``..."""
    lower: tuple[str, Any] | None = None
    upper: tuple[str, Any] | None = None
    for m in metadata:
        if isinstance(m, annotated_types.Gt):
            lower = ("<", m.gt)
        elif isinstance(m, annotated_types.Ge):
            lower = ("≤", m.ge)
        elif isinstance(m, annotated_types.Lt):
            upper = ("<", m.lt)
        elif isinstance(m, annotated_types.Le):
            upper = ("≤", m.le)
    if lower is not None and upper is None:
        return f"{name} {'>' if lower[0] == '<' else '≥'} {_num(lower[1])}"
    text = name if lower is None else f"{_num(lower[1])} {lower[0]} {name}"
    return text if upper is None else f"{text} {upper[0]} {_num(upper[1])}"


def _num(value: Any) -> str:
    return str(value) if isinstance(value, int) else f"{value:g}"


# --- values as TOML ------------------------------------------------------------------------

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def toml(value: Any) -> str:
    """``value`` as TOML writes it (inline tables and arrays; None values left out)."""
    if isinstance(value, SecretStr):
        return json.dumps("**********")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, Path):
        return json.dumps(value.as_posix(), ensure_ascii=False)
    if isinstance(value, frozenset | set):
        return toml(sorted(value))
    if isinstance(value, tuple | list):
        return "[" + ", ".join(toml(item) for item in value) + "]"
    if isinstance(value, BaseModel):
        return toml({name: getattr(value, name) for name in type(value).model_fields})
    if isinstance(value, dict):
        items = [
            f"{key if _BARE_KEY.match(key) else json.dumps(key)} = {toml(item)}"
            for key, item in value.items()
            if item is not None
        ]
        return "{" + ", ".join(items) + "}" if items else "{}"
    raise TypeError(f"no TOML for {value!r}")

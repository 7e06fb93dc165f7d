"""The keys of the settings model, for the "did you mean" of a misspelt setting.

:func:`closest_key` walks a pydantic model along a key's path (``("kafka",
"bootstrap_server")``), through named tables (``rules.services.<name>``) and lists of tables,
and replaces each part the model does not know with its closest known key
(:func:`difflib.get_close_matches`); :func:`key_hint` and :func:`variable_hint` word it for
:class:`~driftnet.streams.settings.ConfigError`. Pure: the model and the environment are
passed in.

>>> from driftnet.streams.settings import Settings
>>> closest_key(Settings, ["kafka", "bootstrap_server"])
['kafka', 'bootstrap_servers']
>>> closest_key(Settings, ["harvests", "location"])
['harvest', 'location']
>>> closest_key(Settings, ["rules", "services", "chat", "latency_slo"])
['rules', 'services', 'chat', 'latency_slo_ms']
>>> closest_key(Settings, ["kafka", "client_id"])
['kafka', 'client_id']
>>> closest_key(Settings, ["kafka", "zzz"]) is None
True
"""

from __future__ import annotations

import difflib
import types
from collections.abc import Iterable, Sequence
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel

_TABLES = (dict, list, tuple, set, frozenset)


def closest_key(model: type[BaseModel], path: Sequence[str | int]) -> list[str] | None:
    """``path`` with every part ``model`` does not know replaced by its closest known key
    (``path`` itself when it knows every part); None when a part has no close match."""
    fixed: list[str] = []
    current: Any = model
    parts = [str(part) for part in path]
    while parts:
        part = parts.pop(0)
        keys = _keys(current)
        if keys is None:  # past the model (a free-form value): nothing to check
            return [*fixed, part, *parts]
        if part not in keys:
            close = difflib.get_close_matches(part, keys, n=1, cutoff=0.6)
            if not close:
                return None
            part = close[0]
        fixed.append(part)
        current = _unwrap(keys[part])
        while get_origin(current) in _TABLES and parts:  # an entry of a table or a list
            fixed.append(parts.pop(0))
            current = _unwrap(get_args(current)[-1])
    return fixed


def key_hint(
    model: type[BaseModel], prefix: str, loc: Sequence[str | int], environ: Iterable[str]
) -> str:
    """``, did you mean `kafka.bootstrap_servers`?`` for the unknown key at ``loc``, spelt as
    a variable (``DRIFTNET_KAFKA__BOOTSTRAP_SERVERS``) when one of ``environ`` set it; empty
    when nothing is close.

    >>> from driftnet.streams.settings import Settings
    >>> key_hint(Settings, "DRIFTNET_", ("harvests",), [])
    ', did you mean `harvest`?'
    >>> key_hint(Settings, "DRIFTNET_", ("kafka", "bootstrap_server"),
    ...          ["DRIFTNET_KAFKA__BOOTSTRAP_SERVER"])
    ', did you mean `DRIFTNET_KAFKA__BOOTSTRAP_SERVERS`?'
    """
    given = [str(part) for part in loc]
    fixed = closest_key(model, given)
    if not fixed or fixed == given:
        return ""
    variables = {name.upper() for name in environ}
    spelt = _variable(prefix, fixed) if _variable(prefix, given) in variables else ".".join(fixed)
    return f", did you mean `{spelt}`?"


def variable_hint(model: type[BaseModel], prefix: str, name: str) -> str:
    """``: did you mean `DRIFTNET_KAFKA__BOOTSTRAP_SERVERS`?`` for a variable whose section
    is misspelt or joined to its key by one underscore; empty when nothing is close.

    >>> from driftnet.streams.settings import Settings
    >>> variable_hint(Settings, "DRIFTNET_", "DRIFTNET_KAFKA_BOOTSTRAP_SERVERS")
    ': did you mean `DRIFTNET_KAFKA__BOOTSTRAP_SERVERS`?'
    >>> variable_hint(Settings, "DRIFTNET_", "DRIFTNET_HARVST__LOCATION")
    ': did you mean `DRIFTNET_HARVEST__LOCATION`?'
    >>> variable_hint(Settings, "DRIFTNET_", "DRIFTNET_NOTHING_LIKE_IT")
    ''
    """
    parts = name.removeprefix(prefix).lower().split("__")
    for section in model.model_fields:
        if parts[0].startswith(section + "_"):  # DRIFTNET_KAFKA_BOOTSTRAP_SERVERS
            parts = [section, parts[0].removeprefix(section + "_"), *parts[1:]]
            break
    fixed = closest_key(model, parts)
    return f": did you mean `{_variable(prefix, fixed)}`?" if fixed else ""


def _variable(prefix: str, key: Sequence[str]) -> str:
    return prefix + "__".join(key).upper()


def _keys(tp: Any) -> dict[str, Any] | None:
    """The keys a table of type ``tp`` takes, with their types; None when it is no model."""
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return {
            name: field.annotation
            for name, field in tp.model_fields.items()
            if not field.exclude  # never in a settings file
        }
    return None


def _unwrap(tp: Any) -> Any:
    """``tp`` without ``Annotated`` and ``None``; the model of a union that holds one."""
    if get_origin(tp) is Annotated:
        return _unwrap(get_args(tp)[0])
    if get_origin(tp) in (Union, types.UnionType):
        members = [_unwrap(arg) for arg in get_args(tp) if arg is not type(None)]
        models = [m for m in members if _keys(m) is not None]
        return (models or members)[0] if (models or members) else tp
    return tp

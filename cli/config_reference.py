"""The configuration reference: every setting of :class:`driftnet.streams.settings.Settings` as Markdown.

Walks the model recursively and renders, per section, a table of every setting: its dotted key
(as in TOML), its ``DRIFTNET_*`` environment variable, its type, its default (as TOML spells it,
secrets shown as unset) and its description (the field's attribute docstring). A table of named
entries (``rules.services``) or a list of tables (``alerts.routes``) is one row for itself, then
the rows of its entry with a ``<name>`` or ``[]`` placeholder. Pure and deterministic.

``python -m driftnet.cli.config_reference`` prints the reference; ``--write
docs/configuration.md`` rewrites the text between the ``config-reference`` markers of that page
(``make docs``).
"""

from __future__ import annotations

import inspect
import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from driftnet.cli.config_types import toml, type_of, unwrap
from driftnet.cli.doc_blocks import cell, code, reference_main, replace_between
from driftnet.streams.settings import ENV_PREFIX, Settings

START = "<!-- config-reference:start -->"
END = "<!-- config-reference:end -->"
REGENERATE = "make docs"
"""The command that rewrites the docs' reference (``python -m driftnet.cli.config_reference
--write docs/configuration.md``)."""

NAME = "<name>"
ITEM = "[]"

_INTRO = f"""\
Every setting, generated from the settings model: `driftnet config --reference` prints it and
`{REGENERATE}` rewrites this copy; the descriptions are the fields' docstrings. In the
environment a table or a list is one variable holding JSON
(`DRIFTNET_HARVEST__REDACTION__KINDS='["email"]'`) or, for a table, one variable per key; the
`<NAME>` of an entry of a named table is lowercased there, and the entries of a list of tables
(`[]`) have no variable of their own: set the whole list as JSON. A type marked *optional*
also takes null, in JSON only (TOML has no null)."""


@dataclass(frozen=True, slots=True)
class Row:
    """One setting (or one table of settings) of the reference."""

    key: str
    """Dotted, as in TOML: ``rules.services.<name>.latency_slo_ms``."""
    env: str | None
    """The environment variable; None inside a list, which only JSON can set."""
    type: str
    default: str
    """Markdown: the TOML value in backticks, or words (``unset``, ``depends on <name>``)."""
    description: str
    leaf: bool
    """A value rather than a table whose keys have rows of their own."""


@dataclass(frozen=True, slots=True)
class Section:
    """One top-level table of the settings (``kafka``, ``topics``...)."""

    name: str
    description: str
    rows: tuple[Row, ...]


def sections(model: type[BaseModel] = Settings) -> tuple[Section, ...]:
    """The reference of ``model``: one section per field, each with the rows of its keys."""
    found = []
    for name, field in model.model_fields.items():
        section_type = unwrap(field.annotation)
        default = field.get_default(call_default_factory=True)
        if not _is_model(section_type):
            raise TypeError(f"settings section {name} is not a model")
        description = field.description or _class_doc(section_type)
        instances = (default,) if isinstance(default, BaseModel) else None
        rows = tuple(_rows(section_type, (name,), (name.upper(),), instances))
        found.append(Section(name, _text(description), rows))
    return tuple(found)


def render(model: type[BaseModel] = Settings) -> str:
    """The reference as Markdown (no markers), ending with a newline."""
    parts = [_INTRO, ""]
    for section in sections(model):
        parts += [f"## `{section.name}`", ""]
        if section.description:
            parts += [section.description, ""]
        parts += [
            "| key | environment variable | type | default | description |",
            "|---|---|---|---|---|",
        ]
        for row in section.rows:
            env = code(row.env) if row.env else "(JSON only)"
            parts.append(
                f"| {code(row.key)} | {env} | {cell(row.type)} | {row.default} | "
                f"{cell(row.description)} |"
            )
        parts.append("")
    return "\n".join(parts)


def block(model: type[BaseModel] = Settings) -> str:
    """What stands between the markers: the reference with a blank line around it."""
    return f"\n{render(model)}\n"


def replace_block(text: str, reference: str) -> str:
    """``text`` with what stands between the two markers replaced by ``reference``."""
    return replace_between(text, START, END, reference)


def leaf_keys(model: type[BaseModel] = Settings) -> tuple[str, ...]:
    """The dotted key of every leaf setting in the reference."""
    return tuple(row.key for section in sections(model) for row in section.rows if row.leaf)


# --- walking the model ---------------------------------------------------------------------


def _rows(
    model: type[BaseModel],
    key: tuple[str, ...],
    env: tuple[str, ...] | None,
    instances: tuple[BaseModel, ...] | None,
) -> Iterator[Row]:
    """The rows of ``model``'s fields. ``instances``: the defaults of this table (one, or every
    entry of a named table's default); None when a new entry starts from the field defaults."""
    for name, field in model.model_fields.items():
        child_key = (*key, name)
        child_env = None if env is None else (*env, name.upper())
        value_type = unwrap(field.annotation)
        default = _default(field, name, instances)
        row_env = None if child_env is None else ENV_PREFIX + "__".join(child_env)
        description = field.description or ""
        dotted = ".".join(child_key)
        if _is_model(value_type):
            yield Row(
                dotted,
                row_env,
                "table",
                "",
                _text(description or _class_doc(value_type)),
                leaf=False,
            )
            nested = (default,) if isinstance(default, BaseModel) else None
            yield from _rows(value_type, child_key, child_env, nested)
            continue
        entry = _entry_model(value_type)
        if entry is not None:
            kind, item = entry
            if kind == "dict":
                values = tuple(default.values()) if isinstance(default, dict) else ()
                shown = _named_default(default)
                placeholder, entry_env = NAME, None if child_env is None else (*child_env, "<NAME>")
                entry_instances: tuple[BaseModel, ...] | None = values or None
                type_text = "table of tables, by name"
            else:
                shown = _shown_default(default)
                placeholder, entry_env, entry_instances = ITEM, None, None
                type_text = "list of tables"
            yield Row(dotted, row_env, type_text, shown, _text(description), leaf=False)
            entry_key = (*key, name + placeholder) if placeholder == ITEM else (*child_key, NAME)
            yield from _rows(item, entry_key, entry_env, entry_instances)
            continue
        yield Row(
            dotted,
            row_env,
            type_of(field),
            _shown_default(default),
            _text(description),
            leaf=True,
        )


_VARIES = object()
"""The default of a key that differs between the entries of a named table."""


def _default(field: FieldInfo, name: str, instances: tuple[BaseModel, ...] | None) -> Any:
    if instances is None:
        return field.get_default(call_default_factory=True)
    values = [getattr(instance, name) for instance in instances]
    if all(value == values[0] for value in values[1:]):
        return values[0]
    return _VARIES


def _named_default(default: Any) -> str:
    if not isinstance(default, dict) or not default:
        return _shown_default(default)
    return "one for each of " + ", ".join(code(name) for name in default)


def _shown_default(default: Any) -> str:
    """The default as Markdown."""
    if default is PydanticUndefined:
        return "required"
    if default is _VARIES:
        return f"depends on `{NAME}`"
    if default is None or isinstance(default, SecretStr):
        return "unset"
    return code(toml(default))


def _entry_model(tp: Any) -> tuple[Literal["dict", "list"], type[BaseModel]] | None:
    """``("dict", M)`` for ``dict[str, M]``, ``("list", M)`` for ``tuple[M, ...]``."""
    origin, args = get_origin(tp), get_args(tp)
    if origin is dict and _is_model(unwrap(args[1])):
        return "dict", unwrap(args[1])
    if origin in (tuple, list, frozenset, set) and args and _is_model(unwrap(args[0])):
        return "list", unwrap(args[0])
    return None


def _is_model(tp: Any) -> bool:
    return inspect.isclass(tp) and issubclass(tp, BaseModel)


def _class_doc(model: type[BaseModel]) -> str:
    return inspect.cleandoc(model.__doc__) if model.__doc__ else ""


# --- Markdown ------------------------------------------------------------------------------

_RST_LITERAL = re.compile(r"``(.+?)``")
_RST_ROLE = re.compile(r":[a-z]+:`~?([^`]+)`")


def _text(docstring: str) -> str:
    """A docstring as one line of Markdown."""
    text = " ".join(docstring.split())
    return _RST_LITERAL.sub(r"`\1`", _RST_ROLE.sub(r"`\1`", text))


def main(argv: Sequence[str] | None = None) -> int:
    """Print the reference, or with ``--write FILE`` put it between the markers of FILE."""
    return reference_main(
        argv,
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        render=render,
        block=block,
        markers=(START, END),
        what="configuration reference",
        example="docs/configuration.md",
    )


if __name__ == "__main__":
    sys.exit(main())

"""The CLI reference: every ``driftnet`` command and option as Markdown, from click's command tree.

Walks :data:`driftnet.cli.main.cli` (the group, its commands, then each group's subcommands, in
the order ``driftnet --help`` lists them) and renders, per command, its usage line, its help
text and a table of its options, each with what ``--help`` says of it (names, value, help,
default). Hidden commands and options are left out. Pure and deterministic: nothing depends on
the terminal, the environment or the settings.

``python -m driftnet.cli.cli_reference`` prints the reference; ``--write docs/cli.md`` rewrites
the text between the ``cli-reference`` markers of that page (``make docs``).
"""

from __future__ import annotations

import inspect
import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import click

from driftnet.cli.doc_blocks import cell, code, reference_main

START = "<!-- cli-reference:start -->"
END = "<!-- cli-reference:end -->"
PROG = "driftnet"

_INTRO = """\
Every command and option, generated from the commands themselves: their usage line, their help
and what `--help` says of each option. `make docs` rewrites this copy; a test keeps it equal to
the code."""


@dataclass(frozen=True, slots=True)
class Option:
    """One option as ``--help`` shows it."""

    names: str
    """``-o, --output FILE``: the option's spellings and its value."""
    help: str
    """Its help with click's extras (``[default: 24h]``, ``[required]``)."""


@dataclass(frozen=True, slots=True)
class Command:
    """One command of the tree, the group itself included."""

    path: tuple[str, ...]
    """The words after ``driftnet``: ``()`` for the group, ``("harvest", "show")``."""
    usage: str
    help: str
    options: tuple[Option, ...]
    subcommands: tuple[str, ...]
    """For a group: the names of its commands."""

    @property
    def name(self) -> str:
        """``driftnet harvest show``."""
        return " ".join((PROG, *self.path))


def commands(root: click.Command | None = None) -> tuple[Command, ...]:
    """Every command under ``root`` (default: the ``driftnet`` group), the group first."""
    if root is None:
        from driftnet.cli.main import cli

        root = cli
    return tuple(_walk(root, _context(root, PROG, None), ()))


def render(root: click.Command | None = None) -> str:
    """The reference as Markdown (no markers), ending with a newline."""
    parts = [_INTRO, ""]
    for command in commands(root):
        level = "#" * min(2 + max(len(command.path) - 1, 0), 4)
        parts += [f"{level} `{command.name}`", "", f"`{command.usage}`", ""]
        if command.help:
            parts += [_markdown(command.help), ""]
        if command.subcommands:
            listed = ", ".join(f"`{name}`" for name in command.subcommands)
            parts += [f"Commands: {listed}.", ""]
        if command.options:
            parts += ["| option | what it does |", "|---|---|"]
            parts += [
                f"| {_option(o.names)} | {cell(_markdown(o.help))} |" for o in command.options
            ]
            parts.append("")
    return "\n".join(parts)


def block(root: click.Command | None = None) -> str:
    """What stands between the markers: the reference with a blank line around it."""
    return f"\n{render(root)}\n"


def _walk(command: click.Command, ctx: click.Context, path: tuple[str, ...]) -> Iterator[Command]:
    names: tuple[str, ...] = ()
    if isinstance(command, click.Group):
        names = tuple(
            name for name in command.list_commands(ctx) if not _hidden(command, ctx, name)
        )
    yield Command(
        path=path,
        usage=" ".join((PROG, *path, *command.collect_usage_pieces(ctx))),
        help=_help_text(command),
        options=tuple(_options(command, ctx)),
        subcommands=names,
    )
    if isinstance(command, click.Group):
        for name in names:
            sub = command.get_command(ctx, name)
            assert sub is not None
            yield from _walk(sub, _context(sub, name, ctx), (*path, name))


def _context(command: click.Command, name: str, parent: click.Context | None) -> click.Context:
    """The context ``driftnet ... --help`` would make: the command's ``context_settings``
    applied (``-h`` as well as ``--help``), the rest inherited from the parent."""
    return click.Context(command, info_name=name, parent=parent, **command.context_settings)


def _hidden(group: click.Group, ctx: click.Context, name: str) -> bool:
    sub = group.get_command(ctx, name)
    return sub is None or sub.hidden


def _options(command: click.Command, ctx: click.Context) -> Iterator[Option]:
    params = list(command.params)
    help_names = command.get_help_option_names(ctx)
    if help_names and command.add_help_option:  # made afresh: click caches the first one made
        params.append(click.Option(help_names, is_flag=True, help="Show this message and exit."))
    for param in params:
        if not isinstance(param, click.Option) or param.hidden:
            continue
        record = param.get_help_record(ctx)
        if record is not None:
            yield Option(record[0], " ".join(record[1].split()))


def _help_text(command: click.Command) -> str:
    """The help as ``--help`` prints it before the options: up to a ``\\f``, paragraphs
    joined into lines (click's ``\\b`` blocks kept line by line)."""
    text = inspect.cleandoc(command.help or "").split("\f")[0]
    paragraphs = []
    for paragraph in re.split(r"\n\s*\n", text):
        lines = paragraph.splitlines()
        if lines and lines[0].strip() == "\b":
            paragraphs.append("  \n".join(line.strip() for line in lines[1:]))
        else:
            paragraphs.append(" ".join(line.strip() for line in lines))
    return "\n\n".join(p for p in paragraphs if p)


# --- Markdown ------------------------------------------------------------------------------

_SPECIAL = re.compile(r"([\\`*<>])")


def _markdown(text: str) -> str:
    """Plain help text as Markdown that shows it as written (no emphasis, code or tags;
    underscores inside words and brackets without a link target are shown as they are)."""
    return _SPECIAL.sub(r"\\\1", text)


def _option(names: str) -> str:
    """``--format [table|json]`` as the option's spellings in code and its value as text (a
    pipe inside code would split a table row on GitHub and show as ``\\|`` on the site)."""
    words = names.split(" ")
    count = next((i for i, word in enumerate(words) if not word.startswith(("-", "/"))), len(words))
    spelt = " ".join(words[:count])
    value = " ".join(words[count:])
    return f"{code(spelt)} {cell(_markdown(value))}" if value else code(spelt)


def main(argv: Sequence[str] | None = None) -> int:
    """Print the reference, or with ``--write FILE`` put it between the markers of FILE."""
    return reference_main(
        argv,
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        render=render,
        block=block,
        markers=(START, END),
        what="CLI reference",
        example="docs/cli.md",
    )


if __name__ == "__main__":
    sys.exit(main())

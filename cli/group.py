"""The ``driftnet`` group's way with a user's mistakes, each one line, never click's usage
block: a bad option value names the option (``Error: --since '2x' is not a time: use 24h,
...``); an unknown command or option says the one meant (``did you mean 'worker'?``); the
group's own ``--config`` given after a command says where it goes. Every group of the command
is a :class:`Group`; the root one turns the mistakes made anywhere beneath it into
:class:`UsageLine`."""

from __future__ import annotations

import difflib
from typing import Any

import click

ROOT_OPTIONS = ("--config",)
"""The root group's options: given after a command, they are another command's mistake."""


class UsageLine(click.ClickException):
    """A mistake in the command line, said in one line: exit code 2, as click's own."""

    exit_code = 2


def option_name(exc: click.BadParameter) -> str | None:
    """The option or argument a bad value was given to: its longest spelling (``--reason``),
    an argument's name (``PATH``), or the hint the code gave; None when unknown."""
    param = exc.param
    if isinstance(param, click.Option):
        return max(param.opts, key=len)
    if param is not None:
        return param.human_readable_name
    hint = exc.param_hint
    if isinstance(hint, str):
        return hint
    return hint[0] if hint else None


def bad_parameter_line(exc: click.BadParameter) -> str:
    """``--since '2x' is not a time: use ...``: the option, then what is wrong with its value."""
    name = option_name(exc)
    return f"{name} {exc.message}" if name else exc.message


def no_such_option_line(exc: click.NoSuchOption) -> str:
    """``driftnet export has no option --forse; did you mean --force?``; for a root option
    (``--config``) after a command, where it goes instead."""
    path = exc.ctx.command_path if exc.ctx else "driftnet"
    name = exc.option_name.partition("=")[0]
    if name in ROOT_OPTIONS and exc.ctx is not None and exc.ctx.parent is not None:
        root = exc.ctx.find_root().command_path
        rest = path.removeprefix(root).strip()
        return (
            f"{name} belongs to {root}, not to {rest}: put {name} before the command: "
            f"{root} {name} FILE {rest}"
        )
    close = difflib.get_close_matches(name, exc.possibilities or [], n=1)
    hint = f"; did you mean {close[0]}?" if close else f" ({path} -h lists them)"
    return f"{path} has no option {name}{hint}"


def no_such_command_line(ctx: click.Context, name: str, commands: list[str]) -> str:
    """``driftnet has no command 'wrker'; did you mean 'worker'?``."""
    close = difflib.get_close_matches(name, commands, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else f" ({ctx.command_path} -h lists them)"
    return f"{ctx.command_path} has no command {name!r}{hint}"


class Group(click.Group):
    """A click group whose root says a mistake beneath it in one line (:class:`UsageLine`)."""

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0] if args else ""
        unknown = self.get_command(ctx, name) is None and not name.startswith("-")
        if unknown and not ctx.resilient_parsing:
            raise UsageLine(no_such_command_line(ctx, name, self.list_commands(ctx)))
        return super().resolve_command(ctx, args)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.NoSuchOption as exc:
            raise UsageLine(no_such_option_line(exc)) from None

    def invoke(self, ctx: click.Context) -> Any:
        if ctx.parent is not None:
            return super().invoke(ctx)
        try:
            return super().invoke(ctx)
        except click.BadParameter as exc:
            raise UsageLine(bad_parameter_line(exc)) from None
        except click.NoSuchOption as exc:
            raise UsageLine(no_such_option_line(exc)) from None

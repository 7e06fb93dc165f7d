"""The ``driftnet`` group's way with a user's mistakes: a bad option value is one line that
names the option (``Error: --since '2x' is not a time: use 24h, ...``), never click's usage
block. Every group of the command is a :class:`Group`; the root one turns the mistakes made
anywhere beneath it into :class:`UsageLine`."""

from __future__ import annotations

from typing import Any

import click


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


class Group(click.Group):
    """A click group whose root says a mistake beneath it in one line (:class:`UsageLine`)."""

    def invoke(self, ctx: click.Context) -> Any:
        if ctx.parent is not None:
            return super().invoke(ctx)
        try:
            return super().invoke(ctx)
        except click.BadParameter as exc:
            raise UsageLine(bad_parameter_line(exc)) from None

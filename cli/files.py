"""Files the ``driftnet`` commands read and write, and how a path mistake is reported.

A command never writes over an existing file unless given ``--force``; ``-o -`` (or no
``-o``) is stdout where the output is text. Every path problem -- a missing file or folder, a
directory where a file was meant, no permission -- is one line (``Error: ...``, exit code 2,
as click's other bad parameters), never a traceback.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import click

STDOUT = "-"

F = TypeVar("F", bound=Callable[..., Any])


class PathError(click.ClickException):
    """A path the command cannot read or write: one line, exit code 2."""

    exit_code = 2


def force_option(what: str = "the --output file") -> Callable[[F], F]:
    """``--force``: write over ``what`` when it exists."""
    return click.option("--force", is_flag=True, help=f"Overwrite {what} if it exists.")


def output_target(path: str | None, *, force: bool, binary: bool = False) -> str | None:
    """Where to write: ``path`` checked, or None for stdout (no path, or ``-``).

    ``binary`` output (Parquet) has no stdout: it needs a file. Refused, one line each: an
    existing file without ``force``, a directory, a missing or read-only folder."""
    if path is None or path == STDOUT:
        if binary:
            raise PathError(
                "--format parquet needs --output FILE (Parquet is not written to stdout)"
            )
        return None
    target = Path(path)
    if target.is_dir():
        raise PathError(f"cannot write {path}: it is a directory")
    if target.is_file():
        if not force:
            raise PathError(f"{path} exists; pass --force to overwrite it")
        if not os.access(target, os.W_OK):
            raise PathError(f"cannot write {path}: permission denied")
        return path
    folder = target.parent
    if not folder.is_dir():
        why = "is not a directory" if folder.exists() else "does not exist"
        raise PathError(f"cannot write {path}: the folder {folder} {why}")
    if not target.exists() and not os.access(folder, os.W_OK | os.X_OK):
        raise PathError(f"cannot write {path}: permission denied in {folder}")
    return path


def open_output(target: str) -> BinaryIO:
    """``target`` opened for writing (after :func:`output_target`); a one-line
    :class:`PathError` if the system still refuses."""
    try:
        return open(target, "wb")
    except OSError as exc:
        raise PathError(f"cannot write {target}: {exc.strerror or exc}") from None


class InputFile(click.File):
    """``click.File`` for reading whose path mistakes are one line (no usage text)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            return super().convert(value, param, ctx)
        except click.BadParameter as exc:
            raise PathError(exc.format_message()) from None


class FolderPath(click.Path):
    """``click.Path`` whose mistakes are one line (no usage text)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            return super().convert(value, param, ctx)
        except click.BadParameter as exc:
            raise PathError(exc.format_message()) from None

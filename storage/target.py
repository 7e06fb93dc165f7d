"""Where the harvest lives: a local directory or any pyarrow filesystem URI, written safely.

A file appears whole or not at all. On a local disk it is written to a hidden temp name in the
same folder, fsynced, renamed over its final name and the folder fsynced, so a crash leaves at
worst a stray temp file (never matched by ``*.parquet``). On an object store (``s3://``) it is
written straight to its final key: a PUT is atomic, and a replay's PUT of the same name replaces
it whole.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from driftnet.storage.settings import masked_uri

COMPRESSION = "zstd"
ROW_GROUP_ROWS = 5_000
"""Rows per row group: small enough that a query reading a few columns of a few rows skips most
of a file, large enough that zstd and the column statistics pay off."""

TEMP_PREFIX = "."
TEMP_SUFFIX = ".tmp"


def first_line(exc: BaseException) -> str:
    """The first non-blank line of an error's message (its type's name when it has none):
    what a one-line error message quotes."""
    lines = [line for line in str(exc).strip().splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


class TargetError(Exception):
    """The harvest location cannot be used; ``str()`` is one line saying why."""


def partition_value(value: str) -> str:
    """A Hive partition value, percent-encoded so any service name makes one folder level
    (DuckDB and pyarrow decode it back)."""
    return quote(value, safe="-_.~ ")


@dataclass(frozen=True)
class Target:
    """A harvest root: ``filesystem`` plus the ``root`` path inside it."""

    filesystem: pafs.FileSystem
    root: str
    uri: str
    """Where the harvest is, for messages: credentials in the URI are masked."""

    @classmethod
    def of(cls, location: str | Path) -> Target:
        """A local directory path, or a URI pyarrow understands (``s3://bucket/prefix?...``)."""
        text = str(location)
        if "://" not in text:
            path = Path(text).expanduser().absolute()
            return cls(pafs.LocalFileSystem(), path.as_posix(), path.as_posix())
        try:
            filesystem, root = pafs.FileSystem.from_uri(text)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError) as exc:
            raise TargetError(f"cannot use harvest location {masked_uri(text)}: {exc}") from None
        return cls(filesystem, root.rstrip("/"), masked_uri(text))

    @property
    def is_local(self) -> bool:
        return isinstance(self.filesystem, pafs.LocalFileSystem)

    def path(self, *parts: str) -> str:
        return "/".join((self.root, *parts))

    def write_parquet(self, relative: str, table: pa.Table) -> None:
        """Write ``table`` to ``root/relative`` so readers see all of it or none of it."""
        final = self.path(relative)
        folder, _, name = final.rpartition("/")
        if not self.is_local:
            self.filesystem.create_dir(folder, recursive=True)
            with self.filesystem.open_output_stream(final) as out:
                _write(table, out)
            return
        os.makedirs(folder, exist_ok=True)
        temp = f"{folder}/{TEMP_PREFIX}{name}.{uuid.uuid4().hex[:8]}{TEMP_SUFFIX}"
        try:
            with open(temp, "wb") as out:
                _write(table, out)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temp, final)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
        _fsync_dir(folder)

    def delete(self, relative: str) -> None:
        self.filesystem.delete_file(self.path(relative))

    def delete_dir(self, relative: str) -> None:
        self.filesystem.delete_dir(self.path(relative))

    def list_parquet(self, relative: str = "") -> list[str]:
        """Every ``*.parquet`` below ``root/relative``, as paths relative to the root, sorted."""
        base = self.path(relative) if relative else self.root
        selector = pafs.FileSelector(base, recursive=True, allow_not_found=True)
        prefix = self.root + "/"
        found = []
        for info in self.filesystem.get_file_info(selector):
            if info.type != pafs.FileType.File or not info.base_name.endswith(".parquet"):
                continue
            if info.base_name.startswith(TEMP_PREFIX):
                continue
            found.append(info.path.removeprefix(prefix))
        return sorted(found)

    def list_dirs(self, relative: str = "") -> list[str]:
        """Immediate sub-folders of ``root/relative`` (their names)."""
        base = self.path(relative) if relative else self.root
        selector = pafs.FileSelector(base, recursive=False, allow_not_found=True)
        return sorted(
            info.base_name
            for info in self.filesystem.get_file_info(selector)
            if info.type == pafs.FileType.Directory
        )

    def exists(self, relative: str = "") -> bool:
        info = self.filesystem.get_file_info(self.path(relative) if relative else self.root)
        return bool(info.type != pafs.FileType.NotFound)

    def open_input(self, relative: str) -> pa.NativeFile:
        return self.filesystem.open_input_file(self.path(relative))

    def local_path(self, relative: str) -> str:
        """The OS path of a file (local targets only): what DuckDB reads directly."""
        return os.path.join(self.root, relative)


def _write(table: pa.Table, sink: object) -> None:
    pq.write_table(
        table,
        sink,
        compression=COMPRESSION,
        row_group_size=ROW_GROUP_ROWS,
        use_dictionary=True,
        write_statistics=True,
    )


def _fsync_dir(folder: str) -> None:
    """Make a rename durable: fsync the folder that holds the new name."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

"""A detector's learned state as JSON: the format's version, :class:`SnapshotError`, and the
readers every family's ``decode_summary`` uses to refuse a malformed value.

A snapshot is ``{"detector": <registered name>, "version": SNAPSHOT_VERSION, "state": ...}``;
numeric samples travel as base64 of their little-endian bytes (float32 or int8), so a snapshot
restores bit for bit and costs 4/3 of the samples' bytes.

>>> import numpy as np
>>> text = pack(np.array([1.5, 2.0], dtype=np.float32))
>>> text
'AADAPwAAAEA='
>>> unpack(text, np.float32).tolist()
[1.5, 2.0]
>>> unpack("AADAPw", np.float32)
Traceback (most recent call last):
...
driftnet.detectors.families.snapshot.SnapshotError: bad base64 sample: Incorrect padding
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any, Final

import numpy as np
import numpy.typing as npt

SNAPSHOT_VERSION: Final = 1
"""The snapshot format; a snapshot of another version is refused (:class:`SnapshotError`)."""


class SnapshotError(ValueError):
    """A snapshot this detector cannot restore (garbage, another detector's, another version);
    the detector it was given to is left as it was."""


def pack(array: npt.NDArray[Any]) -> str:
    """``array``'s values (row-major) as base64 of little-endian bytes; the caller knows the
    dtype and the row width."""
    little = array.dtype.newbyteorder("<")
    return base64.b64encode(np.ascontiguousarray(array, dtype=little).tobytes()).decode("ascii")


def unpack(text: Any, dtype: type[np.generic], columns: int = 1) -> npt.NDArray[Any]:
    """What :func:`pack` packed: a writable array of ``dtype``, shaped ``(rows, columns)``
    when ``columns`` is more than 1, else flat."""
    if not isinstance(text, str):
        raise SnapshotError(f"a sample is base64 text, got {type(text).__name__}")
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SnapshotError(f"bad base64 sample: {exc}") from None
    little = np.dtype(dtype).newbyteorder("<")
    if len(raw) % (little.itemsize * columns):
        raise SnapshotError(f"{len(raw)} bytes are not rows of {columns} {little.name}")
    values = np.frombuffer(raw, dtype=little).astype(dtype)
    return values.reshape(-1, columns) if columns > 1 else values


def as_int(value: Any) -> int:
    """``value`` when it is an integer (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise SnapshotError(f"expected an integer, got {value!r:.40}")
    return value


def as_float(value: Any) -> float:
    """``value`` as a float when it is a number (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SnapshotError(f"expected a number, got {value!r:.40}")
    return float(value)


def as_list(value: Any, length: int | None = None) -> list[Any]:
    """``value`` when it is a list (of ``length`` items, when given)."""
    if not isinstance(value, list) or (length is not None and len(value) != length):
        wanted = "a list" if length is None else f"a list of {length}"
        raise SnapshotError(f"expected {wanted}, got {value!r:.40}")
    return value


def as_mapping(value: Any) -> Mapping[str, Any]:
    """``value`` when it is a mapping with string keys."""
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise SnapshotError(f"expected an object, got {value!r:.40}")
    return value


def state_of(snapshot: Any, name: str) -> Any:
    """The ``state`` of ``snapshot`` when it is a snapshot of detector ``name`` in this
    version of the format."""
    body = as_mapping(snapshot)
    if body.get("detector") != name:
        raise SnapshotError(f"a snapshot of {body.get('detector')!r:.60}, not of {name!r}")
    if body.get("version") != SNAPSHOT_VERSION:
        raise SnapshotError(
            f"snapshot version {body.get('version')!r:.20} of {name!r}; this driftnet reads "
            f"version {SNAPSHOT_VERSION}"
        )
    if "state" not in body:
        raise SnapshotError(f"a snapshot of {name!r} without its state")
    return body["state"]

"""Text drift's part of the drift detector: the reference texts it keeps and the checks it asks
for. Pure and cheap; the check itself runs elsewhere
(:func:`driftnet.detectors.families.text_check.text_drift_check`, in the checker process).

Each window's sampled texts (:class:`~driftnet.detectors.windowing.texts.TextSample`) are
thinned to ``texts_per_window`` and kept compressed in a ring of the last ``reference_windows
+ check_every_windows - 1`` windows with texts. Every ``check_every_windows`` windows (or when
the cheap tier moves) a :class:`TextCheckRequest` compares the texts since the last check (the
newest window's whole sample and the earlier windows' thinned ones) with the
``reference_windows`` windows before them: a drift that began after one check is not in the
reference of the next.

>>> from driftnet.detectors.settings import DetectorSettings, DriftSettings, TextDriftSettings
>>> from driftnet.detectors.windowing.observation import Observation
>>> from driftnet.detectors.windowing.partials import Partial
>>> from driftnet.detectors.windowing.texts import SampledText
>>> from driftnet.detectors.windowing.windows import Window
>>> cohort = ("chat", "production", "r1", "baseline")
>>> def window(i):
...     p = Partial.empty(cohort, Window(60 * i, 60 * i + 60), "*")
...     for j in range(40):
...         text = SampledText(f"question {j}?", f"answer {j}", 12, 9)
...         p.add(Observation(f"e{i}-{j}", 60.0 * i, cohort, texts=lambda t=text: t))
...     return p
>>> text = TextDriftSettings(check_every_windows=2, reference_windows=3, texts_per_window=8)
>>> settings = DriftSettings(text=text)
>>> texts = TextReference()
>>> requests = [texts.update(window(i), settings) for i in range(7)]
>>> [request is not None for request in requests]  # once 16 reference texts, every 2nd window
[False, False, False, True, False, True, False]
>>> [len(side) for side in requests[5].texts()]  # 16 of the newest window + 8, vs 3 x 8
[24, 24]
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any, Final

from driftnet.detectors.families.snapshot import SnapshotError, as_int, as_list, as_mapping
from driftnet.detectors.finding import ReferenceKind
from driftnet.detectors.settings import DriftSettings
from driftnet.detectors.windowing.observation import Cohort
from driftnet.detectors.windowing.partials import Partial
from driftnet.detectors.windowing.samples import seed_of
from driftnet.detectors.windowing.texts import SampledText, pack_texts, unpack_texts
from driftnet.detectors.windowing.windows import Window

NO_TEXT: Final = (
    "no text sampled in this window (content not captured, or text_samples = 0): text drift "
    "cannot judge it"
)
SIDES: Final = ("input", "output")
"""What the users asked (the last user message), what the model answered."""
MAX_CANDIDATES: Final = 16
"""Kept full records of the window sent with a check, to pick the drift evidence from."""


@dataclass(frozen=True, slots=True)
class TextCheckRequest:
    """Everything a text drift check needs, picklable for the checker process."""

    cohort: Cohort
    window: Window
    current: tuple[bytes, ...]
    """The texts since the last check: packed (:func:`pack_texts`), one blob per window."""
    reference: tuple[bytes, ...]
    """The reference windows' texts, packed likewise."""
    settings: DriftSettings
    chars: int
    """Characters the texts were cut to (the window's ``text_chars``): the evidence
    candidates are cut alike."""
    examples: tuple[tuple[str, bytes], ...]
    """(event id, zlib-compressed JSON) of the newest window's kept records: the evidence a
    finding is backed by is picked among them."""
    triggered: bool
    """The cheap tier moved (else the check is on cadence): it goes first."""
    reference_kind: ReferenceKind = "trailing"

    def texts(self) -> tuple[list[SampledText], list[SampledText]]:
        """The window's texts and the reference's."""
        return (
            [t for blob in self.current for t in unpack_texts(blob)],
            [t for blob in self.reference for t in unpack_texts(blob)],
        )

    @property
    def seed(self) -> int:
        """The check's seed (its folds): the same request gives the same verdict."""
        return seed_of(*self.cohort, self.window.start, "text")


class TextReference:
    """The packed texts of the last windows that had some, and when the next check is due."""

    __slots__ = ("_counts", "_reason", "_ring", "_since")

    def __init__(self) -> None:
        self._ring: list[bytes] = []
        self._counts: list[int] = []
        self._since = 0
        """Windows in the ring since the last check (the current group, newest last)."""
        self._reason: str | None = None

    @property
    def reason(self) -> str | None:
        """Why the last window asked for no text check although one was due, or had no texts
        to keep (None: a check was asked for, or none was due yet)."""
        return self._reason

    @property
    def windows(self) -> int:
        return len(self._ring)

    @property
    def nbytes(self) -> int:
        """Bytes of packed texts held."""
        return sum(map(len, self._ring))

    def update(
        self, window: Partial, settings: DriftSettings, triggered: bool = False
    ) -> TextCheckRequest | None:
        """Keep ``window``'s sampled texts; the check due now, if any (on cadence, or
        ``triggered`` by the cheap tier)."""
        text = settings.text
        sampled = [item.text for item in window.texts.items]
        if not sampled:
            self._reason = NO_TEXT if window.count else None
            return None
        request = None
        self._reason = None
        split = len(self._ring) - self._since
        if triggered or self._since + 1 >= text.check_every_windows:
            reference = slice(max(split - text.reference_windows, 0), split)
            have = sum(self._counts[reference])
            current = len(sampled) + sum(self._counts[split:])
            if min(have, current) >= text.min_texts:
                request = TextCheckRequest(
                    cohort=window.cohort,
                    window=window.window,
                    current=(*self._ring[split:], pack_texts(sampled)),
                    reference=tuple(self._ring[reference]),
                    settings=settings,
                    chars=window.settings.text_chars,
                    examples=_candidates(window),
                    triggered=triggered,
                )
            else:
                self._reason = (
                    f"text drift cannot judge yet: {current} texts since the last check and "
                    f"{have} in the reference, {text.min_texts} needed on each side"
                )
        kept = sampled[: text.texts_per_window]  # the highest ranks: a uniform pick
        self._ring.append(pack_texts(kept))
        self._counts.append(len(kept))
        self._since = 0 if request else min(self._since + 1, text.check_every_windows - 1)
        del self._ring[: -(text.reference_windows + text.check_every_windows - 1)]
        del self._counts[: -(text.reference_windows + text.check_every_windows - 1)]
        return request

    def clear(self) -> None:
        self._ring, self._counts, self._since, self._reason = [], [], 0, None

    def state(self) -> dict[str, Any]:
        """JSON-able: the packed texts (base64) and the windows since the last check."""
        return {
            "windows": [base64.b64encode(blob).decode("ascii") for blob in self._ring],
            "counts": self._counts,
            "since": self._since,
        }

    @classmethod
    def parse(cls, state: Any) -> TextReference:
        """The reference :meth:`state` saved; raises ``SnapshotError`` on anything else."""
        body = as_mapping(state)
        ring = []
        for text in as_list(body["windows"]):
            if not isinstance(text, str):
                raise SnapshotError(f"packed texts are base64 text, got {text!r:.40}")
            try:
                blob = base64.b64decode(text, validate=True)
                unpack_texts(blob)
            except (binascii.Error, ValueError) as exc:
                raise SnapshotError(f"bad packed texts: {exc}") from None
            ring.append(blob)
        counts = [as_int(c) for c in as_list(body["counts"], len(ring))]
        since = as_int(body["since"])
        if not 0 <= since <= len(ring):
            raise SnapshotError(f"{since} windows since the last check, of {len(ring)}")
        reference = cls()
        reference._ring, reference._counts, reference._since = ring, counts, since
        return reference


def _candidates(window: Partial) -> tuple[tuple[str, bytes], ...]:
    """The window's kept records (typical ones first: a uniform pick), each once."""
    seen: dict[str, bytes] = {}
    kinds = sorted(window.examples.kinds, key=lambda kind: not kind.startswith("typical."))
    for kind in kinds:
        for example in window.examples.of(kind):
            seen.setdefault(example.event_id, example.packed)
    return tuple(seen.items())[:MAX_CANDIDATES]

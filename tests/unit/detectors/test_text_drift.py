"""Text drift in the drift detector: the reference texts it keeps (bounded, in its snapshot),
the checks it asks for (on cadence, or when the cheap tier moves), and what it says when
content is absent."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from driftnet.detectors.cohort import CohortDetectors
from driftnet.detectors.config import DetectorsConfig
from driftnet.detectors.families.drift import DriftDetector
from driftnet.detectors.families.snapshot import SnapshotError
from driftnet.detectors.families.text_check import text_check_findings, text_drift_check
from driftnet.detectors.families.text_descriptors import language_of
from driftnet.detectors.settings import DetectorSettings
from driftnet.detectors.windowing.partials import Partial
from tests.support.detector_streams import COHORT, stream
from tests.support.texts import HEALTHY, text_stream

DEFAULTS = DetectorSettings().drift.text
RING = DEFAULTS.reference_windows + DEFAULTS.check_every_windows - 1


def _checks(detector: DriftDetector, windows: list[Partial]) -> list[int]:
    """The indexes of the windows whose update asked for a text check."""
    return [i for i, w in enumerate(windows) if detector.update(w).text_check is not None]


def _json(snapshot: dict[str, Any]) -> Any:
    return json.loads(json.dumps(snapshot, allow_nan=False))


def test_a_check_every_five_windows_once_the_reference_holds_enough_texts() -> None:
    """With 6 texts a window kept and 16 needed, the reference (the windows before the group
    of the last 4) has enough at the 8th window; then a check every 5 windows, comparing the
    newest window's 16 texts and 4 x 6 before it with up to 6 x 6."""
    detector = DriftDetector()
    windows = text_stream(1, 23)
    assert _checks(detector, windows) == [7, 12, 17, 22]
    request = detector.text_check
    assert request is not None
    current, reference = request.texts()
    assert (len(current), len(reference)) == (16 + 4 * 6, 6 * 6)
    assert not request.triggered
    assert request.examples  # the window's kept records, to pick evidence from


def test_a_drift_after_one_check_is_not_in_the_next_checks_reference() -> None:
    """Answers switch to Spanish the window after a check: the next check compares the
    Spanish windows with English ones only, and the classifier fires."""
    detector = DriftDetector()
    assert _checks(detector, text_stream(4, 8)) == [7]
    spanish = text_stream(5, 5, HEALTHY.with_(language="es"), first=8)
    requests = [detector.update(w).text_check for w in spanish]
    assert [r is not None for r in requests] == [False] * 4 + [True]
    request = requests[-1]
    assert request is not None
    current, reference = request.texts()
    assert {language_of(t.output or "", "latin") for t in reference} == {"en"}
    assert "en" not in {language_of(t.output or "", "latin") for t in current}
    metrics = {f.metric for f in text_check_findings(request, text_drift_check(request))}
    assert "drift[text.output]" in metrics


def test_the_cheap_tier_moving_asks_for_a_text_check_at_once() -> None:
    """A window whose latencies tripled (the cheap tier fires) asks for a text check before
    it is due, marked triggered (it goes first in the budget queue)."""
    detector = DriftDetector()
    windows = text_stream(6, 9)
    assert _checks(detector, windows) == [7]
    (slow,) = text_stream(7, 1, first=9)
    slow.reservoir.numeric[:, 0] *= 3.0  # latency_ms
    request = detector.update(slow).text_check
    assert detector.drift_detected
    assert request is not None
    assert request.triggered


def test_without_content_the_detector_says_it_cannot_judge() -> None:
    """Windows whose content was not captured ask for no text check, ever, and say why; the
    cohort's detectors pass the reason on."""
    watch = CohortDetectors.of(DetectorsConfig(), COHORT)
    for window in stream(8, 12):
        watch.update(window)
        assert watch.text_checks == []
    assert "cannot judge" in (watch.text_reason or "")
    assert "content not captured" in (watch.text_reason or "")


def test_too_few_texts_so_far_is_said_too() -> None:
    """A due check without enough reference texts yet says how many it has and needs."""
    detector = DriftDetector()
    for window in text_stream(9, 5):
        detector.update(window)
    assert detector.text_reason == (
        "text drift cannot judge yet: 40 texts since the last check and 0 in the reference, "
        "16 needed on each side"
    )


def test_the_reference_texts_are_bounded() -> None:
    """After 60 windows the detector keeps 10 windows of 6 texts (the 6 of the reference and
    the 4 since the last check), about 1 KB a window packed (generated texts); the snapshot
    does not grow."""
    detector = DriftDetector()
    windows = text_stream(10, 60)
    for window in windows[:20]:
        detector.update(window)
    size = len(json.dumps(detector.snapshot()))
    for window in windows[20:]:
        detector.update(window)
    texts = detector._texts
    assert texts.windows == RING == 10
    assert texts.nbytes < 1_500 * RING
    assert len(json.dumps(detector.snapshot())) <= 1.05 * size


def test_a_restored_detector_asks_for_the_same_text_checks() -> None:
    """Snapshotted (as JSON) after 9 windows and restored into a fresh detector, it asks
    for exactly the checks the uninterrupted one asks for, with the same texts."""
    windows = text_stream(11, 20)
    original = DriftDetector()
    for window in windows[:9]:
        original.update(window)
    restored = DriftDetector().restore(_json(original.snapshot()))
    assert _json(restored.snapshot()) == _json(original.snapshot())
    asked = [original.update(w).text_check for w in windows[9:]]
    assert [restored.update(w).text_check for w in windows[9:]] == asked
    assert any(asked)


def test_a_snapshot_from_before_text_drift_restores_without_texts() -> None:
    """A drift snapshot without texts (written before text drift) restores the numeric
    reference and starts the texts afresh."""
    original = DriftDetector()
    for window in text_stream(12, 9):
        original.update(window)
    snapshot = _json(original.snapshot())
    del snapshot["state"]["text"]
    restored = DriftDetector().restore(snapshot)
    assert restored.history_size == original.history_size
    assert restored._texts.windows == 0


@pytest.mark.parametrize(
    "text",
    [
        {"windows": ["%%%"], "counts": [1], "since": 0},
        {"windows": ["eJwLycgsVgCi4tTEnPwUAB2HBN8="], "counts": [1], "since": 0},  # zlib, not JSON
        {"windows": [], "counts": [3], "since": 0},
        {"windows": [], "counts": [], "since": 4},
        "none",
    ],
    ids=["not-base64", "not-packed-texts", "counts-mismatch", "since-beyond", "not-an-object"],
)
def test_unreadable_texts_in_a_snapshot_are_refused(text: Any) -> None:
    """A snapshot whose texts are garbage raises SnapshotError and changes nothing."""
    detector = DriftDetector()
    for window in text_stream(13, 9):
        detector.update(window)
    snapshot = _json(detector.snapshot())
    with pytest.raises(SnapshotError):
        detector.restore({**snapshot, "state": {**snapshot["state"], "text": text}})
    assert _json(detector.snapshot()) == snapshot


def test_reset_forgets_the_texts() -> None:
    """reset() drops the reference texts and the cadence, as a fresh clone's."""
    detector = DriftDetector()
    windows = text_stream(14, 9)
    for window in windows:
        detector.update(window)
    detector.reset()
    assert _json(detector.snapshot()) == _json(DriftDetector().snapshot())
    assert np.array_equal(_checks(detector, windows), _checks(DriftDetector(), windows))

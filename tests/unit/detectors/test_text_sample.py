"""The texts a window samples for text drift: bounded, uniform, made only for the calls kept,
merged exactly in any order, and carried in the partial's JSON."""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable

import numpy as np

from driftnet.detectors.settings import AggregateSettings
from driftnet.detectors.windowing.observation import Observation
from driftnet.detectors.windowing.partials import Partial
from driftnet.detectors.windowing.samples import uniform_rank
from driftnet.detectors.windowing.texts import SampledText, TextSample
from driftnet.detectors.windowing.windows import Window
from tests.support.detector_streams import COHORT

W = Window(0, 60)


class Maker:
    """Texts made on demand, counting how often they were."""

    def __init__(self) -> None:
        self.made = 0

    def __call__(self, event_id: str) -> Callable[[], SampledText]:
        def make() -> SampledText:
            self.made += 1
            return SampledText(f"asked {event_id}?", f"answer {event_id}", 10, 10)

        return make


def _partial(events: range, source: str = "p0", maker: Maker | None = None) -> Partial:
    maker = maker or Maker()
    partial = Partial.empty(COHORT, W, source)
    for i in events:
        partial.add(Observation(f"e{i}", 1.0, COHORT, texts=maker(f"e{i}")))
    return partial


def test_the_sample_keeps_the_highest_ranks_and_makes_only_what_it_keeps() -> None:
    """Of 2,000 calls, the 16 with the highest uniform ranks are kept; texts were made about
    16 x (1 + ln(2000 / 16)) = 93 times, not 2,000."""
    maker = Maker()
    partial = _partial(range(2000), maker=maker)
    kept = [item.event_id for item in partial.texts.items]
    expected = sorted((f"e{i}" for i in range(2000)), key=uniform_rank, reverse=True)[:16]
    assert kept == expected
    assert 16 <= maker.made <= 150
    assert partial.texts.items[0].text.input == f"asked {kept[0]}?"


def test_the_sample_is_uniform_over_the_window() -> None:
    """Ranks are a hash of the event id: the kept calls come from the whole window."""
    positions = [int(i.event_id[1:]) for i in _partial(range(10_000)).texts.items]
    assert 2_500 < float(np.mean(positions)) < 7_500


def test_calls_without_content_and_a_zero_sample_size_keep_nothing() -> None:
    """No texts captured (``texts`` None), or ``text_samples = 0``: nothing sampled, nothing
    made."""
    partial = Partial.empty(COHORT, W, "p0")
    partial.add(Observation("e1", 1.0, COHORT))
    assert len(partial.texts) == 0
    maker = Maker()
    off = Partial.empty(COHORT, W, "p0", AggregateSettings(text_samples=0))
    off.add(Observation("e1", 1.0, COHORT, texts=maker("e1")))
    assert (len(off.texts), maker.made) == (0, 0)


def test_merged_samples_are_the_sample_of_the_union_in_any_order() -> None:
    """Three sources' samples merge into exactly the sample one source seeing every call
    would have kept, whatever the order."""
    parts = [_partial(range(i, 3000, 3), f"p{i}") for i in range(3)]
    whole = _partial(range(3000))
    for order in (parts, parts[::-1]):
        merged = Partial.merge(order)
        assert merged.texts.to_dict() == whole.texts.to_dict()


def test_the_sample_survives_json_and_pickle_and_old_partials_have_none() -> None:
    """The partial's JSON (the aggregates message) and pickle carry the sample unchanged; a
    partial written before texts were sampled reads back with an empty sample."""
    partial = _partial(range(100))
    again = Partial.from_dict(json.loads(json.dumps(partial.to_dict())))
    assert again.texts.to_dict() == partial.texts.to_dict()
    assert pickle.loads(pickle.dumps(partial)).texts.to_dict() == partial.texts.to_dict()
    old = {k: v for k, v in partial.to_dict().items() if k != "texts"}
    assert len(Partial.from_dict(old).texts) == 0


def test_a_sample_read_back_goes_on_sampling_as_the_original() -> None:
    """From its JSON, a sample keeps what the original would keep of later calls."""
    original = TextSample(4)
    for i in range(50):
        original.offer(uniform_rank(f"a{i}"), f"a{i}", lambda: SampledText("q", "a", 1, 1))
    copy = TextSample.from_dict(original.to_dict(), 4)
    for i in range(50):
        for sample in (original, copy):
            sample.offer(uniform_rank(f"b{i}"), f"b{i}", lambda: SampledText("q", "a", 1, 1))
    assert copy.to_dict() == original.to_dict()

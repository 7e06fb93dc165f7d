"""Detector settings: defaults, per-service and per-cohort overrides, the registry's names."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from driftnet.detectors.cohort import CohortDetectors
from driftnet.detectors.config import DetectorsConfig
from driftnet.detectors.families.registry import REGISTRY, UnknownDetectorError, create
from driftnet.detectors.settings import PriceEntry, PriceTable

CHAT = ("support-chat", "production", "gpt-4o+v7", "baseline")
CANARY = ("support-chat", "production", "gpt-4o+v8", "canary")
INVOICES = ("invoice-extractor", "production", "r1", "baseline")


def test_service_override_inherits_what_it_leaves_out() -> None:
    """A service table changes only the keys it sets; the rest come from the defaults."""
    config = DetectorsConfig.model_validate(
        {
            "defaults": {"latency": {"slo_p95_ms": 8000, "alpha": 0.01}},
            "services": {"invoice-extractor": {"latency": {"slo_p95_ms": 30000}}},
        }
    )
    assert config.for_cohort(INVOICES).latency.slo_p95_ms == 30000
    assert config.for_cohort(INVOICES).latency.alpha == 0.01
    assert config.for_cohort(CHAT).latency.slo_p95_ms == 8000


def test_cohort_patterns_apply_in_order_after_the_service() -> None:
    """fnmatch patterns on service/environment/release/variant; later ones win."""
    config = DetectorsConfig.model_validate(
        {
            "services": {"support-chat": {"quality": {"min_delta": 0.05}}},
            "cohorts": [
                {"pattern": "support-chat/*/*/canary", "quality": {"min_delta": 0.01}},
                {"pattern": "*/production/gpt-4o+v8/*", "reference_windows": 20},
            ],
        }
    )
    assert config.for_cohort(CHAT).quality.min_delta == 0.05
    assert config.for_cohort(CANARY).quality.min_delta == 0.01
    assert config.for_cohort(CANARY).reference_windows == 20
    assert config.for_cohort(CHAT).reference_windows == 10


@pytest.mark.parametrize(
    ("data", "match"),
    [
        pytest.param(
            {"services": {"x": {"latency": {"slo_p95_ms": -1}}}}, "services.x", id="bad-value"
        ),
        pytest.param({"services": {"x": {"latncy": {}}}}, "latncy", id="misspelt-key"),
        pytest.param(
            {"cohorts": [{"pattern": "x/*", "volume": {"spike_ratio": 0.5}}]},
            "x/\\*",
            id="bad-pattern-value",
        ),
        pytest.param(
            {"defaults": {"reference_windows": 3, "min_reference_windows": 5}},
            "min_reference_windows",
            id="too-little-history",
        ),
        pytest.param({"enabled": ["latency.p97.v1"]}, "latency.p97.v1", id="unknown-detector"),
    ],
)
def test_mistakes_are_refused_with_the_key_named(data: dict[str, object], match: str) -> None:
    """A bad override is refused when the config loads, not when a cohort first shows up."""
    with pytest.raises(ValidationError, match=match):
        DetectorsConfig.model_validate(data)


def test_price_table_prices_per_million_tokens() -> None:
    """Cost = tokens x price per million; an unknown model or no tokens is not priced."""
    table = PriceTable(version="v3", models={"m": PriceEntry(input_per_mtok=3, output_per_mtok=15)})
    assert table.price("m", 1_000_000, 100_000) == pytest.approx(4.5)
    assert table.price("other", 10, 10) is None
    assert table.price("m", None, None) is None


def test_unknown_detector_lists_the_known_names() -> None:
    """Asking for a name that is not registered says which names exist."""
    with pytest.raises(UnknownDetectorError) as error:
        create("latency.p97.v1")
    assert "latency.p97.v1" in str(error.value)
    assert "latency.p95.v1" in str(error.value)


def test_names_are_versioned() -> None:
    """Every registered name is family.metric.vN."""
    for name in REGISTRY:
        family, *_, version = name.split(".")
        assert family in {"volume", "latency", "cost", "quality", "drift"}
        assert version[0] == "v"
        assert version[1:].isdigit()


def test_cohort_detectors_run_the_enabled_ones_with_the_cohorts_settings() -> None:
    """A cohort's detectors are the enabled names, built with its effective settings."""
    config = DetectorsConfig.model_validate(
        {
            "enabled": ["latency.p95.v1", "volume.drop.v1"],
            "services": {"support-chat": {"reference_windows": 4, "min_reference_windows": 2}},
        }
    )
    watch = CohortDetectors.of(config, CHAT)
    assert sorted(watch.detectors) == ["latency.p95.v1", "volume.drop.v1"]
    assert all(d.settings.reference_windows == 4 for d in watch.detectors.values())


def test_a_canarys_volume_is_not_watched() -> None:
    """Volume detectors watch baseline cohorts only: a canary's traffic is dialled up, down or
    to zero on purpose (a rollback is not an outage); its other detectors all run."""
    canary = (*CHAT[:3], "canary")
    baseline = (*CHAT[:3], "baseline")
    watched = set(CohortDetectors.of(DetectorsConfig(), canary).detectors)
    assert not watched & {"volume.drop.v1", "volume.spike.v1"}
    assert "latency.p95.v1" in watched
    assert {"volume.drop.v1", "volume.spike.v1"} <= set(
        CohortDetectors.of(DetectorsConfig(), baseline).detectors
    )
    config = DetectorsConfig.model_validate({"canary": {"baseline_variant": "control"}})
    assert "volume.drop.v1" in CohortDetectors.of(config, (*CHAT[:3], "control")).detectors
    assert "volume.drop.v1" not in CohortDetectors.of(config, baseline).detectors

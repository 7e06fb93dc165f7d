"""The ``[detectors]`` table: which detectors run, with defaults and service and cohort overrides.

Overrides inherit every key they leave out, section by section::

    [detectors.defaults.latency]
    slo_p95_ms = 8000

    [detectors.services.invoice-extractor.latency]
    slo_p95_ms = 30000          # the rest of [latency] comes from the defaults

    [[detectors.cohorts]]
    pattern = "support-chat/production/*/canary"   # fnmatch on service/environment/release/variant
    quality = { min_delta = 0.01 }

The effective settings of a cohort are the defaults, then its service's override, then every
matching cohort pattern in order (later wins).
"""

from __future__ import annotations

from collections.abc import Mapping
from fnmatch import fnmatchcase
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from driftnet.detectors.canary.config import CanarySettings
from driftnet.detectors.families.registry import check_names
from driftnet.detectors.settings import (
    AggregateSettings,
    DetectorSettings,
    PriceTable,
    WindowSettings,
)
from driftnet.detectors.windowing.observation import Cohort

_STRICT = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class _Section(BaseModel):
    model_config = _STRICT


class CohortOverride(_Section):
    """Settings for cohorts whose ``service/environment/release/variant`` matches ``pattern``."""

    pattern: str = Field(min_length=1)
    """fnmatch pattern on ``service/environment/release/variant``."""
    settings: dict[str, Any] = Field(default_factory=dict)
    """Partial ``detectors.defaults`` tables (``latency = {...}``); may also be given flat,
    beside ``pattern``."""

    @model_validator(mode="before")
    @classmethod
    def _flat(cls, data: Any) -> Any:
        """``{pattern = "...", latency = {...}}`` is short for ``settings = {latency = {...}}``."""
        if isinstance(data, Mapping) and "settings" not in data:
            rest = {k: v for k, v in data.items() if k != "pattern"}
            return {"pattern": data.get("pattern"), "settings": rest}
        return data


def _deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


class DetectorsConfig(_Section):
    """Everything the windowed detectors can be told (the ``[detectors]`` table)."""

    windows: WindowSettings = Field(default_factory=WindowSettings)
    aggregate: AggregateSettings = Field(default_factory=AggregateSettings)
    prices: PriceTable = Field(default_factory=PriceTable)
    enabled: tuple[str, ...] | None = None
    """Detector names to run (see ``driftnet.detectors.families.registry``); unset runs every one."""
    defaults: DetectorSettings = Field(default_factory=DetectorSettings)
    services: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """Per-service overrides of ``defaults`` (partial tables)."""
    cohorts: tuple[CohortOverride, ...] = ()
    """Overrides for the cohorts matching a pattern, applied after the service's in order (a
    later one wins)."""
    canary: CanarySettings = Field(default_factory=CanarySettings)
    """The canary judge (see ``driftnet.detectors.canary.judge``)."""
    _effective: dict[tuple[str | None, tuple[int, ...]], DetectorSettings] = PrivateAttr(
        default_factory=dict
    )

    @model_validator(mode="after")
    def _overrides_valid(self) -> DetectorsConfig:
        base = self.defaults.model_dump()
        for service, override in self.services.items():
            try:
                DetectorSettings.model_validate(_deep_merge(base, override))
            except ValueError as exc:
                raise ValueError(f"services.{service}: {exc}") from exc
        for rule in self.cohorts:
            try:
                DetectorSettings.model_validate(_deep_merge(base, rule.settings))
            except ValueError as exc:
                raise ValueError(f"cohorts[{rule.pattern!r}]: {exc}") from exc
        if self.enabled is not None:
            check_names(self.enabled)
        return self

    def for_cohort(self, cohort: Cohort) -> DetectorSettings:
        """The effective settings of ``cohort``; cohorts with the same overrides share one
        object (a detector keeps a reference to its settings)."""
        key = "/".join(cohort)
        matching = tuple(i for i, rule in enumerate(self.cohorts) if fnmatchcase(key, rule.pattern))
        service = cohort[0] if self.services.get(cohort[0]) else None
        cached = self._effective.get((service, matching))
        if cached is not None:
            return cached
        merged = self.defaults.model_dump()
        if service is not None:
            merged = _deep_merge(merged, self.services[service])
        for index in matching:
            merged = _deep_merge(merged, self.cohorts[index].settings)
        settings = DetectorSettings.model_validate(merged)
        self._effective[(service, matching)] = settings
        return settings

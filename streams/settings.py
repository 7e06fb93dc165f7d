"""Settings: one frozen model, from a TOML file and ``DRIFTNET_*`` environment variables.

Precedence, highest first: environment (``DRIFTNET_KAFKA__BOOTSTRAP_SERVERS``: ``__`` nests),
then the TOML file (``--config`` or ``DRIFTNET_CONFIG``), then defaults. An unknown key or a bad
value is a :class:`ConfigError` whose message is one line naming the key.
Library objects never read the environment: they are handed the part of these they need.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from harvest.rules import RulesConfig
from streams.decode import PAYLOAD_CAP_BYTES

ENV_PREFIX = "DRIFTNET_"
CONFIG_ENV_VAR = "DRIFTNET_CONFIG"
OTHER_ENV_VARS = frozenset({CONFIG_ENV_VAR, "DRIFTNET_TEST_BOOTSTRAP"})
"""DRIFTNET_* variables that are not settings: the config file, the test suite's broker."""

_config_file: ContextVar[Path | None] = ContextVar("driftnet_config_file", default=None)


class ConfigError(Exception):
    """A setting a user got wrong; ``str()`` is one line that names it."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class KafkaSettings(_Section):
    """How to reach the brokers."""

    bootstrap_servers: str = "127.0.0.1:9092"
    client_id: str = "driftnet"
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None


class TopicSettings(_Section):
    """Topic names."""

    events: str = "llm.inference.events"
    dlq: str = "llm.inference.dlq"
    failures: str = "driftnet.failures"


class DecodeSettings(_Section):
    """How incoming messages are decoded."""

    payload_cap_bytes: int = Field(PAYLOAD_CAP_BYTES, gt=0)
    """Dead letters keep at most this many bytes of the original payload."""


class Settings(BaseSettings):
    """Everything driftnet can be told."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    topics: TopicSettings = Field(default_factory=TopicSettings)
    decode: DecodeSettings = Field(default_factory=DecodeSettings)
    rules: RulesConfig = Field(default_factory=RulesConfig)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: tuple[PydanticBaseSettingsSource, ...] = (init_settings, env_settings)
        path = _config_file.get()
        if path is not None:
            sources += (TomlConfigSettingsSource(settings_cls, toml_file=path),)
        return sources

    def masked(self) -> dict[str, Any]:
        """The effective settings as JSON-ready data, secrets shown as ``**********``."""
        return self.model_dump(mode="json")


def load_settings(config_file: str | Path | None = None) -> Settings:
    """Settings from ``config_file`` (else ``$DRIFTNET_CONFIG``, else none) and the environment."""
    path_text = config_file or os.environ.get(CONFIG_ENV_VAR)
    path = Path(path_text) if path_text else None
    if path is not None and not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    _refuse_unknown_variables(os.environ)
    token = _config_file.set(path)
    try:
        return Settings()
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    except ValidationError as exc:
        raise ConfigError(_one_line(exc, path)) from None
    finally:
        _config_file.reset(token)


def _refuse_unknown_variables(environ: Mapping[str, str]) -> None:
    """A misspelt DRIFTNET_* variable would otherwise be ignored without a word."""
    sections = {name.upper() for name in Settings.model_fields}
    for name in sorted(environ):
        if not name.startswith(ENV_PREFIX) or name in OTHER_ENV_VARS:
            continue
        section = name.removeprefix(ENV_PREFIX).split("__")[0]
        if section not in sections:
            known = ", ".join(f"{ENV_PREFIX}{s}__..." for s in sorted(sections))
            raise ConfigError(f"unknown environment variable {name} (settings are {known})")


def _one_line(exc: ValidationError, path: Path | None) -> str:
    problems = []
    for error in exc.errors(include_url=False, include_input=False):
        key = ".".join(str(part) for part in error["loc"]) or "(top level)"
        message = "unknown key" if error["type"] == "extra_forbidden" else error["msg"]
        problems.append(f"{key}: {message}")
    origin = (
        f" (from {path} or DRIFTNET_* environment)" if path else " (from DRIFTNET_* environment)"
    )
    return "invalid setting " + "; ".join(problems) + origin

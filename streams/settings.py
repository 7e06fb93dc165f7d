"""Settings: one frozen model, from a TOML file and ``DRIFTNET_*`` environment variables.

Precedence, highest first: environment (``DRIFTNET_KAFKA__BOOTSTRAP_SERVERS``: ``__`` nests),
then the TOML file (``--config`` or ``DRIFTNET_CONFIG``), then defaults. An unknown key or a bad
value is a :class:`ConfigError` whose message is one line naming the key (and the closest
known one: "did you mean `kafka.bootstrap_servers`?", see :mod:`.setting_keys`).
Library objects never read the environment: they are handed the part of these they need.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    FilePath,
    SecretStr,
    ValidationError,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    TomlConfigSettingsSource,
)

from driftnet.alerts.config import AlertsSettings
from driftnet.contract.decode import MAX_BATCH_EVENTS, PAYLOAD_CAP_BYTES
from driftnet.detectors.config import DetectorsConfig
from driftnet.harvest.rules import RulesConfig
from driftnet.ingest.settings import OtlpSettings
from driftnet.storage.settings import HarvestSettings, masked_uri
from driftnet.streams.setting_keys import key_hint, variable_hint

ENV_PREFIX = "DRIFTNET_"
CONFIG_ENV_VAR = "DRIFTNET_CONFIG"
OTHER_ENV_VARS = frozenset(
    {CONFIG_ENV_VAR, "DRIFTNET_TEST_BOOTSTRAP", "DRIFTNET_TEST_BROKER_RESTART"}
)
"""DRIFTNET_* variables that are not settings: the config file, the test suite's broker and
the command that restarts it (the broker-restart fault test)."""

_config_file: ContextVar[Path | None] = ContextVar("driftnet_config_file", default=None)


class ConfigError(Exception):
    """A setting a user got wrong; ``str()`` is one line that names it."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class KafkaSettings(_Section):
    """How to reach the brokers."""

    bootstrap_servers: str = "127.0.0.1:9092"
    """Comma-separated ``host:port`` list."""
    client_id: str = "driftnet"
    """Client id the brokers see (logs, quotas) from the worker, the producers and the sink."""
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    """How to talk to the brokers: plain, TLS, SASL, or SASL over TLS."""
    ssl_cafile: FilePath | None = None
    """CA bundle for SSL / SASL_SSL; the system's trust store when unset."""
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    """SASL mechanism for the ``SASL_*`` protocols; ``PLAIN`` when unset."""
    sasl_username: str | None = None
    """SASL user name (``SASL_*`` protocols)."""
    sasl_password: SecretStr | None = None
    """SASL password (``SASL_*`` protocols); masked in ``driftnet config``."""

    @property
    def servers(self) -> list[str]:
        """``bootstrap_servers`` as a list."""
        return [part.strip() for part in self.bootstrap_servers.split(",") if part.strip()]


TopicName = Annotated[str, Field(min_length=1, max_length=249, pattern=r"^[A-Za-z0-9._-]+$")]


class TopicSpec(_Section):
    """One topic: its name and how ``driftnet topics create`` makes it."""

    name: TopicName
    """The topic's name on the brokers."""
    partitions: int = Field(gt=0, le=10_000)
    """Partitions ``driftnet topics create`` makes (a topic that exists keeps its own; the
    command says when they differ). For ``aggregates`` the worker also sends its watermark
    heartbeats to this many partitions, so keep it equal to the topic's."""
    replication_factor: int = Field(1, gt=0)
    """Replicas ``driftnet topics create`` asks for (at most the number of brokers)."""
    retention_hours: float | None = Field(gt=0)
    """How long the broker keeps messages; ``null`` (JSON) leaves it to the broker's default."""

    @property
    def retention_ms(self) -> int | None:
        return None if self.retention_hours is None else round(self.retention_hours * 3_600_000)


_DEFAULT_TOPICS = {
    "events": TopicSpec(name="llm.inference.events", partitions=4, retention_hours=72),
    "dlq": TopicSpec(name="llm.inference.dlq", partitions=1, retention_hours=14 * 24),
    "failures": TopicSpec(name="driftnet.failures", partitions=2, retention_hours=7 * 24),
    "aggregates": TopicSpec(name="driftnet.aggregates", partitions=4, retention_hours=24),
    "findings": TopicSpec(name="driftnet.findings", partitions=1, retention_hours=14 * 24),
    "verdicts": TopicSpec(name="driftnet.verdicts", partitions=1, retention_hours=14 * 24),
    "signals": TopicSpec(name="driftnet.signals", partitions=1, retention_hours=24),
    "alerts": TopicSpec(name="driftnet.alerts", partitions=1, retention_hours=14 * 24),
    "silences": TopicSpec(name="driftnet.silences", partitions=1, retention_hours=90 * 24),
    "otlp_spans": TopicSpec(name="otlp_spans", partitions=4, retention_hours=24),
    "alerts_dlq": TopicSpec(name="driftnet.alerts.dlq", partitions=1, retention_hours=14 * 24),
    "detector_state": TopicSpec(name="driftnet.detector.state", partitions=4, retention_hours=None),
    "alerts_state": TopicSpec(name="driftnet.alerts.state", partitions=1, retention_hours=None),
}


class TopicSettings(_Section):
    """Every topic driftnet reads or writes. ``events = "name"`` is short for
    ``[topics.events] name = "name"``; a table inherits every key it leaves out."""

    events: TopicSpec = _DEFAULT_TOPICS["events"]
    """Inference events from production (input)."""
    dlq: TopicSpec = _DEFAULT_TOPICS["dlq"]
    """Dead letters: messages that are not valid v1 events, with why in the headers."""
    failures: TopicSpec = _DEFAULT_TOPICS["failures"]
    """Failure records, keyed by ``record_id`` (read by the harvest sink)."""
    aggregates: TopicSpec = _DEFAULT_TOPICS["aggregates"]
    """Partial window aggregates and watermark heartbeats, keyed by service/environment."""
    findings: TopicSpec = _DEFAULT_TOPICS["findings"]
    """Detector findings (JSON), keyed by cohort."""
    verdicts: TopicSpec = _DEFAULT_TOPICS["verdicts"]
    """Canary verdicts (JSON), keyed by the canary cohort: what a deploy system acts on."""
    signals: TopicSpec = _DEFAULT_TOPICS["signals"]
    """Closed windows, late findings and worker health for the alerting stage (one partition:
    one owner, so two workers never page twice)."""
    alerts: TopicSpec = _DEFAULT_TOPICS["alerts"]
    """Alert notifications (JSON) for other systems, and the watchdog."""
    silences: TopicSpec = _DEFAULT_TOPICS["silences"]
    """Silence commands (``driftnet silence``)."""
    otlp_spans: TopicSpec = _DEFAULT_TOPICS["otlp_spans"]
    """OpenTelemetry spans (input): OTLP ``ExportTraceServiceRequest`` messages, protobuf or
    JSON, as the OpenTelemetry Collector's Kafka exporter writes them (its default topic
    name). Read when ``otlp.enabled`` says so."""
    alerts_dlq: TopicSpec = _DEFAULT_TOPICS["alerts_dlq"]
    """Notifications the alerting stage gave up (JSON: receiver, notification, reason, error,
    attempts): a permanent failure, or retried past ``alerts.retry_max_attempts`` or
    ``alerts.retry_max_age_s``."""
    detector_state: TopicSpec = _DEFAULT_TOPICS["detector_state"]
    """The detectors' references, keyed by cohort, saved at window close and read back by a
    restarted worker. ``driftnet topics create`` makes it compacted (the newest record per
    cohort is kept; the retention does not apply). A cohort's record goes to its aggregates
    partition modulo this topic's partitions: keep both counts equal."""
    alerts_state: TopicSpec = _DEFAULT_TOPICS["alerts_state"]
    """The alerting stage's state (what fires, the groups and what each was told, the outbox,
    each group's Slack message), keyed by scope, group and notification, read back by the
    worker that next owns the signals partition. ``driftnet topics create`` makes it compacted
    (what is gone is deleted by a tombstone; the retention does not apply); one partition."""

    @model_validator(mode="before")
    @classmethod
    def _inherit_defaults(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        merged = dict(data)
        for role, default in _DEFAULT_TOPICS.items():
            value = merged.get(role)
            if isinstance(value, str):
                merged[role] = default.model_copy(update={"name": value})
            elif isinstance(value, Mapping):
                merged[role] = {**default.model_dump(), **value}
        return merged

    def by_role(self) -> dict[str, TopicSpec]:
        """``{"events": spec, "dlq": spec, ...}`` in a stable order."""
        return {role: getattr(self, role) for role in type(self).model_fields}


class DecodeSettings(_Section):
    """How incoming messages are decoded."""

    payload_cap_bytes: int = Field(PAYLOAD_CAP_BYTES, gt=0)
    """Dead letters keep at most this many bytes of the original payload."""
    max_batch_events: int = Field(MAX_BATCH_EVENTS, gt=0)
    """A batch (JSON array) with more elements is one dead letter (``batch_too_large``), so
    that one message cannot cost thousands of dead letters."""
    max_future_s: float | None = Field(600.0, gt=0)
    """An event whose timestamp is more than this far ahead of the worker's clock is a dead
    letter (``timestamp_out_of_range``): a skewed or broken producer clock would otherwise
    move its partition's watermark ahead and make everyone else's events late. Within it the
    event goes to its event-time window. ``null`` (JSON) turns the check off."""
    max_past_s: float | None = Field(None, gt=0)
    """An event older than this (against the worker's clock) is a dead letter
    (``timestamp_out_of_range``), e.g. ``604800`` for 7 days; within it an old event is merely
    late (counted by its windows). Off by default: replays and backfills of old traffic are
    legitimate."""


class PublisherSettings(_Section):
    """How :class:`driftnet.streams.clients.publisher.EventPublisher` batches and buffers."""

    batch_max_events: int = Field(100, ge=1)
    """Events per message (a JSON array); 1 sends each event as a JSON object."""
    batch_max_bytes: int = Field(900_000, ge=1024)
    """Bytes per message; keep it under the topic's ``max.message.bytes`` (1 MiB by default)."""
    max_request_size: int | None = Field(None, ge=1024)
    """The producer's ``max_request_size``: no message is larger (batches close before they
    would be), and an event larger on its own is refused and counted (``too_large``). Default:
    1 MiB, or ``batch_max_bytes`` + 64 KiB when that is more. Raise it together with the
    broker's ``message.max.bytes`` and the topic's ``max.message.bytes``."""
    linger_ms: float = Field(50.0, ge=0)
    """How long a partial batch waits for more events of its cohort."""
    buffer_max_bytes: int = Field(32 * 1024 * 1024, ge=1024)
    """Events waiting or in flight; past it new events are dropped (and counted), never blocked."""
    acks: Literal["all", "1", "0"] = "all"
    """Acknowledgement a message waits for: every in-sync replica (``all``, which also makes
    the producer idempotent), the partition leader (``1``) or none (``0``)."""
    compression: Literal["none", "gzip"] = "none"
    """Compression of the messages the publisher produces."""
    delivery_timeout_s: float = Field(120.0, gt=0)
    """A message not acknowledged by then is dropped and counted."""

    @property
    def request_limit(self) -> int:
        """The ``max_request_size`` in effect, in bytes."""
        if self.max_request_size is not None:
            return self.max_request_size
        return max(1024 * 1024, self.batch_max_bytes + 64 * 1024)


class WorkerSettings(_Section):
    """The ``driftnet worker`` stream processor (a faust app)."""

    app_id: str = Field("driftnet", min_length=1)
    """Consumer group id: workers with the same id share the partitions."""
    name: str | None = Field(None, min_length=1)
    """This worker's name in its health checks and in the alerts about it
    (``driftnet.sink_failing``...): keep it stable across restarts, so that a restarted
    worker resolves its own alerts. Default: the host name; give each worker its own when
    several run on one host."""
    data_dir: Path = Path("driftnet-data/worker")
    """Where faust keeps its local state."""
    offset_reset: Literal["earliest", "latest"] = "earliest"
    """Where a new consumer group starts reading the events topic."""
    report_interval_s: float = Field(30.0, gt=0)
    """How often counts by reason are logged."""
    commit_interval_s: float = Field(2.8, gt=0)
    """How often processed offsets are committed (what is not committed is read again after
    a restart or a rebalance)."""
    session_timeout_s: float = Field(10.0, gt=0)
    """A consumer silent this long leaves the group and its partitions move (heartbeats every
    third of it, at most 3 s); the harvest sink uses it too."""
    rebalance_timeout_s: float = Field(5.0, gt=0)
    """How long a rebalance waits for members to rejoin (a first join waits this long too)."""
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    """Log level of ``driftnet worker`` and ``driftnet sink``."""
    detect: bool = True
    """Run the windowed detectors (map and merge stages) besides the failure rules."""
    send_give_up_s: float = Field(120.0, gt=0)
    """How long the worker keeps sending again a record the broker refuses (a failure record,
    dead letter, partial, finding or verdict; with backoff up to 10 s) before it stops with
    exit status 1. Meanwhile nothing past that record is committed, so a restart reads it again."""
    send_timeout_s: float = Field(30.0, gt=0)
    """How long the worker's producer waits for the broker to acknowledge a send before it
    counts as refused (faust's default is 20 minutes)."""


class HttpSettings(_Section):
    """The health and metrics endpoint of ``driftnet worker`` and ``driftnet sink``
    (``/health``, ``/metrics``)."""

    enabled: bool = True
    """Serve the endpoint."""
    host: str = Field("127.0.0.1", min_length=1)
    """Address to listen on; ``0.0.0.0`` (or ``::``) for every interface, e.g. in a container
    Prometheus scrapes from outside."""
    port: int = Field(9464, ge=0, le=65535)
    """Port to listen on; 0 picks a free one (the worker logs the address it got)."""


class Settings(BaseSettings):
    """Everything driftnet can be told."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        env_ignore_empty=True,  # an unset ${VAR:-} in compose is "not set", not an empty secret
        extra="forbid",
        frozen=True,
        use_attribute_docstrings=True,
    )

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    topics: TopicSettings = Field(default_factory=TopicSettings)
    decode: DecodeSettings = Field(default_factory=DecodeSettings)
    publisher: PublisherSettings = Field(default_factory=PublisherSettings)
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    rules: RulesConfig = Field(default_factory=RulesConfig)
    harvest: HarvestSettings = Field(default_factory=HarvestSettings)
    detectors: DetectorsConfig = Field(default_factory=DetectorsConfig)
    alerts: AlertsSettings = Field(default_factory=AlertsSettings)
    http: HttpSettings = Field(default_factory=HttpSettings)
    otlp: OtlpSettings = Field(default_factory=OtlpSettings)

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
        data = self.model_dump(mode="json")
        data["harvest"]["location"] = masked_uri(self.harvest.location)
        return data


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
    except SettingsError as exc:
        # A table-valued setting given a plain value in the environment, e.g.
        # DRIFTNET_TOPICS__EVENTS=x (where DRIFTNET_TOPICS__EVENTS__NAME=x was meant).
        raise ConfigError(
            f"invalid setting in the DRIFTNET_* environment: {exc} (a table is set key by key, "
            "e.g. DRIFTNET_TOPICS__EVENTS__NAME=..., or as JSON)"
        ) from None
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
            hint = variable_hint(Settings, ENV_PREFIX, name)
            if difflib.get_close_matches(name, [CONFIG_ENV_VAR], n=1, cutoff=0.8):
                hint = f": did you mean `{CONFIG_ENV_VAR}`?"
            raise ConfigError(
                f"unknown environment variable {name}{hint} (settings are "
                f"{CONFIG_ENV_VAR} (the TOML file), {known})"
            )


_PLAIN = {
    "bool_parsing": "expected true or false",
    "bool_type": "expected true or false",
    "int_parsing": "expected a whole number",
    "int_from_float": "expected a whole number",
    "float_parsing": "expected a number",
}
"""pydantic's error types whose message is said plainly, with the value given (never a
secret: these are booleans and numbers)."""


def _one_line(exc: ValidationError, path: Path | None) -> str:
    problems = []
    for error in exc.errors(include_url=False, include_input=True):
        key = ".".join(str(part) for part in error["loc"]) or "(top level)"
        message = _PLAIN.get(error["type"], error["msg"])
        if error["type"] in _PLAIN:
            message += f", got {error.get('input')!r}"
        if error["type"] == "extra_forbidden":
            message = "unknown key" + key_hint(Settings, ENV_PREFIX, error["loc"], os.environ)
        problems.append(f"{key}: {message}")
    origin = (
        f" (from {path} or DRIFTNET_* environment)" if path else " (from DRIFTNET_* environment)"
    )
    return "invalid setting " + "; ".join(problems) + origin

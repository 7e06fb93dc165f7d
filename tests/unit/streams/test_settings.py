"""Settings: defaults, TOML file, DRIFTNET_* environment, and one-line errors naming the key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from driftnet.streams.settings import ConfigError, load_settings


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with no DRIFTNET_* variable set."""
    import os

    for name in list(os.environ):
        if name.startswith("DRIFTNET_"):
            monkeypatch.delenv(name)


def _toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "driftnet.toml"
    path.write_text(text)
    return path


def test_defaults() -> None:
    """With no file and no environment, settings are the documented defaults."""
    settings = load_settings()
    assert settings.kafka.bootstrap_servers == "127.0.0.1:9092"
    assert settings.topics.events.name == "llm.inference.events"
    assert settings.topics.dlq.name == "llm.inference.dlq"
    assert settings.topics.failures.name == "driftnet.failures"
    assert settings.decode.payload_cap_bytes == 64 * 1024


def test_environment_nests_with_double_underscore(monkeypatch: pytest.MonkeyPatch) -> None:
    """DRIFTNET_KAFKA__BOOTSTRAP_SERVERS sets kafka.bootstrap_servers."""
    monkeypatch.setenv("DRIFTNET_KAFKA__BOOTSTRAP_SERVERS", "kafka-1:9092,kafka-2:9092")
    monkeypatch.setenv("DRIFTNET_RULES__DEFAULTS__LATENCY_SLO_MS", "2500")
    settings = load_settings()
    assert settings.kafka.bootstrap_servers == "kafka-1:9092,kafka-2:9092"
    assert settings.rules.defaults.latency_slo_ms == 2500


def test_file_then_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The TOML file sets values; the environment wins over it, key by key."""
    path = _toml(
        tmp_path, '[kafka]\nbootstrap_servers = "from-file:9092"\nclient_id = "file-client"\n'
    )
    monkeypatch.setenv("DRIFTNET_KAFKA__CLIENT_ID", "env-client")
    settings = load_settings(path)
    assert settings.kafka.bootstrap_servers == "from-file:9092"
    assert settings.kafka.client_id == "env-client"


def test_config_file_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """DRIFTNET_CONFIG names the file when no path is passed."""
    path = _toml(tmp_path, '[topics]\nevents = "prod.llm.events"\n')
    monkeypatch.setenv("DRIFTNET_CONFIG", str(path))
    assert load_settings().topics.events.name == "prod.llm.events"


def test_topic_tables_inherit_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A topic is a name (shorthand) or a table; a table keeps every default it leaves out,
    and the environment sets one key of it."""
    path = _toml(
        tmp_path,
        '[topics]\nfailures = "prod.failures"\n[topics.events]\npartitions = 12\n',
    )
    monkeypatch.setenv("DRIFTNET_TOPICS__DLQ__RETENTION_HOURS", "48")
    topics = load_settings(path).topics
    assert (topics.events.name, topics.events.partitions) == ("llm.inference.events", 12)
    assert topics.events.retention_ms == 72 * 3_600_000
    assert (topics.failures.name, topics.failures.partitions) == ("prod.failures", 2)
    assert topics.dlq.retention_ms == 48 * 3_600_000
    assert list(topics.by_role()) == [
        "events",
        "dlq",
        "failures",
        "aggregates",
        "findings",
        "verdicts",
        "signals",
        "alerts",
        "silences",
        "otlp_spans",
        "alerts_dlq",
        "detector_state",
        "alerts_state",
    ]


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("DRIFTNET_TOPICS__EVENTS__NAME", "bad name!", "topics.events.name: String should match"),
        ("DRIFTNET_TOPICS__EVENTS__PARTITIONS", "0", "topics.events.partitions"),
        ("DRIFTNET_TOPICS__EVENTS", "plain-name", "DRIFTNET_TOPICS__EVENTS__NAME=..."),
        ("DRIFTNET_PUBLISHER__BATCH_MAX_EVENTS", "0", "publisher.batch_max_events"),
        ("DRIFTNET_WORKER__OFFSET_RESET", "middle", "worker.offset_reset"),
    ],
)
def test_bad_stream_settings_name_the_key(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: str
) -> None:
    """Topic, publisher and worker settings are checked like the rest: one line, the key."""
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError, match=re.escape(expected)) as caught:
        load_settings()
    assert "\n" not in str(caught.value)


def test_per_service_rules_from_file(tmp_path: Path) -> None:
    """Per-service rule overrides in the file inherit the file's defaults."""
    path = _toml(
        tmp_path,
        "[rules.defaults]\nlatency_slo_ms = 4000\n"
        "[rules.defaults.scores.faithfulness]\nthreshold = 0.6\n"
        '[rules.services.invoice-extractor]\nrefusal_phrases = ["no can do"]\n',
    )
    rules = load_settings(path).rules
    effective = rules.for_service("invoice-extractor")
    assert effective.latency_slo_ms == 4000
    assert effective.refusal_phrases == ("no can do",)
    assert effective.scores["faithfulness"].threshold == 0.6


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            '[kafka]\nbootstrap_server = "x"\n',
            "invalid setting kafka.bootstrap_server: unknown key",
            id="unknown-key",
        ),
        pytest.param("[kafak]\n", "invalid setting kafak: unknown key", id="unknown-section"),
        pytest.param(
            '[rules.defaults]\nlatency_slo_ms = "fast"\n',
            "invalid setting rules.defaults.latency_slo_ms: expected a number, got 'fast'",
            id="bad-value",
        ),
        pytest.param(
            '[kafka]\nsecurity_protocol = "TLS"\n',
            "invalid setting kafka.security_protocol: Input should be",
            id="bad-literal",
        ),
        pytest.param("[kafka\n", "is not valid TOML", id="toml-syntax"),
    ],
)
def test_file_errors_are_one_line_naming_the_key(tmp_path: Path, text: str, message: str) -> None:
    """A wrong file gives one line that names the key (or the TOML problem)."""
    path = _toml(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_bad_environment_value_names_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """A wrong environment value is one line naming the nested key."""
    monkeypatch.setenv("DRIFTNET_DECODE__PAYLOAD_CAP_BYTES", "-3")
    with pytest.raises(
        ConfigError,
        match=r"^invalid setting decode\.payload_cap_bytes: Input should be greater than 0",
    ):
        load_settings()


def test_misspelt_environment_variable_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """DRIFTNET_KAFAK__... is an error naming the variable and the one meant, not silently
    ignored."""
    monkeypatch.setenv("DRIFTNET_KAFAK__BOOTSTRAP_SERVERS", "k:9092")
    with pytest.raises(
        ConfigError,
        match=r"^unknown environment variable DRIFTNET_KAFAK__BOOTSTRAP_SERVERS: did you mean `DRIFTNET_KAFKA__BOOTSTRAP_SERVERS`\? \(settings are DRIFTNET_CONFIG \(the TOML file\), DRIFTNET_ALERTS__\.\.\., DRIFTNET_DECODE__\.\.\., DRIFTNET_DETECTORS__\.\.\., DRIFTNET_HARVEST__\.\.\., DRIFTNET_HTTP__\.\.\., DRIFTNET_KAFKA__",
    ):
        load_settings()


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    """A config path that does not exist says so."""
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.toml")


def test_secrets_are_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    """The printable form of the settings never shows a secret."""
    monkeypatch.setenv("DRIFTNET_KAFKA__SASL_PASSWORD", "hunter2")
    settings = load_settings()
    assert settings.kafka.sasl_password is not None
    assert settings.kafka.sasl_password.get_secret_value() == "hunter2"
    assert "hunter2" not in str(settings.masked())
    assert settings.masked()["kafka"]["sasl_password"] == "**********"

"""Connection settings reach kafka-python and faust spelled the way each expects."""

from __future__ import annotations

import ssl
from pathlib import Path

import faust
import pytest
from pydantic import SecretStr

from driftnet.streams.clients.kafka_config import faust_broker_options, kafka_python_options
from driftnet.streams.settings import ConfigError, KafkaSettings, load_settings


def test_plaintext_defaults() -> None:
    kafka = KafkaSettings(bootstrap_servers="k1:9092, k2:9093")
    assert kafka_python_options(kafka) == {
        "bootstrap_servers": ["k1:9092", "k2:9093"],
        "client_id": "driftnet",
        "security_protocol": "PLAINTEXT",
    }
    assert faust_broker_options(kafka) == {"broker": ["kafka://k1:9092", "kafka://k2:9093"]}


def test_sasl_ssl_reaches_both_clients() -> None:
    kafka = KafkaSettings(
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="driftnet",
        sasl_password=SecretStr("s3cret"),
    )
    options = kafka_python_options(kafka)
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (options["sasl_plain_username"], options["sasl_plain_password"]) == (
        "driftnet",
        "s3cret",
    )
    assert isinstance(options["ssl_context"], ssl.SSLContext)
    credentials = faust_broker_options(kafka)["broker_credentials"]
    assert isinstance(credentials, faust.SASLCredentials)
    assert (credentials.username, credentials.password) == ("driftnet", "s3cret")
    assert credentials.mechanism.value == "SCRAM-SHA-512"
    assert credentials.ssl_context is not None


def test_ssl_ca_bundle_must_exist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A CA file that is not there is a one-line settings error, not a traceback later."""
    monkeypatch.setenv("DRIFTNET_KAFKA__SSL_CAFILE", str(tmp_path / "ca.pem"))
    with pytest.raises(ConfigError, match=r"^invalid setting kafka\.ssl_cafile: Path does not"):
        load_settings()
    kafka = KafkaSettings(security_protocol="SSL")
    assert isinstance(faust_broker_options(kafka)["broker_credentials"], faust.SSLCredentials)
    assert "sasl_mechanism" not in kafka_python_options(kafka)

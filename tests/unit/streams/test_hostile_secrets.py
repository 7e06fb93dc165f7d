"""Secrets and safe defaults: a token planted in the environment or the config file never shows
in ``driftnet config``, in an error line or in the settings' repr; redaction of harvested
content is on and the HTTP endpoint binds 127.0.0.1 unless told otherwise. (The workers' logs
are grepped for a planted token in tests/integration/test_faults.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from driftnet.cli.main import cli
from driftnet.streams.settings import Settings, load_settings

PLANTED = "planted-Secret-7f3a9c1e5b"


def test_config_output_never_shows_a_planted_token(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SASL password from the environment and the Slack token from the config file are
    masked in ``driftnet config``; the harvest URI's credentials too."""
    path = tmp_path / "driftnet.toml"
    path.write_text(f'[alerts]\nslack_token = "{PLANTED}-slack"\n')
    monkeypatch.setenv("DRIFTNET_KAFKA__SASL_PASSWORD", PLANTED)
    monkeypatch.setenv("DRIFTNET_KAFKA__SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("DRIFTNET_KAFKA__SASL_USERNAME", "driftnet")
    monkeypatch.setenv("DRIFTNET_HARVEST__LOCATION", f"s3://key:{PLANTED}@bucket/harvest")
    result = runner.invoke(cli, ["--config", str(path), "config"])
    assert result.exit_code == 0, result.output
    assert PLANTED not in result.output
    assert result.output.count('"**********"') >= 2
    settings = load_settings(path)
    assert PLANTED not in repr(settings)
    assert PLANTED not in str(settings)
    assert settings.alerts.slack_token is not None
    assert settings.alerts.slack_token.get_secret_value() == f"{PLANTED}-slack"


def test_an_error_about_another_setting_does_not_echo_a_secret(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bad setting next to a secret is one line naming the key, without any value."""
    monkeypatch.setenv("DRIFTNET_KAFKA__SASL_PASSWORD", PLANTED)
    monkeypatch.setenv("DRIFTNET_KAFKA__SECURITY_PROTOCOL", f"{PLANTED}-protocol")
    result = runner.invoke(cli, ["config"])
    assert result.exit_code == 1
    assert "kafka.security_protocol" in result.output
    assert PLANTED not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_safe_defaults() -> None:
    """Out of the box: the endpoint listens on loopback only and harvested content is
    redacted."""
    settings = Settings()
    assert settings.http.host == "127.0.0.1"
    assert settings.harvest.redaction.enabled
    assert settings.kafka.sasl_password is None

"""What every ``driftnet`` subcommand shares: lazily loaded settings."""

from __future__ import annotations

from pathlib import Path

import click

from driftnet.streams.settings import ConfigError, Settings, load_settings


class Context:
    """Lazily loaded settings, shared by the subcommands."""

    def __init__(self, config_file: Path | None) -> None:
        self.config_file = config_file
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            try:
                self._settings = load_settings(self.config_file)
            except ConfigError as exc:
                raise click.ClickException(str(exc)) from None
        return self._settings


pass_context = click.make_pass_decorator(Context)

"""The one exception base of traefik-gen, and its few precise subclasses.

Messages are lower-case sentences that name the offending thing (row, app, field, path)
and never the value of a secret.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "LabelError",
    "RemovalRefusedError",
    "RuleError",
    "SettingsError",
    "SourceError",
    "TraefikGenError",
    "WriteError",
]


class TraefikGenError(Exception):
    """Base of every error traefik-gen raises on purpose."""


class SettingsError(TraefikGenError):
    """The settings or the command line are wrong (exit status 2)."""


class SourceError(TraefikGenError):
    """The source of desired routes could not be read (exit status 1)."""


class WriteError(TraefikGenError):
    """The directory could not be written; nothing was changed (exit status 1)."""


class RemovalRefusedError(TraefikGenError):
    """The mass-removal guard refused a plan that drops most owned routes (exit status 4)."""


class ConfigError(TraefikGenError):
    """A value cannot become valid Traefik configuration (one row or route is rejected)."""


class RuleError(ConfigError):
    """A router rule, host, path or regex is not acceptable."""


class LabelError(ConfigError):
    """A Traefik label map cannot be translated into file configuration."""

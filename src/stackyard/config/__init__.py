"""Configuration: one YAML file validated with pydantic, with ``${ENV_VAR}`` interpolation."""

from stackyard.config.loader import DEFAULT_CONFIG_FILE, ConfigError, load, validate
from stackyard.config.schema import ModelEntry, RouterConfig, ServerConfig, StackyardConfig

__all__ = [
    "DEFAULT_CONFIG_FILE",
    "ConfigError",
    "ModelEntry",
    "RouterConfig",
    "ServerConfig",
    "StackyardConfig",
    "load",
    "validate",
]

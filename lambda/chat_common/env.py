"""Typed reads of the function configuration (Lambda environment variables)."""

from __future__ import annotations

import os


class ConfigError(RuntimeError):
    """A missing or malformed environment variable: a deployment error, not a request error."""


def required(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        raise ConfigError(f"environment variable {name} is required")
    return value


def optional(name: str) -> str | None:
    return os.environ.get(name, "").strip() or None


def integer(name: str, default: int) -> int:
    return int(_number(name, default))


def number(name: str, default: float) -> float:
    return _number(name, default)


def _number(name: str, default: float) -> float:
    raw = optional(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if value <= 0:
        raise ConfigError(f"{name} must be positive, got {raw!r}")
    return value


def flag(name: str, default: bool) -> bool:
    raw = optional(name)
    if raw is None:
        return default
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def names(name: str) -> tuple[str, ...]:
    """A required comma-separated list, blanks dropped."""
    values = tuple(part.strip() for part in required(name).split(",") if part.strip())
    if not values:
        raise ConfigError(f"{name} must list at least one value")
    return values

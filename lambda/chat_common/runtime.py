"""State that lives as long as the Lambda container: AWS clients, secrets, signing keys.

Everything cached here goes through `per_container`, so `reset()` (used by the tests, which
change the environment between cases) drops all of it at once.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, TypeVar

import boto3
from botocore.config import Config

F = TypeVar("F", bound=Callable[..., Any])
_CACHED: list[Any] = []

# Standard mode retries throttling and transient errors with jittered backoff; short connect
# timeout so an unreachable endpoint fails well inside the function timeout.
_CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=3, read_timeout=20)


def per_container(function: F) -> F:
    """Memoize `function` for the life of the container."""
    cached = functools.cache(function)
    _CACHED.append(cached)
    return cached  # type: ignore[return-value]


def reset() -> None:
    """Forget every per-container value (tests; a new container starts empty anyway)."""
    for cached in _CACHED:
        cached.cache_clear()


@per_container
def client(service: str, endpoint_url: str | None = None) -> Any:
    return boto3.client(service, endpoint_url=endpoint_url, config=_CLIENT_CONFIG)


@per_container
def table(name: str) -> Any:
    return boto3.resource("dynamodb", config=_CLIENT_CONFIG).Table(name)


@per_container
def secret_string(arn: str) -> str:
    """A secret's plain string value, fetched once per container."""
    return str(client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"])


def forget_secret(arn: str) -> None:
    """Drop cached secrets after the service rejected one (it was rotated)."""
    secret_string.cache_clear()  # type: ignore[attr-defined]  # one key cannot be dropped; secrets are few

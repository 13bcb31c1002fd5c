"""Redis response cache. Best effort: an unreachable or failing Redis is logged and skipped.

Key: sha256 over the model and the canonical JSON of the whole message list, plus the user
id unless the scope is global (then identical prompts of different users share answers).

A prompt's key does not name its user, so each user's answers are also listed in a set,
`chat:v1:user:<userId>` (whose expiry follows the newest of them): erasing a user deletes
the keys it lists. In the global scope that is every answer first cached for that user's
requests (others who asked the same get it from the model again).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from chat_common import env, runtime
from chat_common.observability import logger

KEY_PREFIX = "chat:v1:"
USER_INDEX_PREFIX = KEY_PREFIX + "user:"
SOCKET_TIMEOUT_SECONDS = 1.0
# After a failure, leave Redis alone for a while in this container instead of paying a
# timeout on every request during an outage.
PAUSE_AFTER_FAILURE_SECONDS = 30.0


@dataclass(frozen=True)
class CacheSettings:
    host: str
    port: int
    auth_secret_arn: str | None
    tls: bool
    per_user: bool
    ttl_seconds: int

    @classmethod
    def from_env(cls) -> CacheSettings:
        scope = env.optional("CACHE_SCOPE") or "user"
        if scope not in ("user", "global"):
            raise env.ConfigError(f"CACHE_SCOPE must be 'user' or 'global', got {scope!r}")
        return cls(host=env.required("REDIS_HOST"), port=env.integer("REDIS_PORT", 6379),
                   auth_secret_arn=env.optional("REDIS_AUTH_SECRET_ARN"), tls=env.flag("REDIS_TLS", True),
                   per_user=scope == "user", ttl_seconds=env.integer("CACHE_TTL_SECONDS", 3600))


def cache_key(model: str, messages: Sequence[dict[str, str]], user_id: str | None) -> str:
    """`user_id=None` gives the global key."""
    canonical = json.dumps({"model": model, "messages": list(messages), "user": user_id},
                           sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return KEY_PREFIX + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def user_index(user_id: str) -> str:
    """The set listing the cache keys of `user_id`'s answers."""
    return USER_INDEX_PREFIX + user_id


def connect(settings: CacheSettings) -> redis.Redis:
    password = runtime.secret_string(settings.auth_secret_arn) if settings.auth_secret_arn else None
    # No retries: a cache miss is cheaper than waiting on a sick Redis.
    return redis.Redis(host=settings.host, port=settings.port, password=password, ssl=settings.tls,
                       ssl_cert_reqs="required", socket_timeout=SOCKET_TIMEOUT_SECONDS,
                       socket_connect_timeout=SOCKET_TIMEOUT_SECONDS, retry=Retry(NoBackoff(), 0))


class ResponseCache:
    def __init__(self, settings: CacheSettings,
                 connector: Callable[[CacheSettings], redis.Redis] = connect,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self._connector, self._clock = connector, clock
        self._client: redis.Redis | None = None
        self._paused_until = 0.0

    def key(self, model: str, messages: Sequence[dict[str, str]], user_id: str) -> str:
        return cache_key(model, messages, user_id if self.settings.per_user else None)

    def get(self, key: str) -> str | None:
        value = self._call("get", lambda client: client.get(key))
        return value.decode("utf-8") if isinstance(value, bytes) else None

    def put(self, key: str, answer: str, user_id: str) -> None:
        def store(client: redis.Redis) -> None:
            ttl, index = self.settings.ttl_seconds, user_index(user_id)
            # One round trip, applied together: no answer is cached without its index entry.
            # The index lives as long as its newest entry (every entry has the same TTL).
            client.pipeline(transaction=True).set(key, answer.encode("utf-8"), ex=ttl).sadd(index, key) \
                .expire(index, ttl).execute()
        self._call("set", store)

    def _call(self, operation: str, action: Callable[[redis.Redis], Any]) -> Any:
        if self._clock() < self._paused_until:
            return None
        try:
            if self._client is None:
                self._client = self._connector(self.settings)
            return action(self._client)
        except Exception as err:  # the cache must never fail a request
            logger.warning("response cache unavailable, skipped", extra={
                "operation": operation, "error": type(err).__name__})
            self._paused_until = self._clock() + PAUSE_AFTER_FAILURE_SECONDS
            if isinstance(err, redis.AuthenticationError) and self.settings.auth_secret_arn:
                runtime.forget_secret(self.settings.auth_secret_arn)  # rotated token: re-read it
            self._drop_client()
            return None

    def _drop_client(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                client.close()
            except Exception:  # closing a broken connection may fail too; nothing to do
                pass

"""Cognito JWT verification for the WebSocket $connect authorizer.

A token is accepted only when all hold: RS256 signature by a key of the pool's JWKS (matched
by `kid`), issuer is the pool, not expired, `token_use` is the configured one, and the client
(`client_id` in access tokens, `aud` in id tokens) is allowed.

Clients send the token as the query parameter `token` or, from browsers (which cannot set
headers on a WebSocket), as the subprotocol pair `Sec-WebSocket-Protocol: bearer, <token>`;
the connect function then answers with the `bearer` subprotocol.
"""

from __future__ import annotations

import json
import re
import time
import urllib.request
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import jwt

from chat_common import env

BEARER_PROTOCOL = "bearer"
ALGORITHM = "RS256"
JWKS_TIMEOUT_SECONDS = 3
# An unknown `kid` triggers a refetch (Cognito rotated its keys), at most this often, so
# tokens with made-up kids cannot make every request fetch the JWKS.
REFETCH_INTERVAL_SECONDS = 60
# Clock skew allowed between Cognito and this function on exp, nbf and iat.
LEEWAY_SECONDS = 30
# A JWS in compact form: three base64url parts. Anything else is refused before parsing, so
# odd input (non-ASCII, surrogates, megabytes) never reaches the JWT library. Cognito tokens
# are a few KB; 16 KB leaves room for large group claims.
COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
MAX_TOKEN_CHARS = 16_384

Jwks = Mapping[str, Any]


class Unauthorized(Exception):
    """The token is missing or not acceptable; the reason is for logs, never for the caller."""


class KeysUnavailable(Exception):
    """The pool's signing keys cannot be loaded: an outage, not the caller's fault."""


@dataclass(frozen=True)
class AuthSettings:
    region: str
    user_pool_id: str
    allowed_client_ids: frozenset[str]
    token_use: str = "access"

    @classmethod
    def from_env(cls) -> AuthSettings:
        token_use = env.optional("TOKEN_USE") or "access"
        if token_use not in ("access", "id"):
            raise env.ConfigError(f"TOKEN_USE must be 'access' or 'id', got {token_use!r}")
        return cls(region=env.required("AWS_REGION"), user_pool_id=env.required("USER_POOL_ID"),
                   allowed_client_ids=frozenset(env.names("ALLOWED_CLIENT_IDS")), token_use=token_use)

    @property
    def issuer(self) -> str:
        return f"https://cognito-idp.{self.region}.amazonaws.com/{self.user_pool_id}"

    @property
    def jwks_url(self) -> str:
        return f"{self.issuer}/.well-known/jwks.json"


@dataclass(frozen=True)
class Identity:
    user_id: str
    client_id: str
    scope: str


def fetch_jwks(url: str) -> Jwks:
    with urllib.request.urlopen(url, timeout=JWKS_TIMEOUT_SECONDS) as response:  # noqa: S310 (https URL built from config)
        document: Jwks = json.load(response)
    return document


class KeySet:
    """The pool's signing keys, fetched on first use and kept for the container's life."""

    def __init__(self, url: str, fetch: Callable[[str], Jwks] = fetch_jwks,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._url, self._fetch, self._clock = url, fetch, clock
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None
        self._failure: str | None = None

    def key(self, kid: str) -> jwt.PyJWK:
        if kid not in self._keys:
            if self._may_refetch():
                self._load()
            elif self._failure and not self._keys:  # still no keys: the outage goes on
                raise KeysUnavailable(self._failure)
        try:
            return self._keys[kid]
        except KeyError:
            raise Unauthorized("unknown signing key") from None

    def _may_refetch(self) -> bool:
        return self._fetched_at is None or self._clock() - self._fetched_at >= REFETCH_INTERVAL_SECONDS

    def _load(self) -> None:
        self._fetched_at = self._clock()
        try:
            document = self._fetch(self._url)
            keys = {item["kid"]: jwt.PyJWK(item, algorithm=ALGORITHM)
                    for item in document["keys"] if item.get("kty") == "RSA" and "kid" in item}
        except Exception as err:  # a real error: the function fails (500) and the Errors alarm counts it
            self._failure = f"cannot load signing keys: {type(err).__name__}"
            raise KeysUnavailable(self._failure) from err
        self._keys, self._failure = keys, None


def verify(token: Any, settings: AuthSettings, keys: KeySet) -> Identity:
    """The caller's identity, or `Unauthorized` for any token that is not acceptable.

    Only `KeysUnavailable` (the pool's keys cannot be fetched) escapes otherwise.
    """
    if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS or not COMPACT_JWS.fullmatch(token):
        raise Unauthorized("not a compact JWS")
    try:
        header = jwt.get_unverified_header(token)
        kid = header.get("kid")
        if header.get("alg") != ALGORITHM or not isinstance(kid, str) or not kid:
            raise Unauthorized("unexpected token header")
        claims = jwt.decode(token, keys.key(kid).key, algorithms=[ALGORITHM], issuer=settings.issuer,
                            leeway=LEEWAY_SECONDS,
                            options={"require": ["exp", "iss", "sub", "token_use"], "verify_aud": False})
    except (Unauthorized, KeysUnavailable):
        raise
    except Exception as err:  # PyJWTError, and whatever odd input makes the parser trip on
        raise Unauthorized(f"invalid token: {type(err).__name__}") from None
    if claims["token_use"] != settings.token_use:
        raise Unauthorized("token_use not accepted")
    client_id = claims.get("client_id" if settings.token_use == "access" else "aud")
    if not isinstance(client_id, str) or client_id not in settings.allowed_client_ids:
        raise Unauthorized("client not allowed")
    user_id, scope = claims["sub"], claims.get("scope", "")
    if not isinstance(user_id, str) or not user_id or not isinstance(scope, str):
        raise Unauthorized("malformed sub or scope claim")
    return Identity(user_id=user_id, client_id=client_id, scope=scope)


def header(headers: Mapping[str, str] | None, name: str) -> str | None:
    """A request header, matched case-insensitively (API Gateway passes them as sent)."""
    for key, value in (headers or {}).items():
        if isinstance(key, str) and key.lower() == name.lower():
            return value if isinstance(value, str) else None
    return None


def offered_subprotocols(headers: Mapping[str, str] | None) -> list[str]:
    raw = header(headers, "Sec-WebSocket-Protocol") or ""
    return [part.strip() for part in raw.split(",") if part.strip()]


def token_from_request(event: Mapping[str, Any]) -> str | None:
    """`?token=…`, else the value after `bearer` in the offered subprotocols."""
    query = event.get("queryStringParameters")
    token = query.get("token") if isinstance(query, Mapping) else None
    if isinstance(token, str) and token:
        return token
    headers = event.get("headers")
    protocols = offered_subprotocols(headers if isinstance(headers, Mapping) else None)
    if BEARER_PROTOCOL in protocols:
        position = protocols.index(BEARER_PROTOCOL)
        if position + 1 < len(protocols):
            return protocols[position + 1]
    return None

"""Calls an OpenAI-compatible chat completions endpoint (the LiteLLM gateway or the internal
LLM ALB) with the standard library only, so the layer stays small.

Errors are split by what a retry can fix: `ModelUnavailable` (timeout, network, 429, 5xx,
our credentials refused (401), a 403 — a WAF in front of the URL answers its blocks so —, a
malformed answer) makes the worker fail the record so SQS retries
and finally dead-letters it; `ModelRejected` (any other 4xx: the request itself is wrong)
is answered to the client with an error frame.
"""

from __future__ import annotations

import json
import re
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, Sequence

from chat_common import env, runtime


class ModelUnavailable(Exception):
    pass


class ModelRejected(Exception):
    pass


class CredentialsRejected(ModelUnavailable):
    pass


class NotConfigured(Exception):
    """A deployment error no retry can fix (no model key, no valid endpoint): the request is
    answered with an error frame and set aside for an operator, not retried."""


@dataclass(frozen=True)
class ModelSettings:
    endpoint: str
    api_key_secret_arn: str
    timeout_seconds: float = 60.0
    ca_bundle: str | None = None
    # Sent as max_tokens: the prompt must not decide how long (and how large to store) an answer is.
    max_tokens: int = 4096

    @classmethod
    def from_env(cls) -> ModelSettings:
        endpoint = env.required("MODEL_ENDPOINT").rstrip("/")
        # Prompts and the API key travel in this request: plain http only where a test or a
        # local setup says so explicitly.
        if not endpoint.startswith("https://") and not (
                endpoint.startswith("http://") and env.flag("MODEL_ALLOW_HTTP", False)):
            raise env.ConfigError("MODEL_ENDPOINT must be an https:// URL (http:// only with MODEL_ALLOW_HTTP=true)")
        return cls(endpoint=endpoint, api_key_secret_arn=env.required("MODEL_API_KEY_SECRET_ARN"),
                   timeout_seconds=env.number("MODEL_TIMEOUT_SECONDS", 60.0),
                   ca_bundle=env.optional("MODEL_CA_BUNDLE"), max_tokens=env.integer("MODEL_MAX_TOKENS", 4096))


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """urllib would replay a redirected POST as a GET to wherever it points; refuse instead."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


@runtime.per_container
def _opener(ca_bundle: str | None) -> urllib.request.OpenerDirector:
    tls = ssl.create_default_context(cafile=ca_bundle)  # verifies certificates and host names
    return urllib.request.build_opener(urllib.request.HTTPSHandler(context=tls), _NoRedirects)


def complete(settings: ModelSettings, api_key: str, model: str, messages: Sequence[dict[str, str]]) -> str:
    """The assistant's answer to `messages`."""
    opener = _opener(settings.ca_bundle)
    request = urllib.request.Request(
        f"{settings.endpoint}/chat/completions", method="POST",
        data=json.dumps({"model": model, "messages": list(messages),
                         "max_tokens": settings.max_tokens}).encode("utf-8"),
        headers={"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"})
    try:
        with opener.open(request, timeout=settings.timeout_seconds) as response:
            body = json.load(response)
    except urllib.error.HTTPError as err:
        err.close()
        if err.code == 401:  # LiteLLM refuses a missing, invalid or expired key with 401
            raise CredentialsRejected("model endpoint refused the API key (401)") from None
        if err.code == 403:  # a WAF block (its default response) or a policy: not the key
            raise ModelUnavailable("model endpoint refused the request (403): a WAF block, not the key") from None
        if err.code == 429 or err.code >= 500 or 300 <= err.code < 400:
            raise ModelUnavailable(f"model endpoint answered {err.code}") from None
        raise ModelRejected(f"model endpoint rejected the request ({err.code})") from None
    except (OSError, ValueError) as err:  # URLError, timeouts, resets, undecodable JSON
        raise ModelUnavailable(f"model endpoint failed: {type(err).__name__}") from None
    try:
        content = body["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        content = None
    if not isinstance(content, str):
        raise ModelUnavailable("model endpoint returned no message content")
    # JSON may carry unpaired surrogates ("\\ud800"), which no UTF-8 consumer (history, cache,
    # the client's frame) can take: replace them as a decoder would.
    return _LONE_SURROGATE.sub("\ufffd", content)


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")

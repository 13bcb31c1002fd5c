"""WebSocket $connect REQUEST authorizer: Allow for a valid Cognito token, else Deny (403).

A refused token is a normal answer, not a function error: the function returns a Deny
policy, so Lambda's Errors metric (and the alarm on it) counts only real failures, such as
the pool's signing keys being unreachable, which fail the invocation (the client gets 500).
"""

from __future__ import annotations

from typing import Any

from chat_common import runtime, tokens
from chat_common.observability import logger, tracer

ANONYMOUS = "anonymous"


@runtime.per_container
def key_set(url: str) -> tokens.KeySet:
    return tokens.KeySet(url)


def policy(effect: str, principal: str, resource: Any) -> dict[str, Any]:
    return {"principalId": principal, "policyDocument": {"Version": "2012-10-17", "Statement": [
        {"Action": "execute-api:Invoke", "Effect": effect,
         "Resource": resource if isinstance(resource, str) and resource else "*"}]}}  # "*" only to deny


def authorize(event: dict[str, Any], settings: tokens.AuthSettings, keys: tokens.KeySet) -> dict[str, Any]:
    """An Allow policy for the route with the caller's identity as context, or a Deny.

    The reason for a Deny goes to the log only; `tokens.KeysUnavailable` propagates.
    """
    method_arn = event.get("methodArn") if isinstance(event, dict) else None
    try:
        if not isinstance(method_arn, str) or not method_arn:
            raise tokens.Unauthorized("no method ARN")
        token = tokens.token_from_request(event if isinstance(event, dict) else {})
        if not token:
            raise tokens.Unauthorized("no token")
        identity = tokens.verify(token, settings, keys)
    except tokens.Unauthorized as err:
        logger.info("connection refused", extra={"reason": str(err)})
        return policy("Deny", ANONYMOUS, method_arn)
    return {**policy("Allow", identity.user_id, method_arn),
            "context": {"userId": identity.user_id, "clientId": identity.client_id, "scope": identity.scope}}


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    settings = tokens.AuthSettings.from_env()
    return authorize(event, settings, key_set(settings.jwks_url))

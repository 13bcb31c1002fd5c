"""WebSocket $connect REQUEST authorizer: Allow for a valid Cognito token, else 401."""

from __future__ import annotations

from typing import Any

from chat_common import runtime, tokens
from chat_common.observability import logger, tracer


@runtime.per_container
def key_set(url: str) -> tokens.KeySet:
    return tokens.KeySet(url)


def authorize(event: dict[str, Any], settings: tokens.AuthSettings, keys: tokens.KeySet) -> dict[str, Any]:
    """An Allow policy for the route with the caller's identity as context.

    Any failure raises `Exception("Unauthorized")`, which API Gateway answers with 401; the
    reason goes to the log only.
    """
    try:
        token = tokens.token_from_request(event)
        if not token:
            raise tokens.Unauthorized("no token")
        identity = tokens.verify(token, settings, keys)
    except tokens.Unauthorized as err:
        logger.info("connection refused", extra={"reason": str(err)})
        raise Exception("Unauthorized") from None  # the exact message API Gateway maps to 401
    return {
        "principalId": identity.user_id,
        "policyDocument": {"Version": "2012-10-17", "Statement": [
            {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": event["methodArn"]}]},
        "context": {"userId": identity.user_id, "clientId": identity.client_id, "scope": identity.scope},
    }


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    settings = tokens.AuthSettings.from_env()
    return authorize(event, settings, key_set(settings.jwks_url))

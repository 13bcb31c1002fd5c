"""WebSocket $connect: record the connection of the authorized user (expires by TTL)."""

from __future__ import annotations

import time
from typing import Any

from chat_common import connections, env, runtime, tokens
from chat_common.observability import logger, tracer


def connect(event: dict[str, Any], table: Any, *, ttl_seconds: int, now: int) -> dict[str, Any]:
    identity = connections.authorized_caller(event)
    if identity is None:  # only reachable if the route was deployed without the authorizer
        logger.error("connection without an authorized user refused")
        return {"statusCode": 403}
    connection_id, user_id = identity
    connections.save(table, connection_id=connection_id, user_id=user_id, now=now, ttl_seconds=ttl_seconds)
    response: dict[str, Any] = {"statusCode": 200}
    # A browser that offered subprotocols closes the socket unless the server picks one.
    if tokens.BEARER_PROTOCOL in tokens.offered_subprotocols(event.get("headers")):
        response["headers"] = {"Sec-WebSocket-Protocol": tokens.BEARER_PROTOCOL}
    return response


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return connect(event, runtime.table(env.required("CONNECTIONS_TABLE")),
                   ttl_seconds=env.integer("CONNECTION_TTL_SECONDS", 7200), now=int(time.time()))

"""WebSocket $disconnect: forget the connection."""

from __future__ import annotations

from typing import Any

from chat_common import connections, env, runtime
from chat_common.observability import logger, tracer


def disconnect(event: dict[str, Any], table: Any) -> dict[str, Any]:
    connections.forget(table, event["requestContext"]["connectionId"])
    return {"statusCode": 200}


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return disconnect(event, runtime.table(env.required("CONNECTIONS_TABLE")))

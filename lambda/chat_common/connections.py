"""The connections table and replies to a connection through the API Gateway management API."""

from __future__ import annotations

import json
from typing import Any, Iterable, Mapping

from botocore.exceptions import ClientError

from chat_common import runtime


def management_api(endpoint: str) -> Any:
    """Client for postToConnection; `endpoint` is https://{api-id}.execute-api.{region}.amazonaws.com/{stage}."""
    return runtime.client("apigatewaymanagementapi", endpoint)


def authorized_caller(event: Any) -> tuple[str, str] | None:
    """(connectionId, userId) of an authorized connection's request, or None.

    None is only reachable when a route runs without the authorizer (a deployment error) or
    the event did not come from API Gateway: such a request is refused, never recorded or
    queued for user "None".
    """
    context = event.get("requestContext") if isinstance(event, Mapping) else None
    if not isinstance(context, Mapping):
        return None
    authorizer = context.get("authorizer")
    connection_id = context.get("connectionId")
    user_id = authorizer.get("userId") if isinstance(authorizer, Mapping) else None
    if not (isinstance(connection_id, str) and connection_id and isinstance(user_id, str) and user_id):
        return None
    return connection_id, user_id


def save(table: Any, *, connection_id: str, user_id: str, now: int, ttl_seconds: int) -> None:
    table.put_item(Item={"connectionId": connection_id, "userId": user_id,
                         "connectedAt": now, "expiresAt": now + ttl_seconds})


def forget(table: Any, connection_id: str) -> None:
    table.delete_item(Key={"connectionId": connection_id})


def post(api: Any, connection_id: str, frame: Mapping[str, Any]) -> bool:
    """Send one frame; False when the client has gone (410), any other error raises."""
    try:
        api.post_to_connection(ConnectionId=connection_id,
                               Data=json.dumps(frame, ensure_ascii=False).encode("utf-8"))
    except ClientError as err:
        if (err.response.get("Error", {}).get("Code") == "GoneException"
                or err.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 410):
            return False
        raise
    return True


def post_all(api: Any, connection_id: str, frames: Iterable[Mapping[str, Any]]) -> bool:
    """Send frames in order (the chunks of one answer); False as soon as the client has gone."""
    return all(post(api, connection_id, frame) for frame in frames)

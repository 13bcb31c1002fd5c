"""Erasing one user's data from the chat path: history, claims, connection records, cached answers.

Items are found through each table's `user` index (a global secondary index on `userId`,
keys only), never by a scan. Items written before the index existed carry no `userId`:
`scan_unindexed` finds those once, by a scan of the history table for the user's prefix.
The index is eventually consistent: an item written in the last moment may be missed, so an
operator erases after the user can no longer sign in (Cognito user disabled or deleted).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Iterator

from boto3.dynamodb.conditions import Attr, Key

from chat_common import cache, claims

USER_INDEX = "user"
USER_ATTRIBUTE = "userId"


@dataclass
class Erased:
    exchanges: int = 0
    claims: int = 0
    connections: int = 0
    cached_answers: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def check_user_id(user_id: Any) -> str:
    """A user id as the platform stores it (a Cognito sub): non-empty, no '#' (the key separator)."""
    if not isinstance(user_id, str) or not user_id.strip() or "#" in user_id or len(user_id) > 256:
        raise ValueError("userId must be a non-empty string of at most 256 characters without '#'")
    return user_id


def _indexed_keys(table: Any, user_id: str, key_names: tuple[str, ...]) -> Iterator[dict[str, Any]]:
    query: dict[str, Any] = {"IndexName": USER_INDEX, "KeyConditionExpression": Key(USER_ATTRIBUTE).eq(user_id)}
    while True:
        page = table.query(**query)
        for item in page["Items"]:
            yield {name: item[name] for name in key_names}
        if "LastEvaluatedKey" not in page:
            return
        query["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _unindexed_history_keys(table: Any, user_id: str) -> Iterator[dict[str, Any]]:
    """Items of the user written before items carried `userId` (a scan: run once after the upgrade)."""
    found = Attr("userId").not_exists() & (Attr("userSession").begins_with(f"{user_id}#")
                                           | Attr("userSession").begins_with(f"{claims.PREFIX}{user_id}#"))
    scan: dict[str, Any] = {"FilterExpression": found, "ProjectionExpression": "userSession, createdAt"}
    while True:
        page = table.scan(**scan)
        yield from page["Items"]
        if "LastEvaluatedKey" not in page:
            return
        scan["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def erase_user(user_id: str, *, history_table: Any, connections_table: Any, redis_client: Any,
               scan_unindexed: bool = False) -> Erased:
    """Delete everything the chat path holds of `user_id`; returns what was deleted."""
    check_user_id(user_id)
    erased = Erased()
    keys = list(_indexed_keys(history_table, user_id, ("userSession", "createdAt")))
    if scan_unindexed:
        keys += list(_unindexed_history_keys(history_table, user_id))
    for key in keys:
        history_table.delete_item(Key=key)
        if str(key["userSession"]).startswith(claims.PREFIX):
            erased.claims += 1
        else:
            erased.exchanges += 1
    for key in list(_indexed_keys(connections_table, user_id, ("connectionId",))):
        connections_table.delete_item(Key=key)
        erased.connections += 1
    erased.cached_answers = _erase_cached(redis_client, user_id)
    return erased


def _erase_cached(client: Any, user_id: str) -> int:
    """Delete the answers the user's index set lists, then the set; counts answers that existed."""
    index = cache.user_index(user_id)
    keys = sorted(client.smembers(index))
    deleted = 0
    for start in range(0, len(keys), 500):  # bounded commands however many answers there are
        deleted += int(client.delete(*keys[start:start + 500]))
    client.delete(index)
    return deleted

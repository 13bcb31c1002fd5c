"""Chat history: one item per exchange, prompt and answer encrypted at field level.

Item: userSession (hash, "<userId>#<sessionId>"), createdAt (range, epoch ms), requestId,
model, dataKey, promptCiphertext/promptNonce (the JSON message list), answerCiphertext/
answerNonce. Nothing readable of the conversation is stored in the clear, so a table export
or backup shows no plaintext. The KMS encryption context is {"userSession": ...}.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Sequence

from boto3.dynamodb.conditions import Attr, Key
from botocore.exceptions import ClientError

from chat_common import envelope

CONTEXT_KEY = "userSession"
FIELDS = ("prompt", "answer")
MAX_PAGES = 10  # bound on the idempotency lookup
CLOCK_SKEW_MS = 60_000  # the request was timed on another host than the one that stored it
KEY_COLLISION_ATTEMPTS = 5


def user_session(user_id: str, session_id: str) -> str:
    return f"{user_id}#{session_id}"


@dataclass(frozen=True)
class Exchange:
    messages: list[dict[str, str]]
    answer: str


class History:
    def __init__(self, table: Any, kms: Any, key_arn: str) -> None:
        self.table, self.kms, self.key_arn = table, kms, key_arn

    def find(self, session: str, request_id: str, requested_at: int) -> dict[str, Any] | None:
        """The stored exchange of `request_id`, if an earlier attempt stored it.

        Only the session's items created since the request was accepted are read (a range on
        the sort key), so the lookup stays small however long the session is.
        """
        since = requested_at - CLOCK_SKEW_MS
        query: dict[str, Any] = {
            "KeyConditionExpression": Key("userSession").eq(session) & Key("createdAt").gte(since),
            "FilterExpression": Attr("requestId").eq(request_id), "ConsistentRead": True}
        for _ in range(MAX_PAGES):
            page = self.table.query(**query)
            items: list[dict[str, Any]] = page["Items"]
            if items:
                return items[0]
            if "LastEvaluatedKey" not in page:
                return None
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return None

    def store(self, *, session: str, request_id: str, model: str, messages: Sequence[dict[str, str]],
              answer: str, now_ms: int) -> dict[str, Any]:
        sealed = envelope.seal(self.kms, self.key_arn, {CONTEXT_KEY: session}, {
            "prompt": json.dumps(list(messages), ensure_ascii=False).encode("utf-8"),
            "answer": answer.encode("utf-8")})
        item: dict[str, Any] = {"userSession": session, "createdAt": now_ms, "requestId": request_id,
                                "model": model, **sealed}
        # Two exchanges of one session stored in the same millisecond would share a key:
        # never overwrite, take the next free millisecond instead.
        for _ in range(KEY_COLLISION_ATTEMPTS):
            try:
                self.table.put_item(Item=item, ConditionExpression=Attr("createdAt").not_exists())
                return item
            except ClientError as err:
                if err.response["Error"]["Code"] != "ConditionalCheckFailedException":
                    raise
                item["createdAt"] += 1
        raise RuntimeError("no free createdAt for this session")


def decrypt(item: dict[str, Any], kms: Any) -> Exchange:
    """Read one stored exchange back (needs kms:Decrypt with the item's encryption context)."""
    plain = envelope.unseal(kms, item, {CONTEXT_KEY: item["userSession"]}, FIELDS)
    return Exchange(messages=json.loads(plain["prompt"]), answer=plain["answer"].decode("utf-8"))

"""Chat history: one item per exchange, prompt and answer encrypted at field level.

Item: userSession (hash, "<userId>#<sessionId>"), createdAt (range, epoch ms), userId (the
table's user index: a user's items are found without a scan), requestId, model, dataKey,
promptCiphertext/promptNonce (the JSON message list), answerCiphertext/answerNonce,
encoding. Nothing readable of the conversation is stored in the clear, so a table export
or backup shows no plaintext. The KMS encryption context is {"userSession": ...}.

An item holds at most 400 KB (names and values); a larger PutItem fails with a validation
error no retry fixes. So prompt and answer are compressed (zlib) before they are encrypted
— text shrinks several times, ciphertext not at all — and an exchange that is still too
large is stored as a size-bounded record: the answer's compressed stream cut to fit,
flagged `answerTruncated` (the client still gets the whole answer; only the stored copy is
short). One item per exchange keeps the idempotency lookup and erasure simple; with the
configured output cap a bounded record is the exception, not the rule.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Sequence

from boto3.dynamodb.conditions import Attr, Key
from botocore.exceptions import ClientError

from chat_common import envelope

CONTEXT_KEY = "userSession"
FIELDS = ("prompt", "answer")
MAX_PAGES = 10  # bound on the idempotency lookup
CLOCK_SKEW_MS = 60_000  # the request was timed on another host than the one that stored it
KEY_COLLISION_ATTEMPTS = 5
# DynamoDB's item limit is 400 KB (1 KB = 1024 bytes); moto refuses above 405,000 bytes. The
# budget stays under both, with room for a createdAt that gains a digit on a key collision.
ITEM_LIMIT_BYTES = 400 * 1024
ITEM_BUDGET_BYTES = 400_000
ZLIB = "zlib"
TRUNCATED = "answerTruncated"


class Unstorable(Exception):
    """DynamoDB refused the exchange in a way no retry fixes (ValidationException)."""


def item_size(item: dict[str, Any]) -> int:
    """Bytes an item counts against the limit, as DynamoDB documents it: attribute names
    and string values in UTF-8, binary values raw; numbers counted generously as their digits
    (DynamoDB counts about half of that), booleans one byte."""
    total = 0
    for name, value in item.items():
        total += len(name.encode("utf-8"))
        if isinstance(value, str):
            total += len(value.encode("utf-8"))
        elif isinstance(value, bool) or value is None:
            total += 1
        elif isinstance(value, (int, float, Decimal)):
            total += len(str(value))
        else:  # bytes, bytearray or boto3's Binary
            total += len(bytes(value.value) if hasattr(value, "value") else bytes(value))
    return total


def user_session(user_id: str, session_id: str) -> str:
    return f"{user_id}#{session_id}"


@dataclass(frozen=True)
class Exchange:
    messages: list[dict[str, str]]
    answer: str
    complete: bool = True  # False: a size-bounded record, holding the answer's beginning only


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
        """The stored item; `Unstorable` when DynamoDB refuses it for good."""
        prompt = zlib.compress(json.dumps(list(messages), ensure_ascii=False).encode("utf-8"))
        compressed = zlib.compress(answer.encode("utf-8"))
        item = self._item(session, request_id, model, now_ms, prompt, compressed, truncated=False)
        if item_size(item) > ITEM_BUDGET_BYTES:
            excess = item_size(item) + item_size({TRUNCATED: True}) - ITEM_BUDGET_BYTES
            if excess >= len(compressed):
                raise Unstorable("the prompt alone does not fit a history item")
            item = self._item(session, request_id, model, now_ms, prompt, compressed[:-excess], truncated=True)
        # Two exchanges of one session stored in the same millisecond would share a key:
        # never overwrite, take the next free millisecond instead.
        for _ in range(KEY_COLLISION_ATTEMPTS):
            try:
                self.table.put_item(Item=item, ConditionExpression=Attr("createdAt").not_exists())
                return item
            except ClientError as err:
                code = err.response["Error"]["Code"]
                if code == "ValidationException":
                    raise Unstorable(err.response["Error"].get("Message", code)) from None
                if code != "ConditionalCheckFailedException":
                    raise
                item["createdAt"] += 1
        raise RuntimeError("no free createdAt for this session")

    def _item(self, session: str, request_id: str, model: str, now_ms: int, prompt: bytes, answer: bytes, *,
              truncated: bool) -> dict[str, Any]:
        sealed = envelope.seal(self.kms, self.key_arn, {CONTEXT_KEY: session}, {"prompt": prompt, "answer": answer})
        item: dict[str, Any] = {"userSession": session, "createdAt": now_ms, "userId": user_of(session),
                                "requestId": request_id, "model": model, "encoding": ZLIB, **sealed}
        if truncated:
            item[TRUNCATED] = True
        return item


def user_of(session: str) -> str:
    """The user id of a `user_session` key (Cognito subs hold no '#')."""
    return session.split("#", 1)[0]


def decrypt(item: dict[str, Any], kms: Any) -> Exchange:
    """Read one stored exchange back (needs kms:Decrypt with the item's encryption context).
    Items written before compression hold the UTF-8 text itself."""
    plain = envelope.unseal(kms, item, {CONTEXT_KEY: item["userSession"]}, FIELDS)
    prompt, answer = plain["prompt"], plain["answer"]
    truncated = bool(item.get(TRUNCATED))
    if item.get("encoding") == ZLIB:
        prompt = zlib.decompress(prompt)
        # A cut stream decompresses to the beginning it holds; its last character may be cut too.
        answer = zlib.decompressobj().decompress(answer) if truncated else zlib.decompress(answer)
    return Exchange(messages=json.loads(prompt), complete=not truncated,
                    answer=answer.decode("utf-8", errors="ignore" if truncated else "strict"))

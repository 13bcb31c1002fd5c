"""Claims on request ids, so that one delivery of a job calls the model and a duplicate
delivered at the same moment waits for its outcome instead of calling it again.

SQS delivers at least once: the same job can reach two workers at once. Before calling the
model a worker claims the request id with a conditional write (`attribute_not_exists`); only
the writer that succeeds calls the model. A claim lives in the history table under its own
partition key, `claim#<userId>#<sessionId>#<requestId>` with `createdAt` 0, so a session's
items never include it, and holds ids and state only (no conversation):

    state "working"  -> a worker is on it (token, claimedAt); "answered" -> the exchange is in
    the history; "unstored" -> answered, but DynamoDB refused the exchange for good (nothing
    to replay); "rejected" -> the model refused it (code). Released (deleted) when the call
    failed in a way a retry can fix. A claim carries `userId` too (the table's user index).

A claim older than the lease (longer than the worker can run) belongs to a worker that died:
the next delivery takes it over. Claims expire through the table's TTL (`expiresAt`) after
the queues can no longer hold the job.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any, Callable

from boto3.dynamodb.conditions import Attr
from botocore.exceptions import ClientError

PREFIX = "claim#"
WORKING, ANSWERED, UNSTORED, REJECTED = "working", "answered", "unstored", "rejected"
TTL_SECONDS = 15 * 86_400  # the dead-letter queue keeps a job 14 days
POLL_SECONDS = (0.1, 0.2, 0.4, 0.8, 1.0)  # then every second


@dataclass(frozen=True)
class Claim:
    """This worker owns the request: call the model, then `finish` or `release`."""

    key: dict[str, Any]
    token: str
    taken_over: bool  # from a dead worker, which may have stored the exchange already


@dataclass(frozen=True)
class Settled:
    """Another delivery already handled the request."""

    state: str  # ANSWERED, UNSTORED or REJECTED
    code: str | None = None


class InFlight(Exception):
    """Another delivery is still working on the request after the bounded wait: retry later."""


def key(session: str, request_id: str) -> dict[str, Any]:
    return {"userSession": f"{PREFIX}{session}#{request_id}", "createdAt": 0}


class Claims:
    def __init__(self, table: Any, *, lease_ms: int, clock_ms: Callable[[], int],
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.table, self.lease_ms, self._clock, self._sleep = table, lease_ms, clock_ms, sleep

    def acquire(self, session: str, request_id: str, *, wait_until_ms: int) -> Claim | Settled:
        """Claim the request, or the outcome of the delivery that did; waits for a working
        claim until `wait_until_ms`, then raises `InFlight`."""
        item_key = key(session, request_id)
        for attempt in range(10_000):
            now = self._clock()
            token = uuid.uuid4().hex
            try:
                self.table.put_item(Item={**item_key, "userId": session.split("#", 1)[0], "requestId": request_id,
                                          "state": WORKING, "token": token,
                                          "claimedAt": now, "expiresAt": now // 1000 + TTL_SECONDS},
                                    ConditionExpression=Attr("userSession").not_exists())
                return Claim(item_key, token, taken_over=False)
            except ClientError as err:
                if not _condition_failed(err):
                    raise
            current = self.table.get_item(Key=item_key, ConsistentRead=True).get("Item")
            if current is None:
                continue  # released in between: claim again
            if current.get("state") in (ANSWERED, UNSTORED):
                return Settled(str(current["state"]))
            if current.get("state") == REJECTED:
                return Settled(REJECTED, current.get("code"))
            if now - int(current.get("claimedAt", 0)) > self.lease_ms:
                claim = self._take_over(item_key, str(current.get("token")), now)
                if claim is not None:
                    return claim
                continue
            if now >= wait_until_ms:
                raise InFlight(f"request {request_id} is being answered by another delivery")
            self._sleep(POLL_SECONDS[min(attempt, len(POLL_SECONDS) - 1)])
        raise InFlight(f"request {request_id}: claim did not settle")

    def _take_over(self, item_key: dict[str, Any], old_token: str, now: int) -> Claim | None:
        token = uuid.uuid4().hex
        try:
            self.table.update_item(Key=item_key, UpdateExpression="SET #t = :new, claimedAt = :now",
                                   ConditionExpression=Attr("token").eq(old_token) & Attr("state").eq(WORKING),
                                   ExpressionAttributeNames={"#t": "token"},
                                   ExpressionAttributeValues={":new": token, ":now": now})
        except ClientError as err:
            if _condition_failed(err):
                return None  # another delivery took it first, or it settled
            raise
        return Claim(item_key, token, taken_over=True)

    def finish(self, claim: Claim, state: str, code: str | None = None) -> bool:
        """Record the outcome; False if the claim was lost (taken over) meanwhile."""
        values: dict[str, Any] = {":state": state, ":token": claim.token}
        names = {"#s": "state", "#t": "token"}
        update = "SET #s = :state"
        if code is not None:
            update += ", #c = :code"
            values[":code"], names["#c"] = code, "code"
        try:
            self.table.update_item(Key=claim.key, UpdateExpression=update, ConditionExpression="#t = :token",
                                   ExpressionAttributeNames=names, ExpressionAttributeValues=values)
        except ClientError as err:
            if _condition_failed(err):
                return False
            raise
        return True

    def release(self, claim: Claim) -> None:
        """Give the request back (the call failed in a way a retry can fix)."""
        try:
            self.table.delete_item(Key=claim.key, ConditionExpression=Attr("token").eq(claim.token))
        except ClientError as err:
            if not _condition_failed(err):
                raise


def _condition_failed(err: ClientError) -> bool:
    return err.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"

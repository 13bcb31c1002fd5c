"""RT-5: the realtime functions, run as deployed (real handlers) against moto, a real Redis
and a fake OpenAI-compatible model server, all on loopback."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import os
import random
import re
import threading
import time
import zlib
from typing import Any

import boto3
import jwt
import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives.asymmetric import rsa

from chat_support import MODEL_KEY, LambdaContext, MODELS, REGION, WS_ENDPOINT, Platform, free_port, load_handler, noise
from chat_support import aws, model_server, platform, redis_server  # noqa: F401 (fixtures)
from chat_common import claims, connections, env, frames, history, model, runtime, tokens
from chat_common.cache import CacheSettings, ResponseCache
from chat_common.observability import logger

authorizer, connect, disconnect, eraser, message, worker = (
    load_handler(name) for name in ("authorizer", "connect", "disconnect", "eraser", "message", "worker"))

CONTEXT = LambdaContext()
PROMPT = "What is the capital of France? (a secret-ish prompt)"


def ws_event(route: str, connection_id: str, user_id: str | None = "user-a", body: Any = None,
             headers: dict[str, str] | None = None, request_id: str | None = None) -> dict[str, Any]:
    context: dict[str, Any] = {"routeKey": route, "connectionId": connection_id, "stage": "prod",
                               "requestId": request_id or f"req-{time.monotonic_ns()}"}
    if user_id is not None:
        context["authorizer"] = {"userId": user_id, "clientId": "web", "scope": ""}
    event: dict[str, Any] = {"requestContext": context, "headers": headers or {}}
    if body is not None:
        event["body"] = body if isinstance(body, str) else json.dumps(body)
        event["isBase64Encoded"] = False
    return event


def chat_frame(content: str = PROMPT, model_name: str = MODELS[0], session: str = "s-1") -> dict[str, Any]:
    return {"action": "sendMessage", "sessionId": session, "model": model_name,
            "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": content}]}


def send(p: Platform, frame: Any, connection_id: str = "conn-a", user_id: str = "user-a", **kw: Any) -> None:
    response = message.handler(ws_event("$default", connection_id, user_id, body=frame, **kw), CONTEXT)
    assert response == {"statusCode": 200}


def run_worker(p: Platform, messages: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return worker.handler(p.sqs_event(p.queued() if messages is None else messages), CONTEXT)


# --- the whole path ---------------------------------------------------------------------------

def test_connect_message_worker_delivers_the_answer_and_stores_it_encrypted(platform: Platform) -> None:
    response = connect.handler(ws_event("$connect", "conn-a"), CONTEXT)
    assert response == {"statusCode": 200}
    record = platform.connections.get_item(Key={"connectionId": "conn-a"})["Item"]
    assert record["userId"] == "user-a" and record["expiresAt"] - record["connectedAt"] == 7200
    assert abs(int(record["connectedAt"]) - time.time()) < 5

    send(platform, chat_frame(), request_id="req-1")
    assert platform.api.frames == {}, "a cache miss answers only through the worker"
    assert run_worker(platform) == {"batchItemFailures": []}

    answer = f"answer: {PROMPT}"
    assert platform.api.frames["conn-a"] == [{"type": "answer", "cached": False, "sessionId": "s-1",
                                               "requestId": "req-1", "content": answer}]
    assert platform.model.call_count == 1
    # The configured output cap travels with every request (MODEL_MAX_TOKENS, set by the fixture).
    assert platform.model.calls[0] == {"model": MODELS[0], "messages": chat_frame()["messages"], "max_tokens": 512}

    items = platform.history.query(KeyConditionExpression="userSession = :s",
                                   ExpressionAttributeValues={":s": "user-a#s-1"})["Items"]
    assert len(items) == 1
    item = items[0]
    assert item["requestId"] == "req-1" and item["model"] == MODELS[0]
    dump = repr(item).encode()
    for plaintext in (PROMPT, answer, "capital", "Be brief"):
        assert plaintext.encode() not in dump, "the stored item must not contain the conversation"
    assert all(isinstance(item[name], boto3.dynamodb.types.Binary)
               for name in ("dataKey", "promptCiphertext", "promptNonce", "answerCiphertext", "answerNonce"))
    exchange = history.decrypt(item, platform.kms)
    assert exchange.messages == chat_frame()["messages"] and exchange.answer == answer

    [note] = platform.notifications()
    assert note["requestId"] == "req-1" and note["model"] == MODELS[0] and note["delivered"] is True
    assert isinstance(note["latencyMs"], int)
    assert "capital" not in json.dumps(note) and "answer" not in json.dumps(note).replace('"answer"', "")

    assert disconnect.handler(ws_event("$disconnect", "conn-a"), CONTEXT) == {"statusCode": 200}
    assert "Item" not in platform.connections.get_item(Key={"connectionId": "conn-a"})


def test_history_is_bound_to_its_user_session(platform: Platform) -> None:
    send(platform, chat_frame())
    run_worker(platform)
    item = platform.exchanges()[0]
    item["userSession"] = "user-b#s-1"  # a copy under another user's key does not decrypt
    with pytest.raises(Exception):
        history.decrypt(item, platform.kms)


def test_a_repeated_prompt_is_answered_from_the_cache_without_the_model(platform: Platform) -> None:
    send(platform, chat_frame())
    run_worker(platform)
    send(platform, chat_frame(), request_id="req-again")
    assert platform.queued() == [], "a cache hit enqueues nothing"
    assert platform.model.call_count == 1
    assert platform.api.frames["conn-a"][-1] == {"type": "answer", "cached": True, "sessionId": "s-1",
                                                 "requestId": "req-again", "content": f"answer: {PROMPT}"}


def test_another_users_identical_prompt_is_not_served_from_the_first_users_cache(platform: Platform) -> None:
    send(platform, chat_frame())
    run_worker(platform)
    send(platform, chat_frame(), connection_id="conn-b", user_id="user-b")
    assert "conn-b" not in platform.api.frames
    assert len(platform.queued()) == 1


def test_a_global_cache_scope_shares_answers_between_users(platform: Platform, monkeypatch) -> None:
    monkeypatch.setenv("CACHE_SCOPE", "global")
    send(platform, chat_frame())
    run_worker(platform)
    send(platform, chat_frame(), connection_id="conn-b", user_id="user-b")
    assert platform.api.frames["conn-b"][0]["cached"] is True
    assert platform.model.call_count == 1


# --- bad frames -------------------------------------------------------------------------------

BAD_FRAMES = {
    "malformed JSON": ('{"action": "sendMessage", ', "bad_request"),
    "not an object": ("[1, 2]", "bad_request"),
    "missing action": ({k: v for k, v in chat_frame().items() if k != "action"}, "bad_request"),
    "unknown action": ({**chat_frame(), "action": "deleteEverything"}, "unknown_action"),
    "missing sessionId": ({k: v for k, v in chat_frame().items() if k != "sessionId"}, "bad_request"),
    "missing messages": ({k: v for k, v in chat_frame().items() if k != "messages"}, "bad_request"),
    "bad sessionId": ({**chat_frame(), "sessionId": "../etc"}, "bad_request"),
    "long sessionId": ({**chat_frame(), "sessionId": "s" * 65}, "bad_request"),
    "bad model": ({**chat_frame(), "model": "gpt-unlisted"}, "bad_request"),
    "no messages": ({**chat_frame(), "messages": []}, "bad_request"),
    "too many messages": ({**chat_frame(), "messages": [{"role": "user", "content": "x"}] * 51}, "bad_request"),
    "bad role": ({**chat_frame(), "messages": [{"role": "tool", "content": "x"}]}, "bad_request"),
    "content not a string": ({**chat_frame(), "messages": [{"role": "user", "content": 3}]}, "bad_request"),
    "oversized frame": (chat_frame(content="x" * 40_000), "too_large"),
}


@pytest.mark.parametrize("frame, code", BAD_FRAMES.values(), ids=BAD_FRAMES.keys())
def test_a_bad_frame_gets_an_error_frame_and_nothing_is_queued(platform: Platform, frame: Any, code: str) -> None:
    send(platform, frame)
    [reply] = platform.api.frames["conn-a"]
    assert reply["type"] == "error" and reply["code"] == code and reply["message"]
    assert platform.queued() == []


def test_the_frame_size_limit_is_configurable_and_binary_frames_are_refused(platform: Platform, monkeypatch) -> None:
    monkeypatch.setenv("MAX_FRAME_BYTES", "100")
    send(platform, chat_frame())
    event = ws_event("$default", "conn-a", body="eyJ9")
    event["isBase64Encoded"] = True
    message.handler(event, CONTEXT)
    assert [f["code"] for f in platform.api.frames["conn-a"]] == ["too_large", "bad_request"]
    assert platform.queued() == []


# Reproduced crashes and leaks of client input (each crashed the function or reached SQS).
HOSTILE_FRAMES = {
    "nested brackets (RecursionError)": "[" * 988 + "]" * 988,
    "nested objects inside a valid frame": json.dumps({**chat_frame(), "extra": json.loads("[" * 20 + "]" * 20)}),
    "escaped lone surrogate in content": json.dumps(chat_frame(content="\ud800")),
    "raw lone surrogate in the body": '{"action": "sendMessage", "x": "\udc00"}',
    "raw U+FFFE in content": json.dumps(chat_frame(content="a\ufffeb"), ensure_ascii=False),
    "escaped U+FFFF in content": json.dumps(chat_frame(content="\uffff")),
    "escaped NUL in content": json.dumps(chat_frame(content="a\u0000b")),
    "a 5,000-digit number": '{"action": "sendMessage", "n": ' + "1" * 5000 + "}",
}


@pytest.mark.parametrize("body", HOSTILE_FRAMES.values(), ids=HOSTILE_FRAMES.keys())
def test_hostile_frames_get_an_error_frame_never_a_crash_or_a_job(platform: Platform, body: str) -> None:
    send(platform, body)
    [reply] = platform.api.frames["conn-a"]
    assert reply["type"] == "error" and reply["code"] == "bad_request" and reply["message"]
    assert platform.queued() == []


def test_the_nesting_limit_is_part_of_the_protocol(platform: Platform) -> None:
    deep = {**chat_frame(), "extra": json.loads("[" * (frames.MAX_NESTING - 1) + "]" * (frames.MAX_NESTING - 1))}
    send(platform, deep)  # exactly at the limit: accepted (unknown fields are ignored)
    send(platform, {**deep, "extra": [deep["extra"]]})
    assert [f["message"] for f in platform.api.frames["conn-a"]] == [
        f"frame nests deeper than {frames.MAX_NESTING} levels"]
    assert len(platform.queued()) == 1


UNIDENTIFIED = {
    "no connectionId": lambda e: e["requestContext"].pop("connectionId"),
    "empty connectionId": lambda e: e["requestContext"].update(connectionId=""),
    "no authorizer context": lambda e: e["requestContext"].pop("authorizer"),
    "null userId": lambda e: e["requestContext"]["authorizer"].update(userId=None),
    "empty userId": lambda e: e["requestContext"]["authorizer"].update(userId=""),
    "authorizer context not an object": lambda e: e["requestContext"].update(authorizer="user-a"),
    "no requestContext": lambda e: e.pop("requestContext"),
}


@pytest.mark.parametrize("damage", UNIDENTIFIED.values(), ids=UNIDENTIFIED.keys())
def test_a_frame_without_connection_or_user_is_refused_not_queued(platform: Platform, damage) -> None:
    event = ws_event("$default", "conn-a", body=chat_frame())
    damage(event)
    assert message.handler(event, CONTEXT) == {"statusCode": 403}
    assert platform.queued() == [] and not platform.api.frames
    assert connect.handler(event, CONTEXT) == {"statusCode": 403}
    assert platform.connections.scan()["Items"] == []


# --- the worker's failure modes ------------------------------------------------------------------

def test_model_timeout_and_5xx_fail_only_their_own_records(platform: Platform) -> None:
    for number, content in enumerate(("fine", "slow [timeout]", "broken [500]", "also fine")):
        send(platform, chat_frame(content=content, session=f"s-{number}"), request_id=f"req-{number}")
    queued = platform.queued()
    poison = {**queued[0], "MessageId": "poison", "Body": "{not json"}
    by_content = {json.loads(m["Body"])["messages"][-1]["content"]: m["MessageId"] for m in queued}

    result = run_worker(platform, queued + [poison])
    failed = {item["itemIdentifier"] for item in result["batchItemFailures"]}
    assert failed == {by_content["slow [timeout]"], by_content["broken [500]"], "poison"}
    answered = {f["requestId"] for f in platform.api.frames["conn-a"]}
    assert answered == {"req-0", "req-3"}
    assert len(platform.exchanges()) == 2


def test_a_vanished_client_loses_its_connection_record_but_keeps_the_history(platform: Platform) -> None:
    connect.handler(ws_event("$connect", "conn-a"), CONTEXT)
    send(platform, chat_frame())
    platform.api.gone.add("conn-a")
    assert run_worker(platform) == {"batchItemFailures": []}
    assert "Item" not in platform.connections.get_item(Key={"connectionId": "conn-a"})
    assert len(platform.exchanges()) == 1
    assert platform.notifications()[0]["delivered"] is False


def test_a_retried_record_is_answered_from_history_without_calling_the_model_again(platform: Platform) -> None:
    send(platform, chat_frame())
    [job] = platform.queued()
    run_worker(platform, [job])
    run_worker(platform, [job])  # the same message delivered again (e.g. after a crash)
    assert platform.model.call_count == 1
    assert len(platform.exchanges()) == 1
    first, second = platform.api.frames["conn-a"]
    assert first == second
    assert [n["replayed"] for n in platform.notifications()] == [False, True]


def test_a_request_the_model_rejects_is_answered_with_an_error_frame_not_retried(platform: Platform) -> None:
    send(platform, chat_frame(content="too long [400]"), request_id="req-400")
    assert run_worker(platform) == {"batchItemFailures": []}
    [reply] = platform.api.frames["conn-a"]
    assert reply["type"] == "error" and reply["code"] == "model_error" and reply["requestId"] == "req-400"
    assert platform.exchanges() == []


def test_a_rotated_model_key_fails_the_record_then_the_retry_reads_the_new_key(platform: Platform, aws) -> None:
    secrets = boto3.client("secretsmanager", region_name=REGION)
    secrets.put_secret_value(SecretId=aws.model_secret_arn, SecretString="sk-old")
    send(platform, chat_frame())
    [job] = platform.queued()
    with pytest.raises(Exception, match="All records failed"):  # a batch of one: the whole batch retries
        run_worker(platform, [job])
    secrets.put_secret_value(SecretId=aws.model_secret_arn, SecretString=MODEL_KEY)
    assert run_worker(platform, [job]) == {"batchItemFailures": []}
    assert platform.api.frames["conn-a"][0]["type"] == "answer"


def job_message(body: str, message_id: str) -> dict[str, Any]:
    """An SQS message as `Platform.sqs_event` takes it, for a body no client could send."""
    return {"MessageId": message_id, "ReceiptHandle": f"rh-{message_id}", "Body": body,
            "MD5OfBody": hashlib.md5(body.encode()).hexdigest()}


def a_job(**overrides: Any) -> str:
    body = {"connectionId": "conn-a", "userId": "user-a", "sessionId": "s-1", "model": MODELS[0],
            "messages": [{"role": "user", "content": "hi"}], "requestId": "req-j", "requestedAt": 1_000}
    body.update(overrides)
    return json.dumps({k: v for k, v in body.items() if v is not ...})


POISON_JOBS = {
    "null userId": a_job(userId=None),
    "missing userId": a_job(userId=...),
    "empty connectionId": a_job(connectionId=""),
    "null requestId": a_job(requestId=None),
    "numeric sessionId": a_job(sessionId=7),
    "requestedAt as text": a_job(requestedAt="1000"),
    "requestedAt as boolean": a_job(requestedAt=True),
    "not an object": "[1, 2]",
    "not JSON": "{not json",
}


def test_a_job_with_missing_or_null_ids_fails_as_a_batch_item_and_is_never_processed(platform: Platform) -> None:
    batch = [job_message(body, f"poison-{i}") for i, body in enumerate(POISON_JOBS.values())]
    good = job_message(a_job(requestId="req-good"), "good")
    result = run_worker(platform, batch + [good])
    assert {f["itemIdentifier"] for f in result["batchItemFailures"]} == {m["MessageId"] for m in batch}
    assert platform.model.call_count == 1  # the good one only
    assert [i["userSession"] for i in platform.exchanges()] == ["user-a#s-1"]
    assert [f["requestId"] for f in platform.api.frames["conn-a"]] == ["req-good"]


def answer_of(frames_received: list[dict[str, Any]], request_id: str) -> tuple[str, list[dict[str, Any]]]:
    """The answer a client reassembles: one answer frame, or chunks joined in index order."""
    mine = [f for f in frames_received if f.get("requestId") == request_id]
    if [f["type"] for f in mine] == ["answer"]:
        return mine[0]["content"], mine
    assert mine and all(f["type"] == "chunk" for f in mine)
    assert [f["index"] for f in mine] == list(range(len(mine)))
    assert [f["final"] for f in mine] == [False] * (len(mine) - 1) + [True]
    return "".join(f["content"] for f in mine), mine


@pytest.mark.parametrize("characters", [20_000, 70_000], ids=["over one frame (40 KB)", "over one message (140 KB)"])
def test_a_long_answer_arrives_in_ordered_chunks_within_the_frame_quota(platform: Platform, characters: int) -> None:
    """Reproduced: a 140 KB answer made postToConnection raise PayloadTooLarge, the record cycled
    to the DLQ and the answer was cached first; a 40 KB one closed the connection (1009)."""
    prompt = f"[long {characters}]"
    send(platform, chat_frame(content=prompt), request_id="req-long")
    assert run_worker(platform) == {"batchItemFailures": []}
    assert not platform.api.closed_1009
    content, chunks = answer_of(platform.api.frames["conn-a"], "req-long")
    assert content == "é" * characters and len(chunks) > 1
    assert all(len(frames.encoded(f)) <= frames.REPLY_FRAME_BYTES for f in chunks)
    send(platform, chat_frame(content=prompt), request_id="req-again")  # from the cache, chunked too
    assert answer_of(platform.api.frames["conn-a"], "req-again")[0] == content
    assert platform.model.call_count == 1 and not platform.api.closed_1009


def test_an_answer_that_could_not_be_delivered_is_not_cached(platform: Platform, monkeypatch) -> None:
    def unavailable(**kwargs: Any) -> None:
        raise ClientError({"Error": {"Code": "InternalServerError", "Message": ""},
                           "ResponseMetadata": {"HTTPStatusCode": 500}}, "PostToConnection")

    send(platform, chat_frame())
    monkeypatch.setattr(platform.api, "post_to_connection", unavailable)
    with pytest.raises(Exception, match="All records failed"):
        run_worker(platform)
    assert platform.redis.client().keys("chat:v1:*") == []


def test_an_answer_with_an_unpaired_surrogate_is_repaired_not_retried_forever(platform: Platform) -> None:
    send(platform, chat_frame(content="[surrogate]"), request_id="req-s")
    assert run_worker(platform) == {"batchItemFailures": []}
    assert platform.api.frames["conn-a"][0]["content"] == "half \ufffd a pair"


def test_two_deliveries_at_the_same_moment_call_the_model_once(platform: Platform) -> None:
    """Two workers get the same job at once: one claims the request id, the other waits for
    the outcome and replays it; one model call, one history item."""
    send(platform, chat_frame(content="take your time [slow]"), request_id="req-twice")
    [message_] = platform.queued()
    job = frames.ChatJob.from_json(message_["Body"])
    shared = worker.dependencies()

    def own_deps() -> Any:  # each delivery in its own container: own clients
        table = boto3.resource("dynamodb", region_name=REGION).Table(platform.history.name)
        return dataclasses.replace(shared, history=history.History(table, boto3.client("kms", region_name=REGION),
                                                                   os.environ["KMS_KEY_ARN"]),
                                   claims=claims.Claims(table, lease_ms=900_000, clock_ms=shared.clock_ms))

    both = [own_deps(), own_deps()]
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def deliver(deps: Any) -> None:
        start.wait()
        try:
            worker.process(job, deps, wait_until_ms=deps.clock_ms() + 5_000)
        except BaseException as err:  # noqa: BLE001 (reported below)
            errors.append(err)

    threads = [threading.Thread(target=deliver, args=(deps,)) for deps in both]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert platform.model.call_count == 1
    assert len(platform.exchanges()) == 1
    assert [f["requestId"] for f in platform.api.frames["conn-a"]] == ["req-twice", "req-twice"]
    assert sorted(n["replayed"] for n in platform.notifications()) == [False, True]
    [claim] = platform.claims()
    assert claim["state"] == "answered" and "content" not in json.dumps(claim, default=str)


def test_a_duplicate_still_in_flight_after_the_wait_is_retried_later(platform: Platform) -> None:
    send(platform, chat_frame(), request_id="req-busy")
    [message_] = platform.queued()
    job = frames.ChatJob.from_json(message_["Body"])
    deps = worker.dependencies()
    held = deps.claims.acquire(history.user_session("user-a", "s-1"), "req-busy", wait_until_ms=0)
    assert isinstance(held, claims.Claim)  # another worker holds it and is still working
    started = time.monotonic()
    with pytest.raises(Exception, match="All records failed"):  # a batch of one: the record returns to the queue
        run_worker(platform, [message_])
    assert time.monotonic() - started < 2, "the wait is bounded (here by the model timeout)"
    assert platform.model.call_count == 0
    deps.claims.release(held)  # that worker failed and gave it back: the retry answers
    assert run_worker(platform, [message_]) == {"batchItemFailures": []}
    assert platform.model.call_count == 1 and platform.api.frames["conn-a"][0]["requestId"] == "req-busy"
    assert job.request_id == "req-busy"


def test_a_claim_of_a_worker_that_died_is_taken_over_after_the_lease(platform: Platform, monkeypatch) -> None:
    monkeypatch.setenv("CLAIM_LEASE_SECONDS", "0.2")
    runtime.reset()
    send(platform, chat_frame(), request_id="req-dead")
    [message_] = platform.queued()
    deps = worker.dependencies()
    deps.claims.acquire(history.user_session("user-a", "s-1"), "req-dead", wait_until_ms=0)  # and never finishes
    time.sleep(0.25)
    assert run_worker(platform, [message_]) == {"batchItemFailures": []}
    assert platform.model.call_count == 1


def test_a_duplicate_of_a_rejected_request_replays_the_refusal_without_the_model(platform: Platform) -> None:
    send(platform, chat_frame(content="too long [400]"), request_id="req-400")
    [message_] = platform.queued()
    session = history.user_session("user-a", "s-1")
    run_worker(platform, [message_])
    run_worker(platform, [{**message_, "MessageId": "copy"}])
    assert platform.model.call_count == 1
    assert [f["code"] for f in platform.api.frames["conn-a"]] == ["model_error", "model_error"]
    assert platform.claims()[0]["userSession"] == f"claim#{session}#req-400"


def test_a_missing_model_key_is_answered_and_set_aside_not_retried(platform: Platform, aws, monkeypatch) -> None:
    """The secret is created empty: every request used to cycle to the DLQ in silence."""
    secrets = boto3.client("secretsmanager", region_name=REGION)
    empty = secrets.create_secret(Name=f"model-key-unset-{time.monotonic_ns()}")["ARN"]
    monkeypatch.setenv("MODEL_API_KEY_SECRET_ARN", empty)
    runtime.reset()
    send(platform, chat_frame(), request_id="req-unset")
    assert run_worker(platform) == {"batchItemFailures": []}  # not retried
    [reply] = platform.api.frames["conn-a"]
    assert reply["type"] == "error" and reply["code"] == "unavailable" and reply["requestId"] == "req-unset"
    assert platform.model.call_count == 0
    [parked] = platform.queued(platform.dead_letter_url)  # the DLQ alarm tells an operator
    assert parked["MessageAttributes"]["reason"]["StringValue"] == "not_configured"

    secrets.put_secret_value(SecretId=empty, SecretString=MODEL_KEY)  # the admin sets the key, redrives
    assert run_worker(platform, [parked]) == {"batchItemFailures": []}
    assert platform.api.frames["conn-a"][-1]["type"] == "answer" and platform.model.call_count == 1


def test_an_empty_model_key_is_read_again_once_set(platform: Platform, aws, monkeypatch) -> None:
    secrets = boto3.client("secretsmanager", region_name=REGION)
    blank = secrets.create_secret(Name=f"model-key-blank-{time.monotonic_ns()}", SecretString=" ")["ARN"]
    monkeypatch.setenv("MODEL_API_KEY_SECRET_ARN", blank)
    runtime.reset()
    send(platform, chat_frame(), request_id="req-blank")
    run_worker(platform)
    assert platform.api.frames["conn-a"][0]["code"] == "unavailable"
    secrets.put_secret_value(SecretId=blank, SecretString=MODEL_KEY)
    send(platform, chat_frame(), request_id="req-set")
    run_worker(platform)
    assert platform.api.frames["conn-a"][-1]["type"] == "answer"


def test_two_exchanges_stored_in_the_same_millisecond_both_survive(platform: Platform) -> None:
    store = history.History(platform.history, platform.kms, os.environ["KMS_KEY_ARN"])
    for request_id in ("r1", "r2"):
        store.store(session="u#s", request_id=request_id, model="m", messages=[{"role": "user", "content": "x"}],
                    answer=request_id, now_ms=1_000)
    items = platform.exchanges()
    assert sorted((int(i["createdAt"]), i["requestId"]) for i in items) == [(1000, "r1"), (1001, "r2")]
    assert store.find("u#s", "r2", requested_at=1_000)["createdAt"] == 1001


# --- answers too large for one history item (DynamoDB's 400 KB) ----------------------------------

MOTO_ITEM_LIMIT = 405_000  # moto.dynamodb.models.dynamo_type.LimitedSizeDict: names and values, binary raw


def test_the_item_size_is_counted_as_dynamodb_counts_it(platform: Platform) -> None:
    """The history's size computation agrees with the emulator's limit to the byte (strings in
    UTF-8, binary raw, names included), and its budget stays under DynamoDB's 400 KB and moto's."""
    assert history.ITEM_BUDGET_BYTES < min(history.ITEM_LIMIT_BYTES, MOTO_ITEM_LIMIT)
    base = {"userSession": "u#s", "createdAt": 1, "note": "é"}
    padding = MOTO_ITEM_LIMIT - history.item_size({**base, "blob": b""})
    at_limit = {**base, "blob": os.urandom(padding)}
    assert history.item_size(at_limit) == MOTO_ITEM_LIMIT
    platform.history.put_item(Item=at_limit)
    with pytest.raises(ClientError, match="Item size has exceeded the maximum allowed size"):
        platform.history.put_item(Item={**at_limit, "blob": os.urandom(padding + 1)})


def noise_answer_sizes(overhead: int, text: str) -> tuple[str, str]:
    """The longest prefix of `text` whose exchange fits the budget, and the one a character longer."""
    def size(length: int) -> int:
        return overhead + len(zlib.compress(text[:length].encode("utf-8")))
    low, high = 0, len(text)
    while low < high:  # compressed size grows with the prefix (a byte or so of jitter at most)
        middle = (low + high + 1) // 2
        low, high = (middle, high) if size(middle) <= history.ITEM_BUDGET_BYTES else (low, middle - 1)
    assert size(low) <= history.ITEM_BUDGET_BYTES < size(low + 1)
    return text[:low], text[:low + 1]


def test_an_exchange_at_the_item_budget_is_stored_whole_and_one_beyond_it_is_bounded(platform: Platform) -> None:
    store = history.History(platform.history, platform.kms, os.environ["KMS_KEY_ARN"])
    messages = [{"role": "user", "content": "write a lot"}]
    tiny = store.store(session="u#s", request_id="r0", model="m", messages=messages, answer="a", now_ms=1_000)
    overhead = history.item_size(tiny) - len(zlib.compress(b"a"))
    at, beyond = noise_answer_sizes(overhead, noise(600_000))
    whole = store.store(session="u#s", request_id="r1", model="m", messages=messages, answer=at, now_ms=2_000)
    assert "answerTruncated" not in whole and history.item_size(whole) <= history.ITEM_BUDGET_BYTES
    assert history.decrypt(whole, platform.kms) == history.Exchange(messages=messages, answer=at, complete=True)
    bounded = store.store(session="u#s", request_id="r2", model="m", messages=messages, answer=beyond, now_ms=3_000)
    assert bounded["answerTruncated"] is True and history.item_size(bounded) == history.ITEM_BUDGET_BYTES
    kept = history.decrypt(store.find("u#s", "r2", requested_at=3_000), platform.kms)
    assert not kept.complete and kept.messages == messages
    assert beyond.startswith(kept.answer) and len(beyond) - len(kept.answer) < 64
    assert [i["requestId"] for i in platform.exchanges()] == ["r0", "r1", "r2"]


def test_an_answer_beyond_the_item_limit_is_delivered_whole_stored_bounded_and_not_retried(
        platform: Platform) -> None:
    """Reproduced: a ~420 KB answer made PutItem fail; the claim was released and the record
    retried, so the model answered five times, the client got nothing and the job dead-lettered."""
    noise(520_000)  # made before the model server answers with it, well within its timeout
    send(platform, chat_frame(content="[noise 520000]"), request_id="req-big")
    [job] = platform.queued()
    assert run_worker(platform, [job]) == {"batchItemFailures": []}
    content, _ = answer_of(platform.api.frames["conn-a"], "req-big")
    assert content == noise(520_000) and platform.model.call_count == 1
    [item] = platform.exchanges()
    assert item["answerTruncated"] is True and history.item_size(item) <= history.ITEM_BUDGET_BYTES
    assert platform.claims()[0]["state"] == "answered"
    assert platform.redis.client().get(cached_answers(platform)[0]).decode() == content  # the whole answer

    run_worker(platform, [job])  # redelivered: replayed from the bounded record, never the model again
    assert platform.model.call_count == 1


def test_a_store_dynamodb_refuses_for_good_is_still_answered_and_settled_not_retried(
        platform: Platform, monkeypatch) -> None:
    monkeypatch.setattr(history, "ITEM_BUDGET_BYTES", 10 * 1024 * 1024)  # no bound: DynamoDB (moto) refuses
    noise(520_000)
    send(platform, chat_frame(content="[noise 520000]"), request_id="req-unstorable")
    [job] = platform.queued()
    assert run_worker(platform, [job]) == {"batchItemFailures": []}
    assert answer_of(platform.api.frames["conn-a"], "req-unstorable")[0] == noise(520_000)
    assert platform.exchanges() == [] and platform.claims()[0]["state"] == "unstored"
    delivered = len(platform.api.frames["conn-a"])
    assert run_worker(platform, [job]) == {"batchItemFailures": []}  # a duplicate: nothing to replay, no model
    assert platform.model.call_count == 1 and len(platform.api.frames["conn-a"]) == delivered


# --- erasing a user ------------------------------------------------------------------------------

def test_erasing_a_user_deletes_their_history_claims_connections_and_cached_answers_only(
        platform: Platform) -> None:
    for connection, user in (("conn-a", "user-a"), ("conn-b", "user-b")):
        connect.handler(ws_event("$connect", connection, user), CONTEXT)
    for session in ("s-1", "s-2"):
        send(platform, chat_frame(content=f"mine in {session}", session=session), request_id=f"req-a-{session}")
    send(platform, chat_frame(content="theirs"), connection_id="conn-b", user_id="user-b", request_id="req-b")
    assert run_worker(platform) == {"batchItemFailures": []}
    # An exchange stored before items carried userId: not in the index, found only by the opt-in scan.
    platform.history.put_item(Item={"userSession": "user-a#old", "createdAt": 5, "requestId": "r-old"})

    with pytest.MonkeyPatch.context() as no_scans:  # the erasure finds items through the index, not a scan …
        for name in ("HISTORY_TABLE", "CONNECTIONS_TABLE"):
            no_scans.setattr(runtime.table(os.environ[name]), "scan",
                             lambda **kw: pytest.fail("scanned without scanUnindexed"), raising=False)
        result = eraser.handler({"userId": "user-a"}, CONTEXT)
    assert result == {"userId": "user-a", "erased": {"exchanges": 2, "claims": 2, "connections": 1,
                                                     "cached_answers": 2}}
    # … unless asked to, once, for what was written before the index existed.
    assert eraser.handler({"userId": "user-a", "scanUnindexed": True}, CONTEXT)["erased"] == {
        "exchanges": 1, "claims": 0, "connections": 0, "cached_answers": 0}

    assert [i["userSession"] for i in platform.exchanges()] == ["user-b#s-1"]
    assert [c["userId"] for c in platform.claims()] == ["user-b"]
    assert [c["connectionId"] for c in platform.connections.scan()["Items"]] == ["conn-b"]
    [left] = cached_answers(platform)
    assert platform.redis.client().smembers("chat:v1:user:user-b") == {left}
    assert platform.redis.client().keys("chat:v1:user:user-a") == []
    send(platform, chat_frame(content="theirs"), connection_id="conn-b", user_id="user-b", request_id="req-b2")
    assert platform.api.frames["conn-b"][-1]["cached"] is True  # the other user's cache still serves


@pytest.mark.parametrize("event", [{}, {"userId": ""}, {"userId": "user-a#s-1"}, {"userId": 7}, ["user-a"]])
def test_the_eraser_refuses_anything_but_one_user_id(platform: Platform, event: Any) -> None:
    send(platform, chat_frame())
    run_worker(platform)
    with pytest.raises(ValueError):
        eraser.handler(event, CONTEXT)
    assert len(platform.exchanges()) == 1


# --- retries back off ---------------------------------------------------------------------------

def test_a_failed_record_is_retried_after_a_growing_backoff_not_the_visibility_timeout(
        platform: Platform, monkeypatch) -> None:
    """Every retriable failure used to wait out the queue's visibility timeout (900 s)."""
    from moto.sqs.models import sqs_backends
    platform.sqs.set_queue_attributes(QueueUrl=platform.queue_url, Attributes={"VisibilityTimeout": "900"})
    send(platform, chat_frame(content="broken [500]"), request_id="req-retry")
    waits = []
    for receives in (1, 2, 3):
        [job] = platform.queued()
        assert job["Attributes"]["ApproximateReceiveCount"] == str(receives)
        with pytest.raises(BatchProcessingError):
            run_worker(platform, [job])
        [stored] = sqs_backends["123456789012"][REGION].queues[platform.queue_url.rsplit("/", 1)[1]]._messages
        waits.append((stored.visible_at - time.time() * 1000) / 1000)
        ceiling = worker.RETRY_BACKOFF_SECONDS * 2 ** (receives - 1)
        assert ceiling / 2 - 2 <= waits[-1] <= ceiling, waits
        platform.sqs.change_message_visibility(QueueUrl=platform.queue_url, ReceiptHandle=job["ReceiptHandle"],
                                               VisibilityTimeout=0)  # the test does not wait it out
    assert platform.model.call_count == 3
    assert [worker.retry_delay(n) <= worker.RETRY_BACKOFF_MAX_SECONDS for n in (6, 50, 10_000)] == [True] * 3


def test_the_backoff_makes_the_record_visible_again_when_it_ends(platform: Platform, monkeypatch) -> None:
    monkeypatch.setattr(worker, "RETRY_BACKOFF_SECONDS", 2)
    platform.sqs.set_queue_attributes(QueueUrl=platform.queue_url, Attributes={"VisibilityTimeout": "900"})
    send(platform, chat_frame(content="broken [500]"), request_id="req-again")
    [job] = platform.queued()
    with pytest.raises(BatchProcessingError):
        run_worker(platform, [job])
    assert platform.queued() == []  # hidden for the backoff (1-2 s) …
    time.sleep(2.2)
    [again] = platform.queued()  # … then back, long before the 900 s visibility timeout
    assert again["Attributes"]["ApproximateReceiveCount"] == "2"


def test_redis_down_still_serves_the_request(platform: Platform, monkeypatch) -> None:
    monkeypatch.setenv("REDIS_PORT", str(free_port()))  # nothing listens there
    started = time.monotonic()
    send(platform, chat_frame())
    assert run_worker(platform) == {"batchItemFailures": []}
    send(platform, chat_frame())  # no cache: asked again
    assert run_worker(platform) == {"batchItemFailures": []}
    assert [f["cached"] for f in platform.api.frames["conn-a"]] == [False, False]
    assert platform.model.call_count == 2
    assert time.monotonic() - started < 5


def test_a_cache_with_a_wrong_password_is_skipped(platform: Platform) -> None:
    settings = CacheSettings(host="127.0.0.1", port=platform.redis.port, auth_secret_arn=None, tls=False,
                             per_user=True, ttl_seconds=60)
    cache = ResponseCache(settings)
    assert cache.get("k") is None
    cache.put("k", "v", "user-a")
    assert platform.redis.client().get("k") is None


def test_the_cache_entry_expires_after_the_configured_ttl(platform: Platform, monkeypatch) -> None:
    monkeypatch.setenv("CACHE_TTL_SECONDS", "120")
    send(platform, chat_frame())
    run_worker(platform)
    client = platform.redis.client()
    [key] = cached_answers(platform)
    assert 0 < client.ttl(key) <= 120
    index = b"chat:v1:user:user-a"  # the user's answers, listed for erasure; it expires with them
    assert client.smembers(index) == {key} and 0 < client.ttl(index) <= 120


def cached_answers(p: Platform) -> list[bytes]:
    """The cache's answer keys (not the per-user index sets)."""
    return [k for k in p.redis.client().keys("chat:v1:*") if not k.startswith(b"chat:v1:user:")]


def test_a_cache_ttl_the_worker_refuses_is_refused_in_the_environment_file(monkeypatch) -> None:
    """Redis refuses an expiry of 0 and the worker refuses CACHE_TTL_SECONDS=0 at start: the
    environment file must not let it through to a deploy."""
    from pydantic import ValidationError

    from modules.config.models import Realtime
    monkeypatch.setenv("REDIS_HOST", "127.0.0.1")
    monkeypatch.setenv("CACHE_TTL_SECONDS", "0")
    with pytest.raises(env.ConfigError, match="CACHE_TTL_SECONDS"):
        CacheSettings.from_env()
    with pytest.raises(ValidationError, match="cache_ttl_seconds"):
        Realtime(cache_ttl_seconds=0)
    monkeypatch.setenv("CACHE_TTL_SECONDS", "1")
    assert CacheSettings.from_env().ttl_seconds == Realtime(cache_ttl_seconds=1).cache_ttl_seconds == 1


# --- configuration and the management API ------------------------------------------------------

def test_the_model_endpoint_must_be_https_unless_http_is_allowed_explicitly(monkeypatch) -> None:
    monkeypatch.setenv("MODEL_API_KEY_SECRET_ARN", "arn:aws:secretsmanager:eu-west-2:1:secret:k")
    monkeypatch.setenv("MODEL_ENDPOINT", "http://gateway.internal/v1")
    monkeypatch.delenv("MODEL_ALLOW_HTTP", raising=False)
    with pytest.raises(env.ConfigError, match="https"):
        model.ModelSettings.from_env()
    monkeypatch.setenv("MODEL_ENDPOINT", "https://gateway.internal/v1/")
    settings = model.ModelSettings.from_env()
    assert settings.endpoint == "https://gateway.internal/v1" and settings.timeout_seconds == 60


def test_replies_reach_the_management_api_at_the_stage_endpoint(aws) -> None:
    from moto.apigatewaymanagementapi.models import apigatewaymanagementapi_backends
    api = boto3.client("apigatewaymanagementapi", endpoint_url=WS_ENDPOINT, region_name=REGION)
    assert connections.post(api, "conn-x", {"type": "answer", "content": "é"}) is True
    sent = apigatewaymanagementapi_backends["123456789012"][REGION].connections["conn-x"].data
    assert json.loads(sent) == {"type": "answer", "content": "é"}


def test_connect_picks_the_bearer_subprotocol_and_refuses_unauthorized_connections(platform: Platform) -> None:
    offered = {"Sec-WebSocket-Protocol": "bearer, eyJhbGciOi.fake.token"}
    response = connect.handler(ws_event("$connect", "conn-p", headers=offered), CONTEXT)
    assert response == {"statusCode": 200, "headers": {"Sec-WebSocket-Protocol": "bearer"}}
    assert connect.handler(ws_event("$connect", "conn-q", user_id=None), CONTEXT) == {"statusCode": 403}
    assert "Item" not in platform.connections.get_item(Key={"connectionId": "conn-q"})


# --- the authorizer ---------------------------------------------------------------------------

POOL = "eu-west-2_TestPool"
ISSUER = f"https://cognito-idp.{REGION}.amazonaws.com/{POOL}"
METHOD_ARN = f"arn:aws:execute-api:{REGION}:123456789012:abc123/prod/$connect"
SETTINGS = tokens.AuthSettings(region=REGION, user_pool_id=POOL, allowed_client_ids=frozenset({"web", "m2m"}))


@pytest.fixture(scope="module")
def signing_keys() -> dict[str, Any]:
    return {kid: rsa.generate_private_key(public_exponent=65537, key_size=2048) for kid in ("k1", "forger")}


def jwks(signing_keys: dict[str, Any], *kids: str) -> dict[str, Any]:
    return {"keys": [{**json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(signing_keys[kid].public_key())),
                      "kid": kid, "alg": "RS256", "use": "sig"} for kid in kids]}


def token(signing_keys: dict[str, Any], *, key: str = "k1", kid: str = "k1", **overrides: Any) -> str:
    now = int(time.time())
    claims = {"sub": "user-123", "iss": ISSUER, "client_id": "web", "token_use": "access",
              "scope": "chat/send", "iat": now, "exp": now + 300, **overrides}
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(claims, signing_keys[key], algorithm="RS256", headers={"kid": kid})


def connect_request(token_value: str | None = None, *, via: str = "query") -> dict[str, Any]:
    event: dict[str, Any] = {"type": "REQUEST", "methodArn": METHOD_ARN, "headers": {},
                             "queryStringParameters": {}, "requestContext": {"routeKey": "$connect"}}
    if token_value and via == "query":
        event["queryStringParameters"] = {"token": token_value}
    elif token_value:
        event["headers"] = {"sec-websocket-protocol": f"bearer, {token_value}"}
    return event


def authorize(signing_keys: dict[str, Any], event: dict[str, Any],
              settings: tokens.AuthSettings = SETTINGS) -> dict[str, Any]:
    keys = tokens.KeySet(settings.jwks_url, fetch=lambda url: jwks(signing_keys, "k1"))
    return authorizer.authorize(event, settings, keys)


@pytest.mark.parametrize("via", ["query", "subprotocol"])
def test_a_valid_access_token_is_allowed_with_the_callers_identity(signing_keys, via: str) -> None:
    policy = authorize(signing_keys, connect_request(token(signing_keys), via=via))
    assert policy["principalId"] == "user-123"
    assert policy["policyDocument"]["Statement"] == [
        {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": METHOD_ARN}]
    assert policy["context"] == {"userId": "user-123", "clientId": "web", "scope": "chat/send"}


def assert_denied(policy: dict[str, Any]) -> None:
    """The documented refusal: a Deny policy (API Gateway answers 403), no identity, no reason."""
    assert policy["principalId"] == "anonymous" and "context" not in policy
    assert [s["Effect"] for s in policy["policyDocument"]["Statement"]] == ["Deny"]


REFUSED = {
    "no token": lambda keys: None,
    "expired beyond the leeway": lambda keys: token(keys, exp=int(time.time()) - 60),
    "issued beyond the leeway in the future": lambda keys: token(keys, iat=int(time.time()) + 120),
    "forged signature": lambda keys: token(keys, key="forger"),
    "unknown key id": lambda keys: token(keys, key="forger", kid="forger"),
    "wrong client": lambda keys: token(keys, client_id="someone-else"),
    "wrong issuer": lambda keys: token(keys, iss="https://cognito-idp.eu-west-2.amazonaws.com/eu-west-2_Other"),
    "id token when access expected": lambda keys: token(keys, token_use="id", client_id=None, aud="web"),
    "no expiry": lambda keys: token(keys, exp=None),
    "sub not a string": lambda keys: token(keys, sub=["user-123"]),
    "garbage": lambda keys: "not.a.jwt",
    "HS256 with the public key": lambda keys: jwt.encode({"sub": "x"}, "s" * 32, algorithm="HS256",
                                                          headers={"kid": "k1"}),
    # Reproduced: UnicodeEncodeError escaped jwt.get_unverified_header and API Gateway answered 500.
    "unpaired surrogate": lambda keys: "eyJ\ud800.eyJ.sig",
    "unpaired surrogate in a valid token": lambda keys: token(keys)[:-2] + "\udfff",
    "non-ASCII": lambda keys: "ééé.ééé.ééé",
    "oversized": lambda keys: "a" * 20_000 + ".b.c",
}


@pytest.mark.parametrize("make", REFUSED.values(), ids=REFUSED.keys())
def test_a_bad_token_is_denied_without_details_and_is_no_function_error(signing_keys, make) -> None:
    """A refusal is a Deny policy, returned: an exception would count in Lambda's Errors metric
    (and page through the authorizer's error alarm) for every rejected login."""
    assert_denied(authorize(signing_keys, connect_request(make(signing_keys))))


def test_the_handler_denies_a_bad_token_without_raising(signing_keys, monkeypatch) -> None:
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("USER_POOL_ID", POOL)
    monkeypatch.setenv("ALLOWED_CLIENT_IDS", "web")
    monkeypatch.setattr(authorizer, "key_set", lambda url: tokens.KeySet(url, fetch=lambda u: jwks(signing_keys, "k1")))
    assert_denied(authorizer.handler(connect_request("eyJ\ud800.x.y"), CONTEXT))


def test_a_small_clock_skew_is_tolerated(signing_keys) -> None:
    now = int(time.time())
    for claims in ({"iat": now + 1}, {"iat": now + 20}, {"exp": now - 10}):
        assert authorize(signing_keys, connect_request(token(signing_keys, **claims)))["context"]["userId"] == "user-123"


def test_an_unreachable_key_set_is_a_real_error_not_a_refusal(signing_keys) -> None:
    """The pool's keys cannot be fetched: the invocation fails (API Gateway answers 500) and the
    Errors alarm counts it; within the refetch interval it keeps failing rather than denying."""
    now = [0.0]

    def fetch(url: str) -> dict[str, Any]:
        raise OSError("connection refused")

    keys = tokens.KeySet(SETTINGS.jwks_url, fetch=fetch, clock=lambda: now[0])
    for _ in range(2):
        with pytest.raises(tokens.KeysUnavailable):
            authorizer.authorize(connect_request(token(signing_keys)), SETTINGS, keys)


def test_id_tokens_are_checked_against_aud_when_configured(signing_keys) -> None:
    settings = tokens.AuthSettings(region=REGION, user_pool_id=POOL, allowed_client_ids=frozenset({"web"}),
                                   token_use="id")
    id_token = token(signing_keys, token_use="id", client_id=None, aud="web", scope=None)
    assert authorize(signing_keys, connect_request(id_token), settings)["context"]["clientId"] == "web"
    assert_denied(authorize(signing_keys, connect_request(token(signing_keys)), settings))  # an access token


def test_the_handler_fetches_the_pools_keys_once_per_container(signing_keys, monkeypatch) -> None:
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("USER_POOL_ID", POOL)
    monkeypatch.setenv("ALLOWED_CLIENT_IDS", " web , m2m ")
    monkeypatch.delenv("TOKEN_USE", raising=False)
    fetched: list[str] = []

    def fetch(url: str) -> dict[str, Any]:
        fetched.append(url)
        return jwks(signing_keys, "k1")

    monkeypatch.setattr(authorizer, "key_set", lambda url: keys.setdefault(url, tokens.KeySet(url, fetch=fetch)))
    keys: dict[str, tokens.KeySet] = {}
    for _ in range(3):
        assert authorizer.handler(connect_request(token(signing_keys)), CONTEXT)["context"]["userId"] == "user-123"
    assert fetched == [f"{ISSUER}/.well-known/jwks.json"]


def test_an_unknown_key_id_refetches_the_keys_at_most_once_a_minute(signing_keys) -> None:
    now = [0.0]
    served = [jwks(signing_keys, "k1")]
    fetches: list[str] = []

    def fetch(url: str) -> dict[str, Any]:
        fetches.append(url)
        return served[0]

    keys = tokens.KeySet("https://jwks", fetch=fetch, clock=lambda: now[0])
    assert tokens.verify(token(signing_keys), SETTINGS, keys).user_id == "user-123"
    served[0] = jwks(signing_keys, "k1", "forger")  # the pool rotated in a new key
    with pytest.raises(tokens.Unauthorized):
        tokens.verify(token(signing_keys, key="forger", kid="forger"), SETTINGS, keys)
    assert len(fetches) == 1, "no refetch within a minute of the last one"
    now[0] = 61.0
    assert tokens.verify(token(signing_keys, key="forger", kid="forger"), SETTINGS, keys).user_id == "user-123"
    assert len(fetches) == 2


# --- a seeded hostile-input run ------------------------------------------------------------------
#
# Thousands of generated frames and tokens, fixed seed: the same run every time. The message
# function and the authorizer are called through their plain functions (as the handlers call
# them), the queue is a recorder that refuses what SQS refuses, and the jobs that come out are
# then fed to the real worker handler in poison-laced batches with duplicate deliveries.

SEED = 20_251_203
FRAMES_IN_RUN, TOKENS_IN_RUN, JOBS_IN_RUN = 2_400, 600, 16
# SQS's documented message characters, written out independently of the code under test.
SQS_CHARACTERS = re.compile("[\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]*")
TEXT_POOL = list("abcdefghij KLMNOP0123456789.,;:!?'\"\\/{}()<>@#$%&*+=-_~|`") + [
    "é", "ß", "中", "文", "😀", "🇬🇧", "\t", "\n", "\r", "\u2028", "\u00a0", "\ufffd", "\U0010fffd"]
BAD_CHARACTERS = ["\x00", "\x01", "\x08", "\x0b", "\x0c", "\x1f", "\ufffe", "\uffff", "\ud800", "\udbff", "\udc00",
                  "\udfff"]


@dataclasses.dataclass
class RecordingQueue:
    """What the message function sends; refuses a body SQS would refuse (InvalidMessageContents)."""

    bodies: list[str] = dataclasses.field(default_factory=list)

    def send_message(self, *, QueueUrl: str, MessageBody: str) -> dict[str, Any]:  # noqa: N803 (boto3's names)
        if not SQS_CHARACTERS.fullmatch(MessageBody) or len(MessageBody.encode("utf-8")) > 262_144:
            raise ClientError({"Error": {"Code": "InvalidMessageContents", "Message": "invalid"}}, "SendMessage")
        self.bodies.append(MessageBody)
        return {"MessageId": f"m{len(self.bodies)}"}


def some_text(rng: random.Random, longest: int = 120) -> str:
    return "".join(rng.choice(TEXT_POOL) for _ in range(rng.randint(1, longest)))


def a_valid_frame(rng: random.Random) -> dict[str, Any]:
    frame: dict[str, Any] = {
        "action": "sendMessage", "model": rng.choice(MODELS),
        "sessionId": "".join(rng.choice("abcXYZ019_-") for _ in range(rng.randint(1, 64))),
        "messages": [{"role": rng.choice(frames.ROLES), "content": some_text(rng)} for _ in range(rng.randint(1, 5))]}
    if rng.random() < 0.2:
        frame["extra"] = {"ignored": [1, {"two": [3]}]}  # unknown fields are ignored (within the nesting limit)
    return frame


def dumps(rng: random.Random, frame: Any) -> str:
    return json.dumps(frame, ensure_ascii=rng.random() < 0.5)


def with_bad_field(rng: random.Random) -> dict[str, Any]:
    frame = a_valid_frame(rng)
    field, value = rng.choice([
        ("sessionId", 7), ("sessionId", None), ("sessionId", ""), ("sessionId", "s" * 65), ("sessionId", "../x"),
        ("sessionId", ["s"]), ("sessionId", {"$gt": ""}), ("model", "gpt-unlisted"), ("model", None), ("model", 1),
        ("model", [MODELS[0]]), ("messages", None), ("messages", {}), ("messages", []), ("messages", "text"),
        ("messages", [1]), ("messages", [{"role": "user"}]), ("messages", [{"role": "tool", "content": "x"}]),
        ("messages", [{"role": "user", "content": 1}]), ("messages", [{"role": "user", "content": "x"}] * 51),
        ("action", "deleteEverything"), ("action", None), ("action", ["sendMessage"]), ("action", 1)])
    frame[field] = value
    if rng.random() < 0.2:
        frame.pop(rng.choice(["action", "sessionId", "model", "messages"]))
    return frame


def hostile_body(rng: random.Random) -> tuple[Any, bool]:
    """A frame body the protocol refuses, and whether it travels as a binary frame."""
    kind = rng.randrange(11)
    if kind == 0:  # truncated JSON
        body = dumps(rng, a_valid_frame(rng))
        return body[:rng.randint(1, len(body) - 1)], False
    if kind == 1:  # nested past the limit, bare, unbalanced or inside a valid frame
        depth = rng.randint(frames.MAX_NESTING + 1, 3_000)
        shape = rng.randrange(3)
        if shape == 0:
            return "[" * depth + "]" * depth, False
        if shape == 1:
            return "{\"a\":" * depth + "1" + "}" * depth, False
        return dumps(rng, {**a_valid_frame(rng), "extra": "@"})[:-1].replace('"@"', "[" * depth + "]" * depth) + "}", False
    if kind == 2:  # a character SQS refuses, escaped in the JSON
        frame = a_valid_frame(rng)
        frame["messages"][-1]["content"] += rng.choice(BAD_CHARACTERS) + some_text(rng, 5)
        return json.dumps(frame), False
    if kind == 3:  # the same, raw in the body
        body = dumps(rng, a_valid_frame(rng))
        position = rng.randint(0, len(body))
        return body[:position] + rng.choice(BAD_CHARACTERS) + body[position:], False
    if kind == 4:
        return dumps(rng, with_bad_field(rng)), False
    if kind == 5:  # JSON that is not an object
        return rng.choice(["null", "1", '"sendMessage"', "[]", "true", "1e999", "-0", "[{\"action\": \"sendMessage\"}]"]), False
    if kind == 6:  # a number past the int conversion limit
        return '{"action": "sendMessage", "n": ' + "9" * rng.randint(4_301, 20_000) + "}", False
    if kind == 7:  # oversized
        frame = a_valid_frame(rng)
        frame["messages"][0]["content"] = "x" * rng.randint(32_769, 60_000)
        return json.dumps(frame), False
    if kind == 8:  # a binary frame
        return dumps(rng, a_valid_frame(rng)), True
    if kind == 9:  # not a string at all
        return rng.choice([None, 5, {"action": "sendMessage"}, ["x"], 1.5]), False
    return '{"action": "sendMessage", "action": "' + some_text(rng, 10).replace('"', "").replace("\\", "") + '"}', False


def hostile_run_frames(rng: random.Random, count: int) -> list[tuple[dict[str, Any], str]]:
    """(event, expectation): "queued", "error" (an error frame, nothing queued) or "refused" (403)."""
    run = []
    for index in range(count):
        draw = rng.random()
        expectation = "queued" if draw < 0.35 else "refused" if draw < 0.42 else "error"
        event = ws_event("$default", f"c{index}", "user-a", request_id=f"r{index}")
        if expectation == "error":
            body, binary = hostile_body(rng)
            event["isBase64Encoded"] = binary
            if body is not None:
                event["body"] = body
        else:
            event["body"], event["isBase64Encoded"] = dumps(rng, a_valid_frame(rng)), False
        if expectation == "refused":
            damage = rng.choice(list(UNIDENTIFIED.values()))
            damage(event)
        run.append((event, expectation))
    return run


def test_a_seeded_hostile_run_never_crashes_never_queues_bad_input_and_queues_each_valid_frame_once(
        platform: Platform) -> None:
    rng = random.Random(SEED)
    queue, api = RecordingQueue(), connections.management_api("unused")
    deps = message.Dependencies(allowed_models=frozenset(MODELS), max_frame_bytes=32_768, queue_url="queue",
                                sqs=queue, api=api, cache=ResponseCache(CacheSettings.from_env()))
    run = hostile_run_frames(rng, FRAMES_IN_RUN)
    expected = {kind: [e for e, k in run if k == kind] for kind in ("queued", "error", "refused")}
    assert len(run) >= 2_000 and all(len(events) >= 100 for events in expected.values())

    level = logger.log_level
    logger.setLevel("WARNING")  # thousands of "frame refused" lines are not what this run checks
    try:
        for event, expectation in run:
            check_one_frame(event, expectation, deps, api)
    finally:
        logger.setLevel(level)

    jobs = [frames.ChatJob.from_json(body) for body in queue.bodies]
    queued_ids = [job.request_id for job in jobs]
    assert sorted(queued_ids) == sorted(e["requestContext"]["requestId"] for e in expected["queued"])
    assert len(set(queued_ids)) == len(queued_ids), "every valid frame is enqueued exactly once"
    assert all(job.user_id == "user-a" and job.connection_id.startswith("c") for job in jobs)

    run_jobs_through_the_worker(platform, rng, queue.bodies[:JOBS_IN_RUN])


def check_one_frame(event: dict[str, Any], expectation: str, deps: Any, api: Any) -> None:
    response = message.handle_frame(event, deps, now_ms=1_000_000)  # raises on no input
    connection = event.get("requestContext", {}).get("connectionId")
    sent = api.frames.get(connection, []) if isinstance(connection, str) else []
    if expectation == "refused":
        assert response == {"statusCode": 403} and sent == []
    elif expectation == "error":
        assert response == {"statusCode": 200}
        assert [f["type"] for f in sent] == ["error"] and sent[0]["code"] in {
            "bad_request", "too_large", "unknown_action"}, (event.get("body"), sent)
    else:
        assert response == {"statusCode": 200} and sent == [], (event["body"], sent)


def run_jobs_through_the_worker(platform: Platform, rng: random.Random, bodies: list[str]) -> None:
    """Every valid job answered (duplicates replayed, one model call each), every poison record
    reported as a batch item failure, nothing processed for it."""
    deliveries = [(f"ok-{i}-{copy}", body) for i, body in enumerate(bodies) for copy in range(rng.randint(1, 3))]
    poison = [(f"poison-{i}", body) for i, body in enumerate(
        list(POISON_JOBS.values()) + [mangled_job(rng, rng.choice(bodies)) for _ in range(12)])]
    records = deliveries + poison
    rng.shuffle(records)
    reported: set[str] = set()
    while records:
        batch = records[:rng.randint(1, 5)]
        records = records[len(batch):]
        event = platform.sqs_event([job_message(body, message_id) for message_id, body in batch])
        try:
            result = worker.handler(event, CONTEXT)
            reported |= {failure["itemIdentifier"] for failure in result["batchItemFailures"]}
        except BatchProcessingError:  # every record of the batch failed: all of it returns to the queue
            reported |= {message_id for message_id, _ in batch}
    assert reported == {message_id for message_id, _ in poison}
    assert platform.model.call_count == len(bodies)
    stored = platform.exchanges()
    assert len(stored) == len(bodies) and not any(item["userSession"].startswith("None#") for item in stored)
    for body in bodies:
        job = frames.ChatJob.from_json(body)
        replies = platform.api.frames[job.connection_id]
        assert replies and {f["type"] for f in replies} == {"answer"}
        assert {f["content"] for f in replies} == {f"answer: {job.messages[-1]['content']}"}


def mangled_job(rng: random.Random, body: str) -> str:
    """A real job with one id removed, nulled, emptied or retyped, or the body cut short."""
    data = json.loads(body)
    field = rng.choice(["connectionId", "userId", "sessionId", "model", "requestId", "requestedAt", "messages"])
    damage = rng.randrange(5)
    if damage == 0:
        data.pop(field)
    elif damage == 1:
        data[field] = None
    elif damage == 2:
        data[field] = "" if field != "requestedAt" else "1000"
    elif damage == 3:
        data[field] = [data[field]]
    else:
        return body[:rng.randint(1, len(body) - 1)]
    return json.dumps(data)


def hostile_tokens(rng: random.Random, keys: dict[str, Any], count: int) -> list[tuple[Any, bool]]:
    """(token, allowed): a few valid tokens and many that must be denied."""
    valid = [token(keys, sub=f"user-{i}") for i in range(12)]
    now = int(time.time())
    signed_bad = [
        lambda: token(keys, exp=now - rng.randint(31, 10_000)),
        lambda: token(keys, iat=now + rng.randint(31, 10_000)),
        lambda: token(keys, iss=f"https://cognito-idp.{REGION}.amazonaws.com/{some_text(rng, 8)}"),
        lambda: token(keys, client_id=rng.choice(["", "other", None, 7])),
        lambda: token(keys, token_use=rng.choice(["id", "refresh", "", None])),
        lambda: token(keys, sub=rng.choice([None, "", 42, ["user"], {"id": "user"}])),
        lambda: token(keys, scope=rng.choice([["chat"], 5, {"a": 1}])),
        lambda: token(keys, key="forger"),
        lambda: token(keys, key="forger", kid=rng.choice(["forger", "", "k2", "../k1"])),
        lambda: jwt.encode({"sub": "x", "iss": ISSUER, "exp": now + 60, "token_use": "access", "client_id": "web"},
                           None, algorithm="none"),
        lambda: jwt.encode({"sub": "x"}, "s" * 32, algorithm="HS256", headers={"kid": "k1"}),
    ]
    hostile_alphabet = list("abcXYZ012-_.=+/ ") + ["é", "\ud800", "\udfff", "\x00", "\ufffe", "😀", "%", "\n"]
    made: list[tuple[Any, bool]] = []
    while len(made) < count:
        kind = rng.randrange(8)
        base = rng.choice(valid)
        if kind == 0:
            made.append((base, True))
        elif kind == 1:
            made.append((rng.choice(signed_bad)(), False))
        elif kind == 2:  # garbage of any shape
            made.append(("".join(rng.choice(hostile_alphabet) for _ in range(rng.randint(0, 300))), False))
        elif kind == 3:  # one character of a segment changed (never the last, whose low bits may be padding)
            parts = base.split(".")
            segment = rng.randrange(3)
            position = rng.randrange(len(parts[segment]) - 1)
            replacement = rng.choice([c for c in "AQgwBCDabc0189-_" if c != parts[segment][position]])
            parts[segment] = parts[segment][:position] + replacement + parts[segment][position + 1:]
            made.append((".".join(parts), False))
        elif kind == 4:  # cut short
            made.append((base[:rng.randint(0, len(base) - 1)], False))
        elif kind == 5:  # a hostile character inserted
            position = rng.randint(0, len(base))
            made.append((base[:position] + rng.choice(["\ud800", "é", "\x00", " ", ".", "=", "\ufffe"]) + base[position:],
                         False))
        elif kind == 6:  # header of one token, claims of another
            a, b = base.split("."), rng.choice(valid).split(".")
            forged = ".".join([a[0], base64.urlsafe_b64encode(json.dumps(
                {"sub": "admin", "iss": ISSUER, "exp": now + 600, "token_use": "access", "client_id": "web"}
            ).encode()).decode().rstrip("="), b[2]])
            made.append((forged, False))
        else:  # oversized
            made.append((base + "A" * rng.randint(16_384, 40_000), False))
    return made


def test_a_seeded_run_of_hostile_tokens_allows_only_valid_ones_and_never_raises(signing_keys) -> None:
    rng = random.Random(SEED)
    keys = tokens.KeySet(SETTINGS.jwks_url, fetch=lambda url: jwks(signing_keys, "k1"))
    run = hostile_tokens(rng, signing_keys, TOKENS_IN_RUN)
    assert len(run) >= 500 and sum(1 for _, allowed in run if not allowed) >= 450
    for value, allowed in run:
        via = rng.choice(["query", "subprotocol"])
        policy = authorizer.authorize(connect_request(value, via=via) if isinstance(value, str) and value
                                      else connect_request(None), SETTINGS, keys)
        effects = [s["Effect"] for s in policy["policyDocument"]["Statement"]]
        if allowed:
            assert effects == ["Allow"] and policy["context"]["userId"].startswith("user-"), value
        else:
            assert effects == ["Deny"] and "context" not in policy, value

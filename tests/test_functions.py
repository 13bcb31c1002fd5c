"""RT-5: the realtime functions, run as deployed (real handlers) against moto, a real Redis
and a fake OpenAI-compatible model server, all on loopback."""

from __future__ import annotations

import json
import os
import time
from typing import Any

import boto3
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from chat_support import MODEL_KEY, LambdaContext, MODELS, REGION, WS_ENDPOINT, Platform, free_port, load_handler
from chat_support import aws, model_server, platform, redis_server  # noqa: F401 (fixtures)
from chat_common import connections, env, history, model, tokens
from chat_common.cache import CacheSettings, ResponseCache

authorizer, connect, disconnect, message, worker = (
    load_handler(name) for name in ("authorizer", "connect", "disconnect", "message", "worker"))

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
    assert platform.model.calls[0] == {"model": MODELS[0], "messages": chat_frame()["messages"]}

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
    item = platform.history.scan()["Items"][0]
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
    assert len(platform.history.scan()["Items"]) == 2


def test_a_vanished_client_loses_its_connection_record_but_keeps_the_history(platform: Platform) -> None:
    connect.handler(ws_event("$connect", "conn-a"), CONTEXT)
    send(platform, chat_frame())
    platform.api.gone.add("conn-a")
    assert run_worker(platform) == {"batchItemFailures": []}
    assert "Item" not in platform.connections.get_item(Key={"connectionId": "conn-a"})
    assert len(platform.history.scan()["Items"]) == 1
    assert platform.notifications()[0]["delivered"] is False


def test_a_retried_record_is_answered_from_history_without_calling_the_model_again(platform: Platform) -> None:
    send(platform, chat_frame())
    [job] = platform.queued()
    run_worker(platform, [job])
    run_worker(platform, [job])  # the same message delivered again (e.g. after a crash)
    assert platform.model.call_count == 1
    assert len(platform.history.scan()["Items"]) == 1
    first, second = platform.api.frames["conn-a"]
    assert first == second
    assert [n["replayed"] for n in platform.notifications()] == [False, True]


def test_a_request_the_model_rejects_is_answered_with_an_error_frame_not_retried(platform: Platform) -> None:
    send(platform, chat_frame(content="too long [400]"), request_id="req-400")
    assert run_worker(platform) == {"batchItemFailures": []}
    [reply] = platform.api.frames["conn-a"]
    assert reply["type"] == "error" and reply["code"] == "model_error" and reply["requestId"] == "req-400"
    assert platform.history.scan()["Items"] == []


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


def test_two_exchanges_stored_in_the_same_millisecond_both_survive(platform: Platform) -> None:
    store = history.History(platform.history, platform.kms, os.environ["KMS_KEY_ARN"])
    for request_id in ("r1", "r2"):
        store.store(session="u#s", request_id=request_id, model="m", messages=[{"role": "user", "content": "x"}],
                    answer=request_id, now_ms=1_000)
    items = platform.history.scan()["Items"]
    assert sorted((int(i["createdAt"]), i["requestId"]) for i in items) == [(1000, "r1"), (1001, "r2")]
    assert store.find("u#s", "r2", requested_at=1_000)["createdAt"] == 1001


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
    cache.put("k", "v")
    assert platform.redis.client().get("k") is None


def test_the_cache_entry_expires_after_the_configured_ttl(platform: Platform, monkeypatch) -> None:
    monkeypatch.setenv("CACHE_TTL_SECONDS", "120")
    send(platform, chat_frame())
    run_worker(platform)
    client = platform.redis.client()
    [key] = client.keys("chat:v1:*")
    assert 0 < client.ttl(key) <= 120


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


REFUSED = {
    "no token": lambda keys: None,
    "expired": lambda keys: token(keys, exp=int(time.time()) - 10),
    "forged signature": lambda keys: token(keys, key="forger"),
    "unknown key id": lambda keys: token(keys, key="forger", kid="forger"),
    "wrong client": lambda keys: token(keys, client_id="someone-else"),
    "wrong issuer": lambda keys: token(keys, iss="https://cognito-idp.eu-west-2.amazonaws.com/eu-west-2_Other"),
    "id token when access expected": lambda keys: token(keys, token_use="id", client_id=None, aud="web"),
    "no expiry": lambda keys: token(keys, exp=None),
    "garbage": lambda keys: "not.a.jwt",
    "HS256 with the public key": lambda keys: jwt.encode({"sub": "x"}, "s" * 32, algorithm="HS256",
                                                          headers={"kid": "k1"}),
}


@pytest.mark.parametrize("make", REFUSED.values(), ids=REFUSED.keys())
def test_a_bad_token_is_answered_401_without_details(signing_keys, make) -> None:
    value = make(signing_keys)
    with pytest.raises(Exception) as raised:
        authorize(signing_keys, connect_request(value))
    assert str(raised.value) == "Unauthorized" and raised.value.__cause__ is None


def test_id_tokens_are_checked_against_aud_when_configured(signing_keys) -> None:
    settings = tokens.AuthSettings(region=REGION, user_pool_id=POOL, allowed_client_ids=frozenset({"web"}),
                                   token_use="id")
    id_token = token(signing_keys, token_use="id", client_id=None, aud="web", scope=None)
    assert authorize(signing_keys, connect_request(id_token), settings)["context"]["clientId"] == "web"
    with pytest.raises(Exception, match="Unauthorized"):
        authorize(signing_keys, connect_request(token(signing_keys)), settings)  # an access token


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

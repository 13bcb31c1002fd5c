"""Fixtures and fakes for the realtime function tests (imported by tests/test_functions.py).

Real handlers run against moto (DynamoDB, SQS, SNS, KMS, Secrets Manager), a real
`redis-server` with a password on 127.0.0.1, and a fake OpenAI-compatible model server on
127.0.0.1 that counts its calls. postToConnection goes to a recording fake that can play a
vanished client (GoneException, 410), which moto's management API cannot.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import random
import re
import shutil
import socket
import string
import subprocess
import sys
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any, Iterator

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

LAMBDA_DIR = Path(__file__).resolve().parent.parent / "lambda"
sys.path.insert(0, str(LAMBDA_DIR))  # the zips put chat_common at the top level; so do the tests

from chat_common import connections, runtime  # noqa: E402

REGION = "eu-west-2"
REDIS_PASSWORD = "test-redis-auth-token"
MODEL_KEY = "sk-test-model-key"
# Generous enough that a loaded CI machine answers an ordinary request in time.
MODEL_TIMEOUT_SECONDS = 1.0
MODELS = ("claude-3-5-sonnet", "deepseek")
WS_ENDPOINT = "https://abc123.execute-api.eu-west-2.amazonaws.com/prod"

_handlers: dict[str, ModuleType] = {}


def load_handler(function: str) -> ModuleType:
    """lambda/<function>/handler.py as the module Lambda would import (once per test session)."""
    if function not in _handlers:
        name = f"{function}_handler"
        spec = importlib.util.spec_from_file_location(name, LAMBDA_DIR / function / "handler.py")
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        _handlers[function] = module
    return _handlers[function]


@dataclass
class LambdaContext:
    function_name: str = "test-function"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:123456789012:function:test-function"
    aws_request_id: str = "test-invocation"
    remaining_ms: int = 60_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- Redis -------------------------------------------------------------------------------

@dataclass(frozen=True)
class RedisServer:
    port: int

    def client(self) -> Any:
        import redis
        return redis.Redis(host="127.0.0.1", port=self.port, password=REDIS_PASSWORD, socket_timeout=2)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not Path(binary).exists():
        pytest.fail("redis-server is required for the function tests: apt-get install redis-server")
    port = free_port()
    process = subprocess.Popen(
        [binary, "--bind", "127.0.0.1", "--port", str(port), "--requirepass", REDIS_PASSWORD,
         "--save", "", "--appendonly", "no", "--protected-mode", "yes"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server = RedisServer(port)
    try:
        for _ in range(100):  # up to 5 s
            try:
                if server.client().ping():
                    break
            except Exception:
                time.sleep(0.05)
        else:
            pytest.fail(f"redis-server did not answer on 127.0.0.1:{port}")
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()


# --- the model -----------------------------------------------------------------------------

LONG_ANSWER = re.compile(r"\[long (\d+)\]")
NOISE_ANSWER = re.compile(r"\[noise (\d+)\]")


@functools.cache
def noise(characters: int) -> str:
    """Printable ASCII that compresses little (about 6.6 bits a character), the same for the same length."""
    alphabet = string.ascii_letters + string.digits + string.punctuation + " "
    return "".join(random.Random(characters).choices(alphabet, k=characters))


class ModelServer:
    """OpenAI-compatible /v1/chat/completions. The last message steers it: "[timeout]" answers
    too late, "[500]" fails, "[400]" rejects, "[slow]" answers after half the timeout, "[long N]"
    answers N characters of "é" (2 bytes each), "[noise N]" N characters of `noise`,
    "[surrogate]" answers with an unpaired surrogate escape; anything else is answered
    "answer: <content>"."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        model = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                model.calls.append(body)
                prompt = body["messages"][-1]["content"]
                if self.path != "/v1/chat/completions":
                    return self._send(404, {"error": "not found"})
                if self.headers.get("Authorization") != f"Bearer {MODEL_KEY}":
                    return self._send(401, {"error": "bad key"})
                if "[timeout]" in prompt:
                    time.sleep(MODEL_TIMEOUT_SECONDS * 1.5)
                    return self._send(200, {"choices": [{"message": {"content": "too late"}}]})
                if "[500]" in prompt:
                    return self._send(500, {"error": "upstream failed"})
                if "[400]" in prompt:
                    return self._send(400, {"error": "context too long"})
                if "[slow]" in prompt:
                    time.sleep(MODEL_TIMEOUT_SECONDS / 2)
                if long := LONG_ANSWER.search(prompt):
                    return self._send(200, {"choices": [{"message": {"content": "é" * int(long.group(1))}}]})
                if many := NOISE_ANSWER.search(prompt):
                    return self._send(200, {"choices": [{"message": {"content": noise(int(many.group(1)))}}]})
                if "[surrogate]" in prompt:
                    return self._send(200, {"choices": [{"message": {"content": "half \ud800 a pair"}}]})
                self._send(200, {"choices": [{"message": {"role": "assistant", "content": f"answer: {prompt}"}}]})

            def _send(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def call_count(self) -> int:
        return len(self.calls)


@pytest.fixture(scope="session")
def model_server() -> Iterator[ModelServer]:
    server = ModelServer()
    server.thread.start()
    try:
        yield server
    finally:
        server.server.shutdown()
        server.server.server_close()


# --- postToConnection --------------------------------------------------------------------

# API Gateway WebSocket quotas: a message carries at most 128 KB, a frame 32 KB; a larger
# message sent through @connections closes the connection (code 1009).
MESSAGE_QUOTA_BYTES = 128 * 1024
FRAME_QUOTA_BYTES = 32 * 1024


@dataclass
class FakeManagementApi:
    """Records frames per connection; connections in `gone` answer like a closed socket. Holds
    posts to the WebSocket quotas: over 128 KB is refused (PayloadTooLargeException), over
    32 KB closes the connection (recorded in `closed_1009`, later posts answer 410)."""

    frames: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    gone: set[str] = field(default_factory=set)
    closed_1009: set[str] = field(default_factory=set)

    def post_to_connection(self, *, ConnectionId: str, Data: bytes) -> dict[str, Any]:  # noqa: N803 (boto3's names)
        if ConnectionId in self.gone:
            raise ClientError({"Error": {"Code": "GoneException", "Message": ""},
                               "ResponseMetadata": {"HTTPStatusCode": 410}}, "PostToConnection")
        if len(Data) > MESSAGE_QUOTA_BYTES:
            raise ClientError({"Error": {"Code": "PayloadTooLargeException", "Message": "too large"},
                               "ResponseMetadata": {"HTTPStatusCode": 413}}, "PostToConnection")
        if len(Data) > FRAME_QUOTA_BYTES:
            self.closed_1009.add(ConnectionId)
            self.gone.add(ConnectionId)
            return {}
        self.frames[ConnectionId].append(json.loads(Data))
        return {}


# --- AWS (moto) -------------------------------------------------------------------------------

@dataclass
class Platform:
    """The deployed resources one test talks to, and the client-side view of replies."""

    api: FakeManagementApi
    connections: Any
    history: Any
    sqs: Any
    queue_url: str
    queue_arn: str
    dead_letter_url: str
    notifications_url: str
    kms: Any
    model: ModelServer
    redis: RedisServer

    def queued(self, queue_url: str | None = None) -> list[dict[str, Any]]:
        """Receive (and so hide) everything in the request queue (or `queue_url`), as SQS messages."""
        found: list[dict[str, Any]] = []
        for _ in range(10):
            batch = self.sqs.receive_message(QueueUrl=queue_url or self.queue_url, MaxNumberOfMessages=10,
                                             AttributeNames=["All"], MessageAttributeNames=["All"]
                                             ).get("Messages", [])
            if not batch:
                break
            found.extend(batch)
        return found

    def exchanges(self) -> list[dict[str, Any]]:
        """The history table's exchanges (not the workers' claims on request ids)."""
        return [item for item in self.history.scan()["Items"] if not item["userSession"].startswith("claim#")]

    def claims(self) -> list[dict[str, Any]]:
        return [item for item in self.history.scan()["Items"] if item["userSession"].startswith("claim#")]

    def notifications(self) -> list[dict[str, Any]]:
        messages = self.sqs.receive_message(QueueUrl=self.notifications_url, MaxNumberOfMessages=10)
        return [json.loads(json.loads(m["Body"])["Message"]) for m in messages.get("Messages", [])]

    def sqs_event(self, messages: list[dict[str, Any]]) -> dict[str, Any]:
        return {"Records": [{
            "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
            "attributes": m.get("Attributes", {}), "messageAttributes": {}, "md5OfBody": m["MD5OfBody"],
            "eventSource": "aws:sqs", "eventSourceARN": self.queue_arn, "awsRegion": REGION}
            for m in messages]}


@dataclass(frozen=True)
class Account:
    key_arn: str
    redis_secret_arn: str
    model_secret_arn: str


@pytest.fixture(scope="module")
def aws() -> Iterator[Account]:
    """One moto account per test module; its KMS key (moto draws an RSA key per key) and
    secrets are shared, every test gets its own tables, queues and topic."""
    with pytest.MonkeyPatch.context() as patch, mock_aws():
        for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                            "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": REGION}.items():
            patch.setenv(name, value)
        secrets = boto3.client("secretsmanager", region_name=REGION)
        yield Account(
            key_arn=boto3.client("kms", region_name=REGION).create_key()["KeyMetadata"]["Arn"],
            redis_secret_arn=secrets.create_secret(Name="redis-auth", SecretString=REDIS_PASSWORD)["ARN"],
            model_secret_arn=secrets.create_secret(Name="model-key", SecretString=MODEL_KEY)["ARN"])


_tests = iter(range(1_000_000))


@pytest.fixture
def platform(monkeypatch: pytest.MonkeyPatch, aws: Account, redis_server: RedisServer,
             model_server: ModelServer) -> Iterator[Platform]:
    suffix = next(_tests)
    dynamodb = boto3.resource("dynamodb", region_name=REGION)
    # As the data layer declares them: each with its keys-only `user` index on userId.
    user_index = [{"IndexName": "user", "KeySchema": [{"AttributeName": "userId", "KeyType": "HASH"}],
                   "Projection": {"ProjectionType": "KEYS_ONLY"}}]
    connections_table = dynamodb.create_table(
        TableName=f"connections-{suffix}", BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "connectionId", "KeyType": "HASH"}], GlobalSecondaryIndexes=user_index,
        AttributeDefinitions=[{"AttributeName": "connectionId", "AttributeType": "S"},
                              {"AttributeName": "userId", "AttributeType": "S"}])
    history_table = dynamodb.create_table(
        TableName=f"chat-history-{suffix}", BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "userSession", "KeyType": "HASH"},
                   {"AttributeName": "createdAt", "KeyType": "RANGE"}], GlobalSecondaryIndexes=user_index,
        AttributeDefinitions=[{"AttributeName": "userSession", "AttributeType": "S"},
                              {"AttributeName": "createdAt", "AttributeType": "N"},
                              {"AttributeName": "userId", "AttributeType": "S"}])
    sqs = boto3.client("sqs", region_name=REGION)
    queue_url = sqs.create_queue(QueueName=f"requests-{suffix}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    dead_letter_url = sqs.create_queue(QueueName=f"requests-dlq-{suffix}")["QueueUrl"]
    notifications_url = sqs.create_queue(QueueName=f"notifications-{suffix}")["QueueUrl"]
    notifications_arn = sqs.get_queue_attributes(
        QueueUrl=notifications_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns = boto3.client("sns", region_name=REGION)
    topic_arn = sns.create_topic(Name=f"responses-{suffix}")["TopicArn"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=notifications_arn)

    for name, value in {
        "AWS_REGION": REGION, "CONNECTIONS_TABLE": connections_table.name, "HISTORY_TABLE": history_table.name,
        "REQUEST_QUEUE_URL": queue_url, "DEAD_LETTER_QUEUE_URL": dead_letter_url,
        "RESPONSE_TOPIC_ARN": topic_arn, "KMS_KEY_ARN": aws.key_arn,
        "WEBSOCKET_ENDPOINT": WS_ENDPOINT, "ALLOWED_MODELS": ",".join(MODELS),
        "REDIS_HOST": "127.0.0.1", "REDIS_PORT": str(redis_server.port),
        "REDIS_AUTH_SECRET_ARN": aws.redis_secret_arn, "REDIS_TLS": "false",
        "MODEL_ENDPOINT": model_server.endpoint, "MODEL_ALLOW_HTTP": "true",
        "MODEL_API_KEY_SECRET_ARN": aws.model_secret_arn, "MODEL_TIMEOUT_SECONDS": str(MODEL_TIMEOUT_SECONDS),
        "MODEL_MAX_TOKENS": "512",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("CACHE_SCOPE", "CACHE_TTL_SECONDS", "MAX_FRAME_BYTES", "CONNECTION_TTL_SECONDS",
                 "CLAIM_LEASE_SECONDS", "CLAIM_WAIT_SECONDS"):
        monkeypatch.delenv(name, raising=False)

    api = FakeManagementApi()
    monkeypatch.setattr(connections, "management_api", lambda endpoint: api)
    redis_server.client().flushall()
    model_server.calls.clear()
    runtime.reset()  # a new container: configuration is read again
    yield Platform(api=api, connections=connections_table, history=history_table, sqs=sqs,
                   queue_url=queue_url, queue_arn=queue_arn, dead_letter_url=dead_letter_url,
                   notifications_url=notifications_url,
                   kms=boto3.client("kms", region_name=REGION), model=model_server, redis=redis_server)
    runtime.reset()

"""The realtime smoke: one chat request through what the rehearsal deployed (see flow.py).

Steps: wiring read from state; connect; the message is queued on the worker's queue; the worker
answers through the model stand-in and the answer reaches the connection; the exchange is in the
history table encrypted under the environment key; the same message is answered from Redis;
disconnect. After the first failure the remaining steps are reported as not run.
"""

from __future__ import annotations

import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Callable

from modules.rehearsal.smoke.deployment import Deployment, SmokeFailure, SmokeStep
from modules.rehearsal.smoke.flow import CONNECTION, PROMPT, SESSION, USER, Flow, deployed_functions, secret
from modules.rehearsal.smoke.standins import Authority, ManagementApi, ModelServer, RedisTls, StandInError

PREFIX = "realtime: "


def wiring(flow: Flow) -> str:
    """Every function's environment can be given (addresses match the state); the model key is set
    in the secret the realtime stack names for it, as an admin does after the first apply."""
    for function in flow.functions.values():
        flow.process_environment(function)
    flow.aws("secretsmanager").put_secret_value(SecretId=flow.deployment.output("realtime", "model_api_key_secret_arn"),
                                                SecretString=flow.model_key)
    return "mapped to loopback: " + "; ".join(f"{k} {v}" for k, v in sorted(flow.mapped.items()))


def connect(flow: Flow) -> str:
    response = flow.invoke("connect", flow.websocket_event("$connect", "CONNECT"))
    if response.get("statusCode") != 200:
        raise SmokeFailure(f"$connect answered {response}")
    table = flow.functions["connect"].variables["CONNECTIONS_TABLE"]
    item = flow.aws("dynamodb").get_item(TableName=table, Key={"connectionId": {"S": CONNECTION}}).get("Item")
    if not item or item.get("userId", {}).get("S") != USER:
        raise SmokeFailure(f"no connection item for {CONNECTION} of {USER} in {table}")
    return f"200; connection recorded in {table}"


def message(flow: Flow) -> str:
    response = flow.invoke("message", flow.websocket_event("$default", "MESSAGE", flow.frame()))
    errors = [f for f in flow.answers() if f.get("type") == "error"]
    if response.get("statusCode") != 200 or errors:
        raise SmokeFailure(f"$default answered {response}, frames {errors}")
    arn, url = flow.worker_queue()
    waiting = flow.receive(url)
    if len(waiting) != 1:
        raise SmokeFailure(f"expected the request on the worker's queue {arn}, found {len(waiting)} messages")
    flow.pending = (arn, url, waiting)
    return f"200; request queued on {arn.rsplit(':', 1)[-1]} (the queue the worker's event source reads)"


def worker(flow: Flow) -> str:
    arn, url, waiting = flow.pending
    result = flow.invoke("worker", flow.sqs_event(arn, waiting))
    if result.get("batchItemFailures"):
        raise SmokeFailure(f"the worker failed the record: {flow.warnings('worker') or result}")
    for done in waiting:  # what the poller does after a batch without failures
        flow.aws("sqs").delete_message(QueueUrl=url, ReceiptHandle=done["ReceiptHandle"])
    calls = flow.model.calls
    if len(calls) != 1 or calls[0].authorization != f"Bearer {flow.model_key}":
        raise SmokeFailure(f"expected one model call with the key from the model key secret, got "
                           f"{[(c.path, c.authorization[:12] + '...') for c in calls]}")
    answer = "".join(f.get("content", "") for f in flow.answers() if f.get("type") in ("answer", "chunk"))
    if answer != f"answer: {PROMPT}":
        raise SmokeFailure(f"the connection received {answer!r}, not the model's answer")
    return f"model called at {calls[0].path}; the answer reached {CONNECTION} through postToConnection"


def history(flow: Flow) -> str:
    variables = flow.functions["worker"].variables
    table, key_arn = variables["HISTORY_TABLE"], variables["KMS_KEY_ARN"]
    session = f"{USER}#{SESSION}"
    items = flow.aws("dynamodb").query(TableName=table, KeyConditionExpression="userSession = :s",
                                       ExpressionAttributeValues={":s": {"S": session}})["Items"]
    if len(items) != 1:
        raise SmokeFailure(f"expected one exchange of {session} in {table}, found {len(items)}")
    item = items[0]
    readable = [name for name, value in item.items()
                if PROMPT.encode() in (value.get("B") or value.get("S", "").encode())]
    if readable or not {"dataKey", "promptCiphertext", "answerCiphertext"} <= set(item):
        raise SmokeFailure(f"the exchange is not stored encrypted: attributes {sorted(item)}, readable {readable}")
    decrypted = flow.aws("kms").decrypt(CiphertextBlob=item["dataKey"]["B"], EncryptionContext={"userSession": session})
    if decrypted["KeyId"] != key_arn:
        raise SmokeFailure(f"the data key is under {decrypted['KeyId']}, not KMS_KEY_ARN {key_arn}")
    return f"one item in {table}: prompt and answer ciphertext, data key under the environment key"


def cached(flow: Flow) -> str:
    redis = flow.redis.client()
    keys = [k for k in redis.keys("chat:v1:*") if b":user:" not in k]
    if len(keys) != 1 or redis.get(keys[0]) != f"answer: {PROMPT}".encode():
        raise SmokeFailure(f"expected the answer cached in Redis, found keys {keys}")
    before = len(flow.answers())
    flow.invoke("message", flow.websocket_event("$default", "MESSAGE", flow.frame()))
    again = flow.answers()[before:]
    if not again or not all(f.get("cached") for f in again) or flow.receive(flow.pending[1]):
        raise SmokeFailure(f"the repeated message was not answered from the cache: frames {again}")
    return "answer cached over TLS with the AUTH token; the repeated message was answered from Redis"


def disconnect(flow: Flow) -> str:
    response = flow.invoke("disconnect", flow.websocket_event("$disconnect", "DISCONNECT"))
    table = flow.functions["disconnect"].variables["CONNECTIONS_TABLE"]
    left = flow.aws("dynamodb").get_item(TableName=table, Key={"connectionId": {"S": CONNECTION}}).get("Item")
    if response.get("statusCode") != 200 or left:
        raise SmokeFailure(f"$disconnect answered {response}; connection item {'still there' if left else 'gone'}")
    return f"200; connection removed from {table}"


STEPS: tuple[tuple[str, Callable[[Flow], str]], ...] = (
    ("wiring from state", wiring), ("connect", connect), ("message queued", message),
    ("worker answers to the connection", worker), ("history stored encrypted", history),
    ("answer cached in Redis", cached), ("disconnect", disconnect))


def run(deployment: Deployment) -> list[SmokeStep]:
    started = time.monotonic()
    with ExitStack() as stack:
        try:
            functions = deployed_functions(deployment)
            scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="smoke-realtime-")))
            authority = Authority.create(scratch / "tls")
            password = secret(deployment, functions["worker"].region,
                              deployment.output("data", "redis_auth_secret_arn"))
            flow = Flow(deployment, functions, scratch, authority,
                        stack.enter_context(ModelServer(authority)), stack.enter_context(ManagementApi(authority)),
                        stack.enter_context(RedisTls(authority, password, scratch / "redis")))
        except (SmokeFailure, StandInError) as err:
            return [SmokeStep(PREFIX + "stand-ins", False, str(err))]
        return _steps(flow, started)


def _steps(flow: Flow, started: float) -> list[SmokeStep]:
    steps: list[SmokeStep] = []
    for name, check in STEPS:
        if steps and not steps[-1].passed:
            steps.append(SmokeStep(PREFIX + name, False, "not run: an earlier step failed"))
            continue
        try:
            steps.append(SmokeStep(PREFIX + name, True, check(flow)))
        except SmokeFailure as err:
            steps.append(SmokeStep(PREFIX + name, False, str(err)))
        except Exception as err:  # an AWS call of the check itself failed: this step fails, with why
            steps.append(SmokeStep(PREFIX + name, False, f"{type(err).__name__}: {err}"))
    last = steps[-1]
    steps[-1] = SmokeStep(last.name, last.passed, f"{last.detail} ({time.monotonic() - started:.0f} s in all)")
    return steps

"""The rehearsal's realtime smoke (modules/rehearsal/smoke) on a small deployment in moto's server.

The functions' environment variables are dev's synth, their references resolved to resources
made here in moto (what Terraform does on apply); the function code is zipped from lambda/ as
the packaging does. One deliberate wiring mistake each must fail the smoke.
"""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path
from typing import Any

import boto3
import pytest

from modules.rehearsal.smoke import run
from modules.rehearsal.smoke.deployment import Deployment

REGION = "eu-west-2"
ENV = "dev"
LAMBDA = Path(__file__).resolve().parent.parent / "lambda"
API_ID = "smoke0api1"
REDIS_HOST = "master.llmlite-dev-redis.abc123.euw2.cache.amazonaws.com"


def aws(url: str, service: str) -> Any:
    return boto3.client(service, region_name=REGION, endpoint_url=url, aws_access_key_id="test",
                        aws_secret_access_key="test")


def deploy(url: str, suffix: str, connections_key: str = "connectionId") -> dict[str, str]:
    """The resources the realtime functions use, made in moto: reference fragment -> value."""
    ddb, sqs, kms, secrets = aws(url, "dynamodb"), aws(url, "sqs"), aws(url, "kms"), aws(url, "secretsmanager")
    ddb.create_table(TableName=f"connections-{suffix}", BillingMode="PAY_PER_REQUEST",
                     KeySchema=[{"AttributeName": connections_key, "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": connections_key, "AttributeType": "S"}])
    ddb.create_table(TableName=f"history-{suffix}", BillingMode="PAY_PER_REQUEST",
                     KeySchema=[{"AttributeName": "userSession", "KeyType": "HASH"},
                                {"AttributeName": "createdAt", "KeyType": "RANGE"}],
                     AttributeDefinitions=[{"AttributeName": "userSession", "AttributeType": "S"},
                                           {"AttributeName": "createdAt", "AttributeType": "N"}])
    queue = sqs.create_queue(QueueName=f"requests-{suffix}")["QueueUrl"]
    return {
        "connections_table": f"connections-{suffix}", "history_table": f"history-{suffix}",
        "primary_endpoint_address": REDIS_HOST,
        "redis_auth_secret": secrets.create_secret(Name=f"redis-auth-{suffix}", SecretString=f"tok-{suffix}x" * 4)["ARN"],
        "kms_key": kms.create_key()["KeyMetadata"]["Arn"],
        "model_api_key": secrets.create_secret(Name=f"model-key-{suffix}")["ARN"],
        "response_topic": aws(url, "sns").create_topic(Name=f"answers-{suffix}")["TopicArn"],
        "dead_letter_queue": sqs.create_queue(QueueName=f"dead-{suffix}")["QueueUrl"],
        "request_queue": queue,
        "request_queue_arn": sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"],
        "apigatewayv2_api": API_ID,
    }


def resolve(value: str, made: dict[str, str]) -> str:
    def one(match: re.Match[str]) -> str:
        reference = match.group(0)
        found = [v for fragment, v in made.items() if fragment in reference and not fragment.endswith("_arn")]
        assert len(found) == 1, f"no single resource for {reference}"
        return found[0]
    return re.sub(r"\$\{[^}]*\}", one, value)


def package(role: str, directory: Path) -> Path:
    """lambda/<role>/handler.py and chat_common at the top level, as the deployed zips hold them."""
    path = directory / f"{role}.zip"
    with zipfile.ZipFile(path, "w") as zipped:
        zipped.write(LAMBDA / role / "handler.py", "handler.py")
        for source in (LAMBDA / "chat_common").glob("*.py"):
            zipped.write(source, f"chat_common/{source.name}")
    return path


def deployment(url: str, stacks: Any, made: dict[str, str], directory: Path) -> Deployment:
    synth = stacks[f"{ENV}-realtime"].doc["resource"]
    functions = [{"mode": "managed", "type": "aws_lambda_function", "values": {
        "function_name": f["function_name"], "arn": f"arn:aws:lambda:{REGION}:123456789012:function:{f['function_name']}",
        "filename": str(package(f["function_name"].rsplit("-", 1)[-1], directory)),
        "environment": [{"variables": {k: resolve(v, made) for k, v in f["environment"]["variables"].items()}}]}}
        for f in synth["aws_lambda_function"].values() if not f["function_name"].endswith(("authorizer", "eraser"))]
    worker = next(f["values"] for f in functions if f["values"]["function_name"].endswith("-worker"))
    mapping = {"mode": "managed", "type": "aws_lambda_event_source_mapping", "values": {
        "function_name": worker["arn"], "event_source_arn": made["request_queue_arn"]}}
    api = {"mode": "managed", "type": "aws_apigatewayv2_api", "values": {"id": API_ID, "protocol_type": "WEBSOCKET"}}
    redis = {"mode": "managed", "type": "aws_elasticache_replication_group", "values": {
        "primary_endpoint_address": REDIS_HOST, "port": 6379}}
    states = {
        f"{ENV}-realtime": {"values": {"root_module": {"resources": [*functions, mapping, api]}, "outputs": {
            "model_api_key_secret_arn": {"value": made["model_api_key"]}}}},
        f"{ENV}-data": {"values": {"root_module": {"resources": [redis]}, "outputs": {
            "redis_auth_secret_arn": {"value": made["redis_auth_secret"]}}}}}
    return Deployment(ENV, states, {}, url)


def variables(deployed: Deployment, role: str) -> dict[str, str]:
    for resource in deployed.states[f"{ENV}-realtime"]["values"]["root_module"]["resources"]:
        if resource["values"].get("function_name", "").endswith(f"-{role}"):
            return resource["values"]["environment"][0]["variables"]
    raise KeyError(role)


def failed(steps: list[Any]) -> list[tuple[str, str]]:
    return [(s.name, s.detail) for s in steps if not s.passed and not s.detail.startswith("not run")]


def test_a_request_goes_through_the_deployed_functions(moto_url, stacks, tmp_path) -> None:
    steps = run(deployment(moto_url, stacks, deploy(moto_url, "ok"), tmp_path))
    assert failed(steps) == []
    assert [s.name.removeprefix("realtime: ") for s in steps] == [
        "wiring from state", "connect", "message queued", "worker answers to the connection",
        "history stored encrypted", "answer cached in Redis", "disconnect"]
    wiring = steps[0].detail
    for variable in ("REDIS_HOST", "REDIS_PORT", "WEBSOCKET_ENDPOINT", "MODEL_ENDPOINT"):
        assert variable in wiring  # each mapped address listed


def test_a_misspelt_variable_fails_the_step_that_needs_it(moto_url, stacks, tmp_path) -> None:
    deployed = deployment(moto_url, stacks, deploy(moto_url, "name"), tmp_path)
    connect = variables(deployed, "connect")
    connect["CONNECTION_TABLE"] = connect.pop("CONNECTIONS_TABLE")
    assert failed(run(deployed)) == [
        ("realtime: connect", "connect failed: ConfigError: environment variable CONNECTIONS_TABLE is required")]


def test_a_table_with_another_key_fails_the_connect(moto_url, stacks, tmp_path) -> None:
    steps = run(deployment(moto_url, stacks, deploy(moto_url, "key", connections_key="id"), tmp_path))
    [(name, detail)] = failed(steps)
    assert name == "realtime: connect" and "ValidationException" in detail


def test_the_worker_reading_another_secret_fails(moto_url, stacks, tmp_path) -> None:
    made = deploy(moto_url, "secret")
    deployed = deployment(moto_url, stacks, made, tmp_path)
    variables(deployed, "worker")["MODEL_API_KEY_SECRET_ARN"] = made["redis_auth_secret"]
    [(name, detail)] = failed(run(deployed))
    assert name == "realtime: worker answers to the connection" and "401" in detail


def test_a_redis_host_that_is_not_the_deployed_one_is_not_mapped(moto_url, stacks, tmp_path) -> None:
    deployed = deployment(moto_url, stacks, deploy(moto_url, "host"), tmp_path)
    variables(deployed, "worker")["REDIS_HOST"] = "replica.llmlite-dev-redis.abc123.euw2.cache.amazonaws.com"
    [(name, detail)] = failed(run(deployed))
    assert name == "realtime: wiring from state" and "REDIS_HOST" in detail


def test_a_failed_smoke_step_fails_the_environment_and_its_junit_report(tmp_path) -> None:
    import xml.etree.ElementTree as ET

    from modules.rehearsal.report import EnvironmentResult, StackResult, smoke_step, write_junit
    from modules.rehearsal.smoke.deployment import SmokeStep

    steps = [smoke_step(s) for s in (SmokeStep("realtime: connect", True, "200"),
                                     SmokeStep("realtime: message queued", False, "no message"))]
    result = EnvironmentResult(ENV, [StackResult(f"{ENV}-realtime")], smoke=steps)
    assert not result.ok and EnvironmentResult(ENV, [StackResult(f"{ENV}-realtime")], smoke=steps[:1]).ok
    write_junit([result], tmp_path / "junit.xml")
    cases = {c.get("name"): c for c in ET.parse(tmp_path / "junit.xml").iter("testcase")}
    assert cases["realtime: connect"].find("failure") is None
    assert cases["realtime: message queued"].find("failure").get("message") == "no message"


def test_the_smoke_runs_only_where_there_is_a_realtime_stack() -> None:
    assert run(Deployment(ENV, {f"{ENV}-data": {}}, {}, "http://127.0.0.1:9")) == []  # nor the gateway
    [step] = run(Deployment(ENV, {f"{ENV}-realtime": {}}, {}, "http://127.0.0.1:9"))
    assert not step.passed and "no function for: connect, message, worker, disconnect" in step.detail

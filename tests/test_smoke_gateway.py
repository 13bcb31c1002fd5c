"""The rehearsal's gateway smoke (modules/rehearsal/smoke/gateway.py) on dev's synthesized proxy task.

The task definition's references are resolved to secrets made here in moto's server (what
Terraform does on apply). Reading the secrets as ECS does is fast; starting the real LiteLLM
proxy needs its own virtual environment from PyPI (minutes the first time), so those tests run
with the pipeline's rehearsal (pytest --pipeline-rehearsal -m pipeline_rehearsal).
"""

from __future__ import annotations

import json
import re
from typing import Any

import boto3
import pytest

from modules.rehearsal.smoke import gateway, prisma
from modules.rehearsal.smoke.deployment import Deployment
from modules.rehearsal.smoke.standins import Authority

REGION = "eu-west-2"
ENV = "dev"
REDIS_HOST = "master.llmlite-dev-redis.abc123.euw2.cache.amazonaws.com"
MODEL_ENDPOINT = "https://llm.dev.internal.example.com/v1"
DB_HOST = "llmlite-dev-postgres.abc123.eu-west-2.rds.amazonaws.com"


def secrets(url: str, suffix: str) -> dict[str, str]:
    """The secrets the proxy task reads, made in moto: reference fragment -> ARN."""
    client = boto3.client("secretsmanager", region_name=REGION, endpoint_url=url, aws_access_key_id="test",
                          aws_secret_access_key="test")

    def made(name: str, value: str) -> str:
        return str(client.create_secret(Name=f"{name}-{suffix}", SecretString=value)["ARN"])
    return {"db_credentials_arn": made("db", json.dumps({"username": "litellm_admin", "password": "p#ss/w?rd%1"})),
            "master_key_secret": made("master", "sk-master-smoke-0123456789"),
            "salt_key_secret": made("salt", "salt-smoke-0123456789"),
            "redis_auth_secret": made("redis", "redis-token-smoke-0123456789"),
            "llm_api_key_secret": made("vllm", "vllm-key-smoke-0123456789")}


def deployment(url: str, stacks: Any, made: dict[str, str], edit: Any = None) -> Deployment:
    tasks = stacks[f"{ENV}-gateway"].resources("aws_ecs_task_definition")
    resolved = {"primary_endpoint_address": REDIS_HOST, "aws_db_instance": DB_HOST, **made}

    def one(match: re.Match[str]) -> str:
        found = [v for fragment, v in resolved.items() if fragment in match.group(0)]
        return found[0] if len(found) == 1 else f"unresolved-{len(found)}"

    states = []
    for task in tasks.values():
        container = json.loads(re.sub(r"\$\{[^}]*\}", one, task["container_definitions"]))
        if edit is not None and not task["family"].endswith(gateway.MIGRATION_SUFFIX):
            edit(container[0])
        states.append({"mode": "managed", "type": "aws_ecs_task_definition", "values": {
            "family": task["family"], "container_definitions": json.dumps(container)}})
    redis = {"mode": "managed", "type": "aws_elasticache_replication_group",
             "values": {"primary_endpoint_address": REDIS_HOST, "port": 6379}}
    database = {"mode": "managed", "type": "aws_db_instance", "values": {
        "address": DB_HOST, "port": 5432, "db_name": "litellm",
        "master_user_secret": [{"secret_arn": made["db_credentials_arn"]}]}}
    return Deployment(ENV, {
        f"{ENV}-gateway": {"values": {"root_module": {"resources": states}}},
        f"{ENV}-data": {"values": {"root_module": {"resources": [redis, database]}}},
        f"{ENV}-llm": {"values": {"outputs": {"model_endpoint_url": {"value": MODEL_ENDPOINT}}}}}, {}, url)


def test_a_secret_read_with_a_json_key_it_does_not_have_fails(moto_url, stacks, tmp_path) -> None:
    def misspelt(container: dict[str, Any]) -> None:
        for secret in container["secrets"]:
            secret["valueFrom"] = secret["valueFrom"].replace(":password::", ":pasword::")

    [step] = gateway.run(deployment(moto_url, stacks, secrets(moto_url, "jsonkey"), misspelt), venvs=tmp_path)
    assert not step.passed and step.name == "gateway: task definition and secrets from state"
    assert "DB_PASSWORD" in step.detail and "no JSON key 'pasword'" in step.detail
    assert "['password', 'username']" in step.detail and "p#ss" not in step.detail  # names keys, never values


def test_secrets_are_read_as_ecs_reads_them(moto_url) -> None:
    client = boto3.client("secretsmanager", region_name=REGION, endpoint_url=moto_url, aws_access_key_id="test",
                          aws_secret_access_key="test")
    arn = client.create_secret(Name="ecs-syntax", SecretString=json.dumps({"username": "u", "password": "p"}))["ARN"]
    assert gateway.secret_value(client, "X", arn) == json.dumps({"username": "u", "password": "p"})
    assert gateway.secret_value(client, "X", f"{arn}:password::") == "p"
    assert gateway.secret_value(client, "X", f"{arn}:username:AWSCURRENT:") == "u"


def test_the_proxy_version_comes_from_the_image_and_must_have_its_requirements(stacks, tmp_path) -> None:
    task = gateway.Task(image="123.dkr.ecr.eu-west-2.amazonaws.com/ghcr/berriai/litellm:v1.999.0", environment={},
                        secrets={}, command=[])
    with pytest.raises(gateway.SmokeFailure, match="LiteLLM 1.999.0 has no spelled-out requirements"):
        gateway.venv(task.litellm_version, tmp_path)
    images = {json.loads(t["container_definitions"])[0]["image"]
              for t in stacks[f"{ENV}-gateway"].resources("aws_ecs_task_definition").values()}
    assert {gateway.Task(i, {}, {}, []).litellm_version for i in images} <= set(gateway.PROXY_REQUIREMENTS)


@pytest.mark.pipeline_rehearsal
def test_the_real_proxy_answers_with_the_tasks_config(moto_url, stacks) -> None:
    steps = gateway.run(deployment(moto_url, stacks, secrets(moto_url, "ok")))
    assert [(s.name, s.passed) for s in steps if not s.passed] == [], "\n".join(s.line() for s in steps)
    [migrated] = [s for s in steps if s.name.endswith("(prisma migrate deploy)")]
    assert re.match(r"\d{3} migrations applied by the task's `prisma migrate deploy`", migrated.detail)
    details = {s.name.removeprefix(gateway.PREFIX): s.detail for s in steps}
    assert details["virtual key with a budget (POST /key/generate)"].startswith(
        "rehearsal-smoke: max_budget 1e-06 for deepseek-r1-7b, its row in LiteLLM_VerificationToken")
    assert re.match(r"8\.74e-06 in the key's row after \d+ s", details["spend recorded for the key"])
    assert "Budget has been exceeded! Key=rehearsal-smoke" in details["budget refusal once the key's budget is spent"]
    print("\n".join(s.line() for s in steps))


@pytest.mark.pipeline_rehearsal
def test_a_self_hosted_route_without_its_price_fails_the_spend_step(moto_url, stacks) -> None:
    def unpriced(container: dict[str, Any]) -> None:
        for variable in container["environment"]:
            if variable["name"] == "LITELLM_CONFIG_YAML":
                config = json.loads(variable["value"])
                for route in config["model_list"]:
                    for price in ("input_cost_per_token", "output_cost_per_token"):
                        route["litellm_params"].pop(price, None)
                variable["value"] = json.dumps(config)

    steps = gateway.run(deployment(moto_url, stacks, secrets(moto_url, "unpriced"), unpriced))
    failed = [s for s in steps if not s.passed and not s.detail.startswith("not run")]
    assert [s.name for s in failed] == ["gateway: spend recorded for the key"], "\n".join(s.line() for s in steps)
    assert "not over its budget 1e-06" in failed[0].detail


@pytest.mark.pipeline_rehearsal
def test_a_database_name_the_instance_does_not_have_fails_the_database_steps(moto_url, stacks) -> None:
    def renamed(container: dict[str, Any]) -> None:
        for variable in container["environment"]:
            if variable["name"] == "DB_NAME":
                variable["value"] = "litellm_typo"

    steps = gateway.run(deployment(moto_url, stacks, secrets(moto_url, "dbname"), renamed))
    failed = [s for s in steps if not s.passed and not s.detail.startswith("not run")]
    assert [s.name for s in failed] == ["gateway: the task's DATABASE_URL logs in to PostgreSQL over TLS"]
    assert 'database "litellm_typo" does not exist' in failed[0].detail and "p#ss" not in failed[0].detail


@pytest.mark.pipeline_rehearsal
def test_a_config_field_the_proxy_rejects_fails_its_start(moto_url, stacks) -> None:
    def rejected(container: dict[str, Any]) -> None:
        for variable in container["environment"]:
            if variable["name"] == "LITELLM_CONFIG_YAML":
                config = json.loads(variable["value"])
                config["router_settings"]["health_check_interval"] = 60  # a general_settings field
                variable["value"] = json.dumps(config)

    steps = gateway.run(deployment(moto_url, stacks, secrets(moto_url, "rejected"), rejected))
    failed = [s for s in steps if not s.passed and not s.detail.startswith("not run")]
    assert [s.name for s in failed] == ["gateway: proxy starts with the task's config and environment"]
    assert "health_check_interval" in failed[0].detail


def task_environment(made: Deployment, postgres_port: int) -> tuple[gateway.Task, dict[str, str]]:
    """The proxy task's environment and secrets as ECS gives them, the database endpoint on loopback."""
    task, client = gateway.proxy_task(made), made.client("secretsmanager", REGION)
    environment = {**task.environment, **{n: gateway.secret_value(client, n, v) for n, v in task.secrets.items()}}
    assert environment["DB_ENDPOINT"] == f"{DB_HOST}:5432"
    return task, {**environment, "DB_ENDPOINT": f"127.0.0.1:{postgres_port}", "PATH": "/usr/bin:/bin"}


def test_the_tasks_own_script_builds_a_database_url_that_logs_in_over_tls(moto_url, stacks, tmp_path) -> None:
    made = deployment(moto_url, stacks, secrets(moto_url, "dburl"))
    client = made.client("secretsmanager", REGION)
    with gateway.database(made, client, Authority.create(tmp_path)) as postgres:
        task, environment = task_environment(made, postgres.port)
        url = gateway.database_url(task, environment)
        assert url.startswith("postgresql://litellm_admin:p%23ss%2Fw%3Frd%251@127.0.0.1:")
        assert url.endswith("/litellm?sslmode=require")
        assert postgres.session(url) == ("litellm_admin|litellm|t", "")
        # The server takes passwords over TLS only: the same URL without it is refused.
        found, error = postgres.session(url.replace("sslmode=require", "sslmode=disable"))
        assert found == "" and "no pg_hba.conf entry" in error


def test_a_database_secret_key_wired_to_the_wrong_variable_fails_the_login(moto_url, stacks, tmp_path) -> None:
    def swapped(container: dict[str, Any]) -> None:
        for secret in container["secrets"]:
            if secret["name"] == "DB_USERNAME":
                secret["valueFrom"] = secret["valueFrom"].replace(":username::", ":password::")

    made = deployment(moto_url, stacks, secrets(moto_url, "dbswap"), swapped)
    with gateway.database(made, made.client("secretsmanager", REGION), Authority.create(tmp_path)) as postgres:
        task, environment = task_environment(made, postgres.port)
        found, error = postgres.session(gateway.database_url(task, environment))
    assert found == "" and "password authentication failed" in error


def test_a_task_command_that_does_not_export_the_database_url_fails(moto_url, stacks) -> None:
    made = deployment(moto_url, stacks, secrets(moto_url, "noexport"))
    task, environment = task_environment(made, 5432)
    edited = gateway.Task(task.image, task.environment, task.secrets,
                          [*task.command[:-1], task.command[-1].replace("export DATABASE_URL", "true")])
    with pytest.raises(gateway.SmokeFailure, match="does not export DATABASE_URL"):
        gateway.database_url(edited, environment)


def test_the_engine_stand_ins_are_chosen_only_where_the_real_engines_cannot_be_downloaded(tmp_path) -> None:
    real, said = prisma.environment(tmp_path, real=True)
    offline, stood_in = prisma.environment(tmp_path, real=False)
    assert real == {"PRISMA_BINARY_CACHE_DIR": str(tmp_path)} and "binaries.prisma.sh" in said
    assert offline["PRISMA_SCHEMA_ENGINE_BINARY"] == str(tmp_path / "bin" / "schema-engine")
    assert offline["PRISMA_QUERY_ENGINE_BINARY"] == str(tmp_path / "bin" / "query-engine")
    assert stood_in.startswith("stand-in engines (binaries.prisma.sh unreachable")
    # The CLI the lock pins is the one prisma-client-py runs, at the engine commit it expects.
    lock = json.loads((prisma.SOURCE / "package-lock.json").read_text())["packages"]
    assert lock["node_modules/prisma"]["version"] == "5.17.0"
    assert lock["node_modules/@prisma/query-engine-wasm"]["version"].endswith(prisma.ENGINE_COMMIT)


def test_the_tasks_script_writes_its_config_where_no_other_environment_does(tmp_path) -> None:
    from modules.layers.gateway import CONFIG_PATH, MIGRATE_SCRIPT
    from modules.rehearsal.smoke.gateway import own_config_path

    command = own_config_path(["/bin/sh", "-c", MIGRATE_SCRIPT], tmp_path)
    assert command[:2] == ["/bin/sh", "-c"] and CONFIG_PATH not in command[2]
    assert f"> {tmp_path}/litellm-config-task.yaml" in command[2] and f"--config {tmp_path}/" in command[2]

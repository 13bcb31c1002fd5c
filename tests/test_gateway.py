"""GW-1…GW-5: the LiteLLM service, its task, secrets, roles and scaling."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from conftest import ENVIRONMENTS, Stack
from modules.app import build_app
from modules.config import ModelRoute, load_environment
from modules.context import Account
from modules.gateway import _registry_statements, bedrock_model_arns

SECRET_LOOKING = ("KEY", "PASSWORD", "SECRET", "TOKEN", "DATABASE_URL")


@pytest.fixture(params=ENVIRONMENTS)
def gateway(request, stacks) -> Stack:
    return stacks[f"{request.param}-gateway"]


def container(stack: Stack) -> dict:
    (definition,) = json.loads(stack.one("aws_ecs_task_definition")["container_definitions"])
    return definition


def environment(stack: Stack) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container(stack)["environment"]}


def role_policy(stack: Stack, role_name_suffix: str) -> list[dict]:
    roles = {lid: r for lid, r in stack.resources("aws_iam_role").items() if r["name"].endswith(role_name_suffix)}
    (role_id,) = roles
    policies = [p for p in stack.resources("aws_iam_role_policy").values()
                if p["role"] == stack.ref("aws_iam_role", role_id)]
    return json.loads(policies[0]["policy"])["Statement"]


def test_secrets_come_only_from_secrets_manager(gateway: Stack) -> None:
    definition = container(gateway)
    secrets = {s["name"]: s["valueFrom"] for s in definition["secrets"]}
    assert set(secrets) == {"LITELLM_MASTER_KEY", "LITELLM_SALT_KEY", "DATABASE_USERNAME", "DATABASE_PASSWORD",
                            "REDIS_PASSWORD"}
    assert all(v.startswith("${") for v in secrets.values())
    # username and password are JSON keys of the RDS-managed secret
    assert secrets["DATABASE_PASSWORD"].endswith(":password::")
    assert secrets["DATABASE_USERNAME"].endswith(":username::")
    assert secrets["DATABASE_PASSWORD"].removesuffix(":password::") == secrets["DATABASE_USERNAME"].removesuffix(
        ":username::")
    plaintext = environment(gateway)
    assert not [n for n in plaintext if any(word in n for word in SECRET_LOOKING)]
    assert "DATABASE_URL" not in plaintext


def test_plain_environment_matches_the_design(stacks) -> None:
    env = environment(stacks["prod-gateway"])
    assert env["AWS_REGION"] == "eu-west-2" and env["LITELLM_LOG"] == "INFO" and env["STORE_MODEL_IN_DB"] == "True"
    assert env["REDIS_SSL"] == "True" and env["REDIS_PORT"] == "6379"
    assert "data_redis" in env["REDIS_HOST"] and "data_postgres" in env["DATABASE_HOST"]


def test_model_list_and_shared_redis_are_rendered_from_environment_data(gateway: Stack) -> None:
    name = gateway.name.removesuffix("-gateway")
    config = json.loads(environment(gateway)["LITELLM_CONFIG_YAML"])
    routes = {m["model_name"]: m["litellm_params"] for m in config["model_list"]}
    expected = load_environment(name).gateway.models
    assert set(routes) == {m.name for m in expected}
    for route in expected:
        assert routes[route.name]["model"] == f"bedrock/{route.bedrock_model_id}"
        assert routes[route.name]["aws_region_name"] == load_environment(name).region
    assert config["router_settings"]["redis_host"] == "os.environ/REDIS_HOST"
    assert config["litellm_settings"]["cache_params"]["type"] == "redis"
    assert config["general_settings"]["master_key"] == "os.environ/LITELLM_MASTER_KEY"
    assert container(gateway)["command"][0].endswith("exec litellm --config /tmp/litellm-config.yaml --port 4000")


def test_self_hosted_upstream_route(tmp_path: Path) -> None:
    env = load_environment("dev")
    routes = [*env.gateway.models, ModelRoute(name="deepseek", upstream_url="https://llm.internal.example/v1")]
    env = env.model_copy(update={"gateway": env.gateway.model_copy(update={"models": routes})})
    build_app([env], outdir=str(tmp_path)).synth()
    stack = Stack("dev-gateway", json.loads((tmp_path / "stacks" / "dev-gateway" / "cdk.tf.json").read_text()))
    config = json.loads(environment(stack)["LITELLM_CONFIG_YAML"])
    deepseek = next(m for m in config["model_list"] if m["model_name"] == "deepseek")["litellm_params"]
    assert deepseek == {"model": "openai/deepseek", "api_base": "https://llm.internal.example/v1", "api_key": "none"}


def test_task_role_invokes_exactly_the_configured_models(stacks) -> None:
    statements = {s["Sid"]: s for s in role_policy(stacks["prod-gateway"], "-proxy-task")}
    assert statements["InvokeModels"]["Action"] == ["bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"]
    resources = [re.sub(r"\$\{data\.aws_partition\.[^}]+\}", "aws", r) for r in statements["InvokeModels"]["Resource"]]
    assert resources == ["arn:aws:bedrock:eu-west-2::foundation-model/anthropic.claude-3-5-sonnet-20241022-v2:0",
                         "arn:aws:bedrock:eu-west-2::foundation-model/anthropic.claude-3-opus-20240229-v1:0"]
    assert statements["AuditLogs"]["Action"] == ["s3:PutObject"]
    assert statements["AuditLogs"]["Resource"][0].endswith("/litellm/*")
    assert statements["EncryptAuditLogs"]["Condition"] == {
        "StringEquals": {"kms:ViaService": "s3.eu-west-2.amazonaws.com"}}
    assert set(statements) == {"InvokeModels", "AuditLogs", "EncryptAuditLogs"}


def test_cross_region_inference_profiles_get_profile_and_base_model_arns() -> None:
    account = Account(id="111122223333", partition="aws", region="eu-west-2")
    assert bedrock_model_arns(account, "eu.anthropic.claude-3-5-sonnet-20240620-v1:0") == [
        "arn:aws:bedrock:eu-west-2:111122223333:inference-profile/eu.anthropic.claude-3-5-sonnet-20240620-v1:0",
        "arn:aws:bedrock:*::foundation-model/anthropic.claude-3-5-sonnet-20240620-v1:0"]


def test_execution_role_reads_only_its_own_secrets(gateway: Stack) -> None:
    statements = {s["Sid"]: s for s in role_policy(gateway, "-proxy-execution")}
    assert set(statements) == {"Logs", "OwnSecrets", "DecryptSecrets"}  # ghcr.io image: no ECR rights
    secret_arns = statements["OwnSecrets"]["Resource"]
    assert len(secret_arns) == 4 and all(a.startswith("${") for a in secret_arns)
    valued = {s["valueFrom"].split(":password::")[0].split(":username::")[0]
              for s in container(gateway)["secrets"]}
    assert valued == set(secret_arns)


def test_ecr_images_get_pull_rights_on_their_repository_only() -> None:
    statements = _registry_statements("111122223333.dkr.ecr.eu-west-2.amazonaws.com/litellm:v1.55.8", "aws")
    assert statements[1]["Resource"] == ["arn:aws:ecr:eu-west-2:111122223333:repository/litellm"]
    assert _registry_statements("ghcr.io/berriai/litellm:v1.55.8-stable", "aws") == []


def test_service_deployment_and_placement(gateway: Stack) -> None:
    service = gateway.one("aws_ecs_service")
    assert (service["deployment_maximum_percent"], service["deployment_minimum_healthy_percent"]) == (200, 100)
    assert service["deployment_circuit_breaker"] == {"enable": True, "rollback": True}
    assert service["health_check_grace_period_seconds"] == 60
    network = service["network_configuration"]
    assert network["assign_public_ip"] is False and all("private_subnet" in s for s in network["subnets"])
    assert "network_gateway_security_group" in network["security_groups"][0]
    (lb,) = service["load_balancer"]
    assert "edge_gateway_target_group" in lb["target_group_arn"] and lb["container_port"] == 4000
    assert service["lifecycle"]["ignore_changes"] == ["desired_count"]


def test_prod_runs_1_vcpu_2_gb_on_demand_and_dev_runs_small_on_spot(stacks) -> None:
    prod = stacks["prod-gateway"]
    task = prod.one("aws_ecs_task_definition")
    assert (task["cpu"], task["memory"], task["network_mode"]) == ("1024", "2048", "awsvpc")
    assert task["requires_compatibilities"] == ["FARGATE"]
    assert prod.one("aws_ecs_service")["capacity_provider_strategy"][0]["capacity_provider"] == "FARGATE"
    dev = stacks["dev-gateway"]
    assert (dev.one("aws_ecs_task_definition")["cpu"], dev.one("aws_ecs_task_definition")["memory"]) == ("512", "1024")
    assert dev.one("aws_ecs_service")["capacity_provider_strategy"][0]["capacity_provider"] == "FARGATE_SPOT"


def test_image_is_pinned_and_healthchecked(gateway: Stack) -> None:
    definition = container(gateway)
    assert definition["image"] == "ghcr.io/berriai/litellm:v1.55.8-stable"
    assert definition["portMappings"] == [{"containerPort": 4000, "protocol": "tcp"}]
    assert "/health/liveliness" in definition["healthCheck"]["command"][1]
    assert definition["logConfiguration"]["options"]["awslogs-group"].startswith("${aws_cloudwatch_log_group.")


def test_logs_and_cluster(gateway: Stack) -> None:
    env = gateway.name.removesuffix("-gateway")
    groups = {g["name"]: g for g in gateway.resources("aws_cloudwatch_log_group").values()}
    assert f"/ecs/llmlite-{env}-proxy" in groups
    assert all("foundation_key" in g["kms_key_id"] and g["retention_in_days"] == 365 for g in groups.values())
    cluster = gateway.one("aws_ecs_cluster")
    assert cluster["setting"] == [{"name": "containerInsights", "value": "enabled"}]


@pytest.mark.parametrize("env,low,high", [("prod", 2, 5), ("dev", 1, 2), ("prod-us", 2, 6)])
def test_autoscaling_on_cpu_and_memory(stacks, env: str, low: int, high: int) -> None:
    stack = stacks[f"{env}-gateway"]
    target = stack.one("aws_appautoscaling_target")
    assert (target["min_capacity"], target["max_capacity"]) == (low, high)
    policies = {p["target_tracking_scaling_policy_configuration"]["predefined_metric_specification"][
        "predefined_metric_type"]: p["target_tracking_scaling_policy_configuration"]
        for p in stack.resources("aws_appautoscaling_policy").values()}
    assert policies["ECSServiceAverageCPUUtilization"]["target_value"] == 70
    assert policies["ECSServiceAverageMemoryUtilization"]["target_value"] == 75
    for policy in policies.values():
        assert (policy["scale_out_cooldown"], policy["scale_in_cooldown"]) == (60, 300)

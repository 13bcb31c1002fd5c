"""GW-1…GW-5: the LiteLLM service, its task, secrets, roles and scaling."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from conftest import ENVIRONMENTS, Stack
from modules.engine.app import build_app
from modules.config import ModelRoute, load_environment
from modules.parts.context import Account
from modules.config.settings import Identity, settings_for
from modules.layers.gateway import bedrock_statements, litellm_config, without_gpu_tier
from modules.parts.iam import registry_pull_statements

SECRET_LOOKING = ("KEY", "PASSWORD", "SECRET", "TOKEN", "DATABASE_URL")


@pytest.fixture(params=ENVIRONMENTS)
def gateway(request, stacks) -> Stack:
    return stacks[f"{request.param}-gateway"]


def serving_task(stack: Stack) -> dict:
    """The serving task definition (the other one is the one-off migration task)."""
    (task,) = [t for t in stack.resources("aws_ecs_task_definition").values() if not t["family"].endswith("-migrate")]
    return task


def container(stack: Stack) -> dict:
    (definition,) = json.loads(serving_task(stack)["container_definitions"])
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
    assert set(secrets) == {"LITELLM_MASTER_KEY", "LITELLM_SALT_KEY", "DB_USERNAME", "DB_PASSWORD", "REDIS_PASSWORD",
                            "VLLM_API_KEY"}  # every environment routes a model to its GPU tier
    assert all(v.startswith("${") for v in secrets.values())
    # username and password are JSON keys of the RDS-managed secret
    assert secrets["DB_PASSWORD"].endswith(":password::")
    assert secrets["DB_USERNAME"].endswith(":username::")
    assert secrets["DB_PASSWORD"].removesuffix(":password::") == secrets["DB_USERNAME"].removesuffix(":username::")
    plaintext = environment(gateway)
    assert not [n for n in plaintext if any(word in n for word in SECRET_LOOKING)]
    assert "DATABASE_URL" not in plaintext


def test_plain_environment_matches_the_design(stacks) -> None:
    env = environment(stacks["prod-gateway"])
    assert env["AWS_REGION"] == "eu-west-2" and env["LITELLM_LOG"] == "INFO" and env["STORE_MODEL_IN_DB"] == "True"
    assert env["REDIS_SSL"] == "True" and env["REDIS_PORT"] == "6379"
    assert "data_redis" in env["REDIS_HOST"] and "data_postgres" in env["DB_ENDPOINT"]


def test_model_list_and_shared_redis_are_rendered_from_environment_data(gateway: Stack) -> None:
    name = gateway.name.removesuffix("-gateway")
    config = json.loads(environment(gateway)["LITELLM_CONFIG_YAML"])
    routes = {m["model_name"]: m["litellm_params"] for m in config["model_list"]}
    expected = load_environment(name).gateway.models
    assert set(routes) == {m.name for m in expected}
    llm = load_environment(name).llm
    for route in expected:
        if route.self_hosted:  # the GPU tier, by its private name, TLS verified, with vLLM's API key
            assert {k: routes[route.name][k] for k in ("model", "api_base", "api_key")} == {
                "model": f"hosted_vllm/{llm.served_model_name}", "api_base": f"https://{llm.dns_name}/v1",
                "api_key": "os.environ/VLLM_API_KEY"}
        else:
            assert routes[route.name]["model"] == f"bedrock/{route.bedrock_model_id}"
            assert routes[route.name]["aws_region_name"] == load_environment(name).region
    assert config["router_settings"]["redis_host"] == "os.environ/REDIS_HOST"
    assert config["litellm_settings"]["cache_params"]["type"] == "redis"
    assert config["general_settings"]["master_key"] == "os.environ/LITELLM_MASTER_KEY"
    assert container(gateway)["command"][0].endswith("exec litellm --config /tmp/litellm-config.yaml --port 4000\n")


def test_self_hosted_upstream_route(tmp_path: Path) -> None:
    env = load_environment("dev")
    routes = [*env.gateway.models, ModelRoute(name="deepseek", upstream_url="https://llm.internal.example/v1")]
    env = env.model_copy(update={"gateway": env.gateway.model_copy(update={"models": routes})})
    build_app([env], outdir=str(tmp_path)).synth()
    stack = Stack("dev-gateway", json.loads((tmp_path / "stacks" / "dev-gateway" / "cdk.tf.json").read_text()))
    config = json.loads(environment(stack)["LITELLM_CONFIG_YAML"])
    deepseek = next(m for m in config["model_list"] if m["model_name"] == "deepseek")["litellm_params"]
    assert deepseek == {"model": "openai/deepseek", "api_base": "https://llm.internal.example/v1", "api_key": "none",
                        "timeout": 240, "stream_timeout": 240}


def test_task_role_invokes_exactly_the_configured_models(stacks) -> None:
    statements = {s["Sid"]: s for s in role_policy(stacks["prod-gateway"], "-proxy-task")}
    actions = ["bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"]
    profiles = [re.sub(r"\$\{data\.aws_[a-z_]+\.[^}]+\}", "X", r)
                for r in statements["InvokeInferenceProfiles"]["Resource"]]
    assert profiles == ["arn:X:bedrock:eu-west-2:X:inference-profile/eu.anthropic.claude-haiku-4-5-20251001-v1:0",
                        "arn:X:bedrock:eu-west-2:X:inference-profile/eu.anthropic.claude-sonnet-4-5-20250929-v1:0"]
    base = statements["InvokeProfileBaseModels"]
    assert [r.split(":", 2)[2] for r in base["Resource"]] == [
        "bedrock:*::foundation-model/anthropic.claude-haiku-4-5-20251001-v1:0",
        "bedrock:*::foundation-model/anthropic.claude-sonnet-4-5-20250929-v1:0"]
    # the base models only through the profiles, never directly
    assert base["Condition"] == {"ArnLike": {"bedrock:InferenceProfileArn": statements[
        "InvokeInferenceProfiles"]["Resource"]}}
    assert statements["InvokeInferenceProfiles"]["Action"] == base["Action"] == actions
    assert statements["AuditLogs"]["Action"] == ["s3:PutObject"]
    assert statements["AuditLogs"]["Resource"][0].endswith("/litellm/*")
    assert statements["EncryptAuditLogs"]["Condition"] == {
        "StringEquals": {"kms:ViaService": "s3.eu-west-2.amazonaws.com"}}
    assert set(statements) == {"InvokeInferenceProfiles", "InvokeProfileBaseModels", "AuditLogs", "EncryptAuditLogs"}


def test_in_region_models_are_granted_directly_and_profiles_by_geography() -> None:
    account = Account(id="111122223333", partition="aws", region="us-west-2")
    direct, profile, base = bedrock_statements(
        account, ["amazon.nova-pro-v1:0", "us.anthropic.claude-haiku-4-5-20251001-v1:0"])
    assert direct["Resource"] == ["arn:aws:bedrock:us-west-2::foundation-model/amazon.nova-pro-v1:0"]
    assert profile["Resource"] == [
        "arn:aws:bedrock:us-west-2:111122223333:inference-profile/us.anthropic.claude-haiku-4-5-20251001-v1:0"]
    assert base["Resource"] == ["arn:aws:bedrock:*::foundation-model/anthropic.claude-haiku-4-5-20251001-v1:0"]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_routes_are_the_configured_models_through_the_regions_geography(stacks, env: str) -> None:
    config = json.loads(environment(stacks[f"{env}-gateway"])["LITELLM_CONFIG_YAML"])
    models = {m["model_name"]: m["litellm_params"]["model"] for m in config["model_list"]}
    settings = load_environment(env)
    geography = settings.region.split("-")[0]  # eu-west-1 -> eu: the cross-region profile's prefix
    expected = {}
    for route in settings.gateway.models:
        if route.bedrock_model_id:
            assert route.bedrock_model_id.split(".")[0] in (geography, "amazon", "anthropic", "meta"), route
            expected[route.name] = f"bedrock/{route.bedrock_model_id}"
        elif route.self_hosted:
            expected[route.name] = f"hosted_vllm/{settings.llm.served_model_name}"
    assert {name: model for name, model in models.items() if name in expected} == expected
    assert {"claude-sonnet-4-5", "claude-haiku-4-5", "deepseek-r1-7b"} <= set(models)


def test_execution_role_reads_only_its_own_secrets(gateway: Stack) -> None:
    statements = {s["Sid"]: s for s in role_policy(gateway, "-proxy-execution")}
    # The image comes through the environment's ghcr cache: pull, and import on a cache miss.
    assert set(statements) == {"Logs", "OwnSecrets", "DecryptSecrets", "EcrToken", "EcrPull", "EcrPullThroughCache"}
    env = load_environment(gateway.name.removesuffix("-gateway"))
    account, region = env.account_id, env.region
    (repository,) = statements["EcrPullThroughCache"]["Resource"]
    assert repository.endswith(f":ecr:{region}:{account}:repository/ghcr/berriai/litellm")
    secret_arns = statements["OwnSecrets"]["Resource"]
    assert len(secret_arns) == 5 and all(a.startswith("${") for a in secret_arns)  # incl. the model API key
    valued = {s["valueFrom"].split(":password::")[0].split(":username::")[0]
              for s in container(gateway)["secrets"]}
    assert valued == set(secret_arns)


def test_ecr_images_get_pull_rights_on_their_repository_only() -> None:
    statements = registry_pull_statements("111122223333.dkr.ecr.eu-west-2.amazonaws.com/litellm:v1.55.8", "aws")
    assert statements[1]["Resource"] == ["arn:aws:ecr:eu-west-2:111122223333:repository/litellm"]
    assert registry_pull_statements("ghcr.io/berriai/litellm:v1.55.8-stable", "aws") == []
    assert [s["Sid"] for s in statements] == ["EcrToken", "EcrPull"]  # not a cache: nothing to import


def test_cached_images_may_import_from_upstream_into_their_own_repository_only() -> None:
    """ECR user guide, pull through cache IAM: ecr:BatchImportUpstreamImage, and ecr:CreateRepository
    for the first pull of a repository."""
    image = "111122223333.dkr.ecr.eu-west-2.amazonaws.com/ghcr/berriai/litellm:v1.108.11"
    statements = {s["Sid"]: s for s in registry_pull_statements(image, "aws")}
    repository = "arn:aws:ecr:eu-west-2:111122223333:repository/ghcr/berriai/litellm"
    assert statements["EcrPull"]["Resource"] == [repository]
    assert statements["EcrPullThroughCache"] == {
        "Sid": "EcrPullThroughCache", "Effect": "Allow",
        "Action": ["ecr:BatchImportUpstreamImage", "ecr:CreateRepository"], "Resource": [repository]}


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
    task = serving_task(prod)
    assert (task["cpu"], task["memory"], task["network_mode"]) == ("1024", "2048", "awsvpc")
    assert task["requires_compatibilities"] == ["FARGATE"]
    assert prod.one("aws_ecs_service")["capacity_provider_strategy"][0]["capacity_provider"] == "FARGATE"
    dev = stacks["dev-gateway"]
    assert (serving_task(dev)["cpu"], serving_task(dev)["memory"]) == ("512", "1024")
    assert dev.one("aws_ecs_service")["capacity_provider_strategy"][0]["capacity_provider"] == "FARGATE_SPOT"


def test_image_is_pinned_and_healthchecked(gateway: Stack) -> None:
    definition = container(gateway)
    # ghcr.io's LiteLLM through the environment's pull-through cache; tags are vX.Y.Z since v1.84
    assert re.fullmatch(r"\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com/ghcr/berriai/litellm:v1\.\d+\.\d+",
                        definition["image"])
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


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_autoscaling_on_cpu_and_memory(stacks, env: str) -> None:
    stack = stacks[f"{env}-gateway"]
    target = stack.one("aws_appautoscaling_target")
    capacity = load_environment(env).gateway.capacity
    assert (target["min_capacity"], target["max_capacity"]) == (capacity.min, capacity.max)
    policies = {p["target_tracking_scaling_policy_configuration"]["predefined_metric_specification"][
        "predefined_metric_type"]: p["target_tracking_scaling_policy_configuration"]
        for p in stack.resources("aws_appautoscaling_policy").values()}
    assert policies["ECSServiceAverageCPUUtilization"]["target_value"] == 70
    assert policies["ECSServiceAverageMemoryUtilization"]["target_value"] == 75
    for policy in policies.values():
        assert (policy["scale_out_cooldown"], policy["scale_in_cooldown"]) == (60, 300)


HOSTILE_PASSWORD = "p#ss?w/rd%25@host:5432/db&x=y 'q' \"d\" $HOME `id` \\"


def test_start_command_encodes_any_password_into_a_tls_database_url(stacks, tmp_path: Path) -> None:
    """Runs the container's real entryPoint + command with a stand-in `litellm` on PATH."""
    definition = container(stacks["prod-gateway"])
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    litellm = bin_dir / "litellm"
    litellm.write_text('#!/bin/sh\nprintf "%s" "$DATABASE_URL" > "$OUT/url"\nenv > "$OUT/env"\n'
                       'printf "%s" "$*" > "$OUT/args"\n')
    litellm.chmod(0o755)
    task_env = {**environment(stacks["prod-gateway"]), "DB_ENDPOINT": "db.example.internal:5432"}
    run_env = {**task_env, "DB_USERNAME": "litellm_admin", "DB_PASSWORD": HOSTILE_PASSWORD,
               "PATH": f"{bin_dir}:{os.environ['PATH']}", "OUT": str(tmp_path)}
    subprocess.run(definition["entryPoint"] + definition["command"], env=run_env, check=True, timeout=30)
    url = urlsplit((tmp_path / "url").read_text())
    assert (url.scheme, url.hostname, url.port, url.path) == ("postgresql", "db.example.internal", 5432, "/litellm")
    assert unquote(url.username) == "litellm_admin" and unquote(url.password) == HOSTILE_PASSWORD
    assert parse_qs(url.query) == {"sslmode": ["require"]}
    assert "DB_PASSWORD=" not in (tmp_path / "env").read_text()  # dropped once the URL is built
    assert (tmp_path / "args").read_text() == "--config /tmp/litellm-config.yaml --port 4000"


def test_responses_are_cached_only_on_request_and_limits_are_shared(stacks) -> None:
    """Behaviour checked against the real proxy (LiteLLM 1.108.11, TLS Redis, two proxies)."""
    config = json.loads(environment(stacks["prod-gateway"])["LITELLM_CONFIG_YAML"])
    cache = config["litellm_settings"]["cache_params"]
    assert (cache["mode"], cache["ssl"], cache["ttl"]) == ("default_off", True, 600)
    assert "routing_strategy" not in config["router_settings"]  # no per-deployment limits configured
    # an enterprise-only setting: without a licence LiteLLM ignores it and warns on every request
    assert "max_request_size_mb" not in config["general_settings"]
    from modules.config.settings import Identity, settings_for
    from modules.layers.gateway import litellm_config
    env = load_environment("dev")
    routes = [env.gateway.models[0].model_copy(update={"rpm": 60, "tpm": 100_000}), *env.gateway.models[1:]]
    gateway = env.gateway.model_copy(update={
        "models": routes, "license_secret_arn": "arn:aws:secretsmanager:eu-west-2:111122223333:secret:licence"})
    limited = litellm_config(Identity.of(env), settings_for(env.model_copy(update={"gateway": gateway}), "gateway"),
                             db_max_connections=100)
    assert limited["router_settings"]["routing_strategy"] == "usage-based-routing-v2"
    assert limited["router_settings"]["num_retries"] == 0  # an over-limit request gets its 429 at once
    # the router admits rpm - 1 per minute: rendering rpm + 1 admits the configured 60
    assert limited["model_list"][0]["litellm_params"]["rpm"] == 61
    assert limited["model_list"][0]["litellm_params"]["tpm"] == 100_000
    # with a licence the proxy enforces the WAF's body limit itself
    assert limited["general_settings"]["max_request_size_mb"] * 2**20 == env.edge.max_body_bytes


def test_service_waits_for_the_cluster_capacity_providers(gateway: Stack) -> None:
    (providers,) = gateway.resources("aws_ecs_cluster_capacity_providers")
    assert gateway.one("aws_ecs_service")["depends_on"] == [f"aws_ecs_cluster_capacity_providers.{providers}"]


def test_database_password_rotation_redeploys_the_proxy(gateway: Stack) -> None:
    rule = gateway.one("aws_cloudwatch_event_rule")
    pattern = json.loads(rule["event_pattern"])
    assert pattern["source"] == ["aws.secretsmanager"]
    label_moved, rotated = pattern["$or"]
    assert label_moved["detail-type"] == ["Secret Label Updated"]
    assert label_moved["detail"] == {"labelUpdated": ["AWSCURRENT"]}
    assert rotated["detail"]["eventName"] == ["RotationSucceeded"]
    (secret,) = label_moved["resources"]
    assert rotated["detail"]["additionalEventData"]["SecretId"] == [secret]
    assert "db_credentials_arn" in secret  # the RDS-managed master secret
    target = gateway.one("aws_cloudwatch_event_target")
    (machine_id,) = gateway.resources("aws_sfn_state_machine")
    assert target["arn"] == gateway.ref("aws_sfn_state_machine", machine_id, "arn")
    definition = json.loads(gateway.one("aws_sfn_state_machine")["definition"])
    task = definition["States"][definition["StartAt"]]
    assert task["Resource"] == "arn:aws:states:::aws-sdk:ecs:updateService"
    assert task["Parameters"]["ForceNewDeployment"] is True
    statements = {s["Sid"]: s for s in role_policy(gateway, "-proxy-redeploy")}
    assert statements["RedeployProxy"] == {"Sid": "RedeployProxy", "Effect": "Allow", "Action": ["ecs:UpdateService"],
                                           "Resource": [gateway.ref("aws_ecs_service", next(iter(
                                               gateway.resources("aws_ecs_service"))))]}
    events = {s["Sid"]: s for s in role_policy(gateway, "-db-password-rotated")}
    assert events["StartRedeploy"]["Action"] == ["states:StartExecution"]
    # both sides use the encrypted state machine, through Step Functions only
    for role in (statements, events):
        assert role["StateMachineKey"]["Condition"]["StringEquals"]["kms:ViaService"].startswith("states.")


def test_ecs_exec_is_wired_end_to_end_in_dev_and_absent_in_prod(stacks) -> None:
    dev, prod = stacks["dev-gateway"], stacks["prod-gateway"]
    assert dev.one("aws_ecs_service")["enable_execute_command"] is True
    config = dev.one("aws_ecs_cluster")["configuration"]["execute_command_configuration"]
    assert config["logging"] == "OVERRIDE" and config["log_configuration"]["cloud_watch_encryption_enabled"]
    statements = {s["Sid"]: s for s in role_policy(dev, "-proxy-task")}
    assert statements["ExecChannels"]["Action"] == sorted(
        f"ssmmessages:{a}" for a in ("CreateControlChannel", "CreateDataChannel", "OpenControlChannel",
                                     "OpenDataChannel"))
    assert "ExecSessionKey" in statements and "ExecSessionLogs" in statements
    assert prod.one("aws_ecs_service")["enable_execute_command"] is False
    assert "configuration" not in prod.one("aws_ecs_cluster")
    assert not {"ExecChannels", "ExecSessionLogs"} & {s["Sid"] for s in role_policy(prod, "-proxy-task")}


def test_generated_keys_never_reach_terraform_state(gateway: Stack) -> None:
    """Master and salt keys: ephemeral random values into write-only arguments."""
    versions = gateway.resources("aws_secretsmanager_secret_version")
    assert len(versions) == 2
    for version in versions.values():
        assert "secret_string" not in version and version["secret_string_wo_version"] == 1
        assert re.fullmatch(r"sk-\$\{ephemeral\.aws_secretsmanager_random_password\.\w+\.random_password\}",
                            version["secret_string_wo"])
    assert not gateway.resources("aws_secretsmanager_random_password")
    assert set(gateway.doc["ephemeral"]["aws_secretsmanager_random_password"]) == {"gateway_master_key",
                                                                                  "gateway_salt_key"}


def test_the_gateway_sends_the_model_api_key_it_reads_from_the_llm_layers_secret(gateway: Stack) -> None:
    """vLLM serves /v1/* only with its key: ECS fills VLLM_API_KEY from the llm layer's secret,
    and LiteLLM's `api_key: os.environ/VLLM_API_KEY` sends it as the bearer token."""
    env = gateway.name.removesuffix("-gateway")
    secrets = {s["name"]: s["valueFrom"] for s in container(gateway)["secrets"]}
    reference = secrets["VLLM_API_KEY"]
    assert reference.startswith(f"${{data.terraform_remote_state.cross-stack-reference-input-{env}-llm.outputs.")
    assert "aws_secretsmanager_secretllm_api_key_secret" in reference
    readable = {s["Sid"]: s for s in role_policy(gateway, "-proxy-execution")}["OwnSecrets"]["Resource"]
    assert reference in readable


def test_without_a_gpu_tier_no_self_hosted_route_nor_fallback_to_it() -> None:
    settings = settings_for(load_environment("dev"), "gateway")
    hosted = {route.name for route in settings.models if route.self_hosted}
    assert hosted
    # A Bedrock route falling back to the GPU tier: the fallback goes with the tier.
    settings = settings.model_copy(update={"models": [
        route.model_copy(update={"fallbacks": [*route.fallbacks, *hosted]}) if route.name == "claude-haiku-4-5"
        else route for route in settings.models]})
    config = litellm_config(Identity.of(load_environment("dev")), without_gpu_tier(settings), db_max_connections=100)
    names = {entry["model_name"] for entry in config["model_list"]}
    assert names == {route.name for route in settings.models} - hosted
    assert "hosted_vllm/" not in json.dumps(config)
    assert not any(hosted & set(next(iter(f.values()))) for f in config["router_settings"].get("fallbacks", []))


def test_the_exported_gateway_picks_the_model_secret_by_its_variable(tmp_path: Path) -> None:
    """An exported module decides at plan: llm_api_key_secret_arn empty leaves the model secret
    out of both task definitions and the execution role's policy."""
    from modules.tools.export import export_modules
    export_modules(load_environment("prod"), tmp_path, ("gateway",))
    doc = json.loads((tmp_path / "gateway" / "main.tf.json").read_text())
    locals_ = doc["locals"]
    on = [name for name in locals_ if "_on_" in name]
    assert len(on) == 3  # two task definitions and the execution policy
    for name in on:
        off = next(v for k, v in locals_.items() if k.startswith(name.split("_on_")[0] + "_off_"))
        assert "var.llm_api_key_secret_arn" in locals_[name] and "var.llm_api_key_secret_arn" not in off
        assert "VLLM_API_KEY" not in off and "hosted_vllm" not in off
    picked = [r for kind in ("aws_ecs_task_definition", "aws_iam_role_policy") for r in doc["resource"][kind].values()
              if "(var.llm_api_key_secret_arn != " in json.dumps(r)]
    assert len(picked) == 3
    assert doc["variable"]["llm_api_key_secret_arn"]["default"] == ""

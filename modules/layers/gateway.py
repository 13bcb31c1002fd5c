"""Gateway layer: the LiteLLM proxy on ECS Fargate behind the edge ALB."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from cdktn import Fn, Op, Token
from constructs import Construct
from cdktn_provider_aws.appautoscaling_policy import (
    AppautoscalingPolicy,
    AppautoscalingPolicyTargetTrackingScalingPolicyConfiguration as TargetTracking,
    AppautoscalingPolicyTargetTrackingScalingPolicyConfigurationPredefinedMetricSpecification as PredefinedMetric,
)
from cdktn_provider_aws.appautoscaling_target import AppautoscalingTarget
from cdktn_provider_aws.ecs_cluster import (
    EcsCluster,
    EcsClusterConfiguration,
    EcsClusterConfigurationExecuteCommandConfiguration,
    EcsClusterConfigurationExecuteCommandConfigurationLogConfiguration,
    EcsClusterSetting,
)
from cdktn_provider_aws.ecs_cluster_capacity_providers import EcsClusterCapacityProviders
from cdktn_provider_aws.ecs_service import (
    EcsService,
    EcsServiceAlarms,
    EcsServiceCapacityProviderStrategy,
    EcsServiceDeploymentCircuitBreaker,
    EcsServiceLoadBalancer,
    EcsServiceNetworkConfiguration,
)
from cdktn_provider_aws.ecs_task_definition import EcsTaskDefinition, EcsTaskDefinitionRuntimePlatform
from cdktn_provider_aws.cloudwatch_event_rule import CloudwatchEventRule
from cdktn_provider_aws.cloudwatch_event_target import (
    CloudwatchEventTarget,
    CloudwatchEventTargetDeadLetterConfig,
    CloudwatchEventTargetRetryPolicy,
)
from cdktn_provider_aws.cloudwatch_log_group import CloudwatchLogGroup
from cdktn_provider_aws.sqs_queue import SqsQueue
from cdktn_provider_aws.sqs_queue_policy import SqsQueuePolicy
from cdktn_provider_aws.sfn_state_machine import (
    SfnStateMachine,
    SfnStateMachineEncryptionConfiguration,
    SfnStateMachineLoggingConfiguration,
    SfnStateMachineTracingConfiguration,
)

from modules.parts import iam
from modules.parts.compliance import skip
from modules.catalogue.alarms import DEPLOY_MAXIMUM_PERCENT, DEPLOYMENT_ALARMS, RESERVED_CONNECTIONS, pool_per_task
from modules.config.models import KeyLimits, ModelRoute
from modules.config.settings import Identity, GatewaySettings
from modules.parts.context import Account, current_account
from modules.layers.data import DataOutputs
from modules.layers.edge import EdgeOutputs, HEALTH_CHECK_PATH
from modules.layers.foundation import FoundationOutputs
from modules.layers.llm import LlmOutputs
from modules.layers.network import NetworkOutputs, Port
from modules.parts.outputs import publish
from modules.parts.secret import GeneratedSecret
from modules.parts.storage import encrypted_log_group
from modules.parts.switch import pick, pick_text

CONTAINER = "litellm"
CONFIG_PATH = "/tmp/litellm-config.yaml"


def start_script(*litellm_args: str) -> str:
    """The container's command: LiteLLM with the rendered config and these arguments.

    LiteLLM joins DATABASE_HOST/USERNAME/PASSWORD/NAME into a URL without encoding the password,
    and an RDS-generated password may hold '#', '?', '/' or '%'. The container builds the URL
    itself, percent-encoded and requiring TLS, then drops the plain password. (No "${" in here:
    Terraform would read it as an interpolation.)"""
    return ("set -eu\n"
            "DATABASE_URL=\"$(python3 -c 'import os, urllib.parse as u; q = lambda n: u.quote(os.environ[n], safe=\"\"); "
            "print(u.urlunsplit((\"postgresql\", q(\"DB_USERNAME\") + \":\" + q(\"DB_PASSWORD\") + \"@\" + "
            "os.environ[\"DB_ENDPOINT\"], \"/\" + q(\"DB_NAME\"), \"sslmode=require\", \"\")))')\"\n"
            "export DATABASE_URL\n"
            "unset DB_PASSWORD\n"
            f"printf '%s' \"$LITELLM_CONFIG_YAML\" > {CONFIG_PATH}\n"
            f"exec litellm --config {CONFIG_PATH} {' '.join(litellm_args)}\n")


START_SCRIPT = start_script("--port", str(Port.GATEWAY))
# The one-off migration task: LiteLLM applies its schema migrations, then exits (0 on success).
MIGRATE_SCRIPT = start_script("--skip_server_startup")
MIGRATION_FAMILY_SUFFIX = "proxy-migrate"
# Fargate's ceiling for a container's stopTimeout (seconds).
FARGATE_MAX_STOP_TIMEOUT = 120
AUDIT_PREFIX = "litellm/"
MODEL_API_KEY_VARIABLE = "VLLM_API_KEY"  # the self-hosted model's API key, in the task's environment
# Cross-region inference profile ids start with a geography ("eu.anthropic…").
INFERENCE_PROFILE_GEOS = ("us", "eu", "apac", "global")


@dataclass(frozen=True)
class GatewayOutputs:
    cluster_name: str
    service_name: str
    master_key_secret_arn: str
    log_group_name: str
    redeploy_state_machine_arn: str
    redeploy_dead_letter_queue_name: str


def litellm_config(identity: Identity, settings: GatewaySettings, db_max_connections: int | Any) -> dict[str, Any]:
    """LiteLLM's config: routes from the environment's model list, Redis shared by all tasks,
    a database pool per task sized from the data layer's db_max_connections.

    Holds no secret: every credential is an `os.environ/NAME` reference filled by ECS from
    Secrets Manager. Redis is shared by all tasks: virtual-key RPM/TPM counters and the router's
    per-deployment limits live there, so N tasks enforce one limit, not N. Response caching is
    opt-in per request (`cache: {"use-cache": true}`): cached by default, one user's answer
    would be replayed to another who sends the same request. Every key is one the pinned
    LiteLLM reads (tests/litellm_config_keys.json): an unknown key would be silently ignored.
    """
    redis = {"host": "os.environ/REDIS_HOST", "port": "os.environ/REDIS_PORT",
             "password": "os.environ/REDIS_PASSWORD"}
    # A lost Redis node fails a call within seconds instead of hanging the request behind it.
    timeouts = {"socket_timeout": settings.redis_socket_timeout_seconds,
                "socket_connect_timeout": settings.redis_connect_timeout_seconds}
    router: dict[str, Any] = {**{f"redis_{k}": v for k, v in redis.items()}, "cache_kwargs": timeouts}
    if any(route.rpm or route.tpm for route in settings.models):
        # The default router treats rpm/tpm as load-balancing weights; this one enforces them
        # across tasks through Redis. Without retries a request over the limit gets its 429 at
        # once (with retries LiteLLM holds it up to a minute, then answers 200).
        router.update(routing_strategy="usage-based-routing-v2", num_retries=0)
    fallbacks = [{route.name: route.fallbacks} for route in settings.models if route.fallbacks]
    if fallbacks:
        router["fallbacks"] = fallbacks
    return {
        "model_list": [_route(identity, settings, route) for route in settings.models],
        "router_settings": router,
        "litellm_settings": {
            "cache": True,
            "cache_params": {"type": "redis", **redis, "ssl": True, "mode": "default_off",
                             "ttl": settings.cache_ttl_seconds, **timeouts},
            "default_key_generate_params": _key_limits(settings.key_defaults),
            "upperbound_key_generate_params": _key_limits(settings.key_upper_bounds)},
        "general_settings": _general_settings(settings, db_max_connections),
    }


def config_text(config: dict[str, Any]) -> str:
    """The config as JSON, which YAML reads. In a module the pool is a Terraform expression:
    written bare, so that Terraform fills in a number, not a quoted string."""
    text = json.dumps(config, sort_keys=True)
    pool = config["general_settings"]["database_connection_pool_limit"]
    return text.replace(json.dumps(pool), pool) if isinstance(pool, str) else text


def _route(identity: Identity, settings: GatewaySettings, route: ModelRoute) -> dict[str, Any]:
    """One model_list entry: where the route goes, its timeout, limits and price."""
    if route.bedrock_model_id:
        params: dict[str, Any] = {"model": f"bedrock/{route.bedrock_model_id}", "aws_region_name": identity.region}
    elif route.self_hosted:
        # The GPU tier's vLLM server behind the internal ALB; TLS verified against the private
        # name; vLLM serves only callers with its API key (filled by ECS from Secrets Manager).
        params = {"model": f"hosted_vllm/{settings.self_hosted_model_name}",
                  "api_base": f"https://{settings.self_hosted_dns_name}/v1",
                  "api_key": f"os.environ/{MODEL_API_KEY_VARIABLE}"}
    else:
        params = {"model": f"openai/{route.name}", "api_base": route.upstream_url, "api_key": "none"}
    # LiteLLM's own default (6000 s) outlives the ALB: the client would get a 504 while the
    # upstream call runs on. Ending it first answers the client and frees the slot.
    timeout = route.timeout_seconds or settings.request_timeout_seconds
    params.update(timeout=timeout, stream_timeout=timeout)
    # LiteLLM 1.108's usage-based router admits a request only while used + 1 < rpm (seen
    # against the real proxy): rpm + 1 makes the configured number the number admitted.
    params.update({k: v for k, v in (("rpm", route.rpm and route.rpm + 1), ("tpm", route.tpm)) if v})
    params.update(route_price(settings, route))
    return {"model_name": route.name, "litellm_params": params}


def without_gpu_tier(settings: GatewaySettings) -> GatewaySettings:
    """The settings without the self-hosted routes, nor fallbacks to them."""
    hosted = {route.name for route in settings.models if route.self_hosted}
    return settings.model_copy(update={"models": [
        route.model_copy(update={"fallbacks": [f for f in route.fallbacks if f not in hosted]})
        for route in settings.models if not route.self_hosted]})


def route_price(settings: GatewaySettings, route: ModelRoute) -> dict[str, float]:
    """A route's price per token: its own, or for the GPU tier one host-hour spread over the
    tokens a host serves in that hour (Bedrock routes are priced by LiteLLM's cost map)."""
    prices = {k: v for k, v in (("input_cost_per_token", route.input_cost_per_token),
                                ("output_cost_per_token", route.output_cost_per_token)) if v is not None}
    if route.self_hosted:
        per_token = settings.gpu_host_cost_per_hour_usd / (settings.gpu_tokens_per_second * 3600)
        prices = {"input_cost_per_token": per_token, "output_cost_per_token": per_token, **prices}
    return prices


def _key_limits(limits: KeyLimits) -> dict[str, Any]:
    return {"tpm_limit": limits.tpm, "rpm_limit": limits.rpm, "max_budget": limits.max_budget_usd,
            "budget_duration": limits.budget_duration}


def pool_limit(db_max_connections: int | Any, max_tasks: int | Any) -> int | Any:
    """pool_per_task, or in a module the same arithmetic in Terraform over its inputs."""
    if isinstance(db_max_connections, int) and isinstance(max_tasks, int):
        return pool_per_task(db_max_connections, max_tasks)
    peak = Fn.floor(Op.div(Op.mul(max_tasks, DEPLOY_MAXIMUM_PERCENT), 100))
    return Token.as_string(Fn.floor(Op.div(Op.sub(db_max_connections, RESERVED_CONNECTIONS), peak)))


def _general_settings(settings: GatewaySettings, db_max_connections: int | Any) -> dict[str, Any]:
    general: dict[str, Any] = {
        "master_key": "os.environ/LITELLM_MASTER_KEY",
        # Every task at the deploy peak fits max_connections (the rule checks it is workable).
        "database_connection_pool_limit": pool_limit(db_max_connections, settings.capacity.max),
        "database_connection_timeout": 60,
        "allow_requests_on_db_unavailable": settings.allow_requests_on_db_unavailable,
        "maximum_spend_logs_retention_period": f"{settings.spend_logs_retention_days}d",
    }
    if settings.license_secret_arn:
        # Proxy-side body limit (enterprise only: without a licence LiteLLM skips it and warns
        # on every request). The WAF's Content-Length rule holds the same limit either way.
        general["max_request_size_mb"] = settings.max_body_bytes / 2**20
    return general


def _container(identity: Identity, settings: GatewaySettings, data: DataOutputs, secrets: dict[str, str],
               log_group_name: str, *, migrate: bool = False) -> dict[str, Any]:
    """The LiteLLM container definition: plain settings in the environment, credentials as secrets.

    Serving tasks never change the schema (DISABLE_SCHEMA_UPDATE): the one-off migration task
    (`migrate`, same image and config, no port) applies it once per deploy, after a snapshot."""
    environment = {
        "AWS_REGION": identity.region,
        "LITELLM_LOG": "INFO",
        "STORE_MODEL_IN_DB": "True",
        "LITELLM_MODE": "PRODUCTION",
        # The cost map shipped in the image: no fetch from GitHub (and its retries) at every start.
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "DB_ENDPOINT": f"{data.db_address}:{data.db_port}",
        "DB_NAME": data.db_name,
        "REDIS_HOST": data.redis_address,
        "REDIS_PORT": str(data.redis_port),
        "REDIS_SSL": "True",  # gives the router's Redis client TLS
        "LITELLM_CONFIG_YAML": config_text(litellm_config(identity, settings, data.db_max_connections)),
        **({} if migrate else {"DISABLE_SCHEMA_UPDATE": "true"}),
    }
    serving: dict[str, Any] = {
        "portMappings": [{"containerPort": Port.GATEWAY, "protocol": "tcp"}],
        "healthCheck": {"command": ["CMD-SHELL", "python3 -c \"import urllib.request; urllib.request."
                                    f"urlopen('http://localhost:{Port.GATEWAY}{HEALTH_CHECK_PATH}')\""],
                        "interval": 30, "timeout": 5, "retries": 3, "startPeriod": 60},
        # After the target group has drained, a stopping task finishes what it still holds.
        "stopTimeout": stop_timeout(settings)}
    return {
        "name": CONTAINER,
        "image": settings.image,
        "essential": True,
        "entryPoint": ["/bin/sh", "-c"],
        "command": [MIGRATE_SCRIPT if migrate else START_SCRIPT],
        **({} if migrate else serving),
        "environment": [{"name": k, "value": v} for k, v in sorted(environment.items())],
        "secrets": [{"name": k, "valueFrom": v} for k, v in sorted(secrets.items())],
        "readonlyRootFilesystem": False,
        "privileged": False,
        "logConfiguration": {"logDriver": "awslogs", "options": {
            "awslogs-group": log_group_name, "awslogs-region": identity.region,
            "awslogs-stream-prefix": "migrate" if migrate else "proxy"}},
    }


def stop_timeout(settings: GatewaySettings) -> int:
    """Seconds between SIGTERM and SIGKILL: the request timeout, within Fargate's 120 s."""
    return min(settings.request_timeout_seconds, FARGATE_MAX_STOP_TIMEOUT)


class Gateway(Construct):
    """ECS cluster, LiteLLM task and service in the private subnets, registered in the edge target group."""

    def __init__(self, scope: Construct, id: str, *, identity: Identity, settings: GatewaySettings,
                 network: NetworkOutputs,
                 foundation: FoundationOutputs, data: DataOutputs, edge: EdgeOutputs, llm: LlmOutputs,
                 gpu_tier: bool | Any = True) -> None:
        """`gpu_tier`: whether the llm layer serves the self-hosted routes; off (an exported module
        given no llm_api_key_secret_arn), they are left out with their secret and its grant."""
        super().__init__(scope, id)
        self._identity, self._settings = identity, settings
        self._gpu_tier = gpu_tier if any(route.self_hosted for route in settings.models) else False
        account = current_account(self, identity.region)
        key = foundation.kms_key_arn
        name = identity.resource_name("proxy")

        logs, exec_logs, cluster, capacity_providers = self._cluster(name, key)
        master_key, secrets, secret_arns = self._secrets(key, data, llm, foundation.replica_kms_key_arns)
        execution_role, task_role = self._roles(account, foundation, key, logs, exec_logs, secret_arns)
        task = self._task_definition("task", name, execution_role.arn, task_role.arn,
                                     self._containers(data, secrets, logs.name))
        # Same image, config and credentials, no port and no AWS permissions: run once per deploy
        # by `python -m modules.tools.migrate ENV`, before the service moves to the new image.
        self._task_definition("migration_task", identity.resource_name(MIGRATION_FAMILY_SUFFIX),
                              execution_role.arn, None, self._containers(data, secrets, logs.name, migrate=True))
        service = self._service(name, cluster, task, network, edge, capacity_providers)

        self._autoscaling(cluster.name, service.name)
        machine, dlq = self._redeploy_on_rotation(account, cluster.name, service, data.db_master_secret_arn, key)
        self.outputs = GatewayOutputs(cluster_name=cluster.name, service_name=service.name,
                                      master_key_secret_arn=master_key.arn, log_group_name=logs.name,
                                      redeploy_state_machine_arn=machine.arn, redeploy_dead_letter_queue_name=dlq.name)
        publish(self, {
            "cluster_name": (cluster.name, "ECS cluster running the LiteLLM proxy"),
            "service_name": (service.name, "ECS service of the LiteLLM proxy"),
            "log_group_name": (logs.name, "CloudWatch log group of the proxy containers"),
            "master_key_secret_arn": (master_key.arn, "Secrets Manager ARN of the LiteLLM master key (read it there)"),
            "ecs_exec_enabled": (settings.ecs_exec,
                                 "Whether `aws ecs execute-command` into proxy tasks is switched on"),
        })

    def _containers(self, data: DataOutputs, secrets: dict[str, str], log_group_name: str, *,
                    migrate: bool = False) -> str:
        """The container definitions, with the self-hosted routes or without them (Terraform
        picks while the GPU tier is a variable)."""
        def render(settings: GatewaySettings, secrets: dict[str, str]) -> str:
            return json.dumps([_container(self._identity, settings, data, secrets, log_group_name, migrate=migrate)])
        if self._gpu_tier is True:
            return render(self._settings, secrets)
        without = render(without_gpu_tier(self._settings),
                         {k: v for k, v in secrets.items() if k != MODEL_API_KEY_VARIABLE})
        return pick_text(self, f"{'migration' if migrate else 'task'}_containers", self._gpu_tier,
                         render(self._settings, secrets), without)

    def _task_definition(self, id: str, family: str, execution_role_arn: str, task_role_arn: str | None,
                         container_definitions: str) -> EcsTaskDefinition:
        settings = self._settings
        task = EcsTaskDefinition(
            self, id, family=family, network_mode="awsvpc", requires_compatibilities=["FARGATE"],
            cpu=str(settings.cpu), memory=str(settings.memory), execution_role_arn=execution_role_arn,
            task_role_arn=task_role_arn, container_definitions=container_definitions,
            runtime_platform=EcsTaskDefinitionRuntimePlatform(operating_system_family="LINUX",
                                                              cpu_architecture="X86_64"))
        skip(task, "CKV_LLM_6", "LiteLLM writes at start-up (rendered config, Prisma engine and migration "
             "files under the home directory), so the root filesystem cannot be read-only.")
        return task

    def _cluster(self, name: str, key: str
                 ) -> tuple[CloudwatchLogGroup, CloudwatchLogGroup | None, EcsCluster, EcsClusterCapacityProviders]:
        identity, settings = self._identity, self._settings
        def log_group(id: str, group_name: str) -> CloudwatchLogGroup:
            return encrypted_log_group(self, id, name=group_name, kms_key_arn=key,
                                       retention_days=identity.log_retention_days,
                                       protect_data=identity.protect_stateful)

        logs = log_group("log_group", f"/ecs/{name}")
        # ECS Exec (break-glass shell), only where switched on; sessions are recorded, encrypted.
        exec_logs = log_group("exec_log_group", f"/ecs/{name}-exec") if settings.ecs_exec else None
        cluster = EcsCluster(
            self, "cluster", name=identity.resource_name("cluster"),
            setting=[EcsClusterSetting(name="containerInsights", value="enabled")],
            configuration=EcsClusterConfiguration(execute_command_configuration=(
                EcsClusterConfigurationExecuteCommandConfiguration(
                    kms_key_id=key, logging="OVERRIDE",
                    log_configuration=EcsClusterConfigurationExecuteCommandConfigurationLogConfiguration(
                        cloud_watch_log_group_name=exec_logs.name, cloud_watch_encryption_enabled=True))))
            if exec_logs else None)
        capacity_providers = EcsClusterCapacityProviders(self, "capacity_providers", cluster_name=cluster.name,
                                                         capacity_providers=["FARGATE", "FARGATE_SPOT"])
        return logs, exec_logs, cluster, capacity_providers

    def _secrets(self, key: str, data: DataOutputs, llm: LlmOutputs, replica_keys: dict[str, str]
                 ) -> tuple[GeneratedSecret, dict[str, str], list[str]]:
        """The container's secrets by variable name, and every secret ARN the task may read."""
        identity, settings = self._identity, self._settings
        master_key = GeneratedSecret(self, "master_key",
                                     name=f"{identity.project}/{identity.environment}/litellm-master-key",
                                     description="LiteLLM admin (master) key", kms_key_arn=key,
                                     protect_data=identity.protect_stateful, prefix="sk-")
        # Encrypts provider credentials LiteLLM stores in PostgreSQL; must never change.
        # Replicated where the database's backups are copied: a copy is useless without it.
        replica = settings.salt_key_replica_region
        salt_key = GeneratedSecret(self, "salt_key", name=f"{identity.project}/{identity.environment}/litellm-salt-key",
                                   description="LiteLLM salt key for credentials stored in the database",
                                   kms_key_arn=key, protect_data=identity.protect_stateful, prefix="sk-",
                                   replica_keys={replica: replica_keys[replica]} if replica else None)
        secrets = {
            "LITELLM_MASTER_KEY": master_key.arn,
            "LITELLM_SALT_KEY": salt_key.arn,
            "DB_USERNAME": f"{data.db_master_secret_arn}:username::",
            "DB_PASSWORD": f"{data.db_master_secret_arn}:password::",
            "REDIS_PASSWORD": data.redis_auth_secret_arn,
        }
        if settings.license_secret_arn:
            secrets["LITELLM_LICENSE"] = settings.license_secret_arn
        if self._gpu_tier is not False:
            secrets[MODEL_API_KEY_VARIABLE] = llm.api_key_secret_arn
        secret_arns = [master_key.arn, salt_key.arn, data.db_master_secret_arn, data.redis_auth_secret_arn,
                       *([settings.license_secret_arn] if settings.license_secret_arn else []),
                       *([llm.api_key_secret_arn] if MODEL_API_KEY_VARIABLE in secrets else [])]
        return master_key, secrets, secret_arns

    def _roles(self, account: Account, foundation: FoundationOutputs, key: str,
               logs: CloudwatchLogGroup, exec_logs: CloudwatchLogGroup | None,
               secret_arns: list[str]) -> tuple[iam.ServiceRole, iam.ServiceRole]:
        identity, settings = self._identity, self._settings

        def execution(secret_arns: list[str]) -> list[iam.Statement]:
            return [iam.allow(["logs:CreateLogStream", "logs:PutLogEvents"], [f"{logs.arn}:*"], sid="Logs"),
                    iam.allow(["secretsmanager:GetSecretValue"], secret_arns, sid="OwnSecrets"),
                    iam.allow(["kms:Decrypt"], [key], sid="DecryptSecrets", conditions={
                        "StringEquals": {"kms:ViaService": f"secretsmanager.{identity.region}.amazonaws.com"}}),
                    *iam.registry_pull_statements(settings.image, account.partition)]
        execution_role = iam.service_role(
            self, "execution_role", name=identity.resource_name("proxy-execution"), service="ecs-tasks.amazonaws.com",
            source_account=account.id, statements=execution(secret_arns))
        if self._gpu_tier is not True and self._gpu_tier is not False and execution_role.policy:
            # Without the GPU tier the task may read no model secret (its ARN is the last one).
            execution_role.policy.policy = pick_text(self, "execution_policy", self._gpu_tier,
                                                     iam.document(*execution(secret_arns)),
                                                     iam.document(*execution(secret_arns[:-1])))
        task_role = iam.service_role(
            self, "task_role", name=identity.resource_name("proxy-task"), service="ecs-tasks.amazonaws.com",
            source_account=account.id, statements=[
                *bedrock_statements(account, [m.bedrock_model_id for m in settings.models if m.bedrock_model_id]),
                iam.allow(["s3:PutObject"], [f"{foundation.audit_bucket_arn}/{AUDIT_PREFIX}*"], sid="AuditLogs"),
                iam.allow(["kms:GenerateDataKey", "kms:Decrypt"], [key], sid="EncryptAuditLogs", conditions={
                    "StringEquals": {"kms:ViaService": f"s3.{identity.region}.amazonaws.com"}}),
                *(_exec_statements(exec_logs.arn, key) if exec_logs else []),
            ])
        return execution_role, task_role

    def _service(self, name: str, cluster: EcsCluster, task: EcsTaskDefinition,
                 network: NetworkOutputs, edge: EdgeOutputs,
                 capacity_providers: EcsClusterCapacityProviders) -> EcsService:
        settings = self._settings
        service = EcsService(
            self, "service", name=name, cluster=cluster.id, task_definition=task.arn,
            desired_count=settings.capacity.desired,
            platform_version="LATEST",
            capacity_provider_strategy=[EcsServiceCapacityProviderStrategy(
                capacity_provider=pick(settings.fargate_spot, "FARGATE_SPOT", "FARGATE"), weight=1)],
            network_configuration=EcsServiceNetworkConfiguration(
                subnets=network.private_subnet_ids, security_groups=[network.security_group_ids["gateway"]],
                assign_public_ip=False),
            load_balancer=[EcsServiceLoadBalancer(target_group_arn=edge.target_group_arn,
                                                  container_name=CONTAINER, container_port=Port.GATEWAY)],
            health_check_grace_period_seconds=60, deployment_maximum_percent=200,
            deployment_minimum_healthy_percent=100,
            deployment_circuit_breaker=EcsServiceDeploymentCircuitBreaker(enable=True, rollback=True),
            # A release that starts but serves errors fails its deployment and rolls back (the
            # observability layer's alarms, by name; the circuit breaker only sees tasks that fail).
            alarms=EcsServiceAlarms(alarm_names=[self._identity.resource_name(n) for n in DEPLOYMENT_ALARMS],
                                    enable=True, rollback=True),
            enable_execute_command=settings.ecs_exec, propagate_tags="SERVICE", enable_ecs_managed_tags=True,
            wait_for_steady_state=False,
            # ECS rejects a capacity provider strategy the cluster does not list yet.
            depends_on=[capacity_providers])
        # Autoscaling owns the task count after the first deployment.
        service.add_override("lifecycle.ignore_changes", ["desired_count"])
        return service

    def _autoscaling(self, cluster_name: str, service_name: str) -> None:
        identity, settings = self._identity, self._settings
        target = AppautoscalingTarget(
            self, "scaling_target", service_namespace="ecs", scalable_dimension="ecs:service:DesiredCount",
            resource_id=f"service/{cluster_name}/{service_name}", min_capacity=settings.capacity.min,
            max_capacity=settings.capacity.max)
        for metric, value in (("ECSServiceAverageCPUUtilization", settings.cpu_target_percent),
                              ("ECSServiceAverageMemoryUtilization", settings.memory_target_percent)):
            short = "cpu" if "CPU" in metric else "memory"
            AppautoscalingPolicy(
                self, f"scale_on_{short}", name=identity.resource_name(f"proxy-{short}"),
                policy_type="TargetTrackingScaling",
                service_namespace=target.service_namespace, resource_id=target.resource_id,
                scalable_dimension=target.scalable_dimension,
                target_tracking_scaling_policy_configuration=TargetTracking(
                    target_value=value, scale_out_cooldown=60, scale_in_cooldown=300,
                    predefined_metric_specification=PredefinedMetric(predefined_metric_type=metric)))

    def _redeploy_on_rotation(self, account: Account, cluster_name: str, service: EcsService,
                              secret_arn: str, key: str) -> tuple[SfnStateMachine, SqsQueue]:
        """RDS rotates the database password (every 7 days) and ECS reads secrets only when a task
        starts: when Secrets Manager reports the rotation, a state machine forces a new deployment
        (rolling, circuit-breaker protected) so new tasks start with the new password."""
        identity = self._identity
        name = identity.resource_name("proxy-redeploy")
        logs = encrypted_log_group(self, "redeploy_log_group", name=f"/aws/vendedlogs/states/{name}",
                                   kms_key_arn=key, retention_days=identity.log_retention_days,
                                   protect_data=identity.protect_stateful)
        states_key = iam.allow(["kms:Decrypt", "kms:GenerateDataKey"], [key], sid="StateMachineKey", conditions={
            "StringEquals": {"kms:ViaService": f"states.{identity.region}.amazonaws.com"}})
        machine_role = iam.service_role(
            self, "redeploy_role", name=name, service="states.amazonaws.com", source_account=account.id,
            statements=[
                iam.allow(["ecs:UpdateService"], [service.id], sid="RedeployProxy"),
                # The state machine's definition and history are encrypted with the environment key.
                states_key,
                iam.allow_unscoped(["logs:CreateLogDelivery", "logs:DeleteLogDelivery", "logs:DescribeLogGroups",
                                    "logs:DescribeResourcePolicies", "logs:GetLogDelivery", "logs:ListLogDeliveries",
                                    "logs:PutResourcePolicy", "logs:UpdateLogDelivery"], sid="ExecutionLogs"),
                iam.allow_unscoped(["xray:GetSamplingRules", "xray:GetSamplingTargets", "xray:PutTelemetryRecords",
                                    "xray:PutTraceSegments"], sid="Tracing"),
            ])
        definition = {"Comment": "Restart the LiteLLM tasks so they read the rotated database password",
                      "StartAt": "ForceNewDeployment", "States": {"ForceNewDeployment": {
                          "Type": "Task", "Resource": "arn:aws:states:::aws-sdk:ecs:updateService",
                          "Parameters": {"Cluster": cluster_name, "Service": service.name, "ForceNewDeployment": True},
                          "Retry": [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 30, "MaxAttempts": 3,
                                     "BackoffRate": 2}],
                          "End": True}}}
        machine = SfnStateMachine(
            self, "redeploy", name=name, role_arn=machine_role.arn, definition=json.dumps(definition),
            logging_configuration=SfnStateMachineLoggingConfiguration(
                log_destination=f"{logs.arn}:*", include_execution_data=True, level="ALL"),
            tracing_configuration=SfnStateMachineTracingConfiguration(enabled=True),
            encryption_configuration=SfnStateMachineEncryptionConfiguration(
                type="CUSTOMER_MANAGED_KMS_KEY", kms_key_id=key, kms_data_key_reuse_period_seconds=300),
            depends_on=[machine_role.policy])
        rule = CloudwatchEventRule(
            self, "rotation_rule", name=identity.resource_name("db-password-rotated"),
            description="The RDS-managed database password was rotated",
            event_pattern=json.dumps(rotation_event_pattern(secret_arn)))
        events_role = iam.service_role(
            self, "rotation_rule_role", name=identity.resource_name("db-password-rotated"),
            service="events.amazonaws.com",
            source_account=account.id,
            statements=[iam.allow(["states:StartExecution"], [machine.arn], sid="StartRedeploy"), states_key])
        dlq = self._redeploy_dead_letters(rule)
        # EventBridge retries a failed start for an hour, then parks the event (the alarm topic
        # hears of both: the queue's alarm and the state machine's ExecutionsFailed).
        CloudwatchEventTarget(self, "rotation_target", rule=rule.name, arn=machine.arn, role_arn=events_role.arn,
                              retry_policy=CloudwatchEventTargetRetryPolicy(maximum_event_age_in_seconds=3600,
                                                                            maximum_retry_attempts=10),
                              dead_letter_config=CloudwatchEventTargetDeadLetterConfig(arn=dlq.arn))
        return machine, dlq

    def _redeploy_dead_letters(self, rule: CloudwatchEventRule) -> SqsQueue:
        """Rotation events EventBridge could not deliver. SQS-managed encryption: the queue holds
        event metadata only (the secret's ARN), and EventBridge needs no grant on the key."""
        dlq = SqsQueue(self, "redeploy_dlq", name=self._identity.resource_name("proxy-redeploy-dlq"),
                       sqs_managed_sse_enabled=True, message_retention_seconds=1_209_600)
        skip(dlq, "CKV_LLM_8", "This is the dead-letter queue of the rotation rule: its messages wait for an "
             "operator (who then redeploys by hand), so it has no dead-letter queue of its own.")
        SqsQueuePolicy(self, "redeploy_dlq_policy", queue_url=dlq.url, policy=iam.document(
            iam.allow(["sqs:SendMessage"], [dlq.arn], sid="RotationRuleDeadLetters",
                      principals={"Service": ["events.amazonaws.com"]},
                      conditions={"ArnEquals": {"aws:SourceArn": rule.arn}}),
            iam.deny_insecure_transport(["sqs:SendMessage"], [dlq.arn])))
        return dlq


def rotation_event_pattern(secret_arn: str) -> dict[str, Any]:
    """EventBridge pattern for "this secret has a new current value".

    Secrets Manager emits `Secret Label Updated` (AWSCURRENT moved) itself; the CloudTrail
    service event `RotationSucceeded` needs a trail in the account. Either one redeploys."""
    return {"source": ["aws.secretsmanager"], "$or": [
        {"detail-type": ["Secret Label Updated"], "resources": [secret_arn],
         "detail": {"labelUpdated": ["AWSCURRENT"]}},
        {"detail-type": ["AWS Service Event via CloudTrail"],
         "detail": {"eventSource": ["secretsmanager.amazonaws.com"], "eventName": ["RotationSucceeded"],
                    "additionalEventData": {"SecretId": [secret_arn]}}},
    ]}


def bedrock_statements(account: Account, model_ids: list[str]) -> list[iam.Statement]:
    """`bedrock:InvokeModel*` on exactly the configured models.

    A cross-region inference profile ("eu.anthropic…") routes to its base model in any region
    of its geography: the profile ARN is granted, and the base model only when called through
    that profile."""
    actions = ["bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"]
    direct, profiles = [], []
    for model_id in sorted(set(model_ids)):
        # <geography>.<provider>.<model>; the geography may be a plan-time lookup (an exported
        # module's region), which a split on "." would cut.
        parts = model_id.rsplit(".", 2)
        geo, base = (parts[0], ".".join(parts[1:])) if len(parts) == 3 else ("", model_id)
        if geo in INFERENCE_PROFILE_GEOS or Token.is_unresolved(geo):
            profiles.append((account.arn("bedrock", f"inference-profile/{model_id}"),
                             f"arn:{account.partition}:bedrock:*::foundation-model/{base}"))
        else:
            direct.append(f"arn:{account.partition}:bedrock:{account.region}::foundation-model/{model_id}")
    statements = []
    if direct:
        statements.append(iam.allow(actions, direct, sid="InvokeModels"))
    if profiles:
        statements.append(iam.allow(actions, [p for p, _ in profiles], sid="InvokeInferenceProfiles"))
        statements.append(iam.allow(actions, [m for _, m in profiles], sid="InvokeProfileBaseModels", conditions={
            "ArnLike": {"bedrock:InferenceProfileArn": [p for p, _ in profiles]}}))
    return statements


def _exec_statements(log_group_arn: str, key: str) -> list[iam.Statement]:
    """What the task needs for ECS Exec: the SSM message channels, its session log, the key."""
    return [
        iam.allow_unscoped(["ssmmessages:CreateControlChannel", "ssmmessages:CreateDataChannel",
                            "ssmmessages:OpenControlChannel", "ssmmessages:OpenDataChannel"], sid="ExecChannels"),
        iam.allow(["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"],
                  [log_group_arn, f"{log_group_arn}:*"], sid="ExecSessionLogs"),
        iam.allow_unscoped(["logs:DescribeLogGroups"], sid="ExecFindLogGroup"),
        iam.allow(["kms:Decrypt"], [key], sid="ExecSessionKey"),
    ]

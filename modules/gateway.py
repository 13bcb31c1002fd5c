"""Gateway layer: the LiteLLM proxy on ECS Fargate behind the edge ALB."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from constructs import Construct
from cdktf_cdktf_provider_aws.appautoscaling_policy import (
    AppautoscalingPolicy,
    AppautoscalingPolicyTargetTrackingScalingPolicyConfiguration as TargetTracking,
    AppautoscalingPolicyTargetTrackingScalingPolicyConfigurationPredefinedMetricSpecification as PredefinedMetric,
)
from cdktf_cdktf_provider_aws.appautoscaling_target import AppautoscalingTarget
from cdktf_cdktf_provider_aws.ecs_cluster import (
    EcsCluster,
    EcsClusterConfiguration,
    EcsClusterConfigurationExecuteCommandConfiguration,
    EcsClusterConfigurationExecuteCommandConfigurationLogConfiguration,
    EcsClusterSetting,
)
from cdktf_cdktf_provider_aws.ecs_cluster_capacity_providers import EcsClusterCapacityProviders
from cdktf_cdktf_provider_aws.ecs_service import (
    EcsService,
    EcsServiceCapacityProviderStrategy,
    EcsServiceDeploymentCircuitBreaker,
    EcsServiceLoadBalancer,
    EcsServiceNetworkConfiguration,
)
from cdktf_cdktf_provider_aws.ecs_task_definition import EcsTaskDefinition, EcsTaskDefinitionRuntimePlatform

from modules import iam
from modules.compliance import skip
from modules.config import Environment
from modules.context import Account, current_account
from modules.data import DataOutputs
from modules.edge import EdgeOutputs, HEALTH_CHECK_PATH
from modules.foundation import FoundationOutputs
from modules.network import NetworkOutputs, Port
from modules.secret import GeneratedSecret
from modules.storage import encrypted_log_group

CONTAINER = "litellm"
CONFIG_PATH = "/tmp/litellm-config.yaml"
AUDIT_PREFIX = "litellm/"
# Cross-region inference profile ids start with a geography ("eu.anthropic…").
INFERENCE_PROFILE_GEOS = ("us", "eu", "apac", "global")


@dataclass(frozen=True)
class GatewayOutputs:
    cluster_name: str
    service_name: str
    master_key_secret_arn: str
    log_group_name: str


def litellm_config(env: Environment) -> dict[str, Any]:
    """LiteLLM's config: routes from the environment's model list, Redis shared by all tasks.

    Holds no secret: every credential is an `os.environ/NAME` reference filled by ECS from
    Secrets Manager. Without the shared Redis each task would enforce RPM/TPM limits alone,
    letting N tasks through N times the limit.
    """
    models = []
    for route in env.gateway.models:
        if route.bedrock_model_id:
            params = {"model": f"bedrock/{route.bedrock_model_id}", "aws_region_name": env.region}
        else:
            params = {"model": f"openai/{route.name}", "api_base": route.upstream_url, "api_key": "none"}
        models.append({"model_name": route.name, "litellm_params": params})
    redis = {"host": "os.environ/REDIS_HOST", "port": "os.environ/REDIS_PORT",
             "password": "os.environ/REDIS_PASSWORD"}
    return {
        "model_list": models,
        "router_settings": {f"redis_{k}": v for k, v in redis.items()},
        "litellm_settings": {"cache": True, "cache_params": {"type": "redis", **redis, "ssl": True}},
        "general_settings": {"master_key": "os.environ/LITELLM_MASTER_KEY",
                             "database_connection_pool_limit": 50, "database_connection_timeout": 60},
    }


def bedrock_model_arns(account: Account, model_id: str) -> list[str]:
    """The exact ARNs `bedrock:InvokeModel*` needs for one model id."""
    geo, _, base = model_id.partition(".")
    if geo in INFERENCE_PROFILE_GEOS:
        # A cross-region profile routes to the base model in any region of its geography.
        return [account.arn("bedrock", f"inference-profile/{model_id}"),
                f"arn:{account.partition}:bedrock:*::foundation-model/{base}"]
    return [f"arn:{account.partition}:bedrock:{account.region}::foundation-model/{model_id}"]


class Gateway(Construct):
    """ECS cluster, LiteLLM task and service in the private subnets, registered in the edge target group."""

    def __init__(self, scope: Construct, id: str, *, env: Environment, network: NetworkOutputs,
                 foundation: FoundationOutputs, data: DataOutputs, edge: EdgeOutputs) -> None:
        super().__init__(scope, id)
        cfg = env.gateway
        account = current_account(self, env.region)
        key = foundation.kms_key_arn
        name = env.resource_name("proxy")

        log_group = encrypted_log_group(self, "log_group", name=f"/ecs/{name}", kms_key_arn=key,
                                        retention_days=env.foundation.log_retention_days,
                                        protect_data=env.protect_stateful)
        # ECS Exec sessions (break-glass debugging) are recorded, encrypted.
        exec_log_group = encrypted_log_group(self, "exec_log_group", name=f"/ecs/{name}-exec", kms_key_arn=key,
                                             retention_days=env.foundation.log_retention_days,
                                             protect_data=env.protect_stateful)
        cluster = EcsCluster(
            self, "cluster", name=env.resource_name("cluster"),
            setting=[EcsClusterSetting(name="containerInsights", value="enabled")],
            configuration=EcsClusterConfiguration(execute_command_configuration=(
                EcsClusterConfigurationExecuteCommandConfiguration(
                    kms_key_id=key, logging="OVERRIDE",
                    log_configuration=EcsClusterConfigurationExecuteCommandConfigurationLogConfiguration(
                        cloud_watch_log_group_name=exec_log_group.name, cloud_watch_encryption_enabled=True)))))
        EcsClusterCapacityProviders(self, "capacity_providers", cluster_name=cluster.name,
                                    capacity_providers=["FARGATE", "FARGATE_SPOT"])

        master_key = GeneratedSecret(self, "master_key", name=f"{env.project}/{env.name}/litellm-master-key",
                                     description="LiteLLM admin (master) key", kms_key_arn=key,
                                     protect_data=env.protect_stateful, prefix="sk-")
        # Encrypts provider credentials LiteLLM stores in PostgreSQL; must never change.
        salt_key = GeneratedSecret(self, "salt_key", name=f"{env.project}/{env.name}/litellm-salt-key",
                                   description="LiteLLM salt key for credentials stored in the database",
                                   kms_key_arn=key, protect_data=env.protect_stateful, prefix="sk-")
        secrets = {
            "LITELLM_MASTER_KEY": master_key.arn,
            "LITELLM_SALT_KEY": salt_key.arn,
            "DATABASE_USERNAME": f"{data.db_master_secret_arn}:username::",
            "DATABASE_PASSWORD": f"{data.db_master_secret_arn}:password::",
            "REDIS_PASSWORD": data.redis_auth_secret_arn,
        }
        secret_arns = [master_key.arn, salt_key.arn, data.db_master_secret_arn, data.redis_auth_secret_arn]

        execution_role = iam.service_role(
            self, "execution_role", name=env.resource_name("proxy-execution"), service="ecs-tasks.amazonaws.com",
            source_account=account.id, statements=[
                iam.allow(["logs:CreateLogStream", "logs:PutLogEvents"], [f"{log_group.arn}:*"], sid="Logs"),
                iam.allow(["secretsmanager:GetSecretValue"], secret_arns, sid="OwnSecrets"),
                iam.allow(["kms:Decrypt"], [key], sid="DecryptSecrets", conditions={
                    "StringEquals": {"kms:ViaService": f"secretsmanager.{env.region}.amazonaws.com"}}),
                *_registry_statements(cfg.image, account.partition)])
        task_role = iam.service_role(
            self, "task_role", name=env.resource_name("proxy-task"), service="ecs-tasks.amazonaws.com",
            source_account=account.id, statements=[
                iam.allow(["bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"],
                          sorted({arn for m in cfg.models if m.bedrock_model_id
                                  for arn in bedrock_model_arns(account, m.bedrock_model_id)}), sid="InvokeModels"),
                iam.allow(["s3:PutObject"], [f"{foundation.audit_bucket_arn}/{AUDIT_PREFIX}*"], sid="AuditLogs"),
                iam.allow(["kms:GenerateDataKey", "kms:Decrypt"], [key], sid="EncryptAuditLogs", conditions={
                    "StringEquals": {"kms:ViaService": f"s3.{env.region}.amazonaws.com"}}),
            ])

        environment = {
            "AWS_REGION": env.region,
            "LITELLM_LOG": "INFO",
            "STORE_MODEL_IN_DB": "True",
            "LITELLM_MODE": "PRODUCTION",
            "DATABASE_HOST": f"{data.db_address}:{data.db_port}",
            "DATABASE_NAME": data.db_name,
            "REDIS_HOST": data.redis_address,
            "REDIS_PORT": str(data.redis_port),
            "REDIS_SSL": "True",
            "LITELLM_CONFIG_YAML": json.dumps(litellm_config(env), sort_keys=True),
        }
        container = {
            "name": CONTAINER,
            "image": cfg.image,
            "essential": True,
            # The config holds no secret, so it travels in the task definition and is written
            # to a file at start: no image rebuild and no extra bucket per model change.
            "entryPoint": ["/bin/sh", "-c"],
            "command": [f'printf "%s" "$LITELLM_CONFIG_YAML" > {CONFIG_PATH} && '
                        f"exec litellm --config {CONFIG_PATH} --port {Port.GATEWAY}"],
            "portMappings": [{"containerPort": Port.GATEWAY, "protocol": "tcp"}],
            "environment": [{"name": k, "value": v} for k, v in sorted(environment.items())],
            "secrets": [{"name": k, "valueFrom": v} for k, v in sorted(secrets.items())],
            "healthCheck": {"command": ["CMD-SHELL", "python3 -c \"import urllib.request; urllib.request."
                                        f"urlopen('http://localhost:{Port.GATEWAY}{HEALTH_CHECK_PATH}')\""],
                            "interval": 30, "timeout": 5, "retries": 3, "startPeriod": 60},
            "readonlyRootFilesystem": False,
            "privileged": False,
            "logConfiguration": {"logDriver": "awslogs", "options": {
                "awslogs-group": log_group.name, "awslogs-region": env.region, "awslogs-stream-prefix": "proxy"}},
        }
        task = EcsTaskDefinition(
            self, "task", family=name, network_mode="awsvpc", requires_compatibilities=["FARGATE"],
            cpu=str(cfg.cpu), memory=str(cfg.memory), execution_role_arn=execution_role.arn,
            task_role_arn=task_role.arn, container_definitions=json.dumps([container]),
            runtime_platform=EcsTaskDefinitionRuntimePlatform(operating_system_family="LINUX",
                                                              cpu_architecture="X86_64"))
        skip(task, "CKV_LLM_6", "LiteLLM writes at start-up (rendered config, Prisma engine and migration "
             "files under the home directory), so the root filesystem cannot be read-only.")

        service = EcsService(
            self, "service", name=name, cluster=cluster.id, task_definition=task.arn, desired_count=cfg.capacity.desired,
            platform_version="LATEST",
            capacity_provider_strategy=[EcsServiceCapacityProviderStrategy(
                capacity_provider="FARGATE_SPOT" if cfg.fargate_spot else "FARGATE", weight=1)],
            network_configuration=EcsServiceNetworkConfiguration(
                subnets=network.private_subnet_ids, security_groups=[network.security_group_ids["gateway"]],
                assign_public_ip=False),
            load_balancer=[EcsServiceLoadBalancer(target_group_arn=edge.target_group_arn,
                                                  container_name=CONTAINER, container_port=Port.GATEWAY)],
            health_check_grace_period_seconds=60, deployment_maximum_percent=200,
            deployment_minimum_healthy_percent=100,
            deployment_circuit_breaker=EcsServiceDeploymentCircuitBreaker(enable=True, rollback=True),
            propagate_tags="SERVICE", enable_ecs_managed_tags=True, wait_for_steady_state=False)
        # Autoscaling owns the task count after the first deployment.
        service.add_override("lifecycle.ignore_changes", ["desired_count"])

        self._autoscaling(env, cluster.name, service.name)
        self.outputs = GatewayOutputs(cluster_name=cluster.name, service_name=service.name,
                                      master_key_secret_arn=master_key.arn, log_group_name=log_group.name)

    def _autoscaling(self, env: Environment, cluster_name: str, service_name: str) -> None:
        cfg = env.gateway
        target = AppautoscalingTarget(
            self, "scaling_target", service_namespace="ecs", scalable_dimension="ecs:service:DesiredCount",
            resource_id=f"service/{cluster_name}/{service_name}", min_capacity=cfg.capacity.min,
            max_capacity=cfg.capacity.max)
        for metric, value in (("ECSServiceAverageCPUUtilization", cfg.cpu_target_percent),
                              ("ECSServiceAverageMemoryUtilization", cfg.memory_target_percent)):
            short = "cpu" if "CPU" in metric else "memory"
            AppautoscalingPolicy(
                self, f"scale_on_{short}", name=env.resource_name(f"proxy-{short}"), policy_type="TargetTrackingScaling",
                service_namespace=target.service_namespace, resource_id=target.resource_id,
                scalable_dimension=target.scalable_dimension,
                target_tracking_scaling_policy_configuration=TargetTracking(
                    target_value=value, scale_out_cooldown=60, scale_in_cooldown=300,
                    predefined_metric_specification=PredefinedMetric(predefined_metric_type=metric)))


def _registry_statements(image: str, partition: str) -> list[iam.Statement]:
    """ECR pull rights only when the image comes from ECR (ghcr.io images need none)."""
    registry = image.split("/", 1)[0]
    if ".dkr.ecr." not in registry:
        return []
    account, _, _, region = registry.split(".")[:4]
    repository = image.split("/", 1)[1].split("@")[0].split(":")[0]
    return [
        # GetAuthorizationToken is account-wide: the API admits no narrower resource.
        iam.allow(["ecr:GetAuthorizationToken"], ["*"], sid="EcrToken"),
        iam.allow(["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
                  [f"arn:{partition}:ecr:{region}:{account}:repository/{repository}"], sid="EcrPull"),
    ]

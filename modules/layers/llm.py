"""LLM layer: a self-hosted open model (vLLM) on a GPU Auto Scaling group behind an internal
HTTPS ALB with a private DNS name, scaled on GPU utilization and vLLM's request queue."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cdktn import Fn, Token
from constructs import Construct
from cdktn_provider_aws.autoscaling_group import (
    AutoscalingGroup,
    AutoscalingGroupInitialLifecycleHook,
    AutoscalingGroupInstanceMaintenancePolicy,
    AutoscalingGroupInstanceRefresh,
    AutoscalingGroupInstanceRefreshPreferences,
    AutoscalingGroupLaunchTemplate,
    AutoscalingGroupMixedInstancesPolicy as Mixed,
    AutoscalingGroupMixedInstancesPolicyInstancesDistribution as Distribution,
    AutoscalingGroupMixedInstancesPolicyLaunchTemplate as MixedTemplate,
    AutoscalingGroupMixedInstancesPolicyLaunchTemplateLaunchTemplateSpecification as MixedTemplateSpec,
    AutoscalingGroupMixedInstancesPolicyLaunchTemplateOverride as MixedOverride,
    AutoscalingGroupTag,
    AutoscalingGroupWarmPool,
    AutoscalingGroupWarmPoolInstanceReusePolicy,
)
from cdktn_provider_aws.autoscaling_policy import (
    AutoscalingPolicy,
    AutoscalingPolicyTargetTrackingConfiguration as TargetTracking,
    AutoscalingPolicyTargetTrackingConfigurationCustomizedMetricSpecification as CustomMetric,
    AutoscalingPolicyTargetTrackingConfigurationCustomizedMetricSpecificationMetricDimension as Dimension,
    AutoscalingPolicyTargetTrackingConfigurationPredefinedMetricSpecification as PredefinedMetric,
)
from cdktn_provider_aws.autoscaling_schedule import AutoscalingSchedule
from cdktn_provider_aws.data_aws_ssm_parameter import DataAwsSsmParameter
from cdktn_provider_aws.iam_instance_profile import IamInstanceProfile
from cdktn_provider_aws.iam_role_policy_attachment import IamRolePolicyAttachment
from cdktn_provider_aws.launch_template import (
    LaunchTemplate,
    LaunchTemplateBlockDeviceMappings,
    LaunchTemplateBlockDeviceMappingsEbs,
    LaunchTemplateIamInstanceProfile,
    LaunchTemplateMetadataOptions,
    LaunchTemplateMonitoring,
    LaunchTemplateNetworkInterfaces,
    LaunchTemplateTagSpecifications,
)
from cdktn_provider_aws.lb import Lb, LbAccessLogs
from cdktn_provider_aws.lb_listener import LbListener, LbListenerDefaultAction
from cdktn_provider_aws.lb_target_group import LbTargetGroup, LbTargetGroupHealthCheck, LbTargetGroupStickiness
from cdktn_provider_aws.route53_record import Route53Record, Route53RecordAlias
from cdktn_provider_aws.route53_zone import Route53Zone, Route53ZoneVpc
from cdktn_provider_aws.ssm_parameter import SsmParameter

from modules.parts import iam
from modules.parts.compliance import skip
from modules.config.settings import Identity, LlmSettings
from modules.parts.context import Account, current_account
from modules.layers.edge import TLS_POLICY
from modules.layers.foundation import FoundationOutputs
from modules.parts.gpu_host import HostSettings, packed_user_data
from modules.layers.network import NetworkOutputs, Port
from modules.parts.outputs import publish
from modules.parts.secret import GeneratedSecret
from modules.parts.storage import SecureBucket, encrypted_log_group

# Deep Learning Base OSS Nvidia Driver GPU AMI (Amazon Linux 2023): driver, Docker, NVIDIA
# container toolkit. Read at plan time, so a new AMI shows in the plan and refreshes the group.
AMI_PARAMETER = "/aws/service/deeplearning/ami/x86_64/base-oss-nvidia-driver-gpu-amazon-linux-2023/latest/ami-id"
METRICS_NAMESPACE = "CWAgent"
GPU_METRIC = "nvidia_smi_utilization_gpu"  # CloudWatch agent, aggregated per Auto Scaling group
QUEUE_METRIC = "vllm_num_requests_waiting"  # published by the host's queue-depth timer
STICKINESS_COOKIE = "LlmServiceStickiness"
# A GPU host pulls weights and loads them before /health answers.
HEALTH_GRACE_SECONDS = 900
# Launch lifecycle hook: a host joins the group (and the target group) only when its boot
# script completes this hook with CONTINUE, i.e. once /health answers; ABANDON otherwise.
LAUNCH_HOOK = "model-ready"
# Termination lifecycle hook: the group deregisters a leaving host from the target group (the
# ALB drains it for the deregistration delay), then waits in Terminating:Wait until the host's
# drain watcher completes this hook (in-flight requests done) or the timeout passes.
TERMINATE_HOOK = "drained"
DEREGISTRATION_DELAY_SECONDS = 120
# Spot gives two minutes' notice; a scale-in or refresh waits no longer than this for the
# requests still running after the ALB's deregistration delay.
DRAIN_TIMEOUT_SECONDS = 180


@dataclass(frozen=True)
class LlmOutputs:
    alb_arn_suffix: str
    target_group_arn_suffix: str
    asg_name: str
    endpoint_url: str
    metrics_namespace: str
    api_key_secret_arn: str


def health_check(protocol_version: str) -> LbTargetGroupHealthCheck:
    """vLLM answers GET /health with 200; a gRPC service answers the gRPC health check with 0."""
    grpc = protocol_version == "GRPC"
    return LbTargetGroupHealthCheck(
        enabled=True, protocol="HTTPS", port="traffic-port", interval=30, timeout=10, healthy_threshold=2,
        unhealthy_threshold=3, path="/grpc.health.v1.Health/Check" if grpc else "/health",
        matcher="0" if grpc else "200")


class Llm(Construct):
    """Launch template, Auto Scaling group, internal ALB, private DNS and SSM parameters."""

    def __init__(self, scope: Construct, id: str, *, identity: Identity, settings: LlmSettings, network: NetworkOutputs,
                 foundation: FoundationOutputs) -> None:
        super().__init__(scope, id)
        self._identity, self._settings = identity, settings
        account = current_account(self, identity.region)
        key = foundation.kms_key_arn
        asg_name = identity.resource_name("gpu")  # literal: the user data names it (a reference would loop)
        dns_name = settings.dns_name or ""
        endpoint_url = f"https://{dns_name}/v1"

        weights = SecureBucket(self, "weights", name=f"{identity.resource_name('model-weights')}-{account.id}",
                               kms_key_arn=key, protect_data=identity.protect_stateful, archive_after_days=None,
                               access_log_bucket=foundation.access_log_bucket)
        logs = encrypted_log_group(self, "log_group", name=f"/llm/{identity.resource_name('gpu')}", kms_key_arn=key,
                                   retention_days=identity.log_retention_days,
                                   protect_data=identity.protect_stateful)
        weights_uri = f"s3://{weights.name}/{settings.weights_s3_prefix}" if settings.weights_s3_prefix else None
        # Only callers holding this key are served (vLLM checks it on /v1/*): the GPU hosts read
        # it at boot, the gateway sends it. Generated by Secrets Manager, never in state.
        api_key = GeneratedSecret(self, "api_key", name=f"{identity.project}/{identity.environment}/vllm-api-key",
                                  description=f"API key of the self-hosted model of {identity.environment} (vLLM)",
                                  kms_key_arn=key, protect_data=identity.protect_stateful)

        alb, target_group = self._internal_alb(network, foundation)
        profile = self._instance_profile(account, weights.arn, logs.arn, key, api_key.arn, asg_name,
                                         target_group.arn)
        host = HostSettings(
            aws_region=identity.region, log_group=logs.name, asg_name=asg_name,
            served_model_name=settings.served_model_name,
            max_model_len=settings.max_model_len, vllm_image=settings.vllm_image, weights_s3_uri=weights_uri,
            hf_model_id=settings.hf_model_id, hf_token_secret_arn=settings.hf_token_secret_arn,
            metrics_namespace=METRICS_NAMESPACE, api_key_secret_arn=api_key.arn, lifecycle_hook_name=LAUNCH_HOOK,
            termination_hook_name=TERMINATE_HOOK, target_group_arn=target_group.arn,
            drain_timeout_seconds=DRAIN_TIMEOUT_SECONDS)
        template = self._launch_template(asg_name, host, profile, network, key)

        group = self._group(asg_name, template, network, target_group)
        self._scaling(group)
        self._private_dns(network, alb, dns_name)

        names = self._parameters(network, alb, endpoint_url)

        self.outputs = LlmOutputs(alb_arn_suffix=alb.arn_suffix, target_group_arn_suffix=target_group.arn_suffix,
                                  asg_name=group.name, endpoint_url=endpoint_url, metrics_namespace=METRICS_NAMESPACE,
                                  api_key_secret_arn=api_key.arn)
        publish(self, {
            "model_endpoint_url": (endpoint_url, "OpenAI-compatible base URL of the self-hosted model (private DNS)"),
            "served_model_name": (settings.served_model_name, "Model name to send in requests to the endpoint"),
            "internal_alb_dns_name": (alb.dns_name, "DNS name of the internal model ALB"),
            "asg_name": (group.name, "Auto Scaling group of the GPU hosts"),
            "weights_bucket": (weights.name, "S3 bucket for model weights (upload under the configured prefix)"),
            "log_group_name": (logs.name, "CloudWatch log group of vLLM and the hosts' boot logs"),
            "api_key_secret_arn": (api_key.arn, "Secrets Manager ARN of the model's API key (callers send it)"),
            "ssm_parameter_names": (names, "SSM parameters publishing this environment's ids for consumers"),
        })

    def _instance_profile(self, account: Account, weights_arn: str, log_group_arn: str,
                          key: str, api_key_arn: str, asg_name: str, target_group_arn: str) -> IamInstanceProfile:
        identity = self._identity
        # EC2 sends no aws:SourceAccount when it assumes an instance profile's role.
        role = iam.service_role(self, "instance_role", name=identity.resource_name("gpu-host"),
                                service="ec2.amazonaws.com", source_account=None,
                                statements=self._host_statements(weights_arn, log_group_arn, key, account,
                                                                 api_key_arn, asg_name, target_group_arn))
        IamRolePolicyAttachment(self, "session_manager", role=role.name,
                                policy_arn=f"arn:{account.partition}:iam::aws:policy/AmazonSSMManagedInstanceCore")
        return IamInstanceProfile(self, "instance_profile", name=identity.resource_name("gpu-host"), role=role.name)

    def _launch_template(self, asg_name: str, host: HostSettings,
                         profile: IamInstanceProfile, network: NetworkOutputs, key: str) -> LaunchTemplate:
        identity, settings = self._identity, self._settings
        user_data = packed_user_data(host)
        ami = DataAwsSsmParameter(self, "ami", name=AMI_PARAMETER)
        template = LaunchTemplate(
            self, "launch_template", name=identity.resource_name("gpu"), image_id=ami.insecure_value,
            instance_type=settings.instance_type, update_default_version=True, user_data=Fn.base64encode(user_data),
            iam_instance_profile=LaunchTemplateIamInstanceProfile(arn=profile.arn), ebs_optimized="true",
            monitoring=LaunchTemplateMonitoring(enabled=True),
            # IMDSv2 only, hop limit 1: containers never need the host's credentials (the awslogs
            # driver runs in the Docker daemon, on the host).
            metadata_options=LaunchTemplateMetadataOptions(
                http_endpoint="enabled", http_tokens="required", http_put_response_hop_limit=1,
                instance_metadata_tags="enabled"),
            block_device_mappings=[LaunchTemplateBlockDeviceMappings(
                device_name="/dev/xvda", ebs=LaunchTemplateBlockDeviceMappingsEbs(
                    volume_type="gp3", volume_size=settings.root_volume_gb, iops=settings.root_volume_iops,
                    throughput=settings.root_volume_throughput_mibps, encrypted="true", kms_key_id=key,
                    delete_on_termination="true"))],
            network_interfaces=[LaunchTemplateNetworkInterfaces(
                associate_public_ip_address="false", device_index=0,
                security_groups=[network.security_group_ids["gpu"]])],
            tag_specifications=[LaunchTemplateTagSpecifications(resource_type=t, tags={"Name": asg_name})
                                for t in ("instance", "volume")])
        return template

    def _parameters(self, network: NetworkOutputs, alb: Lb, endpoint_url: str) -> dict[str, str]:
        """This environment's ids in SSM for other teams' Terraform; returns parameter names by suffix."""
        identity = self._identity
        parameters = {
            "vpc-id": network.vpc_id,
            "private-subnet-ids": Fn.join(",", network.private_subnet_ids),
            "gateway-security-group-id": network.security_group_ids["gateway"],
            "lambda-security-group-id": network.security_group_ids["lambda"],
            "llm-alb-security-group-id": network.security_group_ids["llm_alb"],
            "gpu-security-group-id": network.security_group_ids["gpu"],
            "llm-alb-dns-name": alb.dns_name,
            "model-endpoint-url": endpoint_url,
        }
        names = {}
        for suffix, value in parameters.items():
            name = f"/{identity.project}/{identity.environment}/{suffix}"
            parameter = SsmParameter(self, f"parameter_{suffix.replace('-', '_')}", name=name, type="String",
                                     value=value,
                                     description=f"{suffix} of {identity.environment} (for consumers of the platform)")
            skip(parameter, "CKV2_AWS_34", "Identifiers published for other teams' Terraform, not secrets; "
                 "SecureString would make every reader hold kms:Decrypt for public-looking ids.")
            names[suffix] = name
        return names

    def _host_statements(self, weights_arn: str, log_group_arn: str, key: str, account: Account,
                         api_key_arn: str, asg_name: str, target_group_arn: str) -> list[iam.Statement]:
        """Read the weights and the API key, write logs and metrics, pull the image, complete its
        own group's lifecycle hooks, take itself out of its own target group — nothing else."""
        identity, settings = self._identity, self._settings
        # The group's ARN holds a generated id; its name is fixed, so the grant needs no
        # reference to the group (which would wait for the group the hosts boot in).
        group_arn = account.arn("autoscaling", f"autoScalingGroup:*:autoScalingGroupName/{asg_name}")
        statements = [
            iam.allow(["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"],
                      [log_group_arn, f"{log_group_arn}:*"], sid="Logs"),
            iam.allow_unscoped(["cloudwatch:PutMetricData"], sid="Metrics", conditions={
                "StringEquals": {"cloudwatch:namespace": METRICS_NAMESPACE}}),
            # The CloudWatch agent reads the instance's tags for the AutoScalingGroupName dimension.
            iam.allow_unscoped(["ec2:DescribeTags"], sid="AgentDimensions"),
            iam.allow(["autoscaling:CompleteLifecycleAction"], [group_arn], sid="CompleteLaunchHook"),
            # The drain watcher stops admitting at a Spot notice before the group acts on it.
            iam.allow(["elasticloadbalancing:DeregisterTargets"], [target_group_arn], sid="DrainFromTargetGroup"),
            iam.allow(["secretsmanager:GetSecretValue"], [api_key_arn], sid="ModelApiKey"),
            iam.allow(["kms:Decrypt"], [key], sid="DecryptApiKey", conditions={
                "StringEquals": {"kms:ViaService": f"secretsmanager.{identity.region}.amazonaws.com"}}),
        ]
        if settings.weights_s3_prefix:
            statements += [
                iam.allow(["s3:ListBucket"], [weights_arn], sid="ListWeights",
                          conditions={"StringLike": {"s3:prefix": [f"{settings.weights_s3_prefix}*"]}}),
                iam.allow(["s3:GetObject"], [f"{weights_arn}/{settings.weights_s3_prefix}*"], sid="ReadWeights"),
                iam.allow(["kms:Decrypt"], [key], sid="DecryptWeights", conditions={
                    "StringEquals": {"kms:ViaService": f"s3.{identity.region}.amazonaws.com"}}),
            ]
        if settings.hf_token_secret_arn:
            statements.append(iam.allow(["secretsmanager:GetSecretValue"], [settings.hf_token_secret_arn],
                                        sid="HuggingFaceToken"))
        statements += iam.registry_pull_statements(settings.vllm_image, account.partition)
        return statements

    def _internal_alb(self, network: NetworkOutputs,
                      foundation: FoundationOutputs) -> tuple[Lb, LbTargetGroup]:
        identity, settings = self._identity, self._settings
        alb = Lb(self, "alb", name=identity.resource_name("llm"), internal=True, load_balancer_type="application",
                 security_groups=[network.security_group_ids["llm_alb"]], subnets=network.private_subnet_ids,
                 drop_invalid_header_fields=True, idle_timeout=settings.idle_timeout_seconds,
                 enable_deletion_protection=identity.protect_stateful, desync_mitigation_mode="defensive",
                 access_logs=LbAccessLogs(bucket=foundation.alb_log_bucket, prefix="llm-alb", enabled=True))
        if not identity.protect_stateful:
            skip(alb, "CKV_AWS_150", "Disposable environment (protect_stateful = false): the ALB is rebuilt "
                 "with the environment, so deletion protection would only block teardown.")
        target_group = LbTargetGroup(
            self, "target_group", name=identity.resource_name("llm"), target_type="instance", port=Port.GPU_SERVICE,
            protocol="HTTPS", protocol_version=settings.protocol_version, vpc_id=network.vpc_id,
            deregistration_delay=str(DEREGISTRATION_DELAY_SECONDS), health_check=health_check(settings.protocol_version),
            stickiness=LbTargetGroupStickiness(type="app_cookie", cookie_name=STICKINESS_COOKIE,
                                               cookie_duration=900, enabled=True))
        # A certificate for the private name (validated in config): LiteLLM verifies it.
        LbListener(self, "https_listener", load_balancer_arn=alb.arn, port=Port.HTTPS, protocol="HTTPS",
                   ssl_policy=TLS_POLICY, certificate_arn=settings.certificate_arn,
                   default_action=[LbListenerDefaultAction(type="forward", target_group_arn=target_group.arn)])
        return alb, target_group

    def _group(self, name: str, template: LaunchTemplate, network: NetworkOutputs,
               target_group: LbTargetGroup) -> AutoscalingGroup:
        settings = self._settings
        # A pinned version: instance refresh never starts (and cannot roll back) with $Latest.
        version = Token.as_string(template.latest_version)
        options: dict[str, Any] = {}
        if settings.warm_pool_size:
            # Warm pools exclude mixed instances policies: on-demand, one type (validated).
            options["launch_template"] = AutoscalingGroupLaunchTemplate(id=template.id, version=version)
            # Stopped, not Running or Hibernated: leaving the pool is then a boot, on which
            # gpu-host-boot.service starts vLLM and completes the launch hook again.
            options["warm_pool"] = AutoscalingGroupWarmPool(
                pool_state="Stopped", min_size=settings.warm_pool_size,
                instance_reuse_policy=AutoscalingGroupWarmPoolInstanceReusePolicy(reuse_on_scale_in=True))
        else:
            options["mixed_instances_policy"] = Mixed(
                instances_distribution=Distribution(
                    on_demand_base_capacity=settings.on_demand_base,
                    on_demand_percentage_above_base_capacity=settings.on_demand_percentage_above_base_capacity,
                                                    spot_allocation_strategy="capacity-optimized"),
                launch_template=MixedTemplate(
                    launch_template_specification=MixedTemplateSpec(launch_template_id=template.id, version=version),
                    override=[MixedOverride(instance_type=t) for t in (settings.instance_type,
                                                                       *settings.spot_instance_types)]))
            options["capacity_rebalance"] = True  # replace Spot hosts before their interruption
        group = AutoscalingGroup(
            self, "group", name=name, vpc_zone_identifier=network.private_subnet_ids,
            min_size=settings.capacity.min, max_size=settings.capacity.max, desired_capacity=settings.capacity.desired,
            health_check_type="ELB", health_check_grace_period=HEALTH_GRACE_SECONDS, default_instance_warmup=300,
            target_group_arns=[target_group.arn],
            enabled_metrics=["GroupDesiredCapacity", "GroupInServiceInstances", "GroupMaxSize", "GroupMinSize",
                             "GroupPendingInstances", "GroupTotalInstances"],
            # Created with the group, so even its first hosts wait in Pending:Wait (and warm-pool
            # hosts in Warmed:Pending:Wait) until the boot script completes the hook.
            initial_lifecycle_hook=[AutoscalingGroupInitialLifecycleHook(
                name=LAUNCH_HOOK, lifecycle_transition="autoscaling:EC2_INSTANCE_LAUNCHING",
                default_result="ABANDON", heartbeat_timeout=settings.launch_timeout_seconds),
                # CONTINUE on timeout: a host that cannot drain (hung, or gone) still terminates.
                AutoscalingGroupInitialLifecycleHook(
                    name=TERMINATE_HOOK, lifecycle_transition="autoscaling:EC2_INSTANCE_TERMINATING",
                    default_result="CONTINUE", heartbeat_timeout=DRAIN_TIMEOUT_SECONDS + 30)],
            # Health replacements and rebalancing launch the new host (and pass its launch hook)
            # before the old one terminates: capacity never drops below the desired count.
            instance_maintenance_policy=AutoscalingGroupInstanceMaintenancePolicy(
                min_healthy_percentage=100, max_healthy_percentage=200),
            # Apply does not wait for hosts to come in service (weights, image and model take up
            # to the hook's timeout; a failed boot must not fail or hang the apply).
            wait_for_capacity_timeout="0",
            # A changed launch template rolls through the group; replacements launch (and pass
            # the hook) before old hosts terminate, so even a single host is never gone.
            instance_refresh=AutoscalingGroupInstanceRefresh(strategy="Rolling", preferences=(
                AutoscalingGroupInstanceRefreshPreferences(
                    min_healthy_percentage=100, max_healthy_percentage=200, auto_rollback=True,
                    instance_warmup=str(HEALTH_GRACE_SECONDS)))),
            tag=[AutoscalingGroupTag(key="Name", value=name, propagate_at_launch=True)], **options)
        # Scaling policies own the desired count after creation; with scheduled scaling the
        # schedules own the minimum too (an apply at night must not relaunch hosts).
        ignored = ["desired_capacity", "min_size"] if settings.scheduled_scaling else ["desired_capacity"]
        group.add_override("lifecycle.ignore_changes", ignored)
        return group

    def _scaling(self, group: AutoscalingGroup) -> None:
        """GPU utilization is the primary signal; vLLM's waiting requests catch a saturated
        batch before utilization shows it; CPU 70 % (the original figure) is a backstop."""
        identity, settings = self._identity, self._settings
        def per_group(metric: str) -> CustomMetric:
            return CustomMetric(namespace=METRICS_NAMESPACE, metric_name=metric, statistic="Average",
                                metric_dimension=[Dimension(name="AutoScalingGroupName", value=group.name)])

        for short, target, spec in (
                ("gpu", settings.gpu_target_percent, {"customized_metric_specification": per_group(GPU_METRIC)}),
                ("queue", settings.queue_target_per_instance,
                 {"customized_metric_specification": per_group(QUEUE_METRIC)}),
                ("cpu", settings.cpu_target_percent, {"predefined_metric_specification": PredefinedMetric(
                    predefined_metric_type="ASGAverageCPUUtilization")})):
            AutoscalingPolicy(self, f"scale_on_{short}", name=identity.resource_name(f"gpu-{short}"),
                              autoscaling_group_name=group.name, policy_type="TargetTrackingScaling",
                              estimated_instance_warmup=HEALTH_GRACE_SECONDS,
                              target_tracking_configuration=TargetTracking(target_value=target, **spec))
        if settings.scheduled_scaling:
            # Down to zero, then back to exactly the configured capacity (min >= 1, validated).
            AutoscalingSchedule(self, "scale_down", scheduled_action_name=identity.resource_name("gpu-down"),
                                autoscaling_group_name=group.name, recurrence=f"0 {settings.scale_down_hour} * * *",
                                time_zone=settings.schedule_time_zone, min_size=0, max_size=settings.capacity.max,
                                desired_capacity=0)
            AutoscalingSchedule(self, "scale_up", scheduled_action_name=identity.resource_name("gpu-up"),
                                autoscaling_group_name=group.name, recurrence=f"0 {settings.scale_up_hour} * * *",
                                time_zone=settings.schedule_time_zone, min_size=settings.capacity.min,
                                max_size=settings.capacity.max, desired_capacity=settings.capacity.desired)

    def _private_dns(self, network: NetworkOutputs, alb: Lb, dns_name: str) -> None:
        identity = self._identity
        zone = Route53Zone(self, "private_zone", name=dns_name.split(".", 1)[1],
                           comment=f"Private names of {identity.environment}",
                           vpc=[Route53ZoneVpc(vpc_id=network.vpc_id)])
        Route53Record(self, "model_record", zone_id=zone.zone_id, name=dns_name, type="A",
                      alias=Route53RecordAlias(name=alb.dns_name, zone_id=alb.zone_id, evaluate_target_health=True))

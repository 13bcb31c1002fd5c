"""LLM-1…LLM-5: the GPU tier — launch template, group, scaling, internal ALB, private DNS, SSM."""

from __future__ import annotations

import base64
import gzip
import json
import re
import subprocess
from pathlib import Path

import pytest

from cdktn import App

from conftest import ENVIRONMENTS, Stack
from modules.config import Environment, load_environment
from modules.layers.foundation import Foundation
from modules.parts.gpu_host import SCRIPT
from modules.config.settings import Identity, settings_for
from modules.layers.llm import AMI_PARAMETER, DRAIN_TIMEOUT_SECONDS, LAUNCH_HOOK, TERMINATE_HOOK, Llm
from modules.layers.network import Network
from modules.engine.stacks import APP_CONTEXT, LayerStack


@pytest.fixture(params=ENVIRONMENTS)
def llm(request, stacks) -> Stack:
    return stacks[f"{request.param}-llm"]


def synth_llm(env: Environment, outdir: Path) -> Stack:
    """Only the stacks the llm layer reads (foundation, network) and the llm stack itself."""
    app = App(outdir=str(outdir), context=APP_CONTEXT)
    identity = Identity.of(env)
    foundation = Foundation(LayerStack(app, env, "foundation"), "foundation", identity=identity,
                            settings=settings_for(env, "foundation"))
    network = Network(LayerStack(app, env, "network"), "network", identity=identity,
                      settings=settings_for(env, "network"), kms_key_arn=foundation.outputs.kms_key_arn)
    Llm(LayerStack(app, env, "llm"), "llm", identity=identity, settings=settings_for(env, "llm"),
        network=network.outputs, foundation=foundation.outputs)
    app.synth()
    name = f"{env.name}-llm"
    return Stack(name, json.loads((outdir / "stacks" / name / "cdk.tf.json").read_text()))


def with_llm(env: Environment, **changes) -> Environment:
    return env.model_copy(update={"llm": env.llm.model_copy(update=changes)})


def user_data(stack: Stack) -> str:
    """The user data as the instance receives it (Terraform's base64encode undone, tokens kept)."""
    raw = stack.one("aws_launch_template")["user_data"]
    assert raw.startswith('${base64encode("') and raw.endswith('")}')
    return json.loads(raw[len("${base64encode("):-len(")}")])


def test_launch_template_is_locked_down(llm: Stack) -> None:
    template = llm.one("aws_launch_template")
    env = load_environment(llm.name.removesuffix("-llm"))
    assert template["instance_type"] == env.llm.instance_type
    assert template["image_id"].startswith(
        "${data.aws_ssm_parameter.")
    (ami,) = llm.doc["data"]["aws_ssm_parameter"].values()
    assert ami["name"] == AMI_PARAMETER  # Deep Learning Base GPU AMI, never a hard-coded id
    assert template["metadata_options"] == {"http_endpoint": "enabled", "http_tokens": "required",
                                            "http_put_response_hop_limit": 1, "instance_metadata_tags": "enabled"}
    (disk,) = template["block_device_mappings"]
    assert disk["ebs"]["volume_type"] == "gp3" and disk["ebs"]["encrypted"] == "true"
    assert disk["ebs"]["volume_size"] == env.llm.root_volume_gb >= env.llm.model_size_gb + 30
    # above gp3's 3,000 IOPS / 125 MiB/s baseline: the weights copy is the boot's long pole
    assert (disk["ebs"]["iops"], disk["ebs"]["throughput"]) == (
        env.llm.root_volume_iops, env.llm.root_volume_throughput_mibps)
    assert disk["ebs"]["throughput"] > 125 and disk["ebs"]["iops"] >= 4 * disk["ebs"]["throughput"]
    assert "foundation" in disk["ebs"]["kms_key_id"]
    (nic,) = template["network_interfaces"]
    assert nic["associate_public_ip_address"] == "false" and "gpu_security_group" in nic["security_groups"][0]
    assert template["monitoring"] == {"enabled": True}


def test_user_data_carries_the_tested_boot_script_byte_for_byte(llm: Stack, tmp_path: Path) -> None:
    text = user_data(llm)
    env = load_environment(llm.name.removesuffix("-llm"))
    assert f"export SERVED_MODEL_NAME={env.llm.served_model_name}\n" in text
    assert f"export MAX_MODEL_LEN={env.llm.max_model_len}\n" in text
    assert re.search(r"export WEIGHTS_S3_URI='s3://\$\{aws_s3_bucket\.llm_weights_bucket_\w+\.id\}/models/", text)
    packed = text.split("<<'PACKED' | gunzip > /usr/local/sbin/gpu-host-boot.sh\n")[1].split("\nPACKED\n")[0]
    assert gzip.decompress(base64.b64decode(packed)) == SCRIPT.read_bytes()
    assert len(text.encode()) < 16 * 1024  # EC2's user-data limit
    # the wrapper itself is valid shell (tokens stand in for their values)
    script = tmp_path / "user-data.sh"
    script.write_text(re.sub(r"\$\{[^}]+\}", "token", text))
    subprocess.run(["bash", "-n", str(script)], check=True)
    subprocess.run(["shellcheck", "--severity=style", str(script)], check=True)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_group_spans_every_private_subnet_with_spot_depth(stacks, env) -> None:
    stack = stacks[f"{env}-llm"]
    group = stack.one("aws_autoscaling_group")
    config = load_environment(env)
    capacity = config.llm.capacity
    assert len(group["vpc_zone_identifier"]) == len(config.network.availability_zones)
    assert all("private_subnet" in s for s in group["vpc_zone_identifier"])
    assert (group["min_size"], group["desired_capacity"], group["max_size"]) == (capacity.min, capacity.desired,
                                                                                 capacity.max)
    assert group["health_check_type"] == "ELB" and group["health_check_grace_period"] >= 600
    policy = group["mixed_instances_policy"]
    above_base = config.llm.on_demand_percentage_above_base_capacity
    assert policy["instances_distribution"] == {"on_demand_base_capacity": config.llm.on_demand_base,
                                                "on_demand_percentage_above_base_capacity": above_base,
                                                "spot_allocation_strategy": "capacity-optimized"}
    assert [o["instance_type"] for o in policy["launch_template"]["override"]] == [
        config.llm.instance_type, *config.llm.spot_instance_types]
    assert group["instance_refresh"]["strategy"] == "Rolling"
    # with scheduled scaling the schedules own the minimum too
    ignored = ["desired_capacity", "min_size"] if config.llm.scheduled_scaling else ["desired_capacity"]
    assert group["lifecycle"]["ignore_changes"] == ignored


def _template_versions(group: dict) -> list[str]:
    if "launch_template" in group:
        return [group["launch_template"]["version"]]
    return [group["mixed_instances_policy"]["launch_template"]["launch_template_specification"]["version"]]


def test_instance_refresh_runs_on_a_pinned_template_version_launching_before_terminating(llm: Stack) -> None:
    """FACT-3: a refresh never starts, and cannot roll back, with $Latest or $Default."""
    group = llm.one("aws_autoscaling_group")
    (template_id,) = llm.resources("aws_launch_template")
    assert _template_versions(group) == [f"${{aws_launch_template.{template_id}.latest_version}}"]
    preferences = group["instance_refresh"]["preferences"]
    assert preferences["auto_rollback"] is True
    # one host (dev, prod at night) is replaced by launching its successor first
    assert preferences["min_healthy_percentage"] == 100 and preferences["max_healthy_percentage"] > 100


def test_hosts_join_the_group_only_through_the_launch_hook(llm: Stack) -> None:
    """FACT-4: a launch hook, created with the group, completed by the boot script."""
    env = load_environment(llm.name.removesuffix("-llm"))
    group = llm.one("aws_autoscaling_group")
    assert group["initial_lifecycle_hook"][0] == {
        "name": LAUNCH_HOOK, "lifecycle_transition": "autoscaling:EC2_INSTANCE_LAUNCHING",
        "default_result": "ABANDON", "heartbeat_timeout": env.llm.launch_timeout_seconds}
    assert env.llm.launch_timeout_seconds > 900  # weights and image, then up to 900 s of model load
    assert group["wait_for_capacity_timeout"] == "0"  # apply never waits on the hook
    text = user_data(llm)
    assert f"export LIFECYCLE_HOOK_NAME={LAUNCH_HOOK}\n" in text
    assert f"export ASG_NAME={group['name']}\n" in text
    (policy,) = llm.resources("aws_iam_role_policy").values()
    statement = next(s for s in json.loads(policy["policy"])["Statement"] if s["Sid"] == "CompleteLaunchHook")
    assert statement["Action"] == ["autoscaling:CompleteLifecycleAction"]
    (resource,) = statement["Resource"]
    assert resource.endswith(f":autoScalingGroup:*:autoScalingGroupName/{group['name']}")
    assert f":autoscaling:{env.region}:" in resource


def test_a_warm_pool_group_pins_its_template_and_keeps_the_hook(tmp_path: Path) -> None:
    env = with_llm(load_environment("prod"), warm_pool_size=1, spot_instance_types=[], on_demand_base=4)
    stack = synth_llm(env, tmp_path)
    group = stack.one("aws_autoscaling_group")
    assert "mixed_instances_policy" not in group and group["warm_pool"]["min_size"] == 1
    (template_id,) = stack.resources("aws_launch_template")
    assert group["launch_template"]["version"] == f"${{aws_launch_template.{template_id}.latest_version}}"
    assert group["initial_lifecycle_hook"][0]["name"] == LAUNCH_HOOK


def test_scaling_on_gpu_utilization_queue_depth_and_cpu(llm: Stack) -> None:
    policies = {p["name"].rsplit("-", 1)[1]: p["target_tracking_configuration"]
                for p in llm.resources("aws_autoscaling_policy").values()}
    assert set(policies) == {"gpu", "queue", "cpu"}
    gpu = policies["gpu"]["customized_metric_specification"]
    assert (gpu["namespace"], gpu["metric_name"], gpu["statistic"]) == ("CWAgent", "nvidia_smi_utilization_gpu",
                                                                        "Average")
    assert gpu["metric_dimension"][0]["name"] == "AutoScalingGroupName"
    assert policies["gpu"]["target_value"] == 70
    assert policies["queue"]["customized_metric_specification"]["metric_name"] == "vllm_num_requests_waiting"
    assert policies["cpu"]["predefined_metric_specification"]["predefined_metric_type"] == "ASGAverageCPUUtilization"
    assert policies["cpu"]["target_value"] == 70


def _schedules(stack: Stack) -> tuple[dict, dict]:
    schedules = {s["scheduled_action_name"].rsplit("-", 1)[1]: s
                 for s in stack.resources("aws_autoscaling_schedule").values()}
    return schedules["down"], schedules["up"]


def test_dev_scales_down_at_six_and_up_at_fifteen_utc_back_to_its_configured_capacity(stacks) -> None:
    down, up = _schedules(stacks["dev-llm"])
    capacity = load_environment("dev").llm.capacity
    assert (down["recurrence"], down["time_zone"], down["desired_capacity"], down["min_size"]) == (
        "0 6 * * *", "Etc/UTC", 0, 0)
    # the morning restores exactly the configured capacity: no minimum of its own
    assert (up["recurrence"], up["time_zone"]) == ("0 15 * * *", "Etc/UTC")
    assert (up["min_size"], up["desired_capacity"], up["max_size"]) == (capacity.min, capacity.desired, capacity.max)
    assert not stacks["prod-llm"].resources("aws_autoscaling_schedule")


def test_schedule_hours_and_time_zone_come_from_the_environment(tmp_path: Path) -> None:
    env = with_llm(load_environment("dev"), scale_down_hour=19, scale_up_hour=7, schedule_time_zone="Europe/London",
                   capacity=load_environment("dev").llm.capacity.model_copy(update={"max": 3, "desired": 2}))
    down, up = _schedules(synth_llm(env, tmp_path))
    assert (down["recurrence"], down["time_zone"]) == ("0 19 * * *", "Europe/London")
    assert (up["recurrence"], up["time_zone"]) == ("0 7 * * *", "Europe/London")
    assert (up["min_size"], up["desired_capacity"], up["max_size"]) == (1, 2, 3)


def test_internal_alb_and_target_group(llm: Stack) -> None:
    alb = llm.one("aws_lb")
    assert alb["internal"] is True and all("private_subnet" in s for s in alb["subnets"])
    assert "llm_alb_security_group" in alb["security_groups"][0]
    listener = llm.one("aws_lb_listener")
    assert (listener["port"], listener["protocol"], listener["ssl_policy"]) == (
        443, "HTTPS", "ELBSecurityPolicy-TLS13-1-2-2021-06")
    # the private name's own certificate, never the public edge one (it does not cover the name)
    env = load_environment(llm.name.removesuffix("-llm"))
    assert listener["certificate_arn"] == env.llm.certificate_arn != env.edge.certificate_arn
    group = llm.one("aws_lb_target_group")
    assert (group["port"], group["protocol"], group["protocol_version"]) == (50051, "HTTPS", "HTTP1")
    assert group["health_check"]["path"] == "/health" and group["health_check"]["matcher"] == "200"
    assert group["stickiness"] == {"type": "app_cookie", "cookie_name": "LlmServiceStickiness",
                                   "cookie_duration": 900, "enabled": True}
    assert group["deregistration_delay"] == "120"


def test_a_grpc_model_service_gets_the_grpc_matcher(tmp_path: Path) -> None:
    stack = synth_llm(with_llm(load_environment("dev"), protocol_version="GRPC"), tmp_path)
    group = stack.one("aws_lb_target_group")
    assert group["protocol_version"] == "GRPC" and group["health_check"]["matcher"] == "0"  # API default is 12


def test_private_name_resolves_to_the_internal_alb(llm: Stack) -> None:
    env = load_environment(llm.name.removesuffix("-llm"))
    zone = llm.one("aws_route53_zone")
    assert zone["name"] == env.llm.dns_name.split(".", 1)[1] and "vpc_id" in zone["vpc"][0]
    record = llm.one("aws_route53_record")
    assert record["name"] == env.llm.dns_name and record["type"] == "A"
    assert record["alias"]["name"].startswith("${aws_lb.")
    assert llm.doc["output"]["model_endpoint_url"]["value"] == f"https://{env.llm.dns_name}/v1"


def test_ssm_parameters_publish_ids_for_plain_terraform_consumers(llm: Stack) -> None:
    env = llm.name.removesuffix("-llm")
    names = {p["name"] for p in llm.resources("aws_ssm_parameter").values()}
    assert names == {f"/llmlite/{env}/{suffix}" for suffix in (
        "vpc-id", "private-subnet-ids", "gateway-security-group-id", "lambda-security-group-id",
        "llm-alb-security-group-id", "gpu-security-group-id", "llm-alb-dns-name", "model-endpoint-url")}


def test_host_role_reads_only_its_weights_prefix(stacks) -> None:
    stack = stacks["prod-llm"]
    (policy,) = stack.resources("aws_iam_role_policy").values()
    statements = {s["Sid"]: s for s in json.loads(policy["policy"])["Statement"]}
    assert set(statements) == {"Logs", "Metrics", "AgentDimensions", "ListWeights", "ReadWeights", "DecryptWeights",
                               "CompleteLaunchHook", "ModelApiKey", "DecryptApiKey", "DrainFromTargetGroup",
                               "EcrToken", "EcrPull", "EcrPullThroughCache"}
    (target_group,) = stack.resources("aws_lb_target_group")
    assert statements["DrainFromTargetGroup"] == {  # its own target group, nothing else
        "Sid": "DrainFromTargetGroup", "Effect": "Allow", "Action": ["elasticloadbalancing:DeregisterTargets"],
        "Resource": [stack.ref("aws_lb_target_group", target_group, "arn")]}
    assert statements["EcrPullThroughCache"]["Resource"][0].endswith(
        ":ecr:eu-west-2:111122223333:repository/docker-hub/vllm/vllm-openai")
    assert statements["ReadWeights"]["Resource"][0].endswith("/models/deepseek-r1-distill-qwen-7b/*")
    assert statements["ListWeights"]["Condition"] == {"StringLike": {"s3:prefix": [
        "models/deepseek-r1-distill-qwen-7b/*"]}}
    assert statements["Metrics"]["Condition"] == {"StringEquals": {"cloudwatch:namespace": "CWAgent"}}
    (attachment,) = stack.resources("aws_iam_role_policy_attachment").values()
    assert attachment["policy_arn"].endswith(":iam::aws:policy/AmazonSSMManagedInstanceCore")


def test_the_model_api_key_is_generated_into_secrets_manager_and_never_into_state(llm: Stack) -> None:
    (secret_id, secret), = llm.resources("aws_secretsmanager_secret").items()
    env = llm.name.removesuffix("-llm")
    assert secret["name"] == f"llmlite/{env}/vllm-api-key" and "foundation" in secret["kms_key_id"]
    version = llm.one("aws_secretsmanager_secret_version")
    assert "secret_string" not in version  # write-only: the value never reaches state
    assert version["secret_string_wo"].startswith("${ephemeral.aws_secretsmanager_random_password.")
    arn = f"${{aws_secretsmanager_secret.{secret_id}.arn}}"
    # the host reads exactly this secret, decrypting only through Secrets Manager
    assert f"export API_KEY_SECRET_ARN='{arn}'\n" in user_data(llm)
    (policy,) = llm.resources("aws_iam_role_policy").values()
    statements = {s["Sid"]: s for s in json.loads(policy["policy"])["Statement"]}
    assert statements["ModelApiKey"]["Resource"] == [arn]
    assert statements["DecryptApiKey"]["Condition"] == {"StringEquals": {
        "kms:ViaService": f"secretsmanager.{load_environment(env).region}.amazonaws.com"}}
    assert llm.doc["output"]["api_key_secret_arn"]["value"] == arn


def test_leaving_hosts_drain_through_a_termination_hook_completed_by_the_host(llm: Stack) -> None:
    """A Spot interruption, scale-in or refresh: the group deregisters the host (the ALB drains it
    for the deregistration delay), then waits for the host's watcher to complete this hook."""
    group = llm.one("aws_autoscaling_group")
    hook = group["initial_lifecycle_hook"][1]
    assert hook == {"name": TERMINATE_HOOK, "lifecycle_transition": "autoscaling:EC2_INSTANCE_TERMINATING",
                    "default_result": "CONTINUE", "heartbeat_timeout": DRAIN_TIMEOUT_SECONDS + 30}
    text = user_data(llm)
    (target_group,) = llm.resources("aws_lb_target_group")
    assert f"export TERMINATION_HOOK_NAME={TERMINATE_HOOK}\n" in text
    assert f"export TARGET_GROUP_ARN='${{aws_lb_target_group.{target_group}.arn}}'\n" in text
    assert f"export DRAIN_TIMEOUT_SECONDS={DRAIN_TIMEOUT_SECONDS}\n" in text
    # The watcher's wait fits inside a Spot notice's two minutes plus the ALB's own drain.
    assert llm.one("aws_lb_target_group")["deregistration_delay"] == "120"


def test_replacements_launch_before_the_host_they_replace_terminates(llm: Stack) -> None:
    """Instance maintenance policy: health replacements and rebalancing keep 100 % healthy."""
    policy = llm.one("aws_autoscaling_group")["instance_maintenance_policy"]
    assert policy == {"min_healthy_percentage": 100, "max_healthy_percentage": 200}

"""LLM-1…LLM-5: the GPU tier — launch template, group, scaling, internal ALB, private DNS, SSM."""

from __future__ import annotations

import base64
import gzip
import json
import re
import subprocess
from pathlib import Path

import pytest

from conftest import ENVIRONMENTS, Stack
from modules.app import build_app
from modules.config import load_environment
from modules.gpu_host import SCRIPT
from modules.llm import AMI_PARAMETER


@pytest.fixture(params=ENVIRONMENTS)
def llm(request, stacks) -> Stack:
    return stacks[f"{request.param}-llm"]


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


@pytest.mark.parametrize("env,minimum,desired,maximum,base", [("dev", 0, 0, 1, 0), ("prod", 1, 1, 4, 1),
                                                             ("prod-us", 1, 2, 6, 1)])
def test_group_spans_every_private_subnet_with_spot_depth(stacks, env, minimum, desired, maximum, base) -> None:
    stack = stacks[f"{env}-llm"]
    group = stack.one("aws_autoscaling_group")
    config = load_environment(env)
    assert len(group["vpc_zone_identifier"]) == len(config.network.availability_zones)
    assert all("private_subnet" in s for s in group["vpc_zone_identifier"])
    assert (group["min_size"], group["desired_capacity"], group["max_size"]) == (minimum, desired, maximum)
    assert group["health_check_type"] == "ELB" and group["health_check_grace_period"] >= 600
    policy = group["mixed_instances_policy"]
    assert policy["instances_distribution"] == {"on_demand_base_capacity": base,
                                                "on_demand_percentage_above_base_capacity": 0,
                                                "spot_allocation_strategy": "capacity-optimized"}
    assert [o["instance_type"] for o in policy["launch_template"]["override"]] == [
        config.llm.instance_type, *config.llm.spot_instance_types]
    assert group["instance_refresh"]["strategy"] == "Rolling"
    assert group["lifecycle"]["ignore_changes"] == ["desired_capacity"]


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


def test_dev_scales_down_at_six_and_up_at_fifteen_utc(stacks) -> None:
    schedules = {s["scheduled_action_name"]: s for s in stacks["dev-llm"].resources("aws_autoscaling_schedule").values()}
    down, up = schedules["llmlite-dev-gpu-down"], schedules["llmlite-dev-gpu-up"]
    assert (down["recurrence"], down["time_zone"], down["desired_capacity"], down["min_size"]) == (
        "0 6 * * *", "Etc/UTC", 0, 0)
    assert (up["recurrence"], up["desired_capacity"]) == ("0 15 * * *", 1)
    assert not stacks["prod-llm"].resources("aws_autoscaling_schedule")


def test_internal_alb_and_target_group(llm: Stack) -> None:
    alb = llm.one("aws_lb")
    assert alb["internal"] is True and all("private_subnet" in s for s in alb["subnets"])
    assert "llm_alb_security_group" in alb["security_groups"][0]
    listener = llm.one("aws_lb_listener")
    assert (listener["port"], listener["protocol"], listener["ssl_policy"]) == (
        443, "HTTPS", "ELBSecurityPolicy-TLS13-1-2-2021-06")
    assert listener["certificate_arn"].startswith("arn:aws:acm:")
    group = llm.one("aws_lb_target_group")
    assert (group["port"], group["protocol"], group["protocol_version"]) == (50051, "HTTPS", "HTTP1")
    assert group["health_check"]["path"] == "/health" and group["health_check"]["matcher"] == "200"
    assert group["stickiness"] == {"type": "app_cookie", "cookie_name": "LlmServiceStickiness",
                                   "cookie_duration": 900, "enabled": True}
    assert group["deregistration_delay"] == "120"


def test_a_grpc_model_service_gets_the_grpc_matcher(tmp_path: Path) -> None:
    env = load_environment("dev")
    env = env.model_copy(update={"llm": env.llm.model_copy(update={"protocol_version": "GRPC"})})
    build_app([env], outdir=str(tmp_path)).synth()
    stack = Stack("dev-llm", json.loads((tmp_path / "stacks" / "dev-llm" / "cdk.tf.json").read_text()))
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
    assert set(statements) == {"Logs", "Metrics", "AgentDimensions", "ListWeights", "ReadWeights", "DecryptWeights"}
    assert statements["ReadWeights"]["Resource"][0].endswith("/models/deepseek-r1-distill-qwen-7b/*")
    assert statements["ListWeights"]["Condition"] == {"StringLike": {"s3:prefix": [
        "models/deepseek-r1-distill-qwen-7b/*"]}}
    assert statements["Metrics"]["Condition"] == {"StringEquals": {"cloudwatch:namespace": "CWAgent"}}
    (attachment,) = stack.resources("aws_iam_role_policy_attachment").values()
    assert attachment["policy_arn"].endswith(":iam::aws:policy/AmazonSSMManagedInstanceCore")

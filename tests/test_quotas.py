"""The Service Quotas preflight against a stubbed Service Quotas client (botocore's Stubber:
real request validation, canned answers). moto cannot stand in: its service-quotas backend
answers GetServiceQuota only for the "vpc" service code (moto/servicequotas/models.py) and
raises NoSuchResource for ec2, fargate and lambda."""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber

from modules.config import load_environment
from modules.tools.quotas import gpu_hosts, main, needs, shortfalls, vcpus


def quota(service: str, code: str, value: float) -> dict:
    return {"Quota": {"ServiceCode": service, "QuotaCode": code, "Value": value}}


def stubbed():
    """A Service Quotas client and its Stubber (answers are added per test, in asking order)."""
    client = boto3.client("service-quotas", region_name="eu-west-2", aws_access_key_id="x",
                          aws_secret_access_key="x")
    return client, Stubber(client)


def expect(stubber: Stubber, env_name: str, values: dict[str, float | None], defaults: dict[str, float]) -> None:
    """GetServiceQuota answers `values`; None: never applied (NoSuchResource), then the default."""
    for need in needs(load_environment(env_name)):
        params = {"ServiceCode": need.service, "QuotaCode": need.code}
        value = values[need.code]
        if value is None:
            stubber.add_client_error("get_service_quota", "NoSuchResourceException", expected_params=params)
            stubber.add_response("get_aws_default_service_quota",
                                 quota(need.service, need.code, defaults[need.code]), params)
        else:
            stubber.add_response("get_service_quota", quota(need.service, need.code, value), params)


def test_vcpus_of_the_gpu_sizes_the_platform_uses() -> None:
    # EC2 accelerated computing instance types: xlarge 4 vCPUs, 2xlarge 8, 12xlarge 48.
    assert [vcpus(t) for t in ("g5.xlarge", "g6.2xlarge", "g6e.xlarge", "g5.12xlarge")] == [4, 8, 4, 48]
    with pytest.raises(ValueError, match="no vCPU count"):
        vcpus("g4dn.metal")


def test_prod_needs_what_its_group_gateway_and_worker_can_reach() -> None:
    env = load_environment("prod")  # GPU max 4, base 1, 50 % above on-demand; 8 vCPU alternatives
    assert gpu_hosts(env) == (3, 1)  # 1 + ceil(3 × 50 %) on-demand, the rest Spot
    amounts = {n.code: n.amount for n in needs(env)}
    assert amounts == {"L-DB2E81BA": 3 * 8 * 2, "L-3819A6DF": 1 * 8 * 2, "L-3032A538": 5 * 1 * 2,
                       "L-B99A9384": 10 + 100}


def test_dev_runs_the_gateway_on_fargate_spot_and_the_gpu_host_on_spot() -> None:
    env = load_environment("dev")
    assert gpu_hosts(env) == (0, 1)
    assert {n.code for n in needs(env)} == {"L-3819A6DF", "L-DB2E81BA", "L-36FBB829", "L-B99A9384"}


def test_enough_quota_passes_and_an_unapplied_quota_reads_the_aws_default(capsys) -> None:
    client, stubber = stubbed()
    expect(stubber, "prod", {"L-DB2E81BA": 64, "L-3819A6DF": None, "L-3032A538": 4000, "L-B99A9384": 1000},
           {"L-3819A6DF": 32})
    with stubber:
        assert main(["prod"], client_for=lambda region: client) == 0
    stubber.assert_no_pending_responses()
    assert "prod (eu-west-2): quotas fit" in capsys.readouterr().out


def test_a_spot_quota_of_zero_fails_naming_the_quota_the_need_and_the_request(capsys) -> None:
    """A new account's Spot G and VT quota is 0: the group would launch nothing on Spot."""
    client, stubber = stubbed()
    expect(stubber, "prod", {"L-DB2E81BA": 64, "L-3819A6DF": None, "L-3032A538": 4000, "L-B99A9384": 10},
           {"L-3819A6DF": 0})
    with stubber:
        assert main(["prod"], client_for=lambda region: client) == 1
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "prod (eu-west-2): All G and VT Spot Instance Requests (vCPUs) [ec2 L-3819A6DF] is 0, needs 16 "
        "(1 hosts × 8 vCPUs × 2 (replacements launch before the old hosts go)). Request it: aws service-quotas "
        "request-service-quota-increase --region eu-west-2 --service-code ec2 --quota-code L-3819A6DF "
        "--desired-value 16",
        "prod (eu-west-2): Lambda concurrent executions [lambda L-B99A9384] is 10, needs 110 (worker reserves 10, "
        "Lambda keeps 100 unreserved). Request it: aws service-quotas request-service-quota-increase --region "
        "eu-west-2 --service-code lambda --quota-code L-B99A9384 --desired-value 110"]


def test_an_on_demand_only_group_needs_no_spot_quota() -> None:
    env = load_environment("prod")
    env = env.model_copy(update={"llm": env.llm.model_copy(update={
        "spot_instance_types": [], "on_demand_percentage_above_base_capacity": 100})})
    assert gpu_hosts(env) == (4, 0)
    client, stubber = stubbed()
    for need in needs(env):
        stubber.add_response("get_service_quota", quota(need.service, need.code, 10_000),
                             {"ServiceCode": need.service, "QuotaCode": need.code})
    with stubber:
        assert shortfalls(env, client) == []
    assert "L-3819A6DF" not in {n.code for n in needs(env)}


def test_a_bad_environment_is_a_configuration_error(tmp_path, capsys) -> None:
    assert main(["nowhere", "--environments-dir", str(tmp_path)], client_for=lambda region: None) == 2
    assert "configuration error" in capsys.readouterr().err

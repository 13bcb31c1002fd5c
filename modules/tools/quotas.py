"""Service Quotas preflight: can the account run what an environment may ask for?

    python -m modules.tools.quotas ENV [ENV …] [--environments-dir DIR]

Run it with the environment's deploy credentials before a deploy (in a pipeline: after the
configuration check, before `cdktn deploy`). For each quota it compares the environment's
worst case with the value applied to the account in the environment's region (Service
Quotas GetServiceQuota; the AWS default where none was ever applied) and exits 1 naming every
shortfall with the increase to request, 0 when everything fits, 2 on a configuration error.

Worst cases: the GPU group at `llm.capacity.max` while its maintenance policy and instance
refresh launch a replacement for every host (up to 200 % healthy), in its largest instance
type, split on-demand / Spot as `on_demand_base` and `on_demand_percentage_above_base_capacity`
say; the gateway at `gateway.capacity.max` during a deploy (200 %); the chat worker's reserved
concurrency plus the 100 executions Lambda keeps unreserved. A new account's Spot G and VT
quota is 0: a Spot-backed group there launches nothing until it is raised.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modules.config import ConfigError, load_environments
from modules.config.models import Environment

GPU_SURGE = 2  # instance maintenance policy / refresh: max healthy 200 %
DEPLOY_SURGE = 2  # ECS deployment maximum percent 200
LAMBDA_UNRESERVED = 100  # Lambda keeps this much of the account's concurrency unreserved


@dataclass(frozen=True)
class Need:
    service: str  # Service Quotas service code
    code: str  # quota code
    name: str
    amount: int
    why: str


def vcpus(instance_type: str) -> int:
    """vCPUs of a G-family size: xlarge has 4, Nxlarge 4 N (g4dn, g5, g6, g6e, gr6 alike)."""
    size = instance_type.split(".", 1)[1]
    if size == "large":
        return 2
    match = re.fullmatch(r"(\d*)xlarge", size)
    if match is None:
        raise ValueError(f"{instance_type}: no vCPU count known for size {size!r}")
    return 4 * int(match[1] or 1)


def gpu_hosts(env: Environment) -> tuple[int, int]:
    """(on-demand, Spot) hosts at the group's maximum; a warm pool runs on-demand only."""
    llm = env.llm
    if llm.warm_pool_size:
        return llm.capacity.max + llm.warm_pool_size, 0
    base = min(llm.on_demand_base, llm.capacity.max)
    above = llm.capacity.max - base
    # Auto Scaling rounds the on-demand share of a fraction up.
    on_demand = base + math.ceil(above * llm.on_demand_percentage_above_base_capacity / 100)
    return on_demand, llm.capacity.max - on_demand


def needs(env: Environment) -> list[Need]:
    llm, gateway = env.llm, env.gateway
    per_host = max(vcpus(t) for t in (llm.instance_type, *llm.spot_instance_types))
    on_demand, spot = gpu_hosts(env)
    hosts = f"{{}} hosts × {per_host} vCPUs × {GPU_SURGE} (replacements launch before the old hosts go)"
    gateway_vcpus = math.ceil(gateway.capacity.max * gateway.cpu / 1024 * DEPLOY_SURGE)
    fargate = ("L-36FBB829", "Fargate Spot vCPUs") if gateway.fargate_spot else ("L-3032A538",
                                                                               "Fargate On-Demand vCPUs")
    result = [
        Need("ec2", "L-DB2E81BA", "Running On-Demand G and VT instances (vCPUs)",
             on_demand * per_host * GPU_SURGE, hosts.format(on_demand)),
        Need("fargate", *fargate, gateway_vcpus,
             f"{gateway.capacity.max} tasks × {gateway.cpu / 1024:g} vCPU × {DEPLOY_SURGE} (a deploy)"),
        Need("lambda", "L-B99A9384", "Lambda concurrent executions", env.realtime.worker_concurrency
             + LAMBDA_UNRESERVED, f"worker reserves {env.realtime.worker_concurrency}, Lambda keeps "
             f"{LAMBDA_UNRESERVED} unreserved"),
    ]
    if spot:
        result.insert(1, Need("ec2", "L-3819A6DF", "All G and VT Spot Instance Requests (vCPUs)",
                              spot * per_host * GPU_SURGE, hosts.format(spot)))
    return result


Client = Any  # a boto3 "service-quotas" client


def applied(client: Client, need: Need) -> float:
    """The quota's applied value; AWS's default where none is applied (GetServiceQuota says so)."""
    try:
        return client.get_service_quota(ServiceCode=need.service, QuotaCode=need.code)["Quota"]["Value"]
    except client.exceptions.NoSuchResourceException:
        return client.get_aws_default_service_quota(ServiceCode=need.service, QuotaCode=need.code)["Quota"]["Value"]


def shortfalls(env: Environment, client: Client) -> list[str]:
    problems = []
    for need in needs(env):
        value = applied(client, need)
        if value < need.amount:
            problems.append(
                f"{env.name} ({env.region}): {need.name} [{need.service} {need.code}] is {value:g}, needs "
                f"{need.amount} ({need.why}). Request it: aws service-quotas request-service-quota-increase "
                f"--region {env.region} --service-code {need.service} --quota-code {need.code} "
                f"--desired-value {need.amount}")
    return problems


def _client(region: str) -> Client:
    import boto3  # only when talking to AWS

    return boto3.client("service-quotas", region_name=region)


def main(argv: list[str] | None = None, client_for: Callable[[str], Client] = _client) -> int:
    parser = argparse.ArgumentParser(prog="python -m modules.tools.quotas", description=__doc__.split("\n")[0])
    parser.add_argument("environments", nargs="+", help="the environments to check (each in its own account and region)")
    parser.add_argument("--environments-dir", type=Path, help="where the environment folders are (default: environments/)")
    args = parser.parse_args(argv)
    try:
        envs = load_environments(args.environments, *([args.environments_dir] if args.environments_dir else []))
    except ConfigError as error:
        print(f"configuration error:\n{error}", file=sys.stderr)
        return 2
    problems = [p for env in envs for p in shortfalls(env, client_for(env.region))]
    for env in envs:
        if not any(p.startswith(f"{env.name} ") for p in problems):
            print(f"{env.name} ({env.region}): quotas fit ({', '.join(f'{n.code} {n.amount}' for n in needs(env))})")
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

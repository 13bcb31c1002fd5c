"""Rules that span fields. Each yields a Problem naming the field, what is wrong and the fix."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import IPv4Network
from typing import Any

from modules.alarms import BY_NAME, DB_MEMORY_GIB
from modules.config.models import FARGATE_SIZES, GPU_MEMORY_GB, LOG_RETENTION_DAYS, REGION_AZS, Capacity, Environment


@dataclass(frozen=True)
class Problem:
    field: str
    message: str
    fix: str


def check(env: Environment) -> Iterator[Problem]:
    yield from _check_network(env)
    yield from _check_sizing(env)
    yield from _check_edge(env)
    yield from _check_llm(env)
    yield from _check_realtime(env)
    yield from _check_backend(env)
    yield from _check_foundation(env)
    yield from _check_observability(env)


def _check_network(env: Environment) -> Iterator[Problem]:
    net = env.network
    known = REGION_AZS.get(env.region)
    if known is None:
        yield Problem("region", f"{env.region!r} is not a supported region.",
                      f"use one of: {', '.join(REGION_AZS)}.")
        return
    for i, az in enumerate(net.availability_zones):
        if az not in known:
            yield Problem(f"network.availability_zones[{i}]", f"{az!r} is not in region {env.region}.",
                          f"use zones of {env.region}: {', '.join(known)}.")
    if len(set(net.availability_zones)) != len(net.availability_zones):
        yield Problem("network.availability_zones", "lists a zone twice.", "list each zone once.")
    if env.high_availability and len(net.availability_zones) < 2:
        yield Problem("network.availability_zones", "has fewer than 2 zones but high_availability = true.",
                      "list at least two zones, or set high_availability = false.")
    tiers = {"public_subnets": net.public_subnets, "private_subnets": net.private_subnets,
             "database_subnets": net.database_subnets}
    all_subnets: list[tuple[str, IPv4Network]] = []
    for tier, subnets in tiers.items():
        if len(subnets) != len(net.availability_zones):
            yield Problem(f"network.{tier}", f"has {len(subnets)} subnets for "
                          f"{len(net.availability_zones)} availability zones.",
                          "give exactly one subnet per zone, in the same order.")
        for i, subnet in enumerate(subnets):
            field = f"network.{tier}[{i}]"
            if not subnet.subnet_of(net.vpc_cidr):
                yield Problem(field, f"{subnet} is outside the VPC CIDR {net.vpc_cidr}.",
                              "widen network.vpc_cidr to contain it (e.g. a /16) or move the subnet inside.")
            if subnet.prefixlen > 28:
                yield Problem(field, f"{subnet} is smaller than /28, the smallest AWS subnet.",
                              "use a prefix of /28 or wider.")
            all_subnets.append((field, subnet))
    for (field_a, a), (field_b, b) in _pairs(all_subnets):
        if a.overlaps(b):
            yield Problem(field_b, f"{b} overlaps {field_a} ({a}).", "give each subnet its own range.")
    if env.high_availability and net.nat_gateways != "per_az":
        yield Problem("network.nat_gateways", "is 'single' but high_availability = true.",
                      "set nat_gateways = \"per_az\" so one zone's outage does not cut egress.")


def _pairs(items: list[Any]) -> Iterator[tuple[Any, Any]]:
    for i, a in enumerate(items):
        for b in items[i + 1:]:
            yield a, b


def _check_capacity(field: str, cap: Capacity) -> Iterator[Problem]:
    if not cap.min <= cap.desired <= cap.max:
        yield Problem(field, f"min {cap.min}, desired {cap.desired}, max {cap.max} are out of order.",
                      "choose values with min <= desired <= max.")


def _check_sizing(env: Environment) -> Iterator[Problem]:
    gw, data = env.gateway, env.data
    if gw.memory not in FARGATE_SIZES.get(gw.cpu, ()):
        valid = FARGATE_SIZES.get(gw.cpu)
        fix = (f"for cpu {gw.cpu} use memory in {valid[0]}..{valid[-1]} (steps of {valid[1] - valid[0]})."
               if valid else f"use cpu one of {', '.join(map(str, FARGATE_SIZES))}.")
        yield Problem("gateway.memory" if valid else "gateway.cpu",
                      f"cpu {gw.cpu} / memory {gw.memory} is not a valid Fargate size.", fix)
    yield from _check_capacity("gateway.capacity", gw.capacity)
    if env.high_availability and gw.capacity.min < 2:
        yield Problem("gateway.capacity.min", "is below 2 but high_availability = true.",
                      "run at least 2 tasks so one can fail or deploy while the other serves.")
    if data.db_max_storage_gb < data.db_storage_gb:
        yield Problem("data.db_max_storage_gb", "is below data.db_storage_gb.",
                      "set the autoscaling ceiling at or above the initial size.")
    if env.high_availability and not data.multi_az:
        yield Problem("data.multi_az", "is false but high_availability = true.",
                      "set multi_az = true (standby database and Redis replica in a second zone).")
    if data.multi_az and data.redis_replicas < 1:
        yield Problem("data.redis_replicas", "is 0 but multi_az = true.",
                      "use at least 1 replica so Redis can fail over.")
    for i, region in enumerate(data.dynamodb_replica_regions):
        if region not in REGION_AZS or region == env.region:
            yield Problem(f"data.dynamodb_replica_regions[{i}]", f"{region!r} is not a second supported region.",
                          f"use a region other than {env.region}: {', '.join(REGION_AZS)}.")
    if env.protect_stateful and not _pinned(gw.image):
        yield Problem("gateway.image", f"{gw.image!r} is not pinned.",
                      "pin a release tag (e.g. :v1.108.11) or a digest (@sha256:…) in protected environments.")
    names = [m.name for m in gw.models]
    if not names:
        yield Problem("gateway.models", "is empty.", "route at least one model.")
    if len(set(names)) != len(names):
        yield Problem("gateway.models", "repeats a model name.", "give each route a unique name.")
    for i, model in enumerate(gw.models):
        targets = [model.bedrock_model_id is not None, model.upstream_url is not None, model.self_hosted]
        if sum(targets) != 1:
            yield Problem(f"gateway.models[{i}]", f"{model.name!r} sets {sum(targets)} targets.",
                          "set exactly one of bedrock_model_id, upstream_url or self_hosted = true.")
        if model.self_hosted and env.llm.dns_name is None:
            yield Problem(f"gateway.models[{i}].self_hosted", "routes to the GPU tier, which has no llm.dns_name.",
                          "set llm.dns_name (the internal ALB's private name) or route elsewhere.")
        if model.upstream_url is not None and not model.upstream_url.startswith("https://"):
            yield Problem(f"gateway.models[{i}].upstream_url", "is not an https:// URL.",
                          "route to the upstream over TLS (https://…).")


_ACM_ARN = re.compile(r"^arn:aws[a-z-]*:acm:(?P<region>[a-z0-9-]+):\d{12}:certificate/[0-9a-f-]{36}$")


def _pinned(image: str) -> bool:
    tag = image.rsplit(":", 1)[-1] if ":" in image.rsplit("/", 1)[-1] else ""
    return "@sha256:" in image or bool(tag and tag not in ("latest", "main-latest"))


def _check_certificate(field: str, arn: str | None, region: str, purpose: str) -> Iterator[Problem]:
    if arn is None:
        yield Problem(field, f"is missing; {purpose} serves HTTPS only.",
                      f"set it to an ACM certificate ARN in {region}.")
    elif not (match := _ACM_ARN.match(arn)):
        yield Problem(field, f"{arn!r} is not an ACM certificate ARN.",
                      "use arn:aws:acm:<region>:<account>:certificate/<uuid>.")
    elif match["region"] != region:
        yield Problem(field, f"is in {match['region']}, not {region}.",
                      f"an ALB needs a certificate from its own region ({region}).")


def _check_edge(env: Environment) -> Iterator[Problem]:
    yield from _check_certificate("edge.certificate_arn", env.edge.certificate_arn, env.region, "the public ALB")
    for i, cidr in enumerate(env.edge.trusted_cidrs):
        if cidr.prefixlen == 0:
            yield Problem(f"edge.trusted_cidrs[{i}]", "trusts the whole internet.", "list specific ranges.")


def _check_llm(env: Environment) -> Iterator[Problem]:
    llm = env.llm
    types = {"llm.instance_type": llm.instance_type,
             **{f"llm.spot_instance_types[{i}]": t for i, t in enumerate(llm.spot_instance_types)}}
    memory = GPU_MEMORY_GB.get(llm.instance_type.split(".")[0])
    for field, instance_type in types.items():
        family = instance_type.split(".")[0]
        if family not in GPU_MEMORY_GB:
            yield Problem(field, f"{instance_type!r} is not a GPU instance type.",
                          f"use a GPU family: {', '.join(GPU_MEMORY_GB)} (e.g. g5.xlarge).")
        elif memory and GPU_MEMORY_GB[family] != memory and field != "llm.instance_type":
            yield Problem(field, f"{instance_type!r} has {GPU_MEMORY_GB[family]} GB GPUs, "
                          f"{llm.instance_type} has {memory} GB.",
                          "list Spot alternatives of the same GPU memory class, so the model fits each.")
    yield from _check_capacity("llm.capacity", llm.capacity)
    if llm.on_demand_base > llm.capacity.max:
        yield Problem("llm.on_demand_base", f"{llm.on_demand_base} exceeds llm.capacity.max {llm.capacity.max}.",
                      "lower on_demand_base or raise capacity.max.")
    if llm.warm_pool_size > llm.capacity.max:
        yield Problem("llm.warm_pool_size", f"{llm.warm_pool_size} exceeds llm.capacity.max {llm.capacity.max}.",
                      "keep at most capacity.max instances warm.")
    if llm.warm_pool_size and (llm.spot_instance_types or llm.on_demand_base < llm.capacity.max):
        # EC2 Auto Scaling warm pools do not support mixed instances policies or Spot.
        yield Problem("llm.warm_pool_size", "is set on a group that uses Spot (a mixed instances policy).",
                      "for a warm pool run on-demand only: spot_instance_types = [] and "
                      "on_demand_base = capacity.max; or set warm_pool_size = 0.")
    if llm.root_volume_gb < llm.model_size_gb + 30:
        yield Problem("llm.root_volume_gb", f"{llm.root_volume_gb} GB cannot hold the {llm.model_size_gb} GB model "
                      "beside the AMI and the vLLM image (about 30 GB).",
                      f"use at least {llm.model_size_gb + 30} GB.")
    if (llm.weights_s3_prefix is None) == (llm.hf_model_id is None):
        yield Problem("llm.weights_s3_prefix", "and llm.hf_model_id are both set or both missing.",
                      "set exactly one weights location: a prefix in the weights bucket, or a Hugging Face id.")
    if llm.hf_token_secret_arn and not llm.hf_model_id:
        yield Problem("llm.hf_token_secret_arn", "is set without llm.hf_model_id.", "remove it or set hf_model_id.")
    if llm.dns_name is None:
        yield Problem("llm.dns_name", "is missing; the gateway reaches the model by a private name.",
                      "set a name your certificate covers, e.g. \"llm.internal.example.com\".")
    yield from _check_certificate("llm.certificate_arn", llm.certificate_arn or env.edge.certificate_arn,
                                  env.region, "the internal model ALB")
    if env.protect_stateful and not _pinned(llm.vllm_image):
        yield Problem("llm.vllm_image", f"{llm.vllm_image!r} is not pinned.",
                      "pin a release tag (e.g. :v0.11.0) or a digest in protected environments.")


def _check_realtime(env: Environment) -> Iterator[Problem]:
    rt = env.realtime
    if rt.model_endpoint_url is None:
        yield Problem("realtime.model_endpoint_url", "is missing; the worker needs a model endpoint.",
                      "set the gateway's URL (e.g. \"https://api.example.com/v1\") or the internal model endpoint.")
    elif not rt.model_endpoint_url.startswith("https://"):
        yield Problem("realtime.model_endpoint_url", "is not an https:// URL.", "call the model over TLS.")
    routes = {m.name for m in env.gateway.models}
    for i, name in enumerate(rt.models):
        if name not in routes:
            yield Problem(f"realtime.models[{i}]", f"{name!r} is not a gateway model.",
                          f"use one of: {', '.join(sorted(routes))}.")
    for field, urls in (("callback_urls", rt.callback_urls), ("logout_urls", rt.logout_urls)):
        for i, url in enumerate(urls):
            if not url.startswith("https://"):
                yield Problem(f"realtime.{field}[{i}]", f"{url!r} is not an https:// URL.",
                              "Cognito accepts only https (http only for localhost, which you should not ship).")
    if rt.custom_domain:
        yield from _check_certificate("realtime.certificate_arn", rt.certificate_arn or env.edge.certificate_arn,
                                      env.region, "the WebSocket custom domain")
    if env.protect_stateful and rt.mfa != "ON":
        yield Problem("realtime.mfa", "is optional in a protected environment.", "set mfa = \"ON\".")
    if rt.throttling_burst_limit < rt.throttling_rate_limit:
        yield Problem("realtime.throttling_burst_limit", "is below throttling_rate_limit.",
                      "allow a burst at least as large as the steady rate.")


def _check_backend(env: Environment) -> Iterator[Problem]:
    backend = env.backend
    if backend.type == "s3" and not backend.bucket:
        yield Problem("backend.bucket", "is required when backend.type = \"s3\".",
                      "name the state bucket, or use type = \"local\".")
    if backend.type == "local" and (backend.bucket or backend.kms_key_id):
        yield Problem("backend.type", "is \"local\" but S3 settings are given.",
                      "set type = \"s3\" or remove bucket/kms_key_id.")
    if env.protect_stateful and backend.type != "s3":
        # State holds secret values (the Redis AUTH token): never on one laptop.
        yield Problem("backend.type", "is \"local\" in a protected environment; its state holds secrets.",
                      f"set type = \"s3\" and bucket = the bucket the {env.name}-state stack creates "
                      f"(cdktn deploy {env.name}-state).")


def _check_observability(env: Environment) -> Iterator[Problem]:
    for name, override in env.observability.overrides.items():
        spec = BY_NAME.get(name)
        field = f"observability.overrides.{name}"
        if spec is None:
            close = difflib.get_close_matches(name, BY_NAME, n=1)
            yield Problem(field, "is not an alarm of the platform.",
                          (f"did you mean '{close[0]}'? " if close else "") + "use a name from the README's on-call table.")
        elif override.threshold is not None and not (
                0 < override.threshold <= 100 if spec.unit == "percent" else override.threshold >= 0):
            yield Problem(f"{field}.threshold", f"{override.threshold} is out of range for a {spec.unit} alarm.",
                          "use a value in (0, 100]." if spec.unit == "percent" else "use a value of 0 or more.")
        elif override.periods is not None and override.periods * spec.period > 86_400:
            yield Problem(f"{field}.periods", "spans more than a day.", "CloudWatch evaluates at most one day.")
    if env.data.db_instance_class not in DB_MEMORY_GIB:
        yield Problem("data.db_instance_class", f"{env.data.db_instance_class!r} has no known memory size, so the "
                      "connection alarm cannot be sized.", f"use one of: {', '.join(DB_MEMORY_GIB)}.")
    if env.protect_stateful and not env.observability.alarm_emails:
        yield Problem("observability.alarm_emails", "is empty in a protected environment.",
                      "list at least one address so alarms reach someone.")


def _check_foundation(env: Environment) -> Iterator[Problem]:
    days = env.foundation.log_retention_days
    if days not in LOG_RETENTION_DAYS or days < 90:
        yield Problem("foundation.log_retention_days", f"{days} is not an allowed retention.",
                      "use a CloudWatch Logs retention value of at least 90 days (365 recommended).")

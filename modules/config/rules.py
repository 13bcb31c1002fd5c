"""Rules that span fields. Each yields a Problem naming the field, what is wrong and the fix.

Every rule is a small function registered with `@rule("what it demands")`: `check` runs
them one by one, so a rule that reads a field which did not parse (the loader hands the
rules a partial environment then, see `loader`) is skipped on its own and every other rule
still reports.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from ipaddress import IPv4Network
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from modules.catalogue.alarms import (BY_NAME, DB_MEMORY_GIB, MIN_POOL_PER_TASK, RESERVED_CONNECTIONS,
                                      max_connections, peak_tasks, pool_per_task, storage_autoscaling_trigger)
from modules.config.models import (FARGATE_SIZES, GPU_MEMORY_GB, LOG_RETENTION_DAYS, PULL_THROUGH_CACHES, REGION_AZS,
                                   Capacity, Environment, upstream_of)


@dataclass(frozen=True)
class Problem:
    field: str                        # dotted path as written in environment.toml
    message: str
    fix: str
    rule: str = ""                    # what the violated rule demands (filled in by `check`)
    inherited_from: str | None = None  # the field the value came from, when `field` is not set

    @property
    def where(self) -> str:
        return f"{self.field} (inherited from {self.inherited_from})" if self.inherited_from else self.field


class Unparsed(Exception):
    """A rule read a field that did not parse; that field's own problem is already reported."""


Rule = Callable[[Environment], Iterator[Problem]]
RULES: list[tuple[str, Rule]] = []


def rule(demands: str) -> Callable[[Rule], Rule]:
    def register(fn: Rule) -> Rule:
        RULES.append((demands, fn))
        return fn
    return register


def check(env: Environment) -> Iterator[Problem]:
    """Every rule's problems; a rule that needs a field which did not parse is left out."""
    for demands, fn in RULES:
        try:
            for problem in fn(env):
                yield replace(problem, rule=problem.rule or demands)
        except Unparsed:
            continue


# --- account ------------------------------------------------------------------------------

ACCOUNT_ID = re.compile(r"^\d{12}$")
ARN = re.compile(r"^arn:(?P<partition>[^:]+):(?P<service>[^:]+):(?P<region>[^:]*):(?P<account>[^:]*):(?P<resource>.+)$")
ROLE_RESOURCE = re.compile(r"^role/[\w+=,.@/-]{1,512}$")


@rule("every ARN names the environment's account and region")
def _account(env: Environment) -> Iterator[Problem]:
    """The environment names its account; every ARN it holds names that account and, where the
    service is regional, the region it is used in (the backend's for backend.*)."""
    if not ACCOUNT_ID.match(env.account_id):
        yield Problem("account_id", f"{env.account_id!r} is not a 12-digit AWS account id.",
                      'write the account id as 12 digits in double quotes, e.g. account_id = "111122223333".')
        return
    for field, value in _strings(env.model_dump(exclude={"name"})):
        if not value.startswith("arn:"):
            continue
        arn = ARN.match(value)
        if arn is None:
            yield Problem(field, f"{value!r} is not a valid ARN.",
                          "use arn:<partition>:<service>:<region>:<account>:<resource>.")
            continue
        if field == "deploy_role_arn" and (arn["service"] != "iam" or not ROLE_RESOURCE.match(arn["resource"])):
            yield Problem(field, f"{value!r} is not an IAM role ARN.",
                          f"use arn:aws:iam::{env.account_id}:role/<name>, a role the provider can assume.")
        if arn["account"] not in ("", "aws", env.account_id):
            yield Problem(field, f"names account {arn['account']}, but this environment deploys to account "
                          f"{env.account_id} (account_id).",
                          f"use a resource of account {env.account_id}, or correct account_id.")
        region = (env.backend.region or env.region) if field.startswith("backend.") else env.region
        # Certificates' regions are checked with their purpose (an ALB needs its own region's).
        if arn["region"] and arn["service"] != "acm" and arn["region"] != region:
            yield Problem(field, f"is in {arn['region']}, not {region}.", f"use a resource in {region}.")


def _strings(value: Any, field: str = "") -> Iterator[tuple[str, str]]:
    """Every string in a dumped model, with its field path (`gateway.models[0].name`)."""
    if isinstance(value, str):
        yield field, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, f"{field}.{key}" if field else str(key))
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from _strings(item, f"{field}[{i}]")


# --- network ------------------------------------------------------------------------------

def _zones(env: Environment) -> tuple[str, ...] | None:
    return REGION_AZS.get(env.region)


@rule("a supported region")
def _region(env: Environment) -> Iterator[Problem]:
    if _zones(env) is None:
        yield Problem("region", f"{env.region!r} is not a supported region.", f"use one of: {', '.join(REGION_AZS)}.")


@rule("zones of the environment's region, each once")
def _availability_zones(env: Environment) -> Iterator[Problem]:
    known, zones = _zones(env), env.network.availability_zones
    if known is not None:
        for i, az in enumerate(zones):
            if az not in known:
                yield Problem(f"network.availability_zones[{i}]", f"{az!r} is not in region {env.region}.",
                              f"use zones of {env.region}: {', '.join(known)}.")
    if len(set(zones)) != len(zones):
        yield Problem("network.availability_zones", "lists a zone twice.", "list each zone once.")


# With three zones, losing one leaves two thirds of the gateway and a zone for the database
# standby; every supported region has at least three.
HA_ZONES = 3


@rule("high availability spans three zones")
def _ha_zones(env: Environment) -> Iterator[Problem]:
    zones = env.network.availability_zones
    if env.high_availability and len(zones) < HA_ZONES:
        spare = [az for az in _zones(env) or () if az not in zones][:HA_ZONES - len(zones)]
        yield Problem("network.availability_zones", f"has {len(zones)} zone{'s' * (len(zones) != 1)} but "
                      f"high_availability = true: losing one zone would take half the capacity or more.",
                      f"list {HA_ZONES} zones (add {', '.join(spare) or 'zones of the region'}, with a subnet "
                      "per tier for each), or set high_availability = false.")


_TIERS = ("public_subnets", "private_subnets", "database_subnets")


@rule("one subnet per zone and tier")
def _subnets_per_zone(env: Environment) -> Iterator[Problem]:
    zones = len(env.network.availability_zones)
    for tier in _TIERS:
        subnets = getattr(env.network, tier)
        if len(subnets) != zones:
            yield Problem(f"network.{tier}", f"has {len(subnets)} subnets for {zones} availability zones.",
                          "give exactly one subnet per zone, in the same order.")


@rule("subnets inside the VPC, /28 or wider")
def _subnets_inside_vpc(env: Environment) -> Iterator[Problem]:
    for tier in _TIERS:
        for i, subnet in enumerate(getattr(env.network, tier)):
            field = f"network.{tier}[{i}]"
            if not subnet.subnet_of(env.network.vpc_cidr):
                yield Problem(field, f"{subnet} is outside the VPC CIDR {env.network.vpc_cidr}.",
                              "widen network.vpc_cidr to contain it (e.g. a /16) or move the subnet inside.")
            if subnet.prefixlen > 28:
                yield Problem(field, f"{subnet} is smaller than /28, the smallest AWS subnet.",
                              "use a prefix of /28 or wider.")


@rule("subnets do not overlap")
def _subnets_disjoint(env: Environment) -> Iterator[Problem]:
    all_subnets: list[tuple[str, IPv4Network]] = [
        (f"network.{tier}[{i}]", subnet) for tier in _TIERS for i, subnet in enumerate(getattr(env.network, tier))]
    for (field_a, a), (field_b, b) in _pairs(all_subnets):
        if a.overlaps(b):
            yield Problem(field_b, f"{b} overlaps {field_a} ({a}).", "give each subnet its own range.")


@rule("high availability has a NAT gateway per zone")
def _ha_nat(env: Environment) -> Iterator[Problem]:
    if env.high_availability and env.network.nat_gateways != "per_az":
        yield Problem("network.nat_gateways", "is 'single' but high_availability = true.",
                      "set nat_gateways = \"per_az\" so one zone's outage does not cut egress.")


def _pairs(items: list[Any]) -> Iterator[tuple[Any, Any]]:
    for i, a in enumerate(items):
        for b in items[i + 1:]:
            yield a, b


# --- sizing: gateway and data -------------------------------------------------------------

def _check_capacity(field: str, cap: Capacity) -> Iterator[Problem]:
    if not cap.min <= cap.desired <= cap.max:
        yield Problem(field, f"min {cap.min}, desired {cap.desired}, max {cap.max} are out of order.",
                      "choose values with min <= desired <= max.")


@rule("a valid Fargate cpu/memory pair")
def _fargate_size(env: Environment) -> Iterator[Problem]:
    gw = env.gateway
    if gw.memory not in FARGATE_SIZES.get(gw.cpu, ()):
        valid = FARGATE_SIZES.get(gw.cpu)
        fix = (f"for cpu {gw.cpu} use memory in {valid[0]}..{valid[-1]} (steps of {valid[1] - valid[0]})."
               if valid else f"use cpu one of {', '.join(map(str, FARGATE_SIZES))}.")
        yield Problem("gateway.memory" if valid else "gateway.cpu",
                      f"cpu {gw.cpu} / memory {gw.memory} is not a valid Fargate size.", fix)


@rule("capacities ordered min <= desired <= max")
def _gateway_capacity(env: Environment) -> Iterator[Problem]:
    yield from _check_capacity("gateway.capacity", env.gateway.capacity)


@rule("high availability runs at least two gateway tasks")
def _ha_tasks(env: Environment) -> Iterator[Problem]:
    if env.high_availability and env.gateway.capacity.min < 2:
        yield Problem("gateway.capacity.min", "is below 2 but high_availability = true.",
                      "run at least 2 tasks so one can fail or deploy while the other serves.")


@rule("database storage ceiling at or above its size")
def _db_storage(env: Environment) -> Iterator[Problem]:
    if env.data.db_max_storage_gb < env.data.db_storage_gb:
        yield Problem("data.db_max_storage_gb", "is below data.db_storage_gb.",
                      "set the autoscaling ceiling at or above the initial size.")


@rule("high availability keeps data in two zones")
def _ha_data(env: Environment) -> Iterator[Problem]:
    if env.high_availability and not env.data.multi_az:
        yield Problem("data.multi_az", "is false but high_availability = true.",
                      "set multi_az = true (standby database and Redis replica in a second zone).")


@rule("Multi-AZ Redis has a replica")
def _redis_replicas(env: Environment) -> Iterator[Problem]:
    if env.data.multi_az and env.data.redis_replicas < 1:
        yield Problem("data.redis_replicas", "is 0 but multi_az = true.",
                      "use at least 1 replica so Redis can fail over.")


@rule("table replicas in other supported regions")
def _replica_regions(env: Environment) -> Iterator[Problem]:
    for i, region in enumerate(env.data.dynamodb_replica_regions):
        if region not in REGION_AZS or region == env.region:
            yield Problem(f"data.dynamodb_replica_regions[{i}]", f"{region!r} is not a second supported region.",
                          f"use a region other than {env.region}: {', '.join(REGION_AZS)}.")


@rule("data is copied only to regions the environment allows (data residency)")
def _copy_regions_allowed(env: Environment) -> Iterator[Problem]:
    data = env.data
    for i, region in enumerate(data.allowed_copy_regions):
        if region not in REGION_AZS or region == env.region:
            yield Problem(f"data.allowed_copy_regions[{i}]", f"{region!r} is not a second supported region.",
                          f"use a region other than {env.region}: {', '.join(REGION_AZS)}.")
    allowed = ", ".join(data.allowed_copy_regions) or "none"
    copies = [(f"data.dynamodb_replica_regions[{i}]", r) for i, r in enumerate(data.dynamodb_replica_regions)]
    if data.backup_copy_region:
        copies.append(("data.backup_copy_region", data.backup_copy_region))
    for field, region in copies:
        if region not in data.allowed_copy_regions:
            yield Problem(field, f"copies data to {region!r}, which data.allowed_copy_regions does not allow "
                          f"(allowed: {allowed}).", f"add {region!r} to data.allowed_copy_regions if the "
                          "environment's data may leave its region for it, or remove the copy.")


@rule("protected environments pin their images")
def _gateway_image_pinned(env: Environment) -> Iterator[Problem]:
    if env.protect_stateful and not _pinned(env.gateway.image):
        yield Problem("gateway.image", f"{env.gateway.image!r} is not pinned.",
                      "pin a release tag (e.g. :v1.108.11) or a digest (@sha256:…) in protected environments.")


@rule("gateway routes with unique names")
def _route_names(env: Environment) -> Iterator[Problem]:
    names = [m.name for m in env.gateway.models]
    if not names:
        yield Problem("gateway.models", "is empty.", "route at least one model.")
    if len(set(names)) != len(names):
        yield Problem("gateway.models", "repeats a model name.", "give each route a unique name.")


@rule("each route has exactly one target, over TLS")
def _route_targets(env: Environment) -> Iterator[Problem]:
    for i, model in enumerate(env.gateway.models):
        targets = [model.bedrock_model_id is not None, model.upstream_url is not None, model.self_hosted]
        if sum(targets) != 1:
            yield Problem(f"gateway.models[{i}]", f"{model.name!r} sets {sum(targets)} targets.",
                          "set exactly one of bedrock_model_id, upstream_url or self_hosted = true.")
        if model.upstream_url is not None and not model.upstream_url.startswith("https://"):
            yield Problem(f"gateway.models[{i}].upstream_url", "is not an https:// URL.",
                          "route to the upstream over TLS (https://…).")


@rule("a self-hosted route needs the model's private name")
def _self_hosted_route(env: Environment) -> Iterator[Problem]:
    for i, model in enumerate(env.gateway.models):
        if model.self_hosted and env.llm.dns_name is None:
            yield Problem(f"gateway.models[{i}].self_hosted", "routes to the GPU tier, which has no llm.dns_name.",
                          "set llm.dns_name (the internal ALB's private name) or route elsewhere.")


@rule("fallbacks name other routes")
def _route_fallbacks(env: Environment) -> Iterator[Problem]:
    names = [m.name for m in env.gateway.models]
    for i, model in enumerate(env.gateway.models):
        for j, name in enumerate(model.fallbacks):
            if name == model.name or name not in names:
                yield Problem(f"gateway.models[{i}].fallbacks[{j}]", f"{name!r} is not another gateway route.",
                              f"name a different route: {', '.join(n for n in names if n != model.name) or 'none'}.")
        if model.self_hosted and env.high_availability and not model.fallbacks:
            yield Problem(f"gateway.models[{i}].fallbacks", f"{model.name!r} routes to the GPU tier with no "
                          "fallback, but high_availability = true.",
                          "name a Bedrock route to serve while the GPU tier is down, e.g. "
                          "fallbacks = [\"claude-haiku-4-5\"].")


@rule("model calls end before the ALB's idle timeout")
def _request_timeouts(env: Environment) -> Iterator[Problem]:
    edge = env.edge
    if edge.request_timeout_seconds >= edge.idle_timeout_seconds:
        yield Problem("edge.request_timeout_seconds", f"{edge.request_timeout_seconds} s is not below "
                      f"edge.idle_timeout_seconds ({edge.idle_timeout_seconds} s): the ALB would answer 504 while "
                      "the model call runs on.", f"use less than {edge.idle_timeout_seconds} s, or raise the idle timeout.")
    for i, model in enumerate(env.gateway.models):
        if model.timeout_seconds is not None and model.timeout_seconds > edge.request_timeout_seconds:
            yield Problem(f"gateway.models[{i}].timeout_seconds", f"{model.timeout_seconds} s exceeds "
                          f"edge.request_timeout_seconds ({edge.request_timeout_seconds} s), how long a leaving "
                          "task drains.", f"use at most {edge.request_timeout_seconds} s, or raise the request timeout.")


@rule("every proxy task fits the database's connections, deploys included")
def _connection_budget(env: Environment) -> Iterator[Problem]:
    if env.data.db_instance_class not in DB_MEMORY_GIB:
        return  # the database class rule reports it
    pool = pool_per_task(max_connections(env.data.db_instance_class), env.gateway.capacity.max)
    if pool < MIN_POOL_PER_TASK:
        tasks = peak_tasks(env.gateway.capacity.max)
        yield Problem("gateway.capacity.max", f"{env.gateway.capacity.max} tasks (up to {tasks} during a deploy) "
                      f"leave {pool} database connections per task: {env.data.db_instance_class} allows "
                      f"{max_connections(env.data.db_instance_class)}, {RESERVED_CONNECTIONS} of them reserved.",
                      f"lower gateway.capacity.max or choose a larger data.db_instance_class (at least "
                      f"{MIN_POOL_PER_TASK} connections per task).")


@rule("key defaults within the key upper bounds")
def _key_limits(env: Environment) -> Iterator[Problem]:
    defaults, bounds = env.gateway.key_defaults, env.gateway.key_upper_bounds
    for field in ("tpm", "rpm", "max_budget_usd"):
        if getattr(defaults, field) > getattr(bounds, field):
            yield Problem(f"gateway.key_defaults.{field}", f"{getattr(defaults, field):g} exceeds "
                          f"gateway.key_upper_bounds.{field} ({getattr(bounds, field):g}): LiteLLM would refuse "
                          "every key made without limits.", "lower the default or raise the upper bound.")
    if _duration_seconds(defaults.budget_duration) > _duration_seconds(bounds.budget_duration):
        yield Problem("gateway.key_defaults.budget_duration", f"{defaults.budget_duration} is longer than "
                      f"gateway.key_upper_bounds.budget_duration ({bounds.budget_duration}).",
                      "use a budget period no longer than the upper bound's.")


def _duration_seconds(duration: str) -> int:
    """LiteLLM's budget durations: s, m, h, d and mo (a month counted as 30 days here)."""
    number, unit = re.fullmatch(r"(\d+)(mo|[smhd])", duration).groups()  # type: ignore[union-attr]
    return int(number) * {"s": 1, "m": 60, "h": 3600, "d": 86_400, "mo": 30 * 86_400}[unit]


_ACM_ARN = re.compile(r"^arn:aws[a-z-]*:acm:(?P<region>[a-z0-9-]+):\d{12}:certificate/[0-9a-f-]{36}$")


def _pinned(image: str) -> bool:
    tag = image.rsplit(":", 1)[-1] if ":" in image.rsplit("/", 1)[-1] else ""
    return "@sha256:" in image or bool(tag and tag not in ("latest", "main-latest"))


# --- certificates and edge ----------------------------------------------------------------

CERTIFICATE_RULE = "an ACM certificate of the environment's region"


def _check_certificate(field: str, arn: str | None, region: str, purpose: str,
                       inherited_from: str | None = None) -> Iterator[Problem]:
    """`inherited_from`: the field `arn` was read from because `field` is not set. Whichever
    rule calls it, its problems name the certificate rule (the llm's rule is about names)."""
    or_fix = f"; or give {field} a certificate of its own" if inherited_from else ""
    if arn is None:
        yield Problem(field, f"is missing; {purpose} serves HTTPS only.",
                      f"set it to an ACM certificate ARN in {region}.", CERTIFICATE_RULE, inherited_from)
    elif not (match := _ACM_ARN.match(arn)):
        yield Problem(field, f"{arn!r} is not an ACM certificate ARN.",
                      f"use arn:aws:acm:<region>:<account>:certificate/<uuid>{or_fix}.", CERTIFICATE_RULE,
                      inherited_from)
    elif match["region"] != region:
        yield Problem(field, f"is in {match['region']}, not {region}.",
                      f"{purpose} needs a certificate from its own region ({region}){or_fix}.", CERTIFICATE_RULE,
                      inherited_from)


def _own_or_edge_certificate(env: Environment, section: str, own: str | None, region: str,
                             purpose: str) -> Iterator[Problem]:
    """A certificate that falls back to the edge's: problems of the fallback say so."""
    if own is not None:
        yield from _check_certificate(f"{section}.certificate_arn", own, region, purpose)
    elif env.edge.certificate_arn is not None:  # a missing edge certificate is the edge rule's problem
        yield from _check_certificate(f"{section}.certificate_arn", env.edge.certificate_arn, region, purpose,
                                      inherited_from="edge.certificate_arn")


@rule(CERTIFICATE_RULE)
def _edge_certificate(env: Environment) -> Iterator[Problem]:
    yield from _check_certificate("edge.certificate_arn", env.edge.certificate_arn, env.region, "the public ALB")


@rule("trusted ranges narrower than the internet")
def _trusted_cidrs(env: Environment) -> Iterator[Problem]:
    for i, cidr in enumerate(env.edge.trusted_cidrs):
        if cidr.prefixlen == 0:
            yield Problem(f"edge.trusted_cidrs[{i}]", "trusts the whole internet.", "list specific ranges.")


# --- llm ----------------------------------------------------------------------------------

@rule("Spot alternatives whose GPUs hold at least instance_type's memory")
def _gpu_types(env: Environment) -> Iterator[Problem]:
    llm = env.llm
    types = {"llm.instance_type": llm.instance_type,
             **{f"llm.spot_instance_types[{i}]": t for i, t in enumerate(llm.spot_instance_types)}}
    memory = GPU_MEMORY_GB.get(llm.instance_type.split(".")[0])
    for field, instance_type in types.items():
        family = instance_type.split(".")[0]
        if family not in GPU_MEMORY_GB:
            yield Problem(field, f"{instance_type!r} is not a GPU instance type.",
                          f"use a GPU family: {', '.join(GPU_MEMORY_GB)} (e.g. g5.xlarge).")
        elif memory and GPU_MEMORY_GB[family] < memory and field != "llm.instance_type":
            yield Problem(field, f"{instance_type!r} has {GPU_MEMORY_GB[family]} GB GPUs, "
                          f"{llm.instance_type} has {memory} GB.",
                          f"list Spot alternatives with at least {memory} GB GPUs, so the model fits each.")


@rule("capacities ordered min <= desired <= max")
def _gpu_capacity(env: Environment) -> Iterator[Problem]:
    yield from _check_capacity("llm.capacity", env.llm.capacity)


@rule("high availability runs GPU hosts in two zones")
def _ha_gpu_hosts(env: Environment) -> Iterator[Problem]:
    """The group spreads its hosts over the private subnets' zones: two hosts are two zones."""
    llm = env.llm
    if env.high_availability and llm.capacity.min < 2:
        yield Problem("llm.capacity.min", f"is {llm.capacity.min} but high_availability = true: one host is one "
                      "zone, and its restart or a Spot interruption takes the self-hosted model down.",
                      "set capacity.min (and desired) to at least 2, or set high_availability = false.")
    if env.high_availability and llm.scheduled_scaling:
        yield Problem("llm.scheduled_scaling", "is true but high_availability = true: the schedule takes the "
                      "group to zero hosts.", "set scheduled_scaling = false, or high_availability = false.")


@rule("on-demand base within the group's maximum")
def _on_demand_base(env: Environment) -> Iterator[Problem]:
    llm = env.llm
    if llm.on_demand_base > llm.capacity.max:
        yield Problem("llm.on_demand_base", f"{llm.on_demand_base} exceeds llm.capacity.max {llm.capacity.max}.",
                      "lower on_demand_base or raise capacity.max.")


@rule("a warm pool within the group's maximum, on-demand only")
def _warm_pool(env: Environment) -> Iterator[Problem]:
    llm = env.llm
    if llm.warm_pool_size > llm.capacity.max:
        yield Problem("llm.warm_pool_size", f"{llm.warm_pool_size} exceeds llm.capacity.max {llm.capacity.max}.",
                      "keep at most capacity.max instances warm.")
    spot = llm.on_demand_base < llm.capacity.max and llm.on_demand_percentage_above_base_capacity < 100
    if llm.warm_pool_size and (llm.spot_instance_types or spot):
        # EC2 Auto Scaling warm pools do not support mixed instances policies or Spot.
        yield Problem("llm.warm_pool_size", "is set on a group that uses Spot (a mixed instances policy).",
                      "for a warm pool run on-demand only: spot_instance_types = [] and "
                      "on_demand_base = capacity.max; or set warm_pool_size = 0.")


@rule("a root volume that holds the model")
def _root_volume(env: Environment) -> Iterator[Problem]:
    llm = env.llm
    if llm.root_volume_gb < llm.model_size_gb + 30:
        yield Problem("llm.root_volume_gb", f"{llm.root_volume_gb} GB cannot hold the {llm.model_size_gb} GB model "
                      "beside the AMI and the vLLM image (about 30 GB).",
                      f"use at least {llm.model_size_gb + 30} GB.")


@rule("exactly one weights location")
def _weights(env: Environment) -> Iterator[Problem]:
    llm = env.llm
    if (llm.weights_s3_prefix is None) == (llm.hf_model_id is None):
        yield Problem("llm.weights_s3_prefix", "and llm.hf_model_id are both set or both missing.",
                      "set exactly one weights location: a prefix in the weights bucket, or a Hugging Face id.")
    if llm.hf_token_secret_arn and not llm.hf_model_id:
        yield Problem("llm.hf_token_secret_arn", "is set without llm.hf_model_id.", "remove it or set hf_model_id.")


@rule("the model has a private name")
def _llm_dns_name(env: Environment) -> Iterator[Problem]:
    if env.llm.dns_name is None:
        yield Problem("llm.dns_name", "is missing; the gateway reaches the model by a private name.",
                      "set a name your certificate covers, e.g. \"llm.internal.example.com\".")


def covers(certificate_name: str, host: str) -> bool:
    """ACM semantics: an exact name, or a wildcard for exactly one more label on the left."""
    if certificate_name.startswith("*."):
        label, _, parent = host.partition(".")
        return bool(label) and parent == certificate_name[2:]
    return certificate_name == host


@rule("the internal listener has a certificate of its own that covers the private name")
def _llm_certificate(env: Environment) -> Iterator[Problem]:
    """The internal listener serves llm.dns_name, which LiteLLM verifies; the public edge
    certificate (e.g. *.example.com) does not cover a deeper private name."""
    llm = env.llm
    example = f"llm.{env.name}.internal.example.com"
    if llm.certificate_arn is None:
        yield Problem("llm.certificate_arn", "is missing; the internal model ALB serves HTTPS for llm.dns_name, "
                      "which the edge certificate does not cover.",
                      f"request an ACM certificate in {env.region} for the private name (e.g. {example} or "
                      f"*.{env.name}.internal.example.com), then set llm.certificate_arn and llm.certificate_domains.")
    else:
        yield from _check_certificate("llm.certificate_arn", llm.certificate_arn, env.region, "the internal model ALB")
    if llm.dns_name is None:
        return
    if not llm.certificate_domains:
        yield Problem("llm.certificate_domains", "is empty, so nothing shows the certificate covers llm.dns_name.",
                      "list the certificate's domain name and subject alternative names as ACM shows them.")
    elif not any(covers(name, llm.dns_name) for name in llm.certificate_domains):
        parent = llm.dns_name.split(".", 1)[1]
        yield Problem("llm.certificate_domains", f"{', '.join(llm.certificate_domains)} does not cover "
                      f"llm.dns_name {llm.dns_name!r} (a wildcard covers exactly one label).",
                      f"use a certificate for {llm.dns_name!r} or '*.{parent}', or change llm.dns_name.")


def _known_time_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        # Without a time zone database on this machine nothing can be checked; AWS checks it.
        return not available_timezones()
    return True


@rule("a schedule in a known time zone that scales between two hours")
def _schedule(env: Environment) -> Iterator[Problem]:
    llm = env.llm
    if not _known_time_zone(llm.schedule_time_zone):
        yield Problem("llm.schedule_time_zone", f"{llm.schedule_time_zone!r} is not an IANA time zone.",
                      "use a name such as \"Etc/UTC\", \"Europe/London\" or \"America/Chicago\".")
    if not llm.scheduled_scaling:
        return
    if llm.scale_down_hour == llm.scale_up_hour:
        yield Problem("llm.scale_up_hour", f"equals llm.scale_down_hour ({llm.scale_down_hour}).",
                      "choose different hours for scaling down and up.")
    if llm.capacity.min < 1:
        yield Problem("llm.capacity.min", "is 0 with scheduled_scaling = true: in working hours target tracking "
                      "could scale the group to zero, and no metric scales it out of zero again.",
                      "set capacity.min to at least 1; the schedule takes the group to zero outside working hours.")


@rule("gp3 throughput within what its IOPS allow")
def _gp3_throughput(env: Environment) -> Iterator[Problem]:
    llm = env.llm
    if llm.root_volume_throughput_mibps * 4 > llm.root_volume_iops:
        yield Problem("llm.root_volume_throughput_mibps",
                      f"{llm.root_volume_throughput_mibps} MiB/s needs more than {llm.root_volume_iops} IOPS "
                      "(gp3 allows 0.25 MiB/s per provisioned IOPS).",
                      f"raise llm.root_volume_iops to at least {llm.root_volume_throughput_mibps * 4} or lower the "
                      f"throughput to {llm.root_volume_iops // 4}.")


@rule("protected environments pin their images")
def _vllm_image_pinned(env: Environment) -> Iterator[Problem]:
    if env.protect_stateful and not _pinned(env.llm.vllm_image):
        yield Problem("llm.vllm_image", f"{env.llm.vllm_image!r} is not pinned.",
                      "pin a release tag (e.g. :v0.11.0) or a digest in protected environments.")


@rule("images come through the environment's own registry cache")
def _images_cached(env: Environment) -> Iterator[Problem]:
    """Every task start and GPU boot pulls its image: from a third-party registry that is an
    anonymous, rate-limited pull (Docker Hub: per NAT address) and an outage there is ours."""
    registry = f"{env.account_id}.dkr.ecr.{env.region}.amazonaws.com"
    for field, image in (("gateway.image", env.gateway.image), ("llm.vllm_image", env.llm.vllm_image)):
        host = image.split("/", 1)[0]
        if (upstream := upstream_of(image)) is not None:
            prefix, repository = upstream
            yield Problem(field, f"{image!r} is pulled from {PULL_THROUGH_CACHES[prefix][0]} directly, "
                          "anonymously and rate-limited, on every start.",
                          f"pull it through this environment's cache: \"{registry}/{prefix}/{repository}\".")
        elif ".dkr.ecr." in host and host != registry:
            yield Problem(field, f"is in registry {host}, not this environment's ({registry}).",
                          f"use an image of {registry} (its pull-through cache: {', '.join(PULL_THROUGH_CACHES)}/…).")


# --- realtime -----------------------------------------------------------------------------

@rule("the worker calls its model over TLS")
def _model_endpoint(env: Environment) -> Iterator[Problem]:
    url = env.realtime.model_endpoint_url
    if url is None:
        yield Problem("realtime.model_endpoint_url", "is missing; the worker needs a model endpoint.",
                      "set the gateway's URL (e.g. \"https://api.example.com/v1\") or the internal model endpoint.")
    elif not url.startswith("https://"):
        yield Problem("realtime.model_endpoint_url", "is not an https:// URL.", "call the model over TLS.")


@rule("chat models are gateway routes")
def _chat_models(env: Environment) -> Iterator[Problem]:
    routes = {m.name for m in env.gateway.models}
    for i, name in enumerate(env.realtime.models):
        if name not in routes:
            yield Problem(f"realtime.models[{i}]", f"{name!r} is not a gateway model.",
                          f"use one of: {', '.join(sorted(routes))}.")


@rule("sign-in URLs over https")
def _sign_in_urls(env: Environment) -> Iterator[Problem]:
    for field in ("callback_urls", "logout_urls"):
        for i, url in enumerate(getattr(env.realtime, field)):
            if not url.startswith("https://"):
                yield Problem(f"realtime.{field}[{i}]", f"{url!r} is not an https:// URL.",
                              "Cognito accepts only https (http only for localhost, which you should not ship).")


@rule(CERTIFICATE_RULE)
def _realtime_certificate(env: Environment) -> Iterator[Problem]:
    if env.realtime.custom_domain:
        yield from _own_or_edge_certificate(env, "realtime", env.realtime.certificate_arn, env.region,
                                            "the WebSocket custom domain")


@rule("protected environments require MFA")
def _mfa(env: Environment) -> Iterator[Problem]:
    if env.protect_stateful and env.realtime.mfa != "ON":
        yield Problem("realtime.mfa", "is optional in a protected environment.", "set mfa = \"ON\".")


@rule("a burst at least the steady rate")
def _throttling(env: Environment) -> Iterator[Problem]:
    rt = env.realtime
    if rt.throttling_burst_limit < rt.throttling_rate_limit:
        yield Problem("realtime.throttling_burst_limit", "is below throttling_rate_limit.",
                      "allow a burst at least as large as the steady rate.")


@rule("an output cap the self-hosted model can serve")
def _max_output_tokens(env: Environment) -> Iterator[Problem]:
    """vLLM refuses (400) a request whose max_tokens alone reaches its context length: every
    chat request to the self-hosted model would be refused."""
    rt = env.realtime
    self_hosted = {m.name for m in env.gateway.models if m.self_hosted}
    chat_models = set(rt.models) if rt.models else {m.name for m in env.gateway.models}
    if self_hosted & chat_models and rt.max_output_tokens >= env.llm.max_model_len:
        yield Problem("realtime.max_output_tokens", f"{rt.max_output_tokens} is not below llm.max_model_len "
                      f"({env.llm.max_model_len}), the self-hosted model's context: it refuses every request "
                      "whose answer may be that long.",
                      f"use fewer than {env.llm.max_model_len} tokens (leave room for the prompt), or raise "
                      "llm.max_model_len.")


# Lambda's guidance for SQS sources; the event source mapping's maximum concurrency range.
MIN_MAX_RECEIVES = 5
MIN_WORKER_CONCURRENCY, MAX_WORKER_CONCURRENCY = 2, 1000


@rule("enough receives that throttling alone never dead-letters a request")
def _max_receives(env: Environment) -> Iterator[Problem]:
    rt = env.realtime
    if rt.max_receives < MIN_MAX_RECEIVES:
        yield Problem("realtime.max_receives", f"{rt.max_receives} would dead-letter requests whose batches were "
                      "only throttled (a throttled batch counts as a receive).",
                      f"use at least {MIN_MAX_RECEIVES}, as Lambda's guidance for SQS sources says.")


@rule("a worker concurrency an SQS event source mapping accepts")
def _worker_concurrency(env: Environment) -> Iterator[Problem]:
    rt = env.realtime
    if not MIN_WORKER_CONCURRENCY <= rt.worker_concurrency <= MAX_WORKER_CONCURRENCY:
        yield Problem("realtime.worker_concurrency", f"{rt.worker_concurrency} is outside "
                      f"{MIN_WORKER_CONCURRENCY}-{MAX_WORKER_CONCURRENCY}, the maximum concurrency an SQS event "
                      "source mapping accepts (the worker reserves the same number).",
                      f"use a value from {MIN_WORKER_CONCURRENCY} to {MAX_WORKER_CONCURRENCY}, sized to what the "
                      "model endpoint serves at once.")


# --- backend, foundation, observability ---------------------------------------------------

@rule("a backend's settings match its type")
def _backend_settings(env: Environment) -> Iterator[Problem]:
    backend = env.backend
    if backend.type == "s3" and not backend.bucket:
        yield Problem("backend.bucket", "is required when backend.type = \"s3\".",
                      "name the state bucket, or use type = \"local\".")
    if backend.type == "local" and (backend.bucket or backend.kms_key_id):
        yield Problem("backend.type", "is \"local\" but S3 settings are given.",
                      "set type = \"s3\" or remove bucket/kms_key_id.")


@rule("protected environments keep state in S3")
def _protected_backend(env: Environment) -> Iterator[Problem]:
    if env.protect_stateful and env.backend.type != "s3":
        # State holds secret values where AWS has no write-only argument (the Cognito machine
        # clients' secrets): never on one laptop.
        yield Problem("backend.type", "is \"local\" in a protected environment; its state holds secrets.",
                      f"set type = \"s3\" and bucket = the bucket the {env.name}-state stack creates "
                      f"(cdktn deploy {env.name}-state).")


@rule("a CloudWatch Logs retention of at least 90 days")
def _log_retention(env: Environment) -> Iterator[Problem]:
    days = env.foundation.log_retention_days
    if days not in LOG_RETENTION_DAYS or days < 90:
        yield Problem("foundation.log_retention_days", f"{days} is not an allowed retention.",
                      "use a CloudWatch Logs retention value of at least 90 days (365 recommended).")


@rule("overrides name platform alarms, within range")
def _alarm_overrides(env: Environment) -> Iterator[Problem]:
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


@rule("the free-storage alarm sits below storage autoscaling's trigger")
def _free_storage_alarm(env: Environment) -> Iterator[Problem]:
    storage = BY_NAME["rds-free-storage"]
    override = env.observability.overrides.get(storage.name)
    threshold = override.threshold if override and override.threshold is not None else storage.threshold
    trigger = storage_autoscaling_trigger(env.data.db_storage_gb)
    if env.data.db_max_storage_gb > env.data.db_storage_gb and threshold >= trigger:
        # RDS grows the volume when free space falls to 10 % of the allocation: an alarm at or
        # above that pages for growth autoscaling handles itself.
        yield Problem(f"observability.overrides.{storage.name}.threshold" if override else "data.db_storage_gb",
                      f"{threshold:,.0f} bytes is at or above storage autoscaling's trigger (10 % of "
                      f"{env.data.db_storage_gb} GiB = {trigger:,} bytes).",
                      f"alarm below {trigger:,} bytes, or allocate more storage (data.db_storage_gb).")


@rule("a database class the connection alarm can size")
def _db_class(env: Environment) -> Iterator[Problem]:
    if env.data.db_instance_class not in DB_MEMORY_GIB:
        yield Problem("data.db_instance_class", f"{env.data.db_instance_class!r} has no known memory size, so the "
                      "connection alarm cannot be sized.", f"use one of: {', '.join(DB_MEMORY_GIB)}.")


@rule("protected environments alert someone")
def _alarm_recipients(env: Environment) -> Iterator[Problem]:
    if env.protect_stateful and not env.observability.alarm_emails:
        yield Problem("observability.alarm_emails", "is empty in a protected environment.",
                      "list at least one address so alarms reach someone.")

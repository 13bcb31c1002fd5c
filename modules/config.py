"""Typed, validated environment configuration.

An environment is a folder under `environments/` holding `environment.toml`. It is parsed
into frozen pydantic models (types, ranges, unknown keys), then checked against the rules
that span fields (subnets inside the VPC, HA needs two AZs, …). Every problem is reported
at once, each naming the environment, the field and the fix; no construct is built before
all selected environments pass.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import IPv4Network
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

ENVIRONMENTS_DIR = Path(__file__).resolve().parent.parent / "environments"
CONFIG_FILE = "environment.toml"

# Availability zones per supported region (Bedrock is offered in each of these).
REGION_AZS: dict[str, tuple[str, ...]] = {
    "eu-west-1": ("eu-west-1a", "eu-west-1b", "eu-west-1c"),
    "eu-west-2": ("eu-west-2a", "eu-west-2b", "eu-west-2c"),
    "eu-central-1": ("eu-central-1a", "eu-central-1b", "eu-central-1c"),
    "us-east-1": ("us-east-1a", "us-east-1b", "us-east-1c", "us-east-1d", "us-east-1f"),
    "us-west-2": ("us-west-2a", "us-west-2b", "us-west-2c", "us-west-2d"),
}

# Fargate task sizes: cpu units -> allowed memory (MiB).
FARGATE_SIZES: dict[int, tuple[int, ...]] = {
    256: (512, 1024, 2048),
    512: tuple(range(1024, 4097, 1024)),
    1024: tuple(range(2048, 8193, 1024)),
    2048: tuple(range(4096, 16385, 1024)),
    4096: tuple(range(8192, 30721, 1024)),
    8192: tuple(range(16384, 61441, 4096)),
    16384: tuple(range(32768, 122881, 8192)),
}

GPU_FAMILIES = ("g4dn", "g5", "g6", "g6e", "gr6", "p4d", "p4de", "p5", "p5e")

# Retention values CloudWatch Logs accepts.
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096,
                      1827, 2192, 2557, 2922, 3288, 3653)

Name = Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{1,20}$")]


class Section(BaseModel):
    """Base of every config section: immutable, and unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Backend(Section):
    type: Literal["local", "s3"] = "local"
    bucket: str | None = None
    key_prefix: str = "llm-platform"
    region: str | None = None
    kms_key_id: str | None = None


class Network(Section):
    vpc_cidr: IPv4Network
    availability_zones: list[str]
    public_subnets: list[IPv4Network]
    private_subnets: list[IPv4Network]
    database_subnets: list[IPv4Network]
    nat_gateways: Literal["single", "per_az"] = "per_az"


class Foundation(Section):
    log_retention_days: int = 365
    archive_after_days: Annotated[int, Field(ge=30)] = 90
    audit_retention_days: Annotated[int, Field(ge=1)] = 2555
    audit_object_lock: bool = False
    cloudtrail: bool = True


class Edge(Section):
    certificate_arn: str | None = None
    idle_timeout_seconds: Annotated[int, Field(ge=1, le=4000)] = 300
    managed_rules_action: Literal["block", "count"] = "block"
    rate_limit_per_5_minutes: Annotated[int, Field(ge=10, le=2_000_000_000)] = 2000
    max_body_bytes: Annotated[int, Field(ge=8192, le=100_000_000)] = 4_000_000
    allowed_countries: list[Annotated[str, Field(pattern=r"^[A-Z]{2}$")]] = []
    trusted_cidrs: list[IPv4Network] = []
    waf_log_destination: Literal["s3", "cloudwatch"] = "cloudwatch"


class Data(Section):
    postgres_version: str = "16"
    db_instance_class: str = "db.t4g.small"
    db_storage_gb: Annotated[int, Field(ge=20)] = 20
    db_max_storage_gb: Annotated[int, Field(ge=20)] = 100
    multi_az: bool = True
    backup_retention_days: Annotated[int, Field(ge=1, le=35)] = 7
    redis_node_type: str = "cache.t4g.small"
    redis_replicas: Annotated[int, Field(ge=0, le=5)] = 1
    redis_version: str = "7.1"
    dynamodb_replica_regions: list[str] = []


class Capacity(Section):
    min: Annotated[int, Field(ge=0)]
    desired: Annotated[int, Field(ge=0)]
    max: Annotated[int, Field(ge=1)]


class ModelRoute(Section):
    """A friendly model name routed to Bedrock or to an OpenAI-compatible upstream."""

    name: Annotated[str, Field(pattern=r"^[a-zA-Z0-9._-]+$")]
    bedrock_model_id: str | None = None
    upstream_url: str | None = None


class Gateway(Section):
    image: str
    cpu: int = 1024
    memory: int = 2048
    capacity: Capacity = Capacity(min=2, desired=2, max=5)
    fargate_spot: bool = False
    cpu_target_percent: Annotated[int, Field(ge=10, le=95)] = 70
    memory_target_percent: Annotated[int, Field(ge=10, le=95)] = 75
    models: list[ModelRoute]


class Llm(Section):
    """GPU model tier sizing (validated now; consumed by the llm layer)."""

    instance_type: str = "g5.xlarge"
    capacity: Capacity = Capacity(min=1, desired=1, max=4)
    on_demand_base: Annotated[int, Field(ge=0)] = 1
    scheduled_scaling: bool = False


class Observability(Section):
    """Who is alerted (validated now; consumed by the observability layer)."""

    alarm_emails: list[Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]] = []


class Environment(Section):
    name: Name
    project: Name = "llmlite"
    region: str
    high_availability: bool
    protect_stateful: bool
    tags: dict[str, str] = {}
    backend: Backend = Backend()
    network: Network
    foundation: Foundation = Foundation()
    edge: Edge = Edge()
    data: Data = Data()
    gateway: Gateway
    llm: Llm = Llm()
    observability: Observability = Observability()

    def resource_name(self, suffix: str) -> str:
        """`<project>-<env>-<suffix>`: the one naming rule for AWS resource names."""
        return f"{self.project}-{self.name}-{suffix}"


@dataclass(frozen=True)
class Problem:
    field: str
    message: str
    fix: str


class ConfigError(Exception):
    """Invalid environments: every problem with its environment, field and fix."""

    def __init__(self, problems: list[tuple[str, Problem]]) -> None:
        self.problems = problems
        super().__init__("\n".join(f"environment '{env}': {p.field}: {p.message} Fix: {p.fix}"
                                   for env, p in problems))


def _invalid(environment: str, *problems: Problem) -> ConfigError:
    return ConfigError([(environment, p) for p in problems])


# --- loading -------------------------------------------------------------------------------

def available_environments(root: Path = ENVIRONMENTS_DIR) -> list[str]:
    return sorted(p.parent.name for p in root.glob(f"*/{CONFIG_FILE}"))


def load_environment(name: str, root: Path = ENVIRONMENTS_DIR) -> Environment:
    path = root / name / CONFIG_FILE
    if not path.is_file():
        known = ", ".join(available_environments(root)) or "none"
        raise _invalid(name, Problem("(file)", f"{path} does not exist.", f"create it, or pick one of: {known}."))
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:
        raise _invalid(name, Problem("(file)", f"{path} is not valid TOML ({err}).",
                                     "correct the TOML syntax.")) from None
    if "name" in raw:
        raise _invalid(name, Problem("name", "is set in the file.",
                                     "remove it; the folder name is the environment name."))
    try:
        env = Environment.model_validate({**raw, "name": name})
    except ValidationError as err:
        raise _invalid(name, *(_problem_from_pydantic(e) for e in err.errors())) from None
    problems = list(check(env))
    if problems:
        raise _invalid(name, *problems)
    return env


def load_environments(names: list[str], root: Path = ENVIRONMENTS_DIR) -> list[Environment]:
    """Load and validate all `names`; raise one ConfigError listing every problem of every one."""
    envs, problems = [], []
    for name in names:
        try:
            envs.append(load_environment(name, root))
        except ConfigError as err:
            problems += err.problems
    if problems:
        raise ConfigError(problems)
    return envs


def _field(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The section model that owns the last element of `loc` (for 'did you mean')."""
    model: Any = Environment
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        if field is None:
            return None
        annotation = field.annotation
        args = getattr(annotation, "__args__", ())
        model = next((a for a in (annotation, *args) if isinstance(a, type) and issubclass(a, BaseModel)), None)
        if model is None:
            return None
    return model


def _problem_from_pydantic(error: dict[str, Any]) -> Problem:
    loc, kind = error["loc"], error["type"]
    field = _field(loc)
    if kind == "extra_forbidden":
        model = _model_at(loc)
        allowed = sorted(model.model_fields) if model else []
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        return Problem(field, "is not a known key.",
                       f"{hint}remove it or use one of: {', '.join(allowed)}.")
    if kind == "missing":
        return Problem(field, "is required.", "add it to environment.toml.")
    if kind == "literal_error":
        expected = error.get("ctx", {}).get("expected", "")
        return Problem(field, f"{error['input']!r} is not allowed.", f"use one of {expected}.")
    return Problem(field, f"{error['msg']} (got {error.get('input')!r}).",
                   "correct the value in environment.toml.")


# --- rules that span fields ----------------------------------------------------------------

def check(env: Environment) -> Iterator[Problem]:
    yield from _check_network(env)
    yield from _check_sizing(env)
    yield from _check_edge(env)
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
    gw, llm, data = env.gateway, env.llm, env.data
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
    family = llm.instance_type.split(".")[0]
    if family not in GPU_FAMILIES:
        yield Problem("llm.instance_type", f"{llm.instance_type!r} is not a GPU instance type.",
                      f"use a GPU family: {', '.join(GPU_FAMILIES)} (e.g. g5.xlarge).")
    yield from _check_capacity("llm.capacity", llm.capacity)
    if llm.on_demand_base > llm.capacity.max:
        yield Problem("llm.on_demand_base", f"{llm.on_demand_base} exceeds llm.capacity.max {llm.capacity.max}.",
                      "lower on_demand_base or raise capacity.max.")
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
    tag = gw.image.rsplit(":", 1)[-1] if ":" in gw.image.rsplit("/", 1)[-1] else ""
    pinned = "@sha256:" in gw.image or (tag and tag not in ("latest", "main-latest"))
    if env.protect_stateful and not pinned:
        yield Problem("gateway.image", f"{gw.image!r} is not pinned.",
                      "pin a release tag (e.g. :v1.55.8-stable) or a digest (@sha256:…) in protected environments.")
    names = [m.name for m in gw.models]
    if not names:
        yield Problem("gateway.models", "is empty.", "route at least one model.")
    if len(set(names)) != len(names):
        yield Problem("gateway.models", "repeats a model name.", "give each route a unique name.")
    for i, model in enumerate(gw.models):
        if (model.bedrock_model_id is None) == (model.upstream_url is None):
            yield Problem(f"gateway.models[{i}]", f"{model.name!r} sets neither or both targets.",
                          "set exactly one of bedrock_model_id or upstream_url.")
        if model.upstream_url is not None and not model.upstream_url.startswith("https://"):
            yield Problem(f"gateway.models[{i}].upstream_url", "is not an https:// URL.",
                          "route to the upstream over TLS (https://…).")


_ACM_ARN = re.compile(r"^arn:aws[a-z-]*:acm:(?P<region>[a-z0-9-]+):\d{12}:certificate/[0-9a-f-]{36}$")


def _check_edge(env: Environment) -> Iterator[Problem]:
    arn = env.edge.certificate_arn
    if arn is None:
        yield Problem("edge.certificate_arn", "is missing; the public ALB serves HTTPS only.",
                      f"set it to an ACM certificate ARN in {env.region}.")
    elif not (match := _ACM_ARN.match(arn)):
        yield Problem("edge.certificate_arn", f"{arn!r} is not an ACM certificate ARN.",
                      "use arn:aws:acm:<region>:<account>:certificate/<uuid>.")
    elif match["region"] != env.region:
        yield Problem("edge.certificate_arn", f"is in {match['region']}, not {env.region}.",
                      f"an ALB needs a certificate from its own region ({env.region}).")
    for i, cidr in enumerate(env.edge.trusted_cidrs):
        if cidr.prefixlen == 0:
            yield Problem(f"edge.trusted_cidrs[{i}]", "trusts the whole internet.", "list specific ranges.")


def _check_backend(env: Environment) -> Iterator[Problem]:
    backend = env.backend
    if backend.type == "s3" and not backend.bucket:
        yield Problem("backend.bucket", "is required when backend.type = \"s3\".",
                      "name the state bucket, or use type = \"local\".")
    if backend.type == "local" and (backend.bucket or backend.kms_key_id):
        yield Problem("backend.type", "is \"local\" but S3 settings are given.",
                      "set type = \"s3\" or remove bucket/kms_key_id.")


def _check_observability(env: Environment) -> Iterator[Problem]:
    if env.protect_stateful and not env.observability.alarm_emails:
        yield Problem("observability.alarm_emails", "is empty in a protected environment.",
                      "list at least one address so alarms reach someone.")


def _check_foundation(env: Environment) -> Iterator[Problem]:
    days = env.foundation.log_retention_days
    if days not in LOG_RETENTION_DAYS or days < 90:
        yield Problem("foundation.log_retention_days", f"{days} is not an allowed retention.",
                      "use a CloudWatch Logs retention value of at least 90 days (365 recommended).")

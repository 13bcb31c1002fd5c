"""Every layer as a self-contained Terraform module, for teams whose repositories are plain
Terraform (`python main.py --export-modules [--environment prod] [DIR]`).

The same layer constructs build the module as build the stacks: their typed inputs come from
module variables instead of other stacks (`<layer>_<field>`, e.g. `network_vpc_id`), and each
field of their typed outputs becomes a module output of the same name. Modules declare
`required_providers` with a version range and hold no provider or backend block; region,
partition and account are the caller's provider's (data sources), per-region facts a lookup in
the region table the module carries (modules/parts/context.py). Zones, NAT layout, the
switches, sizes, engine versions, Redis nodes, tags and protection are validated variables;
the remaining settings are fixed at export from the chosen environment, and each module's
README names them.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import tempfile
import typing
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import jsii
from cdktn import (App, Aspects, Fn, IAspect, Op, TerraformOutput, TerraformResource, TerraformStack,
                   TerraformVariableValidationConfig, Token)
from cdktn_provider_aws.cloudtrail import Cloudtrail
from cdktn_provider_aws.data_aws_caller_identity import DataAwsCallerIdentity
from cdktn_provider_aws.data_aws_region import DataAwsRegion
from cdktn_provider_aws.elasticache_replication_group import ElasticacheReplicationGroup
from constructs import Construct, IConstruct
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from modules.parts import packaging
from modules.config import Environment
from modules.config import models
from modules.config.settings import SETTINGS, GatewaySettings, Identity, settings_for, source_of
from modules.config.models import FARGATE_SIZES, GPU_MEMORY_GB, LOG_RETENTION_DAYS, Capacity
from modules.config.rules import MAX_WORKER_CONCURRENCY, MIN_WORKER_CONCURRENCY
from modules.catalogue.alarms import DB_MEMORY_GIB, DEPLOY_MAXIMUM_PERCENT, MIN_POOL_PER_TASK, RESERVED_CONNECTIONS
from modules.layers.data import MAX_REDIS_REPLICAS, Data, DataOutputs
from modules.layers.edge import Edge, EdgeOutputs, WafChoice
from modules.layers.foundation import Foundation, FoundationOutputs
from modules.layers.gateway import INFERENCE_PROFILE_GEOS, Gateway, GatewayOutputs
from modules.layers.llm import Llm, LlmOutputs
from modules.engine.module_stack import ProviderRequirement, TFModuleOutput, TFModuleVariable
from modules.layers.network import INTERFACE_ENDPOINTS, SECURITY_GROUPS, Network, NetworkOutputs, NetworkShape
from modules.layers.observability import Observability, Watched
from modules.layers.realtime import Realtime, RealtimeOutputs
from modules.parts.switch import attribute_or
from modules.parts.context import REGION_TABLE, region_fact, region_table
from modules.engine.stacks import APP_CONTEXT, TARGET_VERSIONS, require_terraform
from modules.tools.release import CHANGELOG, newest_version

MODULES_DIR = Path(__file__).resolve().parents[2] / "terraform-modules"
AWS_PROVIDER = (">= 6.0, < 7.0", "hashicorp/aws")
OUTPUT_TYPES = {"foundation": FoundationOutputs, "network": NetworkOutputs, "edge": EdgeOutputs, "data": DataOutputs,
                "gateway": GatewayOutputs, "llm": LlmOutputs, "realtime": RealtimeOutputs}
EXPORTED_LAYERS = (*OUTPUT_TYPES, "observability")
TERRAFORM_TYPES = {str: "string", int: "number", list[str]: "list(string)", dict[str, str]: "map(string)"}


TESTS = "tests"  # a module's hand-written `terraform test` files, kept across exports


def hand_written(path: Path) -> bool:
    """Files under terraform-modules/ the export does not write: the recorded interface
    (modules/tools/release.py) and each module's tests."""
    relative = path.relative_to(MODULES_DIR)
    return relative.parts == ("interface.json",) or TESTS in relative.parts[1:2]


class ExportError(Exception):
    pass


def field_types(outputs: type) -> dict[str, Any]:
    return typing.get_type_hints(outputs)


class Inputs:
    """Another layer's typed outputs, read from module variables named `<layer>_<field>`.

    A variable is declared the first time a layer reads the field, so a module asks for
    exactly what it uses. Lists and maps have the shape of the exported environment."""

    def __init__(self, stack: Construct, layer: str, env: Environment) -> None:
        self._stack, self._layer, self._env = stack, layer, env
        self._types = field_types(OUTPUT_TYPES[layer])
        self._values: dict[str, Any] = {}

    def __getattr__(self, field: str) -> Any:
        if field.startswith("_"):
            raise AttributeError(field)
        if field not in self._values:
            kind = self._types[field]
            name = f"{self._layer}_{field}"
            description, validation, optional = f"{field} output of the {self._layer} module", None, {}
            if name == "network_security_group_ids":  # also a bring-your-own VPC's groups
                description, validation = security_group_map(name)
            if field in PER_ZONE_OUTPUTS:  # also a bring-your-own VPC's subnets
                description, validation = per_zone_input(name, field)
            if name in LIST_INPUTS:
                description, validation = list_input(name)
            if name in OPTIONAL_INPUTS:  # "" (the default, or null) leaves out what uses it
                description, rule = OPTIONAL_INPUTS[name]
                validation = [TerraformVariableValidationConfig(condition="${" + rule[0].format(name=name) + "}",
                                                                error_message=rule[1].format(name=name))]
                optional = {"default": "", "nullable": False}
            variable = TFModuleVariable(self._stack, name, type=TERRAFORM_TYPES[kind], description=description,
                                        validation=validation, **optional)
            if kind == dict[str, str]:
                self._values[field] = {key: Fn.lookup(variable.value, key) for key in self._keys(field)}
            elif field in PER_ZONE_OUTPUTS or field in ANY_LENGTH:  # as long as the caller's zones make it
                self._values[field] = variable.list_value
            elif kind == list[str]:
                self._values[field] = [Fn.element(variable.list_value, i) for i in range(self._length(field))]
            else:
                self._values[field] = variable.number_value if kind is int else variable.string_value
        return self._values[field]

    def _keys(self, field: str) -> list[str]:
        return {"security_group_ids": list(SECURITY_GROUPS), "replica_kms_key_arns": [],
                "function_names": list(packaging.FUNCTIONS)}[field]

    def _length(self, field: str) -> int:
        raise ExportError(f"{self._layer}_{field}: a list input of unknown length. Fix: give its length here, or "
                          "list it in PER_ZONE_OUTPUTS if it has an entry per zone.")


# The network's outputs with an entry per zone: another module takes them at any length.
# (NAT addresses: one per zone, or one with single_nat_gateway; Redis nodes: 1 + redis_replicas.)
ANY_LENGTH = {"nat_public_ips", "redis_node_ids"}
PER_ZONE_OUTPUTS = {"public_subnet_ids": "public", "private_subnet_ids": "private", "database_subnet_ids": "database"}


def per_zone_input(name: str, field: str) -> tuple[str, list[TerraformVariableValidationConfig]]:
    """A subnet list another module reads: the network module's output, or a VPC of your own's
    subnets, one per zone."""
    return (f"{PER_ZONE_OUTPUTS[field].capitalize()} subnet ids, one per zone (at least {MIN_ZONES}): the network "
            f"module's {field}, or a VPC of your own's",
            [TerraformVariableValidationConfig(
                condition=f"${{length(var.{name}) >= {MIN_ZONES} && length(distinct(var.{name})) == length(var.{name})}}",
                error_message=f"{name} must list at least {MIN_ZONES} distinct subnet ids, one per zone (the network "
                              f"module's {field} output has them).")])


# List inputs of bounded length: (description, rule).
LIST_INPUTS = {
    "data_redis_node_ids": (
        "redis_node_ids output of the data module: the cache cluster id of each Redis node, as many as the group has "
        f"(1 to {1 + MAX_REDIS_REPLICAS}); each gets its alarms",
        (f"length(var.{{name}}) >= 1 && length(var.{{name}}) <= {1 + MAX_REDIS_REPLICAS}",
         f"{{name}} must list 1 to {1 + MAX_REDIS_REPLICAS} cache cluster ids, one per Redis node (a primary and up "
         f"to {MAX_REDIS_REPLICAS} replicas): pass the data module's redis_node_ids output.")),
}


def list_input(name: str) -> tuple[str, list[TerraformVariableValidationConfig]]:
    description, (condition, message) = LIST_INPUTS[name]
    return description, [TerraformVariableValidationConfig(condition="${" + condition.format(name=name) + "}",
                                                           error_message=message.format(name=name))]


# Another module's outputs a module can do without: "" (the default; null too) leaves out what
# reads them. Each is (description, rule).
OPTIONAL_INPUTS = {
    "llm_api_key_secret_arn": (
        "api_key_secret_arn output of the llm module; empty (the default) without a GPU tier: the self-hosted routes "
        "(and fallbacks to them) are left out of the LiteLLM config, the task gets no model secret and no grant on it",
        ("var.{name} == \"\" || can(regex(\"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{{12}}:secret:.+$\", "
         "var.{name}))",
         "{name} must be a Secrets Manager secret ARN (arn:aws:secretsmanager:<region>:<account>:secret:<name>), the "
         "llm module's api_key_secret_arn output, or empty without a GPU tier.")),
}


def security_group_map(name: str) -> tuple[str, list[TerraformVariableValidationConfig]]:
    """The security-group map a module reads: the network module's output, or a bring-your-own
    VPC's groups under the same keys (each key's group is attached to what it names)."""
    keys = ", ".join(f"`{key}` ({purpose})" for key, purpose in SECURITY_GROUPS.items())
    condition = (f"alltrue([for k in {json.dumps(list(SECURITY_GROUPS))} : contains(keys(var.{name}), k)]) && "
                 f"alltrue([for k in keys(var.{name}) : contains({json.dumps(list(SECURITY_GROUPS))}, k)])")
    # Terraform fills in the keys the caller's map lacks and those it does not know.
    roles = json.dumps(list(SECURITY_GROUPS))
    missing = f'${{join(", ", [for k in {roles} : k if !contains(keys(var.{name}), k)])}}'
    unknown = f'${{join(", ", [for k in keys(var.{name}) : k if !contains({roles}, k)])}}'
    return (f"Security group id by role: the network module's security_group_ids, or a VPC of your own's groups "
            f"under the keys {keys}",
            [TerraformVariableValidationConfig(
                condition="${" + condition + "}",
                error_message=f"{name} must map exactly the keys {', '.join(SECURITY_GROUPS)} to security group ids "
                              f"(the network module's security_group_ids output has them): missing [{missing}], "
                              f"unknown [{unknown}].")])


# Module-side copies of the environment files' rules (modules/config), worded as there.
# Each is (condition, message); Terraform checks them at plan, before any resource.
NAME_RULE = ("can(regex(\"^[a-z][a-z0-9-]{{1,20}}$\", var.{name}))",
             "{name} must match ^[a-z][a-z0-9-]{{1,20}}$: lowercase letters, digits and hyphens, starting with "
             "a letter, 2 to 21 characters.")
RETENTION_RULE = ("contains([" + ", ".join(str(d) for d in LOG_RETENTION_DAYS) + "], var.{name}) && "
                  "(var.{name} >= 90 || !var.deletion_protection)",
                  "{name} is not an allowed retention: use a CloudWatch Logs retention value of at least 90 days "
                  "(365 recommended); a sandbox without deletion_protection may keep less.")
# Modules hold no prevent_destroy (a lifecycle block takes no variable): this one switch guards
# what a destroy would lose, and off lets a sandbox destroy cleanly.
PROTECTION = ("Protect the stored data (protect_stateful): deletion protection on the database, tables, ALBs and "
              "user pool, final snapshots, 30-day secret recovery windows, a locked backup vault, buckets that keep "
              "their objects and a COMPLIANCE audit lock. false (a sandbox): all of these off, buckets emptied on "
              "destroy, no audit Object Lock, log retention below 90 days allowed")
DOMAIN_RULE = ("var.{name} == \"\" || can(regex(\"^([a-z0-9-]+\\\\.)+[a-z]{{2,}}$\", var.{name}))",
               "{name} must be a DNS name such as chat.example.com (lowercase), or empty for no custom domain.")
CERTIFICATE_RULE = ("can(regex(\"^arn:aws[a-z-]*:acm:[a-z0-9-]+:[0-9]{{12}}:certificate/[0-9a-f-]+$\", var.{name}))",
                    "{name} must be an ACM certificate ARN (arn:aws:acm:<region>:<account>:certificate/<id>) in the "
                    "caller's region and account.")
PINNED_RULE = ("can(regex(\"@sha256:[0-9a-f]{{64}}$\", var.{name})) || !contains([\"\", \"latest\", "
               "\"main-latest\"], try(regex(\":([^:/]+)$\", var.{name})[0], \"\"))",
               "{name} is not pinned: pin a release tag (e.g. :v1.108.11) or a digest (@sha256:…) in protected "
               "environments.")
# Zones are a list of any length from two: every per-zone list follows availability_zones.
MIN_ZONES = 2
ZONES_RULE = (f"length(var.{{name}}) >= {MIN_ZONES}",
              f"{{name}} lists fewer than {MIN_ZONES} zones: list {MIN_ZONES} or more zones of the caller's region "
              "(the database standby and the load balancers need two).")
PER_ZONE_RULE = ("length(var.{name}) == length(var.availability_zones)",
                 "{name} must have one entry per zone, as many as availability_zones, in the same order: add or "
                 "remove entries until the lengths agree.")
DISTINCT_RULE = ("length(distinct(var.{name})) == length(var.{name})",
                 "{name} lists a zone twice: list each zone once.")
CIDR_RULE = ("can(cidrnetmask(var.{name}))", "{name} must be an IPv4 CIDR such as 10.0.0.0/16.")
INSIDE_VPC_RULE = ("can(cidrnetmask(var.vpc_cidr)) && alltrue([for c in var.{name} : can(cidrnetmask(c)) && "
                   "tonumber(split(\"/\", c)[1]) >= tonumber(split(\"/\", var.vpc_cidr)[1]) && "
                   "cidrhost(format(\"%s/%s\", cidrhost(c, 0), split(\"/\", var.vpc_cidr)[1]), 0) == "
                   "cidrhost(var.vpc_cidr, 0)])",
                   "{name}: a subnet is outside the VPC CIDR: widen vpc_cidr to contain it (e.g. a /16) or move "
                   "the subnet inside.")
SMALLEST_SUBNET_RULE = ("alltrue([for c in var.{name} : !can(cidrnetmask(c)) || tonumber(split(\"/\", c)[1]) <= 28])",
                        "{name}: a subnet is smaller than /28, the smallest AWS subnet: use a prefix of /28 or wider.")
ZONE_IN_REGION = ("${{alltrue([for az in var.availability_zones : startswith(az, {region})])}}",
                  "availability_zones: every zone must be in the caller's provider region (${{{region}}}): use "
                  "zones of that region.")
# Any two subnets of the three tiers overlap when their network addresses agree at the shorter
# prefix (written out whole: it reads the three tiers' variables).
_TIERS = "concat(var.public_subnet_cidrs, var.private_subnet_cidrs, var.database_subnet_cidrs)"
_AT_SHORTER = ("cidrhost(format(\"%s/%s\", cidrhost({x}, 0), min(tonumber(split(\"/\", a)[1]), "
               "tonumber(split(\"/\", b)[1]))), 0)")
OVERLAP_RULE = (f"!alltrue([for c in {_TIERS} : can(cidrnetmask(c))]) || alltrue(flatten([for i, a in {_TIERS} : "
                f"[for j, b in {_TIERS} : j <= i || {_AT_SHORTER.format(x='a')} != {_AT_SHORTER.format(x='b')}]]))",
                "public_subnet_cidrs, private_subnet_cidrs and database_subnet_cidrs: two subnets overlap: give each "
                "subnet its own range.")
# A certificate is usable only by a load balancer of its own region (the caller's provider's).
# (Terraform's || evaluates both sides: try, so that an empty or malformed ARN is left to the ARN rule.)
CERTIFICATE_REGION_RULE = ("try(split(\":\", var.certificate_arn)[3], data.aws_region.region.id) == "
                           "data.aws_region.region.id",
                           "certificate_arn is a certificate of another region: a load balancer uses certificates "
                           "of its own region only; request or import it in the caller's provider region.")
REDIS_NODE_TYPE_RULE = ("can(regex(\"^cache\\\\.[a-z0-9]+\\\\.[a-z0-9]+$\", var.{name}))",
                        "{name} must be an ElastiCache node type such as cache.t4g.small or cache.r7g.large.")
# Versions ElastiCache runs with transit encryption, AUTH and auth_token_update_strategy.
REDIS_VERSIONS = ("6.2", "7.0", "7.1")
REDIS_VERSION_RULE = (f"contains({json.dumps(list(REDIS_VERSIONS))}, var.{{name}})",
                      f"{{name}}: use a Redis engine version ElastiCache offers: {', '.join(REDIS_VERSIONS)}.")
# RDS for PostgreSQL majors with standard support; a minor version may follow (16.4).
POSTGRES_MAJORS = (13, 14, 15, 16, 17)
POSTGRES_VERSION_RULE = (f"can(regex(\"^({'|'.join(map(str, POSTGRES_MAJORS))})(\\\\.[0-9]+)?$\", var.{{name}}))",
                         "{name}: use an RDS for PostgreSQL version: a major of "
                         f"{', '.join(map(str, POSTGRES_MAJORS))}, optionally with its minor (e.g. 16 or 16.4).")
# ElastiCache: a replication group without cluster mode has a primary and 0 to 5 replicas, and
# Multi-AZ needs automatic failover, which needs a replica to promote (CreateReplicationGroup).
REDIS_REPLICAS_RULE = (f"var.{{name}} >= 0 && var.{{name}} <= {MAX_REDIS_REPLICAS} && floor(var.{{name}}) == var.{{name}}",
                       f"{{name}} must be a whole number from 0 to {MAX_REDIS_REPLICAS}: a Redis replication group "
                       f"has one primary and up to {MAX_REDIS_REPLICAS} replicas. Use 0 for one node, 1 or more for "
                       "automatic failover and Multi-AZ.")
MULTI_AZ_REPLICA_RULE = ("var.redis_replicas >= 1 || !var.multi_az",
                         "redis_replicas is 0 but multi_az is true: Multi-AZ fails over to a replica in another zone. "
                         "Fix: set redis_replicas to 1 or more, or multi_az = false.")
EMAILS_RULE = ("alltrue([for e in var.{name} : can(regex(\"^[^@\\\\s]+@[^@\\\\s]+\\\\.[^@\\\\s]+$\", e))])",
               "{name}: every entry must be an email address (name@example.com).")
NOT_EMPTY_RULE = ("length(var.{name}) > 0", "{name} is empty in a protected environment: list at least one address "
                  "so alarms reach someone.")
# The environment files' connection budget (modules/config/rules.py): every task at the deploy
# peak keeps a workable pool of the data module's db_max_connections.
# (max(1, …): Terraform evaluates every operand, and a count below 1 is the first rule's to report.)
POOL_RULES = (
    ("var.gateway_max_tasks >= 1", "gateway_max_tasks: Input should be greater than or equal to 1."),
    (f"floor((var.data_db_max_connections - {RESERVED_CONNECTIONS}) / max(1, floor(var.gateway_max_tasks * "
     f"{DEPLOY_MAXIMUM_PERCENT} / 100))) >= {MIN_POOL_PER_TASK}",
     f"gateway_max_tasks: {DEPLOY_MAXIMUM_PERCENT // 100} x gateway_max_tasks tasks during a deploy leave fewer than "
     f"{MIN_POOL_PER_TASK} database connections per task of data_db_max_connections ({RESERVED_CONNECTIONS} of them "
     "reserved): lower gateway_max_tasks or choose a larger db_instance_class in the data module."))
# Switches a layer applies with modules.parts.switch (or passes straight to an argument): bool
# variables named after the field.
SWITCHES: dict[str, tuple[str, ...]] = {"data": ("multi_az",), "gateway": ("fargate_spot",)}
# A variable named other than its field, where the field's name alone would be ambiguous.
VARIABLE_NAMES = {"gateway.cpu": "gateway_cpu", "gateway.memory": "gateway_memory"}
# What a variable is for (its README row); a field without one is described by its path.
DESCRIPTIONS = {
    "data.multi_az": "A standby database in a second zone, and Redis Multi-AZ (needs redis_replicas of 1 or more)",
    "data.redis_replicas": "Read replicas of the Redis primary (0-5): the group has 1 + redis_replicas nodes, the "
                           "replicas in the zones after the primary's; automatic failover with 1 or more",
    "gateway.fargate_spot": "Run the LiteLLM tasks on Fargate Spot (interruptible, cheaper) instead of Fargate",
    "data.backup_retention_days": "Days RDS keeps automated backups (1-35)",
    "data.backup_plan_retention_days": "Days AWS Backup keeps the daily recovery points (7-3650)",
    "data.redis_node_type": "ElastiCache node type of the Redis group (e.g. cache.t4g.small)",
    "data.redis_version": "Redis engine version (6.2, 7.0 or 7.1)",
    "data.postgres_version": "RDS for PostgreSQL engine version: a major (16) or major.minor (16.4); the parameter "
                             "group follows the major",
    "data.db_instance_class": "RDS instance class; the database's max_connections follows it (the db_max_connections "
                              "output, which the gateway's pool and the connections alarm read)",
    "data.redis_auth_token_version": "Raise to send the AUTH secret's current value to Redis (write-only)",
    "data.redis_auth_update_strategy": "How Redis takes a new AUTH token: ROTATE keeps the previous one, SET drops it",
    "data.db_storage_gb": "Initial PostgreSQL storage (GB, gp3)",
    "data.db_max_storage_gb": "Ceiling of PostgreSQL storage autoscaling (GB), at or above db_storage_gb",
    "edge.idle_timeout_seconds": "Public ALB idle timeout (s): long enough for a streamed answer",
    "edge.rate_limit_per_5_minutes": "WAF requests per client IP per 5 minutes before it blocks",
    "gateway.cpu": "Fargate CPU units of a LiteLLM task (256-16384)",
    "gateway.memory": "Fargate memory of a LiteLLM task (MiB), one Fargate allows for gateway_cpu",
    "gateway.cpu_target_percent": "Average task CPU the gateway's scaling holds",
    "gateway.memory_target_percent": "Average task memory the gateway's scaling holds",
    "llm.instance_type": "GPU instance type of the model hosts (GPUs no larger than the exported Spot "
                         "alternatives')",
    "llm.on_demand_base": "GPU hosts always bought on demand; the rest may be Spot",
    "llm.on_demand_percentage_above_base_capacity": "Percent of the GPU hosts above on_demand_base bought on "
                                                    "demand (the rest Spot)",
    "llm.root_volume_gb": "Root volume of a GPU host (GB): the AMI, the vLLM image and the weights",
    "llm.root_volume_iops": "gp3 IOPS of the root volume (the weights copy is the boot's long pole)",
    "llm.root_volume_throughput_mibps": "gp3 throughput of the root volume (MiB/s), at most iops / 4",
    "llm.launch_timeout_seconds": "How long a booting host may take before the group abandons it (s)",
    "llm.gpu_target_percent": "Average GPU utilization the group's scaling holds",
    "llm.cpu_target_percent": "Average CPU utilization the group's scaling holds",
    "realtime.throttling_rate_limit": "WebSocket stage steady rate (requests per second)",
    "realtime.throttling_burst_limit": "WebSocket stage burst, at least the steady rate",
    "realtime.worker_concurrency": "Concurrent model calls of the chat worker (reserved and SQS maximum)",
    "realtime.connection_ttl_seconds": "How long a WebSocket connection record lives (s)",
    "realtime.cache_ttl_seconds": "How long a cached answer lives (s)",
    "realtime.max_frame_bytes": "Largest chat frame the API accepts (bytes)",
}
# Rules of a field beyond its config bounds (formatted with the variable's name).
FIELD_RULES = {"data.redis_node_type": (REDIS_NODE_TYPE_RULE,), "data.redis_version": (REDIS_VERSION_RULE,),
               "data.postgres_version": (POSTGRES_VERSION_RULE,)}
# What a typed output the layer does not publish itself means to a caller (its README row).
OUTPUT_DESCRIPTIONS = {
    "foundation": {
        "audit_bucket_arn": "ARN of the audit bucket (CloudTrail logs, object lock)",
        "waf_log_bucket_arn": "ARN of the bucket WAF writes its logs to (aws-waf-logs-…)",
        "replica_kms_key_arns": "Key ARN by region for copies in other regions (empty: the module makes none)"},
    "network": {
        "vpc_cidr": "CIDR of the VPC",
        "nat_public_ips": "Elastic IPs of the NAT gateways: the platform's own calls to its public URL come from them",
        "nat_gateway_ids": "NAT gateway each private subnet routes through, in zone order (the first zone's for "
                           "all with single_nat_gateway)",
        "public_route_table_id": "Route table of the public subnets (default route to the internet gateway)",
        "private_route_table_ids": "Route table of each private subnet, in zone order (default route to its NAT)",
        "database_route_table_id": "Route table of the database subnets (local routes only)",
        "vpc_endpoint_ids": "VPC endpoint id by service: s3 and dynamodb (gateway) and each interface endpoint; "
                            "null for one not in interface_endpoints"},
    "edge": {
        "alb_arn": "ARN of the public ALB",
        "alb_arn_suffix": "ARN suffix of the public ALB (CloudWatch LoadBalancer dimension)",
        "target_group_arn": "ARN of the LiteLLM target group (the gateway's ECS service registers in it)",
        "target_group_arn_suffix": "ARN suffix of the LiteLLM target group (CloudWatch TargetGroup dimension)",
        "web_acl_name": "Name of the WAF web ACL on the ALB (CloudWatch WebACL dimension)"},
    "data": {
        "db_address": "PostgreSQL host name (port 5432, TLS required)",
        "db_port": "PostgreSQL port",
        "db_username": "PostgreSQL master user name (its password is in db_master_secret_arn)",
        "db_resource_id": "RDS resource id, for rds-db:connect (IAM database authentication)",
        "db_instance_id": "RDS instance identifier (CloudWatch DBInstanceIdentifier dimension)",
        "db_max_connections": "max_connections the parameter group sets for db_instance_class: the gateway module "
                              "sizes its pool per task from it, the observability module its connections alarm",
        "db_storage_gb": "Initial PostgreSQL storage (GB): the observability module's free-storage share alarm",
        "redis_address": "Redis primary endpoint (TLS, AUTH)",
        "redis_port": "Redis port",
        "redis_node_ids": "Cache cluster id of each Redis node, 1 + redis_replicas of them from `…-redis-001` "
                          "(CloudWatch CacheClusterId dimension; the observability module's alarms follow the list)",
        "connections_table_arn": "ARN of the DynamoDB table of WebSocket connections",
        "history_table_arn": "ARN of the DynamoDB table of chat history"},
    "gateway": {
        "redeploy_state_machine_arn": "ARN of the Step Functions machine that redeploys the tasks when a secret "
                                      "rotates",
        "redeploy_dead_letter_queue_name": "SQS queue of redeploy events that failed (alarmed by observability)"},
    "llm": {
        "alb_arn_suffix": "ARN suffix of the internal model ALB (CloudWatch LoadBalancer dimension)",
        "target_group_arn_suffix": "ARN suffix of the GPU hosts' target group (CloudWatch TargetGroup dimension)",
        "endpoint_url": "HTTPS URL of the self-hosted model's OpenAI-compatible API (private DNS name)",
        "metrics_namespace": "CloudWatch namespace of the GPU hosts' own metrics (GPU utilization)"},
    "realtime": {
        "api_id": "Id of the WebSocket API",
        "stage": "Name of the WebSocket API's stage",
        "request_queue_name": "SQS queue of chat requests the worker consumes",
        "dead_letter_queue_name": "SQS queue of chat requests that failed max_receives times",
        "function_names": "Lambda function name by role: authorizer, connect, disconnect, eraser, message, worker"},
}
# Numbers the constructs write into text (a task size, a function's environment): the layer
# gets the variable as a string, Terraform converts the number where it is used.
AS_TEXT = ("gateway.cpu", "gateway.memory", "realtime.connection_ttl_seconds", "realtime.cache_ttl_seconds",
           "realtime.max_frame_bytes")
# What module_settings turns into variables by hand (the rest of the configuration is fixed).
HAND_MADE_SETTINGS = ("project", "name", "protect_stateful", "foundation.log_retention_days", "edge.certificate_arn",
                      "llm.certificate_arn", "gateway.image", "gateway.capacity.min", "gateway.capacity.desired",
                      "gateway.capacity.max", "llm.capacity.min", "llm.capacity.desired", "llm.capacity.max",
                      "network.vpc_cidr", "network.availability_zones", "network.public_subnets",
                      "network.private_subnets", "network.database_subnets", "network.nat_gateways", "data.redis_replicas",
                      "observability.alarm_emails", "realtime.certificate_arn", "realtime.custom_domain",
                      "foundation.cloudtrail")

# Every other field of the environment files, with why a module cannot take it as a variable
# (a test keeps this, the two lists above and the config model in agreement).
FIXED_AT_EXPORT: dict[str, tuple[str, ...]] = {
    "the caller's provider and backend decide it": (
        "account_id", "deploy_role_arn", "region", "tags", "backend.type", "backend.bucket", "backend.key_prefix",
        "backend.region", "backend.kms_key_id"),
    "decides which resources exist (count or presence), fixed when the constructs run": (
        "high_availability", "foundation.audit_object_lock", "edge.managed_rules_action",
        "edge.allowed_countries", "edge.trusted_cidrs", "edge.waf_log_destination",
        "data.dynamodb_replica_regions", "data.backup_copy_region",
        "data.restored.db_instance_identifier", "data.restored.connections_table", "data.restored.history_table",
        "gateway.ecs_exec",
        "gateway.license_secret_arn", "gateway.models", "llm.spot_instance_types", "llm.scheduled_scaling",
        "llm.warm_pool_size", "llm.hf_token_secret_arn", "llm.dns_name", "llm.certificate_domains",
        "realtime.models", "realtime.m2m_clients", "realtime.scopes", "realtime.callback_urls",
        "realtime.logout_urls", "realtime.mfa", "observability.overrides"),
    "only the configuration's rules read it (where data may be copied), not the constructs": (
        "data.allowed_copy_regions",),
    "the constructs compute with it (sizes, thresholds, derived settings or rendered files)": (
        "foundation.archive_after_days", "foundation.audit_retention_days", "edge.max_body_bytes",
        "gateway.cache_ttl_seconds",
        "llm.scale_down_hour", "llm.scale_up_hour", "llm.schedule_time_zone", "llm.model_size_gb",
        "llm.served_model_name", "llm.weights_s3_prefix", "llm.hf_model_id",
        "llm.vllm_image", "llm.max_model_len", "llm.protocol_version", "llm.queue_target_per_instance",
        "realtime.model_endpoint_url", "realtime.max_receives", "realtime.model_timeout_seconds",
        "edge.request_timeout_seconds", "gateway.allow_requests_on_db_unavailable",
        "gateway.spend_logs_retention_days", "gateway.redis_socket_timeout_seconds",
        "gateway.redis_connect_timeout_seconds", *(f"gateway.{limits}.{field}" for limits in ("key_defaults", "key_upper_bounds")
          for field in ("tpm", "rpm", "max_budget_usd", "budget_duration")),
        "llm.host_cost_per_hour_usd", "llm.tokens_per_second"),
}


def describe(source: str) -> str:
    return f"{DESCRIPTIONS[source]} ({source})" if source in DESCRIPTIONS else f"{source} of the environment files"


def straight_settings(layer: str) -> tuple[str, ...]:
    """The fields of the layer's own section no table here claims. They flow straight into
    resource arguments: each becomes a variable named after it (or as VARIABLE_NAMES says),
    bounded as in the environment files and checked by their cross-field rules (cross_rules),
    so a field added to a section shows up as a variable without an edit here; one the
    constructs compute with belongs in FIXED_AT_EXPORT."""
    kind = SETTINGS[layer]
    claimed = {*HAND_MADE_SETTINGS, *(field for fields in FIXED_AT_EXPORT.values() for field in fields),
               *(f"{layer}.{name}" for name in SWITCHES.get(layer, ()))}
    return tuple(name for name in kind.model_fields if name not in getattr(kind, "BORROWED", {})
                 and not covered(f"{layer}.{name}", claimed))


def covered(source: str, fields: Iterable[str]) -> bool:
    """Whether `fields` hold `source` or a field inside it (`llm.capacity.min` covers `llm.capacity`)."""
    return any(field == source or field.startswith(source + ".") for field in fields)


STRAIGHT_SETTINGS = {layer: names for layer in EXPORTED_LAYERS if (names := straight_settings(layer))}


def bounds_rules(field: FieldInfo) -> tuple[tuple[str, str], ...]:
    """A config field's numeric bounds or choices as validation rules, worded as the config
    model reports them."""
    rules = []
    if get_origin(field.annotation) is Literal:
        choices = get_args(field.annotation)
        rules.append((f"contains({json.dumps(list(choices))}, var.{{name}})",
                      f"{{name}}: Input should be {' or '.join(repr(c) for c in choices)}."))
    for bound in field.metadata:
        for attribute, operator, words in (("ge", ">=", "greater than or equal to"),
                                           ("le", "<=", "less than or equal to")):
            if hasattr(bound, attribute):
                value = getattr(bound, attribute)
                rules.append((f"var.{{name}} {operator} {value}", f"{{name}}: Input should be {words} {value}."))
    return tuple(rules)



class ModuleVariables:
    """Declares validated module variables and hands back the values the constructs read."""

    def __init__(self, stack: Construct, cross: dict[str, tuple[tuple[str, str], ...]]) -> None:
        self.stack, self.cross = stack, cross

    def declare(self, name: str, kind: str, default: Any, description: str,
                rules: tuple[tuple[str, str], ...]) -> TFModuleVariable:
        rules = (*((c.format(name=name), m.format(name=name)) for c, m in rules),
                 *self.cross.get(name, ()))  # cross-field rules are written out whole
        validation = [TerraformVariableValidationConfig(condition="${" + condition + "}", error_message=message)
                      for condition, message in rules]
        return TFModuleVariable(self.stack, name, type=kind, default=default, description=description,
                                validation=validation or None)

    def scalar(self, name: str, default: Any, description: str, *rules: tuple[str, str], as_text: bool = False
               ) -> Any:
        """The variable's value for a construct: a number token, or a string token where the
        construct writes the number into text (Python would print a number token's encoding)."""
        if not isinstance(default, (int, str)) or isinstance(default, bool):
            raise ExportError(f"{name} ({type(default).__name__}) cannot be a plain variable. Fix: make it a "
                              "switch (SWITCHES), hand-made, or fixed at export (FIXED_AT_EXPORT) with a reason.")
        kind = "number" if isinstance(default, int) else "string"
        var = self.declare(name, kind, default, description, rules)
        return var.number_value if kind == "number" and not as_text else var.string_value

    def switch(self, name: str, default: bool, description: str) -> Any:
        return self.declare(name, "bool", default, description, ()).boolean_value

    def strings(self, name: str, default: list[str], description: str, *rules: tuple[str, str]) -> Any:
        return self.declare(name, "list(string)", default, description, rules).list_value

    def per_zone(self, name: str, default: list[Any], description: str, *rules: tuple[str, str]) -> list[str]:
        """A list with an entry per zone: `availability_zones` itself (two or more), or one as
        long as it. The constructs count their per-zone resources over it (modules.parts.zones)."""
        length = ZONES_RULE if name == "availability_zones" else PER_ZONE_RULE
        return self.declare(name, "list(string)", [str(item) for item in default], description,
                            (length, *rules)).list_value


def module_settings(stack: TerraformStack, env: Environment, layer: str, region: str) -> tuple[Identity, BaseModel]:
    """The layer's identity and settings with those a consumer changes replaced by module
    variables (their defaults are the exported environment's values), each validated by the
    rules of the environment files. Only settings that flow straight into resource arguments
    qualify: a token cannot take part in Python arithmetic."""
    variables = ModuleVariables(stack, cross_rules(env, layer))
    variable = variables.scalar
    identity = {
        "region": region,
        "project": variable("project", env.project, "Name prefix of every resource (`<project>-<environment>-…`)",
                            NAME_RULE),
        "environment": variable("environment", env.name, "Environment part of every resource name", NAME_RULE),
    }
    if layer != "observability":
        identity["protect_stateful"] = variables.switch("deletion_protection", env.protect_stateful, PROTECTION)
        identity["log_retention_days"] = variable("log_retention_days", env.foundation.log_retention_days,
                                                  "Retention of every log group (days); under 90 only without "
                                                  "deletion_protection", RETENTION_RULE)
    settings: Any = settings_for(env, layer)
    updates: dict[str, Any] = in_the_region(stack, env, layer, settings, region)
    if layer == "network":
        updates |= network_settings(variables, settings)
    if layer == "foundation":  # terraform-aws-modules' name; an existing trail is cloudtrail_arn
        updates["cloudtrail"] = variables.switch(
            "create_cloudtrail", settings.cloudtrail, "Create the multi-region CloudTrail trail (its bucket, encrypted "
            "log group and delivery role; one per account: a second bills management events twice); false: none, or "
            "name the account's own trail (e.g. the organization's) in cloudtrail_arn")
    if layer == "data":  # where the Redis nodes go: the network's zones, the caller's region
        updates["availability_zones"] = variables.per_zone(
            "availability_zones", settings.availability_zones, "Zones of the network module (its availability_zones, "
            "in order): the Redis nodes are placed in them, the primary in the first", DISTINCT_RULE)
        updates["redis_replicas"] = variable("redis_replicas", settings.redis_replicas,
                                             describe("data.redis_replicas"), REDIS_REPLICAS_RULE)
    if layer in ("edge", "llm") or (layer == "realtime" and settings.custom_domain):
        updates |= certificate_settings(variables, layer, settings)
    if layer == "gateway":
        updates |= gateway_settings(variables, settings, pinned=env.protect_stateful)
    if layer == "observability":
        updates["alarm_emails"] = variables.strings(
            "alarm_emails", settings.alarm_emails, "Addresses every alarm mails (each confirms its subscription)",
            EMAILS_RULE, *([NOT_EMPTY_RULE] if env.protect_stateful else []))
    if layer == "llm":
        updates["capacity"] = capacity_variables(
            variables, settings.capacity, "gpu", "hosts",
            "GPU hosts (the observability module's GPU alarms follow the exported capacity)")
    for name in SWITCHES.get(layer, ()):
        source = source_of(layer, name)
        updates[name] = variables.switch(name, getattr(settings, name), describe(source))
    fields = type(settings).model_fields
    for name in STRAIGHT_SETTINGS.get(layer, ()):
        source = source_of(layer, name)
        updates[name] = variable(VARIABLE_NAMES.get(source, name), getattr(settings, name),
                                 describe(source), *bounds_rules(fields[name]), *FIELD_RULES.get(source, ()),
                                 as_text=source in AS_TEXT)
    # model_copy does not validate: the tokens stand in for values validated at export.
    return Identity.of(env).model_copy(update=identity), settings.model_copy(update=updates)


def certificate_settings(variables: ModuleVariables, layer: str, settings: Any) -> dict[str, Any]:
    """The certificate (and realtime's custom domain) as variables: same region, covering the name."""
    purpose = {"edge": "ACM certificate of the HTTPS listeners (same region)",
               "llm": "ACM certificate of the internal model listener: must cover the private name (same region)",
               "realtime": "ACM certificate of the WebSocket API's custom domain: must cover it (same region); "
                           "unused without domain_name"}
    default = settings.certificate_arn or getattr(settings, "edge_certificate_arn", None)
    # Only a custom domain needs the realtime module's certificate.
    rule = CERTIFICATE_RULE if layer != "realtime" else (
        "var.domain_name == \"\" || " + CERTIFICATE_RULE[0], CERTIFICATE_RULE[1] + " Required with domain_name.")
    updates = {"certificate_arn": variables.scalar("certificate_arn", default, purpose[layer], rule,
                                                   CERTIFICATE_REGION_RULE)}
    if layer == "realtime":
        updates["custom_domain"] = variables.scalar(
            "domain_name", settings.custom_domain, "Custom domain of the WebSocket API (certificate_arn must cover "
            "it); empty: none, clients use the stage's invoke URL (websocket_url says which)", DOMAIN_RULE)
    return updates


def network_settings(variables: ModuleVariables, net: models.Network) -> dict[str, Any]:
    subnet_rules = (INSIDE_VPC_RULE, SMALLEST_SUBNET_RULE)
    overlap = {"database_subnets": (OVERLAP_RULE,)}  # checked once, on the last tier
    return {
        "vpc_cidr": variables.scalar("vpc_cidr", str(net.vpc_cidr), "CIDR of the VPC", CIDR_RULE),
        "availability_zones": variables.per_zone("availability_zones", net.availability_zones,
                                                 "Zones of the caller's provider region, one per subnet of each tier",
                                                 DISTINCT_RULE),
        **{tier: variables.per_zone(f"{tier.removesuffix('s')}_cidrs", getattr(net, tier),
                                    f"{tier.split('_')[0].capitalize()} subnets, one per zone in the order of "
                                    "availability_zones", *subnet_rules, *overlap.get(tier, ()))
           for tier in ("public_subnets", "private_subnets", "database_subnets")}}


def network_shape(stack: Construct, env: Environment) -> NetworkShape:
    """The network's optional parts as variables, named as terraform-aws-modules' vpc module names them."""
    variables = ModuleVariables(stack, {})
    known = json.dumps(list(INTERFACE_ENDPOINTS))
    return NetworkShape(
        single_nat_gateway=variables.switch(
            "single_nat_gateway", env.network.nat_gateways == "single",
            "One NAT gateway, in the first zone, for every private subnet (cheaper; a lost zone cuts the others' "
            "egress) instead of one per zone (network.nat_gateways)"),
        enable_flow_log=variables.switch("enable_flow_log", True, "VPC flow logs (all traffic) to the encrypted "
                                         "flow-log group"),
        interface_endpoints=variables.strings(
            "interface_endpoints", list(INTERFACE_ENDPOINTS),
            "Interface VPC endpoints to create (the S3 and DynamoDB gateway endpoints always exist); without one, "
            "its service is reached through NAT",
            (f"alltrue([for e in var.{{name}} : contains({known}, e)])",
             f"{{name}}: an entry is not an interface endpoint of the platform: choose from "
             f"{', '.join(INTERFACE_ENDPOINTS)}."),
            ("length(distinct(var.{name})) == length(var.{name})", "{name} lists an endpoint twice: list each once.")))


CLOUDTRAIL_ARN_RULE = ("var.{name} == \"\" || can(regex(\"^arn:aws[a-z-]*:cloudtrail:[a-z0-9-]+:[0-9]{{12}}:trail/.+$\", "
                       "var.{name}))",
                       "{name} must be a CloudTrail trail ARN (arn:aws:cloudtrail:<region>:<account>:trail/<name>), or "
                       "empty.")
ONE_TRAIL_RULE = ("!(var.create_cloudtrail && var.cloudtrail_arn != \"\")",
                  "create_cloudtrail and cloudtrail_arn: choose one: the module's trail (create_cloudtrail = true) or "
                  "the account's existing trail (create_cloudtrail = false with its ARN), not both.")


def existing_trail(stack: Construct, created: Cloudtrail | None, switch: bool | Any) -> str:
    """The trail recording the account: the module's while create_cloudtrail, else the caller's
    cloudtrail_arn (empty: none named)."""
    variables = ModuleVariables(stack, {})
    given = variables.declare("cloudtrail_arn", "string", "", "ARN of the account's existing trail (e.g. the "
                              "organization's), only with create_cloudtrail = false; given back as the cloudtrail_arn "
                              "output", (CLOUDTRAIL_ARN_RULE, ONE_TRAIL_RULE)).string_value
    return given if created is None else attribute_or(created, "arn", switch, given)


WEB_ACL_ARN_RULE = ("var.{name} == \"\" || can(regex(\"^arn:aws[a-z-]*:wafv2:[a-z0-9-]+:[0-9]{{12}}:regional/webacl/"
                    "[^/]+/[^/]+$\", var.{name}))",
                    "{name} must be a regional WAFv2 web ACL ARN (arn:aws:wafv2:<region>:<account>:regional/webacl/"
                    "<name>/<id>), or empty.")
ONE_WEB_ACL_RULE = ("var.create_waf != (var.web_acl_arn != \"\")",
                    "create_waf and web_acl_arn: choose exactly one: create_waf = true (the module's web ACL) with no "
                    "web_acl_arn, or create_waf = false with the ARN of a web ACL of your own.")


def waf_choice(stack: Construct) -> WafChoice:
    """The edge's web ACL, named as terraform-aws-modules name such switches: created, or one of
    the caller's attached (the ALB is never without one)."""
    variables = ModuleVariables(stack, {})
    create = variables.declare("create_waf", "bool", True, "Create the WAF web ACL (managed rules, rate limit, body "
                               "size) and its logging; false: attach web_acl_arn, whose logging is its owner's", ())
    arn = variables.declare("web_acl_arn", "string", "", "ARN of an existing regional WAFv2 web ACL to attach to "
                            "the ALB instead (only with create_waf = false)", (WEB_ACL_ARN_RULE, ONE_WEB_ACL_RULE))
    return WafChoice(create=create.boolean_value, web_acl_arn=arn.string_value)


def gateway_settings(variables: ModuleVariables, gateway: GatewaySettings, pinned: bool) -> dict[str, Any]:
    return {"image": variables.scalar("gateway_image", gateway.image, "LiteLLM image (pinned tag or digest)",
                                      *([PINNED_RULE] if pinned else [])),
            "capacity": capacity_variables(variables, gateway.capacity, "gateway", "tasks", "LiteLLM tasks")}


def capacity_variables(variables: ModuleVariables, capacity: Capacity, prefix: str, unit: str, what: str
                       ) -> Capacity:
    """`<prefix>_min_<unit>`, `_desired_`, `_max_`: kept in order like the environment files' capacities."""
    names = [f"{prefix}_{bound}_{unit}" for bound in ("min", "desired", "max")]
    order = (f"var.{names[0]} <= var.{names[1]} && var.{names[1]} <= var.{names[2]}",
             f"{names[0]}, {names[1]} and {names[2]} are out of order: choose values with min <= desired <= max.")
    return capacity.model_construct(**{
        bound: variables.scalar(name, getattr(capacity, bound), f"{bound} number of {what}",
                                *([order] if bound == "min" else []))
        for bound, name in zip(("min", "desired", "max"), names)})


def cross_rules(env: Environment, layer: str) -> dict[str, tuple[tuple[str, str], ...]]:
    """The environment files' cross-field rules (modules/config/rules.py) over a module's
    variables, worded as there, by the variable they are reported on. Values fixed at export
    are written in."""
    llm = env.llm
    # The exported Spot alternatives are fixed: instance_type's GPUs must not hold more memory
    # than the smallest of theirs (each alternative holds at least instance_type's).
    spot_memory = min((GPU_MEMORY_GB[t.split(".")[0]] for t in llm.spot_instance_types), default=None)
    gpu_families = [family for family, memory in GPU_MEMORY_GB.items()
                    if spot_memory is None or memory <= spot_memory]
    warm_pool = [(f"var.on_demand_base == var.gpu_max_hosts && var.gpu_max_hosts >= {llm.warm_pool_size}",
                  f"a warm pool of {llm.warm_pool_size} (fixed at export) runs on-demand only, within the group: "
                  "set on_demand_base = gpu_max_hosts, at least the warm pool.")] if llm.warm_pool_size else []
    fargate = "{" + ", ".join(f'"{cpu}" = [{", ".join(map(str, memory))}]'
                              for cpu, memory in FARGATE_SIZES.items()) + "}"
    rules: dict[str, dict[str, tuple[tuple[str, str], ...]]] = {
        "data": data_rules(env),
        "gateway": {
            "gateway_max_tasks": POOL_RULES,
            "gateway_memory": ((f"contains(lookup({fargate}, tostring(var.gateway_cpu), []), var.gateway_memory)",
                                "gateway_cpu / gateway_memory is not a valid Fargate size: use cpu one of "
                                f"{', '.join(map(str, FARGATE_SIZES))} with a memory Fargate allows for it (e.g. cpu "
                                "1024 with memory 2048..8192 in steps of 1024)."),)},
        "llm": {
            "instance_type": ((f"contains({json.dumps(gpu_families)}, split(\".\", var.instance_type)[0])",
                               "instance_type is not a GPU instance type whose GPUs the exported Spot alternatives "
                               "match: "
                               f"use a GPU family: {', '.join(gpu_families)} (e.g. {llm.instance_type})."),),
            "on_demand_base": (("var.on_demand_base <= var.gpu_max_hosts",
                                "on_demand_base exceeds gpu_max_hosts: lower on_demand_base or raise "
                                "gpu_max_hosts."), *warm_pool),
            "root_volume_gb": ((f"var.root_volume_gb >= {llm.model_size_gb + 30}",
                                f"root_volume_gb cannot hold the {llm.model_size_gb} GB model beside the AMI and the "
                                f"vLLM image (about 30 GB): use at least {llm.model_size_gb + 30} GB."),),
            "root_volume_throughput_mibps": (("var.root_volume_throughput_mibps * 4 <= var.root_volume_iops",
                                              "root_volume_throughput_mibps needs more than root_volume_iops IOPS "
                                              "(gp3 allows 0.25 MiB/s per IOPS): raise root_volume_iops to at least "
                                              "4 x the throughput or lower the throughput."),),
            "gpu_min_hosts": (("var.gpu_min_hosts >= 1", "gpu_min_hosts is 0 with scheduled_scaling = true: set "
                               "it to at least 1; the schedule takes the group to zero outside working hours."),)
            if llm.scheduled_scaling else ()},
        "realtime": {
            "throttling_burst_limit": (("var.throttling_burst_limit >= var.throttling_rate_limit",
                                        "throttling_burst_limit is below throttling_rate_limit: allow a burst at "
                                        "least as large as the steady rate."),),
            "worker_concurrency": ((f"var.worker_concurrency >= {MIN_WORKER_CONCURRENCY} && "
                                    f"var.worker_concurrency <= {MAX_WORKER_CONCURRENCY}",
                                    f"worker_concurrency is outside {MIN_WORKER_CONCURRENCY}-{MAX_WORKER_CONCURRENCY}, "
                                    "the maximum concurrency an SQS event source mapping accepts (the worker reserves "
                                    f"the same number): use a value from {MIN_WORKER_CONCURRENCY} to "
                                    f"{MAX_WORKER_CONCURRENCY}, sized to what the model endpoint serves at once."),)},
    }
    return rules.get(layer, {})


# `id` is the region's name in provider 5 and 6 alike (6 deprecates `name` for `region`, which 5
# lacks: terraform-provider-aws#42131).
PROVIDER_REGION = "data.aws_region.region.id"
UNSUPPORTED_REGION = ("${{contains(keys(local.{table}), self.id)}}",
                      "The provider's region (${{self.id}}) is not one the modules support: Bedrock serves no "
                      "geographic inference profile there. Fix: configure the aws provider with one of "
                      "${{join(\", \", keys(local.{table}))}}.")


def provider_region(stack: TerraformStack) -> str:
    """The module's region: the caller's provider's, refused at plan unless the region table
    (carried as a local) knows it."""
    region = DataAwsRegion(stack, "region")
    region.override_logical_id("region")
    region_table(stack)
    condition, message = (part.format(table=REGION_TABLE) for part in UNSUPPORTED_REGION)
    region.add_override("lifecycle.postcondition", [{"condition": condition, "error_message": message}])
    return region.id


def refuse_zones_outside_the_region(resource: TerraformResource) -> None:
    """The region is the caller's provider's: the plan of what is placed in `var.availability_zones`
    fails on a zone of another one."""
    condition, message = (part.format(region=PROVIDER_REGION) for part in ZONE_IN_REGION)
    resource.add_override("lifecycle.precondition", [{"condition": condition, "error_message": message}])


def in_the_region(stack: TerraformStack, env: Environment, layer: str, settings: Any, region: str) -> dict[str, Any]:
    """The exported environment's region-bound settings, made the caller's: a geographic
    inference profile takes the region's geography (modules/config/regions.py), an image in the
    environment's own registry the caller's registry."""
    updates: dict[str, Any] = {}
    routes = {"gateway": "models", "observability": "model_routes"}.get(layer)
    if routes:
        geography = region_fact(stack, region, "bedrock_geography")
        updates[routes] = [route.model_copy(update={"bedrock_model_id": regional_profile(route.bedrock_model_id,
                                                                                         geography)})
                           for route in getattr(settings, routes)]
    if layer == "llm":
        own = f"{env.account_id}.dkr.ecr.{env.region}.amazonaws.com/"
        if settings.vllm_image.startswith(own):
            account = DataAwsCallerIdentity(stack, "account")
            account.override_logical_id("account")
            updates["vllm_image"] = (f"{account.account_id}.dkr.ecr.{region}.amazonaws.com/"
                                     + settings.vllm_image.removeprefix(own))
    return updates


def regional_profile(model_id: str | None, geography: str) -> str | None:
    """`eu.anthropic.…` -> `<geography>.anthropic.…`; a global profile or a model id stays."""
    if model_id is None or model_id.split(".")[0] not in set(INFERENCE_PROFILE_GEOS) - {"global"}:
        return model_id
    return f"{geography}.{model_id.split('.', 1)[1]}"


def data_rules(env: Environment) -> dict[str, tuple[tuple[str, str], ...]]:
    """The data module's cross-field rules (see cross_rules). The class is any the platform sizes
    max_connections for: the gateway module checks its pool against db_max_connections."""
    return {"db_instance_class": ((f"contains({json.dumps(list(DB_MEMORY_GIB))}, var.db_instance_class)",
                                   "db_instance_class is not a class the platform sizes max_connections for: use "
                                   f"one of {', '.join(DB_MEMORY_GIB)}."),),
            "db_max_storage_gb": (("var.db_max_storage_gb >= var.db_storage_gb",
                                   "db_max_storage_gb is below db_storage_gb: set the autoscaling ceiling at or "
                                   "above the initial size."),),
            "redis_replicas": (MULTI_AZ_REPLICA_RULE,)}


@jsii.implements(IAspect)
class MergedTags:
    """The module's `tags` variable merged into the tags of every resource that takes tags
    (a resource's own tags win on a shared key)."""

    def __init__(self, tags: Any) -> None:
        self.tags = tags

    def visit(self, node: IConstruct) -> None:
        if isinstance(node, TerraformResource) and hasattr(node, "tags_input"):
            own = node.tags_input or {}
            node.tags = Token.as_string_map(Fn.merge([self.tags, own]))  # type: ignore[attr-defined]


def build_module(app: App, env: Environment, layer: str) -> TerraformStack:
    stack = TerraformStack(app, layer)
    require_terraform(stack)
    ProviderRequirement(stack, "aws", *AWS_PROVIDER)
    identity, settings = module_settings(stack, env, layer, provider_region(stack))
    tags = TFModuleVariable(stack, "tags", type="map(string)", default={},
                            description="Tags merged into every resource's tags (the provider's default_tags apply too)")
    Aspects.of(stack).add(MergedTags(tags.value))
    given = {"identity": identity, "settings": settings}

    def inputs(name: str) -> Any:
        return Inputs(stack, name, env)

    if layer == "foundation":
        construct: Any = Foundation(stack, layer, **given)
        TFModuleOutput(stack, "cloudtrail_arn", value=existing_trail(stack, construct.trail, settings.cloudtrail),
                       description="ARN of the trail recording the account: the module's, or cloudtrail_arn")
    elif layer == "network":
        construct = Network(stack, layer, **given, kms_key_arn=inputs("foundation").kms_key_arn,
                            shape=network_shape(stack, env))
        refuse_zones_outside_the_region(construct.vpc)
    elif layer == "edge":
        construct = Edge(stack, layer, **given, network=inputs("network"), foundation=inputs("foundation"),
                         waf=waf_choice(stack))
    elif layer == "data":
        construct = Data(stack, layer, **given, network=inputs("network"), foundation=inputs("foundation"))
        for redis in construct.node.find_all():
            if isinstance(redis, ElasticacheReplicationGroup):
                refuse_zones_outside_the_region(redis)
    elif layer == "gateway":
        llm = inputs("llm")
        construct = Gateway(stack, layer, **given, network=inputs("network"), foundation=inputs("foundation"),
                            data=inputs("data"), edge=inputs("edge"), llm=llm,
                            gpu_tier=Op.neq(llm.api_key_secret_arn, ""))
    elif layer == "llm":
        construct = Llm(stack, layer, **given, network=inputs("network"), foundation=inputs("foundation"))
    elif layer == "realtime":
        construct = Realtime(stack, layer, **given, network=inputs("network"), foundation=inputs("foundation"),
                             data=inputs("data"))
    else:
        construct = Observability(stack, layer, **given, foundation=inputs("foundation"), watched=Watched(
            edge=inputs("edge"), gateway=inputs("gateway"), data=inputs("data"), llm=inputs("llm"),
            realtime=inputs("realtime")))
    outputs = getattr(construct, "outputs", None)
    if outputs is not None:
        published = {c.node.id for c in construct.node.children if isinstance(c, TerraformOutput)}
        for field in dataclasses.fields(outputs):
            if field.name not in published:
                TFModuleOutput(stack, field.name, value=getattr(outputs, field.name),
                               description=OUTPUT_DESCRIPTIONS[layer][field.name])
    return stack


def export_modules(env: Environment, target: Path, layers: tuple[str, ...] = EXPORTED_LAYERS) -> list[Path]:
    """Write one module directory per layer under `target`; nothing is written on error."""
    unknown = [layer for layer in layers if layer not in EXPORTED_LAYERS]
    if unknown:
        raise ExportError(f"unknown layer(s) {', '.join(unknown)}. Fix: choose from {', '.join(EXPORTED_LAYERS)}.")
    for field, copies in (("dynamodb_replica_regions", env.data.dynamodb_replica_regions),
                          ("backup_copy_region", env.data.backup_copy_region)):
        if copies:
            raise ExportError(f"environment '{env.name}': data.{field} needs an aliased provider per region, which "
                              "a provider-less module cannot declare. Fix: export an environment without copies "
                              "in other regions (e.g. --environment prod).")
    with tempfile.TemporaryDirectory() as scratch:
        app = App(outdir=scratch, context=APP_CONTEXT)
        for layer in layers:
            build_module(app, env, layer)
        app.synth()
        written = []
        staged = Path(scratch) / "modules"
        for layer in layers:
            source = Path(scratch) / "stacks" / layer
            doc = json.loads((source / "cdk.tf.json").read_text())
            doc.get("terraform", {}).pop("backend", None)
            module = staged / layer
            module.mkdir(parents=True)
            if (source / "assets").is_dir():
                shutil.copytree(source / "assets", module / "assets")
            # Terraform resolves file paths from the caller's directory; a module's own files
            # are found through path.module.
            text = json.dumps(doc, indent=2, sort_keys=True).replace('"assets/', '"${path.module}/assets/')
            (module / "main.tf.json").write_text(text + "\n")
            (module / "README.md").write_text(module_readme(env, layer, json.loads(text)))
            written.append(target / layer)
        for layer in layers:
            if (target / layer / TESTS).is_dir():
                shutil.move(str(target / layer / TESTS), staged / layer / TESTS)
            if (target / layer).exists():
                shutil.rmtree(target / layer)
            target.mkdir(parents=True, exist_ok=True)
            shutil.move(str(staged / layer), target / layer)
    return written


def variable_fields() -> list[str]:
    """The environment-file fields some module takes as a variable."""
    return [*HAND_MADE_SETTINGS, *(f"{layer}.{name}" for table in (STRAIGHT_SETTINGS, SWITCHES)
                                   for layer, names in table.items() for name in names)]


def fixed_settings(layer: str) -> list[str]:
    """The environment-file fields this layer's settings read that are not module variables."""
    kind = SETTINGS[layer]
    variables = variable_fields()
    # another module's variable, fixed in this one (but the data module's own availability_zones)
    borrowed = {name for name in getattr(kind, "BORROWED", {}) if (layer, name) != ("data", "availability_zones")}
    return sorted(source for name in kind.model_fields if (source := source_of(layer, name))
                  and (name in borrowed or not covered(source, variables)))


def blocks(doc: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    """`variable`/`output` blocks by name (Terraform JSON allows a block or a list of one)."""
    return {name: body[0] if isinstance(body, list) else body for name, body in doc.get(kind, {}).items()}


def module_readme(env: Environment, layer: str, doc: dict[str, Any]) -> str:
    """The module's README in terraform-docs' layout: usage, requirements, providers,
    resources, inputs and outputs."""
    variables, outputs = blocks(doc, "variable"), blocks(doc, "output")
    lines = [f"# {layer} module", "",
             f"The `{layer}` layer of the LLM platform as a plain Terraform module, exported from the "
             f"`{env.name}` environment (`python main.py --export-modules --environment {env.name}`). Do not "
             "edit: regenerate.", "",
             "What is a variable: exactly the inputs below; settings with a default may be changed by the "
             "caller, within their validation. "
             "Region, partition and account are the caller's provider's (`data.aws_region`, `data.aws_partition`, "
             "`data.aws_caller_identity`): the module names none of its own. What differs between regions (the "
             "Bedrock geography of inference profiles, the ALB log-delivery account) is looked up in the local "
             "`regions`, the platform's region table; a provider region outside it fails the plan, naming the "
             "supported ones. "
             + (ZONES_TEXT if any(name in variables for name in ("availability_zones", *PER_ZONE_NAMES)) else "")
             + f"Fixed at export from `environments/{env.name}/environment.toml` (export another environment to "
             "change them): " + (", ".join(f"`{f}`" for f in fixed_settings(layer)) or "no setting")
             + "; ECR pull rights follow the exported image's registry.", "",
             *(["Protection: the module holds no `prevent_destroy` (a lifecycle block cannot follow a variable). "
                "`deletion_protection` (default: the environment's `protect_stateful`) guards what a destroy would "
                "lose instead; set it to false for a sandbox that must destroy cleanly.", ""]
               if "deletion_protection" in variables else []),
             "## Usage", "", "```hcl", *usage(layer, variables), "```", "",
             "## Requirements", "", "| Name | Version |", "|---|---|",
             f"| terraform | {TARGET_VERSIONS['terraform']} |", f"| aws | {AWS_PROVIDER[0]} |", "",
             "## Providers", "", "| Name | Source |", "|---|---|", f"| aws | {AWS_PROVIDER[1]} |", "",
             "## Resources", "", "| Name | Type |", "|---|---|"]
    lines += [f"| {kind}.{name} | {section} |" for section in ("resource", "data", "ephemeral")
              for kind, named in sorted(doc.get(section, {}).items()) for name in sorted(named)]
    lines += ["", "## Inputs", "", "| Name | Description | Type | Default | Required |", "|---|---|---|---|:---:|"]
    lines += [f"| {name} | {v.get('description', '')} | `{v.get('type', 'any')}` | "
              + ("n/a | yes |" if "default" not in v else f"`{json.dumps(v['default'])}` | no |")
              for name, v in sorted(variables.items())] or ["| — | none | | | |"]
    lines += ["", "## Outputs", "", "| Name | Description |", "|---|---|"]
    lines += [f"| {name} | {v.get('description', '')} |" for name, v in sorted(outputs.items())]
    return "\n".join(lines) + "\n"


PER_ZONE_NAMES = tuple(f"network_{field}" for field in PER_ZONE_OUTPUTS)
ZONES_TEXT = (f"Zones: any number from {MIN_ZONES}. The per-zone lists (`availability_zones`, the subnet CIDRs, the "
              "network's subnet ids) must agree in length and order; the subnets, NAT gateways (one with "
              "`single_nat_gateway`), private route tables and their routes are counted over them, and the Redis "
              "nodes go round them, the primary in the first. ")


def usage(layer: str, variables: dict[str, dict[str, Any]]) -> list[str]:
    """A call with every required input wired to the module that produces it."""
    required = sorted(name for name, v in variables.items() if "default" not in v)
    width = max((len(name) for name in required), default=0)
    wired = [f"  {name.ljust(width)} = module.{name.split('_', 1)[0]}.{name.split('_', 1)[1]}" for name in required]
    version = ".".join(str(part) for part in newest_version(CHANGELOG.read_text()))
    return [f'module "{layer}" {{',
            f'  source = "git::https://example.com/platform/llm-platform.git//terraform-modules/{layer}'
            f'?ref=modules/v{version}"', *([""] + wired if wired else []), "}"]

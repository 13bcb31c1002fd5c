"""Monthly cost estimate of each environment, line by line, from its synthesized stacks, a
shipped and dated price table (`prices.toml`) and stated traffic assumptions
(`cost_assumptions.toml`).

    python -m modules.tools.cost [ENV ...] [--outdir cdktf.out] [--assumptions FILE.toml]

What is built (counts, sizes, Multi-AZ, Spot, the GPU group's schedule) comes from the JSON;
what is used (requests, gigabytes, users) from a traffic profile of the assumptions: the one
the shipped file names for the environment, else the smallest (a new environment is never
priced with production traffic). Every resource type the synth holds is either priced here or
listed as free (a test fails on a new type that is neither).

The price table is validated on load like an environment file: every region lists every
price and instance type, each a number; all problems at once, naming the file. A region
without a section gets "no prices for REGION" in the report, not an estimate.

An assumptions file of your own holds [default] and [<env>] tables of any of the profiles'
keys: it is validated like an environment file (every problem at once: unknown keys with a
"did you mean", non-numbers, negative values, shares above 1, tables that name no
environment), then laid over the rest, yours first: your [<env>], your [default], the GPU
group's schedule (its share of the day), the shipped profile. The report says which values
came from where.
"""

from __future__ import annotations

import argparse
import difflib
import math
import sys
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modules.tools.synthesized import DEFAULT_OUTDIR, Environment, SynthError, load, plural

PRICES = Path(__file__).with_name("prices.toml")
ASSUMPTIONS = Path(__file__).with_name("cost_assumptions.toml")
# A GPU host on Spot costs about 40 % of on-demand (stated, not looked up per hour).
GPU_SPOT_DISCOUNT = 0.60
# Assumptions that are a share of the month, so between 0 and 1.
SHARES = {"gpu_hours_share"}
# The traffic profile of an environment the shipped assumptions do not name.
SMALLEST = "small"

PRICED = {
    "aws_nat_gateway", "aws_eip", "aws_lb", "aws_ecs_service", "aws_db_instance", "aws_elasticache_replication_group",
    "aws_autoscaling_group", "aws_vpc_endpoint", "aws_kms_key", "aws_kms_replica_key", "aws_cloudwatch_metric_alarm",
    "aws_cloudwatch_composite_alarm", "aws_cloudwatch_dashboard", "aws_cloudwatch_log_group", "aws_wafv2_web_acl",
    "aws_apigatewayv2_api", "aws_lambda_function", "aws_dynamodb_table", "aws_s3_bucket", "aws_sqs_queue",
    "aws_sns_topic", "aws_secretsmanager_secret", "aws_route53_zone", "aws_cognito_user_pool", "aws_cloudtrail",
    "aws_sfn_state_machine", "aws_backup_plan",
}
# No charge of their own (configuration, wiring, or billed through a priced resource above).
FREE = {
    "aws_api_gateway_account", "aws_apigatewayv2_api_mapping", "aws_apigatewayv2_authorizer", "aws_apigatewayv2_domain_name",
    "aws_apigatewayv2_integration", "aws_apigatewayv2_route", "aws_apigatewayv2_stage", "aws_appautoscaling_policy",
    "aws_appautoscaling_target", "aws_autoscaling_policy", "aws_autoscaling_schedule", "aws_cloudwatch_event_rule",
    "aws_cloudwatch_event_target", "aws_cloudwatch_log_metric_filter", "aws_cognito_resource_server",
    "aws_cognito_user_pool_client", "aws_cognito_user_pool_domain", "aws_db_parameter_group", "aws_db_subnet_group",
    "aws_default_security_group", "aws_ecs_cluster", "aws_ecs_cluster_capacity_providers", "aws_ecs_task_definition",
    "aws_elasticache_subnet_group", "aws_flow_log", "aws_iam_instance_profile", "aws_iam_role", "aws_iam_role_policy",
    "aws_iam_role_policy_attachment", "aws_iam_service_linked_role", "aws_internet_gateway", "aws_kms_alias",
    "aws_lambda_event_source_mapping", "aws_lambda_layer_version", "aws_lambda_permission", "aws_launch_template",
    "aws_lb_listener", "aws_lb_target_group", "aws_network_acl", "aws_network_acl_rule", "aws_route", "aws_route53_record",
    "aws_route_table", "aws_route_table_association", "aws_s3_bucket_lifecycle_configuration",
    "aws_s3_bucket_logging", "aws_s3_bucket_object_lock_configuration", "aws_s3_bucket_ownership_controls",
    "aws_s3_bucket_policy", "aws_s3_bucket_public_access_block", "aws_s3_bucket_server_side_encryption_configuration",
    "aws_s3_bucket_versioning", "aws_secretsmanager_secret_version", "aws_security_group", "aws_sns_topic_policy",
    "aws_sns_topic_subscription", "aws_sqs_queue_policy", "aws_ssm_parameter", "aws_subnet", "aws_vpc",
    "aws_vpc_security_group_egress_rule", "aws_vpc_security_group_ingress_rule", "aws_wafv2_web_acl_association",
    "aws_wafv2_web_acl_logging_configuration", "aws_wafv2_ip_set",
    # A rule costs nothing; the images it caches are ECR storage (a few GB: cents a month).
    "aws_ecr_pull_through_cache_rule",
    "aws_backup_vault",
    "aws_backup_vault_lock_configuration", "aws_backup_selection",
    # A saved query costs nothing; running it bills the data Logs Insights scans.
    "aws_cloudwatch_query_definition",
}


@dataclass(frozen=True)
class Line:
    group: str
    item: str
    quantity: str
    usd: float


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _number_problem(field: str, key: str, value: Any) -> str | None:
    """What is wrong with one assumption's value, if anything."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"{field}: {value!r} is not a number. Fix: write a number without quotes."
    if value < 0:
        return f"{field}: {value:g} is negative. Fix: use 0 or more."
    if key in SHARES and value > 1:
        return f"{field}: {value:g} is more than the whole month. Fix: use a share between 0 and 1."
    return None


def _read_toml(path: Path, what: str) -> dict[str, Any]:
    label = _shown(path)
    if not path.is_file():
        raise SynthError(f"{what} {label}: the file does not exist. Fix: give an existing file; "
                         f"{_shown(ASSUMPTIONS)} shows every key with its default.")
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:
        raise SynthError(f"{what} {label}: not valid TOML ({err}). Fix: correct the TOML syntax.") from None


@dataclass(frozen=True)
class Profiles:
    """The shipped traffic profiles and which environment uses which (others: SMALLEST)."""
    tables: dict[str, dict[str, float]]
    chosen: dict[str, str]

    def of(self, env: str) -> str:
        return self.chosen.get(env, SMALLEST)

    @property
    def keys(self) -> list[str]:
        return sorted(self.tables[SMALLEST])


def read_profiles(path: Path = ASSUMPTIONS) -> Profiles:
    """The shipped assumptions, validated: every profile holds every key, [environments] names
    existing profiles. SynthError lists every problem, one line each."""
    table, label = _read_toml(path, "assumptions"), _shown(path)
    chosen = table.pop("environments", {})
    profiles = {name: body for name, body in table.items() if isinstance(body, dict)}
    problems = [f"{name}: is a value outside any table. Fix: put it in a profile." for name in table
                if name not in profiles]
    if SMALLEST not in profiles:
        problems.append(f"[{SMALLEST}]: is missing. Fix: add the smallest profile, the one new environments use.")
    keys = sorted({key for body in profiles.values() for key in body})
    for name, body in profiles.items():
        missing = [key for key in keys if key not in body]
        if missing:
            problems.append(f"[{name}]: lacks {', '.join(missing)}. Fix: every profile holds every key.")
        problems += [p for key, value in body.items() if (p := _number_problem(f"{name}.{key}", key, value))]
    problems += [f"environments.{env}: {profile!r} is not a profile. Fix: use one of: {', '.join(sorted(profiles))}."
                 for env, profile in chosen.items() if profile not in profiles]
    if problems:
        raise SynthError("\n".join(f"assumptions {label}: {problem}" for problem in problems))
    return Profiles(profiles, chosen)


def read_assumptions(path: Path, environments: Iterable[str] = ()) -> dict[str, dict[str, float]]:
    """An assumptions file of your own, validated: SynthError lists every problem, one line each.

    The known keys are those of the shipped profiles; `environments` (if given) are the table
    names accepted besides [default]."""
    table, label = _read_toml(path, "assumptions"), _shown(path)
    known = read_profiles().keys
    names = sorted(set(environments))
    problems = []
    for name, section in table.items():
        if not isinstance(section, dict):
            problems.append(f"{name}: is a value outside any table. Fix: put it under [default] or [<environment>].")
            continue
        if names and name != "default" and name not in names:
            close = difflib.get_close_matches(name, names, n=1)
            problems.append(f"[{name}]: names no environment. Fix: {_did_you_mean(close)}use [default] or one of: "
                            f"{', '.join(names)}.")
        for key, value in section.items():
            field = f"{name}.{key}"
            if key not in known:
                close = difflib.get_close_matches(key, known, n=1)
                problems.append(f"{field}: is not a known assumption. Fix: {_did_you_mean(close)}use one of: "
                                f"{', '.join(known)}.")
            elif problem := _number_problem(field, key, value):
                problems.append(problem)
    if problems:
        raise SynthError("\n".join(f"assumptions {label}: {problem}" for problem in problems))
    return table


def _did_you_mean(close: list[str]) -> str:
    return f"did you mean '{close[0]}'? " if close else ""


SCHEDULE = "the GPU group's scaling schedule"


def scheduled_gpu_share(env: Environment) -> float | None:
    """The share of the day the GPU group's scale-up schedule runs before its scale-down (daily
    `0 H * * *` recurrences, as the llm layer writes them); None without a schedule."""
    hours = {}
    for schedule in env.resources("aws_autoscaling_schedule"):
        minute, hour, *rest = schedule["recurrence"].split()
        if minute != "0" or rest != ["*", "*", "*"]:
            return None  # not a daily schedule: the profile's share stands
        hours["down" if schedule["desired_capacity"] == 0 else "up"] = int(hour)
    if set(hours) != {"up", "down"}:
        return None
    return ((hours["down"] - hours["up"]) % 24) / 24


@dataclass(frozen=True)
class Assumptions:
    values: dict[str, float]
    sources: dict[str, str]  # key -> "<file> [<table>]" (or SCHEDULE) its value came from
    profile: str


def resolve_assumptions(env: Environment, path: Path | None = None, environments: Iterable[str] = ()) -> Assumptions:
    """The environment's shipped profile, its schedule's GPU share, then `path`'s [default] and
    [env] over them."""
    profiles = read_profiles()
    profile = profiles.of(env.name)
    shipped = f"{_shown(ASSUMPTIONS)} [{profile}]"
    values = dict(profiles.tables[profile])
    sources = dict.fromkeys(values, shipped)
    share = scheduled_gpu_share(env)
    if share is not None:
        values["gpu_hours_share"], sources["gpu_hours_share"] = share, SCHEDULE
    if path is not None and path.resolve() != ASSUMPTIONS.resolve():
        table = read_assumptions(path, environments)
        for name in ("default", env.name):
            for key, value in table.get(name, {}).items():
                values[key], sources[key] = value, f"{_shown(path)} [{name}]"
    return Assumptions(values, sources, profile)


def assumptions_for(env: Environment) -> dict[str, float]:
    return resolve_assumptions(env).values


def provenance(assumptions: Assumptions) -> str:
    """Which values came from where: those of a file of your own and the schedule's by name, the
    shipped profile's counted."""
    by_source: dict[str, list[str]] = {}
    for key in sorted(assumptions.sources):
        by_source.setdefault(assumptions.sources[key], []).append(key)
    shipped = _shown(ASSUMPTIONS)
    parts = [f"{source}: " + ", ".join(f"{k} = {assumptions.values[k]:g}" for k in keys)
             for source, keys in by_source.items() if not source.startswith(shipped + " ")]
    parts += [f"{source}: {plural(len(keys), 'value')}" for source, keys in by_source.items()
              if source.startswith(shipped + " ")]
    return "; ".join(parts)


PRICE_HEADER = {"date": str, "source": str, "hours_per_month": (int, float)}


def read_prices(path: Path = PRICES) -> dict[str, Any]:
    """The price table, validated: the header, and every region with every price and every
    instance type any region lists, each a number. SynthError lists every problem."""
    label = _shown(path)
    try:
        table = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise SynthError(f"prices {label}: cannot be read ({err}). Fix: restore the file.") from None
    problems = [f"{key}: is missing or not {'text' if kind is str else 'a number'}. Fix: set it at the top of "
                "the file." for key, kind in PRICE_HEADER.items()
                if isinstance(table.get(key), bool) or not isinstance(table.get(key), kind)]
    regions = {name: body for name, body in table.items() if isinstance(body, dict)}
    prices = sorted({key for body in regions.values() for key, v in body.items() if not isinstance(v, dict)})
    types = sorted({t for body in regions.values() for t in body.get("instances", {})})
    for region, body in regions.items():
        missing = [k for k in prices if k not in body] + (
            [f"instances.{t!r}" for t in types if t not in body.get("instances", {})] if types else [])
        if "instances" not in body:
            missing.append(f"[{region}.instances]")
        if missing:
            problems.append(f"[{region}]: lacks {', '.join(missing)}. Fix: add its list prices "
                            f"(every region prices what the others do).")
        values = {**{k: v for k, v in body.items() if k != "instances"},
                  **{f"instances.{t!r}": v for t, v in body.get("instances", {}).items()}}
        problems += [f"{region}.{k}: {v!r} is not a price. Fix: write a number of USD without quotes."
                     for k, v in values.items() if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0]
    if problems:
        raise SynthError("\n".join(f"prices {label}: {problem}" for problem in problems))
    return table


def prices_for(env: Environment, path: Path = PRICES) -> tuple[dict[str, Any], float]:
    table = read_prices(path)
    if env.region not in table:
        raise SynthError(f"environment '{env.name}': no prices for {env.region} in {_shown(path)} (it has "
                         f"{', '.join(k for k, v in table.items() if isinstance(v, dict))}). Fix: add a "
                         f"[{env.region}] section and [{env.region}.instances] with its list prices.")
    return table[env.region], table["hours_per_month"]


@dataclass
class _Bill:
    """What every section of the estimate prices against, and the lines it adds."""
    env: Environment
    use: dict[str, float]
    price: dict[str, Any]
    hours: float
    lines: list[Line]

    def add(self, group: str, item: str, quantity: str, usd: float) -> None:
        self.lines.append(Line(group, item, quantity, round(usd, 2)))

    def instance(self, type_: str) -> float:
        if type_ not in self.price["instances"]:
            raise SynthError(f"environment '{self.env.name}': no price for {type_} in {self.env.region}. Fix: add it "
                             f"to [{self.env.region}.instances] in {PRICES.name}.")
        return self.price["instances"][type_]


def estimate(env: Environment, use: dict[str, float], price: dict[str, Any], hours: float) -> list[Line]:
    bill = _Bill(env, use, price, hours, [])
    for section in (_network, _edge, _gateway, _data, _llm, _realtime, _foundation, _observability):
        section(bill)
    return bill.lines


def _network(bill: _Bill) -> None:
    env, use, price, hours = bill.env, bill.use, bill.price, bill.hours
    add = bill.add
    nats = len(env.resources("aws_nat_gateway"))
    add("network", "NAT gateways", f"{nats} × {hours:g} h + {use['nat_gb']:g} GB",
        nats * hours * price["nat_gateway_hour"] + use["nat_gb"] * price["nat_gateway_gb"])
    ips = len(env.resources("aws_eip"))
    add("network", "public IPv4 addresses (NAT)", f"{ips} × {hours:g} h", ips * hours * price["public_ipv4_hour"])
    interface = [e for e in env.resources("aws_vpc_endpoint") if e["vpc_endpoint_type"] == "Interface"]
    az_hours = sum(len(e["subnet_ids"]) for e in interface) * hours
    add("network", "interface endpoints", f"{len(interface)} × "
        f"{plural(len(interface[0]['subnet_ids']) if interface else 0, 'AZ')} + {use['endpoint_gb']:g} GB",
        az_hours * price["interface_endpoint_az_hour"] + use["endpoint_gb"] * price["endpoint_gb"])
    add("network", "data transfer out", f"{use['data_out_gb']:g} GB", use["data_out_gb"] * price["data_out_gb"])
    zones = len(env.resources("aws_route53_zone"))
    add("network", "Route 53 private zones", f"{zones}", zones * price["private_zone_month"])


def _edge(bill: _Bill) -> None:
    env, use, price, hours = bill.env, bill.use, bill.price, bill.hours
    add = bill.add
    albs = env.resources("aws_lb")
    add("edge", "load balancers (public + internal)", f"{len(albs)} × {hours:g} h, {use['alb_lcu_average']:g} LCU",
        len(albs) * hours * (price["alb_hour"] + use["alb_lcu_average"] * price["alb_lcu_hour"]))
    for acl in env.resources("aws_wafv2_web_acl"):
        add("edge", "WAF web ACL and rules", f"1 ACL, {plural(len(acl['rule']), 'rule')}, "
            f"{use['api_requests_millions']:g} M req",
            price["waf_acl_month"] + len(acl["rule"]) * price["waf_rule_month"]
            + use["api_requests_millions"] * price["waf_million_requests"])


def _gateway(bill: _Bill) -> None:
    env, price, hours = bill.env, bill.price, bill.hours
    add = bill.add
    for service in env.resources("aws_ecs_service"):
        # the serving task; the other one is the one-off migration task
        (task,) = [t for t in env.resources("aws_ecs_task_definition") if not t["family"].endswith("-migrate")]
        vcpu, gb = int(task["cpu"]) / 1024, int(task["memory"]) / 1024
        spot = service["capacity_provider_strategy"][0]["capacity_provider"] == "FARGATE_SPOT"
        rate = (vcpu * price["fargate_vcpu_hour"] + gb * price["fargate_gb_hour"]) * (
            1 - price["fargate_spot_discount"] if spot else 1)
        add("gateway", f"Fargate{' Spot' if spot else ''} tasks", f"{service['desired_count']} × {vcpu:g} vCPU / "
            f"{gb:g} GB × {hours:g} h", service["desired_count"] * rate * hours)


def _data(bill: _Bill) -> None:
    env, use, price, hours = bill.env, bill.use, bill.price, bill.hours
    add, instance = bill.add, bill.instance
    for db in env.resources("aws_db_instance"):
        copies = 2 if db["multi_az"] else 1
        add("data", f"RDS {db['instance_class']}{' Multi-AZ' if copies == 2 else ''}", f"{copies} × {hours:g} h",
            copies * hours * instance(db["instance_class"]))
        add("data", "RDS gp3 storage", f"{copies} × {db['allocated_storage']} GB",
            copies * db["allocated_storage"] * price["rds_gp3_gb_month"])
    for plan in env.resources("aws_backup_plan"):
        rule = plan["rule"][0]
        copied = " and a copy in another region" if rule.get("copy_action") else ""
        # Incremental recovery points, billed at each service's backup rate per GB-month: the
        # size depends on how much the data changes, so it is named here, not estimated.
        add("data", "AWS Backup recovery points", f"{rule['lifecycle']['delete_after']} days of daily points"
            f"{copied}, per GB-month at the RDS snapshot and DynamoDB backup rates (not estimated)", 0.0)
    for redis in env.resources("aws_elasticache_replication_group"):
        nodes = redis["num_cache_clusters"]
        add("data", f"ElastiCache {redis['node_type']}", f"{plural(nodes, 'node')} × {hours:g} h",
            nodes * hours * instance(redis["node_type"]))
    tables = env.resources("aws_dynamodb_table")
    copies = 1 + max((len(t.get("replica", [])) for t in tables), default=0)
    add("data", "DynamoDB on-demand" + (f" (+{plural(copies - 1, 'replica region')})" if copies > 1 else ""),
        f"{use['dynamodb_writes_millions']:g} M writes, {use['dynamodb_reads_millions']:g} M reads, "
        f"{use['dynamodb_gb']:g} GB × {copies}",
        copies * (use["dynamodb_writes_millions"] * price["dynamodb_million_writes"]
                  + use["dynamodb_gb"] * price["dynamodb_gb_month"])
        + use["dynamodb_reads_millions"] * price["dynamodb_million_reads"])


def _llm(bill: _Bill) -> None:
    env, use, price, hours = bill.env, bill.use, bill.price, bill.hours
    add, instance = bill.add, bill.instance
    for group in env.resources("aws_autoscaling_group"):
        mixed = group.get("mixed_instances_policy")
        (template,) = env.resources("aws_launch_template")
        type_ = template["instance_type"]
        # A scheduled group runs the scale-up schedule's hosts for part of the day.
        scheduled = [s["desired_capacity"] for s in env.resources("aws_autoscaling_schedule")]
        desired = max(scheduled) if scheduled else group["desired_capacity"]
        distribution = mixed["instances_distribution"] if mixed else {}
        base = min(desired, distribution.get("on_demand_base_capacity", desired))
        # The on-demand share of the hosts above the base (Auto Scaling rounds it up).
        base += math.ceil((desired - base) * distribution.get("on_demand_percentage_above_base_capacity", 0) / 100)
        spot = desired - base
        running = hours * use["gpu_hours_share"]
        add("llm", f"GPU {type_} on-demand", f"{base} × {running:g} h", base * running * instance(type_))
        add("llm", f"GPU {type_} Spot (−{GPU_SPOT_DISCOUNT:.0%})", f"{spot} × {running:g} h",
            spot * running * instance(type_) * (1 - GPU_SPOT_DISCOUNT))
        ebs = template["block_device_mappings"][0]["ebs"]
        disk = ebs["volume_size"]
        warm = group.get("warm_pool", {}).get("min_size", 0)
        volumes = desired * use["gpu_hours_share"] + warm
        add("llm", "GPU root volumes (gp3, incl. warm pool)", f"{desired} running ({use['gpu_hours_share']:g} of "
            f"the month) + {warm} warm × {disk} GB", volumes * disk * price["ebs_gp3_gb_month"])
        # gp3 bills provisioned performance above its 3,000 IOPS / 125 MiB/s baseline.
        iops, mibps = max(ebs.get("iops", 3000) - 3000, 0), max(ebs.get("throughput", 125) - 125, 0)
        add("llm", "GPU root volumes' IOPS and throughput above baseline", f"+{iops} IOPS, +{mibps} MiB/s each",
            volumes * (iops * price["ebs_gp3_iops_month"] + mibps * price["ebs_gp3_mibps_month"]))


def _realtime(bill: _Bill) -> None:
    env, use, price = bill.env, bill.use, bill.price
    add = bill.add
    functions = env.resources("aws_lambda_function")
    memory = sum(f["memory_size"] for f in functions) / max(len(functions), 1) / 1024
    add("realtime", "Lambda (arm64)", f"{use['lambda_invocations_millions']:g} M × {use['lambda_average_seconds']:g} s "
        f"× {memory:.2f} GB", use["lambda_invocations_millions"] * (
            1e6 * use["lambda_average_seconds"] * memory * price["lambda_arm_gb_second"]
            + price["lambda_million_requests"]))
    if env.resources("aws_apigatewayv2_api"):
        add("realtime", "API Gateway WebSocket", f"{use['websocket_messages_millions']:g} M messages, "
            f"{use['websocket_connection_minutes_millions']:g} M connection-minutes",
            use["websocket_messages_millions"] * price["websocket_million_messages"]
            + use["websocket_connection_minutes_millions"] * price["websocket_million_connection_minutes"])
    queues_topics = len(env.resources("aws_sqs_queue")) + len(env.resources("aws_sns_topic"))
    add("realtime", "SQS and SNS", f"{plural(queues_topics, 'queue or topic', 'queues and topics')}, "
        f"{use['queue_and_topic_requests_millions']:g} M req each",
        use["queue_and_topic_requests_millions"] * (price["sqs_million_requests"] + price["sns_million_requests"]))
    pools = len(env.resources("aws_cognito_user_pool"))
    add("realtime", "Cognito (Plus tier)", f"{plural(pools, 'pool')}, {use['cognito_mau']:g} MAU",
        pools * use["cognito_mau"] * price["cognito_plus_mau"])
    add("realtime", "Step Functions (password-rotation redeploys)", "a few transitions a week", 0.0)


def _foundation(bill: _Bill) -> None:
    env, use, price = bill.env, bill.use, bill.price
    add = bill.add
    keys = len(env.resources("aws_kms_key")) + len(env.resources("aws_kms_replica_key"))
    add("foundation", "KMS keys", f"{keys}", keys * price["kms_key_month"])
    secrets = len(env.resources("aws_secretsmanager_secret"))
    add("foundation", "Secrets Manager secrets", f"{secrets}", secrets * price["secret_month"])
    buckets = len(env.resources("aws_s3_bucket"))
    add("foundation", "S3 storage", f"{plural(buckets, 'bucket')}, {use['s3_gb']:g} GB",
        use["s3_gb"] * price["s3_gb_month"])
    trails = len(env.resources("aws_cloudtrail"))
    add("foundation", "CloudTrail", plural(trails, "trail") + (" (first copy of management events is free)"
                                                              if trails else ""), 0.0)


def _observability(bill: _Bill) -> None:
    env, use, price = bill.env, bill.use, bill.price
    add = bill.add
    alarms = env.resources("aws_cloudwatch_metric_alarm")
    anomaly = sum(1 for a in alarms if "threshold_metric_id" in a)
    composite = len(env.resources("aws_cloudwatch_composite_alarm"))
    dashboards = len(env.resources("aws_cloudwatch_dashboard"))
    add("observability", "CloudWatch alarms and dashboards", f"{len(alarms) - anomaly} + {anomaly} anomaly + "
        f"{plural(composite, 'composite alarm')}, {plural(dashboards, 'dashboard')}",
        (len(alarms) - anomaly) * price["alarm_month"] + anomaly * price["anomaly_alarm_month"]
        + composite * price["composite_alarm_month"] + dashboards * price["dashboard_month"])
    groups = len(env.resources("aws_cloudwatch_log_group"))
    add("observability", "CloudWatch Logs", f"{plural(groups, 'group')}, {use['logs_ingest_gb']:g} GB in, "
        f"{use['logs_stored_gb']:g} GB kept", use["logs_ingest_gb"] * price["logs_ingest_gb"]
        + use["logs_stored_gb"] * price["logs_store_gb_month"])


def unpriced_types(env: Environment) -> set[str]:
    return env.types() - PRICED - FREE


def report(envs: list[Environment], assumptions: Path | None = None, known: Iterable[str] = ()) -> str:
    """`assumptions`: a file of your own laid over the shipped one (validated; SynthError if not);
    `known`: the environment names its tables may use (default: those of `envs`). An environment
    whose region has no prices gets a line saying so instead of an estimate."""
    known = sorted(set(known) | {e.name for e in envs})
    table = read_prices(PRICES)
    files = _shown(ASSUMPTIONS) + (f" with {_shown(assumptions)} over it" if assumptions else "")
    out = [f"Monthly estimate, USD, list prices of {table['date']} ({table['source']}); traffic from "
           f"{files}; Bedrock tokens not included.", ""]
    totals: dict[str, dict[str, float]] = {}
    for env in envs:
        use = resolve_assumptions(env, assumptions, known)
        if env.region not in table:
            out += [f"{env.name} ({env.region}): no prices for {env.region} in {_shown(PRICES)}, so no estimate. "
                    f"Fix: add [{env.region}] and [{env.region}.instances] with its list prices.", ""]
            continue
        lines = estimate(env, use.values, table[env.region], table["hours_per_month"])
        width = max(len(line.item) for line in lines)
        out += [f"{env.name} ({env.region}), traffic profile {use.profile!r}", f"  assumptions: {provenance(use)}",
                f"  {'item'.ljust(width)}  {'monthly':>10}  quantity"]
        out += [f"  {line.item.ljust(width)}  {line.usd:10,.2f}  {line.quantity}" for line in lines]
        total = sum(line.usd for line in lines)
        out += [f"  {'total'.ljust(width)}  {total:10,.2f}", ""]
        groups: dict[str, float] = {}
        for line in lines:
            groups[line.group] = groups.get(line.group, 0) + line.usd
        totals[env.name] = {**groups, "total": total}
    names = list(totals)
    if names:
        out += ["| layer | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for group in dict.fromkeys(g for t in totals.values() for g in t):
        out.append(f"| {group} | " + " | ".join(f"{totals[n].get(group, 0):,.2f}" for n in names) + " |")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m modules.tools.cost",
                                     description="Monthly cost estimate per environment.")
    parser.add_argument("environments", nargs="*", metavar="ENV",
                        help="environments of the synth to estimate (default: every one)")
    parser.add_argument("--outdir", type=Path, default=DEFAULT_OUTDIR,
                        help=f"the synth output to read (default: {DEFAULT_OUTDIR})")
    parser.add_argument("--assumptions", type=Path, metavar="FILE.toml",
                        help=f"traffic assumptions laid over the shipped {_shown(ASSUMPTIONS)} (any part of its shape)")
    args = parser.parse_args(argv)
    try:
        envs = load(args.outdir, args.environments)
        # Tables may name any environment of this synth or of environments/.
        from modules.config import available_environments
        known = {e.name for e in load(args.outdir)} | set(available_environments())
        if args.assumptions:
            read_assumptions(args.assumptions, known)  # every problem at once, before any estimate
        for env in envs:
            if unpriced_types(env):
                raise SynthError(f"environment '{env.name}': no price for {', '.join(sorted(unpriced_types(env)))}. "
                                 "Fix: price it in modules/tools/cost.py or list it as free.")
        print(report(envs, args.assumptions, known), end="")
    except SynthError as err:
        print("\n".join(f"cost: {line}" for line in str(err).splitlines()), file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Monthly cost estimate of each environment, line by line, from its synthesized stacks, a
shipped and dated price table (`prices.toml`) and stated traffic assumptions
(`cost_assumptions.toml`).

    python -m modules.cost [ENV ...] [--outdir cdktf.out] [--assumptions FILE.toml]

What is built (counts, sizes, Multi-AZ, Spot) comes from the JSON; what is used (requests,
gigabytes, users) from the assumptions. Every resource type the synth holds is either priced
here or listed as free (a test fails on a new type that is neither).
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modules.synthesized import DEFAULT_OUTDIR, Environment, SynthError, load

PRICES = Path(__file__).with_name("prices.toml")
ASSUMPTIONS = Path(__file__).with_name("cost_assumptions.toml")
# A GPU host on Spot costs about 40 % of on-demand (stated, not looked up per hour).
GPU_SPOT_DISCOUNT = 0.60

PRICED = {
    "aws_nat_gateway", "aws_eip", "aws_lb", "aws_ecs_service", "aws_db_instance", "aws_elasticache_replication_group",
    "aws_autoscaling_group", "aws_vpc_endpoint", "aws_kms_key", "aws_kms_replica_key", "aws_cloudwatch_metric_alarm",
    "aws_cloudwatch_composite_alarm", "aws_cloudwatch_dashboard", "aws_cloudwatch_log_group", "aws_wafv2_web_acl",
    "aws_apigatewayv2_api", "aws_lambda_function", "aws_dynamodb_table", "aws_s3_bucket", "aws_sqs_queue",
    "aws_sns_topic", "aws_secretsmanager_secret", "aws_route53_zone", "aws_cognito_user_pool", "aws_cloudtrail",
    "aws_sfn_state_machine",
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
}


@dataclass(frozen=True)
class Line:
    group: str
    item: str
    quantity: str
    usd: float


def assumptions_for(env: str, path: Path = ASSUMPTIONS) -> dict[str, float]:
    table = tomllib.loads(path.read_text())
    return {**table["default"], **table.get(env, {})}


def prices_for(env: Environment, path: Path = PRICES) -> tuple[dict[str, Any], float]:
    table = tomllib.loads(path.read_text())
    if env.region not in table:
        raise SynthError(f"environment '{env.name}': region {env.region} is not in {path.name} (it has "
                         f"{', '.join(k for k, v in table.items() if isinstance(v, dict))}). Fix: add a "
                         f"[{env.region}] section with its list prices.")
    return table[env.region], table["hours_per_month"]


def estimate(env: Environment, use: dict[str, float], price: dict[str, Any], hours: float) -> list[Line]:
    lines: list[Line] = []

    def add(group: str, item: str, quantity: str, usd: float) -> None:
        lines.append(Line(group, item, quantity, round(usd, 2)))

    def instance(type_: str) -> float:
        if type_ not in price["instances"]:
            raise SynthError(f"environment '{env.name}': no price for {type_} in {env.region}. Fix: add it to "
                             f"[{env.region}.instances] in {PRICES.name}.")
        return price["instances"][type_]

    nats = len(env.resources("aws_nat_gateway"))
    add("network", "NAT gateways", f"{nats} × {hours:g} h + {use['nat_gb']:g} GB",
        nats * hours * price["nat_gateway_hour"] + use["nat_gb"] * price["nat_gateway_gb"])
    ips = len(env.resources("aws_eip"))
    add("network", "public IPv4 addresses (NAT)", f"{ips} × {hours:g} h", ips * hours * price["public_ipv4_hour"])
    interface = [e for e in env.resources("aws_vpc_endpoint") if e["vpc_endpoint_type"] == "Interface"]
    az_hours = sum(len(e["subnet_ids"]) for e in interface) * hours
    add("network", "interface endpoints", f"{len(interface)} × {len(interface[0]['subnet_ids']) if interface else 0} "
        f"AZs + {use['endpoint_gb']:g} GB",
        az_hours * price["interface_endpoint_az_hour"] + use["endpoint_gb"] * price["endpoint_gb"])
    add("network", "data transfer out", f"{use['data_out_gb']:g} GB", use["data_out_gb"] * price["data_out_gb"])
    zones = len(env.resources("aws_route53_zone"))
    add("network", "Route 53 private zones", f"{zones}", zones * price["private_zone_month"])

    albs = env.resources("aws_lb")
    add("edge", "load balancers (public + internal)", f"{len(albs)} × {hours:g} h, {use['alb_lcu_average']:g} LCU",
        len(albs) * hours * (price["alb_hour"] + use["alb_lcu_average"] * price["alb_lcu_hour"]))
    for acl in env.resources("aws_wafv2_web_acl"):
        add("edge", "WAF web ACL and rules", f"1 ACL, {len(acl['rule'])} rules, {use['api_requests_millions']:g} M req",
            price["waf_acl_month"] + len(acl["rule"]) * price["waf_rule_month"]
            + use["api_requests_millions"] * price["waf_million_requests"])

    for service in env.resources("aws_ecs_service"):
        (task,) = env.resources("aws_ecs_task_definition")
        vcpu, gb = int(task["cpu"]) / 1024, int(task["memory"]) / 1024
        spot = service["capacity_provider_strategy"][0]["capacity_provider"] == "FARGATE_SPOT"
        rate = (vcpu * price["fargate_vcpu_hour"] + gb * price["fargate_gb_hour"]) * (
            1 - price["fargate_spot_discount"] if spot else 1)
        add("gateway", f"Fargate{' Spot' if spot else ''} tasks", f"{service['desired_count']} × {vcpu:g} vCPU / "
            f"{gb:g} GB × {hours:g} h", service["desired_count"] * rate * hours)

    for db in env.resources("aws_db_instance"):
        copies = 2 if db["multi_az"] else 1
        add("data", f"RDS {db['instance_class']}{' Multi-AZ' if copies == 2 else ''}", f"{copies} × {hours:g} h",
            copies * hours * instance(db["instance_class"]))
        add("data", "RDS gp3 storage", f"{copies} × {db['allocated_storage']} GB",
            copies * db["allocated_storage"] * price["rds_gp3_gb_month"])
    for redis in env.resources("aws_elasticache_replication_group"):
        nodes = redis["num_cache_clusters"]
        add("data", f"ElastiCache {redis['node_type']}", f"{nodes} nodes × {hours:g} h",
            nodes * hours * instance(redis["node_type"]))
    tables = env.resources("aws_dynamodb_table")
    copies = 1 + max((len(t.get("replica", [])) for t in tables), default=0)
    add("data", "DynamoDB on-demand" + (f" (+{copies - 1} replica region)" if copies > 1 else ""),
        f"{use['dynamodb_writes_millions']:g} M writes, {use['dynamodb_reads_millions']:g} M reads, "
        f"{use['dynamodb_gb']:g} GB × {copies}",
        copies * (use["dynamodb_writes_millions"] * price["dynamodb_million_writes"]
                  + use["dynamodb_gb"] * price["dynamodb_gb_month"])
        + use["dynamodb_reads_millions"] * price["dynamodb_million_reads"])

    for group in env.resources("aws_autoscaling_group"):
        mixed = group.get("mixed_instances_policy")
        (template,) = env.resources("aws_launch_template")
        type_ = template["instance_type"]
        # A scheduled group runs the scale-up schedule's hosts for part of the day.
        scheduled = [s["desired_capacity"] for s in env.resources("aws_autoscaling_schedule")]
        desired = max(scheduled) if scheduled else group["desired_capacity"]
        base = min(desired, mixed["instances_distribution"]["on_demand_base_capacity"]) if mixed else desired
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
    add("realtime", "SQS and SNS", f"{queues_topics} queues/topics, {use['queue_and_topic_requests_millions']:g} M "
        "req each",
        use["queue_and_topic_requests_millions"] * (price["sqs_million_requests"] + price["sns_million_requests"]))
    pools = len(env.resources("aws_cognito_user_pool"))
    add("realtime", "Cognito (Plus tier)", f"{pools} pool, {use['cognito_mau']:g} MAU",
        pools * use["cognito_mau"] * price["cognito_plus_mau"])
    add("realtime", "Step Functions (password-rotation redeploys)", "a few transitions a week", 0.0)

    keys = len(env.resources("aws_kms_key")) + len(env.resources("aws_kms_replica_key"))
    add("foundation", "KMS keys", f"{keys}", keys * price["kms_key_month"])
    secrets = len(env.resources("aws_secretsmanager_secret"))
    add("foundation", "Secrets Manager secrets", f"{secrets}", secrets * price["secret_month"])
    buckets = len(env.resources("aws_s3_bucket"))
    add("foundation", "S3 storage", f"{buckets} buckets, {use['s3_gb']:g} GB", use["s3_gb"] * price["s3_gb_month"])
    trails = len(env.resources("aws_cloudtrail"))
    add("foundation", "CloudTrail", f"{trails} trail (first copy of management events is free)", 0.0)

    alarms = env.resources("aws_cloudwatch_metric_alarm")
    anomaly = sum(1 for a in alarms if "threshold_metric_id" in a)
    composite = len(env.resources("aws_cloudwatch_composite_alarm"))
    dashboards = len(env.resources("aws_cloudwatch_dashboard"))
    add("observability", "CloudWatch alarms and dashboards", f"{len(alarms) - anomaly} + {anomaly} anomaly + "
        f"{composite} composite alarms, {dashboards} dashboard",
        (len(alarms) - anomaly) * price["alarm_month"] + anomaly * price["anomaly_alarm_month"]
        + composite * price["composite_alarm_month"] + dashboards * price["dashboard_month"])
    groups = len(env.resources("aws_cloudwatch_log_group"))
    add("observability", "CloudWatch Logs", f"{groups} groups, {use['logs_ingest_gb']:g} GB in, "
        f"{use['logs_stored_gb']:g} GB kept", use["logs_ingest_gb"] * price["logs_ingest_gb"]
        + use["logs_stored_gb"] * price["logs_store_gb_month"])
    return lines


def unpriced_types(env: Environment) -> set[str]:
    return env.types() - PRICED - FREE


def report(envs: list[Environment], assumptions: Path = ASSUMPTIONS) -> str:
    table = tomllib.loads(PRICES.read_text())
    out = [f"Monthly estimate, USD, list prices of {table['date']} ({table['source']}); traffic from "
           f"{assumptions.name}; Bedrock tokens not included.", ""]
    totals: dict[str, dict[str, float]] = {}
    for env in envs:
        price, hours = prices_for(env)
        lines = estimate(env, assumptions_for(env.name, assumptions), price, hours)
        width = max(len(line.item) for line in lines)
        out += [f"{env.name} ({env.region})", f"  {'item'.ljust(width)}  {'monthly':>10}  quantity"]
        out += [f"  {line.item.ljust(width)}  {line.usd:10,.2f}  {line.quantity}" for line in lines]
        total = sum(line.usd for line in lines)
        out += [f"  {'total'.ljust(width)}  {total:10,.2f}", ""]
        groups: dict[str, float] = {}
        for line in lines:
            groups[line.group] = groups.get(line.group, 0) + line.usd
        totals[env.name] = {**groups, "total": total}
    names = list(totals)
    out += ["| layer | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for group in dict.fromkeys(g for t in totals.values() for g in t):
        out.append(f"| {group} | " + " | ".join(f"{totals[n].get(group, 0):,.2f}" for n in names) + " |")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Monthly cost estimate per environment.")
    parser.add_argument("environments", nargs="*")
    parser.add_argument("--outdir", type=Path, default=DEFAULT_OUTDIR)
    parser.add_argument("--assumptions", type=Path, default=ASSUMPTIONS)
    args = parser.parse_args(argv)
    try:
        envs = load(args.outdir, args.environments)
        for env in envs:
            if unpriced_types(env):
                raise SynthError(f"environment '{env.name}': no price for {', '.join(sorted(unpriced_types(env)))}. "
                                 "Fix: price it in modules/cost.py or list it as free.")
        print(report(envs, args.assumptions), end="")
    except SynthError as err:
        print(f"cost: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""OBS-3…OBS-5: alarms (by name, with their thresholds), the dimension cross-check, the
composite alarm, the topic, the RDS event rule and the dashboard."""

from __future__ import annotations

import json
import re

import pytest

from conftest import ENVIRONMENTS, Stack
from modules.catalogue.alarms import (CATALOGUE, DB_MEMORY_GIB, GIB, TABLE_OPERATIONS, max_connections,
                            storage_autoscaling_trigger)
from modules.config import load_environment
from modules.layers.llm import HEALTH_GRACE_SECONDS

REMOTE = re.compile(r"^\$\{data\.terraform_remote_state\.cross-stack-reference-input-(?P<stack>[a-z0-9-]+)"
                    r"\.outputs\.(?P<output>[^}]+)\}$")
RESOURCE = re.compile(r"^\$\{(?P<type>aws_[a-z0-9_]+)\.(?P<id>[A-Za-z0-9_]+)\.(?P<attr>[a-z_]+)\}$")
# What each CloudWatch dimension must point at.
DIMENSION_TYPES = {
    "LoadBalancer": ("aws_lb", "arn_suffix"), "TargetGroup": ("aws_lb_target_group", "arn_suffix"),
    "ClusterName": ("aws_ecs_cluster", "name"), "ServiceName": ("aws_ecs_service", "name"),
    "DBInstanceIdentifier": ("aws_db_instance", "identifier"), "AutoScalingGroupName": ("aws_autoscaling_group", "name"),
    "QueueName": ("aws_sqs_queue", "name"), "FunctionName": ("aws_lambda_function", "function_name"),
    "ApiId": ("aws_apigatewayv2_api", "id"), "WebACL": ("aws_wafv2_web_acl", "name"),
    "TableName": ("aws_dynamodb_table", "name"), "StateMachineArn": ("aws_sfn_state_machine", "arn"),
}
OPERATIONS = {op for ops in TABLE_OPERATIONS.values() for op in ops}


@pytest.fixture(params=ENVIRONMENTS)
def observability(request, stacks) -> Stack:
    return stacks[f"{request.param}-observability"]


def alarms(stack: Stack) -> dict[str, dict]:
    env = stack.name.removesuffix("-observability")
    return {a["alarm_name"].removeprefix(f"llmlite-{env}-"): a
            for a in stack.resources("aws_cloudwatch_metric_alarm").values()}


def resolve(stacks: dict[str, Stack], value: str) -> tuple[str, dict, str]:
    """A cross-stack reference -> (resource type, resource body, attribute)."""
    remote = REMOTE.match(value)
    assert remote, f"{value} is not a reference to another stack's resource"
    producer = stacks[remote["stack"]]
    target = RESOURCE.match(producer.doc["output"][remote["output"]]["value"])
    assert target, value
    body = producer.resources(target["type"]).get(target["id"])
    assert body is not None, f"{value} names a resource that does not exist"
    return target["type"], body, target["attr"]


def dimension_sets(alarm: dict) -> list[tuple[str, dict[str, str]]]:
    if "metric_query" in alarm:
        return [(q["metric"]["namespace"], q["metric"].get("dimensions", {}))
                for q in alarm["metric_query"] if "metric" in q]
    return [(alarm["namespace"], alarm.get("dimensions", {}))]


def test_every_alarm_watches_a_resource_that_exists(stacks, observability: Stack) -> None:
    """An alarm on a metric nothing emits is a defect: each dimension must name a real resource."""
    env = load_environment(observability.name.removesuffix("-observability"))
    data = stacks[f"{env.name}-data"]
    stage = stacks[f"{env.name}-realtime"].one("aws_apigatewayv2_stage")["name"]
    filters = {(f["metric_transformation"]["namespace"], f["metric_transformation"]["name"]): f
               for f in observability.resources("aws_cloudwatch_log_metric_filter").values()}
    for name, alarm in alarms(observability).items():
        for namespace, dimensions in dimension_sets(alarm):
            if namespace == f"llmlite/{env.name}":  # from a metric filter on the proxy's log
                metric_filter = filters[(namespace, alarm["metric_name"])]
                type_, _, _ = resolve(stacks, metric_filter["log_group_name"])
                assert type_ == "aws_cloudwatch_log_group", name
                continue
            assert dimensions, f"{name} has no dimensions"
            for key, value in dimensions.items():
                if key in DIMENSION_TYPES:
                    assert resolve(stacks, value)[::2] == DIMENSION_TYPES[key], (name, key)
                elif key == "CacheClusterId":
                    group = data.one("aws_elasticache_replication_group")
                    prefix, number = value.rsplit("-", 1)
                    assert prefix == group["replication_group_id"] and 1 <= int(number) <= group["num_cache_clusters"]
                elif key == "Operation":
                    assert value in OPERATIONS, (name, value)
                elif key == "ModelId":  # a Bedrock route of the environment
                    assert value in {m.bedrock_model_id for m in env.gateway.models}, (name, value)
                elif key == "ReceivingRegion":  # a region the alarm's table replicates to
                    _, table, _ = resolve(stacks, dimensions["TableName"])
                    assert value in {r["region_name"] for r in table.get("replica", [])}, (name, value)
                else:
                    assert (key, value) in {("Region", env.region), ("Rule", "ALL"), ("Stage", stage)}, (name, key)


def test_the_gateway_designs_alarms_and_thresholds(stacks) -> None:
    prod = alarms(stacks["prod-observability"])
    assert prod["waf-blocked"]["threshold"] == 100 and prod["waf-blocked"]["period"] == 300
    allowed = prod["waf-allowed-drop"]
    assert allowed["comparison_operator"] == "LessThanLowerThreshold" and allowed["threshold_metric_id"] == "band"
    assert "ANOMALY_DETECTION_BAND(traffic, 2)" in json.dumps(allowed["metric_query"])
    rate = prod["alb-5xx-rate"]
    assert rate["threshold"] == 5 and "100 * (FILL(elb5xx, 0) + FILL(target5xx, 0)) / requests" in json.dumps(
        rate["metric_query"])
    assert (prod["alb-p95-latency"]["extended_statistic"], prod["alb-p95-latency"]["threshold"]) == ("p95", 3)
    assert (prod["alb-healthy-hosts"]["comparison_operator"], prod["alb-healthy-hosts"]["threshold"]) == (
        "LessThanThreshold", 1)
    assert prod["alb-healthy-hosts"]["treat_missing_data"] == "breaching"  # silence is not health
    assert prod["auth-401-spike"]["threshold"] == 50 and prod["ecs-cpu"]["threshold"] == 80
    assert prod["ecs-memory"]["threshold"] == 85 and prod["rds-cpu"]["threshold"] == 80
    assert prod["rds-free-storage"]["threshold"] == 2_000_000_000  # the design's 2 GB, not 2 GiB
    assert prod["rds-connections"]["threshold"] == round(0.8 * max_connections("db.t4g.small")) == 134
    assert prod["rds-read-latency"]["threshold"] == prod["rds-write-latency"]["threshold"] == 0.1
    assert prod["gpu-asg-at-max"]["threshold"] == load_environment("prod").llm.capacity.max
    assert alarms(stacks["dev-observability"])["rds-connections"]["threshold"] == round(0.8 * 84)  # t4g.micro


def test_connection_alarm_is_80_percent_of_the_max_connections_the_database_runs_with(stacks) -> None:
    """RDS's default max_connections divides DBInstanceClassMemory (the class's memory less an
    unpublished OS/RDS reserve) by 9531392, so it is unknown before the instance runs: the
    parameter group pins it, and the alarm reads the pinned value."""
    for env in ENVIRONMENTS:
        data = stacks[f"{env}-data"].one("aws_db_parameter_group")
        params = {p["name"]: p for p in data["parameter"]}
        pinned = int(params["max_connections"]["value"])
        assert params["max_connections"]["apply_method"] == "pending-reboot"  # a static parameter
        assert alarms(stacks[f"{env}-observability"])["rds-connections"]["threshold"] == round(0.8 * pinned)
    for instance_class, gib in DB_MEMORY_GIB.items():
        rds_formula_on_nominal_memory = min(gib * GIB // 9_531_392, 5000)
        assert max_connections(instance_class) <= 0.75 * rds_formula_on_nominal_memory + 1, instance_class


def test_free_storage_pages_below_the_storage_autoscaling_trigger(stacks) -> None:
    """RDS grows storage when free space is at most 10 % of the allocation; the alarm must fire
    only below that, where autoscaling has reached its ceiling or cannot keep up."""
    for env in ENVIRONMENTS:
        data = stacks[f"{env}-data"].one("aws_db_instance")
        assert data["max_allocated_storage"] > data["allocated_storage"]  # autoscaling is on
        threshold = alarms(stacks[f"{env}-observability"])["rds-free-storage"]["threshold"]
        assert threshold < storage_autoscaling_trigger(data["allocated_storage"]), env


def test_gpu_queue_backlog_is_the_mean_waiting_per_host(stacks) -> None:
    """Each host publishes its waiting requests once a minute (a gauge): a 5-minute Sum would add
    five samples per host and page five times too early; Average is what scaling tracks."""
    for env in ENVIRONMENTS:
        backlog = alarms(stacks[f"{env}-observability"])["llm-queue-backlog"]
        target = load_environment(env).llm.queue_target_per_instance
        assert (backlog["statistic"], backlog["period"]) == ("Average", 300)
        assert backlog["threshold"] == 4 * target and backlog["evaluation_periods"] == 2
        policy = next(p for p in stacks[f"{env}-llm"].resources("aws_autoscaling_policy").values()
                      if p["name"].endswith("gpu-queue"))
        spec = policy["target_tracking_configuration"]["customized_metric_specification"]
        assert (spec["metric_name"], spec["statistic"]) == (backlog["metric_name"], "Average")


def test_gpu_at_max_only_where_the_group_can_grow(stacks) -> None:
    for env in ENVIRONMENTS:
        maximum = load_environment(env).llm.capacity.max
        at_max = alarms(stacks[f"{env}-observability"]).get("gpu-asg-at-max")
        if maximum <= 1:
            assert at_max is None, env  # one host is the group's normal size, not saturation
        else:
            assert at_max["threshold"] == maximum and at_max["statistic"] == "Minimum"
    assert load_environment("dev").llm.capacity.max == 1


def test_no_healthy_gpu_host_pages(stacks) -> None:
    """HealthyHostCount < 1 on the model's target group. With a minimum above zero silence is
    bad news; where the group may be empty on purpose (min 0, or dev: scheduled to zero at night)
    it pages only while the group wants hosts, and only after a boot's worth of time."""
    for env in ENVIRONMENTS:
        cfg = load_environment(env).llm
        alarm = alarms(stacks[f"{env}-observability"])["llm-healthy-hosts"]
        assert (alarm["comparison_operator"], alarm["threshold"]) == ("LessThanThreshold", 1)
        if cfg.capacity.min > 0 and not cfg.scheduled_scaling:
            assert (alarm["metric_name"], alarm["statistic"]) == ("HealthyHostCount", "Minimum")
            assert set(alarm["dimensions"]) == {"LoadBalancer", "TargetGroup"}
            assert alarm["treat_missing_data"] == "breaching"
            continue
        queries = {q["id"]: q for q in alarm["metric_query"]}
        assert queries["healthy"]["metric"]["metric_name"] == "HealthyHostCount"
        assert queries["wanted"]["metric"]["metric_name"] == "GroupDesiredCapacity"
        assert queries["serving"]["expression"] == "IF(FILL(wanted, 0) >= 1, FILL(healthy, 0), 1)"
        assert [q["id"] for q in alarm["metric_query"] if q["return_data"]] == ["serving"]
        assert alarm["treat_missing_data"] == "notBreaching"
        # a scheduled scale-up boots a host (weights, image, model load) before it can be healthy
        assert alarm["evaluation_periods"] * queries["healthy"]["metric"]["period"] > HEALTH_GRACE_SECONDS
        assert alarm["evaluation_periods"] * 60 <= 86_400
    assert load_environment("dev").llm.scheduled_scaling and not load_environment("prod").llm.scheduled_scaling


def test_gpu_hosts_join_the_target_group_only_after_the_launch_hook(stacks) -> None:
    """llm-unhealthy-hosts counts a loading host as unhealthy unless the host is registered
    with the target group only after its launch lifecycle hook completes (EC2 Auto Scaling
    registers instances with the load balancer at the end of the hook)."""
    for env in ENVIRONMENTS:
        llm = stacks[f"{env}-llm"]
        hooks = [h for g in llm.resources("aws_autoscaling_group").values() for h in g.get("initial_lifecycle_hook", [])]
        hooks += list(llm.resources("aws_autoscaling_lifecycle_hook").values())
        assert any(h["lifecycle_transition"] == "autoscaling:EC2_INSTANCE_LAUNCHING" for h in hooks), env


def test_waf_drop_does_not_breach_on_an_idle_environment(stacks) -> None:
    """The band is learned on allowed requests raised to a floor: an idle environment sits on the
    floor (inside its band, never below it) and a request-less period is no news; a busy one that
    loses its traffic falls from its band to the floor."""
    for env in ENVIRONMENTS:
        drop = alarms(stacks[f"{env}-observability"])["waf-allowed-drop"]
        queries = {q["id"]: q for q in drop["metric_query"]}
        assert queries["m1"]["metric"]["metric_name"] == "AllowedRequests" and not queries["m1"]["return_data"]
        assert queries["traffic"]["expression"] == "IF(FILL(m1, 0) > 100, FILL(m1, 0), 100)"
        assert queries["band"]["expression"] == "ANOMALY_DETECTION_BAND(traffic, 2)"
        assert drop["threshold_metric_id"] == "band" and drop["comparison_operator"] == "LessThanLowerThreshold"
        assert drop["treat_missing_data"] == "notBreaching"


def test_dynamodb_throttles_and_system_errors_per_table(stacks) -> None:
    for env in ENVIRONMENTS:
        named = alarms(stacks[f"{env}-observability"])
        for metric, kind in (("ThrottledRequests", "throttles"), ("SystemErrors", "system-errors")):
            for table, operations in TABLE_OPERATIONS.items():
                alarm = named[f"dynamodb-{kind}-{table}"]
                metrics = [q["metric"] for q in alarm["metric_query"] if "metric" in q]
                assert {m["metric_name"] for m in metrics} == {metric}
                assert sorted(m["dimensions"]["Operation"] for m in metrics) == sorted(operations)
                assert len({m["dimensions"]["TableName"] for m in metrics}) == 1
                (total,) = [q for q in alarm["metric_query"] if q["return_data"]]
                assert total["expression"] == "SUM([" + ", ".join(f"op{i}" for i in range(len(operations))) + "])"
                assert alarm["treat_missing_data"] == "notBreaching"  # DynamoDB reports these only when they happen


def test_table_operations_cover_what_the_functions_call() -> None:
    """The alarms sum ThrottledRequests/SystemErrors over TABLE_OPERATIONS (the metrics exist
    only per operation): every table call in the function code must be among them."""
    from conftest import ROOT
    calls = {"put_item": "PutItem", "delete_item": "DeleteItem", "query": "Query", "get_item": "GetItem",
             "update_item": "UpdateItem", "scan": "Scan", "batch_writer": "BatchWriteItem",
             "batch_get_item": "BatchGetItem", "transact_write_items": "TransactWriteItems"}
    owner = {"connections.py": ("connections",), "history.py": ("history",), "claims.py": ("history",),
             "erasure.py": ("connections", "history")}
    pattern = re.compile(r"\btable\.(" + "|".join(calls) + r")\(")
    for path in (ROOT / "lambda").rglob("*.py"):
        used = {calls[m] for m in pattern.findall(path.read_text())}
        if path.name in owner:
            assert used and used <= {op for table in owner[path.name] for op in TABLE_OPERATIONS[table]}, path
        else:
            assert not used, f"{path} calls a table directly: add it to TABLE_OPERATIONS"


def test_websocket_client_errors_alarm(stacks) -> None:
    for env in ENVIRONMENTS:
        alarm = alarms(stacks[f"{env}-observability"])["websocket-client-errors"]
        assert (alarm["namespace"], alarm["metric_name"], alarm["statistic"]) == ("AWS/ApiGateway", "ClientError", "Sum")
        assert set(alarm["dimensions"]) == {"ApiId", "Stage"} and alarm["threshold"] == 50


def test_no_replica_lag_alarm_without_a_read_replica(stacks) -> None:
    """Multi-AZ standbys emit no ReplicaLag; the platform runs no read replica, so no alarm."""
    for name in ENVIRONMENTS:
        assert not any("ReplicaLag" in json.dumps(a) for a in alarms(stacks[f"{name}-observability"]).values())
        assert not stacks[f"{name}-data"].resources("aws_db_instance") or all(
            "replicate_source_db" not in db for db in stacks[f"{name}-data"].resources("aws_db_instance").values())


def test_every_alarm_notifies_the_topic_on_alarm_and_ok(observability: Stack) -> None:
    (topic_id,) = observability.resources("aws_sns_topic")
    topic = observability.ref("aws_sns_topic", topic_id, "arn")
    bodies = list(alarms(observability).values()) + list(observability.resources("aws_cloudwatch_composite_alarm").values())
    for alarm in bodies:
        assert alarm["alarm_actions"] == [topic] and alarm["ok_actions"] == [topic], alarm["alarm_name"]
    for alarm in alarms(observability).values():
        assert alarm["treat_missing_data"] in ("breaching", "notBreaching")
    expected = {"alb", "gpu", "lambda", "rds", "redis", "waf", "websocket", "dlq", "queue", "auth", "gateway", "ecs",
                "llm", "dynamodb", "proxy", "bedrock", "redeploy"}
    assert {name.split("-")[0] for name in alarms(observability)} == expected


def test_alarm_topic_is_encrypted_and_mails_the_environments_recipients(observability: Stack) -> None:
    env = load_environment(observability.name.removesuffix("-observability"))
    assert observability.one("aws_sns_topic")["kms_master_key_id"]
    [subscription] = observability.resources("aws_sns_topic_subscription").values()
    # one subscription per address, keyed by it (the module's alarm_emails variable feeds the same for_each)
    assert subscription["for_each"] == "${toset(" + json.dumps(env.observability.alarm_emails) + ")}"
    assert (subscription["endpoint"], subscription["protocol"]) == ("${each.value}", "email")
    statements = json.loads(observability.one("aws_sns_topic_policy")["policy"])["Statement"]
    publish = next(s for s in statements if s["Effect"] == "Allow")
    assert publish["Principal"] == {"Service": ["cloudwatch.amazonaws.com", "events.amazonaws.com"]}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_key_admits_alarms_and_events_to_the_encrypted_topic(stacks, env: str) -> None:
    """EventBridge sends KMS no aws:SourceAccount/aws:SourceArn when it publishes to an encrypted
    topic: a statement conditioned on them never matches and RDS events are dropped silently.
    SNS's encryption context (the topic's ARN) binds it instead. CloudWatch alarms do send
    them, so their statement stays bound to the account."""
    policy = json.loads(stacks[f"{env}-foundation"].one("aws_kms_key")["policy"])
    by_service = {}
    for statement in policy["Statement"]:
        services = statement["Principal"].get("Service", [])
        for service in [services] if isinstance(services, str) else services:
            by_service.setdefault(service, []).append(statement)
    (events,) = by_service["events.amazonaws.com"]
    assert set(events["Action"]) >= {"kms:GenerateDataKey*", "kms:Decrypt"}
    assert {op: list(keys) for op, keys in events["Condition"].items()} == {
        "StringEquals": ["kms:EncryptionContext:aws:sns:topicArn"]}
    (alarms,) = by_service["cloudwatch.amazonaws.com"]
    assert set(alarms["Action"]) >= {"kms:GenerateDataKey*", "kms:Decrypt"}
    assert list(alarms["Condition"]["StringEquals"]) == ["aws:SourceAccount"]


def test_platform_degraded_combines_the_critical_alarms(observability: Stack) -> None:
    composite = observability.one("aws_cloudwatch_composite_alarm")
    env = observability.name.removesuffix("-observability")
    critical = {spec.name for spec in CATALOGUE if spec.critical}
    ids = re.findall(r'ALARM\("\$\{aws_cloudwatch_metric_alarm\.(\w+)\.alarm_name\}"\)', composite["alarm_rule"])
    bodies = observability.resources("aws_cloudwatch_metric_alarm")
    named = {bodies[i]["alarm_name"].removeprefix(f"llmlite-{env}-") for i in ids}
    assert named == critical and composite["alarm_rule"].count(" OR ") == len(critical) - 1


def event_rule(stack: Stack, source: str) -> tuple[dict, dict]:
    """The event rule matching `source`, and its pattern; its one target is the alarm topic."""
    (rule_id, rule), = [(lid, r) for lid, r in stack.resources("aws_cloudwatch_event_rule").items()
                        if json.loads(r["event_pattern"])["source"] == [source]]
    (target,) = [t for t in stack.resources("aws_cloudwatch_event_target").values()
                 if t["rule"] == stack.ref("aws_cloudwatch_event_rule", rule_id, "name")]
    assert target["arn"].startswith("${aws_sns_topic.")
    return rule, json.loads(rule["event_pattern"])


def test_rds_failures_and_failed_backups_reach_the_topic(observability: Stack) -> None:
    _, pattern = event_rule(observability, "aws.rds")
    assert pattern["source"] == ["aws.rds"] and pattern["detail-type"] == ["RDS DB Instance Event"]
    assert {"EventCategories": ["backup"], "Message": [{"wildcard": "*fail*"}]} in [o["detail"] for o in pattern["$or"]]


def test_gpu_hosts_that_cannot_launch_reach_the_topic(stacks, observability: Stack) -> None:
    """Auto Scaling event reference: "EC2 Instance Launch Unsuccessful" (capacity, quota, template)."""
    _, pattern = event_rule(observability, "aws.autoscaling")
    assert pattern["detail-type"] == ["EC2 Instance Launch Unsuccessful"]
    (group,) = pattern["detail"]["AutoScalingGroupName"]
    kind, body, attribute = resolve(stacks, group)
    assert (kind, attribute) == ("aws_autoscaling_group", "name")


def test_replication_latency_pages_per_table_and_replica_region_only_where_there_are_replicas(stacks) -> None:
    for env in ENVIRONMENTS:
        regions = load_environment(env).data.dynamodb_replica_regions
        named = {name: a for name, a in alarms(stacks[f"{env}-observability"]).items()
                 if name.startswith("dynamodb-replication-latency")}
        assert set(named) == {f"dynamodb-replication-latency-{table}-{region}"
                              for table in TABLE_OPERATIONS for region in regions}
        for alarm in named.values():
            assert (alarm["namespace"], alarm["metric_name"], alarm["statistic"]) == (
                "AWS/DynamoDB", "ReplicationLatency", "Average")
            assert set(alarm["dimensions"]) == {"TableName", "ReceivingRegion"}
            assert alarm["dimensions"]["ReceivingRegion"] in regions
            assert alarm["threshold"] == 60_000  # milliseconds
    assert load_environment("prod-us").data.dynamodb_replica_regions  # the case that matters is covered


def test_the_latency_alarm_says_how_to_read_long_generations() -> None:
    spec = next(s for s in CATALOGUE if s.name == "alb-p95-latency")
    assert spec.threshold == 3 and "long generations" in spec.meaning and "long answers" in spec.first_action


def test_dashboard_has_the_designs_widgets_and_a_url(observability: Stack) -> None:
    body = json.loads(observability.one("aws_cloudwatch_dashboard")["dashboard_body"])
    titles = [w["properties"]["title"] for w in body["widgets"]]
    for title in ("Requests and responses", "Success rate (%)", "Latency p50", "Latency p95", "Latency p99",
                  "Gateway CPU / memory (%)", "WAF allowed vs blocked", "WAF block rate (%)", "RDS CPU and connections",
                  "RDS latency (s)", "Bedrock invocations and tokens", "GPU utilization and vLLM queue", "Chat queue",
                  "Chat functions: errors and throttles", "Recent gateway errors"):
        assert title in titles, title
    env = load_environment(observability.name.removesuffix("-observability"))
    assert ("WAF blocks by rule and client IP" in titles) == (env.edge.waf_log_destination == "cloudwatch")
    assert observability.doc["output"]["dashboard_url"]["value"].startswith(f"https://{env.region}.console.aws")


def test_overrides_change_thresholds_and_periods(tmp_path) -> None:
    from modules.engine.app import build_app
    from modules.config.models import AlarmOverride
    env = load_environment("dev")
    observability = env.observability.model_copy(update={"overrides": {
        "alb-5xx-rate": AlarmOverride(threshold=2), "ecs-cpu": AlarmOverride(periods=5)}})
    env = env.model_copy(update={"observability": observability})
    build_app([env], outdir=str(tmp_path)).synth()
    stack = Stack("dev-observability", json.loads((tmp_path / "stacks" / "dev-observability" / "cdk.tf.json").read_text()))
    assert alarms(stack)["alb-5xx-rate"]["threshold"] == 2 and alarms(stack)["ecs-cpu"]["evaluation_periods"] == 5


def test_readme_on_call_table_matches_the_alarms() -> None:
    from pathlib import Path
    from modules.catalogue.alarms import on_call_table
    assert on_call_table() in (Path(__file__).resolve().parent.parent / "README.md").read_text()

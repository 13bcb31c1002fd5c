"""Observability layer: the alarm topic, every alarm of `modules/catalogue/alarms.py` with its
dimensions filled from the other layers' outputs, a composite "platform degraded" alarm, the
RDS and GPU launch-failure event rules and one dashboard per environment."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

from cdktn import Fn, Op, TerraformIterator, Token
from constructs import Construct
from cdktn_provider_aws.cloudwatch_composite_alarm import CloudwatchCompositeAlarm
from cdktn_provider_aws.cloudwatch_dashboard import CloudwatchDashboard
from cdktn_provider_aws.cloudwatch_event_rule import CloudwatchEventRule
from cdktn_provider_aws.cloudwatch_event_target import CloudwatchEventTarget
from cdktn_provider_aws.cloudwatch_log_metric_filter import (
    CloudwatchLogMetricFilter,
    CloudwatchLogMetricFilterMetricTransformation,
)
from cdktn_provider_aws.cloudwatch_metric_alarm import CloudwatchMetricAlarm, CloudwatchMetricAlarmMetricQuery
from cdktn_provider_aws.cloudwatch_query_definition import CloudwatchQueryDefinition
from cdktn_provider_aws.sns_topic import SnsTopic
from cdktn_provider_aws.sns_topic_policy import SnsTopicPolicy
from cdktn_provider_aws.sns_topic_subscription import SnsTopicSubscription

from modules.parts import iam
from modules.catalogue.alarms import CATALOGUE, GIB, TABLE_OPERATIONS, AlarmSpec
from modules.catalogue.queries import QUERIES
from modules.config.models import ModelRoute
from modules.config.settings import Identity, ObservabilitySettings
from modules.parts.context import current_account
from modules.parts.counted import Item, Items
from modules.layers.data import DataOutputs
from modules.layers.edge import EdgeOutputs
from modules.layers.foundation import FoundationOutputs, alarm_topic_name
from modules.layers.gateway import GatewayOutputs
from modules.layers.llm import HEALTH_GRACE_SECONDS, LlmOutputs
from modules.parts.outputs import publish
from modules.layers.realtime import RealtimeOutputs

# RDS event categories forwarded to the alarm topic (RDS User Guide, "Amazon RDS event categories
# and event messages"); failed backups are matched by their message.
RDS_EVENT_CATEGORIES = ("availability", "failover", "failure", "maintenance", "notification")
# ElastiCache's events in EventBridge worth an operator's attention (EventBridge events reference).
ELASTICACHE_EVENTS = ("Cache Update Failed", "Cache Limit Approaching", "Snapshot Creation Failed")

# CloudWatch dimension names of each kind of dimension an alarm row asks for.
DIMENSION_NAMES = {
    "web_acl": "WebACL", "region": "Region", "rule": "Rule", "alb": "LoadBalancer", "target_group": "TargetGroup",
    "cluster": "ClusterName", "service": "ServiceName", "db": "DBInstanceIdentifier", "redis_node": "CacheClusterId",
    "asg": "AutoScalingGroupName", "llm_alb": "LoadBalancer", "llm_target_group": "TargetGroup",
    "queue": "QueueName", "dlq": "QueueName", "function": "FunctionName", "api": "ApiId", "stage": "Stage",
    "table": "TableName", "bedrock_model": "ModelId", "state_machine": "StateMachineArn",
    "redeploy_dlq": "QueueName",
}


def percent_of(amount: int | Any, percent: float, unit: int = 1) -> int | Any:
    """`percent` % of `amount` × `unit`, rounded: a number when the amount is known, else (a
    module's data_* input) the same arithmetic in Terraform, rounding halves up."""
    if isinstance(amount, int):
        return round(amount * unit * percent / 100)
    total = amount if unit == 1 else Op.mul(amount, unit)
    return Token.as_number(Fn.floor(Op.add(Op.div(Op.mul(total, percent), 100), 0.5)))


@dataclass(frozen=True)
class Watched:
    """Everything the alarms point at, from the other layers' outputs."""

    edge: EdgeOutputs
    gateway: GatewayOutputs
    data: DataOutputs
    llm: LlmOutputs
    realtime: RealtimeOutputs


class Observability(Construct):
    def __init__(self, scope: Construct, id: str, *, identity: Identity, settings: ObservabilitySettings,
                 foundation: FoundationOutputs,
                 watched: Watched) -> None:
        super().__init__(scope, id)
        account = current_account(self, identity.region)
        self._identity, self._settings = identity, settings
        topic = SnsTopic(self, "alarm_topic", name=alarm_topic_name(identity),
                         kms_master_key_id=foundation.kms_key_arn)
        publishers = {"Service": ["cloudwatch.amazonaws.com", "events.amazonaws.com"]}
        SnsTopicPolicy(self, "alarm_topic_policy", arn=topic.arn, policy=iam.document(
            iam.allow(["sns:Publish"], [topic.arn], sid="AlarmsAndEvents", principals=publishers,
                      conditions={"StringEquals": {"aws:SourceAccount": account.id}}),
            iam.deny_insecure_transport(["sns:Publish"], [topic.arn])))
        # One subscription per address, keyed by it: the list may also be a module variable.
        emails = TerraformIterator.from_list(settings.alarm_emails)
        SnsTopicSubscription(self, "alarm_email", for_each=emails, topic_arn=topic.arn, protocol="email",
                             endpoint=Token.as_string(emails.value))
        self._topic = topic.arn
        self._metrics_namespace = f"{identity.project}/{identity.environment}"

        for spec in CATALOGUE:
            if spec.extra.get("pattern"):
                CloudwatchLogMetricFilter(
                    self, f"filter_{spec.name.replace('-', '_')}", name=identity.resource_name(spec.name),
                    log_group_name=watched.gateway.log_group_name, pattern=spec.extra["pattern"],
                    metric_transformation=CloudwatchLogMetricFilterMetricTransformation(
                        name=spec.metric, namespace=self._metrics_namespace, value="1", default_value="0"))
        critical = []
        for spec in CATALOGUE:
            spec = self._configured(spec, watched)
            if spec is None:
                continue
            for suffix, dimensions, node in self._dimension_sets(spec, watched):
                alarm = self._alarm(spec, suffix, dimensions, watched, node)
                if spec.critical:
                    critical.append(alarm.alarm_name)
        degraded = CloudwatchCompositeAlarm(
            self, "platform_degraded", alarm_name=identity.resource_name("platform-degraded"),
            alarm_description="Any critical alarm: users are, or are about to be, affected",
            alarm_rule=" OR ".join(f'ALARM("{name}")' for name in critical),
            alarm_actions=[topic.arn], ok_actions=[topic.arn])
        self._rds_events(watched.data, account.partition, account.id)
        self._service_events(watched.gateway, account.partition, account.id)
        self._launch_failures(watched.llm)
        self._saved_queries(watched)
        dashboard = CloudwatchDashboard(self, "dashboard", dashboard_name=identity.resource_name("platform"),
                                        dashboard_body=json.dumps(self._dashboard(watched)))
        publish(self, {
            "alarm_topic_arn": (topic.arn, "SNS topic every alarm notifies (email subscriptions need confirming)"),
            "dashboard_url": (f"https://{identity.region}.console.aws.amazon.com/cloudwatch/home"
                              f"?region={identity.region}"
                              f"#dashboards:name={dashboard.dashboard_name}", "CloudWatch dashboard of the platform"),
            "composite_alarm_name": (degraded.alarm_name, "Composite alarm: the platform is degraded"),
        })

    # --- alarms -------------------------------------------------------------------------------

    def _configured(self, spec: AlarmSpec, watched: Watched) -> AlarmSpec | None:
        """Apply the environment's overrides and the thresholds that depend on its sizing;
        None where the alarm means nothing for this environment."""
        settings = self._settings
        override = settings.overrides.get(spec.name)
        if spec.kind == "asg_max":
            if settings.gpu_capacity.max <= 1:
                return None  # a one-host group is at its maximum whenever it runs
            spec = replace(spec, threshold=settings.gpu_capacity.max)
        if spec.kind == "replication" and not settings.dynamodb_replica_regions:
            return None  # no replica, no replication
        if spec.kind == "queue_per_host":
            spec = replace(spec, threshold=spec.threshold * settings.gpu_queue_target_per_instance)
        if override:
            spec = replace(spec, threshold=override.threshold if override.threshold is not None else spec.threshold,
                           periods=override.periods or spec.periods)
        return spec

    def _dimension_sets(self, spec: AlarmSpec, watched: Watched
                        ) -> list[tuple[str, dict[str, str], Item | None]]:
        """The alarm's suffix and dimensions per alarm, and the Redis node a per-node alarm watches."""
        values = {
            "web_acl": watched.edge.web_acl_name, "region": self._identity.region, "rule": "ALL",
            "alb": watched.edge.alb_arn_suffix, "target_group": watched.edge.target_group_arn_suffix,
            "cluster": watched.gateway.cluster_name, "service": watched.gateway.service_name,
            "db": watched.data.db_instance_id, "asg": watched.llm.asg_name,
            "llm_alb": watched.llm.alb_arn_suffix, "llm_target_group": watched.llm.target_group_arn_suffix,
            "queue": watched.realtime.request_queue_name, "dlq": watched.realtime.dead_letter_queue_name,
            "api": watched.realtime.api_id, "stage": watched.realtime.stage,
            "state_machine": watched.gateway.redeploy_state_machine_arn,
            "redeploy_dlq": watched.gateway.redeploy_dead_letter_queue_name,
        }
        if spec.kind == "redis_primary":
            return [("", {}, None)]  # one alarm over every node (_redis_primary)
        if spec.per == "redis_node":  # per node in a stack, one counted over a module's list
            nodes = Items(watched.data.redis_node_ids)
            return [(f"-{node.ordinal}", {DIMENSION_NAMES[spec.per]: node.of(nodes.values)}, node)
                    for node in nodes.each()]
        items = {"function": watched.realtime.function_names,
                 "table": {"connections": watched.data.connections_table_name,
                           "history": watched.data.history_table_name},
                 "bedrock_model": {route.name: route.bedrock_model_id for route in self._settings.model_routes
                                   if route.bedrock_model_id}}.get(spec.per)
        if items is None:
            return [("", {DIMENSION_NAMES[k]: values[k] for k in spec.dimensions}, None)]
        if spec.kind == "replication":
            return [(f"-{key}-{region}", {DIMENSION_NAMES[spec.per]: value, "ReceivingRegion": region}, None)
                    for key, value in items.items() for region in self._settings.dynamodb_replica_regions]
        return [(f"-{key}", {DIMENSION_NAMES[spec.per]: value}, None) for key, value in items.items()]

    def _alarm(self, spec: AlarmSpec, suffix: str, dimensions: dict[str, str], watched: Watched,
               node: Item | None = None) -> CloudwatchMetricAlarm:
        identity, settings = self._identity, self._settings
        common: dict[str, Any] = dict(
            alarm_name=identity.resource_name(f"{spec.name}{suffix}"), alarm_description=f"{spec.meaning}. First: "
            f"{spec.first_action}.", comparison_operator=spec.comparison, evaluation_periods=spec.periods,
            treat_missing_data=spec.missing_data, alarm_actions=[self._topic], ok_actions=[self._topic])
        if node is not None and node.count is not None:  # one alarm counted over a module's nodes
            common["count"] = node.count
            suffix = f"-{replace(node, count=None).ordinal}"  # its address: the first node's
        id_ = f"alarm_{spec.name.replace('-', '_')}{re.sub(r'[^a-z0-9_]', '_', suffix.lower())}"
        if spec.kind == "redis_primary":
            return self._redis_primary(spec, id_, common, watched)
        if spec.kind == "rate_5xx":
            def count(metric: str, id_: str) -> CloudwatchMetricAlarmMetricQuery:
                return CloudwatchMetricAlarmMetricQuery(id=id_, metric={
                    "namespace": spec.namespace, "metric_name": metric, "period": spec.period, "stat": "Sum",
                    "dimensions": dimensions})
            return CloudwatchMetricAlarm(self, id_, threshold=spec.threshold, **common, metric_query=[
                count("HTTPCode_ELB_5XX_Count", "elb5xx"), count("HTTPCode_Target_5XX_Count", "target5xx"),
                count("RequestCount", "requests"),
                CloudwatchMetricAlarmMetricQuery(id="rate", label="5xx rate (%)", return_data=True, expression=(
                    "IF(requests > 0, 100 * (FILL(elb5xx, 0) + FILL(target5xx, 0)) / requests, 0)"))])
        if spec.kind == "anomaly_low":
            # The band is learned on traffic raised to the floor (CloudWatch anomaly detection
            # on a metric math expression): a quiet environment sits on the floor, inside its
            # band; missing data (no request at all) is no news.
            floor = f"{spec.floor:g}"
            return CloudwatchMetricAlarm(self, id_, threshold_metric_id="band", **common, metric_query=[
                CloudwatchMetricAlarmMetricQuery(id="m1", return_data=False, metric={
                    "namespace": spec.namespace, "metric_name": spec.metric, "period": spec.period,
                    "stat": spec.statistic, "dimensions": dimensions}),
                CloudwatchMetricAlarmMetricQuery(id="traffic", label=f"{spec.metric}, at least {floor}",
                                                 return_data=True,
                                                 expression=f"IF(FILL(m1, 0) > {floor}, FILL(m1, 0), {floor})"),
                CloudwatchMetricAlarmMetricQuery(id="band", label="expected range", return_data=True,
                                                 expression=f"ANOMALY_DETECTION_BAND(traffic, {spec.threshold:g})")])
        if spec.kind == "operations":
            operations = TABLE_OPERATIONS[suffix.removeprefix("-")]
            return CloudwatchMetricAlarm(self, id_, threshold=spec.threshold, **common, metric_query=[
                *(CloudwatchMetricAlarmMetricQuery(id=f"op{i}", return_data=False, metric={
                    "namespace": spec.namespace, "metric_name": spec.metric, "period": spec.period,
                    "stat": spec.statistic, "dimensions": {**dimensions, "Operation": operation}})
                  for i, operation in enumerate(operations)),
                CloudwatchMetricAlarmMetricQuery(
                    id="total", label=f"{spec.metric} ({', '.join(operations)})", return_data=True,
                    expression="SUM([" + ", ".join(f"op{i}" for i in range(len(operations))) + "])")])
        if spec.kind == "hosts_wanted" and (settings.gpu_capacity.min == 0 or settings.gpu_scheduled_scaling):
            return self._healthy_while_wanted(spec, id_, common, dimensions, watched)
        threshold = spec.threshold
        if spec.kind == "connections":  # of what the data layer's parameter group sets
            threshold = percent_of(watched.data.db_max_connections, spec.threshold)
        if spec.kind == "storage_share":
            threshold = percent_of(watched.data.db_storage_gb, spec.threshold, GIB)
        namespace = spec.namespace or self._metrics_namespace
        return CloudwatchMetricAlarm(
            self, id_, namespace=namespace, metric_name=spec.metric, dimensions=dimensions or None,
            period=spec.period, threshold=threshold,
            **({"extended_statistic": spec.statistic} if spec.statistic.startswith("p") else {"statistic": spec.statistic}),
            **common)

    def _redis_primary(self, spec: AlarmSpec, id_: str, common: dict[str, Any],
                       watched: Watched) -> CloudwatchMetricAlarm:
        """Whether any node of the group is primary: the sum of IsMaster over the nodes. A
        module's nodes are a list of any length: a dynamic block makes their queries."""
        nodes = watched.data.redis_node_ids
        counted = Items(nodes).counted

        def metric(node: str) -> dict[str, Any]:
            return {"namespace": spec.namespace, "metric_name": spec.metric, "period": spec.period,
                    "stat": spec.statistic, "dimensions": {DIMENSION_NAMES["redis_node"]: node}}
        queries = [] if counted else [CloudwatchMetricAlarmMetricQuery(id=f"node{i}", return_data=False,
                                                                       metric=metric(node))
                                      for i, node in enumerate(nodes)]
        names = (", ".join(f"node{i}" for i in range(len(nodes))) if not counted
                 else Fn.join(", ", Token.as_list(Fn.formatlist("node%d", [Fn.range(0, Fn.length_of(nodes))]))))
        alarm = CloudwatchMetricAlarm(self, id_, threshold=spec.threshold, **common, metric_query=[
            *queries, CloudwatchMetricAlarmMetricQuery(id="primaries", label="nodes serving as primary",
                                                       return_data=True, expression=f"SUM([{names}])")])
        if counted:
            alarm.add_override("dynamic.metric_query", {"for_each": nodes, "iterator": "node", "content": {
                "id": "node${node.key}", "return_data": False, "metric": [metric("${node.value}")]}})
        return alarm

    def _healthy_while_wanted(self, spec: AlarmSpec, id_: str, common: dict[str, Any], dimensions: dict[str, str],
                              watched: Watched) -> CloudwatchMetricAlarm:
        """A group that may be empty on purpose: no healthy host is news only while the group
        wants hosts (desired ≥ 1), and only once a host has had time to boot and load the
        model (the window outlasts the health-check grace period)."""
        def metric(id_: str, namespace: str, name: str, dims: dict[str, str]) -> CloudwatchMetricAlarmMetricQuery:
            return CloudwatchMetricAlarmMetricQuery(id=id_, return_data=False, metric={
                "namespace": namespace, "metric_name": name, "period": spec.period, "stat": spec.statistic,
                "dimensions": dims})
        periods = max(common["evaluation_periods"], -(-(HEALTH_GRACE_SECONDS + 300) // spec.period))
        common = {**common, "evaluation_periods": periods, "treat_missing_data": "notBreaching"}
        return CloudwatchMetricAlarm(self, id_, threshold=spec.threshold, **common, metric_query=[
            metric("healthy", spec.namespace, spec.metric, dimensions),
            metric("wanted", "AWS/AutoScaling", "GroupDesiredCapacity", {"AutoScalingGroupName": watched.llm.asg_name}),
            CloudwatchMetricAlarmMetricQuery(id="serving", label="healthy hosts while the group wants any",
                                             return_data=True,
                                             expression="IF(FILL(wanted, 0) >= 1, FILL(healthy, 0), 1)")])

    def _saved_queries(self, watched: Watched) -> None:
        """The operators' Logs Insights queries, saved in a folder per environment, each scoped
        to the log group it reads (WAF queries only where WAF logs go to CloudWatch)."""
        identity = self._identity
        groups = {"proxy": watched.gateway.log_group_name,
                  "postgresql": f"/aws/rds/instance/{watched.data.db_instance_id}/postgresql",
                  "worker": f"/aws/lambda/{watched.realtime.function_names['worker']}"}
        if self._settings.waf_log_destination == "cloudwatch":
            groups["waf"] = f"aws-waf-logs-{identity.resource_name('waf')}"
        for query in QUERIES:
            if query.source in groups:
                CloudwatchQueryDefinition(
                    self, f"query_{query.source}_{query.name.replace('-', '_')}",
                    name=f"{identity.project}-{identity.environment}/{query.path}", log_group_names=[groups[query.source]],
                    query_string=query.query)

    def _rds_events(self, data: DataOutputs, partition: str, account_id: str) -> None:
        """RDS reports failed backups, failovers, maintenance and availability as events, not
        metrics (RDS's event categories); they reach the alarm topic through EventBridge."""
        self._events_to_topic(
            "rds_failure_events", "rds_failure_target", "rds-failures",
            "Failure, failover, maintenance, availability and notification events of the database", {
                "source": ["aws.rds"], "detail-type": ["RDS DB Instance Event"],
                "resources": [f"arn:{partition}:rds:{self._identity.region}:{account_id}:db:{data.db_instance_id}"],
                "$or": [{"detail": {"EventCategories": list(RDS_EVENT_CATEGORIES)}},
                        {"detail": {"EventCategories": ["backup"], "Message": [{"wildcard": "*fail*"}]}}]})

    def _events_to_topic(self, rule_id: str, target_id: str, name: str, description: str,
                         pattern: dict[str, Any]) -> None:
        """An EventBridge rule delivering what matches `pattern` to the alarm topic."""
        rule = CloudwatchEventRule(self, rule_id, name=self._identity.resource_name(name), description=description,
                                   event_pattern=json.dumps(pattern))
        CloudwatchEventTarget(self, target_id, rule=rule.name, arn=self._topic)

    def _service_events(self, gateway: GatewayOutputs, partition: str, account_id: str) -> None:
        """Events with no metric: a proxy deployment that failed (and rolled back), and Redis
        changes that failed or near a limit (ElastiCache sends these to EventBridge)."""
        identity = self._identity
        service_arn = (f"arn:{partition}:ecs:{identity.region}:{account_id}:service/{gateway.cluster_name}/"
                       f"{gateway.service_name}")
        patterns = {
            "proxy-deployment-failed": ("A deployment of the proxy service failed (ECS rolled it back)", {
                "source": ["aws.ecs"], "detail-type": ["ECS Deployment State Change"], "resources": [service_arn],
                "detail": {"eventName": ["SERVICE_DEPLOYMENT_FAILED"]}}),
            "redis-events": ("ElastiCache changes that failed or near a limit", {
                "source": ["aws.elasticache"], "detail-type": list(ELASTICACHE_EVENTS)}),
        }
        for name, (description, pattern) in patterns.items():
            id_ = name.replace("-", "_")
            self._events_to_topic(id_, f"{id_}_target", name, description, pattern)

    def _launch_failures(self, llm: LlmOutputs) -> None:
        """A GPU host that cannot launch (no Spot or on-demand capacity, a quota, a bad template)
        shows no metric: the group only retries. Auto Scaling reports each failure as an event."""
        self._events_to_topic(
            "gpu_launch_failures", "gpu_launch_failures_target", "gpu-launch-failures",
            "GPU hosts the Auto Scaling group could not launch (capacity, quota, template)", {
                "source": ["aws.autoscaling"], "detail-type": ["EC2 Instance Launch Unsuccessful"],
                "detail": {"AutoScalingGroupName": [llm.asg_name]}})

    # --- dashboard ----------------------------------------------------------------------------

    def _dashboard(self, w: Watched) -> dict[str, Any]:
        identity, settings = self._identity, self._settings
        region = identity.region
        alb = ["LoadBalancer", w.edge.alb_arn_suffix]
        ecs = ["ClusterName", w.gateway.cluster_name, "ServiceName", w.gateway.service_name]
        db = ["DBInstanceIdentifier", w.data.db_instance_id]
        waf = ["WebACL", w.edge.web_acl_name, "Region", region, "Rule", "ALL"]
        asg = ["AutoScalingGroupName", w.llm.asg_name]
        metrics, logs = partial(_metric_widget, region), partial(_log_widget, region)
        widgets = [
            metrics("Requests and responses", [["AWS/ApplicationELB", "RequestCount", *alb],
                                               [".", "HTTPCode_Target_2XX_Count", *alb],
                                               [".", "HTTPCode_Target_4XX_Count", *alb],
                                               [".", "HTTPCode_Target_5XX_Count", *alb],
                                               [".", "HTTPCode_ELB_5XX_Count", *alb]]),
            metrics("Success rate (%)", [["AWS/ApplicationELB", "RequestCount", *alb, {"id": "r", "visible": False}],
                                         [".", "HTTPCode_Target_2XX_Count", *alb, {"id": "ok", "visible": False}],
                                         [{"expression": "100 * ok / r", "label": "success %"}]]),
            *[metrics(f"Latency {p}", [["AWS/ApplicationELB", "TargetResponseTime", *alb]], stat=p)
              for p in ("p50", "p95", "p99")],
            metrics("Gateway CPU / memory (%)", [["AWS/ECS", "CPUUtilization", *ecs], [".", "MemoryUtilization", *ecs]],
                    stat="Average"),
            metrics("WAF allowed vs blocked", [["AWS/WAFV2", "AllowedRequests", *waf], [".", "BlockedRequests", *waf]]),
            metrics("WAF block rate (%)", [["AWS/WAFV2", "AllowedRequests", *waf, {"id": "a", "visible": False}],
                                           [".", "BlockedRequests", *waf, {"id": "b", "visible": False}],
                                           [{"expression": "100 * b / (a + b)", "label": "blocked %"}]]),
            metrics("RDS CPU and connections", [["AWS/RDS", "CPUUtilization", *db],
                                                [".", "DatabaseConnections", *db, {"yAxis": "right"}]], stat="Average"),
            metrics("RDS memory, storage (bytes)", [["AWS/RDS", "FreeableMemory", *db],
                                                    [".", "FreeStorageSpace", *db]], stat="Minimum"),
            metrics("RDS latency (s)", [["AWS/RDS", "ReadLatency", *db], [".", "WriteLatency", *db]], stat="Average"),
            metrics("Bedrock invocations and tokens", _bedrock_rows(settings.model_routes)),
            metrics("GPU utilization and vLLM queue", [["CWAgent", "nvidia_smi_utilization_gpu", *asg],
                                                       [".", "vllm_num_requests_waiting", *asg, {"yAxis": "right"}]],
                    stat="Average"),
            metrics("Chat queue", [["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName",
                                    w.realtime.request_queue_name],
                                   [".", "ApproximateNumberOfMessagesVisible", "QueueName",
                                    w.realtime.dead_letter_queue_name],
                                   [".", "ApproximateAgeOfOldestMessage", "QueueName", w.realtime.request_queue_name,
                                    {"yAxis": "right"}]], stat="Maximum"),
            metrics("Chat functions: errors and throttles", [
                ["AWS/Lambda", metric, "FunctionName", name] for name in w.realtime.function_names.values()
                for metric in ("Errors", "Throttles")]),
            logs("Recent gateway errors", w.gateway.log_group_name,
                 "fields @timestamp, @message | filter @message like /(?i)(error|exception| 5\\d\\d )/ "
                 "| sort @timestamp desc | limit 50"),
        ]
        if settings.waf_log_destination == "cloudwatch":
            widgets.append(logs("WAF blocks by rule and client IP", f"aws-waf-logs-{identity.resource_name('waf')}",
                                "filter action = 'BLOCK' | stats count(*) as blocks by terminatingRuleId, "
                                "httpRequest.clientIp | sort blocks desc | limit 25"))
        return {"widgets": widgets}


def _metric_widget(region: str, title: str, rows: list[list[Any]], stat: str = "Sum", **props: Any) -> dict[str, Any]:
    return {"type": "metric", "width": 12, "height": 6, "properties": {
        "title": title, "region": region, "stat": stat, "period": 300, "metrics": rows, **props}}


def _log_widget(region: str, title: str, group: str, query: str) -> dict[str, Any]:
    return {"type": "log", "width": 24, "height": 6, "properties": {
        "title": title, "region": region, "query": f"SOURCE '{group}' | {query}", "view": "table"}}


def _bedrock_rows(routes: list[ModelRoute]) -> list[list[Any]]:
    """Invocations of every Bedrock route, and its tokens on the right axis."""
    bedrock = [m.bedrock_model_id for m in routes if m.bedrock_model_id]
    return ([["AWS/Bedrock", "Invocations", "ModelId", model] for model in bedrock]
            + [["AWS/Bedrock", name, "ModelId", model, {"yAxis": "right"}]
               for model in bedrock for name in ("InputTokenCount", "OutputTokenCount")])

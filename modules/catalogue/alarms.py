"""The platform's alarms as data: one row per alarm, grouped by the layer whose resources it
watches. Pure data (no cdktn import), so configuration overrides are validated against it
before anything is built; `modules/layers/observability.py` turns rows into CloudWatch alarms.

A row names its metric and the *kinds* of dimension it needs ("alb", "target_group", …);
the observability layer fills them from the other layers' outputs. Thresholds are the
gateway design's §8.3 figures unless a row says otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field

GIB = 2**30
# RDS PostgreSQL's default max_connections: LEAST({DBInstanceClassMemory/9531392}, 5000).
BYTES_PER_CONNECTION = 9_531_392


@dataclass(frozen=True)
class AlarmSpec:
    name: str
    layer: str
    meaning: str
    first_action: str
    threshold: float
    comparison: str  # GreaterThanThreshold, LessThanThreshold, …
    namespace: str = ""
    metric: str = ""
    statistic: str = "Sum"
    dimensions: tuple[str, ...] = ()
    period: int = 300
    periods: int = 1
    # What a silent metric means: no traffic is no news ("notBreaching"), but a missing
    # health signal is a problem ("breaching").
    missing_data: str = "notBreaching"
    unit: str = "count"  # "percent" thresholds lie in (0, 100]
    critical: bool = False  # part of the composite "platform degraded" alarm
    # Special kinds: "rate_5xx" (metric math), "anomaly_low" (anomaly detection band),
    # "connections" (% of max_connections), "asg_max", "queue_per_host" (× the scaling
    # target), "hosts_wanted" (healthy hosts while the group wants any), "operations" (sum
    # over the DynamoDB operations the functions call), "replication" (per replica region).
    kind: str = "metric"
    per: str = ""  # one alarm per item of an output list ("function", "redis_node", "table")
    # anomaly_low: traffic at or below this (per period) counts as idle, never as a drop.
    floor: float = 0
    extra: dict[str, str] = field(default_factory=dict)
    # Saved Logs Insights queries that help (`queries.py` paths: "<source>/<name>").
    queries: tuple[str, ...] = ()


def _percent(**kwargs) -> AlarmSpec:
    return AlarmSpec(unit="percent", **kwargs)


EDGE = (
    AlarmSpec("waf-blocked", "edge", "WAF blocked more than 100 requests in 5 minutes (attack or a rule "
              "hitting real traffic)", "Logs Insights: WAF blocks by rule and IP; tune or block upstream",
              100, "GreaterThanThreshold", "AWS/WAFV2", "BlockedRequests", dimensions=("web_acl", "region", "rule"),
              queries=("waf/top-blocked-ips", "waf/top-rules", "waf/false-positives")),
    # The band is learned on traffic raised to a floor: an idle environment (a quiet dev, the
    # night) sits on the floor and never breaches, while a busy one that drops to nothing
    # falls from its band to the floor and does.
    AlarmSpec("waf-allowed-drop", "edge", "Allowed requests fell well below their learned baseline (clients "
              "cut off: DNS, certificate, WAF rule)", "Check the ALB and WAF metrics, recent WAF rule changes, DNS",
              2, "LessThanLowerThreshold", "AWS/WAFV2", "AllowedRequests", dimensions=("web_acl", "region", "rule"),
              periods=3, kind="anomaly_low", floor=100,
              queries=("waf/block-rate", "waf/false-positives")),
    _percent(name="alb-5xx-rate", layer="edge", meaning="More than 5 % of requests end in a 5xx (ALB or targets)",
             first_action="Gateway logs for errors; ECS deployments and task health; upstream model status",
             threshold=5, comparison="GreaterThanThreshold", namespace="AWS/ApplicationELB",
             dimensions=("alb",), periods=2, critical=True, kind="rate_5xx",
             queries=("proxy/top-errors",)),
    # The design's figure. A streamed answer counts until its last token, so long generations
    # raise it on their own: the first action tells them apart from a slow platform.
    AlarmSpec("alb-p95-latency", "edge", "p95 target response time above 3 s (long generations raise it on "
              "their own: a streamed answer counts until its last token)", "Read it beside the dashboard's "
              "requests and 5xx: latency up with normal traffic and no errors is long answers (LiteLLM logs: "
              "duration and output tokens by model), not an outage; else ECS CPU/memory, model latency by route, "
              "scale out", 3, "GreaterThanThreshold", "AWS/ApplicationELB", "TargetResponseTime", "p95",
              dimensions=("alb",), periods=2,
              queries=("worker/response-time-by-model", "postgresql/slow-queries")),
    AlarmSpec("alb-healthy-hosts", "edge", "No healthy gateway task behind the ALB", "ECS service events and "
              "stopped-task reasons; roll back the last deployment", 1, "LessThanThreshold", "AWS/ApplicationELB",
              "HealthyHostCount", "Minimum", dimensions=("alb", "target_group"), period=60, periods=2,
              missing_data="breaching", critical=True),
)

GATEWAY = (
    AlarmSpec("auth-401-spike", "gateway", "More than 50 rejected keys (401) in 5 minutes (leaked, revoked or "
              "guessed keys)", "Logs Insights on the proxy log: 401s by key alias and source; revoke keys",
              50, "GreaterThanThreshold", "", "GatewayUnauthorized", extra={"pattern": '"401 Unauthorized"'},
              queries=("proxy/auth-failures", "proxy/top-users")),
    AlarmSpec("gateway-throttled", "gateway", "More than 100 requests throttled (429) in 5 minutes: budgets or "
              "rate limits are biting", "Find the keys hitting limits; raise limits or scale the model tier",
              100, "GreaterThanThreshold", "", "GatewayThrottled", extra={"pattern": '"429 Too Many Requests"'},
              queries=("proxy/rate-limited", "proxy/budget-exceeded", "proxy/top-users")),
    _percent(name="ecs-cpu", layer="gateway", meaning="Proxy tasks above 80 % CPU for 10 minutes",
             first_action="Check autoscaling is at max; raise capacity.max or the task size",
             threshold=80, comparison="GreaterThanThreshold", namespace="AWS/ECS", metric="CPUUtilization",
             statistic="Average", dimensions=("cluster", "service"), periods=2),
    # LiteLLM's own log lines when its database calls fail (proxy/db/exception_handler.py,
    # proxy/utils.py of the pinned version; tests/litellm_config_keys.json holds them).
    AlarmSpec("proxy-db-errors", "gateway", "The proxy failed more than 5 database calls in 5 minutes (RDS "
              "failover, maintenance, connection limit or network)", "RDS events on the alarm topic and the "
              "database's log; rds-connections; the proxy log around the errors", 5, "GreaterThanThreshold", "",
              "ProxyDatabaseErrors", extra={"pattern": '?"DB transport error on read" ?"Prisma DB reconnect failed"'}),
    AlarmSpec("bedrock-throttles", "gateway", "Bedrock throttled more than 10 calls of a model in 5 minutes "
              "(the account's quota for it)", "Service Quotas for the model's tokens/requests per minute; the "
              "route's fallbacks; ask AWS for more", 10, "GreaterThanThreshold", "AWS/Bedrock",
              "InvocationThrottles", dimensions=("bedrock_model",), per="bedrock_model"),
    AlarmSpec("bedrock-server-errors", "gateway", "Bedrock answered more than 5 calls of a model with a server "
              "error in 5 minutes", "AWS Health dashboard for Bedrock in the region; the route's fallbacks "
              "serve meanwhile", 5, "GreaterThanThreshold", "AWS/Bedrock", "InvocationServerErrors",
              dimensions=("bedrock_model",), per="bedrock_model"),
    AlarmSpec("redeploy-failed", "gateway", "The redeploy after a database password rotation failed (tasks "
              "keep the old password until they restart)", "The state machine's execution history; force a "
              "new deployment of the proxy service by hand", 0, "GreaterThanThreshold", "AWS/States",
              "ExecutionsFailed", dimensions=("state_machine",), critical=True),
    AlarmSpec("redeploy-dlq-not-empty", "gateway", "A password-rotation event could not start the redeploy "
              "(EventBridge gave up after its retries)", "Read the message; force a new deployment of the proxy "
              "service by hand, then purge the queue", 0, "GreaterThanThreshold", "AWS/SQS",
              "ApproximateNumberOfMessagesVisible", "Maximum", dimensions=("redeploy_dlq",), critical=True),
    _percent(name="ecs-memory", layer="gateway", meaning="Proxy tasks above 85 % memory for 10 minutes",
             first_action="Look for a leak after the last release; raise memory", threshold=85,
             comparison="GreaterThanThreshold", namespace="AWS/ECS", metric="MemoryUtilization",
             statistic="Average", dimensions=("cluster", "service"), periods=2),
)

DATA = (
    _percent(name="rds-cpu", layer="data", meaning="PostgreSQL above 80 % CPU for 10 minutes",
             first_action="Performance Insights: top SQL; spend-log queries; scale the instance class",
             threshold=80, comparison="GreaterThanThreshold", namespace="AWS/RDS", metric="CPUUtilization",
             statistic="Average", dimensions=("db",), periods=2,
             queries=("postgresql/slow-queries",)),
    # 2 GB as the design writes it (bytes, not GiB): below storage autoscaling's trigger
    # (free space ≤ 10 % of the allocated GiB), so it pages only when autoscaling cannot help.
    AlarmSpec("rds-free-storage", "data", "Less than 2 GB of database storage left (storage autoscaling has "
              "reached its ceiling or cannot keep up)", "Check storage autoscaling reached db_max_storage_gb; "
              "prune spend logs or raise the ceiling", 2_000_000_000, "LessThanThreshold",
              "AWS/RDS", "FreeStorageSpace", "Minimum", dimensions=("db",), critical=True),
    # The fixed 2 GB is late on a large volume: a share of the allocation (data.db_storage_gb)
    # as well, below storage autoscaling's trigger (10 % of the allocation; a rule checks it).
    _percent(name="rds-free-storage-share", layer="data", meaning="Less than 5 % of the allocated database "
             "storage left (storage autoscaling has not grown it)", first_action="Check storage autoscaling "
             "reached db_max_storage_gb; prune spend logs or raise the ceiling", threshold=5,
             comparison="LessThanThreshold", namespace="AWS/RDS", metric="FreeStorageSpace", statistic="Minimum",
             dimensions=("db",), critical=True, kind="storage_share"),
    _percent(name="rds-connections", layer="data", meaning="Connections above 80 % of the max_connections the "
             "parameter group sets for the instance class", first_action="Count tasks × pool size "
             "(database_connection_pool_limit); lower the pool or scale the class", threshold=80,
             comparison="GreaterThanThreshold", namespace="AWS/RDS", metric="DatabaseConnections",
             statistic="Maximum", dimensions=("db",), periods=2, kind="connections",
             queries=("postgresql/connection-errors",)),
    AlarmSpec("rds-read-latency", "data", "Database reads slower than 100 ms", "Performance Insights waits; "
              "storage throughput", 0.1, "GreaterThanThreshold", "AWS/RDS", "ReadLatency", "Average",
              dimensions=("db",), periods=2,
              queries=("postgresql/slow-queries",)),
    AlarmSpec("rds-write-latency", "data", "Database writes slower than 100 ms", "Performance Insights waits; "
              "storage throughput", 0.1, "GreaterThanThreshold", "AWS/RDS", "WriteLatency", "Average",
              dimensions=("db",), periods=2,
              queries=("postgresql/slow-queries", "postgresql/deadlocks")),
    _percent(name="redis-cpu", layer="data", meaning="Redis engine above 80 % CPU", first_action="Hot keys "
             "(rate-limit counters, cache); scale the node type", threshold=80, comparison="GreaterThanThreshold",
             namespace="AWS/ElastiCache", metric="EngineCPUUtilization", statistic="Average",
             dimensions=("redis_node",), periods=2, per="redis_node"),
    _percent(name="redis-memory", layer="data", meaning="Redis memory above 80 %", first_action="Cache TTLs; "
             "scale the node type before evictions drop rate-limit counters", threshold=80,
             comparison="GreaterThanThreshold", namespace="AWS/ElastiCache", metric="DatabaseMemoryUsagePercentage",
             statistic="Average", dimensions=("redis_node",), periods=2, per="redis_node"),
    AlarmSpec("redis-evictions", "data", "Redis evicted more than 100 keys in 5 minutes (rate limits may "
              "reset early)", "Scale the node type; shorten cache TTLs", 100, "GreaterThanThreshold",
              "AWS/ElastiCache", "Evictions", dimensions=("redis_node",), per="redis_node"),
    # IsMaster is 1 on the node serving as primary: their sum is 0 while the group has none
    # (failover under way or failed); a silent metric is a lost node, not news.
    AlarmSpec("redis-no-primary", "data", "No Redis node is primary for 3 minutes (rate limits fall back to "
              "per-task memory, cache misses)", "ElastiCache events on the alarm topic; the group's nodes and "
              "failover status", 1, "LessThanThreshold", "AWS/ElastiCache", "IsMaster", "Maximum",
              dimensions=("redis_node",), period=60, periods=3, missing_data="breaching", critical=True,
              kind="redis_primary"),
    # ThrottledRequests and SystemErrors exist only per table and operation: summed over the
    # operations the chat functions call on each table (TABLE_OPERATIONS).
    AlarmSpec("dynamodb-throttles", "data", "Requests to a chat table were throttled (a hot key, or traffic "
              "doubling past the on-demand peak)", "Which operation (alarm metrics); hot partition keys; the "
              "functions' retries and errors", 0, "GreaterThanThreshold", "AWS/DynamoDB", "ThrottledRequests",
              dimensions=("table",), per="table", kind="operations"),
    # Only where the tables have replicas (data.dynamodb_replica_regions): one alarm per table and
    # receiving region. DynamoDB reports milliseconds from a write to its appearance in the replica.
    AlarmSpec("dynamodb-replication-latency", "data", "Writes to a chat table reach a replica region more than "
              "a minute late for 15 minutes (the replica region would serve stale conversations)", "AWS Health "
              "for DynamoDB in both regions; throttles on the replica table; the replica table's status",
              60_000, "GreaterThanThreshold", "AWS/DynamoDB", "ReplicationLatency", "Average",
              dimensions=("table",), periods=3, kind="replication", per="table"),
    AlarmSpec("dynamodb-system-errors", "data", "A chat table answered more than 5 requests with a DynamoDB "
              "internal error (HTTP 500) in 5 minutes", "AWS Health dashboard for DynamoDB in the region; the "
              "functions retry, so check their errors too", 5, "GreaterThanThreshold", "AWS/DynamoDB",
              "SystemErrors", dimensions=("table",), per="table", kind="operations"),
)

LLM = (
    _percent(name="gpu-utilization-high", layer="llm", meaning="GPUs above 90 % for 15 minutes (scaling not "
             "keeping up)", first_action="Check the group is at max and Spot capacity; raise capacity.max",
             threshold=90, comparison="GreaterThanThreshold", namespace="CWAgent",
             metric="nvidia_smi_utilization_gpu", statistic="Average", dimensions=("asg",), periods=3),
    # Hosts join the target group only when their launch lifecycle hook completes, i.e. once
    # the model answers /health: a loading host is never counted unhealthy.
    AlarmSpec("llm-unhealthy-hosts", "llm", "A GPU host fails its /health check", "Instance console and the "
              "vLLM log stream; the group replaces it after the grace period", 0, "GreaterThanThreshold",
              "AWS/ApplicationELB", "UnHealthyHostCount", "Maximum", dimensions=("llm_alb", "llm_target_group"),
              period=60, periods=5, critical=True),
    # Where the group may be empty on purpose (llm.capacity.min = 0, or scheduled scaling
    # down to zero at night), it pages only while the group wants hosts, for longer than a host takes to boot.
    AlarmSpec("llm-healthy-hosts", "llm", "No healthy GPU host behind the model's ALB (self-hosted model "
              "routes fail)", "Group activity history (launch failures, Spot capacity), instance console and "
              "boot log", 1, "LessThanThreshold", "AWS/ApplicationELB", "HealthyHostCount", "Minimum",
              dimensions=("llm_alb", "llm_target_group"), period=60, periods=3, missing_data="breaching",
              critical=True, kind="hosts_wanted"),
    # Not created where llm.capacity.max <= 1: one host is then the group's normal size.
    AlarmSpec("gpu-asg-at-max", "llm", "The GPU group has run at its maximum size for 30 minutes",
              "Raise capacity.max or add Spot instance types", 0, "GreaterThanOrEqualToThreshold", "AWS/AutoScaling",
              "GroupInServiceInstances", "Minimum", dimensions=("asg",), periods=6, kind="asg_max"),
    # A gauge: every host publishes its waiting requests once a minute under the group's
    # name, so Average is the mean queue per host (what scaling tracks); a Sum over 5
    # minutes would add five samples of each host. Threshold: 4 × llm.queue_target_per_instance.
    AlarmSpec("llm-queue-backlog", "llm", "Requests waiting in vLLM stay well above the scaling target (4 × "
              "queue_target_per_instance per host) for 10 minutes", "Scale out; lower max_model_len or move to "
              "larger GPUs", 4, "GreaterThanThreshold", "CWAgent", "vllm_num_requests_waiting", "Average",
              dimensions=("asg",), periods=2, kind="queue_per_host"),
)

REALTIME = (
    AlarmSpec("dlq-not-empty", "realtime", "A chat request failed every try and sits in the dead-letter queue",
              "Read the message and the worker log; fix, then redrive the DLQ", 0, "GreaterThanThreshold",
              "AWS/SQS", "ApproximateNumberOfMessagesVisible", "Maximum", dimensions=("dlq",), period=60,
              critical=True,
              queries=("worker/response-time-by-model",)),
    AlarmSpec("queue-oldest-message", "realtime", "A chat request has waited more than 5 minutes", "Worker "
              "errors and throttles; model endpoint health", 300, "GreaterThanThreshold", "AWS/SQS",
              "ApproximateAgeOfOldestMessage", "Maximum", dimensions=("queue",), period=60, periods=3),
    AlarmSpec("lambda-errors", "realtime", "A chat function failed more than 5 times in 5 minutes",
              "The function's log group (JSON, with request ids)", 5, "GreaterThanThreshold", "AWS/Lambda",
              "Errors", dimensions=("function",), per="function"),
    AlarmSpec("lambda-throttles", "realtime", "A chat function was throttled (worker: its reservation; others: "
              "the account's regional concurrency)", "Worker: raise realtime.worker_concurrency; others: raise the "
              "account's Lambda concurrency quota", 0, "GreaterThanThreshold", "AWS/Lambda", "Throttles",
              dimensions=("function",), per="function"),
    AlarmSpec("websocket-integration-errors", "realtime", "WebSocket routes failed to reach their function "
              "more than 10 times in 5 minutes", "API access log (integrationError); function errors", 10,
              "GreaterThanThreshold", "AWS/ApiGateway", "IntegrationError", dimensions=("api", "stage")),
    AlarmSpec("websocket-execution-errors", "realtime", "WebSocket executions failed (5xx) more than 10 times "
              "in 5 minutes", "API access log; authorizer errors", 10, "GreaterThanThreshold", "AWS/ApiGateway",
              "ExecutionError", dimensions=("api", "stage")),
    AlarmSpec("websocket-client-errors", "realtime", "API Gateway refused more than 50 WebSocket requests (4xx) "
              "before reaching a function in 5 minutes: denied or expired tokens, throttling", "API access log: "
              "status and error by source IP; the authorizer log; realtime.throttling_* if the traffic is real",
              50, "GreaterThanThreshold", "AWS/ApiGateway", "ClientError", dimensions=("api", "stage")),
)

CATALOGUE = EDGE + GATEWAY + DATA + LLM + REALTIME
BY_NAME = {spec.name: spec for spec in CATALOGUE}

# Memory of the DB instance classes the configuration admits (GiB, RDS instance class table).
DB_MEMORY_GIB = {"db.t4g.micro": 1, "db.t4g.small": 2, "db.t4g.medium": 4, "db.t4g.large": 8,
                 "db.t4g.xlarge": 16, "db.m7g.large": 8, "db.m7g.xlarge": 16, "db.r7g.large": 16,
                 "db.r7g.xlarge": 32}

# DynamoDB operations the chat functions call on each table (lambda/chat_common).
# The history table also holds the worker's request claims (chat_common/claims.py).
TABLE_OPERATIONS = {"connections": ("PutItem", "DeleteItem", "Query"),
                    "history": ("PutItem", "Query", "GetItem", "UpdateItem", "DeleteItem", "Scan")}


def max_connections(instance_class: str) -> int:
    """The max_connections the data layer's parameter group sets for the class.

    RDS's default is LEAST({DBInstanceClassMemory/9531392}, 5000), where DBInstanceClassMemory
    is the class's memory less what the OS and RDS's own processes reserve, an amount RDS
    does not publish: the real default cannot be known before the instance runs, so an alarm
    on "80 % of it" would guess. The platform sets the value itself, with the same formula
    on three quarters of the class's memory (so it stays at or below RDS's own default
    wherever RDS reserves less than a quarter of the memory), and alarms on 80 % of that.
    """
    return min(DB_MEMORY_GIB[instance_class] * GIB * 3 // 4 // BYTES_PER_CONNECTION, 5000)


# Alarms that fail an ECS deployment of the proxy and roll it back (the service's `alarms`).
DEPLOYMENT_ALARMS = ("alb-5xx-rate", "alb-healthy-hosts")

# Connections kept out of the proxy's pools: PostgreSQL's superuser reserve (3), the one-off
# migration task, an operator's psql and monitoring.
RESERVED_CONNECTIONS = 10
# ECS starts the new tasks of a deploy before stopping the old (the service's maximum percent).
DEPLOY_MAXIMUM_PERCENT = 200
# Below this a task's requests queue on its pool (each request reads keys and writes spend).
MIN_POOL_PER_TASK = 5


def peak_tasks(max_tasks: int) -> int:
    """The most proxy tasks that can run at once: the task maximum during a deploy."""
    return max_tasks * DEPLOY_MAXIMUM_PERCENT // 100


def pool_per_task(db_max_connections: int, max_tasks: int) -> int:
    """The proxy's database pool per task: the database's max_connections (the data layer's
    db_max_connections) less the reserve, shared by the most tasks that can run at once.
    One worker process per task (LiteLLM's default), so one pool per task."""
    return (db_max_connections - RESERVED_CONNECTIONS) // peak_tasks(max_tasks)


def storage_autoscaling_trigger(allocated_gib: int) -> int:
    """Free bytes at which RDS storage autoscaling grows the volume: 10 % of the allocation."""
    return allocated_gib * GIB // 10


def _threshold_text(spec: AlarmSpec) -> str:
    if spec.kind == "anomaly_low":
        return (f"below the anomaly band ({spec.threshold:g} σ) of {spec.statistic} raised to a floor of "
                f"{spec.floor:g} (idle is not a drop)")
    if spec.kind == "asg_max":
        return "≥ llm.capacity.max (not created where max ≤ 1)"
    if spec.kind == "rate_5xx":
        return f"(ELB + target 5xx) / requests > {spec.threshold:g} %"
    if spec.kind == "connections":
        return f"> {spec.threshold:g} % of max_connections (set by the parameter group)"
    if spec.kind == "queue_per_host":
        return f"{spec.statistic} per host > {spec.threshold:g} × llm.queue_target_per_instance"
    if spec.kind == "hosts_wanted":
        return (f"{spec.statistic} < {spec.threshold:g}; where the group may be empty (min 0 or scheduled) only while it "
                "wants hosts, for the health-check grace period + 5 min (no data: ok)")
    if spec.kind == "operations":
        return f"{spec.statistic} over the table's operations > {spec.threshold:g}"
    if spec.kind == "storage_share":
        return f"{spec.statistic} < {spec.threshold:g} % of data.db_storage_gb"
    if spec.kind == "redis_primary":
        return f"sum over the nodes of {spec.statistic} {spec.metric} < {spec.threshold:g}"
    if spec.kind == "replication":
        return (f"{spec.statistic} > {spec.threshold / 1000:g} s, per receiving region (only where "
                "data.dynamodb_replica_regions is set)")
    sign = {"GreaterThanThreshold": ">", "LessThanThreshold": "<", "GreaterThanOrEqualToThreshold": "≥"}[spec.comparison]
    value = f"{spec.threshold / 1e9:g} GB ({spec.threshold:,.0f} bytes)" if spec.metric == "FreeStorageSpace" else (
        f"{spec.threshold:g} %" if spec.unit == "percent" else f"{spec.threshold:g}")
    unit = " s" if spec.metric in ("TargetResponseTime", "ReadLatency", "WriteLatency",
                                  "ApproximateAgeOfOldestMessage") else ""
    return f"{spec.statistic} {sign} {value}{unit}"


def on_call_table() -> str:
    """The README's on-call table, generated from the catalogue (a test keeps them equal)."""
    rows = ["| alarm | layer | fires when | window | no data | meaning | first action |",
            "|---|---|---|---|---|---|---|"]
    for spec in CATALOGUE:
        window = f"{spec.periods} × {spec.period // 60} min"
        name = f"`{spec.name}`" + (f" (per {spec.per.replace('_', ' ')})" if spec.per else "") + (
            " ★" if spec.critical else "")
        silence = "alarm" if spec.missing_data == "breaching" else "ok"
        # Saved queries by their name in the console's query list (<project>-<env>/<path>).
        saved = f". Saved queries: {', '.join(f'`{q}`' for q in spec.queries)}" if spec.queries else ""
        rows.append(f"| {name} | {spec.layer} | {_threshold_text(spec)} | {window} | {silence} | {spec.meaning} | "
                    f"{spec.first_action}{saved} |")
    return "\n".join(rows) + "\n"


def main(argv: list[str] | None = None) -> int:
    import argparse  # only when run as a command: the catalogue stays plain data

    argparse.ArgumentParser(prog="python -m modules.catalogue.alarms",
                            description="Print the on-call table (Markdown) of every alarm of the platform, as the "
                                        "README shows it.").parse_args(argv)
    print(on_call_table(), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

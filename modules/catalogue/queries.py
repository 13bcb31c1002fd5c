"""Saved CloudWatch Logs Insights queries operators run, as data: one row per query, named by
the log it reads. The observability layer saves each in every environment whose log it
reads, scoped to that log group; on-call rows (`alarms.py`) name the queries that help them.

Every field a query reads is tested against real samples of its log (tests/fixtures/logs/):
the WAF's JSON records, the proxy container's text lines (uvicorn access lines and LiteLLM's
plain log format), the PostgreSQL lines under RDS's log_line_prefix, and the chat worker's
JSON lines.
"""

from __future__ import annotations

from dataclasses import dataclass

# Where each log source is: "waf" exists only where edge.waf_log_destination = "cloudwatch".
SOURCES = ("waf", "proxy", "postgresql", "worker")

# RDS for PostgreSQL writes every line under its fixed prefix `%t:%r:%u@%d:[%p]:` (the
# parameter group cannot change log_line_prefix on RDS): time, host(port), user@db, [pid].
_PG = r"/^(?<time>\S+ \S+ \S+):(?<client>[^:]*):(?<user>[^@]*)@(?<db>[^:]*):\[(?<pid>\d+)\]:(?<severity>[A-Z]+):\s+(?<text>.*)/"
# LiteLLM's plain log line: `HH:MM:SS - <logger>:<LEVEL>: <file>:<line> - <message>`.
_LITELLM = r"/^(?<time>\d\d:\d\d:\d\d) - (?<logger>[^:]+):(?<level>[A-Z]+): (?<source>\S+) - (?<text>.*)$/"
# uvicorn's access line: `INFO:     <client> - "<METHOD> <path> HTTP/<v>" <status> <phrase>`.
_ACCESS = r'/"(?<method>[A-Z]+) (?<path>\S+) HTTP\/[0-9.]+" (?<status>\d{3})/'
# The managed rule that ended a request sits in the rule group list of its group.
_MANAGED_RULE = ("coalesce(ruleGroupList.0.terminatingRule.ruleId, ruleGroupList.1.terminatingRule.ruleId, "
                 "ruleGroupList.2.terminatingRule.ruleId) as managedRule")


@dataclass(frozen=True)
class QuerySpec:
    name: str  # saved as <project>-<environment>/<source>/<name>
    source: str
    purpose: str
    query: str

    @property
    def path(self) -> str:
        return f"{self.source}/{self.name}"


QUERIES = (
    QuerySpec("top-blocked-ips", "waf", "Client addresses the WAF blocked most, with their country",
              "filter action = \"BLOCK\"\n| stats count(*) as blocked by httpRequest.clientIp, httpRequest.country\n"
              "| sort blocked desc\n| limit 25"),
    QuerySpec("top-rules", "waf", "Rules that blocked most (web ACL rule, and the managed rule inside a group)",
              f"filter action = \"BLOCK\"\n| fields {_MANAGED_RULE}\n"
              "| stats count(*) as blocked by terminatingRuleId, managedRule\n| sort blocked desc\n| limit 25"),
    QuerySpec("false-positives", "waf", "Blocked or counted requests in detail: which rule, what it matched, "
              "on which path (add `| filter httpRequest.clientIp = \"…\"` for one client)",
              f"filter action = \"BLOCK\" or ispresent(nonTerminatingMatchingRules.0.ruleId)\n| fields @timestamp, "
              f"action, httpRequest.clientIp, httpRequest.httpMethod, httpRequest.uri, terminatingRuleId, "
              f"{_MANAGED_RULE}, terminatingRuleMatchDetails.0.conditionType, "
              "terminatingRuleMatchDetails.0.location, nonTerminatingMatchingRules.0.ruleId, labels.0.name\n"
              "| sort @timestamp desc\n| limit 100"),
    QuerySpec("block-rate", "waf", "Share of requests blocked, per 5 minutes",
              "fields strcontains(action, \"BLOCK\") as isBlocked\n"
              "| stats sum(isBlocked) * 100 / count(*) as blockedPercent, count(*) as requests by bin(5m)"),
    QuerySpec("top-errors", "proxy", "LiteLLM's error lines, by where they are raised and how they start",
              f"filter @message like /:ERROR: /\n| parse @message {_LITELLM}\n"
              "| fields substr(text, 0, 160) as error\n| stats count(*) as errors by source, error\n"
              "| sort errors desc\n| limit 25"),
    QuerySpec("auth-failures", "proxy", "Requests refused at authentication (invalid, expired, blocked keys), "
              "by reason", "filter @message like \"user_api_key_auth(): Exception occured - \"\n"
              "| parse @message \"Exception occured - *\" as reason\n| fields substr(reason, 0, 120) as why\n"
              "| stats count(*) as refused by why\n| sort refused desc\n| limit 25"),
    QuerySpec("top-users", "proxy", "The keys and users named in refusals (budget, authentication): the "
              "container log names no user per served request (LiteLLM's spend logs do)",
              "filter @message like /(Key|User|Team|End User)=/\n"
              "| parse @message /(?<owner>(Key|User|Team|End User)=[^ ,]+)/\n"
              "| stats count(*) as refusals by owner\n| sort refusals desc\n| limit 25"),
    QuerySpec("rate-limited", "proxy", "Requests answered 429 (rate limits), per 5 minutes and path",
              f"filter @message like \"\\\" 429 \"\n| parse @message {_ACCESS}\n| filter status = \"429\"\n"
              "| stats count(*) as limited by bin(5m), path"),
    QuerySpec("budget-exceeded", "proxy", "Requests refused because a key, user or team is over budget",
              "filter @message like /Budget has been exceeded|ExceededBudget/\n"
              "| parse @message /(?<owner>(Key|User|Team|End User)=[^ ,]+)/\n"
              "| stats count(*) as refused, latest(@timestamp) as last by owner\n| sort refused desc"),
    QuerySpec("response-time-by-model", "worker", "Average and p95 time to answer a chat request, by model "
              "(the proxy's own log has no per-request timing; the ALB's TargetResponseTime covers the API)",
              "filter message = \"answered\"\n"
              "| stats avg(latencyMs) as avgMs, pct(latencyMs, 95) as p95Ms, count(*) as answers by model\n"
              "| sort avgMs desc"),
    QuerySpec("slow-queries", "postgresql", "Statements slower than log_min_duration_statement (1 s), slowest first",
              f"filter @message like \"duration: \"\n| parse @message {_PG}\n"
              "| parse text \"duration: * ms  statement: *\" as durationMs, statement\n"
              "| sort durationMs desc\n| display @timestamp, durationMs, user, db, statement\n| limit 50"),
    QuerySpec("connection-errors", "postgresql", "Refused or failed connections (authentication, TLS, too many "
              "clients), by reason and client", f"parse @message {_PG}\n| filter severity = \"FATAL\"\n"
              "| stats count(*) as failures by text, client\n| sort failures desc\n| limit 25"),
    QuerySpec("deadlocks", "postgresql", "Deadlocks, with the processes and statement involved",
              f"filter @message like /deadlock detected|waits for .* blocked by process/\n"
              f"| parse @message {_PG}\n| display @timestamp, severity, pid, user, db, text\n"
              "| sort @timestamp desc\n| limit 50"),
)

BY_PATH = {query.path: query for query in QUERIES}

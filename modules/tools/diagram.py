"""Architecture diagram of each environment, drawn from its synthesized stacks (never by hand,
so it cannot drift from what deploys).

    python -m modules.tools.diagram [ENV ...] [--outdir cdktf.out]

Writes `<outdir>/diagrams/<env>.dot`, `.svg` and `.png` (Graphviz `dot`, Debian package
graphviz). The DOT text is deterministic: same synth, same bytes.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

from modules.tools.synthesized import DEFAULT_OUTDIR, Environment, SynthError, load, plural

TOKEN = re.compile(r"\$\{[^}]*\}")


def _label(*lines: str) -> str:
    text = "\\n".join(TOKEN.sub("…", line).replace('"', "'") for line in lines if line)
    return f'"{text}"'


class Graph:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.edges: list[str] = []

    def node(self, id_: str, *label: str, shape: str = "box", color: str = "#dbe9f6") -> str:
        self.lines.append(f'  {id_} [label={_label(*label)}, shape={shape}, style="rounded,filled", '
                          f'fillcolor="{color}"];')
        return id_

    def edge(self, a: str, b: str, label: str = "", *, ranked: bool = True) -> None:
        """`ranked=False`: the edge does not push `b` to the right of `a` (a way back out)."""
        attrs = ([f"label={_label(label)}"] if label else []) + ([] if ranked else ["constraint=false"])
        self.edges.append(f"  {a} -> {b}" + (f" [{', '.join(attrs)}]" if attrs else "") + ";")

    def cluster(self, id_: str, label: str, color: str) -> "Cluster":
        return Cluster(self, id_, label, color)


class Cluster:
    def __init__(self, graph: Graph, id_: str, label: str, color: str) -> None:
        self.graph, self.header = graph, [f"  subgraph cluster_{id_} {{", f"  label={_label(label)};",
                                          f'  style="rounded,filled"; fillcolor="{color}";']

    def __enter__(self) -> "Cluster":
        self.graph.lines += self.header
        return self

    def __exit__(self, *_: object) -> None:
        self.graph.lines.append("  }")


# Who talks to whom, drawn after the nodes: (from, to, label).
EDGES: list[tuple[str, str, str]] = [
    ("internet", "waf", "HTTPS"),
    ("waf", "alb", ""),
    ("alb", "gateway", "4000"),
    ("gateway", "rds", "5432 TLS"),
    ("gateway", "redis", "6379 TLS"),
    ("gateway", "endpoints", "AWS APIs"),
    ("endpoints", "bedrock", "bedrock-runtime"),
    ("gateway", "nat", "other HTTPS"),
    ("gpu", "nat", "public images, Hugging Face"),
    ("nat", "egress", ""),
    ("gateway", "llm_alb", "443"),
    ("llm_alb", "gpu", "50051"),
    ("internet", "websocket", "WSS"),
    ("websocket", "cognito", "JWT"),
    ("websocket", "functions", ""),
    ("functions", "sqs", ""),
    ("functions", "dynamodb", ""),
    ("functions", "redis", "cache"),
    ("functions", "gateway", "model calls"),
    ("functions", "sns", ""),
]
WAYS_OUT = {("gateway", "nat"), ("gpu", "nat")}  # not ranked: they do not push NAT rightwards


def dot(env: Environment) -> str:
    """The environment's architecture as Graphviz DOT."""
    g = Graph()
    zones = len(env.resources("aws_subnet")) // 3
    nats = len(env.resources("aws_nat_gateway"))
    albs = {("internal" if lb["internal"] else "public"): lb for lb in env.resources("aws_lb")}
    g.node("internet", "Internet", "clients", shape="ellipse", color="#ffffff")
    g.node("egress", "Internet", "outbound HTTPS", shape="ellipse", color="#ffffff")
    (acl,) = env.resources("aws_wafv2_web_acl")
    g.node("waf", "WAF web ACL", acl["name"], f"{len(acl['rule'])} rules", color="#f6dbdb")
    (service,) = env.resources("aws_ecs_service")
    # the serving task; the other one is the one-off migration task
    (task,) = [t for t in env.resources("aws_ecs_task_definition") if not t["family"].endswith("-migrate")]
    (container,) = json.loads(task["container_definitions"])
    routes = json.loads({e["name"]: e["value"] for e in container["environment"]}["LITELLM_CONFIG_YAML"])["model_list"]
    (db,) = env.resources("aws_db_instance")
    (redis,) = env.resources("aws_elasticache_replication_group")
    (group,) = env.resources("aws_autoscaling_group")
    types = [o["instance_type"] for o in group.get("mixed_instances_policy", {}).get("launch_template", {})
             .get("override", [])] or [env.resources("aws_launch_template")[0]["instance_type"]]
    region_prefix = f"com.amazonaws.{env.region}."
    endpoints = {kind: sorted(e["service_name"].removeprefix(region_prefix) for e in env.resources("aws_vpc_endpoint")
                              if e["vpc_endpoint_type"] == kind) for kind in ("Gateway", "Interface")}
    interface_zones = max((len(e.get("subnet_ids") or []) for e in env.resources("aws_vpc_endpoint")), default=0)
    with g.cluster("vpc", f"VPC {env.resources('aws_vpc')[0]['cidr_block']} ({env.region}, {plural(zones, 'AZ')})",
                   "#f5f5f5"):
        with g.cluster("public", "public subnets", "#e8f4e8"):
            g.node("alb", "public ALB", albs["public"]["name"], "HTTPS 443 (80 → 301)")
            g.node("nat", plural(nats, "NAT gateway"), "one per AZ" if nats == zones and nats > 1 else
                   "shared by every AZ" if nats == 1 else "", "egress of the private subnets", color="#eeeeee")
        with g.cluster("private", "private subnets", "#e8eef8"):
            g.node("gateway", "LiteLLM gateway (ECS Fargate)", service["name"],
                   f"{plural(service['desired_count'], 'task')} · {task['cpu']} CPU / {task['memory']} MB")
            g.node("endpoints", "VPC endpoints",
                   f"gateway: {', '.join(endpoints['Gateway'])}" if endpoints["Gateway"] else "",
                   *_wrapped(f"interface ({plural(interface_zones, 'AZ')}): ", endpoints["Interface"]),
                   color="#eeeeee")
            g.node("llm_alb", "internal ALB", albs["internal"]["name"], "HTTPS 443 → 50051")
            g.node("gpu", "GPU Auto Scaling group (vLLM)", group["name"], " / ".join(types),
                   f"min {group['min_size']} · max {group['max_size']}", color="#fbe8c8")
            functions = [f["function_name"].rsplit("-chat-", 1)[-1] for f in env.resources("aws_lambda_function")]
            g.node("functions", "chat functions (Lambda)", ", ".join(functions), color="#fbe8c8")
        with g.cluster("database", "database subnets (no internet route)", "#f8ece8"):
            g.node("rds", "RDS PostgreSQL", db["identifier"],
                   f"{db['instance_class']}{' · Multi-AZ' if db['multi_az'] else ''}", shape="cylinder")
            g.node("redis", "ElastiCache Redis", redis["replication_group_id"],
                   f"{redis['num_cache_clusters']} × {redis['node_type']}", shape="cylinder")
    _outside_vpc(g, env, routes)
    for a, b, label in EDGES:
        g.edge(a, b, label, ranked=(a, b) not in WAYS_OUT)
    return "\n".join([f"digraph {json.dumps(env.name)} {{", "  rankdir=LR; compound=true; fontname=Helvetica;",
                      '  node [fontname=Helvetica, fontsize=10]; edge [fontname=Helvetica, fontsize=9];',
                      f"  label={_label(f'LLM platform — {env.name}')}; labelloc=t;",
                      *g.lines, *g.edges, "}"]) + "\n"


def _outside_vpc(g: Graph, env: Environment, routes: list[dict]) -> None:
    """Regional services the VPC reaches, and the shared foundation and observability resources."""
    g.node("bedrock", "Amazon Bedrock", *[r["litellm_params"]["model"].removeprefix("bedrock/") for r in routes
                                        if r["litellm_params"]["model"].startswith("bedrock/")], color="#efe3f7")
    tables = [t["name"] for t in env.resources("aws_dynamodb_table")]
    g.node("dynamodb", "DynamoDB", *tables, shape="cylinder")
    (api,) = env.resources("aws_apigatewayv2_api")
    g.node("websocket", "API Gateway WebSocket", api["name"], "$connect · $disconnect · $default")
    (pool,) = env.resources("aws_cognito_user_pool")
    g.node("cognito", "Cognito user pool", pool["name"], f"MFA {pool['mfa_configuration']}")
    queues = [q["name"] for q in env.resources("aws_sqs_queue")]
    g.node("sqs", "SQS", *queues, shape="folder")
    topics = [t["name"] for t in env.resources("aws_sns_topic")]
    g.node("sns", "SNS", *topics, shape="folder")
    with g.cluster("shared", "foundation and observability", "#fafafa"):
        keys = len(env.resources("aws_kms_key")) + len(env.resources("aws_kms_replica_key"))
        g.node("kms", plural(keys, "KMS key"), color="#eeeeee")
        buckets = [b["bucket"] for b in env.resources("aws_s3_bucket")]
        g.node("logs", plural(len(buckets), "S3 bucket"), ", ".join(bucket_purposes(buckets)), color="#eeeeee")
        dashboards = len(env.resources("aws_cloudwatch_dashboard"))
        g.node("alarms", "CloudWatch", f"{plural(len(env.resources('aws_cloudwatch_metric_alarm')), 'alarm')} · "
               f"{plural(dashboards, 'dashboard')}", color="#eeeeee")


# What a bucket holds, by a word of its name (the layers name them so), in the label's order.
BUCKET_PURPOSES = (("logs", "logs"), ("audit", "audit"), ("trail", "trail"), ("weights", "weights"),
                   ("tfstate", "state"))


def bucket_purposes(names: list[str]) -> list[str]:
    """Only what this environment's buckets hold: dev keeps no trail and no state bucket."""
    return [label for word, label in BUCKET_PURPOSES if any(word in name for name in names)]


def _wrapped(head: str, names: list[str], width: int = 48) -> list[str]:
    """`head` and comma-separated `names` as label lines of at most about `width` characters."""
    if not names:
        return []
    lines, line = [], head
    for i, name in enumerate(names):
        piece = name + ("," if i < len(names) - 1 else "")
        if len(line) + len(piece) > width and line.strip():
            lines.append(line.rstrip())
            line = ""
        line += piece + " "
    return lines + [line.rstrip()]


def render(env: Environment, target: Path) -> list[Path]:
    if shutil.which("dot") is None:
        raise SynthError("Graphviz `dot` is not installed. Fix: apt-get install -y graphviz.")
    target.mkdir(parents=True, exist_ok=True)
    source = target / f"{env.name}.dot"
    source.write_text(dot(env))
    written = [source]
    for fmt in ("svg", "png"):
        out = target / f"{env.name}.{fmt}"
        subprocess.run(["dot", f"-T{fmt}", str(source), "-o", str(out)], check=True, timeout=60)
        written.append(out)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m modules.tools.diagram",
                                     description="Draw each environment's architecture from its synth.")
    parser.add_argument("environments", nargs="*", metavar="ENV",
                        help="environments of the synth to draw (default: every one)")
    parser.add_argument("--outdir", type=Path, default=DEFAULT_OUTDIR,
                        help=f"the synth output to read; drawings go to OUTDIR/diagrams (default: {DEFAULT_OUTDIR})")
    args = parser.parse_args(argv)
    try:
        for env in load(args.outdir, args.environments):
            print(" ".join(str(p) for p in render(env, args.outdir / "diagrams")))
    except SynthError as err:
        print(f"diagram: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

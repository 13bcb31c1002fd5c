"""Where moto's server mode is not AWS: one row per difference, applied by name and reported.

A row either rewrites the rehearsal copy before apply (the stack itself is right for AWS), or
explains a plan change after apply (a false drift). Anything a row does not explain is a
project defect. The README's table is `markdown_table()` (a test keeps them equal).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from modules.rehearsal.rewrite import replace_strings

Doc = dict[str, Any]
# moto ships these public parameters (moto/ssm/resources/ami-amazon-linux-latest/<region>.json.gz).
EMULATED_AMI_PARAMETER = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"


@dataclass(frozen=True)
class Seeded:
    """What the emulator was seeded with, for the rewrites that need it."""

    certificate_arns: dict[str, str] = field(default_factory=dict)  # configured ARN -> emulator's


@dataclass(frozen=True)
class Difference:
    name: str
    resource_type: str
    symptom: str
    evidence: str
    rewrite: Callable[[Doc, Seeded], int] | None = None  # changes the copy; returns how many places
    drift: Callable[[str, dict[str, Any], dict[str, Any]], bool] | None = None  # (type, before, after)
    seed: Callable[[Doc, Any], int] | None = None  # (copy, emulator): creates what moto leaves out

    @property
    def handling(self) -> str:
        if self.seed:
            return "seeded before apply"
        return "rewritten in the copy" if self.rewrite else "plan change ignored"


def _certificate_arns(doc: Doc, seeded: Seeded) -> int:
    count = 0
    for configured, emulated in seeded.certificate_arns.items():
        for section in ("resource", "data", "locals", "output"):
            if section in doc:
                doc[section], n = replace_strings(doc[section], configured, emulated)
                count += n
    return count


LOG_DELIVERY = "logging.s3.amazonaws.com"


def _log_delivery_resource_as_string(doc: Doc, seeded: Seeded) -> int:
    count = 0
    for block in doc.get("resource", {}).get("aws_s3_bucket_policy", {}).values():
        policy = json.loads(block["policy"])
        for statement in policy["Statement"]:
            service = statement.get("Principal", {}).get("Service")
            if LOG_DELIVERY not in (service if isinstance(service, list) else [service]):
                continue
            for key, value in (("Resource", statement.get("Resource")), ("Principal", service)):
                if isinstance(value, list) and len(value) == 1:
                    if key == "Resource":
                        statement["Resource"] = value[0]
                    else:
                        statement["Principal"]["Service"] = value[0]
                    count += 1
        block["policy"] = json.dumps(policy)
    return count


def _public_ami_parameter(doc: Doc, seeded: Seeded) -> int:
    count = 0
    for block in doc.get("data", {}).get("aws_ssm_parameter", {}).values():
        if block.get("name", "").startswith("/aws/service/") and not block["name"].startswith(
                "/aws/service/ami-amazon-linux-latest/"):
            block["name"] = EMULATED_AMI_PARAMETER
            count += 1
    return count


def _replication_group_members(doc: Doc, server: Any) -> int:
    """Create the member cache clusters moto names but never creates (`<group>-001`, …)."""
    count = 0
    region = next((p["region"] for p in doc.get("provider", {}).get("aws", []) if "alias" not in p), None)
    for block in doc.get("resource", {}).get("aws_elasticache_replication_group", {}).values():
        group = block.get("replication_group_id", "")
        if "${" in group or region is None:
            continue
        client = server.client("elasticache", region)
        for member in range(1, int(block.get("num_cache_clusters", 1)) + 1):
            client.create_cache_cluster(
                CacheClusterId=f"{group}-{member:03d}", Engine=block.get("engine", "redis"),
                CacheNodeType=block["node_type"], NumCacheNodes=1,
                **{key: block[attr] for key, attr in (("PreferredMaintenanceWindow", "maintenance_window"),
                                                      ("SnapshotWindow", "snapshot_window"),
                                                      ("SnapshotRetentionLimit", "snapshot_retention_limit"))
                   if attr in block})
            count += 1
    return count


SG_RULE_TYPES = ("aws_vpc_security_group_ingress_rule", "aws_vpc_security_group_egress_rule")


def _referenced_group_rule_description(resource_type: str, before: dict[str, Any], after: dict[str, Any]) -> bool:
    changed = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
    return (resource_type in SG_RULE_TYPES and changed == {"description"} and not before.get("description")
            and bool(after.get("referenced_security_group_id")))


DIFFERENCES: tuple[Difference, ...] = (
    Difference(
        "acm-certificate-arn", "aws_acm_certificate (configured ARN)",
        "The environment's certificates are issued outside Terraform; an imported certificate cannot keep "
        "its ARN in moto, so the configured ARN is unknown there.",
        "moto/acm/models.py `import_certificate`: an ARN not already known raises CertificateNotFound; "
        "without one moto generates the ARN. The rehearsal imports a self-signed certificate per configured "
        "ARN and uses moto's ARN in the copy.",
        rewrite=_certificate_arns),
    Difference(
        "s3-log-delivery-policy-resource", "aws_s3_bucket_policy",
        "PutBucketLogging is refused when the target's log-delivery statement lists its Resource (or "
        "Service principal) as a one-element array.",
        "moto/s3/models.py `FakeBucket._log_permissions_enabled_policy` compares `Resource` and "
        "`Principal.Service` with `!=` against one string; AWS accepts a string or an array "
        "(IAM JSON policy reference, Resource element). The copy states the one value as a string.",
        rewrite=_log_delivery_resource_as_string),
    Difference(
        "ssm-public-ami-parameter", "data.aws_ssm_parameter",
        "The Deep Learning AMI's public parameter (/aws/service/deeplearning/…) is not found.",
        "moto/ssm/models.py loads only ami-amazon-linux-latest, ecs and global-infrastructure public "
        "parameters, and `put_parameter` refuses names starting with /aws (reserved). The copy reads "
        f"{EMULATED_AMI_PARAMETER} instead (an image moto's EC2 knows).",
        rewrite=_public_ami_parameter),
    Difference(
        "sg-rule-referenced-group-description", "aws_vpc_security_group_ingress_rule / _egress_rule",
        "A rule that references another security group reads back without its description: the plan "
        "after apply wants to add it again.",
        "moto/ec2/models/security_groups.py `SecurityGroupRule.description` returns "
        "`ip_range.get(\"Description\")`, and a rule with a referenced group has no IP range; AWS "
        "returns the description of every rule (EC2 API, SecurityGroupRule.Description).",
        drift=_referenced_group_rule_description),
    Difference(
        "elasticache-member-clusters", "aws_elasticache_replication_group",
        "Reading the new replication group fails: `CacheClusterNotFound` for its member `<group>-001`.",
        "moto/elasticache/models.py `ReplicationGroup` lists member cluster ids (`<group>-001`, …) but never "
        "creates those cache clusters, and `describe_cache_clusters` looks only at created ones; on AWS the "
        "members exist (ElastiCache API, ReplicationGroup.MemberClusters). The rehearsal creates them first.",
        seed=_replication_group_members),
)


def by_name(name: str) -> Difference:
    return next(d for d in DIFFERENCES if d.name == name)


def apply_rewrites(doc: Doc, seeded: Seeded) -> list[str]:
    """Apply every rewrite row to the copy; one note per row that changed something."""
    notes = []
    for row in DIFFERENCES:
        if row.rewrite:
            count = row.rewrite(doc, seeded)
            if count:
                notes.append(f"emulator difference {row.name}: {count} place(s) rewritten")
    return notes


def apply_seeds(doc: Doc, server: Any) -> list[str]:
    """Create, in the emulator, what a stack's resources expect and moto leaves out."""
    notes = []
    for row in DIFFERENCES:
        if row.seed:
            count = row.seed(doc, server)
            if count:
                notes.append(f"emulator difference {row.name}: {count} object(s) seeded")
    return notes


def explain_drift(resource_type: str, before: dict[str, Any], after: dict[str, Any]) -> Difference | None:
    """The row explaining a plan change of a resource, if any."""
    return next((row for row in DIFFERENCES if row.drift and row.drift(resource_type, before, after)), None)


def markdown_table() -> str:
    lines = ["| name | resource type | symptom on moto | evidence | handling |", "|---|---|---|---|---|"]
    for row in DIFFERENCES:
        cells = [f"`{row.name}`", f"`{row.resource_type}`", row.symptom, row.evidence, row.handling]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)

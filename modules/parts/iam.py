"""IAM policy documents as plain JSON (lintable and readable by Checkov), and service roles."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from constructs import Construct
from cdktn_provider_aws.iam_role import IamRole
from cdktn_provider_aws.iam_role_policy import IamRolePolicy

from modules.config.models import PULL_THROUGH_CACHES

Statement = dict[str, Any]


def allow(actions: list[str], resources: list[str], *, sid: str | None = None,
          principals: dict[str, Any] | None = None, conditions: dict[str, Any] | None = None) -> Statement:
    return _statement("Allow", actions, resources, sid, principals, conditions)


# APIs that admit no resource narrower than "*" (per the AWS service authorization reference).
UNSCOPED_ACTIONS = frozenset({
    "ecr:GetAuthorizationToken",
    "logs:CreateLogDelivery", "logs:DeleteLogDelivery", "logs:DescribeLogGroups", "logs:DescribeResourcePolicies",
    "logs:GetLogDelivery", "logs:ListLogDeliveries", "logs:PutResourcePolicy", "logs:UpdateLogDelivery",
    "ssmmessages:CreateControlChannel", "ssmmessages:CreateDataChannel", "ssmmessages:OpenControlChannel",
    "ssmmessages:OpenDataChannel",
    "xray:GetSamplingRules", "xray:GetSamplingTargets", "xray:PutTelemetryRecords", "xray:PutTraceSegments",
    "cloudwatch:PutMetricData", "ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets", "ec2:DescribeTags",
})


def allow_unscoped(actions: list[str], *, sid: str, conditions: dict[str, Any] | None = None) -> Statement:
    """Allow account-wide APIs on "*": only those in UNSCOPED_ACTIONS may be granted so."""
    extra = set(actions) - UNSCOPED_ACTIONS
    if extra:
        raise ValueError(f"{sorted(extra)} accept narrower resources; grant them on their ARNs")
    return allow(actions, ["*"], sid=sid, conditions=conditions)


def registry_pull_statements(image: str, partition: str) -> list[Statement]:
    """ECR pull rights only when the image comes from ECR (ghcr.io images need none). An image
    under a pull-through cache prefix may also import it from upstream, creating its repository
    on the first pull (ECR user guide: IAM permissions required to sync an upstream registry)."""
    registry = image.split("/", 1)[0]
    # <account>.dkr.ecr.<region>.amazonaws.com; either may be a plan-time value (an exported
    # module's caller), whose token holds dots of its own.
    found = re.fullmatch(r"(.+?)\.dkr\.ecr\.(.+?)\.amazonaws\.com(?:\.cn)?", registry)
    if found is None:
        return []
    account, region = found.groups()
    repository = image.split("/", 1)[1].split("@")[0].split(":")[0]
    arn = f"arn:{partition}:ecr:{region}:{account}:repository/{repository}"
    statements = [
        allow_unscoped(["ecr:GetAuthorizationToken"], sid="EcrToken"),
        allow(["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"], [arn],
              sid="EcrPull"),
    ]
    if repository.split("/", 1)[0] in PULL_THROUGH_CACHES:
        statements.append(allow(["ecr:BatchImportUpstreamImage", "ecr:CreateRepository"], [arn],
                                sid="EcrPullThroughCache"))
    return statements


def deny(actions: list[str], resources: list[str], *, sid: str | None = None,
         principals: dict[str, Any] | None = None, conditions: dict[str, Any] | None = None) -> Statement:
    return _statement("Deny", actions, resources, sid, principals, conditions)


def deny_insecure_transport(actions: list[str], resources: list[str]) -> Statement:
    """Refuse every request to `resources` that does not use TLS."""
    return deny(actions, resources, sid="DenyInsecureTransport", principals={"AWS": "*"},
                conditions={"Bool": {"aws:SecureTransport": "false"}})


def _statement(effect: str, actions: list[str], resources: list[str], sid: str | None,
               principals: dict[str, Any] | None, conditions: dict[str, Any] | None) -> Statement:
    out: Statement = {"Effect": effect, "Action": sorted(actions), "Resource": resources}
    if sid:
        out = {"Sid": sid, **out}
    if principals is not None:
        out["Principal"] = principals
    if conditions:
        out["Condition"] = conditions
    return out


def document(*statements: Statement) -> str:
    """A policy document. Tokens (`${...}`) inside strings resolve at synth."""
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)}, indent=None)


@dataclass(frozen=True)
class ServiceRole:
    """A role and its inline policy (the resource to depend on before the service uses the role)."""

    role: IamRole
    policy: IamRolePolicy | None

    @property
    def arn(self) -> str:
        return self.role.arn

    @property
    def name(self) -> str:
        return self.role.name


# Services that assume a role without sending aws:SourceAccount: a condition on a key absent
# from the request evaluates false, so it would deny them. EC2 assumes an instance profile's
# role with no such key (the EC2 user guide's instance-role trust policy has no condition); who
# may attach the role to an instance is governed by iam:PassRole, which cannot cross accounts.
# API Gateway's CloudWatch logging role is documented with the service alone as trusted entity;
# so is CloudTrail's role for CloudWatch Logs delivery (CloudTrail user guide, "Role policy
# document for CloudTrail to use CloudWatch Logs for monitoring": confused-deputy prevention is
# not applicable there, aws:SourceArn and aws:SourceAccount are not supported), and AWS Backup's
# service role (AWS Backup developer guide, "IAM service roles": the default role trusts
# backup.amazonaws.com; who may pass the role is governed by iam:PassRole).
WITHOUT_SOURCE_ACCOUNT = frozenset({"ec2.amazonaws.com", "apigateway.amazonaws.com", "cloudtrail.amazonaws.com",
                                    "backup.amazonaws.com"})


def service_role(scope: Construct, id: str, *, name: str, service: str, source_account: str | None,
                 statements: list[Statement]) -> ServiceRole:
    """A role only `service` can assume, acting for this account (`aws:SourceAccount`) wherever
    the service sends that key; one inline least-privilege policy."""
    if (source_account is None) != (service in WITHOUT_SOURCE_ACCOUNT):
        raise ValueError(f"{service}: bind the trust to the account with source_account unless the service "
                         f"sends no aws:SourceAccount ({', '.join(sorted(WITHOUT_SOURCE_ACCOUNT))})")
    trust: Statement = {"Effect": "Allow", "Action": ["sts:AssumeRole"], "Principal": {"Service": service}}
    if source_account is not None:
        trust["Condition"] = {"StringEquals": {"aws:SourceAccount": source_account}}
    role = IamRole(scope, id, name=name, assume_role_policy=document(trust))
    policy = IamRolePolicy(scope, f"{id}_policy", name=f"{name}-policy", role=role.id,
                           policy=document(*statements)) if statements else None
    return ServiceRole(role, policy)

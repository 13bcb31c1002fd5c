"""IAM policy documents as plain JSON (lintable and readable by Checkov), and service roles."""

from __future__ import annotations

import json
from typing import Any

from constructs import Construct
from cdktf_cdktf_provider_aws.iam_role import IamRole
from cdktf_cdktf_provider_aws.iam_role_policy import IamRolePolicy

Statement = dict[str, Any]


def allow(actions: list[str], resources: list[str], *, sid: str | None = None,
          principals: dict[str, Any] | None = None, conditions: dict[str, Any] | None = None) -> Statement:
    return _statement("Allow", actions, resources, sid, principals, conditions)


def deny(actions: list[str], resources: list[str], *, sid: str | None = None,
         principals: dict[str, Any] | None = None, conditions: dict[str, Any] | None = None) -> Statement:
    return _statement("Deny", actions, resources, sid, principals, conditions)


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


def service_role(scope: Construct, id: str, *, name: str, service: str, source_account: str,
                 statements: list[Statement]) -> IamRole:
    """A role only `service`, acting for this account, can assume; one inline least-privilege policy."""
    trust = {"Effect": "Allow", "Action": ["sts:AssumeRole"], "Principal": {"Service": service},
             "Condition": {"StringEquals": {"aws:SourceAccount": source_account}}}
    role = IamRole(scope, id, name=name, assume_role_policy=document(trust))
    if statements:
        IamRolePolicy(scope, f"{id}_policy", name=f"{name}-policy", role=role.id,
                      policy=document(*statements))
    return role

"""The account scope: one `account-<name>` stack per AWS account of environments/accounts.toml."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from conftest import Stack
from modules.config import load_accounts, load_environment
from modules.layers.account import DEPLOY_SESSION_SECONDS, GITHUB_ISSUER, PLAN_SESSION_SECONDS

ROOT = Path(__file__).resolve().parent.parent
AUTOSCALING_ROLE = "role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"


def test_one_stack_per_account_holds_its_singletons(account_stacks) -> None:
    assert set(account_stacks) == {"account-dev", "account-prod"}
    for name, stack in account_stacks.items():
        (role,) = stack.resources("aws_iam_service_linked_role").values()
        assert role["aws_service_name"] == "autoscaling.amazonaws.com"
        assert role["lifecycle"] == {"prevent_destroy": True}, name  # every Auto Scaling group needs it
        (oidc,) = stack.resources("aws_iam_openid_connect_provider").values()
        assert oidc["url"] == f"https://{GITHUB_ISSUER}" and oidc["client_id_list"] == ["sts.amazonaws.com"]
        (provider,) = [p for p in stack.doc["provider"]["aws"] if "alias" not in p]
        assert provider["allowed_account_ids"] == [load_accounts()[name.removeprefix("account-")].id]


def test_the_existing_auto_scaling_role_is_imported_where_a_foundation_made_it(account_stacks) -> None:
    """dev's and prod's foundations created it: their account stacks adopt it (import block)."""
    for stack in account_stacks.values():
        (lid,) = stack.resources("aws_iam_service_linked_role")
        (block,) = stack.doc["import"]
        assert block["to"] == f"aws_iam_service_linked_role.{lid}" and block["id"].endswith(f":{AUTOSCALING_ROLE}")


def test_api_gateway_logging_is_set_once_per_region_of_the_accounts_environments(account_stacks) -> None:
    """API Gateway account settings are regional: prod (eu-west-2) and prod-us (us-west-2) share
    the prod account, so it sets both, with one role."""
    prod = account_stacks["account-prod"]
    settings = prod.resources("aws_api_gateway_account")
    (role_id,) = [lid for lid, r in prod.resources("aws_iam_role").items() if r["name"].endswith("-apigateway-cloudwatch")]
    assert {s["cloudwatch_role_arn"] for s in settings.values()} == {prod.ref("aws_iam_role", role_id, "arn")}
    assert sorted(s.get("provider") or "aws" for s in settings.values()) == ["aws", "aws.us_west_2"]
    assert len(account_stacks["account-dev"].resources("aws_api_gateway_account")) == 1
    (trust,) = json.loads(prod.resources("aws_iam_role")[role_id]["assume_role_policy"])["Statement"]
    assert trust["Principal"] == {"Service": "apigateway.amazonaws.com"}


def _role(stack: Stack, name: str) -> tuple[str, dict]:
    ((lid, role),) = [(lid, r) for lid, r in stack.resources("aws_iam_role").items() if r["name"] == name]
    return lid, role


@pytest.mark.parametrize("env, kind, github_environment, seconds", [
    ("dev", "plan", "dev-plan", PLAN_SESSION_SECONDS), ("dev", "deploy", "dev", DEPLOY_SESSION_SECONDS),
    ("prod-us", "plan", "prod-us-plan", PLAN_SESSION_SECONDS), ("prod", "deploy", "prod", DEPLOY_SESSION_SECONDS)])
def test_pipeline_roles_trust_only_this_repositorys_environment(account_stacks, env, kind, github_environment,
                                                              seconds) -> None:
    account = "dev" if env == "dev" else "prod"
    stack = account_stacks[f"account-{account}"]
    _, role = _role(stack, f"llmlite-{env}-{kind}")
    (trust,) = json.loads(role["assume_role_policy"])["Statement"]
    (oidc,) = stack.resources("aws_iam_openid_connect_provider")
    assert trust["Action"] == ["sts:AssumeRoleWithWebIdentity"]
    assert trust["Principal"] == {"Federated": stack.ref("aws_iam_openid_connect_provider", oidc, "arn")}
    assert trust["Condition"] == {"StringEquals": {
        "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
        "token.actions.githubusercontent.com:sub": f"repo:example-org/llm-platform:environment:{github_environment}"}}
    assert role["max_session_duration"] == seconds


def _policies(stack: Stack, lid: str) -> tuple[list[str], list[dict]]:
    ref = stack.ref("aws_iam_role", lid)
    ref_name = stack.ref("aws_iam_role", lid, "name")
    managed = sorted(a["policy_arn"].rsplit("/", 1)[1] for a in stack.resources("aws_iam_role_policy_attachment").values()
                     if a["role"] == ref_name)
    statements = [s for p in stack.resources("aws_iam_role_policy").values() if p["role"] == ref
                  for s in json.loads(p["policy"])["Statement"]]
    return managed, statements


def test_the_plan_role_reads_and_refreshes_its_environment_only(account_stacks) -> None:
    """ReadOnlyAccess, plus exactly what it lacks for a refresh: the environment's secret values,
    its keys (by tag), its state objects and the native lock file."""
    stack = account_stacks["account-prod"]
    managed, statements = _policies(stack, _role(stack, "llmlite-prod-plan")[0])
    assert managed == ["ReadOnlyAccess"]
    by_sid = {s["Sid"]: s for s in statements}
    assert set(by_sid) == {"OwnSecretValues", "OwnKeys", "StateList", "StateRead", "StateLock", "StateLockEncrypt"}
    assert by_sid["OwnSecretValues"]["Action"] == ["secretsmanager:GetSecretValue"]
    assert by_sid["OwnSecretValues"]["Resource"] == [
        "arn:${data.aws_partition.account_partition_32ACE770.partition}:secretsmanager:eu-west-2:111122223333:"
        "secret:llmlite/prod/*"]
    assert by_sid["OwnKeys"]["Action"] == ["kms:Decrypt"]
    assert by_sid["OwnKeys"]["Condition"] == {"StringEquals": {"aws:ResourceTag/Project": "llmlite",
                                                               "aws:ResourceTag/Environment": "prod"}}
    bucket = load_environment("prod").backend.bucket
    assert by_sid["StateRead"]["Resource"][0].endswith(f":s3:::{bucket}/llm-platform/prod/*")
    assert by_sid["StateLock"]["Action"] == ["s3:DeleteObject", "s3:PutObject"]
    assert by_sid["StateLock"]["Resource"][0].endswith(f":s3:::{bucket}/llm-platform/prod/*.tflock")
    writes = [a for s in statements for a in s["Action"] if not re.match(r".*:(Get|List|Decrypt)", a)]
    assert writes == ["s3:DeleteObject", "s3:PutObject", "kms:GenerateDataKey"]  # the lock file only


def test_the_deploy_role_writes_iam_only_under_its_environments_names(account_stacks) -> None:
    stack = account_stacks["account-prod"]
    managed, statements = _policies(stack, _role(stack, "llmlite-prod-us-deploy")[0])
    assert managed == ["PowerUserAccess"]  # everything but IAM
    own = next(s for s in statements if s["Sid"] == "OwnRoles")
    assert [r.split(":iam::111122223333:")[1] for r in own["Resource"]] == [
        "role/llmlite-prod-us-*", "instance-profile/llmlite-prod-us-*"]
    linked = next(s for s in statements if s["Sid"] == "ServiceLinkedRoles")
    assert linked["Action"] == ["iam:CreateServiceLinkedRole"] and "iam:AWSServiceName" in linked["Condition"]["StringEquals"]
    # prod-us shares prod's account: its deploy role may not touch (or tag as) prod's resources
    denied = {s["Sid"]: s for s in statements if s["Effect"] == "Deny"}
    assert denied["NotAnotherEnvironmentsResources"]["Condition"] == {
        "Null": {"aws:ResourceTag/Environment": "false"},
        "StringNotEquals": {"aws:ResourceTag/Environment": "prod-us"}}
    assert denied["NotAnotherEnvironmentsTag"]["Condition"]["StringNotEquals"] == {"aws:RequestTag/Environment": "prod-us"}
    assert all(s["Action"] == ["*"] and s["Resource"] == ["*"] for s in denied.values())


def test_every_role_session_the_workflows_ask_for_is_allowed(account_stacks) -> None:
    """configure-aws-credentials asks for role-duration-seconds; STS refuses more than the role's
    MaxSessionDuration, and the default (1 hour) would expire in a long apply."""
    asked = {}
    for workflow in (ROOT / ".github" / "workflows").glob("*.yml"):
        for match in re.finditer(r"role-to-assume: \$\{\{ vars\.AWS_(PLAN|DEPLOY)_ROLE_ARN \}\}\n(?:\s+[\w-]+: .*\n)*?"
                                 r"\s+role-duration-seconds: (\d+)", workflow.read_text()):
            asked.setdefault(match[1].lower(), set()).add(int(match[2]))
    assert asked == {"plan": {PLAN_SESSION_SECONDS}, "deploy": {DEPLOY_SESSION_SECONDS}}

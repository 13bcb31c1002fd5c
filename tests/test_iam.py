"""SEC-3: IAM policy documents pass parliament with zero findings; no `*` action; `*` resource
only where the AWS API admits nothing narrower."""

from __future__ import annotations

import json
import re
import warnings

import pytest

from conftest import Stack

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # parliament imports the deprecated pkg_resources
    from parliament import analyze_policy_string

# Terraform references resolve at apply time; parliament needs a concrete ARN of the
# referenced resource's type to check that each action fits its resource.
EXAMPLE_ARNS = (
    ("partition", "aws"),
    ("account_id", "111122223333"),
    ("log_group", "arn:aws:logs:eu-west-2:111122223333:log-group:example"),
    ("kms_key", "arn:aws:kms:eu-west-2:111122223333:key/example"),
    ("s3_bucket", "arn:aws:s3:::example"),
    ("secret", "arn:aws:secretsmanager:eu-west-2:111122223333:secret:example"),
    ("db_credentials_arn", "arn:aws:secretsmanager:eu-west-2:111122223333:secret:example"),
    ("aws_ecs_service", "arn:aws:ecs:eu-west-2:111122223333:service/example/example"),
    ("aws_sfn_state_machine", "arn:aws:states:eu-west-2:111122223333:stateMachine:example"),
    ("aws_dynamodb_table", "arn:aws:dynamodb:eu-west-2:111122223333:table/example"),
    ("aws_sqs_queue", "arn:aws:sqs:eu-west-2:111122223333:example"),
    ("aws_sns_topic", "arn:aws:sns:eu-west-2:111122223333:example"),
    ("aws_apigatewayv2_api", "arn:aws:execute-api:eu-west-2:111122223333:example"),
    ("redis_auth", "arn:aws:secretsmanager:eu-west-2:111122223333:secret:example"),
    ("aws_secretsmanager_secret", "arn:aws:secretsmanager:eu-west-2:111122223333:secret:example"),
    ("aws_cloudwatch_log_group", "arn:aws:logs:eu-west-2:111122223333:log-group:example"),
    ("aws_lb_target_group", "arn:aws:elasticloadbalancing:eu-west-2:111122223333:targetgroup/example/0123456789abcdef"),
)
from modules.parts.iam import UNSCOPED_ACTIONS  # noqa: E402  (account-wide by API design)


def concrete(document: str) -> str:
    def replace(match: re.Match[str]) -> str:
        token = match.group(0)
        for marker, example in EXAMPLE_ARNS:
            if marker in token:
                return example
        raise AssertionError(f"no example ARN for {token}")
    return re.sub(r"\$\{[^}]*\}", replace, document)


def identity_policies(stacks: dict[str, Stack]) -> list[tuple[str, str]]:
    return [(f"{name}: {lid}", body["policy"]) for name, stack in stacks.items()
            for lid, body in stack.resources("aws_iam_role_policy").items()]


def _bedrock_versioned_model(finding) -> bool:
    """parliament splits ARNs on ':' and so misreads model ids such as `…-v2:0`."""
    return finding.issue == "RESOURCE_MISMATCH" and all(
        d["action"].startswith("bedrock:") for d in finding.detail)


# parliament 1.6.4's action table lists these without a resource type, where the Service
# Authorization Reference (Amazon ECR: "BatchImportUpstreamImage … repository*") scopes them to
# a repository: a grant on the repository's ARN is right, parliament's table is old.
STALE_IN_PARLIAMENT = {"ecr:BatchImportUpstreamImage"}


def _stale_action_table(finding) -> bool:
    return finding.issue == "RESOURCE_MISMATCH" and all(
        d["action"] in STALE_IN_PARLIAMENT and d["required_format"] == "*" for d in finding.detail)


def test_parliaments_table_is_still_stale_where_the_exception_says() -> None:
    """When parliament learns the resource types, the exception goes."""
    from parliament import iam_definition
    for action in STALE_IN_PARLIAMENT:
        prefix, name = action.split(":")
        (service,) = [s for s in iam_definition if s["prefix"] == prefix]
        (privilege,) = [p for p in service["privileges"] if p["privilege"] == name]
        assert [r["resource_type"] for r in privilege["resource_types"]] == [""], action


def test_identity_policies_have_no_parliament_findings(stacks, account_stacks) -> None:
    findings = []
    for where, document in identity_policies({**stacks, **account_stacks}):
        policy = analyze_policy_string(concrete(document), ignore_private_auditors=True,
                                       include_community_auditors=False)
        findings += [f"{where}: {f.issue} {f.detail}" for f in policy.findings
                     if not _bedrock_versioned_model(f) and not _stale_action_table(f)]
    assert findings == []


# EC2 assumes an instance profile's role without aws:SourceAccount in the request (the EC2
# user guide's instance-role trust policy has no condition, unlike its Spot Fleet and Data
# Lifecycle Manager roles); a condition on an absent key is false, so the hosts would get no
# credentials. iam:PassRole decides who may attach the role to an instance. API Gateway's
# CloudWatch logging role (developer guide, "Set up CloudWatch logging") trusts the service alone,
# and so does CloudTrail's role for CloudWatch Logs delivery (CloudTrail user guide: that role
# policy supports neither aws:SourceArn nor aws:SourceAccount), and AWS Backup's service role
# (developer guide, "IAM service roles").
WITHOUT_SOURCE_ACCOUNT = {"ec2.amazonaws.com", "apigateway.amazonaws.com", "cloudtrail.amazonaws.com",
                          "backup.amazonaws.com"}


def test_trust_policies_admit_one_service_bound_to_this_account(stacks, account_stacks) -> None:
    """parliament reads only identity policies; trust policies are checked for shape here (the
    pipeline's OIDC roles in tests/test_account.py)."""
    seen = set()
    for name, stack in {**stacks, **account_stacks}.items():
        for lid, role in stack.resources("aws_iam_role").items():
            (statement,) = json.loads(role["assume_role_policy"])["Statement"]
            if "Federated" in statement["Principal"]:
                continue
            assert statement["Effect"] == "Allow" and statement["Action"] == ["sts:AssumeRole"], f"{name}: {lid}"
            assert list(statement["Principal"]) == ["Service"], f"{name}: {lid}"
            service = statement["Principal"]["Service"]
            assert service.endswith(".amazonaws.com"), f"{name}: {lid}"
            seen.add(service)
            if service in WITHOUT_SOURCE_ACCOUNT:
                assert "Condition" not in statement, f"{name}: {lid}"
            else:
                assert "account_id" in statement["Condition"]["StringEquals"]["aws:SourceAccount"], f"{name}: {lid}"
    assert WITHOUT_SOURCE_ACCOUNT <= seen  # the GPU hosts' role


def test_service_roles_refuse_a_trust_the_service_cannot_satisfy() -> None:
    from cdktn import App, TerraformStack
    from modules.parts.iam import service_role
    stack = TerraformStack(App(), "probe")
    with pytest.raises(ValueError, match="sends no aws:SourceAccount"):
        service_role(stack, "ec2", name="x", service="ec2.amazonaws.com", source_account="111122223333", statements=[])
    with pytest.raises(ValueError, match="bind the trust to the account"):
        service_role(stack, "ecs", name="y", service="ecs-tasks.amazonaws.com", source_account=None, statements=[])


def _statements(stacks: dict[str, Stack]):
    for name, stack in stacks.items():
        for type_, key in (("aws_iam_role_policy", "policy"), ("aws_s3_bucket_policy", "policy"),
                           ("aws_kms_key", "policy"), ("aws_kms_replica_key", "policy")):
            for lid, body in stack.resources(type_).items():
                for statement in json.loads(body[key])["Statement"]:
                    yield f"{name}: {type_}.{lid}", type_, statement


def test_no_wildcard_actions_and_wildcard_resources_only_where_unavoidable(stacks) -> None:
    for where, type_, statement in _statements(stacks):
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert "*" not in actions, where
        if statement["Effect"] == "Allow" and "*" in statement.get("Resource", []):
            # in a key policy "*" means "this key"; elsewhere only account-wide APIs
            assert type_.startswith("aws_kms") or set(actions) <= UNSCOPED_ACTIONS, where

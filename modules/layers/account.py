"""The `account-<name>` stack's content: what exists once per AWS account, and the pipeline's roles.

An AWS account has one Auto Scaling service-linked role, one API Gateway CloudWatch role setting
per region and one OIDC provider per issuer; an environment creating them would collide with the
next environment in that account. This stack owns them and is deployed before any environment
of the account. It also holds, per environment, the two roles GitHub Actions assumes through
OIDC: a plan role (read-only, plus exactly the reads a refresh needs) and a deploy role.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from cdktn import TerraformProvider
from constructs import Construct
from cdktn_provider_aws.api_gateway_account import ApiGatewayAccount
from cdktn_provider_aws.iam_openid_connect_provider import IamOpenidConnectProvider
from cdktn_provider_aws.iam_role import IamRole
from cdktn_provider_aws.iam_role_policy import IamRolePolicy
from cdktn_provider_aws.iam_role_policy_attachment import IamRolePolicyAttachment
from cdktn_provider_aws.iam_service_linked_role import IamServiceLinkedRole

from modules.config.settings import AccountEnvironment, AccountSettings
from modules.layers.foundation import autoscaling_role_arn
from modules.parts import iam
from modules.parts.context import Account, current_account
from modules.parts.outputs import publish
from modules.parts.storage import protect

GITHUB_ISSUER = "token.actions.githubusercontent.com"
ACCOUNT_STATE_PREFIX = "llm-platform"  # modules.engine.stacks.ACCOUNT_STATE_PREFIX: the account stack's state key
# How long the pipeline's credentials last: a job's whole run (configure-aws-credentials asks for
# role-duration-seconds; STS refuses more than the role's MaxSessionDuration). The workflows
# ask for exactly these (tests/test_workflows.py).
PLAN_SESSION_SECONDS = 3600
DEPLOY_SESSION_SECONDS = 7200
# The services whose service-linked roles the environments' resources create on first use.
LINKED_SERVICES = ("autoscaling.amazonaws.com", "ecs.amazonaws.com", "elasticache.amazonaws.com",
                   "elasticloadbalancing.amazonaws.com", "rds.amazonaws.com", "spot.amazonaws.com")
# What a deploy role may do to IAM, on its own environment's names only (PowerUserAccess grants
# everything else and no IAM writes).
IAM_WRITES = ["iam:AddRoleToInstanceProfile", "iam:AttachRolePolicy", "iam:CreateInstanceProfile",
              "iam:CreateRole", "iam:DeleteInstanceProfile", "iam:DeleteRole", "iam:DeleteRolePolicy",
              "iam:DetachRolePolicy", "iam:PassRole", "iam:PutRolePolicy", "iam:RemoveRoleFromInstanceProfile",
              "iam:TagInstanceProfile", "iam:TagRole", "iam:UntagInstanceProfile", "iam:UntagRole",
              "iam:UpdateAssumeRolePolicy", "iam:UpdateRole", "iam:UpdateRoleDescription"]


@dataclass(frozen=True)
class PipelineRoles:
    plan_role_arn: str
    deploy_role_arn: str


class AccountScope(Construct):
    def __init__(self, scope: Construct, id: str, *, settings: AccountSettings,
                 region_providers: Mapping[str, TerraformProvider]) -> None:
        super().__init__(scope, id)
        self._settings = settings
        self._account = account = current_account(self, settings.account.region)
        self._autoscaling_role(account)
        self._api_gateway_logging(account, region_providers)
        github = IamOpenidConnectProvider(self, "github", url=f"https://{GITHUB_ISSUER}",
                                          client_id_list=["sts.amazonaws.com"])
        self.roles = {env.name: self._pipeline_roles(env, github.arn) for env in settings.environments}
        publish(self, {
            "github_oidc_provider_arn": (github.arn, "GitHub Actions' OIDC identity provider in this account"),
            **{f"{name.replace('-', '_')}_{kind}_role_arn": (getattr(roles, f"{kind}_role_arn"),
                                                              f"Role the pipeline assumes to {kind} {name} "
                                                              f"(vars.AWS_{kind.upper()}_ROLE_ARN of its GitHub environment)")
               for name, roles in self.roles.items() for kind in ("plan", "deploy")},
        })

    def _autoscaling_role(self, account: Account) -> None:
        # Kept through destroy: every Auto Scaling group of the account needs it, and the
        # environments' key policies name it (modules/layers/foundation.py).
        role = IamServiceLinkedRole(
            self, "autoscaling_service_linked_role", aws_service_name="autoscaling.amazonaws.com",
            description="Launches EC2 Auto Scaling instances (one per account; GPU volumes use the KMS key)")
        protect(role, True)
        if self._settings.account.autoscaling_role == "import":
            role.import_from(autoscaling_role_arn(account))

    def _api_gateway_logging(self, account: Account, region_providers: Mapping[str, TerraformProvider]) -> None:
        """The role API Gateway writes stage logs with, set in every region of the account's environments.

        API Gateway's documented trust for this role names the service only: it is not documented
        to send aws:SourceAccount when it assumes it."""
        role = iam.service_role(self, "api_logging_role", name=f"{self._project}-apigateway-cloudwatch",
                                service="apigateway.amazonaws.com", source_account=None, statements=[])
        IamRolePolicyAttachment(self, "api_logging_policy", role=role.name, policy_arn=(
            f"arn:{account.partition}:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"))
        for region in sorted({env.region for env in self._settings.environments}):
            provider = region_providers.get(region)
            ApiGatewayAccount(self, f"api_logging_account_{region.replace('-', '_')}",
                              cloudwatch_role_arn=role.arn, provider=provider)

    @property
    def _project(self) -> str:
        return self._settings.environments[0].project if self._settings.environments else "llmlite"

    def _trust(self, provider_arn: str, github_environment: str) -> str:
        """Only this repository's workflows, in jobs of that GitHub environment, for STS."""
        repository = self._settings.account.repository
        return iam.document({
            "Effect": "Allow", "Action": ["sts:AssumeRoleWithWebIdentity"], "Principal": {"Federated": provider_arn},
            "Condition": {"StringEquals": {
                f"{GITHUB_ISSUER}:aud": "sts.amazonaws.com",
                f"{GITHUB_ISSUER}:sub": f"repo:{repository}:environment:{github_environment}"}}})

    def _account_state(self, env: AccountEnvironment) -> str | None:
        """This stack's state object, when it lives in `env`'s state bucket (drift plans it with env's role)."""
        account = self._settings.account
        if account.state_bucket and account.state_bucket == env.state_bucket:
            return f"{account.state_bucket}/{ACCOUNT_STATE_PREFIX}/account-{self._settings.name}.tfstate"
        return None

    def _pipeline_roles(self, env: AccountEnvironment, provider_arn: str) -> PipelineRoles:
        partition = self._account.partition
        managed = f"arn:{partition}:iam::aws:policy"
        plan = IamRole(self, f"{env.name}_plan_role", name=f"{env.project}-{env.name}-plan",
                       assume_role_policy=self._trust(provider_arn, f"{env.name}-plan"),
                       max_session_duration=PLAN_SESSION_SECONDS,
                       description=f"Plans {env.name} (pull requests, drift): read-only")
        IamRolePolicyAttachment(self, f"{env.name}_plan_read_only", role=plan.name,
                                policy_arn=f"{managed}/ReadOnlyAccess")
        IamRolePolicy(self, f"{env.name}_plan_refresh", name="refresh", role=plan.id,
                      policy=iam.document(*plan_statements(self._settings.account.id, partition, env,
                                                           self._account_state(env))))
        deploy = IamRole(self, f"{env.name}_deploy_role", name=f"{env.project}-{env.name}-deploy",
                         assume_role_policy=self._trust(provider_arn, env.name),
                         max_session_duration=DEPLOY_SESSION_SECONDS,
                         description=f"Applies reviewed plans to {env.name}")
        IamRolePolicyAttachment(self, f"{env.name}_deploy_power_user", role=deploy.name,
                                policy_arn=f"{managed}/PowerUserAccess")
        IamRolePolicy(self, f"{env.name}_deploy_iam", name="own-iam", role=deploy.id,
                      policy=iam.document(*deploy_statements(self._settings.account.id, partition, env)))
        return PipelineRoles(plan_role_arn=plan.arn, deploy_role_arn=deploy.arn)


def _own_keys(env: AccountEnvironment) -> dict[str, dict[str, str]]:
    """The environment's keys by their tags (every stack tags what it creates with its project and
    environment): key ids are not known before the keys exist."""
    return {"StringEquals": {"aws:ResourceTag/Project": env.project, "aws:ResourceTag/Environment": env.name}}


def plan_statements(account_id: str, partition: str, env: AccountEnvironment,
                    account_state: str | None = None) -> list[iam.Statement]:
    """What ReadOnlyAccess lacks for `terraform plan`: the secret values a refresh reads, the
    environment's keys to decrypt them (and its state), the state objects and the lock file
    (and the account stack's, `bucket/key`, when it lives in this environment's bucket)."""
    statements = [
        iam.allow(["secretsmanager:GetSecretValue"],
                  [f"arn:{partition}:secretsmanager:{env.region}:{account_id}:secret:{env.project}/{env.name}/*"],
                  sid="OwnSecretValues"),
        iam.allow(["kms:Decrypt"], [f"arn:{partition}:kms:*:{account_id}:key/*"], sid="OwnKeys",
                  conditions=_own_keys(env)),
    ]
    if env.state_bucket:
        bucket = f"arn:{partition}:s3:::{env.state_bucket}"
        state = f"{bucket}/{env.state_key_prefix}/{env.name}/"
        statements += [
            iam.allow(["s3:ListBucket"], [bucket], sid="StateList",
                      conditions={"StringLike": {"s3:prefix": [f"{env.state_key_prefix}/{env.name}/*",
                                                               f"{ACCOUNT_STATE_PREFIX}/account-*"]}}),
            iam.allow(["s3:GetObject"], [f"{state}*", *([f"arn:{partition}:s3:::{account_state}"] if account_state
                                                         else [])], sid="StateRead"),
            # The native lock file (use_lockfile): written and removed around every plan.
            iam.allow(["s3:DeleteObject", "s3:PutObject"], [f"{state}*.tflock", *(
                [f"arn:{partition}:s3:::{account_state}.tflock"] if account_state else [])], sid="StateLock"),
            iam.allow(["kms:GenerateDataKey"], [f"arn:{partition}:kms:{env.state_region}:{account_id}:key/*"],
                      sid="StateLockEncrypt", conditions=_own_keys(env)),
        ]
    return statements


def deploy_statements(account_id: str, partition: str, env: AccountEnvironment) -> list[iam.Statement]:
    """IAM writes on the environment's own names (`<project>-<env>-*`) and the service-linked
    roles its services create; PowerUserAccess covers the rest and grants no other IAM writes;
    nothing on another environment's tagged resources."""
    own = f"{env.project}-{env.name}-*"
    return [
        iam.allow(IAM_WRITES, [f"arn:{partition}:iam::{account_id}:role/{own}",
                               f"arn:{partition}:iam::{account_id}:instance-profile/{own}"], sid="OwnRoles"),
        iam.allow(["iam:CreateServiceLinkedRole"], [f"arn:{partition}:iam::{account_id}:role/aws-service-role/*"],
                  sid="ServiceLinkedRoles", conditions={"StringEquals": {"iam:AWSServiceName": list(LINKED_SERVICES)}}),
        # Environments sharing an account (prod and prod-us) keep out of each other's resources:
        # whatever carries another environment's tag (every resource does, by default tags),
        # and creating or retagging anything with one. Untagged account resources are unaffected.
        *(iam.deny(["*"], ["*"], sid=sid, conditions={"Null": {key: "false"}, "StringNotEquals": {key: env.name}})
          for sid, key in (("NotAnotherEnvironmentsResources", "aws:ResourceTag/Environment"),
                           ("NotAnotherEnvironmentsTag", "aws:RequestTag/Environment"))),
    ]

"""Stacks: the only place that knows about providers and backends.

Every stack is `<env>-<layer>`: one AWS provider (region, default tags, the environment's
account as the only allowed one, optionally a role to assume), one backend
(local by default, so synthesis needs no AWS credentials; or S3 with encryption and a
native lock file), and one layer construct.
"""

from __future__ import annotations

from typing import Any

from cdktn import LocalBackend, S3Backend, S3BackendAssumeRoleConfig, TerraformStack
from constructs import Construct
from cdktn_provider_aws.provider import AwsProvider, AwsProviderAssumeRole

from modules.config import Environment
from modules.config.models import Account

# The layer names the specification fixes; modules/engine/app.py decides which are built.
LAYERS = ("foundation", "network", "edge", "data", "gateway", "llm", "realtime", "observability")
# The bucket holding the environment's state, its own included: created with a local state
# file that is then pushed into it (`python -m modules.tools.pipeline bootstrap <env>`).
STATE_LAYER = "state"
# The Terraform releases the output is written for. cdktn checks version-gated features against
# this at synth (write-only arguments such as secret_string_wo need Terraform >= 1.11); without a
# declaration it assumes Terraform >= 1.5.7 and OpenTofu >= 1.6 and refuses them. cdktf.json
# declares the same for the CLI. The project targets Terraform only.
TARGET_VERSIONS = {"terraform": ">=1.11.0"}
APP_CONTEXT = {"targetVersions": TARGET_VERSIONS}


def require_terraform(stack: TerraformStack) -> None:
    """Terraform itself refuses a release below the floor the output is written for."""
    stack.add_override("terraform.required_version", TARGET_VERSIONS["terraform"])


class LayerStack(TerraformStack):
    def __init__(self, scope: Construct, env: Environment, layer: str, *,
                 replica_regions: tuple[str, ...] = ()) -> None:
        if layer not in (*LAYERS, STATE_LAYER):
            raise ValueError(f"unknown layer {layer!r}; known: {', '.join(LAYERS)}")
        self.stack_name = f"{env.name}-{layer}"
        super().__init__(scope, self.stack_name)
        require_terraform(self)
        # ManagedBy keeps its CDKTF-era value: a new value would update every resource's tags.
        tags = {**env.tags, "Project": env.project, "Environment": env.name, "Layer": layer,
                "ManagedBy": "cdktf"}
        region = (env.backend.region or env.region) if layer == STATE_LAYER else env.region
        # Every provider (and the state backend) refuses credentials of any other account, so
        # a plan or apply with the wrong account's credentials stops before it changes anything.
        guard: dict[str, Any] = {"allowed_account_ids": [env.account_id]}
        if env.deploy_role_arn:
            guard["assume_role"] = [AwsProviderAssumeRole(role_arn=env.deploy_role_arn,
                                                          session_name=f"cdktf-{self.stack_name}")]
        AwsProvider(self, "aws", region=region, default_tags=[{"tags": tags}], **guard)
        # Aliased providers for resources that must live in another region (replica keys).
        self.replica_providers: dict[str, AwsProvider] = {
            region: AwsProvider(self, f"aws_{region.replace('-', '_')}", alias=region.replace("-", "_"),
                                region=region, default_tags=[{"tags": tags}], **guard)
            for region in replica_regions}
        if env.backend.type == "s3":
            role = env.deploy_role_arn
            backend = S3Backend(self, bucket=env.backend.bucket or "",
                                key=f"{env.backend.key_prefix}/{env.name}/{layer}.tfstate",
                                region=env.backend.region or env.region, encrypt=True,
                                kms_key_id=env.backend.kms_key_id, allowed_account_ids=[env.account_id],
                                assume_role=S3BackendAssumeRoleConfig(
                                    role_arn=role, session_name=f"cdktf-{self.stack_name}") if role else None)
            backend.add_override("use_lockfile", True)
        else:
            # Relative to the stack's working directory (cdktf.out/stacks/<stack>), so state
            # lands in the project root and synthesized output holds no absolute paths.
            LocalBackend(self, path=f"../../../terraform.{self.stack_name}.tfstate")


ACCOUNT_STACK_PREFIX = "account-"
ACCOUNT_STATE_PREFIX = "llm-platform"  # in the account's state_bucket: <prefix>/account-<name>.tfstate


class AccountStack(TerraformStack):
    """`account-<name>`: the account's singletons and pipeline roles. One provider in the
    account's region, an aliased one per other region its environments use, and the account as
    the only one allowed; state in `state_bucket` when set."""

    def __init__(self, scope: Construct, name: str, account: Account, regions: tuple[str, ...]) -> None:
        self.stack_name = f"{ACCOUNT_STACK_PREFIX}{name}"
        super().__init__(scope, self.stack_name)
        tags = {"Project": "llm-platform", "Account": name, "Layer": "account", "ManagedBy": "cdktf"}
        guard: dict[str, Any] = {"allowed_account_ids": [account.id]}
        AwsProvider(self, "aws", region=account.region, default_tags=[{"tags": tags}], **guard)
        self.region_providers: dict[str, AwsProvider] = {
            region: AwsProvider(self, f"aws_{region.replace('-', '_')}", alias=region.replace("-", "_"),
                                region=region, default_tags=[{"tags": tags}], **guard)
            for region in regions if region != account.region}
        if account.state_bucket:
            backend = S3Backend(self, bucket=account.state_bucket,
                                key=f"{ACCOUNT_STATE_PREFIX}/{self.stack_name}.tfstate", region=account.region,
                                encrypt=True, allowed_account_ids=[account.id])
            backend.add_override("use_lockfile", True)
        else:
            LocalBackend(self, path=f"../../../terraform.{self.stack_name}.tfstate")

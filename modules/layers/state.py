"""The `<env>-state` stack's content: the bucket that holds the environment's Terraform state.

State holds secret values (the Redis AUTH token, anything without a write-only argument), so
a protected environment keeps it in S3: its own KMS key, versioning (every state recoverable),
TLS only, public access blocked, access logged. The stack keeps its own state in that bucket
too: `python -m modules.tools.pipeline bootstrap <env>` creates it with a local state file,
then pushes that state into the new bucket (README, "Deploying").
"""

from __future__ import annotations

from constructs import Construct
from cdktn_provider_aws.kms_alias import KmsAlias
from cdktn_provider_aws.kms_key import KmsKey

from modules.parts import iam
from modules.config.settings import Identity, StateSettings
from modules.parts.context import current_account
from modules.parts.outputs import publish
from modules.parts.storage import SecureBucket, access_log_bucket, protect


class StateStore(Construct):
    def __init__(self, scope: Construct, id: str, *, identity: Identity, settings: StateSettings) -> None:
        super().__init__(scope, id)
        bucket_name = settings.bucket or ""
        account = current_account(self, settings.region or identity.region)
        key = KmsKey(self, "key",
                     description=f"{identity.resource_name('state')}: encrypts Terraform state of "
                                 f"{identity.environment}",
                     enable_key_rotation=True, deletion_window_in_days=30, policy=iam.document(iam.allow(
                         ["kms:*"], ["*"], sid="AccountAdministration",
                         principals={"AWS": f"arn:{account.partition}:iam::{account.id}:root"})))
        protect(key, identity.protect_stateful)
        KmsAlias(self, "key_alias", name=f"alias/{identity.resource_name('state')}", target_key_id=key.key_id)
        access_logs = access_log_bucket(
            self, "access_logs", name=f"{bucket_name}-access-logs", account=account,
            protect_data=identity.protect_stateful, archive_after_days=settings.archive_after_days,
            expire_after_days=settings.audit_retention_days)
        # Current state stays in S3 Standard (Terraform reads it on every plan); old versions
        # are archived and expire like the environment's logs.
        state = SecureBucket(self, "bucket", name=bucket_name, kms_key_arn=key.arn,
                             protect_data=identity.protect_stateful,
                             archive_after_days=None, access_log_bucket=access_logs)
        publish(self, {
            "state_bucket": (state.name, "S3 bucket holding this environment's Terraform state (backend.bucket)"),
            "state_kms_key_arn": (key.arn, "KMS key encrypting the state objects (backend.kms_key_id, optional)"),
        })

"""S3 buckets and CloudWatch log groups with the platform's protections built in."""

from __future__ import annotations

from typing import Any

from cdktn import TerraformResource
from constructs import Construct
from cdktn_provider_aws.cloudwatch_log_group import CloudwatchLogGroup
from cdktn_provider_aws.s3_bucket import S3Bucket
from cdktn_provider_aws.s3_bucket_lifecycle_configuration import (
    S3BucketLifecycleConfiguration,
    S3BucketLifecycleConfigurationRule as Rule,
    S3BucketLifecycleConfigurationRuleAbortIncompleteMultipartUpload as AbortMultipart,
    S3BucketLifecycleConfigurationRuleExpiration as Expiration,
    S3BucketLifecycleConfigurationRuleFilter as Filter,
    S3BucketLifecycleConfigurationRuleNoncurrentVersionExpiration as NoncurrentExpiration,
    S3BucketLifecycleConfigurationRuleNoncurrentVersionTransition as NoncurrentTransition,
    S3BucketLifecycleConfigurationRuleTransition as Transition,
)
from cdktn_provider_aws.s3_bucket_logging import S3BucketLoggingA
from cdktn_provider_aws.s3_bucket_object_lock_configuration import (
    S3BucketObjectLockConfigurationA,
    S3BucketObjectLockConfigurationRuleA,
    S3BucketObjectLockConfigurationRuleDefaultRetentionA,
)
from cdktn_provider_aws.s3_bucket_ownership_controls import (
    S3BucketOwnershipControls,
    S3BucketOwnershipControlsRule,
)
from cdktn_provider_aws.s3_bucket_policy import S3BucketPolicy
from cdktn_provider_aws.s3_bucket_public_access_block import S3BucketPublicAccessBlock
from cdktn_provider_aws.s3_bucket_server_side_encryption_configuration import (
    S3BucketServerSideEncryptionConfigurationA,
    S3BucketServerSideEncryptionConfigurationRuleA,
    S3BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultA as EncryptionDefault,
)
from cdktn_provider_aws.s3_bucket_versioning import S3BucketVersioningA, S3BucketVersioningVersioningConfiguration

from modules.parts import iam
from modules.parts.compliance import skip
from modules.parts.context import Account
from modules.parts.switch import negate, only_if


NONCURRENT_VERSION_DAYS = 365  # how long an overwritten or deleted log object stays recoverable

STATEFUL_TYPES = ("aws_s3_bucket", "aws_kms_key", "aws_kms_replica_key", "aws_db_instance", "aws_dynamodb_table",
                  "aws_elasticache_replication_group", "aws_secretsmanager_secret", "aws_cognito_user_pool",
                  "aws_backup_vault")


def protect(resource: TerraformResource, enabled: bool | Any) -> None:
    """Refuse `terraform destroy` or replacement of a stateful resource in protected environments."""
    if not isinstance(enabled, bool):
        # An exported module: lifecycle blocks take no variables, so its deletion_protection
        # variable guards destroys through each resource's own protection instead.
        if resource.terraform_resource_type in STATEFUL_TYPES:
            skip(resource, "CKV_LLM_1", "Exported module: Terraform's prevent_destroy cannot follow a variable, so "
                 "the deletion_protection variable guards this resource through its own protection arguments.")
    elif enabled:
        resource.add_override("lifecycle.prevent_destroy", True)
    elif resource.terraform_resource_type in STATEFUL_TYPES:
        skip(resource, "CKV_LLM_1", "Disposable environment (protect_stateful = false): it is meant to be "
             "destroyed and rebuilt, so destroy is not blocked.")


class SecureBucket(Construct):
    """A private, versioned, encrypted, TLS-only bucket with lifecycle and access logging.

    `kms_key_arn=None` means SSE-S3: only for writers that cannot use a customer key
    (ELB access logs); the caller gives the reason. `access_log_bucket` is the target of the
    bucket's server access logs: a bucket of the same stack, or the name of one that another
    stack (applied earlier) created.
    """

    def __init__(self, scope: Construct, id: str, *, name: str, kms_key_arn: str | None,
                 protect_data: bool | Any, archive_after_days: int | None, expire_after_days: int | None = None,
                 access_log_bucket: SecureBucket | str | None = None, object_lock_days: int | None = None,
                 policy_statements: tuple[iam.Statement, ...] = (), sse_s3_reason: str = "") -> None:
        super().__init__(scope, id)
        # A module's sandbox (deletion_protection off) has no lock at all: S3 refuses to suspend
        # the versioning of a bucket with Object Lock, so such a bucket could not be destroyed.
        locked = bool(object_lock_days) and (True if isinstance(protect_data, bool) else protect_data)
        self.bucket = S3Bucket(self, "bucket", bucket=name, force_destroy=negate(protect_data),
                               object_lock_enabled=locked if object_lock_days else None)
        protect(self.bucket, protect_data)
        self.name, self.arn = self.bucket.id, self.bucket.arn

        public_access = S3BucketPublicAccessBlock(
            self, "public_access", bucket=self.name, block_public_acls=True, block_public_policy=True,
            ignore_public_acls=True, restrict_public_buckets=True)
        S3BucketOwnershipControls(self, "ownership", bucket=self.name,
                                  rule=S3BucketOwnershipControlsRule(object_ownership="BucketOwnerEnforced"))
        S3BucketVersioningA(self, "versioning", bucket=self.name,
                            versioning_configuration=S3BucketVersioningVersioningConfiguration(status="Enabled"))
        if kms_key_arn:
            default = EncryptionDefault(sse_algorithm="aws:kms", kms_master_key_id=kms_key_arn)
        else:
            default = EncryptionDefault(sse_algorithm="AES256")
            skip(self.bucket, "CKV_AWS_145", sse_s3_reason)
        self.encryption = S3BucketServerSideEncryptionConfigurationA(self, "encryption", bucket=self.name, rule=[
            S3BucketServerSideEncryptionConfigurationRuleA(apply_server_side_encryption_by_default=default,
                                                           bucket_key_enabled=bool(kms_key_arn))])
        # Versions held by an object lock cannot expire before the lock does.
        noncurrent_days = max(NONCURRENT_VERSION_DAYS, object_lock_days or 0)
        S3BucketLifecycleConfiguration(self, "lifecycle", bucket=self.name, rule=[_lifecycle_rule(
            archive_after_days, expire_after_days, noncurrent_days)])
        if isinstance(access_log_bucket, SecureBucket):
            # S3 checks at PutBucketLogging that the target's policy admits
            # logging.s3.amazonaws.com: the policy must exist first (as AWS's own templates order it).
            S3BucketLoggingA(self, "access_logging", bucket=self.name, target_bucket=access_log_bucket.name,
                             target_prefix=f"{name}/", depends_on=[access_log_bucket.policy])
        elif access_log_bucket:
            S3BucketLoggingA(self, "access_logging", bucket=self.name, target_bucket=access_log_bucket,
                             target_prefix=f"{name}/")
        if object_lock_days:
            lock = S3BucketObjectLockConfigurationA(
                self, "object_lock", bucket=self.name, rule=S3BucketObjectLockConfigurationRuleA(
                    default_retention=S3BucketObjectLockConfigurationRuleDefaultRetentionA(
                        mode="COMPLIANCE", days=object_lock_days)))
            only_if(lock, locked)
        self.policy = S3BucketPolicy(self, "policy", bucket=self.name, depends_on=[public_access],
                       policy=bucket_policy(self.arn, *policy_statements))
        skip(self.bucket, "CKV_AWS_144", "Log data is written and read in one region; versioning and "
             "S3's multi-AZ durability protect it, and cross-region copies are not required.")
        skip(self.bucket, "CKV2_AWS_62", "Nothing consumes object-created events for log archives; "
             "readers query the logs on demand.")


def _lifecycle_rule(archive_after_days: int | None, expire_after_days: int | None, noncurrent_days: int) -> Rule:
    # archive_after_days=None keeps current objects readable at once (Terraform state).
    return Rule(
        id="archive-then-expire", status="Enabled", filter=[Filter(prefix="")],
        transition=[Transition(days=archive_after_days, storage_class="GLACIER")] if archive_after_days else None,
        noncurrent_version_transition=[NoncurrentTransition(noncurrent_days=30, storage_class="GLACIER")],
        noncurrent_version_expiration=[NoncurrentExpiration(noncurrent_days=noncurrent_days)],
        abort_incomplete_multipart_upload=[AbortMultipart(days_after_initiation=7)],
        expiration=[Expiration(days=expire_after_days)] if expire_after_days else None,
    )


def bucket_policy(bucket_arn: str, *statements: iam.Statement) -> str:
    """A SecureBucket's policy document: TLS only, then `statements`."""
    return iam.document(*_tls_only(bucket_arn), *statements)


def _tls_only(bucket_arn: str) -> tuple[iam.Statement, ...]:
    objects = [bucket_arn, f"{bucket_arn}/*"]
    return (
        iam.deny_insecure_transport(["s3:*"], objects),
        iam.deny(["s3:*"], objects, sid="DenyOutdatedTls", principals={"AWS": "*"},
                 conditions={"NumericLessThan": {"s3:TlsVersion": "1.2"}}),
    )


def encrypted_log_group(scope: Construct, id: str, *, name: str, kms_key_arn: str,
                        retention_days: int, protect_data: bool = False) -> CloudwatchLogGroup:
    """A CloudWatch log group encrypted with the environment key, with retention."""
    group = CloudwatchLogGroup(scope, id, name=name, kms_key_id=kms_key_arn,
                               retention_in_days=retention_days)
    protect(group, protect_data)
    return group


def access_log_bucket(scope: Construct, id: str, *, name: str, account: Account, protect_data: bool,
                      archive_after_days: int, expire_after_days: int) -> SecureBucket:
    """The target of S3 server access logs: SSE-S3, the only encryption log delivery supports."""
    return SecureBucket(
        scope, id, name=name, kms_key_arn=None, protect_data=protect_data, archive_after_days=archive_after_days,
        expire_after_days=expire_after_days,
        sse_s3_reason="S3 server access log delivery supports only SSE-S3 on the target bucket.",
        policy_statements=(iam.allow(
            ["s3:PutObject"], [f"arn:{account.partition}:s3:::{name}/*"], sid="S3ServerAccessLogDelivery",
            principals={"Service": "logging.s3.amazonaws.com"},
            conditions={"StringEquals": {"aws:SourceAccount": account.id}}),))

"""Foundation layer: the environment's KMS key, its log buckets, the CloudTrail trail and the
registry's pull-through cache rules."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from cdktn import Fn, TerraformProvider, TerraformStack, Token

from constructs import Construct
from cdktn_provider_aws.cloudtrail import Cloudtrail
from cdktn_provider_aws.data_aws_elb_service_account import DataAwsElbServiceAccount
from cdktn_provider_aws.kms_alias import KmsAlias
from cdktn_provider_aws.kms_key import KmsKey
from cdktn_provider_aws.kms_replica_key import KmsReplicaKey

from modules.parts import iam
from modules.parts.compliance import skip
from modules.config import models
from modules.config.settings import Identity
from modules.parts.context import Account, current_account, region_fact
from modules.parts.outputs import publish
from modules.parts.registry_cache import PullThroughCache
from modules.parts.storage import SecureBucket, access_log_bucket, bucket_policy, encrypted_log_group, protect
from modules.parts.switch import attribute, built, only_if, pick_text


@dataclass(frozen=True)
class FoundationOutputs:
    kms_key_arn: str
    access_log_bucket: str
    audit_bucket: str
    audit_bucket_arn: str
    waf_log_bucket_arn: str
    alb_log_bucket: str
    replica_kms_key_arns: dict[str, str]


class Foundation(Construct):
    """One customer-managed KMS key and the S3 buckets every other layer logs into."""

    def __init__(self, scope: Construct, id: str, *, identity: Identity, settings: models.Foundation,
                 replica_providers: Mapping[str, TerraformProvider] | None = None) -> None:
        super().__init__(scope, id)
        self._identity, self._settings = identity, settings
        account = current_account(self, identity.region)
        trail_name = identity.resource_name("trail")

        replica_keys = self._keys(account, trail_name, replica_providers or {})

        def bucket(id: str, name: str, **kwargs: object) -> SecureBucket:
            return SecureBucket(self, id, name=name, protect_data=identity.protect_stateful,
                                archive_after_days=settings.archive_after_days,
                                expire_after_days=settings.audit_retention_days, **kwargs)  # type: ignore[arg-type]

        # Bucket names are global: suffix the account id.
        access_log_name = f"{identity.resource_name('access-logs')}-{account.id}"
        waf_name = f"aws-waf-logs-{identity.resource_name('waf')}-{account.id}"  # WAF requires this prefix
        alb_name = f"{identity.resource_name('alb-logs')}-{account.id}"

        access_logs = access_log_bucket(
            self, "access_logs", name=access_log_name, account=account, protect_data=identity.protect_stateful,
            archive_after_days=settings.archive_after_days, expire_after_days=settings.audit_retention_days)
        audit = bucket("audit", f"{identity.resource_name('audit')}-{account.id}", kms_key_arn=self.key.arn,
                       access_log_bucket=access_logs,
                       object_lock_days=settings.audit_retention_days if settings.audit_object_lock else None)
        waf = bucket(
            "waf_logs", waf_name, kms_key_arn=self.key.arn, access_log_bucket=access_logs,
            policy_statements=_log_delivery_statements(account, f"arn:{account.partition}:s3:::{waf_name}"))
        alb_logs = bucket(
            "alb_logs", alb_name, kms_key_arn=None, access_log_bucket=access_logs,
            sse_s3_reason="Elastic Load Balancing access log delivery supports only SSE-S3 buckets.",
            policy_statements=self._elb_log_delivery(account, f"arn:{account.partition}:s3:::{alb_name}"))

        # The trail (None without one); a module variable may still switch it off at plan.
        self.trail = self._trail(account, trail_name, bucket, access_logs) if built(settings.cloudtrail) else None
        cache = PullThroughCache(self, "registry_cache", identity=identity)

        self.outputs = FoundationOutputs(
            kms_key_arn=self.key.arn, access_log_bucket=access_logs.name, audit_bucket=audit.name,
            audit_bucket_arn=audit.arn, waf_log_bucket_arn=waf.arn, alb_log_bucket=alb_logs.name,
            replica_kms_key_arns=replica_keys)
        publish(self, {
            "kms_key_arn": (self.key.arn, "The environment's customer-managed KMS key"),
            "audit_bucket": (audit.name, "S3 bucket for audit logs (LiteLLM writes under litellm/)"),
            "waf_log_bucket": (waf.name, "S3 bucket receiving WAF logs (when the edge logs to S3)"),
            "alb_log_bucket": (alb_logs.name, "S3 bucket receiving the public ALB's access logs"),
            "access_log_bucket": (access_logs.name, "S3 bucket receiving the other buckets' server access logs"),
            "pull_through_cache_secret_arns": (cache.secret_arns, "Secrets Manager ARNs, by ECR cache prefix, of the "
                                               "upstream credentials an operator puts in once"),
        })

    def _elb_log_delivery(self, account: Account, bucket_arn: str) -> tuple[iam.Statement, ...]:
        """Who writes the ALB's access logs: the region's ELB account, in regions opened before
        August 2022; the log-delivery service principal in later ones (modules/config/regions.py).
        A region known at synth asks the provider for its account; the provider's region (an
        exported module) reads the region table and grants both, its own account standing in
        for the ELB account where the region has none (no wider than the account's IAM)."""
        if not Token.is_unresolved(account.region):
            elb = DataAwsElbServiceAccount(self, "elb_account")
            return (iam.allow(["s3:PutObject"], [f"{bucket_arn}/*"], sid="ElbAccessLogDelivery",
                              principals={"AWS": elb.arn}),)
        legacy = region_fact(self, account.region, "elb_account")
        elb_account = Token.as_string(Fn.coalesce([legacy, account.id]))  # skips ""
        return (iam.allow(["s3:PutObject"], [f"{bucket_arn}/*"], sid="ElbAccessLogDelivery",
                          principals={"AWS": f"arn:{account.partition}:iam::{elb_account}:root"}),
                iam.allow(["s3:PutObject"], [f"{bucket_arn}/AWSLogs/{account.id}/*"], sid="ElbLogDeliveryService",
                          principals={"Service": "logdelivery.elasticloadbalancing.amazonaws.com"}))

    def _keys(self, account: Account, trail_name: str,
              replica_providers: Mapping[str, TerraformProvider]) -> dict[str, str]:
        """The environment's key (self.key) and its replicas; returns replica key ARNs by region."""
        identity, settings = self._identity, self._settings
        # The key policy names the account's Auto Scaling service-linked role, which KMS requires
        # to exist: the account's stack (modules/layers/account.py) creates it before this one.
        self.key = KmsKey(
            self, "key",
            description=f"{identity.resource_name('key')}: encrypts data and logs of {identity.environment}",
            enable_key_rotation=True, deletion_window_in_days=30, multi_region=bool(replica_providers),
            policy=pick_text(self, "key_policy", settings.cloudtrail, *(
                iam.document(*_key_policy(account, trail, autoscaling=True,
                                          event_topics=[account.arn("sns", alarm_topic_name(identity))]))
                for trail in (trail_name, None))))
        # The role once lived here; it moved to the account's stack, which imports it. Leaving
        # this stack must not delete it (every Auto Scaling group of the account needs it).
        TerraformStack.of(self).add_override("removed", [{
            "from": f"aws_iam_service_linked_role.{FORMER_AUTOSCALING_ROLE}", "lifecycle": {"destroy": False}}])
        protect(self.key, identity.protect_stateful)
        replica_keys = {}
        for region, provider in replica_providers.items():
            replica = KmsReplicaKey(
                self, f"key_replica_{region.replace('-', '_')}", provider=provider, primary_key_arn=self.key.arn,
                description=f"{identity.resource_name('key')} replica for data replicated to {region}",
                deletion_window_in_days=30, policy=iam.document(*_key_policy(replace(account, region=region), None)))
            protect(replica, identity.protect_stateful)
            replica_keys[region] = replica.arn
        KmsAlias(self, "key_alias", name=f"alias/{identity.resource_name('key')}", target_key_id=self.key.key_id)
        return replica_keys

    def _trail(self, account: Account, trail_name: str,
               bucket: Callable[..., SecureBucket], access_log_bucket: SecureBucket) -> Cloudtrail:
        """The trail, its bucket, log group and delivery role. Off by a
        module variable: no trail, group or role, and the bucket's policy admits no CloudTrail."""
        identity, switch = self._identity, self._settings.cloudtrail
        trail_bucket_name = f"{identity.resource_name('trail')}-{account.id}"
        trail_bucket_arn = f"arn:{account.partition}:s3:::{trail_bucket_name}"
        trail_arn = account.arn("cloudtrail", f"trail/{trail_name}")
        source = {"StringEquals": {"aws:SourceArn": trail_arn}}
        delivery = (
            iam.allow(["s3:GetBucketAcl"], [trail_bucket_arn], sid="CloudTrailAclCheck",
                      principals={"Service": "cloudtrail.amazonaws.com"}, conditions=source),
            iam.allow(["s3:PutObject"], [f"{trail_bucket_arn}/AWSLogs/{account.id}/*"], sid="CloudTrailWrite",
                      principals={"Service": "cloudtrail.amazonaws.com"}, conditions=source),
        )
        trail_bucket = bucket("trail_bucket", trail_bucket_name, kms_key_arn=self.key.arn,
                              access_log_bucket=access_log_bucket, policy_statements=delivery)
        if not isinstance(switch, bool):
            trail_bucket.policy.policy = pick_text(self, "trail_bucket_policy", switch,
                                                   bucket_policy(trail_bucket.arn, *delivery),
                                                   bucket_policy(trail_bucket.arn))
            skip(trail_bucket.policy, "CKV_LLM_2", "The policy is one of two locals chosen by create_cloudtrail, "
                 "which the check cannot read; both deny requests without TLS (bucket_policy).")
        group = encrypted_log_group(self, "trail_log_group", name=f"/aws/cloudtrail/{trail_name}",
                                    kms_key_arn=self.key.arn, retention_days=identity.log_retention_days,
                                    protect_data=identity.protect_stateful)
        group_arn = attribute(group, "arn", switch)
        # The CloudTrail user guide's role for CloudWatch Logs delivery trusts the service alone
        # (see iam.WITHOUT_SOURCE_ACCOUNT) and writes the group's log streams.
        role = iam.service_role(
            self, "trail_role", name=identity.resource_name("trail-logs"), service="cloudtrail.amazonaws.com",
            source_account=None,
            statements=[iam.allow(["logs:CreateLogStream", "logs:PutLogEvents"], [f"{group_arn}:log-stream:*"])])
        assert role.policy is not None
        role.policy.role = attribute(role.role, "id", switch)
        # CloudTrail checks its bucket policy, the bucket's encryption and its role when the
        # trail is created: all three must exist first.
        trail = Cloudtrail(self, "trail", name=trail_name, s3_bucket_name=trail_bucket.name, is_multi_region_trail=True,
                           include_global_service_events=True, enable_log_file_validation=True, kms_key_id=self.key.arn,
                           cloud_watch_logs_group_arn=f"{group_arn}:*",
                           cloud_watch_logs_role_arn=attribute(role.role, "arn", switch),
                           depends_on=[trail_bucket.policy, trail_bucket.encryption, role.policy])
        for resource in (group, role.role, role.policy, trail):
            only_if(resource, switch)
        skip(trail, "CKV_AWS_252", "Trail delivery is watched through its CloudWatch Logs integration; "
             "per-file SNS notifications would have no subscriber.")
        return trail


def _log_delivery_statements(account: Account, bucket_arn: str) -> tuple[iam.Statement, ...]:
    """Bucket policy for CloudWatch Logs vended delivery (WAF logs) into `bucket_arn`."""
    source = {"aws:SourceAccount": account.id}
    principal = {"Service": "delivery.logs.amazonaws.com"}
    return (
        iam.allow(["s3:GetBucketAcl"], [bucket_arn], sid="LogDeliveryAclCheck", principals=principal,
                  conditions={"StringEquals": source}),
        iam.allow(["s3:PutObject"], [f"{bucket_arn}/AWSLogs/{account.id}/*"], sid="LogDeliveryWrite",
                  principals=principal, conditions={"StringEquals": source}),
    )


# The address the Auto Scaling role had in this stack (tests/test_stacks.py checks the import).
FORMER_AUTOSCALING_ROLE = "foundation_autoscaling_service_linked_role_53C42D0B"
AUTOSCALING_ROLE_PATH = "role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"


def autoscaling_role_arn(account: Account) -> str:
    """The Auto Scaling service-linked role: a fixed name and path in every account."""
    return f"arn:{account.partition}:iam::{account.id}:{AUTOSCALING_ROLE_PATH}"


def alarm_topic_name(identity: Identity) -> str:
    """The alarm topic's name (observability creates it): named here too, because this layer's
    key policy must name the topic before it exists."""
    return identity.resource_name("alarms")


def _key_policy(account: Account, trail_name: str | None, *, autoscaling: bool = False,
                event_topics: list[str] | None = None) -> list[iam.Statement]:
    """Key policy: account administration (IAM policies then grant per role), plus exactly the
    services that encrypt on their own behalf. Services that act for a caller (RDS, S3,
    DynamoDB, SQS, SNS, Secrets Manager, ElastiCache) use the caller's IAM grant.
    `event_topics`: the encrypted topics EventBridge rules deliver to (none in a replica's region)."""
    region = account.region
    # No kms:DescribeKey: it carries no encryption context, so the condition below excludes it.
    use = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*"]
    statements = [
        iam.allow(["kms:*"], ["*"], sid="AccountAdministration",
                  principals={"AWS": f"arn:{account.partition}:iam::{account.id}:root"}),
        iam.allow(use, ["*"], sid="CloudWatchLogs", principals={"Service": f"logs.{region}.amazonaws.com"},
                  conditions={"ArnLike": {"kms:EncryptionContext:aws:logs:arn":
                                          f"arn:{account.partition}:logs:{region}:{account.id}:*"}}),
        iam.allow(["kms:GenerateDataKey*", "kms:Decrypt"], ["*"], sid="LogDelivery",
                  principals={"Service": "delivery.logs.amazonaws.com"},
                  conditions={"StringEquals": {"aws:SourceAccount": account.id}}),
        # Alarms publish to the KMS-encrypted alarm topic as themselves and name their account
        # to KMS.
        iam.allow(["kms:GenerateDataKey*", "kms:Decrypt"], ["*"], sid="AlarmsToEncryptedTopics",
                  principals={"Service": "cloudwatch.amazonaws.com"},
                  conditions={"StringEquals": {"aws:SourceAccount": account.id}}),
    ]
    if event_topics:
        # EventBridge does not name its account to KMS (SNS developer guide: aws:SourceAccount
        # and aws:SourceArn are not supported for EventBridge-to-encrypted-topic delivery), but
        # SNS encrypts with the topic's ARN as encryption context (aws:sns:topicArn): the key
        # serves EventBridge for this environment's topics only.
        statements.append(iam.allow(
            ["kms:GenerateDataKey*", "kms:Decrypt"], ["*"], sid="EventsToEncryptedTopics",
            principals={"Service": "events.amazonaws.com"},
            conditions={"StringEquals": {"kms:EncryptionContext:aws:sns:topicArn": event_topics}}))
    if autoscaling:
        # EC2 Auto Scaling launches the GPU hosts with this key's encrypted root volumes as its
        # service-linked role, which IAM policies cannot grant anything: the key must (Auto
        # Scaling user guide, "Required AWS KMS key policy for use with encrypted volumes").
        role = {"AWS": autoscaling_role_arn(account)}
        statements += [
            iam.allow(["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"],
                      ["*"], sid="AutoScalingEncryptedVolumes", principals=role),
            iam.allow(["kms:CreateGrant"], ["*"], sid="AutoScalingEncryptedVolumeGrants", principals=role,
                      conditions={"Bool": {"kms:GrantIsForAWSResource": True}}),
        ]
    if trail_name:
        trail = {"aws:SourceArn": account.arn("cloudtrail", f"trail/{trail_name}")}
        cloudtrail = {"Service": "cloudtrail.amazonaws.com"}
        statements += [
            iam.allow(["kms:GenerateDataKey*"], ["*"], sid="CloudTrailEncrypt", principals=cloudtrail,
                      conditions={"StringLike": {"kms:EncryptionContext:aws:cloudtrail:arn":
                                                 f"arn:{account.partition}:cloudtrail:*:{account.id}:trail/*"},
                                  "StringEquals": trail}),
            # DescribeKey carries no encryption context, so it needs its own statement.
            iam.allow(["kms:DescribeKey"], ["*"], sid="CloudTrailDescribeKey", principals=cloudtrail,
                      conditions={"StringEquals": trail}),
        ]
    return statements

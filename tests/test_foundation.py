"""OBS-1, OBS-2, OBS-6 and SEC-4 protections, read from the synthesized foundation stacks."""

from __future__ import annotations

import json

import pytest

from conftest import ENVIRONMENTS, Stack
from modules.config import load_environment


@pytest.fixture(params=ENVIRONMENTS)
def foundation(request, stacks) -> Stack:
    return stacks[f"{request.param}-foundation"]


def _bucket_parts(stack: Stack, type_: str) -> dict[str, dict]:
    """Bucket-attached resources keyed by the bucket they configure."""
    return {r["bucket"]: r for r in stack.resources(type_).values()}


def test_one_rotating_customer_key_per_environment(foundation: Stack) -> None:
    key = foundation.one("aws_kms_key")
    assert key["enable_key_rotation"] is True
    assert key["deletion_window_in_days"] == 30


def test_key_policy_admits_exactly_the_services_that_encrypt_on_their_own(stacks) -> None:
    policy = json.loads(stacks["prod-foundation"].one("aws_kms_key")["policy"])
    services = set()
    for statement in policy["Statement"]:
        named = statement["Principal"].get("Service", [])
        services |= {named} if isinstance(named, str) else set(named)
    # S3 server access logs go to an SSE-S3 bucket, so S3 log delivery needs no key grant;
    # alarms and EventBridge publish to the encrypted alarm topic as themselves
    assert services == {"logs.eu-west-2.amazonaws.com", "delivery.logs.amazonaws.com", "cloudtrail.amazonaws.com",
                        "cloudwatch.amazonaws.com", "events.amazonaws.com"}
    logs = next(s for s in policy["Statement"] if s["Sid"] == "CloudWatchLogs")
    assert "kms:EncryptionContext:aws:logs:arn" in logs["Condition"]["ArnLike"]
    # DescribeKey carries no encryption context: under that condition it could never be allowed
    assert not [a for a in logs["Action"] if a.startswith("kms:Describe")]
    # dev has no trail, so CloudTrail is not admitted there
    dev = json.loads(stacks["dev-foundation"].one("aws_kms_key")["policy"])
    assert "cloudtrail.amazonaws.com" not in json.dumps(dev)


def test_every_bucket_is_private_versioned_encrypted_tls_only_and_archived(foundation: Stack) -> None:
    buckets = {foundation.ref("aws_s3_bucket", lid) for lid in foundation.resources("aws_s3_bucket")}
    assert len(buckets) == (5 if foundation.name == "prod-foundation" else 4)  # + the trail bucket
    public = _bucket_parts(foundation, "aws_s3_bucket_public_access_block")
    ownership = _bucket_parts(foundation, "aws_s3_bucket_ownership_controls")
    versioning = _bucket_parts(foundation, "aws_s3_bucket_versioning")
    encryption = _bucket_parts(foundation, "aws_s3_bucket_server_side_encryption_configuration")
    lifecycle = _bucket_parts(foundation, "aws_s3_bucket_lifecycle_configuration")
    policies = _bucket_parts(foundation, "aws_s3_bucket_policy")
    for bucket in buckets:
        assert all(public[bucket][k] for k in ("block_public_acls", "block_public_policy", "ignore_public_acls",
                                                "restrict_public_buckets"))
        assert ownership[bucket]["rule"]["object_ownership"] == "BucketOwnerEnforced"
        assert versioning[bucket]["versioning_configuration"]["status"] == "Enabled"
        assert encryption[bucket]["rule"][0]["apply_server_side_encryption_by_default"]["sse_algorithm"] in (
            "aws:kms", "AES256")
        (rule,) = lifecycle[bucket]["rule"]
        assert rule["transition"] == [{"days": 90, "storage_class": "GLACIER"}]
        assert rule["expiration"] == [{"days": 2555}]  # seven years
        # overwritten versions stay recoverable a year, or as long as an object lock holds them
        locked = any(lock["bucket"] == bucket for lock in
                     foundation.resources("aws_s3_bucket_object_lock_configuration").values())
        assert rule["noncurrent_version_expiration"] == [{"noncurrent_days": 2555 if locked else 365}]
        statements = json.loads(policies[bucket]["policy"])["Statement"]
        deny = next(s for s in statements if s["Sid"] == "DenyInsecureTransport")
        assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_only_the_log_delivery_targets_use_sse_s3(foundation: Stack) -> None:
    """ELB and S3 server access-log delivery accept SSE-S3 only; every other bucket uses the
    environment key."""
    names = {foundation.ref("aws_s3_bucket", lid): b["bucket"] for lid, b in foundation.resources("aws_s3_bucket").items()}
    sse_s3 = [names[e["bucket"]] for e in foundation.resources("aws_s3_bucket_server_side_encryption_configuration").values()
              if e["rule"][0]["apply_server_side_encryption_by_default"]["sse_algorithm"] == "AES256"]
    assert sorted(name.split("-")[-3] for name in sse_s3) == ["access", "alb"]  # …-access-logs-…, …-alb-logs-…
    skips = {b["bucket"]: b["//"]["checkov_skip"].get("CKV_AWS_145", "")
             for b in foundation.resources("aws_s3_bucket").values()}
    assert all("supports only SSE-S3" in skips[name] for name in sse_s3)


def test_buckets_log_access_to_the_access_log_bucket(foundation: Stack) -> None:
    buckets = foundation.resources("aws_s3_bucket")
    access = next(lid for lid, b in buckets.items() if "-access-logs-" in b["bucket"])
    logged = {r["bucket"] for r in foundation.resources("aws_s3_bucket_logging").values()
              if r["target_bucket"] == foundation.ref("aws_s3_bucket", access)}
    assert logged == {foundation.ref("aws_s3_bucket", lid) for lid in buckets if lid != access}


def test_waf_bucket_name_has_the_prefix_waf_requires(foundation: Stack) -> None:
    assert any(b["bucket"].startswith("aws-waf-logs-") for b in foundation.resources("aws_s3_bucket").values())


def test_prod_audit_bucket_has_compliance_object_lock(stacks) -> None:
    prod = stacks["prod-foundation"]
    lock = prod.one("aws_s3_bucket_object_lock_configuration")
    assert lock["rule"]["default_retention"] == {"mode": "COMPLIANCE", "days": 2555}
    assert not stacks["dev-foundation"].resources("aws_s3_bucket_object_lock_configuration")


def test_dev_is_disposable_and_says_so(stacks) -> None:
    dev = stacks["dev-foundation"]
    for body in list(dev.resources("aws_s3_bucket").values()) + list(dev.resources("aws_kms_key").values()):
        assert "lifecycle" not in body
        assert "Disposable environment" in body["//"]["checkov_skip"]["CKV_LLM_1"]


def test_trail_waits_for_its_bucket_policy_encryption_and_role_policy(stacks) -> None:
    foundation = stacks["prod-foundation"]
    trail = foundation.one("aws_cloudtrail")
    bucket = next(lid for lid, b in foundation.resources("aws_s3_bucket").items() if "-trail-" in b["bucket"])
    ref = foundation.ref("aws_s3_bucket", bucket)
    policy = next(lid for lid, p in foundation.resources("aws_s3_bucket_policy").items() if p["bucket"] == ref)
    encryption = next(lid for lid, e in foundation.resources(
        "aws_s3_bucket_server_side_encryption_configuration").items() if e["bucket"] == ref)
    (role_policy,) = [lid for lid in foundation.resources("aws_iam_role_policy") if "trail_role" in lid]
    assert sorted(trail["depends_on"]) == sorted([
        f"aws_s3_bucket_policy.{policy}", f"aws_s3_bucket_server_side_encryption_configuration.{encryption}",
        f"aws_iam_role_policy.{role_policy}"])


def test_cloudtrail_may_describe_the_key_without_an_encryption_context(stacks) -> None:
    """DescribeKey carries no encryption context: a context condition would deny it."""
    policy = json.loads(stacks["prod-foundation"].one("aws_kms_key")["policy"])
    statements = {s["Sid"]: s for s in policy["Statement"]}
    describe = statements["CloudTrailDescribeKey"]
    assert describe["Action"] == ["kms:DescribeKey"]
    assert list(describe["Condition"]) == ["StringEquals"]
    assert list(describe["Condition"]["StringEquals"]) == ["aws:SourceArn"]
    encrypt = statements["CloudTrailEncrypt"]
    assert encrypt["Action"] == ["kms:GenerateDataKey*"]
    assert "kms:EncryptionContext:aws:cloudtrail:arn" in encrypt["Condition"]["StringLike"]


def test_one_trail_per_account_by_default(stacks) -> None:
    """prod-us shares prod's account, whose multi-region trail records us-west-2 too."""
    assert [name for name, stack in stacks.items() if stack.resources("aws_cloudtrail")] == ["prod-foundation"]


def test_prod_trail_is_multi_region_validated_encrypted(stacks) -> None:
    trail = stacks["prod-foundation"].one("aws_cloudtrail")
    assert trail["is_multi_region_trail"] and trail["enable_log_file_validation"]
    assert trail["kms_key_id"].startswith("${aws_kms_key.")
    assert trail["cloud_watch_logs_group_arn"].endswith(":*")
    assert not stacks["dev-foundation"].resources("aws_cloudtrail")


AUTOSCALING_ROLE = "role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"


def test_the_auto_scaling_role_may_use_the_key_for_encrypted_gpu_volumes(foundation: Stack) -> None:
    """FACT-1: the Auto Scaling service-linked role launches the GPU hosts, whose root volumes
    use this key; without these two statements every launch fails."""
    statements = {s["Sid"]: s for s in json.loads(foundation.one("aws_kms_key")["policy"])["Statement"]}
    use, grants = statements["AutoScalingEncryptedVolumes"], statements["AutoScalingEncryptedVolumeGrants"]
    for statement in (use, grants):
        principal = statement["Principal"]["AWS"]
        assert principal.startswith("arn:${data.aws_partition.") and principal.endswith(f":{AUTOSCALING_ROLE}")
        assert "account_id" in principal
    assert set(use["Action"]) == {"kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*",
                                  "kms:DescribeKey"}
    assert grants["Action"] == ["kms:CreateGrant"]
    assert grants["Condition"] == {"Bool": {"kms:GrantIsForAWSResource": True}}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_no_environment_creates_the_accounts_auto_scaling_role(stacks, env) -> None:
    """The role is the account's (account-<name> imports it); the foundation that created it
    forgets it without deleting it (a `removed` block, Terraform >= 1.7)."""
    stack = stacks[f"{env}-foundation"]
    assert stack.resources("aws_iam_service_linked_role") == {}
    assert "depends_on" not in stack.one("aws_kms_key")
    assert stack.doc["removed"] == [{"from": "aws_iam_service_linked_role.foundation_autoscaling_service_linked_role_53C42D0B",
                                     "lifecycle": {"destroy": False}}]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_eventbridge_may_use_the_key_only_for_the_topics_its_rules_deliver_to(stacks, env: str) -> None:
    """SNS encrypts with the topic's ARN as encryption context; EventBridge names no account to
    KMS, so the topic is what binds its statement to this environment."""
    policy = json.loads(stacks[f"{env}-foundation"].one("aws_kms_key")["policy"])
    (events,) = [s for s in policy["Statement"] if s["Principal"].get("Service") == "events.amazonaws.com"]
    allowed = events["Condition"]["StringEquals"]["kms:EncryptionContext:aws:sns:topicArn"]
    assert "aws:SourceAccount" not in json.dumps(events)
    # every SNS topic an EventBridge rule of the environment targets, by the name it is created with
    observability = stacks[f"{env}-observability"]
    topics = {f"${{aws_sns_topic.{lid}.arn}}": t["name"] for lid, t in observability.resources("aws_sns_topic").items()}
    targeted = [topics[t["arn"]] for s in stacks.values() if s.name.startswith(f"{env}-")
                for t in s.resources("aws_cloudwatch_event_target").values() if t["arn"] in topics]
    assert targeted and sorted(arn.rsplit(":", 1)[1] for arn in allowed) == sorted(set(targeted))
    assert all(arn.startswith("arn:${data.aws_partition.") and ":sns:" in arn for arn in allowed)


def test_replica_keys_serve_no_eventbridge_delivery(stacks) -> None:
    """No topic or rule lives in a replica's region."""
    replicas = [k for s in stacks.values() for k in s.resources("aws_kms_replica_key").values()]
    assert replicas
    for replica in replicas:
        services = json.dumps([s["Principal"] for s in json.loads(replica["policy"])["Statement"]])
        assert "events.amazonaws.com" not in services


def test_trail_logs_role_trusts_cloudtrail_as_its_guide_documents(stacks) -> None:
    """The CloudTrail user guide's CloudWatch Logs role: the service alone is trusted (the role
    policy supports neither aws:SourceArn nor aws:SourceAccount) and it writes log streams."""
    foundation = stacks["prod-foundation"]
    (role,) = [r for lid, r in foundation.resources("aws_iam_role").items() if "trail_role" in lid]
    (trust,) = json.loads(role["assume_role_policy"])["Statement"]
    assert trust["Principal"] == {"Service": "cloudtrail.amazonaws.com"} and "Condition" not in trust
    (policy,) = [p for lid, p in foundation.resources("aws_iam_role_policy").items() if "trail_role" in lid]
    (statement,) = json.loads(policy["policy"])["Statement"]
    (resource,) = statement["Resource"]
    assert resource.startswith("${aws_cloudwatch_log_group.foundation_trail_log_group") and resource.endswith(
        ".arn}:log-stream:*")


def test_pull_through_caches_for_ghcr_and_docker_hub_hold_no_credentials_in_code_or_state(foundation: Stack) -> None:
    """ECR user guide: an upstream that requires authentication reads a Secrets Manager secret whose
    name begins with ecr-pullthroughcache/; the secret is created without a value (an operator puts it)."""
    env = load_environment(foundation.name.removesuffix("-foundation"))
    rules = {r["ecr_repository_prefix"]: r for r in foundation.resources("aws_ecr_pull_through_cache_rule").values()}
    assert {prefix: r["upstream_registry_url"] for prefix, r in rules.items()} == {
        "ghcr": "ghcr.io", "docker-hub": "registry-1.docker.io"}
    secrets = foundation.resources("aws_secretsmanager_secret")
    for prefix, rule in rules.items():
        (secret_id,) = [lid for lid, s in secrets.items()
                        if s["name"] == f"ecr-pullthroughcache/llmlite-{env.name}-{prefix}"]
        assert rule["credential_arn"] == foundation.ref("aws_secretsmanager_secret", secret_id, "arn")
    assert foundation.resources("aws_secretsmanager_secret_version") == {}  # no value, ever
    # The images of the environment come through these caches (config rule).
    registry = f"{env.account_id}.dkr.ecr.{env.region}.amazonaws.com"
    assert env.gateway.image.startswith(f"{registry}/ghcr/")
    assert env.llm.vllm_image.startswith(f"{registry}/docker-hub/")

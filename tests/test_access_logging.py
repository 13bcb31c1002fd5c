"""S3 server access logging is configured only after its target admits the log delivery."""

from __future__ import annotations

import re


def test_access_logging_waits_for_the_target_buckets_log_delivery_policy(stacks) -> None:
    # PutBucketLogging checks that the target bucket's policy admits logging.s3.amazonaws.com
    # (moto refuses it otherwise); without an explicit dependency Terraform runs both in parallel.
    checked = 0
    for stack in stacks.values():
        policies = {p["bucket"]: f"aws_s3_bucket_policy.{key}"
                    for key, p in stack.resources("aws_s3_bucket_policy").items()}
        for key, logging in stack.resources("aws_s3_bucket_logging").items():
            target = re.fullmatch(r"\$\{(aws_s3_bucket\.[^.]+)\.id\}", logging["target_bucket"])
            if not target:
                continue  # a bucket of an earlier stack: applied before this one
            policy = policies[f"${{{target.group(1)}.id}}"]
            admits = stack.doc["resource"]["aws_s3_bucket_policy"][policy.split(".")[1]]["policy"]
            assert "logging.s3.amazonaws.com" in admits, f"{stack.name}: {policy} does not admit log delivery"
            assert policy in logging.get("depends_on", []), f"{stack.name}: {key} does not wait for {policy}"
            checked += 1
    assert checked >= 3 * 3  # audit, WAF and ALB log buckets of every environment, plus state buckets

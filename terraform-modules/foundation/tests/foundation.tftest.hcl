# terraform test: plan-only runs against a mocked AWS provider (no credentials, no AWS calls).
mock_provider "aws" {
  mock_data "aws_caller_identity" {
    defaults = {
      account_id = "444455556666"
    }
  }
  mock_data "aws_partition" {
    defaults = {
      partition = "aws"
    }
  }
}

run "buckets_are_named_per_project_environment_and_account" {
  command = plan

  variables {
    project     = "acme"
    environment = "sandbox"
  }

  assert {
    condition     = aws_s3_bucket.foundation_audit_bucket_F1914CDE.bucket == "acme-sandbox-audit-444455556666"
    error_message = "The audit bucket is not named <project>-<environment>-audit-<account>."
  }
  assert {
    condition     = startswith(aws_s3_bucket.foundation_waf_logs_bucket_707C31BE.bucket, "aws-waf-logs-")
    error_message = "WAF logs can only be delivered to a bucket named aws-waf-logs-*."
  }
  assert {
    condition     = aws_kms_key.foundation_key_B320B12C.enable_key_rotation
    error_message = "The platform key does not rotate."
  }
}

run "a_retention_that_is_not_a_cloudwatch_value_is_refused" {
  command = plan

  variables {
    log_retention_days = 100
  }

  expect_failures = [var.log_retention_days]
}

run "a_sandbox_empties_its_buckets_and_has_no_lock" {
  command = plan

  variables {
    deletion_protection = false
  }

  assert {
    condition     = aws_s3_bucket.foundation_audit_bucket_F1914CDE.force_destroy && aws_s3_bucket.foundation_access_logs_bucket_710BA06E.force_destroy
    error_message = "Without deletion_protection the buckets still refuse a destroy while they hold objects."
  }
  assert {
    condition     = length(aws_s3_bucket_object_lock_configuration.foundation_audit_object_lock_486468F9) == 0 && !aws_s3_bucket.foundation_audit_bucket_F1914CDE.object_lock_enabled
    error_message = "Without deletion_protection the audit bucket is still locked (S3 refuses to suspend a locked bucket's versioning, so it cannot be destroyed)."
  }
}

run "a_protected_audit_bucket_locks_in_compliance_mode" {
  command = plan

  assert {
    condition     = !aws_s3_bucket.foundation_audit_bucket_F1914CDE.force_destroy && aws_s3_bucket.foundation_audit_bucket_F1914CDE.object_lock_enabled && aws_s3_bucket_object_lock_configuration.foundation_audit_object_lock_486468F9[0].rule[0].default_retention[0].mode == "COMPLIANCE"
    error_message = "The protected default lost its COMPLIANCE lock or empties its buckets on destroy."
  }
}

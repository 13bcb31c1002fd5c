# terraform test: plan-only runs against a mocked AWS provider (no credentials, no AWS calls).
mock_provider "aws" {
  mock_data "aws_region" {
    defaults = {
      id = "eu-west-2"
    }
  }
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

run "key_policy_principals_and_arns_follow_the_provider_region" {
  command = plan

  override_data {
    target = data.aws_region.region
    values = {
      id = "ap-southeast-2"
    }
  }

  # The bucket policy's TLS statement names the bucket's ARN, known after apply.
  override_resource {
    target          = aws_s3_bucket.foundation_alb_logs_bucket_08F7276B
    override_during = plan
    values = {
      arn = "arn:aws:s3:::alb-logs"
    }
  }

  assert {
    condition = length([for s in jsondecode(aws_kms_key.foundation_key_B320B12C.policy).Statement : s
      if try(s.Principal.Service == "logs.ap-southeast-2.amazonaws.com"
    && s.Condition.ArnLike["kms:EncryptionContext:aws:logs:arn"] == "arn:aws:logs:ap-southeast-2:444455556666:*", false)]) == 1
    error_message = "The key policy's CloudWatch Logs principal or log ARN is not the provider region's."
  }
  assert {
    condition     = strcontains(aws_kms_key.foundation_key_B320B12C.policy, "arn:aws:cloudtrail:ap-southeast-2:444455556666:trail/")
    error_message = "The key policy's trail ARN is not the provider region's."
  }
  assert {
    condition     = !strcontains(aws_kms_key.foundation_key_B320B12C.policy, "eu-west-2")
    error_message = "The key policy names the exported environment's region."
  }
  assert {
    condition = contains([for s in jsondecode(aws_s3_bucket_policy.foundation_alb_logs_policy_9A7C58F3.policy).Statement :
    try(s.Principal.AWS, "")], "arn:aws:iam::783225319266:root")
    error_message = "ALB access logs are not delivered by the region's Elastic Load Balancing account."
  }
}

run "a_region_opened_since_2022_takes_alb_logs_from_the_delivery_service" {
  command = plan

  override_data {
    target = data.aws_region.region
    values = {
      id = "ap-southeast-4"
    }
  }

  # The bucket policy's TLS statement names the bucket's ARN, known after apply.
  override_resource {
    target          = aws_s3_bucket.foundation_alb_logs_bucket_08F7276B
    override_during = plan
    values = {
      arn = "arn:aws:s3:::alb-logs"
    }
  }

  assert {
    condition = length([for s in jsondecode(aws_s3_bucket_policy.foundation_alb_logs_policy_9A7C58F3.policy).Statement : s
      if try(s.Principal.Service == "logdelivery.elasticloadbalancing.amazonaws.com"
    && s.Resource == ["arn:aws:s3:::${aws_s3_bucket.foundation_alb_logs_bucket_08F7276B.bucket}/AWSLogs/444455556666/*"], false)]) == 1
    error_message = "ALB access logs in a region without an ELB account are not granted to the log-delivery service."
  }
  assert {
    condition = !contains([for s in jsondecode(aws_s3_bucket_policy.foundation_alb_logs_policy_9A7C58F3.policy).Statement :
    try(s.Principal.AWS, "")], "arn:aws:iam::783225319266:root")
    error_message = "Another region's Elastic Load Balancing account may write the ALB logs."
  }
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

run "without_a_trail_nothing_admits_cloudtrail" {
  command = plan

  variables {
    create_cloudtrail = false
    cloudtrail_arn    = "arn:aws:cloudtrail:us-east-1:999988887777:trail/organization"
  }

  override_resource {
    target          = aws_s3_bucket.foundation_trail_bucket_5726A11F
    override_during = plan
    values = {
      arn = "arn:aws:s3:::trail"
    }
  }

  assert {
    condition = (length(aws_cloudtrail.foundation_trail_4B2AE661) == 0 && length(aws_cloudwatch_log_group.foundation_trail_log_group_61B531F0) == 0
    && length(aws_iam_role.foundation_trail_role_EF8A95C9) == 0 && length(aws_iam_role_policy.foundation_trail_role_policy_13BD9C44) == 0)
    error_message = "A trail, its log group or its delivery role is planned with create_cloudtrail = false."
  }
  assert {
    condition     = !strcontains(aws_kms_key.foundation_key_B320B12C.policy, "cloudtrail")
    error_message = "The key policy still admits CloudTrail without a trail."
  }
  assert {
    condition     = !strcontains(aws_s3_bucket_policy.foundation_trail_bucket_policy_22518F07.policy, "cloudtrail")
    error_message = "The trail bucket's policy still admits CloudTrail without a trail."
  }
  assert {
    condition     = output.cloudtrail_arn == var.cloudtrail_arn
    error_message = "cloudtrail_arn does not give back the account's existing trail."
  }
}

run "the_module_trail_delivers_to_its_group_through_its_role" {
  command = plan

  override_resource {
    target          = aws_cloudwatch_log_group.foundation_trail_log_group_61B531F0
    override_during = plan
    values = {
      arn = "arn:aws:logs:eu-west-2:444455556666:log-group:/aws/cloudtrail/trail"
    }
  }
  override_resource {
    target          = aws_iam_role.foundation_trail_role_EF8A95C9
    override_during = plan
    values = {
      arn = "arn:aws:iam::444455556666:role/trail-logs"
    }
  }

  assert {
    condition = (aws_cloudtrail.foundation_trail_4B2AE661[0].cloud_watch_logs_group_arn == "${aws_cloudwatch_log_group.foundation_trail_log_group_61B531F0[0].arn}:*"
    && aws_cloudtrail.foundation_trail_4B2AE661[0].cloud_watch_logs_role_arn == aws_iam_role.foundation_trail_role_EF8A95C9[0].arn)
    error_message = "The trail does not deliver to its own log group through its own role."
  }
  assert {
    condition     = strcontains(aws_kms_key.foundation_key_B320B12C.policy, "CloudTrailEncrypt")
    error_message = "The key policy does not admit the module's trail."
  }
}

run "a_created_and_an_existing_trail_at_once_are_refused" {
  command = plan

  variables {
    cloudtrail_arn = "arn:aws:cloudtrail:us-east-1:999988887777:trail/organization"
  }

  expect_failures = [var.cloudtrail_arn]
}

# terraform test: plan-only runs against a mocked AWS provider (no credentials, no AWS calls).
mock_provider "aws" {
  mock_data "aws_region" {
    defaults = {
      id = "us-west-2"
    }
  }
}

variables {
  certificate_arn               = "arn:aws:acm:us-west-2:444455556666:certificate/0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
  foundation_alb_log_bucket     = "alb-logs-111122223333"
  foundation_waf_log_bucket_arn = "arn:aws:s3:::aws-waf-logs-111122223333"
  network_nat_public_ips        = ["198.51.100.10", "198.51.100.11"]
  network_public_subnet_ids     = ["subnet-0a", "subnet-0b"]
  network_security_group_ids    = { alb = "sg-01", gateway = "sg-02", database = "sg-03", redis = "sg-04", lambda = "sg-05", llm_alb = "sg-06", gpu = "sg-07" }
  network_vpc_id                = "vpc-01"
}

run "https_with_the_given_certificate_and_plain_http_redirected" {
  command = plan

  variables {
    project         = "acme"
    environment     = "staging"
    certificate_arn = "arn:aws:acm:us-west-2:444455556666:certificate/0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
  }

  assert {
    condition     = aws_lb_listener.edge_https_listener_1F8125E2.certificate_arn == var.certificate_arn
    error_message = "The HTTPS listener does not serve the given certificate."
  }
  assert {
    condition     = aws_lb_listener.edge_https_listener_1F8125E2.ssl_policy == "ELBSecurityPolicy-TLS13-1-2-2021-06"
    error_message = "The HTTPS listener does not require TLS 1.2 or later."
  }
  assert {
    condition     = one(aws_lb_listener.edge_http_redirect_listener_3A585E19.default_action).type == "redirect"
    error_message = "Plain HTTP is not redirected."
  }
  assert {
    condition     = aws_lb.edge_alb_C6312A24.name == "acme-staging-alb" && aws_wafv2_web_acl.edge_web_acl_1FE8432E[0].name == "acme-staging-waf"
    error_message = "The ALB and the web ACL are not named after project and environment."
  }
  assert {
    condition     = aws_lb.edge_alb_C6312A24.drop_invalid_header_fields
    error_message = "The ALB forwards invalid headers."
  }
}

run "a_certificate_that_is_not_an_acm_arn_is_refused" {
  command = plan

  variables {
    certificate_arn = "arn:aws:iam::444455556666:server-certificate/edge"
  }

  expect_failures = [var.certificate_arn]
}

run "a_certificate_of_another_region_is_refused" {
  command = plan

  variables {
    certificate_arn = "arn:aws:acm:eu-west-2:444455556666:certificate/0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
  }

  expect_failures = [var.certificate_arn]
}

run "a_vpc_of_your_own_needs_every_security_group_role" {
  command = plan

  variables {
    network_security_group_ids = { alb = "sg-01", gateway = "sg-02" }
  }

  expect_failures = [var.network_security_group_ids]
}

run "a_vpc_of_your_own_needs_a_public_subnet_in_two_zones" {
  command = plan

  variables {
    network_public_subnet_ids = ["subnet-0a"]
  }

  expect_failures = [var.network_public_subnet_ids]
}

run "an_existing_web_acl_is_attached_and_none_is_created" {
  command = plan

  variables {
    create_waf  = false
    web_acl_arn = "arn:aws:wafv2:us-west-2:444455556666:regional/webacl/acme-shared/a1b2c3d4-5678-90ab-cdef-111122223333"
  }

  assert {
    condition = (length(aws_wafv2_web_acl.edge_web_acl_1FE8432E) == 0 && length(aws_wafv2_ip_set.edge_platform_egress_ip_set_BB23ECBE) == 0
    && length(aws_wafv2_web_acl_logging_configuration.edge_waf_logging_D24170A8) == 0)
    error_message = "A web ACL, IP set or WAF logging is planned although an existing web ACL is attached."
  }
  assert {
    condition     = aws_wafv2_web_acl_association.edge_web_acl_association_7D7C4ACA.web_acl_arn == var.web_acl_arn
    error_message = "The ALB is not associated with the given web ACL."
  }
  assert {
    condition     = output.web_acl_arn == var.web_acl_arn && output.web_acl_name == "acme-shared"
    error_message = "The outputs (read by the observability module's WAF alarms) do not name the attached web ACL."
  }
}

run "the_created_web_acl_is_attached_and_logged" {
  command = plan

  override_resource {
    target          = aws_wafv2_web_acl.edge_web_acl_1FE8432E
    override_during = plan
    values = {
      arn = "arn:aws:wafv2:us-west-2:444455556666:regional/webacl/acme-staging-waf/0000"
    }
  }

  assert {
    condition = (aws_wafv2_web_acl_association.edge_web_acl_association_7D7C4ACA.web_acl_arn == aws_wafv2_web_acl.edge_web_acl_1FE8432E[0].arn
    && aws_wafv2_web_acl_logging_configuration.edge_waf_logging_D24170A8[0].resource_arn == aws_wafv2_web_acl.edge_web_acl_1FE8432E[0].arn)
    error_message = "The created web ACL is not the ALB's, or not logged."
  }
  assert {
    condition     = output.web_acl_name == aws_wafv2_web_acl.edge_web_acl_1FE8432E[0].name
    error_message = "web_acl_name is not the created web ACL's name."
  }
}

run "creating_and_attaching_a_web_acl_at_once_is_refused" {
  command = plan

  variables {
    web_acl_arn = "arn:aws:wafv2:us-west-2:444455556666:regional/webacl/acme-shared/a1b2c3d4-5678-90ab-cdef-111122223333"
  }

  expect_failures = [var.web_acl_arn]
}

run "an_alb_without_any_web_acl_is_refused" {
  command = plan

  variables {
    create_waf = false
  }

  expect_failures = [var.web_acl_arn]
}

run "a_web_acl_arn_of_another_service_is_refused" {
  command = plan

  variables {
    create_waf  = false
    web_acl_arn = "arn:aws:wafv2:us-west-2:444455556666:regional/ipset/acme/a1b2"
  }

  expect_failures = [var.web_acl_arn]
}

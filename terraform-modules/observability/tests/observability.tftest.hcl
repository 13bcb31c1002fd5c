# terraform test: plan-only runs against a mocked AWS provider (no credentials, no AWS calls).
mock_provider "aws" {
  mock_data "aws_region" {
    defaults = {
      id = "eu-west-2"
    }
  }
  mock_data "aws_partition" {
    defaults = {
      partition = "aws"
    }
  }
}

variables {
  data_connections_table_name             = "acme-sandbox-connections"
  data_db_instance_id                     = "acme-sandbox-postgres"
  data_history_table_name                 = "acme-sandbox-chat-history"
  data_redis_node_ids                     = ["acme-sandbox-redis-001", "acme-sandbox-redis-002", "acme-sandbox-redis-003"]
  edge_alb_arn_suffix                     = "app/acme-sandbox-alb/0123456789abcdef"
  edge_target_group_arn_suffix            = "targetgroup/acme-sandbox-proxy/0123456789abcdef"
  edge_web_acl_name                       = "acme-sandbox-waf"
  foundation_kms_key_arn                  = "arn:aws:kms:us-west-2:444455556666:key/11111111-2222-3333-4444-555555555555"
  gateway_cluster_name                    = "acme-sandbox"
  gateway_log_group_name                  = "/ecs/acme-sandbox-proxy"
  gateway_redeploy_dead_letter_queue_name = "acme-sandbox-proxy-redeploy-dlq"
  gateway_redeploy_state_machine_arn      = "arn:aws:states:us-west-2:444455556666:stateMachine:acme-sandbox-proxy-redeploy"
  gateway_service_name                    = "acme-sandbox-proxy"
  llm_alb_arn_suffix                      = "app/acme-sandbox-llm/0123456789abcdef"
  llm_asg_name                            = "acme-sandbox-gpu"
  llm_target_group_arn_suffix             = "targetgroup/acme-sandbox-llm/0123456789abcdef"
  realtime_api_id                         = "a1b2c3d4e5"
  realtime_dead_letter_queue_name         = "acme-sandbox-chat-requests-dlq"
  realtime_function_names                 = { authorizer = "a", connect = "c", disconnect = "d", eraser = "e", message = "m", worker = "w" }
  realtime_request_queue_name             = "acme-sandbox-chat-requests"
  realtime_stage                          = "live"
}

run "alarms_go_to_an_encrypted_topic_named_after_the_inputs" {
  command = plan

  variables {
    project     = "acme"
    environment = "sandbox"
  }

  assert {
    condition     = aws_sns_topic.observability_alarm_topic_543455D3.name == "acme-sandbox-alarms"
    error_message = "The alarm topic is not named after project and environment."
  }
  assert {
    condition     = aws_sns_topic.observability_alarm_topic_543455D3.kms_master_key_id == var.foundation_kms_key_arn
    error_message = "The alarm topic is not encrypted with the foundation key."
  }
  assert {
    condition     = aws_cloudwatch_dashboard.observability_dashboard_FADF3BBC.dashboard_name == "acme-sandbox-platform"
    error_message = "The dashboard is not named after project and environment."
  }
}

run "every_alarm_address_is_subscribed" {
  command = plan

  variables {
    alarm_emails = ["oncall@example.org", "platform@example.org"]
  }

  assert {
    condition     = length(aws_sns_topic_subscription.observability_alarm_email_2B985B19) == 2
    error_message = "Not one subscription per address."
  }
  assert {
    condition     = aws_sns_topic_subscription.observability_alarm_email_2B985B19["platform@example.org"].endpoint == "platform@example.org" && aws_sns_topic_subscription.observability_alarm_email_2B985B19["platform@example.org"].protocol == "email"
    error_message = "An address is not subscribed by email."
  }
}

run "an_address_without_a_domain_is_refused" {
  command = plan

  variables {
    alarm_emails = ["oncall"]
  }

  expect_failures = [var.alarm_emails]
}

run "no_address_is_refused_in_a_protected_export" {
  command = plan

  variables {
    alarm_emails = []
  }

  expect_failures = [var.alarm_emails]
}

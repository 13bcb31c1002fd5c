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
  mock_data "aws_caller_identity" {
    defaults = {
      account_id = "444455556666"
    }
  }
}

variables {
  data_connections_table_arn  = "arn:aws:dynamodb:us-west-2:444455556666:table/acme-sandbox-connections"
  data_connections_table_name = "acme-sandbox-connections"
  data_history_table_arn      = "arn:aws:dynamodb:us-west-2:444455556666:table/acme-sandbox-chat-history"
  data_history_table_name     = "acme-sandbox-chat-history"
  data_redis_address          = "redis.example.internal"
  data_redis_auth_secret_arn  = "arn:aws:secretsmanager:us-west-2:444455556666:secret:redis-AbCdEf"
  data_redis_port             = 6379
  foundation_kms_key_arn      = "arn:aws:kms:us-west-2:444455556666:key/11111111-2222-3333-4444-555555555555"
  network_private_subnet_ids  = ["subnet-0a", "subnet-0b"]
  network_security_group_ids  = { alb = "sg-01", gateway = "sg-02", database = "sg-03", redis = "sg-04", lambda = "sg-05", llm_alb = "sg-06", gpu = "sg-07" }
}

run "request_and_dead_letter_queues_encrypted" {
  command = plan

  variables {
    project     = "acme"
    environment = "sandbox"
  }

  assert {
    condition     = aws_sqs_queue.realtime_request_queue_B276B451.name == "acme-sandbox-chat-requests"
    error_message = "The request queue is not named after project and environment."
  }
  assert {
    condition     = aws_sqs_queue.realtime_request_queue_B276B451.kms_master_key_id == var.foundation_kms_key_arn
    error_message = "The request queue is not encrypted with the foundation key."
  }
  assert {
    condition     = aws_sqs_queue.realtime_dead_letter_queue_85A93374.kms_master_key_id == var.foundation_kms_key_arn
    error_message = "The dead-letter queue is not encrypted with the foundation key."
  }
  assert {
    condition     = alltrue([for f in aws_lambda_function.realtime_worker_105E8F74.vpc_config : contains(f.subnet_ids, "subnet-0a")])
    error_message = "The worker does not run in the private subnets."
  }
}

run "throttling_and_worker_concurrency_follow_the_inputs" {
  command = plan

  variables {
    throttling_rate_limit  = 20
    throttling_burst_limit = 40
    worker_concurrency     = 4
    cache_ttl_seconds      = 120
  }

  assert {
    condition     = aws_apigatewayv2_stage.realtime_stage_0119EB79.default_route_settings[0].throttling_rate_limit == 20 && aws_apigatewayv2_stage.realtime_stage_0119EB79.default_route_settings[0].throttling_burst_limit == 40
    error_message = "The stage does not throttle at the given rate and burst."
  }
  assert {
    condition     = aws_lambda_function.realtime_worker_105E8F74.reserved_concurrent_executions == 4 && aws_lambda_event_source_mapping.realtime_worker_source_7CD9BDC8.scaling_config[0].maximum_concurrency == 4
    error_message = "The worker's reserved and SQS concurrency do not follow worker_concurrency."
  }
  assert {
    condition     = aws_lambda_function.realtime_worker_105E8F74.environment[0].variables["CACHE_TTL_SECONDS"] == "120"
    error_message = "The worker does not get the cache TTL as text."
  }
}

run "a_burst_below_the_rate_is_refused" {
  command = plan

  variables {
    throttling_rate_limit  = 100
    throttling_burst_limit = 50
  }

  expect_failures = [var.throttling_burst_limit]
}

run "a_worker_concurrency_sqs_refuses_is_refused" {
  command = plan

  variables {
    worker_concurrency = 1
  }

  expect_failures = [var.worker_concurrency]
}

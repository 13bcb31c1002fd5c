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

run "without_a_custom_domain_clients_use_the_stage_url" {
  command = plan

  override_resource {
    target          = aws_apigatewayv2_api.realtime_api_33613772
    override_during = plan
    values = {
      id            = "abc123"
      execution_arn = "arn:aws:execute-api:eu-west-2:444455556666:abc123"
    }
  }

  variables {
    domain_name     = ""
    certificate_arn = ""
  }

  assert {
    condition     = length(aws_apigatewayv2_domain_name.realtime_custom_domain_801721B9) == 0 && length(aws_apigatewayv2_api_mapping.realtime_custom_domain_mapping_6B742093) == 0
    error_message = "A domain name or API mapping is planned without a custom domain."
  }
  assert {
    condition     = output.websocket_url == "wss://abc123.execute-api.eu-west-2.amazonaws.com/live" && output.custom_domain_target == null
    error_message = "Without a custom domain the outputs do not give the stage's invoke URL."
  }
  assert {
    condition = alltrue([for f in [aws_lambda_function.realtime_worker_105E8F74, aws_lambda_function.realtime_message_31A24C53] :
    f.environment[0].variables["WEBSOCKET_ENDPOINT"] == "https://abc123.execute-api.eu-west-2.amazonaws.com/live"])
    error_message = "The functions do not post to the API's own management endpoint."
  }
}

run "a_custom_domain_is_mapped_to_the_stage" {
  command = plan

  override_resource {
    target          = aws_apigatewayv2_api.realtime_api_33613772
    override_during = plan
    values = {
      id            = "abc123"
      execution_arn = "arn:aws:execute-api:eu-west-2:444455556666:abc123"
    }
  }

  variables {
    domain_name     = "chat.acme.example"
    certificate_arn = "arn:aws:acm:eu-west-2:444455556666:certificate/0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b"
  }

  assert {
    condition     = aws_apigatewayv2_domain_name.realtime_custom_domain_801721B9[0].domain_name == "chat.acme.example" && aws_apigatewayv2_api_mapping.realtime_custom_domain_mapping_6B742093[0].stage == "live"
    error_message = "The custom domain is not created and mapped to the stage."
  }
  assert {
    condition     = output.websocket_url == "wss://chat.acme.example"
    error_message = "The WebSocket URL is not the custom domain's."
  }
  assert {
    condition     = aws_lambda_function.realtime_worker_105E8F74.environment[0].variables["WEBSOCKET_ENDPOINT"] == "https://abc123.execute-api.eu-west-2.amazonaws.com/live"
    error_message = "The worker does not post to the API's management endpoint."
  }
}

run "a_custom_domain_without_a_certificate_is_refused" {
  command = plan

  variables {
    domain_name     = "chat.acme.example"
    certificate_arn = ""
  }

  expect_failures = [var.certificate_arn]
}

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
  data_db_max_connections                 = 168
  data_db_storage_gb                      = 20
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

run "one_redis_node_gets_its_alarms" {
  command = plan

  variables {
    project             = "acme"
    environment         = "sandbox"
    data_redis_node_ids = ["acme-sandbox-redis-001"]
  }

  assert {
    condition     = length(aws_cloudwatch_metric_alarm.observability_alarm_redis_cpu_001_93FC9970) == 1 && length(aws_cloudwatch_metric_alarm.observability_alarm_redis_memory_001_F2AE1C8E) == 1 && length(aws_cloudwatch_metric_alarm.observability_alarm_redis_evictions_001_0B74FA79) == 1
    error_message = "Not one CPU, memory and evictions alarm per Redis node (1)."
  }
  assert {
    condition     = aws_cloudwatch_metric_alarm.observability_alarm_redis_cpu_001_93FC9970[*].alarm_name == ["acme-sandbox-redis-cpu-001"] && aws_cloudwatch_metric_alarm.observability_alarm_redis_cpu_001_93FC9970[0].dimensions.CacheClusterId == "acme-sandbox-redis-001"
    error_message = "The per-node alarms are not named and dimensioned after their nodes."
  }
  assert {
    condition     = length(aws_cloudwatch_metric_alarm.observability_alarm_redis_no_primary_62DC9C38.metric_query) == 2 && one([for q in aws_cloudwatch_metric_alarm.observability_alarm_redis_no_primary_62DC9C38.metric_query : q.expression if q.id == "primaries"]) == "SUM([node0])"
    error_message = "The no-primary alarm does not sum IsMaster over the 1 node(s)."
  }
  assert {
    condition     = sort([for q in aws_cloudwatch_metric_alarm.observability_alarm_redis_no_primary_62DC9C38.metric_query : one(q.metric).dimensions.CacheClusterId if q.id != "primaries"]) == tolist(["acme-sandbox-redis-001"])
    error_message = "The no-primary alarm does not query every node's IsMaster."
  }
}

run "two_redis_nodes_get_their_alarms" {
  command = plan

  variables {
    project             = "acme"
    environment         = "sandbox"
    data_redis_node_ids = ["acme-sandbox-redis-001", "acme-sandbox-redis-002"]
  }

  assert {
    condition     = length(aws_cloudwatch_metric_alarm.observability_alarm_redis_cpu_001_93FC9970) == 2 && length(aws_cloudwatch_metric_alarm.observability_alarm_redis_memory_001_F2AE1C8E) == 2 && length(aws_cloudwatch_metric_alarm.observability_alarm_redis_evictions_001_0B74FA79) == 2
    error_message = "Not one CPU, memory and evictions alarm per Redis node (2)."
  }
  assert {
    condition     = aws_cloudwatch_metric_alarm.observability_alarm_redis_cpu_001_93FC9970[*].alarm_name == ["acme-sandbox-redis-cpu-001", "acme-sandbox-redis-cpu-002"] && aws_cloudwatch_metric_alarm.observability_alarm_redis_cpu_001_93FC9970[1].dimensions.CacheClusterId == "acme-sandbox-redis-002"
    error_message = "The per-node alarms are not named and dimensioned after their nodes."
  }
  assert {
    condition     = length(aws_cloudwatch_metric_alarm.observability_alarm_redis_no_primary_62DC9C38.metric_query) == 3 && one([for q in aws_cloudwatch_metric_alarm.observability_alarm_redis_no_primary_62DC9C38.metric_query : q.expression if q.id == "primaries"]) == "SUM([node0, node1])"
    error_message = "The no-primary alarm does not sum IsMaster over the 2 node(s)."
  }
  assert {
    condition     = sort([for q in aws_cloudwatch_metric_alarm.observability_alarm_redis_no_primary_62DC9C38.metric_query : one(q.metric).dimensions.CacheClusterId if q.id != "primaries"]) == tolist(["acme-sandbox-redis-001", "acme-sandbox-redis-002"])
    error_message = "The no-primary alarm does not query every node's IsMaster."
  }
}

run "three_redis_nodes_get_their_alarms" {
  command = plan

  variables {
    project             = "acme"
    environment         = "sandbox"
    data_redis_node_ids = ["acme-sandbox-redis-001", "acme-sandbox-redis-002", "acme-sandbox-redis-003"]
  }

  assert {
    condition     = length(aws_cloudwatch_metric_alarm.observability_alarm_redis_cpu_001_93FC9970) == 3 && length(aws_cloudwatch_metric_alarm.observability_alarm_redis_memory_001_F2AE1C8E) == 3 && length(aws_cloudwatch_metric_alarm.observability_alarm_redis_evictions_001_0B74FA79) == 3
    error_message = "Not one CPU, memory and evictions alarm per Redis node (3)."
  }
  assert {
    condition     = aws_cloudwatch_metric_alarm.observability_alarm_redis_cpu_001_93FC9970[*].alarm_name == ["acme-sandbox-redis-cpu-001", "acme-sandbox-redis-cpu-002", "acme-sandbox-redis-cpu-003"] && aws_cloudwatch_metric_alarm.observability_alarm_redis_cpu_001_93FC9970[2].dimensions.CacheClusterId == "acme-sandbox-redis-003"
    error_message = "The per-node alarms are not named and dimensioned after their nodes."
  }
  assert {
    condition     = length(aws_cloudwatch_metric_alarm.observability_alarm_redis_no_primary_62DC9C38.metric_query) == 4 && one([for q in aws_cloudwatch_metric_alarm.observability_alarm_redis_no_primary_62DC9C38.metric_query : q.expression if q.id == "primaries"]) == "SUM([node0, node1, node2])"
    error_message = "The no-primary alarm does not sum IsMaster over the 3 node(s)."
  }
  assert {
    condition     = sort([for q in aws_cloudwatch_metric_alarm.observability_alarm_redis_no_primary_62DC9C38.metric_query : one(q.metric).dimensions.CacheClusterId if q.id != "primaries"]) == tolist(["acme-sandbox-redis-001", "acme-sandbox-redis-002", "acme-sandbox-redis-003"])
    error_message = "The no-primary alarm does not query every node's IsMaster."
  }
}

run "no_redis_node_is_refused" {
  command = plan

  variables {
    data_redis_node_ids = []
  }

  expect_failures = [var.data_redis_node_ids]
}

run "more_redis_nodes_than_a_group_holds_are_refused" {
  command = plan

  variables {
    data_redis_node_ids = ["n1", "n2", "n3", "n4", "n5", "n6", "n7"]
  }

  expect_failures = [var.data_redis_node_ids]
}

run "database_alarms_follow_a_small_class_and_storage" {
  command = plan

  variables {
    data_db_max_connections = 168 # db.t4g.small
    data_db_storage_gb      = 20
  }

  assert {
    condition     = aws_cloudwatch_metric_alarm.observability_alarm_rds_connections_281EB262.threshold == 134
    error_message = "The connections alarm is not at 80 % of the data module's db_max_connections (168)."
  }
  assert {
    condition     = aws_cloudwatch_metric_alarm.observability_alarm_rds_free_storage_share_035CB989.threshold == 1073741824
    error_message = "The free-storage share alarm is not at 5 % of the data module's db_storage_gb (20 GiB)."
  }
}

run "database_alarms_follow_a_large_class_and_storage" {
  command = plan

  variables {
    data_db_max_connections = 2703 # db.r7g.xlarge
    data_db_storage_gb      = 500
  }

  assert {
    condition     = aws_cloudwatch_metric_alarm.observability_alarm_rds_connections_281EB262.threshold == 2162
    error_message = "The connections alarm is not at 80 % of the data module's db_max_connections (2703)."
  }
  assert {
    condition     = aws_cloudwatch_metric_alarm.observability_alarm_rds_free_storage_share_035CB989.threshold == 26843545600
    error_message = "The free-storage share alarm is not at 5 % of the data module's db_storage_gb (500 GiB)."
  }
}

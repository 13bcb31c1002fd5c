# terraform test: plan-only runs with the real AWS provider pointed at a local AWS emulator
# (the runner sets AWS_ENDPOINT_URL; no credentials, nothing leaves loopback). Not a mocked
# provider: Terraform 1.11's mock providers cannot mock the ephemeral resource the generated
# secrets use ("No ephemeral resource types in mock providers").
provider "aws" {
  region                      = "us-west-2"
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
}

# The emulator has no ValidateStateMachineDefinition (the provider calls it at plan).
override_resource {
  target = aws_sfn_state_machine.gateway_redeploy_55766FE9
}

variables {
  data_db_address                 = "acme-sandbox-postgres.example.internal"
  data_db_master_secret_arn       = "arn:aws:secretsmanager:us-west-2:444455556666:secret:rds-master-AbCdEf"
  data_db_max_connections         = 168
  data_db_name                    = "litellm"
  data_db_port                    = 5432
  data_redis_address              = "redis.example.internal"
  data_redis_auth_secret_arn      = "arn:aws:secretsmanager:us-west-2:444455556666:secret:redis-AbCdEf"
  data_redis_port                 = 6379
  edge_target_group_arn           = "arn:aws:elasticloadbalancing:us-west-2:444455556666:targetgroup/acme-sandbox-gateway/0123456789abcdef"
  foundation_audit_bucket_arn     = "arn:aws:s3:::acme-sandbox-audit-444455556666"
  foundation_kms_key_arn          = "arn:aws:kms:us-west-2:444455556666:key/11111111-2222-3333-4444-555555555555"
  foundation_replica_kms_key_arns = {}
  llm_api_key_secret_arn          = "arn:aws:secretsmanager:us-west-2:444455556666:secret:vllm-api-key-AbCdEf"
  network_private_subnet_ids      = ["subnet-0a", "subnet-0b"]
  network_security_group_ids      = { alb = "sg-01", gateway = "sg-02", database = "sg-03", redis = "sg-04", lambda = "sg-05", llm_alb = "sg-06", gpu = "sg-07" }
}

run "tasks_are_sized_counted_placed_and_named_after_the_inputs" {
  command = plan

  variables {
    project               = "acme"
    environment           = "sandbox"
    gateway_cpu           = 512
    gateway_memory        = 1024
    gateway_min_tasks     = 1
    gateway_desired_tasks = 1
    gateway_max_tasks     = 3
    fargate_spot          = true
  }

  assert {
    condition     = aws_ecs_task_definition.gateway_task_E6563306.cpu == "512" && aws_ecs_task_definition.gateway_task_E6563306.memory == "1024"
    error_message = "The task is not sized by gateway_cpu and gateway_memory."
  }
  assert {
    condition     = aws_ecs_service.gateway_service_0B098E79.desired_count == 1 && aws_appautoscaling_target.gateway_scaling_target_A3D71370.min_capacity == 1 && aws_appautoscaling_target.gateway_scaling_target_A3D71370.max_capacity == 3
    error_message = "The service does not run and scale within the given task counts."
  }
  assert {
    condition     = aws_ecs_cluster.gateway_cluster_FF59ADF5.name == "acme-sandbox-cluster"
    error_message = "The cluster is not named after project and environment."
  }
  assert {
    condition     = aws_ecs_service.gateway_service_0B098E79.network_configuration[0].assign_public_ip == false && contains(aws_ecs_service.gateway_service_0B098E79.network_configuration[0].security_groups, "sg-02")
    error_message = "Tasks are not private behind the gateway security group."
  }
  assert {
    condition     = one(aws_ecs_service.gateway_service_0B098E79.capacity_provider_strategy[*].capacity_provider) == "FARGATE_SPOT"
    error_message = "fargate_spot = true does not put the tasks on Fargate Spot."
  }
}

run "a_cpu_memory_pair_fargate_refuses_is_refused" {
  command = plan

  variables {
    gateway_cpu    = 1024
    gateway_memory = 1024
  }

  expect_failures = [var.gateway_memory]
}

run "task_counts_out_of_order_are_refused" {
  command = plan

  variables {
    gateway_min_tasks     = 3
    gateway_desired_tasks = 2
    gateway_max_tasks     = 4
  }

  expect_failures = [var.gateway_min_tasks]
}

run "an_unpinned_image_is_refused_in_a_protected_export" {
  command = plan

  variables {
    gateway_image = "ghcr.io/berriai/litellm:main-latest"
  }

  expect_failures = [var.gateway_image]
}

# The same emulator, asked as a provider in another region.
provider "aws" {
  alias                       = "sydney"
  region                      = "ap-southeast-2"
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
}

run "bedrock_routes_environment_and_arns_follow_the_provider_region" {
  command = plan

  providers = {
    aws = aws.sydney
  }

  # The task's secrets get their ARNs at apply; the test reads the definition at plan.
  override_resource {
    target          = aws_secretsmanager_secret.gateway_master_key_secret_02A4AFDE
    override_during = plan
    values = {
      arn = "arn:aws:secretsmanager:ap-southeast-2:444455556666:secret:master-AbCdEf"
    }
  }
  override_resource {
    target          = aws_secretsmanager_secret.gateway_salt_key_secret_0AD34069
    override_during = plan
    values = {
      arn = "arn:aws:secretsmanager:ap-southeast-2:444455556666:secret:salt-AbCdEf"
    }
  }

  assert {
    condition = contains(jsondecode(aws_ecs_task_definition.gateway_task_E6563306.container_definitions)[0].environment,
    { name = "AWS_REGION", value = "ap-southeast-2" })
    error_message = "The proxy's AWS_REGION is not the provider region."
  }
  assert {
    condition = (strcontains(aws_ecs_task_definition.gateway_task_E6563306.container_definitions, "bedrock/apac.anthropic.claude-sonnet-4-5-20250929-v1:0")
      && !strcontains(aws_ecs_task_definition.gateway_task_E6563306.container_definitions, "eu.anthropic")
    && strcontains(aws_ecs_task_definition.gateway_task_E6563306.container_definitions, "\\\"aws_region_name\\\": \\\"ap-southeast-2\\\""))
    error_message = "A Bedrock route does not use the provider region's geographic inference profile."
  }
  assert {
    condition     = can(regex("arn:aws:bedrock:ap-southeast-2:[0-9]{12}:inference-profile/apac\\.anthropic\\.claude-sonnet-4-5-20250929-v1:0", aws_iam_role_policy.gateway_task_role_policy_F34FB1E9.policy))
    error_message = "The task may not invoke the provider region's inference profile."
  }
  assert {
    condition     = strcontains(aws_iam_role_policy.gateway_task_role_policy_F34FB1E9.policy, "s3.ap-southeast-2.amazonaws.com") && !strcontains(aws_iam_role_policy.gateway_task_role_policy_F34FB1E9.policy, "eu-west-2")
    error_message = "The task policy names another region."
  }
}

run "without_a_gpu_tier_no_model_route_secret_or_grant" {
  command = plan

  variables {
    llm_api_key_secret_arn = ""
  }

  override_resource {
    target          = aws_secretsmanager_secret.gateway_master_key_secret_02A4AFDE
    override_during = plan
    values = {
      arn = "arn:aws:secretsmanager:us-west-2:444455556666:secret:master-AbCdEf"
    }
  }
  override_resource {
    target          = aws_secretsmanager_secret.gateway_salt_key_secret_0AD34069
    override_during = plan
    values = {
      arn = "arn:aws:secretsmanager:us-west-2:444455556666:secret:salt-AbCdEf"
    }
  }
  override_resource {
    target          = aws_cloudwatch_log_group.gateway_log_group_39D613DA
    override_during = plan
    values = {
      arn = "arn:aws:logs:us-west-2:444455556666:log-group:proxy"
    }
  }

  assert {
    condition = alltrue([for task in [aws_ecs_task_definition.gateway_task_E6563306, aws_ecs_task_definition.gateway_migration_task_4D8D9699] :
    !contains([for s in jsondecode(task.container_definitions)[0].secrets : s.name], "VLLM_API_KEY")])
    error_message = "A task without a GPU tier still gets the model's API key."
  }
  assert {
    condition = alltrue([for task in [aws_ecs_task_definition.gateway_task_E6563306, aws_ecs_task_definition.gateway_migration_task_4D8D9699] :
    !strcontains(task.container_definitions, "hosted_vllm/") && !strcontains(task.container_definitions, "deepseek-r1-7b")])
    error_message = "The LiteLLM config still routes (or falls back) to the self-hosted model."
  }
  assert {
    condition     = strcontains(aws_ecs_task_definition.gateway_task_E6563306.container_definitions, "bedrock/")
    error_message = "The Bedrock routes were left out with the self-hosted one."
  }
  assert {
    condition = (length(jsondecode(aws_iam_role_policy.gateway_execution_role_policy_813CAEF2.policy).Statement[1].Resource) == 4
    && !strcontains(aws_iam_role_policy.gateway_execution_role_policy_813CAEF2.policy, "vllm"))
    error_message = "The execution role may still read a model secret."
  }
}

run "with_a_gpu_tier_the_task_reads_the_model_secret" {
  command = plan

  override_resource {
    target          = aws_secretsmanager_secret.gateway_master_key_secret_02A4AFDE
    override_during = plan
    values = {
      arn = "arn:aws:secretsmanager:us-west-2:444455556666:secret:master-AbCdEf"
    }
  }
  override_resource {
    target          = aws_secretsmanager_secret.gateway_salt_key_secret_0AD34069
    override_during = plan
    values = {
      arn = "arn:aws:secretsmanager:us-west-2:444455556666:secret:salt-AbCdEf"
    }
  }
  override_resource {
    target          = aws_cloudwatch_log_group.gateway_log_group_39D613DA
    override_during = plan
    values = {
      arn = "arn:aws:logs:us-west-2:444455556666:log-group:proxy"
    }
  }

  assert {
    condition = contains(jsondecode(aws_ecs_task_definition.gateway_task_E6563306.container_definitions)[0].secrets,
    { name = "VLLM_API_KEY", valueFrom = var.llm_api_key_secret_arn })
    error_message = "The task does not get the model's API key from the llm module's secret."
  }
  assert {
    condition     = strcontains(aws_ecs_task_definition.gateway_task_E6563306.container_definitions, "hosted_vllm/")
    error_message = "The self-hosted route is missing although a GPU tier is given."
  }
  assert {
    condition     = contains(jsondecode(aws_iam_role_policy.gateway_execution_role_policy_813CAEF2.policy).Statement[1].Resource, var.llm_api_key_secret_arn)
    error_message = "The execution role may not read the model secret."
  }
}

run "a_model_secret_of_another_service_is_refused" {
  command = plan

  variables {
    llm_api_key_secret_arn = "arn:aws:ssm:us-west-2:444455556666:parameter/vllm-api-key"
  }

  expect_failures = [var.llm_api_key_secret_arn]
}

run "the_pool_per_task_follows_a_small_database" {
  command = plan

  variables {
    data_db_max_connections = 168 # db.t4g.small
    gateway_max_tasks       = 3
  }

  override_resource {
    target          = aws_secretsmanager_secret.gateway_master_key_secret_02A4AFDE
    override_during = plan
    values = {
      arn = "arn:aws:secretsmanager:us-west-2:444455556666:secret:master-AbCdEf"
    }
  }
  override_resource {
    target          = aws_secretsmanager_secret.gateway_salt_key_secret_0AD34069
    override_during = plan
    values = {
      arn = "arn:aws:secretsmanager:us-west-2:444455556666:secret:salt-AbCdEf"
    }
  }

  # (max_connections - 10 reserved) shared by 2 x gateway_max_tasks tasks during a deploy
  assert {
    condition = alltrue([for task in [aws_ecs_task_definition.gateway_task_E6563306, aws_ecs_task_definition.gateway_migration_task_4D8D9699] :
    jsondecode(one([for e in jsondecode(task.container_definitions)[0].environment : e.value if e.name == "LITELLM_CONFIG_YAML"])).general_settings.database_connection_pool_limit == 26])
    error_message = "The LiteLLM pool per task is not (168 - 10) / (2 x 3) = 26, from the data module's db_max_connections."
  }
}

run "the_pool_per_task_follows_a_large_database" {
  command = plan

  variables {
    data_db_max_connections = 2703 # db.r7g.xlarge
    gateway_max_tasks       = 5
  }

  override_resource {
    target          = aws_secretsmanager_secret.gateway_master_key_secret_02A4AFDE
    override_during = plan
    values = {
      arn = "arn:aws:secretsmanager:us-west-2:444455556666:secret:master-AbCdEf"
    }
  }
  override_resource {
    target          = aws_secretsmanager_secret.gateway_salt_key_secret_0AD34069
    override_during = plan
    values = {
      arn = "arn:aws:secretsmanager:us-west-2:444455556666:secret:salt-AbCdEf"
    }
  }

  # (max_connections - 10 reserved) shared by 2 x gateway_max_tasks tasks during a deploy
  assert {
    condition = alltrue([for task in [aws_ecs_task_definition.gateway_task_E6563306, aws_ecs_task_definition.gateway_migration_task_4D8D9699] :
    jsondecode(one([for e in jsondecode(task.container_definitions)[0].environment : e.value if e.name == "LITELLM_CONFIG_YAML"])).general_settings.database_connection_pool_limit == 269])
    error_message = "The LiteLLM pool per task is not (2703 - 10) / (2 x 5) = 269, from the data module's db_max_connections."
  }
}

run "more_tasks_than_the_database_connections_allow_are_refused" {
  command = plan

  variables {
    data_db_max_connections = 84 # db.t4g.micro: 74 / 20 = 3 per task, below 5
    gateway_min_tasks       = 1
    gateway_desired_tasks   = 1
    gateway_max_tasks       = 10
  }

  expect_failures = [var.gateway_max_tasks]
}

# terraform test: plan-only runs with the real AWS provider pointed at a local AWS emulator
# (the runner sets AWS_ENDPOINT_URL; no credentials, nothing leaves loopback). Not a mocked
# provider: Terraform 1.11's mock providers cannot mock the ephemeral resources the Redis AUTH
# secret uses ("No ephemeral resource types in mock providers").
provider "aws" {
  region                      = "us-west-2"
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
}

variables {
  foundation_kms_key_arn      = "arn:aws:kms:us-west-2:444455556666:key/11111111-2222-3333-4444-555555555555"
  network_database_subnet_ids = ["subnet-0a", "subnet-0b"]
  network_security_group_ids  = { alb = "sg-01", gateway = "sg-02", database = "sg-03", redis = "sg-04", lambda = "sg-05", llm_alb = "sg-06", gpu = "sg-07" }
  availability_zones          = ["us-west-2a", "us-west-2b", "us-west-2c"]
}

run "stores_are_encrypted_protected_and_named_after_the_inputs" {
  command = plan

  variables {
    project     = "acme"
    environment = "sandbox"
  }

  assert {
    condition     = aws_db_instance.data_postgres_BC6B9DCD.identifier == "acme-sandbox-postgres"
    error_message = "The database is not named after project and environment."
  }
  assert {
    condition     = aws_db_instance.data_postgres_BC6B9DCD.storage_encrypted && aws_db_instance.data_postgres_BC6B9DCD.kms_key_id == var.foundation_kms_key_arn
    error_message = "The database is not encrypted with the foundation key."
  }
  assert {
    condition     = aws_db_instance.data_postgres_BC6B9DCD.deletion_protection
    error_message = "The exported (protected) database can be deleted."
  }
  assert {
    condition     = contains(aws_db_instance.data_postgres_BC6B9DCD.vpc_security_group_ids, "sg-03")
    error_message = "The database is not behind the database security group."
  }
  assert {
    condition     = aws_elasticache_replication_group.data_redis_E084F98E.transit_encryption_enabled && aws_elasticache_replication_group.data_redis_E084F98E.at_rest_encryption_enabled
    error_message = "Redis is not encrypted in transit and at rest."
  }
}

run "a_capitalised_environment_is_refused" {
  command = plan

  variables {
    environment = "Sandbox"
  }

  expect_failures = [var.environment]
}

run "storage_follows_the_inputs" {
  command = plan

  variables {
    db_storage_gb     = 50
    db_max_storage_gb = 200
    redis_version     = "7.1"
  }

  assert {
    condition     = aws_db_instance.data_postgres_BC6B9DCD.allocated_storage == 50 && aws_db_instance.data_postgres_BC6B9DCD.max_allocated_storage == 200
    error_message = "The database storage does not follow db_storage_gb and db_max_storage_gb."
  }
}

run "a_storage_ceiling_below_the_storage_is_refused" {
  command = plan

  variables {
    db_storage_gb     = 100
    db_max_storage_gb = 50
  }

  expect_failures = [var.db_max_storage_gb]
}

run "a_token_rotation_is_a_validated_setting" {
  command = plan

  variables {
    redis_auth_update_strategy = "DELETE"
  }

  expect_failures = [var.redis_auth_update_strategy]
}

run "a_single_zone_store_when_multi_az_is_off" {
  command = plan

  variables {
    multi_az       = false
    redis_replicas = 0
  }

  assert {
    condition     = aws_db_instance.data_postgres_BC6B9DCD.multi_az == false && aws_elasticache_replication_group.data_redis_E084F98E.multi_az_enabled == false
    error_message = "multi_az = false still places a standby in a second zone."
  }
  assert {
    condition     = aws_elasticache_replication_group.data_redis_E084F98E.num_cache_clusters == 1 && !aws_elasticache_replication_group.data_redis_E084F98E.automatic_failover_enabled && aws_elasticache_replication_group.data_redis_E084F98E.preferred_cache_cluster_azs == tolist(["us-west-2a"])
    error_message = "redis_replicas = 0 still runs a second Redis node."
  }
  assert {
    condition     = output.redis_node_ids == tolist(["${var.project}-${var.environment}-redis-001"])
    error_message = "redis_node_ids still lists a second node."
  }
}

run "two_redis_nodes_in_two_zones_by_default" {
  command = plan

  assert {
    condition     = aws_elasticache_replication_group.data_redis_E084F98E.num_cache_clusters == 2 && aws_elasticache_replication_group.data_redis_E084F98E.automatic_failover_enabled && aws_elasticache_replication_group.data_redis_E084F98E.multi_az_enabled
    error_message = "The exported Redis group lost its replica."
  }
  assert {
    condition     = aws_elasticache_replication_group.data_redis_E084F98E.preferred_cache_cluster_azs == tolist(["us-west-2a", "us-west-2b"]) && output.redis_node_ids == tolist(["llmlite-prod-redis-001", "llmlite-prod-redis-002"])
    error_message = "The default replica is not in the second zone, or redis_node_ids does not list both nodes."
  }
}

run "three_redis_nodes_follow_redis_replicas" {
  command = plan

  variables {
    project        = "acme"
    environment    = "sandbox"
    redis_replicas = 2
  }

  assert {
    condition     = aws_elasticache_replication_group.data_redis_E084F98E.num_cache_clusters == 3 && aws_elasticache_replication_group.data_redis_E084F98E.automatic_failover_enabled && aws_elasticache_replication_group.data_redis_E084F98E.preferred_cache_cluster_azs == tolist(["us-west-2a", "us-west-2b", "us-west-2c"])
    error_message = "redis_replicas = 2 does not make three nodes, one per zone, the primary in the first."
  }
  assert {
    condition     = output.redis_node_ids == tolist(["acme-sandbox-redis-001", "acme-sandbox-redis-002", "acme-sandbox-redis-003"])
    error_message = "redis_node_ids does not list the three nodes."
  }
}

run "more_nodes_than_zones_go_round_the_zones" {
  command = plan

  variables {
    availability_zones          = ["us-west-2b", "us-west-2a"]
    network_database_subnet_ids = ["subnet-0a", "subnet-0b"]
    redis_replicas              = 5
  }

  assert {
    condition     = aws_elasticache_replication_group.data_redis_E084F98E.num_cache_clusters == 6 && aws_elasticache_replication_group.data_redis_E084F98E.preferred_cache_cluster_azs == tolist(["us-west-2b", "us-west-2a", "us-west-2b", "us-west-2a", "us-west-2b", "us-west-2a"]) && length(output.redis_node_ids) == 6
    error_message = "Six nodes are not placed round the two zones, or redis_node_ids does not list six."
  }
}

run "replicas_without_multi_az_still_fail_over" {
  command = plan

  variables {
    multi_az       = false
    redis_replicas = 1
  }

  assert {
    condition     = aws_elasticache_replication_group.data_redis_E084F98E.num_cache_clusters == 2 && aws_elasticache_replication_group.data_redis_E084F98E.automatic_failover_enabled && !aws_elasticache_replication_group.data_redis_E084F98E.multi_az_enabled
    error_message = "A replica without multi_az is not a failover target, or Multi-AZ is on."
  }
}

run "multi_az_without_a_redis_replica_is_refused" {
  command = plan

  variables {
    multi_az       = true
    redis_replicas = 0
  }

  expect_failures = [var.redis_replicas]
}

run "more_than_five_redis_replicas_are_refused" {
  command = plan

  variables {
    redis_replicas = 6
  }

  expect_failures = [var.redis_replicas]
}

run "a_fraction_of_a_redis_replica_is_refused" {
  command = plan

  variables {
    multi_az       = false
    redis_replicas = 0.5
  }

  expect_failures = [var.redis_replicas]
}

run "engine_versions_and_class_are_variables" {
  command = plan

  variables {
    postgres_version  = "15.7"
    db_instance_class = "db.r7g.large"
    redis_version     = "7.0"
    redis_node_type   = "cache.r7g.large"
  }

  assert {
    condition     = aws_db_instance.data_postgres_BC6B9DCD.engine_version == "15.7" && aws_db_parameter_group.data_db_parameters_969C1C9C.family == "postgres15"
    error_message = "The database does not run the given version with its major's parameter family."
  }
  assert {
    condition     = aws_db_instance.data_postgres_BC6B9DCD.instance_class == "db.r7g.large" && one([for p in aws_db_parameter_group.data_db_parameters_969C1C9C.parameter : p.value if p.name == "max_connections"]) == "1351"
    error_message = "max_connections does not follow db_instance_class."
  }
  assert {
    condition     = output.db_max_connections == 1351
    error_message = "db_max_connections (what the gateway's pool and the connections alarm read) is not the db.r7g.large parameter group's max_connections."
  }
  assert {
    condition     = aws_elasticache_replication_group.data_redis_E084F98E.engine_version == "7.0" && aws_elasticache_replication_group.data_redis_E084F98E.node_type == "cache.r7g.large"
    error_message = "Redis does not take the given version and node type."
  }
}

run "the_database_size_outputs_follow_the_class_and_storage" {
  command = plan

  variables {
    db_instance_class = "db.t4g.micro"
    db_storage_gb     = 50
  }

  assert {
    condition     = output.db_max_connections == 84 && one([for p in aws_db_parameter_group.data_db_parameters_969C1C9C.parameter : p.value if p.name == "max_connections"]) == tostring(output.db_max_connections)
    error_message = "db_max_connections is not the db.t4g.micro parameter group's max_connections (84)."
  }
  assert {
    condition     = output.db_storage_gb == 50 && aws_db_instance.data_postgres_BC6B9DCD.allocated_storage == output.db_storage_gb
    error_message = "db_storage_gb is not the database's allocation."
  }
}

run "unsupported_engines_and_classes_are_refused" {
  command = plan

  variables {
    postgres_version  = "9.6"
    db_instance_class = "db.x2g.large"
    redis_version     = "5.0.6"
    redis_node_type   = "t4g.small"
  }

  expect_failures = [var.postgres_version, var.db_instance_class, var.redis_version, var.redis_node_type]
}

run "a_sandbox_without_deletion_protection_destroys_cleanly" {
  command = plan

  variables {
    deletion_protection = false
    log_retention_days  = 7
  }

  assert {
    condition     = !aws_db_instance.data_postgres_BC6B9DCD.deletion_protection && aws_db_instance.data_postgres_BC6B9DCD.skip_final_snapshot && aws_db_instance.data_postgres_BC6B9DCD.final_snapshot_identifier == null
    error_message = "Without deletion_protection the database still refuses deletion or leaves a final snapshot."
  }
  assert {
    condition     = aws_elasticache_replication_group.data_redis_E084F98E.final_snapshot_identifier == null && aws_secretsmanager_secret.data_redis_auth_secret_08F6A792.recovery_window_in_days == 0
    error_message = "Without deletion_protection Redis keeps a final snapshot or its secret a recovery window."
  }
  assert {
    condition     = !aws_dynamodb_table.data_connections_table_BCB73545.deletion_protection_enabled && aws_backup_vault.data_backup_vault_968F0865.force_destroy && length(aws_backup_vault_lock_configuration.data_backup_vault_lock_94357442) == 0
    error_message = "Without deletion_protection a table or the locked backup vault still blocks the destroy."
  }
}

run "a_protected_store_keeps_its_guards" {
  command = plan

  assert {
    condition     = aws_db_instance.data_postgres_BC6B9DCD.final_snapshot_identifier == "llmlite-prod-postgres-final" && aws_secretsmanager_secret.data_redis_auth_secret_08F6A792.recovery_window_in_days == 30 && length(aws_backup_vault_lock_configuration.data_backup_vault_lock_94357442) == 1
    error_message = "The protected default lost its final snapshot, recovery window or vault lock."
  }
}

run "a_short_retention_needs_a_sandbox" {
  command = plan

  variables {
    log_retention_days = 7
  }

  expect_failures = [var.log_retention_days]
}

run "redis_is_placed_in_the_given_zones_of_the_provider_region" {
  command = plan

  variables {
    availability_zones = ["us-west-2c", "us-west-2a", "us-west-2b"]
  }

  assert {
    condition     = aws_elasticache_replication_group.data_redis_E084F98E.preferred_cache_cluster_azs[0] == "us-west-2c"
    error_message = "The Redis primary is not in the first given zone."
  }
}

run "redis_zones_of_another_region_are_refused" {
  command = plan

  variables {
    availability_zones = ["eu-west-2a", "eu-west-2b", "eu-west-2c"]
  }

  expect_failures = [aws_elasticache_replication_group.data_redis_E084F98E]
}

run "two_zones_are_enough_for_redis_and_the_database" {
  command = plan

  variables {
    availability_zones = ["us-west-2b", "us-west-2a"]
  }

  assert {
    condition     = aws_elasticache_replication_group.data_redis_E084F98E.preferred_cache_cluster_azs == tolist(["us-west-2b", "us-west-2a"])
    error_message = "The Redis nodes are not placed in the two given zones, the primary in the first."
  }
}

run "one_zone_is_refused" {
  command = plan

  variables {
    availability_zones          = ["us-west-2a"]
    network_database_subnet_ids = ["subnet-0a"]
  }

  expect_failures = [var.availability_zones, var.network_database_subnet_ids]
}

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
    multi_az = false
  }

  assert {
    condition     = aws_db_instance.data_postgres_BC6B9DCD.multi_az == false && aws_elasticache_replication_group.data_redis_E084F98E.multi_az_enabled == false
    error_message = "multi_az = false still places a standby in a second zone."
  }
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

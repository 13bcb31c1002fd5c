# terraform test: plan-only runs against a mocked AWS provider (no credentials, no AWS calls).
mock_provider "aws" {
  mock_data "aws_region" {
    defaults = {
      id = "eu-west-2"
    }
  }
}

variables {
  foundation_kms_key_arn = "arn:aws:kms:eu-west-2:111122223333:key/11111111-2222-3333-4444-555555555555"
}

run "names_and_retention_follow_the_inputs" {
  command = plan

  variables {
    project            = "acme"
    environment        = "staging"
    log_retention_days = 731
  }

  assert {
    condition     = aws_cloudwatch_log_group.network_flow_log_group_03070248.name == "/vpc/acme-staging-flow-logs"
    error_message = "The flow log group is not named after project and environment."
  }
  assert {
    condition     = aws_cloudwatch_log_group.network_flow_log_group_03070248.retention_in_days == 731
    error_message = "The flow log group does not keep the chosen retention."
  }
  assert {
    condition     = aws_cloudwatch_log_group.network_flow_log_group_03070248.kms_key_id == var.foundation_kms_key_arn
    error_message = "The flow log group is not encrypted with the foundation key."
  }
}

run "a_subnet_per_tier_and_zone_inside_the_vpc" {
  command = plan

  assert {
    condition = alltrue([for subnet in [
      aws_subnet.network_public_subnet_0_5673B6E0, aws_subnet.network_public_subnet_1_6D5922CE,
      aws_subnet.network_private_subnet_0_D39C5390, aws_subnet.network_private_subnet_1_FAF2D420,
      aws_subnet.network_database_subnet_0_C9EEA676, aws_subnet.network_database_subnet_1_01EED8BE,
    ] : cidrsubnet(subnet.cidr_block, 0, 0) == subnet.cidr_block && startswith(subnet.cidr_block, "10.1.")])
    error_message = "A subnet lies outside the VPC."
  }
  assert {
    condition     = aws_subnet.network_public_subnet_0_5673B6E0.availability_zone != aws_subnet.network_public_subnet_1_6D5922CE.availability_zone
    error_message = "The public subnets share a zone."
  }
}

run "another_cidr_and_region_by_variables_only" {
  command = plan

  override_data {
    target = data.aws_region.region
    values = {
      id = "us-west-2"
    }
  }

  variables {
    vpc_cidr              = "172.20.0.0/16"
    availability_zones    = ["us-west-2b", "us-west-2c", "us-west-2d"]
    public_subnet_cidrs   = ["172.20.0.0/24", "172.20.1.0/24", "172.20.2.0/24"]
    private_subnet_cidrs  = ["172.20.16.0/20", "172.20.32.0/20", "172.20.48.0/20"]
    database_subnet_cidrs = ["172.20.64.0/24", "172.20.65.0/24", "172.20.66.0/24"]
  }

  assert {
    condition     = aws_vpc.network_vpc_4E8F0223.cidr_block == "172.20.0.0/16"
    error_message = "The VPC does not take the given CIDR."
  }
  assert {
    condition = (aws_subnet.network_private_subnet_1_FAF2D420.cidr_block == "172.20.32.0/20"
    && aws_subnet.network_private_subnet_1_FAF2D420.availability_zone == "us-west-2c")
    error_message = "The second private subnet is not the given range in the second zone."
  }
}

run "a_subnet_outside_the_vpc_is_refused" {
  command = plan

  variables {
    public_subnet_cidrs = ["10.1.1.0/24", "10.9.2.0/24"]
  }

  expect_failures = [var.public_subnet_cidrs]
}

run "a_zone_of_another_region_is_refused" {
  command = plan

  variables {
    availability_zones = ["eu-west-2a", "us-east-1b", "eu-west-2c"]
  }

  expect_failures = [aws_vpc.network_vpc_4E8F0223]
}

run "a_zone_count_the_module_was_not_exported_for_is_refused" {
  command = plan

  variables {
    availability_zones = ["eu-west-2a", "eu-west-2b"]
  }

  expect_failures = [var.availability_zones]
}

run "a_short_retention_is_refused" {
  command = plan

  variables {
    log_retention_days = 30
  }

  expect_failures = [var.log_retention_days]
}

run "a_name_with_capitals_is_refused" {
  command = plan

  variables {
    project = "Acme"
  }

  expect_failures = [var.project]
}

run "endpoint_service_names_follow_the_provider_region" {
  command = plan

  override_data {
    target = data.aws_region.region
    values = {
      id = "ap-southeast-2"
    }
  }

  variables {
    availability_zones    = ["ap-southeast-2a", "ap-southeast-2b", "ap-southeast-2c"]
    public_subnet_cidrs   = ["10.1.0.0/24", "10.1.1.0/24", "10.1.2.0/24"]
    private_subnet_cidrs  = ["10.1.16.0/20", "10.1.32.0/20", "10.1.48.0/20"]
    database_subnet_cidrs = ["10.1.64.0/24", "10.1.65.0/24", "10.1.66.0/24"]
  }

  assert {
    condition = alltrue([for endpoint in [
      aws_vpc_endpoint.network_endpoint_bedrock_runtime_1538AA0B, aws_vpc_endpoint.network_endpoint_dynamodb_9B966C8A,
      aws_vpc_endpoint.network_endpoint_ecr_api_B2D82744, aws_vpc_endpoint.network_endpoint_ecr_dkr_DF447E50,
      aws_vpc_endpoint.network_endpoint_kms_CFAD7DC1, aws_vpc_endpoint.network_endpoint_logs_22E1F105,
      aws_vpc_endpoint.network_endpoint_s3_AD5B933C, aws_vpc_endpoint.network_endpoint_secretsmanager_3C5D0455,
      aws_vpc_endpoint.network_endpoint_sns_D94891C4, aws_vpc_endpoint.network_endpoint_sqs_AA1C2014,
      aws_vpc_endpoint.network_endpoint_ssm_8C5FA2D1, aws_vpc_endpoint.network_endpoint_ssmmessages_EC669DDE,
      aws_vpc_endpoint.network_endpoint_sts_B3326E72,
    ] : startswith(endpoint.service_name, "com.amazonaws.ap-southeast-2.")])
    error_message = "An endpoint's service name is not the provider region's."
  }
  assert {
    condition     = aws_vpc_endpoint.network_endpoint_bedrock_runtime_1538AA0B.service_name == "com.amazonaws.ap-southeast-2.bedrock-runtime"
    error_message = "The Bedrock endpoint is not the provider region's."
  }
}

run "a_region_without_the_platforms_services_is_refused" {
  command = plan

  override_data {
    target = data.aws_region.region
    values = {
      id = "af-south-1"
    }
  }

  variables {
    availability_zones = ["af-south-1a", "af-south-1b", "af-south-1c"]
  }

  expect_failures = [data.aws_region.region]
}

# terraform test: plan-only runs against a mocked AWS provider (no credentials, no AWS calls).
mock_provider "aws" {
  mock_data "aws_region" {
    defaults = {
      id = "eu-west-2"
    }
  }
  # Ids known at plan, so runs can compare what routes and outputs point at.
  mock_resource "aws_nat_gateway" {
    override_during = plan
  }
  mock_resource "aws_vpc_endpoint" {
    override_during = plan
  }
  mock_resource "aws_route_table" {
    override_during = plan
  }
  mock_resource "aws_subnet" {
    override_during = plan
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
    condition = alltrue([for subnet in concat(
      aws_subnet.network_public_subnet_0_5673B6E0, aws_subnet.network_private_subnet_0_D39C5390,
      aws_subnet.network_database_subnet_0_C9EEA676,
    ) : cidrsubnet(subnet.cidr_block, 0, 0) == subnet.cidr_block && startswith(subnet.cidr_block, "10.1.")])
    error_message = "A subnet lies outside the VPC."
  }
  assert {
    condition     = length(distinct(aws_subnet.network_public_subnet_0_5673B6E0[*].availability_zone)) == 3
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
    condition = (aws_subnet.network_private_subnet_0_D39C5390[1].cidr_block == "172.20.32.0/20"
    && aws_subnet.network_private_subnet_0_D39C5390[1].availability_zone == "us-west-2c")
    error_message = "The second private subnet is not the given range in the second zone."
  }
  assert {
    condition     = aws_vpc_endpoint.network_endpoint_s3_AD5B933C.service_name == "com.amazonaws.us-west-2.s3" && aws_vpc_endpoint.network_endpoint_sts_B3326E72[0].service_name == "com.amazonaws.us-west-2.sts"
    error_message = "The endpoint service names are not the provider region's."
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

run "fewer_than_two_zones_are_refused" {
  command = plan

  variables {
    availability_zones    = ["eu-west-2a"]
    public_subnet_cidrs   = ["10.1.1.0/24"]
    private_subnet_cidrs  = ["10.1.11.0/24"]
    database_subnet_cidrs = ["10.1.21.0/24"]
  }

  expect_failures = [var.availability_zones]
}

run "a_per_zone_list_of_another_length_is_refused" {
  command = plan

  variables {
    availability_zones    = ["eu-west-2a", "eu-west-2b"]
    private_subnet_cidrs  = ["10.1.11.0/24", "10.1.12.0/24"]
    database_subnet_cidrs = ["10.1.21.0/24", "10.1.22.0/24"]
  }

  expect_failures = [var.public_subnet_cidrs]
}

run "two_zones_make_two_of_each_per_zone_resource" {
  command = plan

  variables {
    availability_zones    = ["eu-west-2a", "eu-west-2b"]
    public_subnet_cidrs   = ["10.1.1.0/24", "10.1.2.0/24"]
    private_subnet_cidrs  = ["10.1.11.0/24", "10.1.12.0/24"]
    database_subnet_cidrs = ["10.1.21.0/24", "10.1.22.0/24"]
  }

  assert {
    condition = alltrue([for n in [
      length(aws_subnet.network_public_subnet_0_5673B6E0), length(aws_subnet.network_private_subnet_0_D39C5390),
      length(aws_subnet.network_database_subnet_0_C9EEA676), length(aws_nat_gateway.network_nat_0_0DB24F13),
      length(aws_eip.network_nat_eip_0_8B766712), length(aws_route_table.network_private_0_route_table_8FA662C8),
      length(aws_route.network_private_0_default_route_8C69925E),
      length(aws_route_table_association.network_private_0_route_table_association_0_281315A3),
      length(aws_route_table_association.network_public_route_table_association_0_BD80F85A),
      length(aws_route_table_association.network_database_route_table_association_0_775D85B9),
    ] : n == 2])
    error_message = "Two zones do not make two subnets per tier, NAT gateways, private route tables and routes."
  }
  assert {
    condition     = aws_subnet.network_database_subnet_0_C9EEA676[1].availability_zone == "eu-west-2b" && aws_subnet.network_database_subnet_0_C9EEA676[1].cidr_block == "10.1.22.0/24"
    error_message = "The second database subnet is not the second range in the second zone."
  }
  assert {
    condition     = aws_route.network_private_0_default_route_8C69925E[1].nat_gateway_id == aws_nat_gateway.network_nat_0_0DB24F13[1].id && aws_nat_gateway.network_nat_0_0DB24F13[1].subnet_id == aws_subnet.network_public_subnet_0_5673B6E0[1].id
    error_message = "The second zone does not route through its own NAT gateway in its own public subnet."
  }
  assert {
    condition     = length(output.private_subnet_ids) == 2 && length(output.nat_gateway_ids) == 2 && length(output.private_route_table_ids) == 2
    error_message = "The per-zone outputs do not have an entry per zone."
  }
  # The database ACL: PostgreSQL and Redis from each private subnet, replication between the
  # database subnets, replies to both; every rule number once.
  assert {
    condition = (length(aws_network_acl_rule.network_database_acl_ingress_0_EAF6B26C) == 4
      && length(aws_network_acl_rule.network_database_acl_ingress_1_8D054E77) == 2
      && length(aws_network_acl_rule.network_database_acl_egress_0_9588D51E) == 4
      && length(distinct(concat(aws_network_acl_rule.network_database_acl_ingress_0_EAF6B26C[*].rule_number,
    aws_network_acl_rule.network_database_acl_ingress_1_8D054E77[*].rule_number))) == 6)
    error_message = "The database ACL does not hold one rule per private subnet and port and per database subnet."
  }
  assert {
    condition = (aws_network_acl_rule.network_database_acl_ingress_0_EAF6B26C[3].cidr_block == "10.1.12.0/24"
      && aws_network_acl_rule.network_database_acl_ingress_0_EAF6B26C[3].from_port == 6379
    && aws_network_acl_rule.network_database_acl_ingress_1_8D054E77[0].rule_number == 140)
    error_message = "The database ACL's rules are not numbered in order, CIDR by CIDR."
  }
}

run "four_zones_make_four_of_each_per_zone_resource" {
  command = plan

  override_data {
    target = data.aws_region.region
    values = {
      id = "us-east-1"
    }
  }

  variables {
    availability_zones    = ["us-east-1a", "us-east-1b", "us-east-1c", "us-east-1d"]
    public_subnet_cidrs   = ["10.1.1.0/24", "10.1.2.0/24", "10.1.3.0/24", "10.1.4.0/24"]
    private_subnet_cidrs  = ["10.1.11.0/24", "10.1.12.0/24", "10.1.13.0/24", "10.1.14.0/24"]
    database_subnet_cidrs = ["10.1.21.0/24", "10.1.22.0/24", "10.1.23.0/24", "10.1.24.0/24"]
  }

  assert {
    condition = (length(aws_subnet.network_private_subnet_0_D39C5390) == 4 && length(aws_nat_gateway.network_nat_0_0DB24F13) == 4
    && length(aws_route.network_private_0_default_route_8C69925E) == 4 && length(output.nat_public_ips) == 4)
    error_message = "Four zones do not make four private subnets, NAT gateways and routes."
  }
  assert {
    condition     = aws_subnet.network_public_subnet_0_5673B6E0[3].availability_zone == "us-east-1d"
    error_message = "The fourth public subnet is not in the fourth zone."
  }
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
    condition = alltrue([for endpoint in flatten([
      aws_vpc_endpoint.network_endpoint_bedrock_runtime_1538AA0B[*], aws_vpc_endpoint.network_endpoint_dynamodb_9B966C8A[*],
      aws_vpc_endpoint.network_endpoint_ecr_api_B2D82744[*], aws_vpc_endpoint.network_endpoint_ecr_dkr_DF447E50[*],
      aws_vpc_endpoint.network_endpoint_kms_CFAD7DC1[*], aws_vpc_endpoint.network_endpoint_logs_22E1F105[*],
      aws_vpc_endpoint.network_endpoint_s3_AD5B933C[*], aws_vpc_endpoint.network_endpoint_secretsmanager_3C5D0455[*],
      aws_vpc_endpoint.network_endpoint_sns_D94891C4[*], aws_vpc_endpoint.network_endpoint_sqs_AA1C2014[*],
      aws_vpc_endpoint.network_endpoint_ssm_8C5FA2D1[*], aws_vpc_endpoint.network_endpoint_ssmmessages_EC669DDE[*],
      aws_vpc_endpoint.network_endpoint_sts_B3326E72[*],
    ]) : startswith(endpoint.service_name, "com.amazonaws.ap-southeast-2.")])
    error_message = "An endpoint's service name is not the provider region's."
  }
  assert {
    condition     = aws_vpc_endpoint.network_endpoint_bedrock_runtime_1538AA0B[0].service_name == "com.amazonaws.ap-southeast-2.bedrock-runtime"
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

run "one_nat_gateway_for_every_zone_when_single" {
  command = plan

  variables {
    single_nat_gateway = true
  }

  assert {
    condition     = length(aws_nat_gateway.network_nat_0_0DB24F13) == 1 && length(aws_eip.network_nat_eip_0_8B766712) == 1
    error_message = "single_nat_gateway still creates a NAT gateway (or its Elastic IP) per zone."
  }
  assert {
    condition     = aws_route.network_private_0_default_route_8C69925E[2].nat_gateway_id == aws_nat_gateway.network_nat_0_0DB24F13[0].id
    error_message = "The third zone does not route through the first zone's NAT gateway."
  }
  assert {
    condition     = length(output.nat_gateway_ids) == 3 && length(distinct(output.nat_gateway_ids)) == 1
    error_message = "nat_gateway_ids does not name the one NAT gateway for each zone."
  }
}

run "a_nat_gateway_per_zone_by_default" {
  command = plan

  assert {
    condition = (length(aws_subnet.network_public_subnet_0_5673B6E0) == 3 && length(aws_nat_gateway.network_nat_0_0DB24F13) == 3
      && length(aws_eip.network_nat_eip_0_8B766712) == 3 && length(aws_route_table.network_private_0_route_table_8FA662C8) == 3
    && length(aws_route.network_private_0_default_route_8C69925E) == 3)
    error_message = "Three zones do not make three public subnets, NAT gateways, private route tables and routes."
  }
  assert {
    condition     = aws_route.network_private_0_default_route_8C69925E[2].nat_gateway_id == aws_nat_gateway.network_nat_0_0DB24F13[2].id
    error_message = "The third zone does not route through its own NAT gateway."
  }
  assert {
    condition     = length(output.private_route_table_ids) == 3 && output.public_route_table_id == aws_route_table.network_public_route_table_209C6AB5.id
    error_message = "The route table outputs do not name the module's route tables."
  }
}

run "flow_logs_and_interface_endpoints_are_switches" {
  command = plan

  variables {
    enable_flow_log     = false
    interface_endpoints = ["sts", "logs"]
  }

  assert {
    condition     = length(aws_flow_log.network_flow_log_D93D9BD4) == 0
    error_message = "enable_flow_log = false still creates the flow log."
  }
  assert {
    condition     = length(aws_vpc_endpoint.network_endpoint_sts_B3326E72) == 1 && length(aws_vpc_endpoint.network_endpoint_kms_CFAD7DC1) == 0
    error_message = "interface_endpoints does not decide which interface endpoints exist."
  }
  assert {
    condition     = output.vpc_endpoint_ids["kms"] == null && output.vpc_endpoint_ids["sts"] == aws_vpc_endpoint.network_endpoint_sts_B3326E72[0].id && output.vpc_endpoint_ids["s3"] == aws_vpc_endpoint.network_endpoint_s3_AD5B933C.id
    error_message = "vpc_endpoint_ids does not follow the endpoints created."
  }
}

run "an_unknown_interface_endpoint_is_refused" {
  command = plan

  variables {
    interface_endpoints = ["sts", "ec2"]
  }

  expect_failures = [var.interface_endpoints]
}

run "overlapping_subnets_are_refused" {
  command = plan

  variables {
    database_subnet_cidrs = ["10.1.21.0/24", "10.1.22.0/24", "10.1.12.128/25"]
  }

  expect_failures = [var.database_subnet_cidrs]
}

run "tags_are_merged_into_every_resource" {
  command = plan

  variables {
    tags = { Team = "platform", CostCentre = "42" }
  }

  assert {
    condition     = aws_vpc.network_vpc_4E8F0223.tags["Team"] == "platform" && aws_vpc.network_vpc_4E8F0223.tags["Name"] == "llmlite-prod-vpc"
    error_message = "The VPC's tags are not the given tags merged with its own."
  }
  assert {
    condition     = aws_cloudwatch_log_group.network_flow_log_group_03070248.tags["CostCentre"] == "42" && aws_nat_gateway.network_nat_0_0DB24F13[2].tags["Team"] == "platform"
    error_message = "The given tags do not reach every resource."
  }
}

# terraform test against a local AWS emulator (the runner sets AWS_ENDPOINT_URL and fake
# credentials; nothing leaves loopback). The whole root plans in ap-southeast-2; the
# foundation and network modules then apply as the sandbox configures them and are destroyed
# at the end of the test, which fails if anything refuses. Data and edge are planned only:
# the emulator never finishes deleting a Redis group nor knows the certificate; what else it
# lacks is overridden where it is met, with the missing API named.
provider "aws" {
  region                      = "ap-southeast-2"
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
}

run "the_root_plans_across_three_zones_of_its_region" {
  command = plan

  assert {
    condition     = length(module.network.private_subnet_ids) == 3 && length(module.network.private_route_table_ids) == 3
    error_message = "The sandbox does not span three zones."
  }
  assert {
    condition     = module.data.redis_node_ids == tolist(["acme-sandbox-redis-001"])
    error_message = "redis_replicas = 0 still plans a second Redis node."
  }
}

run "foundation" {
  module {
    source = "../../terraform-modules/foundation"
  }

  # The emulator refuses what AWS accepts (modules/rehearsal/differences.py): it has no ECR
  # pull-through cache rules (ecr-pull-through-cache-rule), and it refuses S3 access logging
  # to a bucket whose log-delivery statement lists one Resource (s3-log-delivery-policy-resource).
  override_resource {
    target = aws_ecr_pull_through_cache_rule.foundation_registry_cache_docker_hub_rule_A581A3CC
  }
  override_resource {
    target = aws_ecr_pull_through_cache_rule.foundation_registry_cache_ghcr_rule_65B49FD1
  }
  override_resource {
    target = aws_s3_bucket_logging.foundation_alb_logs_access_logging_F06907D7
  }
  override_resource {
    target = aws_s3_bucket_logging.foundation_audit_access_logging_AE4C3CCF
  }
  override_resource {
    target = aws_s3_bucket_logging.foundation_trail_bucket_access_logging_1D676D26
  }
  override_resource {
    target = aws_s3_bucket_logging.foundation_waf_logs_access_logging_4B64930F
  }

  variables {
    project             = "acme"
    environment         = "sandbox"
    deletion_protection = false
    log_retention_days  = 14
  }

  assert {
    condition     = startswith(output.kms_key_arn, "arn:aws:kms:ap-southeast-2:444455556666:key/")
    error_message = "The key is not in the provider's region."
  }
  assert {
    condition     = length(aws_s3_bucket_object_lock_configuration.foundation_audit_object_lock_486468F9) == 0 && !aws_s3_bucket.foundation_audit_bucket_F1914CDE.object_lock_enabled
    error_message = "The sandbox's audit bucket is locked: S3 would refuse to suspend its versioning on destroy."
  }
}

run "network" {
  module {
    source = "../../terraform-modules/network"
  }

  variables {
    project                = "acme"
    environment            = "sandbox"
    deletion_protection    = false
    log_retention_days     = 14
    vpc_cidr               = "10.77.0.0/16"
    availability_zones     = ["ap-southeast-2a", "ap-southeast-2b", "ap-southeast-2c"]
    public_subnet_cidrs    = ["10.77.0.0/24", "10.77.1.0/24", "10.77.2.0/24"]
    private_subnet_cidrs   = ["10.77.16.0/20", "10.77.32.0/20", "10.77.48.0/20"]
    database_subnet_cidrs  = ["10.77.64.0/24", "10.77.65.0/24", "10.77.66.0/24"]
    single_nat_gateway     = true
    interface_endpoints    = ["sts"]
    foundation_kms_key_arn = run.foundation.kms_key_arn
  }

  assert {
    condition     = length(output.nat_gateway_ids) == 3 && length(distinct(output.nat_gateway_ids)) == 1 && length(output.nat_public_ips) == 1
    error_message = "The sandbox's three zones do not share one NAT gateway."
  }
  assert {
    condition = (length(aws_subnet.network_public_subnet_0_5673B6E0) == 3 && length(aws_subnet.network_private_subnet_0_D39C5390) == 3
      && length(aws_subnet.network_database_subnet_0_C9EEA676) == 3 && length(aws_route_table.network_private_0_route_table_8FA662C8) == 3
      && length(aws_route.network_private_0_default_route_8C69925E) == 3 && length(aws_nat_gateway.network_nat_0_0DB24F13) == 1
    && aws_subnet.network_private_subnet_0_D39C5390[2].availability_zone == "ap-southeast-2c")
    error_message = "The sandbox's subnets, private route tables and routes do not follow its three zones."
  }
  assert {
    condition     = output.vpc_endpoint_ids["kms"] == null && output.vpc_endpoint_ids["sts"] != null
    error_message = "The sandbox's interface endpoints are not the ones it chose."
  }
}

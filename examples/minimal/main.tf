# The smallest platform from the modules: foundation, network, edge (WAF + ALB), data and the
# LiteLLM gateway; no GPU tier, no realtime API, no observability layer. Dev-sized, in another
# region and address range than the environment the modules were exported from: everything
# below is a variable of the modules, nothing is edited in them.
#
# Without the GPU tier the gateway takes no llm_api_key_secret_arn: its route to the
# self-hosted model (and fallbacks to it) is left out of the LiteLLM config; its Bedrock
# routes serve. Add the llm module and pass its api_key_secret_arn to bring the route back.

terraform {
  required_version = ">= 1.11"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 6.0, < 7.0"
    }
  }
}

provider "aws" {
  region              = "us-west-2"
  allowed_account_ids = ["444455556666"] # the account this root deploys to (example id)
  default_tags {
    tags = {
      Project   = "acme-llm"
      ManagedBy = "terraform"
    }
  }
}

locals {
  project     = "acme"
  environment = "sandbox"
}

module "foundation" {
  source = "../../terraform-modules/foundation"

  project            = local.project
  environment        = local.environment
  log_retention_days = 90
}

module "network" {
  source = "../../terraform-modules/network"

  project                = local.project
  environment            = local.environment
  log_retention_days     = 90
  vpc_cidr               = "10.40.0.0/16"
  availability_zones     = ["us-west-2a", "us-west-2b", "us-west-2c"]
  public_subnet_cidrs    = ["10.40.0.0/24", "10.40.1.0/24", "10.40.2.0/24"]
  private_subnet_cidrs   = ["10.40.16.0/20", "10.40.32.0/20", "10.40.48.0/20"]
  database_subnet_cidrs  = ["10.40.64.0/24", "10.40.65.0/24", "10.40.66.0/24"]
  foundation_kms_key_arn = module.foundation.kms_key_arn
}

module "edge" {
  source = "../../terraform-modules/edge"

  project                       = local.project
  environment                   = local.environment
  log_retention_days            = 90
  certificate_arn               = "arn:aws:acm:us-west-2:444455556666:certificate/0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
  foundation_alb_log_bucket     = module.foundation.alb_log_bucket
  foundation_waf_log_bucket_arn = module.foundation.waf_log_bucket_arn
  network_nat_public_ips        = module.network.nat_public_ips
  network_public_subnet_ids     = module.network.public_subnet_ids
  network_security_group_ids    = module.network.security_group_ids
  network_vpc_id                = module.network.vpc_id
}

module "data" {
  source = "../../terraform-modules/data"

  project                     = local.project
  environment                 = local.environment
  log_retention_days          = 90
  redis_node_type             = "cache.t4g.micro"
  db_instance_class           = "db.t4g.micro" # the gateway's pool follows it (db_max_connections)
  db_storage_gb               = 20
  db_max_storage_gb           = 50
  backup_retention_days       = 3
  availability_zones          = ["us-west-2a", "us-west-2b", "us-west-2c"] # the network's: Redis nodes
  foundation_kms_key_arn      = module.foundation.kms_key_arn
  network_database_subnet_ids = module.network.database_subnet_ids
  network_security_group_ids  = module.network.security_group_ids
}

module "gateway" {
  source = "../../terraform-modules/gateway"

  project               = local.project
  environment           = local.environment
  log_retention_days    = 90
  gateway_image         = "ghcr.io/berriai/litellm:v1.108.11"
  gateway_min_tasks     = 1
  gateway_desired_tasks = 1
  gateway_max_tasks     = 2
  gateway_cpu           = 512
  gateway_memory        = 1024

  data_db_address                 = module.data.db_address
  data_db_master_secret_arn       = module.data.db_master_secret_arn
  data_db_max_connections         = module.data.db_max_connections
  data_db_name                    = module.data.db_name
  data_db_port                    = module.data.db_port
  data_redis_address              = module.data.redis_address
  data_redis_auth_secret_arn      = module.data.redis_auth_secret_arn
  data_redis_port                 = module.data.redis_port
  edge_target_group_arn           = module.edge.target_group_arn
  foundation_audit_bucket_arn     = module.foundation.audit_bucket_arn
  foundation_kms_key_arn          = module.foundation.kms_key_arn
  foundation_replica_kms_key_arns = module.foundation.replica_kms_key_arns
  network_private_subnet_ids      = module.network.private_subnet_ids
  network_security_group_ids      = module.network.security_group_ids
}

output "alb_dns_name" {
  description = "Point the API's domain at this name"
  value       = module.edge.alb_dns_name
}

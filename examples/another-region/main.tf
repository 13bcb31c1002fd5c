# A team's own sandbox in another region than the environments' (ap-southeast-2), across
# three zones, from the exported modules as they are: the stored data is unprotected
# (deletion_protection = false) so `terraform destroy` removes everything, one NAT gateway
# serves the three zones, and only the interface endpoints the sandbox uses are created.
# Every setting below is a variable of the modules; nothing is edited in them.

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
  region              = "ap-southeast-2"
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

  project             = local.project
  environment         = local.environment
  deletion_protection = false
  log_retention_days  = 14
}

module "network" {
  source = "../../terraform-modules/network"

  project                = local.project
  environment            = local.environment
  deletion_protection    = false
  log_retention_days     = 14
  vpc_cidr               = "10.77.0.0/16"
  availability_zones     = ["ap-southeast-2a", "ap-southeast-2b", "ap-southeast-2c"]
  public_subnet_cidrs    = ["10.77.0.0/24", "10.77.1.0/24", "10.77.2.0/24"]
  private_subnet_cidrs   = ["10.77.16.0/20", "10.77.32.0/20", "10.77.48.0/20"]
  database_subnet_cidrs  = ["10.77.64.0/24", "10.77.65.0/24", "10.77.66.0/24"]
  single_nat_gateway     = true
  interface_endpoints    = ["ecr.api", "ecr.dkr", "logs", "secretsmanager", "kms", "sts"]
  foundation_kms_key_arn = module.foundation.kms_key_arn
}

module "edge" {
  source = "../../terraform-modules/edge"

  project                       = local.project
  environment                   = local.environment
  deletion_protection           = false
  log_retention_days            = 14
  certificate_arn               = "arn:aws:acm:ap-southeast-2:444455556666:certificate/0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
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
  deletion_protection         = false
  log_retention_days          = 14
  multi_az                    = false # one database in one zone
  redis_replicas              = 0     # and one Redis node (no failover)
  db_instance_class           = "db.t4g.medium"
  postgres_version            = "16"
  redis_node_type             = "cache.t4g.micro"
  redis_version               = "7.1"
  db_storage_gb               = 20
  db_max_storage_gb           = 50
  backup_retention_days       = 1
  availability_zones          = ["ap-southeast-2a", "ap-southeast-2b", "ap-southeast-2c"] # the network's: Redis nodes
  foundation_kms_key_arn      = module.foundation.kms_key_arn
  network_database_subnet_ids = module.network.database_subnet_ids
  network_security_group_ids  = module.network.security_group_ids
}

output "alb_dns_name" {
  description = "Point the sandbox's domain at this name"
  value       = module.edge.alb_dns_name
}

output "private_route_table_ids" {
  description = "Route tables of the private subnets, for peering or a transit gateway"
  value       = module.network.private_route_table_ids
}

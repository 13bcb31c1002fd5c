# A plain Terraform root that consumes the platform's layers as modules, the way a team
# without Python would: one provider, one backend, the modules wired output -> input.
# Module sources are local paths here; from another repository use a git source, e.g.
#   source = "git::https://example.com/platform/llm-platform.git//terraform-modules/network?ref=v1.0.0"

terraform {
  required_version = ">= 1.11"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 6.0, < 7.0"
    }
  }
  backend "s3" {
    bucket              = "llmlite-prod-tfstate-111122223333"
    key                 = "llm-platform/modules/terraform.tfstate"
    region              = "eu-west-2"
    encrypt             = true
    use_lockfile        = true
    allowed_account_ids = ["111122223333"] # the account this root deploys to (example id)
  }
}

provider "aws" {
  region = "eu-west-2"
  # Credentials of any other account stop the plan before it changes anything.
  allowed_account_ids = ["111122223333"]
  default_tags {
    tags = {
      Project   = "llmlite"
      ManagedBy = "terraform"
    }
  }
}

module "foundation" {
  source = "../../terraform-modules/foundation"
}

module "network" {
  source = "../../terraform-modules/network"

  foundation_kms_key_arn = module.foundation.kms_key_arn
}

module "edge" {
  source = "../../terraform-modules/edge"

  foundation_alb_log_bucket     = module.foundation.alb_log_bucket
  foundation_waf_log_bucket_arn = module.foundation.waf_log_bucket_arn
  network_nat_public_ips        = module.network.nat_public_ips
  network_public_subnet_ids     = module.network.public_subnet_ids
  network_security_group_ids    = module.network.security_group_ids
  network_vpc_id                = module.network.vpc_id
}

module "data" {
  source = "../../terraform-modules/data"

  foundation_kms_key_arn      = module.foundation.kms_key_arn
  network_database_subnet_ids = module.network.database_subnet_ids
  network_security_group_ids  = module.network.security_group_ids
}

module "gateway" {
  source = "../../terraform-modules/gateway"

  # Settings with defaults from the exported environment may be overridden.
  gateway_image     = "ghcr.io/berriai/litellm:v1.108.11"
  gateway_min_tasks = 2

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
  llm_api_key_secret_arn          = module.llm.api_key_secret_arn
  network_private_subnet_ids      = module.network.private_subnet_ids
  network_security_group_ids      = module.network.security_group_ids
}

module "llm" {
  source = "../../terraform-modules/llm"

  foundation_access_log_bucket = module.foundation.access_log_bucket
  foundation_alb_log_bucket    = module.foundation.alb_log_bucket
  foundation_kms_key_arn       = module.foundation.kms_key_arn
  network_private_subnet_ids   = module.network.private_subnet_ids
  network_security_group_ids   = module.network.security_group_ids
  network_vpc_id               = module.network.vpc_id
}

module "realtime" {
  source = "../../terraform-modules/realtime"

  data_connections_table_arn  = module.data.connections_table_arn
  data_connections_table_name = module.data.connections_table_name
  data_history_table_arn      = module.data.history_table_arn
  data_history_table_name     = module.data.history_table_name
  data_redis_address          = module.data.redis_address
  data_redis_auth_secret_arn  = module.data.redis_auth_secret_arn
  data_redis_port             = module.data.redis_port
  foundation_kms_key_arn      = module.foundation.kms_key_arn
  network_private_subnet_ids  = module.network.private_subnet_ids
  network_security_group_ids  = module.network.security_group_ids
}

module "observability" {
  source = "../../terraform-modules/observability"

  alarm_emails = ["platform-oncall@example.com"]

  data_connections_table_name             = module.data.connections_table_name
  data_db_instance_id                     = module.data.db_instance_id
  data_db_max_connections                 = module.data.db_max_connections
  data_db_storage_gb                      = module.data.db_storage_gb
  data_history_table_name                 = module.data.history_table_name
  data_redis_node_ids                     = module.data.redis_node_ids
  edge_alb_arn_suffix                     = module.edge.alb_arn_suffix
  edge_target_group_arn_suffix            = module.edge.target_group_arn_suffix
  edge_web_acl_name                       = module.edge.web_acl_name
  foundation_kms_key_arn                  = module.foundation.kms_key_arn
  gateway_cluster_name                    = module.gateway.cluster_name
  gateway_log_group_name                  = module.gateway.log_group_name
  gateway_redeploy_dead_letter_queue_name = module.gateway.redeploy_dead_letter_queue_name
  gateway_redeploy_state_machine_arn      = module.gateway.redeploy_state_machine_arn
  gateway_service_name                    = module.gateway.service_name
  llm_alb_arn_suffix                      = module.llm.alb_arn_suffix
  llm_asg_name                            = module.llm.asg_name
  llm_target_group_arn_suffix             = module.llm.target_group_arn_suffix
  realtime_api_id                         = module.realtime.api_id
  realtime_dead_letter_queue_name         = module.realtime.dead_letter_queue_name
  realtime_function_names                 = module.realtime.function_names
  realtime_request_queue_name             = module.realtime.request_queue_name
  realtime_stage                          = module.realtime.stage
}

output "alb_dns_name" {
  description = "Point the API's domain at this name"
  value       = module.edge.alb_dns_name
}

output "websocket_url" {
  description = "WebSocket URL of the chat API"
  value       = module.realtime.websocket_url
}

output "dashboard_url" {
  description = "CloudWatch dashboard of the platform"
  value       = module.observability.dashboard_url
}

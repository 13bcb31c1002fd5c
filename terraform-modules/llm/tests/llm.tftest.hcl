# terraform test: plan-only runs with the real AWS provider pointed at a local AWS emulator
# (the runner sets AWS_ENDPOINT_URL; no credentials, nothing leaves loopback). Not a mocked
# provider: Terraform 1.11's mock providers cannot mock the ephemeral resource the generated
# API key uses ("No ephemeral resource types in mock providers").
provider "aws" {
  region                      = "us-west-2"
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
}

# AWS publishes the Deep Learning AMI's id under /aws/service/…, a path the emulator reserves.
override_data {
  target = data.aws_ssm_parameter.llm_ami_35CC1587
  values = {
    insecure_value = "ami-0123456789abcdef0"
  }
}

variables {
  certificate_arn              = "arn:aws:acm:us-west-2:444455556666:certificate/0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
  foundation_access_log_bucket = "acme-sandbox-access-logs-444455556666"
  foundation_alb_log_bucket    = "acme-sandbox-alb-logs-444455556666"
  foundation_kms_key_arn       = "arn:aws:kms:us-west-2:444455556666:key/11111111-2222-3333-4444-555555555555"
  network_private_subnet_ids   = ["subnet-0a", "subnet-0b"]
  network_security_group_ids   = { alb = "sg-01", gateway = "sg-02", database = "sg-03", redis = "sg-04", lambda = "sg-05", llm_alb = "sg-06", gpu = "sg-07" }
  network_vpc_id               = "vpc-0123456789abcdef0"
}

run "the_gpu_group_is_sized_by_the_inputs" {
  command = plan

  variables {
    project           = "acme"
    environment       = "sandbox"
    instance_type     = "g6.2xlarge"
    gpu_min_hosts     = 0
    gpu_desired_hosts = 1
    gpu_max_hosts     = 2
    on_demand_base    = 0
    root_volume_gb    = 120
  }

  assert {
    condition     = aws_autoscaling_group.llm_group_94B3E3CC.min_size == 0 && aws_autoscaling_group.llm_group_94B3E3CC.desired_capacity == 1 && aws_autoscaling_group.llm_group_94B3E3CC.max_size == 2
    error_message = "The GPU group does not follow the host counts."
  }
  assert {
    condition     = aws_launch_template.llm_launch_template_5E04D584.instance_type == "g6.2xlarge" && aws_launch_template.llm_launch_template_5E04D584.block_device_mappings[0].ebs[0].volume_size == 120
    error_message = "The launch template does not follow instance_type and root_volume_gb."
  }
  assert {
    condition     = aws_launch_template.llm_launch_template_5E04D584.metadata_options[0].http_tokens == "required"
    error_message = "GPU hosts do not require IMDSv2."
  }
  assert {
    condition     = aws_lb.llm_alb_7F6EC7D7.internal
    error_message = "The model's load balancer is not internal."
  }
}

run "a_gpu_type_with_more_gpu_memory_than_its_spot_alternatives_is_refused" {
  command = plan

  variables {
    instance_type = "g6e.xlarge"
  }

  expect_failures = [var.instance_type]
}

run "a_root_volume_that_cannot_hold_the_model_is_refused" {
  command = plan

  variables {
    root_volume_gb = 40
  }

  expect_failures = [var.root_volume_gb]
}

run "throughput_beyond_the_iops_is_refused" {
  command = plan

  variables {
    root_volume_iops             = 3000
    root_volume_throughput_mibps = 1000
  }

  expect_failures = [var.root_volume_throughput_mibps]
}

run "host_counts_out_of_order_are_refused" {
  command = plan

  variables {
    gpu_min_hosts     = 3
    gpu_desired_hosts = 1
    gpu_max_hosts     = 4
  }

  expect_failures = [var.gpu_min_hosts]
}

run "a_certificate_of_another_region_is_refused" {
  command = plan

  variables {
    certificate_arn = "arn:aws:acm:eu-west-2:444455556666:certificate/0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
  }

  expect_failures = [var.certificate_arn]
}

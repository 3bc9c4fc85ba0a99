# Generated from settings_cases.toml by crates/settings/tests/settings_cases.rs; do not edit.
# UPDATE_SETTINGS_CASES=1 cargo test -p settings --test settings_cases rewrites it.
# Run n sets each variable's n-th value of the table (refused ones first) and expects exactly
# the refused ones to fail, so a few plans answer the whole table.

# Variable validations only: without Loki no precondition of its resources runs.
variables {
  loki_enabled = false
}

mock_provider "aws" {
  override_during = plan

  mock_data "aws_partition" {
    defaults = { partition = "aws" }
  }
}

run "settings_cases_1" {
  command = plan

  variables {
    alloy_image                     = "grafana/alloy:v1.21.2"
    alloy_memory                    = 127
    amp_workspace_id                = "ws-0123456789"
    aws_account_id                  = "12345678901"
    aws_region                      = "eu-wst-1"
    capacity_provider_name          = "FARGATE"
    ecs_cluster_name                = "temporal dev"
    environment                     = "my_env"
    grafana_image                   = "grafana/grafana:13.2.3-1a2b3c4"
    instance_security_group_id      = "sg-0123456789abcdef"
    loki_count                      = 2
    loki_cpu                        = 3
    loki_image                      = "grafana/loki:3.7.6"
    loki_ingestion_mb_per_s         = 0
    loki_memory                     = 511
    loki_retention_days             = 0
    private_subnet_ids              = ["bogus"]
    project_name                    = "Temporal_Dev"
    s3_prefix_list_id               = "pl-6da5400"
    service_connect_namespace_arn   = "arn:aws:servicediscovery:eu-west-1:123456789012:service/srv-abcdefghijklmnop"
    temporal_db_host                = "db host"
    temporal_db_name                = ""
    temporal_db_password_secret_arn = "hunter2"
    temporal_db_port                = 0
    temporal_db_user                = "1temporal"
    temporal_image                  = "temporalio/server"
    temporal_visibility_db_name     = "temporal visibility"
    vpc_cidr                        = "10.0.0.0/33"
    vpc_id                          = "vpc-0123456789"
  }

  expect_failures = [var.alloy_image, var.alloy_memory, var.amp_workspace_id, var.aws_account_id, var.aws_region, var.capacity_provider_name, var.ecs_cluster_name, var.environment, var.grafana_image, var.instance_security_group_id, var.loki_count, var.loki_cpu, var.loki_image, var.loki_ingestion_mb_per_s, var.loki_memory, var.loki_retention_days, var.private_subnet_ids, var.project_name, var.s3_prefix_list_id, var.service_connect_namespace_arn, var.temporal_db_host, var.temporal_db_name, var.temporal_db_password_secret_arn, var.temporal_db_port, var.temporal_db_user, var.temporal_image, var.temporal_visibility_db_name, var.vpc_cidr, var.vpc_id]
}

run "settings_cases_2" {
  command = plan

  variables {
    alloy_image                     = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/docker-hub/grafana/alloy:latest"
    alloy_memory                    = 2049
    amp_workspace_id                = "ws-01234567-89AB-cdef-0123-456789abcdef"
    aws_account_id                  = "12345678901a"
    aws_region                      = "Not A Region!"
    capacity_provider_name          = "ecs-arm64"
    ecs_cluster_name                = "temporal_dev-1"
    environment                     = "2dev"
    grafana_image                   = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/temporal-dev-grafana:latest"
    instance_security_group_id      = "bogus"
    loki_count                      = 0
    loki_cpu                        = -512
    loki_image                      = "public.ecr.aws/grafana/loki:3.7.6"
    loki_ingestion_mb_per_s         = 1001
    loki_memory                     = -1024
    loki_retention_days             = 10
    private_subnet_ids              = []
    project_name                    = "ab"
    temporal_db_host                = "-db.internal"
    temporal_db_name                = "temporal_2"
    temporal_db_password_secret_arn = "arn:aws:ssm:eu-west-1:123456789012:parameter/temporal/db-password"
    temporal_db_port                = 65536
    vpc_cidr                        = "10.0.0.1/16"
    vpc_id                          = "vpc-0123456789ABCDEF0"
  }

  expect_failures = [var.alloy_image, var.alloy_memory, var.amp_workspace_id, var.aws_account_id, var.aws_region, var.capacity_provider_name, var.environment, var.grafana_image, var.instance_security_group_id, var.loki_count, var.loki_cpu, var.loki_image, var.loki_ingestion_mb_per_s, var.loki_memory, var.loki_retention_days, var.private_subnet_ids, var.project_name, var.temporal_db_host, var.temporal_db_port, var.vpc_cidr, var.vpc_id]
}

run "settings_cases_3" {
  command = plan

  variables {
    alloy_image                = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/mirror/alloy:v1.21.2"
    alloy_memory               = 256
    aws_account_id             = "210987654321"
    aws_region                 = "us-east-9"
    environment                = "dev-2"
    grafana_image              = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/temporal-dev-grafana:13.2.3-1a2b3c4"
    instance_security_group_id = "sg-01234567"
    loki_count                 = 10
    loki_cpu                   = 512.5
    loki_image                 = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/docker-hub/grafana/loki:latest"
    loki_memory                = 200000
    loki_retention_days        = -7
    private_subnet_ids         = ["subnet-0123456789abcdef0", "subnet-0123456789abcdef0"]
    project_name               = "xn--temporal"
    temporal_db_host           = "db..internal"
    temporal_db_port           = -5432
    vpc_cidr                   = "10.0.0.0/8"
    vpc_id                     = "bogus"
  }

  expect_failures = [var.aws_region, var.loki_count, var.loki_cpu, var.loki_image, var.loki_memory, var.loki_retention_days, var.private_subnet_ids, var.project_name, var.temporal_db_host, var.temporal_db_port, var.vpc_cidr, var.vpc_id]
}

run "settings_cases_4" {
  command = plan

  variables {
    aws_region          = "EU-WEST-1"
    loki_count          = -1
    loki_image          = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/docker-hub/grafana/loki:3.6.4"
    loki_memory         = 4096
    loki_retention_days = 3650
    private_subnet_ids  = ["subnet-0123456789abcdef0", "subnet-0123456789"]
    project_name        = "sthree-logs"
    temporal_db_host    = "10.0.0.5"
    temporal_db_port    = 65535
    vpc_cidr            = "010.0.0.0/16"
    vpc_id              = "vpc-01234567"
  }

  expect_failures = [var.aws_region, var.loki_count, var.loki_image, var.loki_retention_days, var.private_subnet_ids, var.project_name, var.vpc_cidr]
}

run "settings_cases_5" {
  command = plan

  variables {
    aws_region          = "ap-southeast-5"
    loki_image          = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/docker-hub/grafana/loki:3.7.0"
    loki_retention_days = 3288
    private_subnet_ids  = ["subnet-01234567"]
    project_name        = "temporal-"
    temporal_db_host    = "db.internal"
    vpc_cidr            = "10.0.0.0"
  }

  expect_failures = [var.project_name, var.vpc_cidr]
}

run "settings_cases_6" {
  command = plan

  variables {
    aws_region   = "us-gov-west-1"
    project_name = "temporal-dev-eu-west-1-ab"
    vpc_cidr     = "300.0.0.0/16"
  }

  expect_failures = [var.project_name, var.vpc_cidr]
}

run "settings_cases_7" {
  command = plan

  variables {
    project_name = "abc"
    vpc_cidr     = "172.31.0.0/28"
  }
}

# Temporal frontend: the gRPC entry point, reachable as temporal-frontend:7233 through Service
# Connect. This file also holds what the five Temporal-side services share (service list, settings,
# security group), because every other service and client connects through the frontend.

data "aws_partition" "temporal" {}

locals {
  # Services that carry a collector sidecar; keys of var.service_collectors.
  temporal_services = ["history", "matching", "frontend", "worker", "benchmark-worker"]

  amp_workspace_arn = "arn:${data.aws_partition.temporal.partition}:aps:${var.aws_region}:${var.aws_account_id}:workspace/${var.amp_workspace_id}"

  temporal_platform = {
    project_name                  = var.project_name
    aws_region                    = var.aws_region
    ecs_cluster_name              = var.ecs_cluster_name
    capacity_provider_name        = var.capacity_provider_name
    subnet_ids                    = var.private_subnet_ids
    security_group_ids            = [aws_security_group.temporal.id]
    service_connect_namespace_arn = var.service_connect_namespace_arn
    amp_workspace_arn             = local.amp_workspace_arn
    # req 5.5: the CloudWatch retention follows Loki's.
    log_retention_days      = var.loki_retention_days
    cloudwatch_parallel_run = var.cloudwatch_parallel_run
    # Each container's json-file log outlasts a Loki restart (log-buffer.tf).
    docker_log_file_mb = local.docker_log_file_mb
    docker_log_files   = local.docker_log_files
    # Lines the awslogs driver holds while CloudWatch is slow (log-buffer.tf).
    awslogs_max_buffered_events = local.awslogs_max_buffered_events
    # One trust policy for every task role (iam.tf): only this account's ECS tasks.
    task_assume_role_policy = local.ecs_tasks_assume_role_policy
    # A pull-through cache's first pull creates the repository (images.tf).
    ecr_repository_arns = local.ecr_repository_arns
  }

  temporal_frontend_address = "temporal-frontend:7233"

  # Environment of the temporalio/server image (docker-builds config template). BIND_ON_IP stays
  # unset: the entrypoint then binds to the task ENI's address, which is also what the other
  # roles reach over the membership ring.
  temporal_server_environment = {
    DB                      = "postgres12"
    DB_PORT                 = tostring(var.temporal_db_port)
    POSTGRES_SEEDS          = var.temporal_db_host
    POSTGRES_USER           = var.temporal_db_user
    DBNAME                  = var.temporal_db_name
    VISIBILITY_DBNAME       = var.temporal_visibility_db_name
    POSTGRES_TLS_ENABLED    = tostring(var.temporal_db_tls_enabled)
    NUM_HISTORY_SHARDS      = tostring(var.temporal_history_shards)
    PROMETHEUS_ENDPOINT     = "0.0.0.0:9090"
    PUBLIC_FRONTEND_ADDRESS = local.temporal_frontend_address
    LOG_LEVEL               = "info"
  }

  # Resolved by the ECS agent at task start; never a plain-text value in the task definition.
  temporal_server_secrets = {
    POSTGRES_PWD = var.temporal_db_password_secret_arn
  }
}

#### Security group shared by the Temporal-side tasks ###########################################

resource "aws_security_group" "temporal" {
  name_prefix = "${var.project_name}-temporal-"
  description = "Temporal services and benchmark worker: gRPC and membership among themselves"
  vpc_id      = var.vpc_id

  tags = {
    Name = "${var.project_name}-temporal"
  }

  lifecycle {
    create_before_destroy = true
  }
}

locals {
  # Temporal's port ranges: membership 6933-6939, gRPC 7233-7239, frontend HTTP 7243.
  temporal_peer_port_ranges = {
    membership = { from = 6933, to = 6939 }
    grpc       = { from = 7233, to = 7239 }
    http       = { from = 7243, to = 7243 }
  }
}

resource "aws_vpc_security_group_ingress_rule" "temporal_peers" {
  for_each = local.temporal_peer_port_ranges

  security_group_id            = aws_security_group.temporal.id
  description                  = "Temporal ${each.key} between Temporal tasks"
  ip_protocol                  = "tcp"
  from_port                    = each.value.from
  to_port                      = each.value.to
  referenced_security_group_id = aws_security_group.temporal.id
}

# Database, peers, Loki and VPC endpoints are all inside the VPC.
resource "aws_vpc_security_group_egress_rule" "temporal_to_vpc" {
  security_group_id = aws_security_group.temporal.id
  description       = "TCP inside the VPC: database, Temporal peers, Loki, VPC endpoints"
  ip_protocol       = "tcp"
  from_port         = 0
  to_port           = 65535
  cidr_ipv4         = var.vpc_cidr
}

# AMP remote write (and other AWS APIs) through NAT when the VPC has no interface endpoint for them.
resource "aws_vpc_security_group_egress_rule" "temporal_to_https" {
  security_group_id = aws_security_group.temporal.id
  description       = "HTTPS to AWS APIs (AMP remote write)"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}

#### Frontend ###################################################################################

module "temporal_frontend" {
  source = "./modules/temporal-service"

  name          = "temporal-frontend"
  service       = "frontend"
  image         = var.temporal_image
  cpu           = var.temporal_service_sizes["frontend"].cpu
  memory        = var.temporal_service_sizes["frontend"].memory
  desired_count = var.temporal_service_sizes["frontend"].desired_count

  ports       = { grpc = 7233, membership = 6933, http = 7243 }
  environment = merge(local.temporal_server_environment, { SERVICES = "frontend" })
  secrets     = local.temporal_server_secrets

  service_connect_server = {
    port_name = "grpc"
    dns_name  = "temporal-frontend"
    port      = 7233
  }

  platform        = local.temporal_platform
  loki_service_id = local.loki_enabled ? aws_ecs_service.loki[0].id : null
  sidecar         = local.service_sidecars["frontend"]
}

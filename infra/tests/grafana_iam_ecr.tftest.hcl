# Grafana's image repository and roles (plan task 6.3; req 4.4, 6.6, 9.4): immutable scanned tags with
# a bounded history; AMP query on one workspace; the admin secret readable by ECS only.

variables {
  aws_region                    = "eu-west-1"
  aws_account_id                = "123456789012"
  project_name                  = "temporal-dev"
  environment                   = "example"
  rendered_config_dir           = "../rendered/example"
  vpc_id                        = "vpc-0123456789abcdef0"
  vpc_cidr                      = "10.0.0.0/16"
  private_subnet_ids            = ["subnet-0123456789abcdef0", "subnet-0fedcba9876543210"]
  ecs_cluster_name              = "temporal-dev"
  capacity_provider_name        = "temporal-dev-arm64"
  instance_security_group_id    = "sg-0123456789abcdef0"
  service_connect_namespace_arn = "arn:aws:servicediscovery:eu-west-1:123456789012:namespace/ns-abcdefghijklmnop"
  s3_prefix_list_id             = "pl-6da54004"
  amp_workspace_id              = "ws-01234567-89ab-cdef-0123-456789abcdef"
  loki_image                    = "grafana/loki:3.7.6"
  alloy_image                   = "grafana/alloy:v1.21.2"
  temporal_image                = "temporalio/server:1.28.1"
  temporal_db_host              = "temporal-db.example.internal"

  temporal_db_password_secret_arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:temporal-db-AbCdEf"
}

mock_provider "aws" {
  override_during = plan
}

override_data {
  target = data.aws_partition.temporal
  values = { partition = "aws" }
}

override_resource {
  target          = aws_secretsmanager_secret.grafana_admin
  override_during = plan
  values          = { arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:temporal-dev/grafana/admin-AbCdEf" }
}

run "req_4_4_ecr_tags_are_immutable_and_scanned" {
  command = plan

  assert {
    condition     = aws_ecr_repository.grafana.image_tag_mutability == "IMMUTABLE"
    error_message = "A pushed <version>-<commit> tag must never be overwritten."
  }
  assert {
    condition     = aws_ecr_repository.grafana.image_scanning_configuration[0].scan_on_push
    error_message = "Every pushed image must be scanned."
  }
}

run "req_4_4_ecr_keeps_the_last_n_images" {
  command = plan

  variables {
    grafana_image_keep_count = 7
  }

  assert {
    condition = (
      jsondecode(aws_ecr_lifecycle_policy.grafana.policy).rules[0].selection.countType == "imageCountMoreThan" &&
      jsondecode(aws_ecr_lifecycle_policy.grafana.policy).rules[0].selection.countNumber == 7 &&
      jsondecode(aws_ecr_lifecycle_policy.grafana.policy).rules[0].action.type == "expire"
    )
    error_message = "The lifecycle policy must expire all but the newest grafana_image_keep_count images."
  }
}

run "req_9_4_req_6_6_task_role_queries_one_amp_workspace" {
  command = plan

  assert {
    condition = (
      toset(jsondecode(aws_iam_role_policy.grafana_task_amp.policy).Statement[0].Action) ==
      toset(["aps:QueryMetrics", "aps:GetSeries", "aps:GetLabels", "aps:GetMetricMetadata"])
    )
    error_message = "Grafana's task role may only query AMP (no remote write, no workspace management)."
  }
  assert {
    condition     = jsondecode(aws_iam_role_policy.grafana_task_amp.policy).Statement[0].Resource == ["arn:aws:aps:eu-west-1:123456789012:workspace/ws-01234567-89ab-cdef-0123-456789abcdef"]
    error_message = "AMP queries must be limited to this environment's workspace."
  }
}

run "req_6_6_execution_role_reads_only_the_admin_secret" {
  command = plan

  assert {
    condition = (
      jsondecode(aws_iam_role_policy.grafana_execution_secret.policy).Statement[0].Action == ["secretsmanager:GetSecretValue"] &&
      jsondecode(aws_iam_role_policy.grafana_execution_secret.policy).Statement[0].Resource == ["arn:aws:secretsmanager:eu-west-1:123456789012:secret:temporal-dev/grafana/admin-AbCdEf"]
    )
    error_message = "The execution role may read the Grafana admin secret and nothing else from Secrets Manager."
  }
}

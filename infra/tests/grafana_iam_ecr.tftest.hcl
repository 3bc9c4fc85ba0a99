# Grafana's image repository and roles (plan task 6.3; req 4.4, 6.6, 9.4): immutable scanned tags with
# a bounded history; AMP query on one workspace; the admin secret readable by ECS only.

mock_provider "aws" {
  override_during = plan

  # The VPC's interface endpoints (security-groups.tf requires them without routed egress).
  mock_data "aws_vpc_endpoint" {
    defaults = { vpc_endpoint_type = "Interface", state = "available", private_dns_enabled = true }
  }
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

# req: 4.4, 9.4, 6.6
# Every check of the plan with this file's variables: one plan, many assertions.
run "grafana_iam_ecr_with_the_file_variables" {
  command = plan

  # ecr tags are immutable and scanned (4.4)
  assert {
    condition     = aws_ecr_repository.grafana.image_tag_mutability == "IMMUTABLE"
    error_message = "A pushed <version>-<commit> tag must never be overwritten."
  }
  assert {
    condition     = aws_ecr_repository.grafana.image_scanning_configuration[0].scan_on_push
    error_message = "Every pushed image must be scanned."
  }

  # task role queries one amp workspace (9.4, 6.6)
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

  # execution role reads only the admin secret (6.6)
  assert {
    condition = (
      jsondecode(aws_iam_role_policy.grafana_execution_secret.policy).Statement[0].Action == ["secretsmanager:GetSecretValue"] &&
      jsondecode(aws_iam_role_policy.grafana_execution_secret.policy).Statement[0].Resource == ["arn:aws:secretsmanager:eu-west-1:123456789012:secret:temporal-dev/grafana/admin-AbCdEf"]
    )
    error_message = "The execution role may read the Grafana admin secret and nothing else from Secrets Manager."
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

# Loki's roles (req 2.6, 6.6): credentials come from the task role through the ECS agent, never keys.

locals {
  # Every task role (Loki, Grafana, the Temporal services) may only be assumed by ECS tasks of
  # this account (confused-deputy guard).
  ecs_tasks_assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Effect    = "Allow"
        Principal = { Service = "ecs-tasks.amazonaws.com" }
        Action    = "sts:AssumeRole"
        Condition = {
          StringEquals = { "aws:SourceAccount" = var.aws_account_id }
          ArnLike      = { "aws:SourceArn" = "arn:${local.partition}:ecs:${var.aws_region}:${var.aws_account_id}:*" }
        }
      },
    ]
  })
}

# What Loki itself may do.
resource "aws_iam_role" "loki_task" {
  count = local.loki_enabled ? 1 : 0

  name               = "${local.loki_name}-task"
  description        = "Loki task role: read/write its S3 bucket, ECS Exec"
  assume_role_policy = local.ecs_tasks_assume_role_policy
}

# The documented minimum for Loki on S3, on this bucket only.
resource "aws_iam_role_policy" "loki_task_s3" {
  count = local.loki_enabled ? 1 : 0

  name = "loki-s3"
  role = aws_iam_role.loki_task[0].id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid      = "ListLokiBucket"
        Effect   = "Allow"
        Action   = ["s3:ListBucket"]
        Resource = [local.loki_bucket_arn]
      },
      {
        Sid      = "ReadWriteLokiObjects"
        Effect   = "Allow"
        Action   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
        Resource = ["${local.loki_bucket_arn}/*"]
      },
    ]
  })
}

# ECS Exec (to run `loki -health` by hand); ssmmessages has no resource-level permissions.
resource "aws_iam_role_policy" "loki_task_exec" {
  count = local.loki_enabled ? 1 : 0

  name = "ecs-exec"
  role = aws_iam_role.loki_task[0].id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid    = "EcsExecChannels"
        Effect = "Allow"
        Action = [
          "ssmmessages:CreateControlChannel",
          "ssmmessages:CreateDataChannel",
          "ssmmessages:OpenControlChannel",
          "ssmmessages:OpenDataChannel",
        ]
        Resource = ["*"]
      },
    ]
  })
}

# What the ECS agent does for the task: pull images, write logs, inject the config from SSM.
resource "aws_iam_role" "loki_execution" {
  count = local.loki_enabled ? 1 : 0

  name               = "${local.loki_name}-execution"
  description        = "Loki task execution role: image pulls, CloudWatch logs, config parameter"
  assume_role_policy = local.ecs_tasks_assume_role_policy
}

resource "aws_iam_role_policy_attachment" "loki_execution" {
  count = local.loki_enabled ? 1 : 0

  role       = aws_iam_role.loki_execution[0].name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
}

resource "aws_iam_role_policy" "loki_execution_config" {
  count = local.loki_enabled ? 1 : 0

  name = "loki-config-parameter"
  role = aws_iam_role.loki_execution[0].id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid    = "ReadLokiConfig"
        Effect = "Allow"
        Action = ["ssm:GetParameters"]
        # The current configs and those a rolled-back task still reads.
        Resource = concat(
          [for k, current in local.loki_config_parameters : "${local.ssm_parameter_arn_prefix}${aws_ssm_parameter.loki_config[k].name}"],
          try(local.loki_alloy_sidecar.parameter_arns, []),
        )
      },
    ]
  })
}

# Loki's metrics sidecar (alloy-sidecar.tf) remote-writes to AMP with the task role (req 9.2).
resource "aws_iam_role_policy" "loki_task_amp" {
  count = local.loki_enabled && local.loki_alloy_sidecar != null ? 1 : 0

  name = "amp-remote-write"
  role = aws_iam_role.loki_task[0].id
  policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [local.alloy_remote_write_statement]
  })
}

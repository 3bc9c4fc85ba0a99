# Grafana (plan task 6.3; req 4, 6.4, 9.4): the image built from grafana/ by `cargo xtask
# build-grafana`, one private task on the cluster's EC2 ARM64 capacity. Loki is reached as
# http://loki:3100 through Service Connect (client only); AMP is queried with the task role.
#
# Order on a new environment: `deploy baseline` (creates the ECR repository and the admin secret),
# set the secret's value, `build-grafana --execute`, `deploy grafana --execute` (sets grafana_image:
# creates the service). Until grafana_image is set there is no task definition and no service.

locals {
  grafana_name    = "${var.project_name}-grafana"
  grafana_port    = 3000
  grafana_enabled = var.grafana_image != null

  # The workspace's query endpoint; the AMP datasource (grafana/provisioning) appends /api/v1/….
  grafana_amp_query_url = "https://aps-workspaces.${var.aws_region}.amazonaws.com/workspaces/${var.amp_workspace_id}"

  grafana_task_size = lookup(local.ecs_task_sizes, tostring(var.grafana_cpu), { min = 0, max = -1, step = 1 })

  grafana_log_configuration = {
    logDriver = "awslogs"
    options = {
      awslogs-group         = aws_cloudwatch_log_group.grafana.name
      awslogs-region        = var.aws_region
      awslogs-stream-prefix = "grafana"
    }
  }

  grafana_container = {
    name      = "grafana"
    image     = var.grafana_image
    essential = true
    portMappings = [
      { name = "grafana", containerPort = local.grafana_port, protocol = "tcp", appProtocol = "http" },
    ]
    # Read by provisioning/datasources/amp.yaml; Grafana substitutes them itself.
    environment = [
      { name = "AWS_REGION", value = var.aws_region },
      { name = "AMP_QUERY_URL", value = local.grafana_amp_query_url },
    ]
    # Resolved by the execution role when the task starts; never in the task definition or state.
    secrets = [
      { name = "GF_SECURITY_ADMIN_USER", valueFrom = "${aws_secretsmanager_secret.grafana_admin.arn}:username::" },
      { name = "GF_SECURITY_ADMIN_PASSWORD", valueFrom = "${aws_secretsmanager_secret.grafana_admin.arn}:password::" },
    ]
    # The Alpine-based image has busybox wget; /api/health needs no login.
    healthCheck = {
      command     = ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:${local.grafana_port}/api/health"]
      interval    = 30
      timeout     = 5
      retries     = 3
      startPeriod = 60
    }
    # ECS Exec (port forwarding to the UI) needs an init process to reap its agent's children.
    linuxParameters  = { initProcessEnabled = true }
    logConfiguration = local.grafana_log_configuration
  }
}

#### Image repository ###########################################################################

resource "aws_ecr_repository" "grafana" {
  #checkov:skip=CKV_AWS_136:AES256 (ECR-managed) encryption; the image holds no secrets and a customer-managed key adds cost without a reader to restrict (req 10).
  name = local.grafana_name
  # A tag names one commit forever (build-grafana tags <version>-<commit>).
  image_tag_mutability = "IMMUTABLE"

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "AES256"
  }
}

resource "aws_ecr_lifecycle_policy" "grafana" {
  repository = aws_ecr_repository.grafana.name
  policy = jsonencode({
    rules = [
      {
        rulePriority = 1
        description  = "Keep the last ${var.grafana_image_keep_count} images (rollback targets)"
        selection = {
          tagStatus   = "any"
          countType   = "imageCountMoreThan"
          countNumber = var.grafana_image_keep_count
        }
        action = { type = "expire" }
      },
    ]
  })
}

#### Admin credentials ##########################################################################

# Only the container: the value ({"username": …, "password": …}) is set by the operator
# (grafana/README.md), so no password ever passes through Terraform's plan or state.
resource "aws_secretsmanager_secret" "grafana_admin" {
  #checkov:skip=CKV_AWS_149:The AWS-managed key is enough for one admin login; a customer-managed key adds cost and key administration (req 10).
  #checkov:skip=CKV2_AWS_57:No rotation Lambda: put a new value and force a new deployment (Grafana's database is per task, so the new password applies at start-up).
  name                    = "${var.project_name}/grafana/admin"
  description             = "Grafana admin login as JSON {\"username\": ..., \"password\": ...}; set by the operator, read by ECS at task start"
  recovery_window_in_days = 7
}

#### Logs #######################################################################################

# Grafana's own logs stay in CloudWatch (readable while Loki is down).
resource "aws_cloudwatch_log_group" "grafana" {
  #checkov:skip=CKV_AWS_158:AWS-managed encryption is enough for Grafana's operational logs; no KMS key to run (req 10).
  #checkov:skip=CKV_AWS_338:Grafana's own operational logs are short-lived by design.
  name              = "/ecs/${local.grafana_name}"
  retention_in_days = 14
}

#### IAM ########################################################################################

resource "aws_iam_role" "grafana_task" {
  name               = "${local.grafana_name}-task"
  description        = "Grafana task role: query AMP, ECS Exec"
  assume_role_policy = local.ecs_tasks_assume_role_policy
}

# Read-only queries on this workspace only (the AMP datasource signs them with SigV4).
resource "aws_iam_role_policy" "grafana_task_amp" {
  name = "amp-query"
  role = aws_iam_role.grafana_task.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid      = "QueryAmp"
        Effect   = "Allow"
        Action   = ["aps:QueryMetrics", "aps:GetSeries", "aps:GetLabels", "aps:GetMetricMetadata"]
        Resource = [local.amp_workspace_arn]
      },
    ]
  })
}

# ECS Exec, used for port forwarding to the UI; ssmmessages has no resource-level permissions.
resource "aws_iam_role_policy" "grafana_task_exec" {
  name = "ecs-exec"
  role = aws_iam_role.grafana_task.id
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

resource "aws_iam_role" "grafana_execution" {
  name               = "${local.grafana_name}-execution"
  description        = "Grafana task execution role: image pull from ECR, CloudWatch logs, admin secret"
  assume_role_policy = local.ecs_tasks_assume_role_policy
}

resource "aws_iam_role_policy_attachment" "grafana_execution" {
  role       = aws_iam_role.grafana_execution.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
}

resource "aws_iam_role_policy" "grafana_execution_secret" {
  name = "grafana-admin-secret"
  role = aws_iam_role.grafana_execution.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid      = "ReadGrafanaAdmin"
        Effect   = "Allow"
        Action   = ["secretsmanager:GetSecretValue"]
        Resource = [aws_secretsmanager_secret.grafana_admin.arn]
      },
    ]
  })
}

#### Network ####################################################################################

# No ingress: the UI is reached through ECS Exec port forwarding (no load balancer, req 6.1-6.2).
resource "aws_security_group" "grafana" {
  name_prefix = "${local.grafana_name}-"
  description = "Grafana: egress to Loki 3100 and HTTPS to AWS APIs; no ingress"
  vpc_id      = var.vpc_id

  tags = {
    Name = local.grafana_name
  }

  lifecycle {
    create_before_destroy = true
  }
}

# Service Connect's proxy in Grafana's task connects straight to Loki's task ENI on 3100 (req 6.4).
resource "aws_vpc_security_group_egress_rule" "grafana_to_loki" {
  count = local.loki_enabled ? 1 : 0

  security_group_id            = aws_security_group.grafana.id
  description                  = "Loki HTTP (queries through Service Connect)"
  ip_protocol                  = "tcp"
  from_port                    = local.loki_http_port
  to_port                      = local.loki_http_port
  referenced_security_group_id = local.loki_security_group_id
}

resource "aws_vpc_security_group_ingress_rule" "loki_from_grafana" {
  count = local.loki_enabled ? 1 : 0

  security_group_id            = local.loki_security_group_id
  description                  = "Loki HTTP from Grafana"
  ip_protocol                  = "tcp"
  from_port                    = local.loki_http_port
  to_port                      = local.loki_http_port
  referenced_security_group_id = aws_security_group.grafana.id
}

# AMP queries and ECS Exec, through NAT or the VPC's interface endpoints (same as the Temporal tasks).
resource "aws_vpc_security_group_egress_rule" "grafana_to_https" {
  security_group_id = aws_security_group.grafana.id
  description       = "HTTPS to AWS APIs (AMP query, ECS Exec)"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}

#### Service ####################################################################################

resource "aws_ecs_task_definition" "grafana" {
  #checkov:skip=CKV_AWS_336:Grafana writes its SQLite database and sessions under /var/lib/grafana in the container layer (everything in it is provisioned), and ECS Exec needs a writable root.
  count = local.grafana_enabled ? 1 : 0

  family                   = local.grafana_name
  requires_compatibilities = ["EC2"]
  network_mode             = "awsvpc"
  cpu                      = tostring(var.grafana_cpu)
  memory                   = tostring(var.grafana_memory)
  task_role_arn            = aws_iam_role.grafana_task.arn
  execution_role_arn       = aws_iam_role.grafana_execution.arn

  runtime_platform {
    cpu_architecture        = "ARM64"
    operating_system_family = "LINUX"
  }

  container_definitions = jsonencode([local.grafana_container])

  lifecycle {
    precondition {
      condition = (
        var.grafana_memory >= local.grafana_task_size.min &&
        var.grafana_memory <= local.grafana_task_size.max &&
        (var.grafana_memory - local.grafana_task_size.min) % local.grafana_task_size.step == 0
      )
      error_message = "grafana_memory = ${var.grafana_memory} is not valid with grafana_cpu = ${var.grafana_cpu}: it must be ${local.grafana_task_size.min}-${local.grafana_task_size.max} MiB in steps of ${local.grafana_task_size.step}."
    }
  }
}

# Orders Grafana after Loki's Service Connect endpoint in one apply, as the Temporal services are
# (modules/temporal-service): a task resolves `loki` only if the endpoint existed when it started.
resource "terraform_data" "grafana_loki_endpoint" {
  count = local.grafana_enabled ? 1 : 0

  input = local.loki_enabled ? aws_ecs_service.loki[0].id : null
}

resource "aws_ecs_service" "grafana" {
  count = local.grafana_enabled ? 1 : 0

  name            = local.grafana_name
  cluster         = var.ecs_cluster_name
  task_definition = aws_ecs_task_definition.grafana[0].arn
  desired_count   = 1

  capacity_provider_strategy {
    capacity_provider = var.capacity_provider_name
    weight            = 1
  }

  # One task; its database is per task, so a brief gap on deploy is simpler than two writers.
  deployment_minimum_healthy_percent = 0
  deployment_maximum_percent         = 100

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [aws_security_group.grafana.id]
    assign_public_ip = false
  }

  # Client only: the proxy resolves `loki` (req 4.2); Grafana itself is not offered to other tasks.
  service_connect_configuration {
    enabled   = true
    namespace = var.service_connect_namespace_arn

    log_configuration {
      log_driver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.grafana.name
        awslogs-region        = var.aws_region
        awslogs-stream-prefix = "service-connect"
      }
    }
  }

  enable_execute_command  = true
  enable_ecs_managed_tags = true
  propagate_tags          = "SERVICE"

  # Never true (it would roll Grafana on every in-place update): when Loki's service is created
  # or replaced after Grafana's, `cargo xtask` rolls Grafana once (see the temporal-service module).
  force_new_deployment = false

  # The task needs its secret read permission at start, its AMP and ECS Exec permissions at once, and
  # Loki's Service Connect endpoint must exist before it starts (or `loki` never resolves in it).
  depends_on = [
    aws_iam_role_policy.grafana_execution_secret,
    aws_iam_role_policy_attachment.grafana_execution,
    aws_iam_role_policy.grafana_task_amp,
    aws_iam_role_policy.grafana_task_exec,
    terraform_data.grafana_loki_endpoint,
  ]
}

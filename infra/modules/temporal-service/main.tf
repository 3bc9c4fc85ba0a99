# One Temporal-side ECS service on the cluster's EC2 ARM64 capacity: its CloudWatch log group, IAM
# roles, task definition (main container + collector sidecar) and service.

data "aws_partition" "current" {}

locals {
  family = "${var.platform.project_name}-${var.name}"

  # Container logs keep going to CloudWatch unless the sidecar ships them and the parallel run
  # (req 8.1) is over. A sidecar that ships no logs (ADOT) leaves CloudWatch as the only path.
  cloudwatch_logs = !var.sidecar.ships_logs || var.platform.cloudwatch_parallel_run

  awslogs_options = {
    "awslogs-group"         = aws_cloudwatch_log_group.this.name
    "awslogs-region"        = var.platform.aws_region
    "awslogs-stream-prefix" = "ecs"
    # A CloudWatch hiccup must not block the application's stdout. In non-blocking mode the
    # driver's own queue is what holds lines while CloudWatch is slow (sized in log-buffer.tf).
    "mode"                        = "non-blocking"
    "max-buffer-size"             = "25m"
    "awslogs-max-buffered-events" = tostring(var.platform.awslogs_max_buffered_events)
  }

  # Docker's dual-logging cache (the `local` driver format) is what lets the Docker API, and so
  # Alloy's loki.source.docker, read logs of a container on a remote driver such as awslogs.
  # It is on by default; say so explicitly so a daemon.json default cannot switch it off. Its
  # size cannot be set: dockerd accepts cache-max-size, cache-max-file and cache-compress and
  # never reads them (5 compressed files of 20 MiB, docs/measured.md), so none is given.
  dual_logging_cache_options = var.sidecar.ships_logs ? { "cache-disabled" = "false" } : {}

  main_log_configuration = local.cloudwatch_logs ? {
    logDriver = "awslogs"
    options   = merge(local.awslogs_options, local.dual_logging_cache_options)
    } : {
    # After the parallel run: where lines wait while Loki is away, sized by the root module
    # (log-buffer.tf). Uncompressed: a compressed rotation can leave a blocked follower silent.
    logDriver = "json-file"
    options = {
      "max-size" = "${var.platform.docker_log_file_mb}m"
      "max-file" = tostring(var.platform.docker_log_files)
      "compress" = "false"
    }
  }

  ports = merge(var.ports, { metrics = var.metrics_port })

  main_container = merge(
    {
      name      = var.name
      image     = var.image
      essential = true
      portMappings = [
        for port_name in sort(keys(local.ports)) : {
          name          = port_name
          containerPort = local.ports[port_name]
          protocol      = "tcp"
        }
      ]
      environment = [
        for env_name in sort(keys(var.environment)) : { name = env_name, value = var.environment[env_name] }
      ]
      secrets = [
        for env_name in sort(keys(var.secrets)) : { name = env_name, valueFrom = var.secrets[env_name] }
      ]
      logConfiguration = local.main_log_configuration
      # Reaps zombies and lets ECS Exec work.
      linuxParameters = { initProcessEnabled = true }
      stopTimeout     = 60
    },
    # ECS stops containers in reverse dependency order: Temporal gets SIGTERM first and the log
    # shipper only once Temporal has exited, so its shutdown lines are read. START, not HEALTHY:
    # a sidecar that starts but never gets ready does not hold Temporal back (req 3.11). One that
    # never starts (its image cannot be pulled) stops the task: hence Alloy from ECR (images.tf).
    var.sidecar.ships_logs ? { dependsOn = [{ containerName = var.sidecar.container.name, condition = "START" }] } : {},
  )

  # The collector's own logs always stay in CloudWatch: it must never ship itself to Loki, and its
  # logs are what you read when Loki is the thing that is broken.
  sidecar_container = merge(var.sidecar.container, {
    logConfiguration = {
      logDriver = "awslogs"
      options   = local.awslogs_options
    }
  })

  # Secrets the execution role resolves at task start. Secrets Manager ARNs may carry a
  # `:json-key:version-stage:version-id` suffix that is not part of the resource ARN.
  secret_resource_arns = distinct([
    for arn in values(var.secrets) :
    can(regex(":secretsmanager:", arn)) ? join(":", slice(split(":", arn), 0, 7)) : arn
  ])
  # A partial ARN (no `-XXXXXX` suffix Secrets Manager appends to the name) resolves in ECS but IAM
  # matches the full ARN only, so it is granted with the suffix's wildcard. A name that itself ends
  # in `-` and six characters is ambiguous: both forms are granted.
  secretsmanager_arns = flatten([
    for arn in local.secret_resource_arns : (
      can(regex("-[A-Za-z0-9]{6}$", arn)) ? [arn, "${arn}-??????"] : ["${arn}-??????"]
    ) if can(regex(":secretsmanager:", arn))
  ])
  # Repositories of the task's images in this account's ECR: a pull-through cache creates them
  # and imports the image on the first pull, with the execution role (../../images.tf).
  ecr_repository_arns = distinct([
    for image in [var.image, var.sidecar.container.image] : var.platform.ecr_repository_arns[image]
    if contains(keys(var.platform.ecr_repository_arns), image)
  ])

  ssm_parameter_arns = concat([for arn in local.secret_resource_arns : arn if can(regex(":ssm:", arn))], var.sidecar.parameter_arns)
}

#### CloudWatch log group #######################################################################

# Kept for rollback and audit (req 8.3, 8.5): skip_destroy leaves the group in AWS even if this
# code stops managing it, and the group exists whichever collector the task carries.
resource "aws_cloudwatch_log_group" "this" {
  #checkov:skip=CKV_AWS_338:Retention follows Loki's (req 5.5, default 7 days), not a year.
  #checkov:skip=CKV_AWS_158:Encrypted at rest with CloudWatch's service key, as the fleet's groups are today.
  name              = "/ecs/${var.platform.project_name}/${var.name}"
  retention_in_days = var.platform.log_retention_days
  skip_destroy      = true

  tags = var.tags
}

#### IAM ########################################################################################

resource "aws_iam_role" "execution" {
  name_prefix = substr("${local.family}-exec-", 0, 38)
  description = "ECS agent for ${local.family}: pull images, write logs, resolve the task's secrets"

  assume_role_policy = var.platform.task_assume_role_policy

  tags = var.tags
}

resource "aws_iam_role_policy_attachment" "execution" {
  role       = aws_iam_role.execution.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
}

# Only the parameters and secrets this task definition references (sidecar config, DB password).
resource "aws_iam_role_policy" "execution_secrets" {
  name = "read-task-secrets"
  role = aws_iam_role.execution.id

  policy = jsonencode({
    Version = "2012-10-17"
    Statement = concat(
      length(local.ssm_parameter_arns) > 0 ? [{
        Sid      = "SsmParameters"
        Effect   = "Allow"
        Action   = ["ssm:GetParameters"]
        Resource = local.ssm_parameter_arns
      }] : [],
      length(local.secretsmanager_arns) > 0 ? [{
        Sid      = "SecretsManager"
        Effect   = "Allow"
        Action   = ["secretsmanager:GetSecretValue"]
        Resource = local.secretsmanager_arns
      }] : [],
    )
  })
}

resource "aws_iam_role_policy" "execution_pull_through" {
  count = length(local.ecr_repository_arns) > 0 ? 1 : 0

  name = "ecr-pull-through"
  role = aws_iam_role.execution.id

  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid      = "FirstPullThroughCache"
      Effect   = "Allow"
      Action   = ["ecr:BatchImportUpstreamImage", "ecr:CreateRepository"]
      Resource = local.ecr_repository_arns
    }]
  })
}

resource "aws_iam_role" "task" {
  name_prefix = substr("${local.family}-task-", 0, 38)
  description = "Containers of ${local.family}: remote-write metrics to AMP, ECS Exec"

  assume_role_policy = var.platform.task_assume_role_policy

  tags = var.tags
}

# Both collectors remote-write with SigV4 from the task role; nothing else in AMP.
resource "aws_iam_role_policy" "task_amp" {
  name = "amp-remote-write"
  role = aws_iam_role.task.id

  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid      = "RemoteWrite"
      Effect   = "Allow"
      Action   = ["aps:RemoteWrite"]
      Resource = [var.platform.amp_workspace_arn]
    }]
  })
}

# ECS Exec (enable_execute_command): the SSM agent's channels cannot be scoped to a resource.
resource "aws_iam_role_policy" "task_exec" {
  name = "ecs-exec"
  role = aws_iam_role.task.id

  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid    = "SsmMessages"
      Effect = "Allow"
      Action = [
        "ssmmessages:CreateControlChannel",
        "ssmmessages:CreateDataChannel",
        "ssmmessages:OpenControlChannel",
        "ssmmessages:OpenDataChannel",
      ]
      Resource = ["*"]
    }]
  })
}

#### Task definition ############################################################################

resource "aws_ecs_task_definition" "this" {
  family                   = local.family
  requires_compatibilities = ["EC2"]
  network_mode             = "awsvpc"
  cpu                      = var.cpu
  memory                   = var.memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task.arn
  # Earlier revisions stay registered, so a rollback to the previous collector is one
  # `update-service --task-definition <family>:<n>` away (req 8.4).
  skip_destroy = true

  container_definitions = jsonencode([local.main_container, local.sidecar_container])

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "ARM64"
  }

  dynamic "volume" {
    for_each = { for v in var.sidecar.volumes : v.name => v }

    content {
      name      = volume.key
      host_path = volume.value.host_path

      dynamic "docker_volume_configuration" {
        for_each = volume.value.task_scoped ? [volume.key] : []

        content {
          scope  = "task"
          driver = "local"
        }
      }
    }
  }

  tags = var.tags
}

#### Service ####################################################################################

# Orders this service after Loki's in one apply (its sidecar pushes to loki:3100 through Service
# Connect, which a task resolves only if the endpoint existed when it started). A value rather
# than module-level depends_on, which would defer this module's data sources and widen plans.
resource "terraform_data" "loki_endpoint" {
  input = var.loki_service_id
}

locals {
  # Pushes to loki:3100 (an Alloy sidecar) while a Loki service exists.
  loki_client = var.sidecar.ships_logs && var.loki_service_id != null
}

resource "aws_ecs_service" "this" {
  # The benchmark worker is optional; its log group and task definition stay when it is off.
  count = var.enabled ? 1 : 0

  name                   = local.family
  cluster                = var.platform.ecs_cluster_name
  task_definition        = aws_ecs_task_definition.this.arn
  desired_count          = var.desired_count
  enable_execute_command = true
  propagate_tags         = "SERVICE"

  # Temporal roles tolerate a task of their own kind going away; never run below the desired count.
  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200

  capacity_provider_strategy {
    capacity_provider = var.platform.capacity_provider_name
    weight            = 1
  }

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  network_configuration {
    subnets          = var.platform.subnet_ids
    security_groups  = var.platform.security_group_ids
    assign_public_ip = false
  }

  ordered_placement_strategy {
    type  = "spread"
    field = "attribute:ecs.availability-zone"
  }

  # Client mode everywhere (reach temporal-frontend and loki by name); server mode where asked.
  service_connect_configuration {
    enabled   = true
    namespace = var.platform.service_connect_namespace_arn

    dynamic "service" {
      for_each = var.service_connect_server == null ? [] : [var.service_connect_server]

      content {
        port_name      = service.value.port_name
        discovery_name = service.value.dns_name

        client_alias {
          dns_name = service.value.dns_name
          port     = service.value.port
        }
      }
    }
  }

  # Never true here: the provider sends it with every in-place update, so a desired_count change
  # would roll every task. A task resolves `loki` only if Loki's Service Connect endpoint existed
  # when it started; a replaced Loki service keeps its ARN, so no trigger here could see it. xtask
  # rolls the services that push to Loki once, after any plan that creates or replaces Loki's
  # service (ECS UpdateService forceNewDeployment).
  force_new_deployment = false

  tags = var.tags

  # Tasks start only once their roles hold every policy (image pull and logs, secrets and sidecar
  # config, AMP remote write, ECS Exec) and the Loki endpoint they push to exists
  # (`cargo xtask check` compares this list with the roles' policies).
  depends_on = [
    aws_iam_role_policy_attachment.execution,
    aws_iam_role_policy.execution_secrets,
    aws_iam_role_policy.execution_pull_through,
    aws_iam_role_policy.task_amp,
    aws_iam_role_policy.task_exec,
    terraform_data.loki_endpoint,
  ]
}

# Loki as one ECS service on the cluster's EC2 ARM64 capacity (req 1, 7, 9.1).
#
# Config delivery: ECS injects the SSM parameter into a short-lived init container (a pinned busybox)
# as an environment variable; it writes the file to a task volume that Loki mounts read-only and hands
# /loki to Loki's UID 10001. No AWS CLI image and no credentials in the helper.

locals {
  # Distinct AZs of the private subnets (looked up in HA only).
  loki_zones = sort(distinct([for s in data.aws_subnet.loki : s.availability_zone]))

  loki_data_dir   = "/loki"
  loki_config_dir = "/etc/loki"

  # Peer discovery for HA: per-task A records in a private Cloud Map DNS namespace (Service Connect
  # names resolve to the proxy and cannot list tasks).
  loki_peers_namespace = "${local.loki_name}.internal"
  loki_peers_dns_name  = "peers.${local.loki_peers_namespace}"

  loki_log_configuration = {
    logDriver = "awslogs"
    options = {
      awslogs-group         = one(aws_cloudwatch_log_group.loki[*].name)
      awslogs-region        = var.aws_region
      awslogs-stream-prefix = "loki"
    }
  }

  # Containers keyed by name; each is one object of the ECS container definition JSON.
  loki_containers = {
    loki-init = {
      name      = "loki-init"
      image     = var.loki_init_image
      essential = false
      user      = "0"
      command = [
        "sh", "-c",
        "printf '%s\\n' \"$LOKI_CONFIG\" > ${local.loki_config_dir}/config.yaml && chown -R 10001:10001 ${local.loki_data_dir}",
      ]
      secrets = [{ name = "LOKI_CONFIG", valueFrom = local.loki_config_parameter_arn }]
      # A config change changes the task definition, so ECS rolls the service.
      environment            = [{ name = "LOKI_CONFIG_SHA256", value = sha256(local.loki_config_yaml) }]
      readonlyRootFilesystem = true
      mountPoints = [
        { sourceVolume = "loki-config", containerPath = local.loki_config_dir, readOnly = false },
        { sourceVolume = "loki-data", containerPath = local.loki_data_dir, readOnly = false },
      ]
      logConfiguration = local.loki_log_configuration
    }

    loki = {
      name      = "loki"
      image     = var.loki_image
      essential = true
      user      = "10001:10001"
      command   = ["-config.file=${local.loki_config_dir}/config.yaml", "-config.expand-env=true"]
      portMappings = [
        # Named for Service Connect (req 1.3, 1.4); /metrics is on the same port (req 9.1).
        { name = "loki", containerPort = local.loki_http_port, protocol = "tcp", appProtocol = "http" },
      ]
      environment = concat(
        [
          { name = "LOKI_S3_BUCKET", value = local.loki_bucket_name },
          { name = "AWS_REGION", value = var.aws_region },
          # The Go heap stays below the container's hard limit (GC works harder near it) instead of being OOM-killed.
          { name = "GOMEMLIMIT", value = "${local.loki_gomemlimit_mib}MiB" },
        ],
        local.loki_ha ? [{ name = "LOKI_MEMBERLIST_JOIN", value = "dns+${local.loki_peers_dns_name}:${local.loki_memberlist_port}" }] : [],
      )
      dependsOn = [{ containerName = "loki-init", condition = "SUCCESS" }]
      # The image is distroless (no shell, no curl): `loki -health` GETs /ready (req 1.5).
      healthCheck = {
        command     = ["CMD", "/usr/bin/loki", "-health"]
        interval    = 30
        timeout     = 10
        retries     = 3
        startPeriod = 300
      }
      # Time to flush chunks and the TSDB head on SIGTERM (the EC2 default is 30 s).
      stopTimeout = 120
      # A crash (OOM, panic) restarts the container in place: the task-scoped volume, and so the
      # WAL, survives and is replayed. Without it ECS replaces the task and the WAL is lost.
      # A crash within 60 s of a start (bad config) is not looped.
      restartPolicy = {
        enabled              = true
        ignoredExitCodes     = []
        restartAttemptPeriod = 60
      }
      # Loki's hard share of the task: the Alloy metrics sidecar holds the rest (alloy_memory).
      memory = local.loki_container_memory
      # ECS Exec's agent must write into the container, so the root filesystem stays writable.
      readonlyRootFilesystem = false
      mountPoints = [
        { sourceVolume = "loki-config", containerPath = local.loki_config_dir, readOnly = true },
        { sourceVolume = "loki-data", containerPath = local.loki_data_dir, readOnly = false },
      ]
      ulimits = [{ name = "nofile", softLimit = 65536, hardLimit = 65536 }]
      # ECS Exec needs an init process to reap its agent's children.
      linuxParameters  = { initProcessEnabled = true }
      logConfiguration = local.loki_log_configuration
    }
  }

  # Loki's metrics sidecar from alloy-sidecar.tf (req 9.2), when it provides one.
  loki_sidecar_containers = local.loki_alloy_sidecar == null ? [] : [
    merge(local.loki_alloy_sidecar.container, {
      logConfiguration = merge(local.loki_log_configuration, {
        options = merge(local.loki_log_configuration.options, { awslogs-stream-prefix = "alloy" })
      })
    }),
  ]
  loki_sidecar_volumes = local.loki_alloy_sidecar == null ? [] : local.loki_alloy_sidecar.volumes

  # Grafana waits jsonData.timeout for Loki; the Service Connect proxy in between must wait longer
  # (Envoy's default per-request timeout for appProtocol http is 15 s, then 504).
  grafana_loki_datasource          = one([for d in yamldecode(file("${path.module}/../grafana/provisioning/datasources/loki.yaml")).datasources : d if d.uid == "loki"])
  loki_query_timeout_seconds       = try(local.grafana_loki_datasource.jsonData.timeout, 30)
  loki_per_request_timeout_seconds = local.loki_query_timeout_seconds + 10

  # The task holds Loki, its Alloy metrics sidecar and the headroom (Service Connect proxy, ECS
  # Exec agent). Loki's Go heap is held to 80 % of its part (GOMEMLIMIT), under which the rendered
  # config's embedded caches, WAL replay ceiling and one query's 64 MB must fit (the budget
  # crates/settings/src/capacity.rs renders; an unset cache is Loki's default 100 MB).
  loki_container_memory     = var.loki_memory - var.alloy_memory - local.task_memory_headroom
  loki_container_memory_min = 512
  loki_gomemlimit_mib       = floor(local.loki_container_memory * 0.8)
  loki_config_caches_mb = sum(concat(
    [try(local.loki_config.chunk_store_config.chunk_cache_config.embedded_cache.max_size_mb, 100)],
    [for cache in ["results_cache", "index_stats_results_cache", "volume_results_cache", "series_results_cache", "label_results_cache", "instant_metric_results_cache"] :
    try(local.loki_config.query_range[cache].cache.embedded_cache.max_size_mb, 100)],
  ))
  loki_config_replay_mb = try(tonumber(trimsuffix(local.loki_config.ingester.wal.replay_memory_ceiling, "MB")), 4096)
  loki_config_memory_mb = local.loki_config_caches_mb + local.loki_config_replay_mb + 64
  # What the task's containers claim: a hard limit, else the soft reservation.
  loki_containers_memory = sum([for c in concat(values(local.loki_containers), local.loki_sidecar_containers) : try(c.memory, c.memoryReservation, 0)])

  # Every ${NAME} Loki expands over the whole file ($${ is an escape) and what its container sets;
  # an unset name silently expands to "". cargo xtask check parses the full drone/envsubst grammar.
  loki_config_env_refs  = toset(flatten(regexall("(?:^|[^$])(?:\\$\\$)*\\$\\{#?([A-Za-z0-9_]+)", local.loki_config_yaml)))
  loki_container_env    = toset([for e in local.loki_containers.loki.environment : e.name])
  loki_config_env_unset = setsubtract(local.loki_config_env_refs, local.loki_container_env)

  # Never two single-replica Lokis on one ring: stop the old task before starting the new one.
  # In HA, replace one replica at a time so replication factor 3 keeps a quorum.
  loki_deployment_minimum_healthy_percent = local.loki_ha ? floor((var.loki_count - 1) * 100 / var.loki_count) : 0
}

# Loki's own logs go to CloudWatch: it cannot ship its own logs while it is down.
resource "aws_cloudwatch_log_group" "loki" {
  #checkov:skip=CKV_AWS_158:AWS-managed encryption is enough for Loki's operational logs; no KMS key to run (req 10).
  #checkov:skip=CKV_AWS_338:Loki's own operational logs are short-lived by design (loki_log_retention_days).
  count = local.loki_enabled ? 1 : 0

  name              = "/ecs/${local.loki_name}"
  retention_in_days = var.loki_log_retention_days
}

locals {
  # Older configs a live Loki deployment still reads (config.yaml: from before the hashes).
  loki_config_parameters_in_use = setsubtract(
    [for n in local.config_parameters_in_use : trimprefix(n, local.loki_parameter_prefix) if startswith(n, local.loki_parameter_prefix)],
    [local.loki_config_parameter_key],
  )
  loki_config_parameters = merge(
    { for k in local.loki_config_parameters_in_use : k => false },
    local.loki_enabled ? { (local.loki_config_parameter_key) = true } : {},
  )
}

# Before the hashes the one config was loki_config[0], named config.yaml: kept while in use.
moved {
  from = aws_ssm_parameter.loki_config[0]
  to   = aws_ssm_parameter.loki_config["config.yaml"]
}

data "aws_ssm_parameter" "loki_config_in_use" {
  for_each = local.loki_config_parameters_in_use

  name = "${local.loki_parameter_prefix}${each.key}"
}

# The rendered config, checked against the variables here so the two cannot drift; plus the
# older configs live deployments still read, kept as they are.
resource "aws_ssm_parameter" "loki_config" {
  #checkov:skip=CKV2_AWS_34:The config holds no secret (bucket from the environment, credentials from the task role, req 6.6); plain String keeps config changes readable in plans.
  for_each = local.loki_config_parameters

  name        = "${local.loki_parameter_prefix}${each.key}"
  description = "Loki config rendered by cargo xtask render from envs/${var.environment}.toml"
  type        = "String"
  # Standard (free, 4 KB) unless the config outgrows it, then Advanced (8 KB).
  tier  = "Intelligent-Tiering"
  value = each.value ? local.loki_config_yaml : data.aws_ssm_parameter.loki_config_in_use[each.key].insecure_value

  lifecycle {
    precondition {
      condition     = !each.value || (length(local.loki_config_yaml) > 0 && can(local.loki_config.schema_config))
      error_message = "${local.loki_config_path} is missing or not a Loki config; run `cargo xtask render`."
    }
    precondition {
      condition     = !each.value || length(local.loki_config_yaml) <= 8192
      error_message = "The rendered Loki config is ${length(local.loki_config_yaml)} bytes; SSM parameters hold at most 8192."
    }
    precondition {
      condition     = !each.value || try(local.loki_config.limits_config.retention_period, null) == "${var.loki_retention_days * 24}h"
      error_message = "loki_retention_days = ${var.loki_retention_days} needs limits_config.retention_period: ${var.loki_retention_days * 24}h in ${local.loki_config_path}, which has ${try(local.loki_config.limits_config.retention_period, "none")}; set loki.retention_days in the env file and run `cargo xtask render`."
    }
    precondition {
      condition     = !each.value || try(local.loki_config.compactor.retention_enabled, false) == true && try(local.loki_config.compactor.delete_request_store, "") == "s3"
      error_message = "The rendered Loki config must enforce retention in the compactor: compactor.retention_enabled: true and delete_request_store: s3 (req 5.3)."
    }
    precondition {
      condition = !each.value || (
        try(local.loki_config.common.ring.kvstore.store, "") == (local.loki_ha ? "memberlist" : "inmemory") &&
        try(local.loki_config.common.replication_factor, 0) == (local.loki_ha ? 3 : 1)
      )
      error_message = "loki_count = ${var.loki_count} needs ${local.loki_ha ? "a memberlist ring with replication_factor 3" : "an inmemory ring with replication_factor 1"} in ${local.loki_config_path}, which has ${try(local.loki_config.common.ring.kvstore.store, "no")} ring; set loki.count in the env file and run `cargo xtask render` (req 7.3)."
    }
  }
}

resource "aws_ecs_task_definition" "loki" {
  #checkov:skip=CKV_AWS_336:The issue requires ECS Exec into Loki, and ECS Exec does not support a read-only root filesystem; the init container is read-only.
  count = local.loki_enabled ? 1 : 0

  family                   = local.loki_name
  requires_compatibilities = ["EC2"]
  # awsvpc gives the task its own ENI and security group (not the instances' group, req 6).
  network_mode       = "awsvpc"
  cpu                = tostring(var.loki_cpu)
  memory             = tostring(var.loki_memory)
  task_role_arn      = aws_iam_role.loki_task[0].arn
  execution_role_arn = aws_iam_role.loki_execution[0].arn
  # Earlier revisions stay registered (ECS refuses an update-service to a deregistered one), so
  # rolling back to the revision that ran before is one `update-service --task-definition`.
  skip_destroy = true

  runtime_platform {
    cpu_architecture        = "ARM64"
    operating_system_family = "LINUX"
  }

  # Task-scoped volumes (no host path): WAL, TSDB head and compactor state die with the task, which
  # is why the WAL flushes on shutdown and retention markers live in S3.
  volume {
    name = "loki-data"
  }
  volume {
    name = "loki-config"
  }
  dynamic "volume" {
    for_each = local.loki_sidecar_volumes

    content {
      name = volume.value.name

      dynamic "docker_volume_configuration" {
        for_each = try(volume.value.task_scoped, false) ? [1] : []

        content {
          scope = "task"
        }
      }
    }
  }

  container_definitions = jsonencode(concat(values(local.loki_containers), local.loki_sidecar_containers))

  # The init container reads the parameter by ARN (known at plan time); it must exist first.
  depends_on = [aws_ssm_parameter.loki_config]

  lifecycle {
    precondition {
      condition     = length(local.loki_config_env_unset) == 0
      error_message = "${local.loki_config_path} expands ${join(", ", [for n in local.loki_config_env_unset : "$${${n}}"])}, which the Loki container does not set (it would be empty); set it in infra/loki.tf or fix the template."
    }
    precondition {
      condition     = local.loki_config_memory_mb <= local.loki_gomemlimit_mib
      error_message = "loki_memory = ${var.loki_memory} with alloy_memory = ${var.alloy_memory} leaves Loki ${local.loki_container_memory} MiB (GOMEMLIMIT ${local.loki_gomemlimit_mib} MiB), but ${local.loki_config_path} spends ${local.loki_config_memory_mb} MB on its caches (${local.loki_config_caches_mb}), WAL replay (${local.loki_config_replay_mb}) and a query (64): set loki.memory / alloy.memory in the env file and run `cargo xtask render`."
    }
    precondition {
      condition     = local.loki_container_memory >= local.loki_container_memory_min
      error_message = "loki_memory = ${var.loki_memory} leaves Loki ${local.loki_container_memory} MiB next to the ${var.alloy_memory} MiB Alloy sidecar and ${local.task_memory_headroom} MiB for the Service Connect proxy and ECS Exec; it needs at least ${local.loki_container_memory_min} MiB."
    }
    precondition {
      condition     = local.loki_containers_memory + local.task_memory_headroom <= var.loki_memory
      error_message = "The Loki task's containers claim ${local.loki_containers_memory} MiB of its ${var.loki_memory} MiB, leaving less than ${local.task_memory_headroom} MiB for the Service Connect proxy and ECS Exec."
    }
    precondition {
      condition     = local.loki_task_size_valid
      error_message = "loki_memory = ${var.loki_memory} is not valid with loki_cpu = ${var.loki_cpu}: it must be ${local.loki_task_size.min}-${local.loki_task_size.max} MiB in steps of ${local.loki_task_size.step}."
    }
  }
}

# HA only: every Loki task registers an A record so memberlist can find its peers (req 7.3).
resource "aws_service_discovery_private_dns_namespace" "loki_peers" {
  count = local.loki_enabled && local.loki_ha ? 1 : 0

  name        = local.loki_peers_namespace
  description = "Per-task DNS records for Loki's memberlist ring"
  vpc         = var.vpc_id
}

resource "aws_service_discovery_service" "loki_peers" {
  count = local.loki_enabled && local.loki_ha ? 1 : 0

  name          = "peers"
  description   = "Loki replicas (A records, one per task)"
  force_destroy = true

  dns_config {
    namespace_id   = aws_service_discovery_private_dns_namespace.loki_peers[0].id
    routing_policy = "MULTIVALUE"

    dns_records {
      type = "A"
      ttl  = 10
    }
  }
}

# The AZ of each private subnet: replicas spread over AZs, not subnets (two subnets may share one).
data "aws_subnet" "loki" {
  for_each = local.loki_enabled && local.loki_ha ? toset(var.private_subnet_ids) : toset([])

  id = each.value
}

resource "aws_ecs_service" "loki" {
  count = local.loki_enabled ? 1 : 0

  name            = local.loki_name
  cluster         = var.ecs_cluster_name
  task_definition = aws_ecs_task_definition.loki[0].arn
  desired_count   = var.loki_count

  capacity_provider_strategy {
    capacity_provider = var.capacity_provider_name
    weight            = 1
  }

  deployment_minimum_healthy_percent = local.loki_deployment_minimum_healthy_percent
  deployment_maximum_percent         = 100

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [aws_security_group.loki[0].id]
    assign_public_ip = false
  }

  ordered_placement_strategy {
    type  = "spread"
    field = "attribute:ecs.availability-zone"
  }

  ordered_placement_strategy {
    type  = "spread"
    field = "instanceId"
  }

  service_connect_configuration {
    enabled   = true
    namespace = var.service_connect_namespace_arn

    service {
      port_name      = "loki"
      discovery_name = "loki"

      client_alias {
        dns_name = "loki"
        port     = local.loki_http_port
      }

      # A long LogQL query is one quiet request: neither timeout may end it before Grafana does.
      timeout {
        per_request_timeout_seconds = local.loki_per_request_timeout_seconds
        idle_timeout_seconds        = max(300, local.loki_per_request_timeout_seconds)
      }
    }

    log_configuration {
      log_driver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.loki[0].name
        awslogs-region        = var.aws_region
        awslogs-stream-prefix = "service-connect"
      }
    }
  }

  dynamic "service_registries" {
    for_each = local.loki_ha ? [aws_service_discovery_service.loki_peers[0].arn] : []

    content {
      registry_arn = service_registries.value
    }
  }

  enable_execute_command  = true
  enable_ecs_managed_tags = true
  propagate_tags          = "SERVICE"

  lifecycle {
    # loki_az_quorum: ECS spreads the replicas over the subnets' AZs, and the ring is not
    # zone-aware, so two replicas in one AZ can hold two of a stream's three copies.
    precondition {
      condition     = !local.loki_ha || length(local.loki_zones) >= var.loki_count
      error_message = "loki_count = ${var.loki_count} over private subnets in ${length(local.loki_zones)} AZ(s) (${join(", ", local.loki_zones)}) puts two replicas in one AZ; losing it loses 2 of a stream's 3 copies, below the write quorum of 2. List private subnets in at least ${var.loki_count} distinct AZs (private_subnet_ids) or lower loki_count."
    }
  }

  # The bucket and every policy of the task's roles exist before the first task starts: image pull
  # and logs, the config parameter, S3 writes, the sidecar's AMP writes, ECS Exec
  # (`cargo xtask check` compares this list with the roles' policies).
  depends_on = [
    aws_s3_bucket.loki,
    aws_iam_role_policy_attachment.loki_execution,
    aws_iam_role_policy.loki_execution_config,
    aws_iam_role_policy.loki_execution_pull_through,
    aws_iam_role_policy.loki_task_s3,
    aws_iam_role_policy.loki_task_amp,
    aws_iam_role_policy.loki_task_exec,
  ]
}

# Grafana Alloy collector sidecar (req 3.1-3.12): one per task, tails the task's own containers
# through the Docker API and ships them to Loki, scrapes the main container's metrics into AMP.
# Also the collector choice per service (req 8.2) and the Loki task's metrics sidecar (req 9.2).

locals {
  alloy_container_name = "alloy"
  alloy_storage_path   = "/var/lib/alloy/data"
  # Loopback only: the health check runs inside the container, nothing else needs the UI.
  alloy_listen_addr = "127.0.0.1:12345"

  # Configs rendered per service by `cargo xtask render` (templates/alloy-sidecar.alloy.tera);
  # the Loki task's sidecar uses the same template with service = "loki".
  alloy_config_services = concat(local.temporal_services, local.loki_enabled ? ["loki"] : [])
  alloy_config_paths    = { for s in local.alloy_config_services : s => "${var.rendered_config_dir}/alloy-${s}.alloy" }
  # try(): a missing file is reported by the precondition on the parameter, naming the fix.
  alloy_configs = { for s, path in local.alloy_config_paths : s => try(file(path), "") }

  # The config arrives as an environment variable resolved from SSM by the ECS agent (req 3.12;
  # no helper image). An empty value means the parameter did not reach the task: exit non-zero
  # at once, which also keeps the ECS restart policy from looping on it.
  alloy_start_script = join("\n", [
    "set -eu",
    "if [ -z \"$${ALLOY_CONFIG:-}\" ]; then echo 'alloy sidecar: ALLOY_CONFIG is empty, the SSM parameter did not reach the task' >&2; exit 78; fi",
    "printf '%s\\n' \"$ALLOY_CONFIG\" > /tmp/config.alloy",
    "exec /bin/alloy run --server.http.listen-addr=${local.alloy_listen_addr} --storage.path=${local.alloy_storage_path} --disable-reporting /tmp/config.alloy",
  ])

  # The image has bash but no curl: speak HTTP/1.0 over /dev/tcp to /-/ready (200 once the config
  # is loaded).
  alloy_health_check = {
    command = [
      "CMD", "/bin/bash", "-c",
      "exec 3<>/dev/tcp/127.0.0.1/12345 && printf 'GET /-/ready HTTP/1.0\\r\\n\\r\\n' >&3 && read -r _ status _ <&3 && [ \"$status\" = 200 ]",
    ]
    interval    = 30
    timeout     = 5
    retries     = 3
    startPeriod = 30
  }

  # Environment the task definition sets on the Alloy container. The ECS agent adds
  # ECS_CONTAINER_METADATA_URI_V4, the only variable the rendered configs read with sys.env.
  alloy_environment = {
    # Keep the Go heap below the container's hard limit instead of being OOM-killed.
    GOMEMLIMIT = "${floor(var.alloy_memory * 0.8)}MiB"
  }

  alloy_container_common = {
    name      = local.alloy_container_name
    image     = var.alloy_image
    essential = false # req 3.11: the Temporal container keeps running if the sidecar dies
    cpu       = var.alloy_cpu
    memory    = var.alloy_memory
    # Soft reservation for placement; the hard limit above caps a runaway sidecar.
    memoryReservation = floor(var.alloy_memory / 2)
    entryPoint        = ["/bin/sh", "-c"]
    command           = [local.alloy_start_script]
    environment       = [for k in sort(keys(local.alloy_environment)) : { name = k, value = local.alloy_environment[k] }]
    healthCheck       = local.alloy_health_check
    # On SIGTERM loki.write sends what it holds for its drain_timeout (15 s by default in the
    # pinned Alloy, docs/measured.md); what is left then, or past stopTimeout, is lost.
    stopTimeout = 90
    # req 3.11: ECS restarts the sidecar in place (agent >= 1.86.0). A crash within the first 60 s
    # (bad config) is not retried: that failure is meant to be seen, not looped.
    restartPolicy = {
      enabled              = true
      ignoredExitCodes     = []
      restartAttemptPeriod = 60
    }
  }

  # Task-scoped Docker volume: Alloy's positions (and the remote_write WAL) survive a sidecar
  # restart within the task (req 3.10), and vanish with the task.
  alloy_data_volume = { name = "alloy-data", task_scoped = true }
  alloy_data_mount  = { sourceVolume = "alloy-data", containerPath = local.alloy_storage_path, readOnly = false }

  # readOnly stops file writes only; the Docker API behind the socket is still fully usable
  # (see docs/alloy.md). Only the services' sidecars get it; Loki's sidecar ships no logs.
  docker_socket_volume = { name = "docker-socket", host_path = "/var/run/docker.sock" }
  docker_socket_mount  = { sourceVolume = "docker-socket", containerPath = "/var/run/docker.sock", readOnly = true }

  # A config's parameter is named by its hash and never overwritten, so each task definition
  # revision keeps reading the config it was registered with: the circuit breaker's rollback (or
  # a manual one) does not start the old revision with the new config. (A `name:version` selector
  # in `valueFrom` would pin too, but the ECS agent does not resolve it.)
  alloy_parameter_prefix = "/${var.project_name}/alloy/"
  alloy_parameter_keys   = { for s in local.alloy_config_services : s => "${s}/${substr(sha256(local.alloy_configs[s]), 0, 12)}" }
  # Older configs that live deployments still read stay as they are (a name without a hash is
  # the parameter of a revision from before the hashes).
  alloy_parameters_in_use = setsubtract(
    [for n in local.config_parameters_in_use : trimprefix(n, local.alloy_parameter_prefix) if startswith(n, local.alloy_parameter_prefix)],
    values(local.alloy_parameter_keys),
  )
  alloy_parameters = merge(
    { for k in local.alloy_parameters_in_use : k => { service = split("/", k)[0], current = false } },
    { for s, k in local.alloy_parameter_keys : k => { service = s, current = true } },
  )

  # ARNs built from the parameter names: known at plan time (the provider only learns `arn` on
  # apply), and referencing the resources keeps them created before any task that reads them.
  alloy_parameter_arns = {
    for s, k in local.alloy_parameter_keys : s => "${local.ssm_parameter_arn_prefix}${aws_ssm_parameter.alloy[k].name}"
  }
  # What each service's execution role may read: its current config and those still in use, so
  # a rolled-back task can read its own.
  alloy_readable_parameter_arns = {
    for s in local.alloy_config_services : s => [for k, p in local.alloy_parameters : "${local.ssm_parameter_arn_prefix}${local.alloy_parameter_prefix}${k}" if p.service == s]
  }

  alloy_sidecars = {
    for s in local.temporal_services : s => {
      container = merge(local.alloy_container_common, {
        secrets     = [{ name = "ALLOY_CONFIG", valueFrom = local.alloy_parameter_arns[s] }]
        mountPoints = [local.docker_socket_mount, local.alloy_data_mount]
        # A config change registers a new task definition revision, so ECS rolls it out.
        dockerLabels = { "alloy.config.sha256" = sha256(local.alloy_configs[s]) }
      })
      volumes = [local.docker_socket_volume, local.alloy_data_volume]
      # Its configs still kept, and the ADOT config while it exists: a deployment that fails on
      # Alloy rolls back to the ADOT revision, which reads that config at launch.
      parameter_arns = concat(
        local.alloy_readable_parameter_arns[s],
        # >>> adot: `cargo xtask cleanup-adot --prune-code` deletes through the closing marker
        local.adot_rollback_parameter_arns,
        # <<< adot
      )
      ships_logs = true
    }
  }

  # The Loki task's sidecar (req 9.2): scrapes Loki's /metrics into AMP, ships no logs (Loki's own
  # logs stay in CloudWatch), so no Docker socket. loki.tf adds `container` (plus its own
  # logConfiguration) to the task, `volumes` to the task definition, and `parameter_arns` to the
  # execution role's ssm:GetParameters; the task role needs local.alloy_remote_write_statement.
  loki_alloy_sidecar = local.loki_enabled ? {
    container = merge(local.alloy_container_common, {
      secrets      = [{ name = "ALLOY_CONFIG", valueFrom = local.alloy_parameter_arns["loki"] }]
      mountPoints  = [local.alloy_data_mount]
      dockerLabels = { "alloy.config.sha256" = sha256(local.alloy_configs["loki"]) }
    })
    volumes        = [local.alloy_data_volume]
    parameter_arns = local.alloy_readable_parameter_arns["loki"]
  } : null

  alloy_remote_write_statement = {
    Sid      = "AmpRemoteWrite"
    Effect   = "Allow"
    Action   = ["aps:RemoteWrite"]
    Resource = [local.amp_workspace_arn]
  }

  # Collector kinds and the sidecar each builds per service. The ADOT entry goes with the cleanup.
  collector_sidecars = {
    alloy = local.alloy_sidecars
    # >>> adot: `cargo xtask cleanup-adot --prune-code` deletes through the closing marker
    adot = local.adot_sidecars
    # <<< adot
  }
  collector_kinds = sort(keys(local.collector_sidecars))

  # A service the map leaves out keeps the collector the fleet runs today (alloy once ADOT is gone).
  default_collector  = contains(local.collector_kinds, "adot") ? "adot" : "alloy"
  service_collectors = merge({ for s in local.temporal_services : s => local.default_collector }, var.service_collectors)

  # The sidecar of each service; an unknown collector is reported by terraform_data.collector_choice.
  service_sidecars = {
    for s in local.temporal_services :
    s => lookup(local.collector_sidecars, local.service_collectors[s], local.alloy_sidecars)[s]
  }

  main_container_memory_min = 512
  services_short_of_memory = {
    for s, sidecar in local.service_sidecars : s => {
      task    = var.temporal_service_sizes[s].memory
      sidecar = try(sidecar.container.memory, 0)
    } if try(sidecar.container.memory, 0) + local.task_memory_headroom + local.main_container_memory_min > var.temporal_service_sizes[s].memory
  }
}

# Fails the plan with the setting's name and the allowed values (the variable's own validation
# cannot see which collectors this code still has).
resource "terraform_data" "collector_choice" {
  input = local.service_collectors

  lifecycle {
    precondition {
      condition     = alltrue([for c in values(local.service_collectors) : contains(local.collector_kinds, c)])
      error_message = "service_collectors: every value must be one of ${join(", ", local.collector_kinds)}; got ${jsonencode(local.service_collectors)}."
    }

    # >>> adot: the shared ADOT config goes only once no service needs it
    precondition {
      condition     = var.adot_enabled || !contains(values(local.service_collectors), "adot")
      error_message = "adot_enabled = false needs every service on alloy; still on adot: ${join(", ", [for s, c in local.service_collectors : s if c == "adot"])}."
    }
    # <<< adot

    # The main container has no hard limit of its own: it gets what the sidecar's limit and the
    # headroom (Service Connect proxy, ECS Exec agent) leave of the task.
    precondition {
      condition     = length(local.services_short_of_memory) == 0
      error_message = "temporal_service_sizes: ${join("; ", [for s, m in local.services_short_of_memory : "${s} has ${m.task} MiB, which leaves it less than ${local.main_container_memory_min} MiB next to the ${m.sidecar} MiB sidecar and ${local.task_memory_headroom} MiB for the Service Connect proxy and ECS Exec"])}; raise the task's memory or lower the sidecar's."
    }

    # Without Loki, Alloy would ship logs nowhere: keep CloudWatch until Loki exists.
    precondition {
      condition     = local.loki_enabled || var.cloudwatch_parallel_run || !contains(values(local.service_collectors), "alloy")
      error_message = "cloudwatch_parallel_run must stay true while loki_enabled is false and a service uses the alloy collector."
    }
  }
}

# The value a live deployment's older config has now: kept, never rewritten.
data "aws_ssm_parameter" "alloy_in_use" {
  for_each = local.alloy_parameters_in_use

  name = "${local.alloy_parameter_prefix}${each.key}"
}

# One parameter per service and config (req 3.12), plus those still in use. Intelligent-Tiering:
# Standard (free, 4 KB) unless a config outgrows it.
resource "aws_ssm_parameter" "alloy" {
  #checkov:skip=CKV2_AWS_34:Collector config, no secrets (String on purpose, readable in the console).
  for_each = local.alloy_parameters

  name        = "${local.alloy_parameter_prefix}${each.key}"
  description = "Grafana Alloy sidecar config of ${each.value.service}, rendered by cargo xtask render"
  type        = "String"
  tier        = "Intelligent-Tiering"
  value       = each.value.current ? local.alloy_configs[each.value.service] : data.aws_ssm_parameter.alloy_in_use[each.key].insecure_value

  lifecycle {
    precondition {
      condition     = !each.value.current || (fileexists(local.alloy_config_paths[each.value.service]) && trimspace(local.alloy_configs[each.value.service]) != "")
      error_message = "${lookup(local.alloy_config_paths, each.value.service, each.key)} is missing or empty; run `cargo xtask render` for this environment."
    }
    precondition {
      condition     = !each.value.current || each.value.service == "loki" || lookup(local.alloy_retry_gaps_seconds, each.value.service, null) != null
      error_message = "${lookup(local.alloy_config_paths, each.value.service, each.key)} has no loki.write max_backoff_period in whole seconds (e.g. \"10s\"), which sizes the json-file logs where lines wait while Loki is away (log-buffer.tf); run `cargo xtask render`."
    }
  }
}

# The services' Alloy pushes to Loki over Service Connect from the Temporal tasks' group (req 3.5, 6.3).
resource "aws_vpc_security_group_ingress_rule" "loki_from_temporal" {
  count = local.loki_enabled ? 1 : 0

  security_group_id            = local.loki_security_group_id
  description                  = "Loki HTTP from the Temporal tasks' Alloy sidecars"
  ip_protocol                  = "tcp"
  from_port                    = local.loki_http_port
  to_port                      = local.loki_http_port
  referenced_security_group_id = aws_security_group.temporal.id
}

# How long Loki may be away before a line is lost (req 3.10), sized from the ingestion requirement
# and the longest planned outage. While Loki cannot take lines, Alloy's Docker tailer stops
# reading and the lines wait in Docker's log files of each container: the dual-logging cache while
# CloudWatch runs beside Loki, the json-file after. Those files are a ring; past it the oldest
# lines are gone.

locals {
  # A Loki restart (a deploy of a single replica, a crash, a new task after a lost host) keeps
  # Loki from taking lines for at most: the old container's stopTimeout, then the new one's health
  # check start period (image pull, WAL replay, ring join) and one interval until ECS, and so
  # Service Connect, calls it healthy.
  loki_restart_seconds = (
    local.loki_containers.loki.stopTimeout
    + local.loki_containers.loki.healthCheck.startPeriod
    + local.loki_containers.loki.healthCheck.interval
  )

  # After Loki is back, a batch that is backing off waits at most loki.write's max_backoff_period
  # for its next try (templates/alloy-sidecar.alloy.tera). Read from the rendered configs; a
  # precondition on the parameters (alloy-sidecar.tf) refuses a config it cannot read.
  alloy_retry_gaps_seconds = {
    for s, config in local.alloy_configs : s => try(tonumber(regex("max_backoff_period\\s*=\\s*\"([0-9]+)s\"", config)[0]), null)
  }
  alloy_retry_gap_seconds = max(0, [for s in local.temporal_services : coalesce(local.alloy_retry_gaps_seconds[s], 0)]...)

  # The ring holds a restart and Alloy's retry gap at the tenant's whole rate from one container,
  # with a quarter to spare, in 5 files of whole 100 MB; rotated files are compressed on disk.
  docker_log_files   = 5
  docker_log_file_mb = 100 * ceil(var.loki_ingestion_mb_per_s * (local.loki_restart_seconds + local.alloy_retry_gap_seconds) * 1.25 / local.docker_log_files / 100)
  docker_log_ring_mb = local.docker_log_file_mb * local.docker_log_files

  # What the README states per env (checked by `cargo xtask test` against each env's plan).
  loki_outage_survival_seconds = floor(local.docker_log_ring_mb / var.loki_ingestion_mb_per_s) - local.alloy_retry_gap_seconds
}

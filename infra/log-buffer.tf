# How long Loki may be away before a line is lost (req 3.10). While Loki cannot take lines, Alloy's
# Docker tailer stops reading and the lines wait in the main container's Docker log file. A
# blocked follower keeps only the file it holds and the newest one: every file rotated in between
# is skipped, and a compressed rotation can leave it silent (measured by the rig on a real dockerd,
# crates/docker-rig, and read in moby's loggerutils/follow.go). So the buffer is ONE uncompressed
# json-file large enough for the whole outage, plus the one rotated before it (docs/measured.md).

locals {
  # A planned Loki restart, measured on Loki 3.7.6 with the rendered example config under
  # 10 MiB/s (docs/measured.md): 30–32 s of shutdown, then 17–22 s to /ready. Taken at twice the
  # worst measured (image pull, a slower host), plus one health-check interval until ECS, and so
  # Service Connect, calls the new task healthy.
  loki_measured_shutdown_seconds = 32
  loki_measured_ready_seconds    = 22
  loki_restart_seconds = (
    2 * (local.loki_measured_shutdown_seconds + local.loki_measured_ready_seconds)
    + local.loki_containers.loki.healthCheck.interval
  )

  # After Loki is back, a batch that is backing off waits at most loki.write's max_backoff_period
  # for its next try (templates/alloy-sidecar.alloy.tera). Read from the rendered configs; a
  # precondition on the parameters (alloy-sidecar.tf) refuses a config it cannot read.
  alloy_retry_gaps_seconds = {
    for s, config in local.alloy_configs : s => try(tonumber(regex("max_backoff_period\\s*=\\s*\"([0-9]+)s\"", config)[0]), null)
  }
  alloy_retry_gap_seconds = max(0, [for s in local.temporal_services : coalesce(local.alloy_retry_gaps_seconds[s], 0)]...)

  # json-file stores each line as JSON with its stream and time: ~75 bytes more per line, a
  # quarter on Temporal's ~350-byte lines (the rig writes such lines).
  json_file_overhead = 1.25

  # One file holds the restart and the retry gap at the tenant's whole rate from one container,
  # in whole 100 MB. Two files: the one being written and the one a blocked reader still holds.
  docker_log_files   = 2
  docker_log_file_mb = 100 * ceil(var.loki_ingestion_mb_per_s * (local.loki_restart_seconds + local.alloy_retry_gap_seconds) * local.json_file_overhead / 100)

  # What the README states per env (checked by `cargo xtask test` against each env's plan, and by
  # the rig on a real dockerd): the longest Loki outage one file holds at the env's rate.
  loki_outage_survival_seconds = floor(local.docker_log_file_mb / local.json_file_overhead / var.loki_ingestion_mb_per_s) - local.alloy_retry_gap_seconds
  # A quieter container survives longer: the same file at 1 MB/s.
  loki_outage_survival_seconds_at_1_mb_per_s = floor(local.docker_log_file_mb / local.json_file_overhead) - local.alloy_retry_gap_seconds

  # CloudWatch during the parallel run (the source of truth then). In non-blocking mode the
  # awslogs driver drops a line when its own queue, awslogs-max-buffered-events (Docker's default
  # 4,096), is full; max-buffer-size only sizes the ring in front of it. On the rig, while moto did
  # not answer, CloudWatch got 4,096 of 10,000 lines with max-buffer-size 25m, and all with the
  # queue sized here: a CloudWatch slowdown of this long at the tenant's whole rate from one container, in
  # Temporal's ~350-byte lines. At most that many seconds of the rate sit in dockerd's memory.
  cloudwatch_slowdown_seconds = 10
  log_line_bytes              = 350
  awslogs_max_buffered_events = ceil(var.loki_ingestion_mb_per_s * 1000000 / local.log_line_bytes * local.cloudwatch_slowdown_seconds)

  # Disk: every Temporal task of the env could land on one host (binpack, a small cluster).
  temporal_log_disk_mb = local.docker_log_files * local.docker_log_file_mb * sum([
    for size in values(var.temporal_service_sizes) : size.desired_count
  ])
}

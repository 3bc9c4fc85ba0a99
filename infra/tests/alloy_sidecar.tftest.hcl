# Alloy sidecar (req 3.1-3.12, 8.1, 8.2, 9.2): container definitions decoded from the plan.

variables {
  benchmark_worker_enabled = true

  service_collectors = {
    history            = "alloy"
    matching           = "alloy"
    frontend           = "alloy"
    worker             = "alloy"
    "benchmark-worker" = "alloy"
  }
}

mock_provider "aws" {
  override_during = plan

  mock_data "aws_partition" {
    defaults = { partition = "aws" }
  }

  # The VPC's interface endpoints (security-groups.tf requires them without routed egress).
  mock_data "aws_vpc_endpoint" {
    defaults = { vpc_endpoint_type = "Interface", state = "available", private_dns_enabled = true }
  }
}

# req: 3.1, 3.2, 3.3, 3.4, 3.5, 3.6, 3.9, 3.10, P5, 3.11, 3.12, 8.1, 9.2
# Every check of the plan with this file's variables: one plan, many assertions.
run "alloy_sidecar_with_the_file_variables" {
  command = plan

  # alloy sidecar in each task (3.1)
  assert {
    condition = alltrue([
      for m in [module.temporal_history, module.temporal_matching, module.temporal_frontend, module.temporal_worker, module.benchmark_worker] :
      [for c in jsondecode(m.container_definitions) : c.name] == [m.task_definition_family == "temporal-dev-benchmark-worker" ? "benchmark-worker" : trimprefix(m.task_definition_family, "temporal-dev-"), "alloy"]
    ])
    error_message = "Every task must hold exactly its main container and the alloy sidecar (no init or helper container)."
  }
  assert {
    condition = alltrue([
      for m in [module.temporal_history, module.temporal_matching, module.temporal_frontend, module.temporal_worker, module.benchmark_worker] :
      jsondecode(m.container_definitions)[1].image == "123456789012.dkr.ecr.eu-west-1.amazonaws.com/docker-hub/grafana/alloy:v1.21.2"
    ])
    error_message = "The sidecar must run the pinned alloy_image."
  }
  # Issue 31.4: a pull-through cache creates the sidecar's repository on its first pull, with the
  # execution role; Temporal's own image (Docker Hub here) is not in ECR and gets nothing.
  assert {
    condition = alltrue([
      for m in [module.temporal_history, module.temporal_matching, module.temporal_frontend, module.temporal_worker, module.benchmark_worker] :
      jsondecode(m.execution_role_pull_through_policy).Statement == [{
        Sid      = "FirstPullThroughCache"
        Effect   = "Allow"
        Action   = ["ecr:BatchImportUpstreamImage", "ecr:CreateRepository"]
        Resource = ["arn:aws:ecr:eu-west-1:123456789012:repository/docker-hub/grafana/alloy"]
      }]
    ])
    error_message = "Each execution role may create and import the Alloy sidecar's ECR repository (pull-through cache), and no other."
  }

  # no adot left when alloy (3.2)
  assert {
    condition = alltrue(flatten([
      for m in [module.temporal_history, module.temporal_matching, module.temporal_frontend, module.temporal_worker, module.benchmark_worker] : [
        for c in jsondecode(m.container_definitions) : c.name != "adot-collector" && !strcontains(c.image, "aws-otel-collector")
      ]
    ]))
    error_message = "No ADOT collector may remain in a task whose collector is alloy."
  }

  # sys env is set by the task (3.3)
  # crates/configcheck checks the rendered configs against exactly these names plus the ECS agent's.
  assert {
    condition = alltrue([
      for m in [module.temporal_history, module.temporal_matching, module.temporal_frontend, module.temporal_worker, module.benchmark_worker] :
      sort(concat([for e in jsondecode(m.container_definitions)[1].environment : e.name], [for e in jsondecode(m.container_definitions)[1].secrets : e.name])) == tolist(["ALLOY_CONFIG", "GOMEMLIMIT"])
    ])
    error_message = "The alloy container's environment must be exactly ALLOY_CONFIG (secret) and GOMEMLIMIT; update crates/configcheck's list when it changes."
  }

  # docker socket read only (3.4)
  assert {
    condition = alltrue([
      for m in [module.temporal_history, module.temporal_matching, module.temporal_frontend, module.temporal_worker, module.benchmark_worker] :
      contains(jsondecode(m.container_definitions)[1].mountPoints, { sourceVolume = "docker-socket", containerPath = "/var/run/docker.sock", readOnly = true })
      && m.volumes["docker-socket"].host_path == "/var/run/docker.sock"
    ])
    error_message = "The sidecar must mount the host's /var/run/docker.sock read-only."
  }
  assert {
    condition = alltrue([
      for m in [module.temporal_history, module.temporal_matching, module.temporal_frontend, module.temporal_worker, module.benchmark_worker] :
      length([for mp in try(jsondecode(m.container_definitions)[0].mountPoints, []) : mp if mp.sourceVolume == "docker-socket"]) == 0
    ])
    error_message = "Only the sidecar may see the Docker socket, never the Temporal container."
  }

  # pipeline in rendered config (3.5, 3.6)
  assert {
    condition     = strcontains(aws_ssm_parameter.alloy[local.alloy_parameter_keys["history"]].value, "url                 = \"http://loki:3100/loki/api/v1/push\"")
    error_message = "Logs must be pushed with loki.write to http://loki:3100/loki/api/v1/push."
  }
  assert {
    condition     = strcontains(aws_ssm_parameter.alloy[local.alloy_parameter_keys["history"]].value, "https://aps-workspaces.eu-west-1.amazonaws.com/workspaces/ws-01234567-89ab-cdef-0123-456789abcdef/api/v1/remote_write") && strcontains(aws_ssm_parameter.alloy[local.alloy_parameter_keys["history"]].value, "sigv4 {")
    error_message = "Metrics must be remote-written to the AMP workspace with SigV4."
  }
  assert {
    condition     = strcontains(aws_ssm_parameter.alloy[local.alloy_parameter_keys["history"]].value, "com.amazonaws.ecs.task-arn=")
    error_message = "Docker discovery must be limited to the sidecar's own task (req 3.3)."
  }

  # amp remote write scoped to workspace (3.6)
  assert {
    condition = alltrue([
      for m in [module.temporal_history, module.temporal_matching, module.temporal_frontend, module.temporal_worker, module.benchmark_worker] :
      jsondecode(m.task_role_amp_policy).Statement == [{
        Sid      = "RemoteWrite"
        Effect   = "Allow"
        Action   = ["aps:RemoteWrite"]
        Resource = ["arn:aws:aps:eu-west-1:123456789012:workspace/ws-01234567-89ab-cdef-0123-456789abcdef"]
      }]
    ])
    error_message = "The task role may only aps:RemoteWrite, and only on the workspace ARN."
  }

  # arm64 (3.9)
  assert {
    condition = alltrue([
      for m in [module.temporal_history, module.temporal_matching, module.temporal_frontend, module.temporal_worker, module.benchmark_worker] :
      m.cpu_architecture == "ARM64"
    ])
    error_message = "Tasks must run on ARM64 (Graviton); the Alloy image is multi-arch."
  }

  # positions survive sidecar restart (3.10)
  assert {
    condition = alltrue([
      for m in [module.temporal_history, module.temporal_matching, module.temporal_frontend, module.temporal_worker, module.benchmark_worker] :
      contains(jsondecode(m.container_definitions)[1].mountPoints, { sourceVolume = "alloy-data", containerPath = "/var/lib/alloy/data", readOnly = false })
      && m.volumes["alloy-data"].task_scoped
      && strcontains(jsondecode(m.container_definitions)[1].command[0], "--storage.path=/var/lib/alloy/data")
    ])
    error_message = "Alloy's storage path must be a task-scoped volume so read positions survive a sidecar restart."
  }

  # alloy sidecar not essential (3.11)
  # A sidecar failure never stops the main container (P5), in the Temporal tasks and in Loki's.
  assert {
    condition = alltrue([
      for m in [module.temporal_history, module.temporal_matching, module.temporal_frontend, module.temporal_worker, module.benchmark_worker] :
      jsondecode(m.container_definitions)[0].essential == true && jsondecode(m.container_definitions)[1].essential == false
    ])
    error_message = "The main container must be essential and the Alloy sidecar not."
  }
  assert {
    condition = alltrue([
      for m in [module.temporal_history, module.temporal_matching, module.temporal_frontend, module.temporal_worker, module.benchmark_worker] :
      jsondecode(m.container_definitions)[1].restartPolicy.enabled == true && jsondecode(m.container_definitions)[1].restartPolicy.restartAttemptPeriod == 60
    ])
    error_message = "ECS must restart the sidecar in place (restartPolicy enabled)."
  }
  assert {
    condition = alltrue([
      for m in [module.temporal_history, module.temporal_matching, module.temporal_frontend, module.temporal_worker, module.benchmark_worker] :
      strcontains(join(" ", jsondecode(m.container_definitions)[1].healthCheck.command), "GET /-/ready")
    ])
    error_message = "The sidecar's health check must ask Alloy's /-/ready."
  }
  assert {
    condition = alltrue([
      for m in [module.temporal_history, module.temporal_matching, module.temporal_frontend, module.temporal_worker, module.benchmark_worker] :
      jsondecode(m.container_definitions)[0].dependsOn == [{ containerName = "alloy", condition = "START" }]
      && jsondecode(m.container_definitions)[1].stopTimeout >= 90
    ])
    error_message = "The Temporal container depends on Alloy (START), so on a task stop ECS stops Temporal first and Alloy, with time to drain, only after it."
  }
  assert {
    condition = alltrue([
      for c in jsondecode(aws_ecs_task_definition.loki[0].container_definitions) :
      c.name == "alloy" ? (c.essential == false && c.restartPolicy.enabled == true) : !contains([for d in try(c.dependsOn, []) : d.containerName], "alloy")
      ]) && one([
      for c in jsondecode(aws_ecs_task_definition.loki[0].container_definitions) : c.essential if c.name == "loki"
    ]) == true && contains([for c in jsondecode(aws_ecs_task_definition.loki[0].container_definitions) : c.name], "alloy")
    error_message = "Loki's metrics sidecar must be non-essential and restarted in place, and no container may depend on it."
  }

  # config from ssm without helper image (3.12)
  assert {
    condition = alltrue([
      for s, m in { history = module.temporal_history, matching = module.temporal_matching, frontend = module.temporal_frontend, worker = module.temporal_worker, "benchmark-worker" = module.benchmark_worker } :
      jsondecode(m.container_definitions)[1].secrets == [{ name = "ALLOY_CONFIG", valueFrom = "arn:aws:ssm:eu-west-1:123456789012:parameter/temporal-dev/alloy/${s}/${substr(sha256(file("../rendered/example/alloy-${s}.alloy")), 0, 12)}" }]
      && strcontains(m.execution_role_policy, "arn:aws:ssm:eu-west-1:123456789012:parameter/temporal-dev/alloy/${s}/${substr(sha256(file("../rendered/example/alloy-${s}.alloy")), 0, 12)}\"")
    ])
    error_message = "Each sidecar must get its own SSM parameter as ALLOY_CONFIG, readable by the execution role."
  }
  assert {
    condition     = aws_ssm_parameter.alloy[local.alloy_parameter_keys["matching"]].value == file("../rendered/example/alloy-matching.alloy") && aws_ssm_parameter.alloy[local.alloy_parameter_keys["matching"]].name == "/temporal-dev/alloy/matching/${substr(sha256(file("../rendered/example/alloy-matching.alloy")), 0, 12)}"
    error_message = "The parameter must hold the rendered config of its service."
  }
  assert {
    condition     = strcontains(jsondecode(module.temporal_history.container_definitions)[1].command[0], "exit 78")
    error_message = "The sidecar must fail loudly when the config did not arrive."
  }

  # parallel run keeps awslogs (8.1)
  assert {
    condition = alltrue([
      for m in [module.temporal_history, module.temporal_matching, module.temporal_frontend, module.temporal_worker, module.benchmark_worker] :
      jsondecode(m.container_definitions)[0].logConfiguration.logDriver == "awslogs"
      && jsondecode(m.container_definitions)[0].logConfiguration.options["cache-disabled"] == "false"
    ])
    error_message = "During the parallel run the main container keeps awslogs with Docker's dual-logging cache on, so Alloy can read the same lines."
  }

  # loki metrics sidecar (9.2)
  assert {
    condition     = aws_ssm_parameter.alloy[local.alloy_parameter_keys["loki"]].value == file("../rendered/example/alloy-loki.alloy") && strcontains(aws_ssm_parameter.alloy[local.alloy_parameter_keys["loki"]].value, "localhost:3100")
    error_message = "Loki's sidecar config must scrape Loki's /metrics on :3100."
  }
  assert {
    condition     = !strcontains(aws_ssm_parameter.alloy[local.alloy_parameter_keys["loki"]].value, "loki.source.docker")
    error_message = "Loki's sidecar ships no logs (Loki's own logs stay in CloudWatch)."
  }
}
run "req_8_1_after_parallel_run_json_file_rotated" {
  command = plan

  variables {
    cloudwatch_parallel_run = false
  }

  assert {
    condition = alltrue([
      for m in [module.temporal_history, module.temporal_matching, module.temporal_frontend, module.temporal_worker, module.benchmark_worker] :
      jsondecode(m.container_definitions)[0].logConfiguration == { logDriver = "json-file", options = { "max-size" = "1900m", "max-file" = "2", "compress" = "false" } }
    ])
    error_message = "After the parallel run the main container logs to json-file, two uncompressed files each sized to outlast a Loki restart."
  }
  assert {
    condition = alltrue([
      for m in [module.temporal_history, module.temporal_matching, module.temporal_frontend, module.temporal_worker, module.benchmark_worker] :
      jsondecode(m.container_definitions)[1].logConfiguration.logDriver == "awslogs"
    ])
    error_message = "Alloy's own logs stay in CloudWatch (it never ships itself)."
  }
}

# >>> adot: mixes collectors; cleanup-adot --prune-code deletes through the closing marker
run "req_8_2_one_service_at_a_time" {
  command = plan

  variables {
    service_collectors = {
      history            = "alloy"
      matching           = "adot"
      frontend           = "adot"
      worker             = "adot"
      "benchmark-worker" = "adot"
    }
  }

  assert {
    condition     = [for c in jsondecode(module.temporal_history.container_definitions) : c.name] == ["temporal-history", "alloy"]
    error_message = "history must carry Alloy."
  }
  assert {
    condition = alltrue([
      for m in [module.temporal_matching, module.temporal_frontend, module.temporal_worker, module.benchmark_worker] :
      [for c in jsondecode(m.container_definitions) : c.name][1] == "adot-collector"
    ])
    error_message = "The other services must keep ADOT."
  }
  assert {
    condition     = output.temporal_services["history"].collector == "alloy" && output.temporal_services["matching"].collector == "adot"
    error_message = "The outputs must report each service's collector."
  }
}
# <<< adot

run "bad_collector_value_fails" {
  command = plan

  variables {
    service_collectors = {
      history            = "fluent-bit"
      matching           = "alloy"
      frontend           = "alloy"
      worker             = "alloy"
      "benchmark-worker" = "alloy"
    }
  }

  expect_failures = [terraform_data.collector_choice]
}

# Each variable's own rule (Terraform requires both to fail).
run "bad_service_name_and_alloy_image_fail" {
  command = plan

  variables {
    service_collectors = {
      histroy            = "alloy"
      matching           = "alloy"
      frontend           = "alloy"
      worker             = "alloy"
      "benchmark-worker" = "alloy"
    }
    alloy_image = "grafana/alloy:latest" # unpinned on purpose: must be refused
  }

  expect_failures = [var.service_collectors, var.alloy_image]
}

# >>> adot: these runs exist only while the ADOT code does
run "req_8_1_cleanup_removes_the_adot_parameter_once_every_service_runs_alloy" {
  command = plan

  variables {
    adot_enabled             = false
    service_collectors       = { history = "alloy", matching = "alloy", frontend = "alloy", worker = "alloy", "benchmark-worker" = "alloy" }
    config_parameters_in_use = []
  }

  assert {
    condition     = length(aws_ssm_parameter.adot) == 0
    error_message = "With adot_enabled = false the ADOT SSM parameter is gone."
  }
  assert {
    condition = alltrue([
      for m in [module.temporal_history, module.temporal_matching, module.temporal_frontend, module.temporal_worker, module.benchmark_worker] :
      !strcontains(m.execution_role_policy, "/adot/")
    ])
    error_message = "Once the ADOT config is gone, no execution role may read it."
  }
  assert {
    condition     = length(aws_cloudwatch_log_group.loki) == 1
    error_message = "Removing ADOT leaves the log groups alone (req 8.3, 8.5)."
  }
}

# req: 8.4
run "req_8_4_a_service_on_alloy_can_roll_back_to_adot_while_adot_exists" {
  command = plan

  assert {
    condition = alltrue([
      for m in [module.temporal_history, module.temporal_matching, module.temporal_frontend, module.temporal_worker, module.benchmark_worker] :
      contains(jsondecode(m.execution_role_policy).Statement[0].Resource, "arn:aws:ssm:eu-west-1:123456789012:parameter/temporal-dev/adot/sidecar")
    ])
    error_message = "A service on Alloy must keep read access to the ADOT config while it exists: the circuit breaker's rollback (or update-service) to its ADOT revision reads it at launch."
  }
}

# req: 8.4
run "req_8_4_the_adot_config_stays_while_a_revision_a_rollback_may_start_reads_it" {
  command = plan

  variables {
    adot_enabled             = false
    config_parameters_in_use = ["/temporal-dev/adot/sidecar"]
  }

  override_data {
    target = data.aws_ssm_parameter.adot_in_use
    values = { insecure_value = "# the ADOT config the older revisions read" }
  }

  assert {
    condition     = length(aws_ssm_parameter.adot) == 1 && aws_ssm_parameter.adot[0].value == "# the ADOT config the older revisions read"
    error_message = "After the cleanup, the ADOT config a kept revision reads stays, with the value it has."
  }
  assert {
    condition     = strcontains(module.temporal_worker.execution_role_policy, "/temporal-dev/adot/sidecar\"")
    error_message = "While the ADOT config stays, a service may still read it for a rollback."
  }
}

run "req_8_2_adot_cannot_go_while_a_service_still_uses_it" {
  command = plan

  variables {
    adot_enabled       = false
    service_collectors = { history = "adot", matching = "alloy", frontend = "alloy", worker = "alloy", "benchmark-worker" = "alloy" }
  }

  expect_failures = [terraform_data.collector_choice]
}
# <<< adot

# req: 3.10
# While Loki cannot take lines, they wait in each container's json-file log. A reader that fell
# behind keeps only the file it holds and the newest (crates/docker-rig measures it on a real
# dockerd), so one uncompressed file must hold the planned restart and Alloy's retry gap at the
# tenant's whole rate from one container, whatever that rate.
run "req_3_10_a_loki_restart_fits_in_one_json_file" {
  command = plan

  variables {
    cloudwatch_parallel_run = false
  }

  assert {
    condition = alltrue([
      for m in [module.temporal_history, module.temporal_matching, module.temporal_frontend, module.temporal_worker, module.benchmark_worker] : (
        tonumber(trimsuffix(jsondecode(m.container_definitions)[0].logConfiguration.options["max-size"], "m")) / 1.25
        >= var.loki_ingestion_mb_per_s * (output.loki_outage_budget.restart_seconds + output.loki_outage_budget.retry_gap_seconds)
        && jsondecode(m.container_definitions)[0].logConfiguration.options["max-file"] == "2"
        && jsondecode(m.container_definitions)[0].logConfiguration.options["compress"] == "false"
      )
    ])
    error_message = "Each main container's json-file must hold loki_ingestion_mb_per_s (JSON-framed) through a Loki restart and Alloy's retry gap in one uncompressed file, with one more for a reader that fell behind."
  }
  assert {
    condition     = output.loki_outage_budget.restart_seconds == 138 && output.loki_outage_budget.retry_gap_seconds == 10
    error_message = "A planned Loki restart is twice the measured 32 s shutdown + 22 s to ready, plus one 30 s health-check interval; Alloy retries within max_backoff_period 10 s."
  }
  assert {
    condition     = output.loki_outage_budget.survival_seconds >= output.loki_outage_budget.restart_seconds
    error_message = "The stated survival must cover a Loki restart."
  }
}

# The dual-logging cache's size options are accepted by dockerd and never read: none is set.
run "req_3_10_no_log_option_docker_ignores" {
  command = plan

  assert {
    condition = alltrue([
      for m in [module.temporal_history, module.temporal_matching, module.temporal_frontend, module.temporal_worker, module.benchmark_worker] :
      length(setintersection(keys(jsondecode(m.container_definitions)[0].logConfiguration.options), ["cache-max-size", "cache-max-file", "cache-compress"])) == 0
    ])
    error_message = "cache-max-size, cache-max-file and cache-compress are ignored by dockerd: do not set them."
  }
}

run "req_3_10_a_higher_rate_gets_a_larger_file" {
  command = plan

  variables {
    loki_ingestion_mb_per_s = 20
    cloudwatch_parallel_run = false
    host_log_disk_mb        = 60000
  }

  assert {
    condition = alltrue([
      for m in [module.temporal_history, module.temporal_worker] :
      tonumber(trimsuffix(jsondecode(m.container_definitions)[0].logConfiguration.options["max-size"], "m")) / 1.25
      >= 20 * (output.loki_outage_budget.restart_seconds + output.loki_outage_budget.retry_gap_seconds)
    ])
    error_message = "At 20 MB/s one json-file must still hold a Loki restart."
  }
  assert {
    condition     = output.loki_outage_budget.survival_seconds >= output.loki_outage_budget.restart_seconds
    error_message = "The stated survival must cover a Loki restart at 20 MB/s."
  }
}

# During the parallel run CloudWatch is the source of truth: the awslogs driver's queue (which,
# not max-buffer-size, decides what a non-blocking driver drops) holds a 10 s slowdown at the
# tenant's whole rate from one container, in 350-byte lines.
run "req_8_1_awslogs_holds_a_cloudwatch_slowdown" {
  command = plan

  assert {
    condition = alltrue([
      for m in [module.temporal_history, module.temporal_matching, module.temporal_frontend, module.temporal_worker, module.benchmark_worker] :
      jsondecode(m.container_definitions)[0].logConfiguration.options["mode"] == "non-blocking"
      && tonumber(jsondecode(m.container_definitions)[0].logConfiguration.options["awslogs-max-buffered-events"]) >= var.loki_ingestion_mb_per_s * 1000000 / 350 * 10
    ])
    error_message = "awslogs-max-buffered-events must hold 10 s of loki_ingestion_mb_per_s in 350-byte lines."
  }
  assert {
    condition     = output.loki_outage_budget.cloudwatch_buffered_events == 285715 && output.loki_outage_budget.cloudwatch_slowdown_seconds == 10
    error_message = "At 10 MB/s the awslogs queue is 285,715 lines: 10 s of 350-byte lines."
  }
}

# Every Temporal task's files could land on one host: they must fit its log disk.
run "req_3_10_log_files_that_do_not_fit_the_host_are_refused" {
  command = plan

  variables {
    loki_ingestion_mb_per_s = 20
    cloudwatch_parallel_run = false
  }

  expect_failures = [output.loki_outage_budget]
}

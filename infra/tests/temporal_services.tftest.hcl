# Temporal services on the shared module (issue 4): ADOT starting point, persistence, ports, log groups.

variables {
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

# >>> adot: the ADOT starting point; cleanup-adot --prune-code deletes through the closing marker
run "req_3_2_adot_starting_point_has_no_alloy" {
  command = plan

  variables {
    service_collectors = {
      history            = "adot"
      matching           = "adot"
      frontend           = "adot"
      worker             = "adot"
      "benchmark-worker" = "adot"
    }
  }

  assert {
    condition = alltrue([
      for s, m in { history = module.temporal_history, matching = module.temporal_matching, frontend = module.temporal_frontend, worker = module.temporal_worker, "benchmark-worker" = module.benchmark_worker } :
      [for c in jsondecode(m.container_definitions) : c.name][1] == "adot-collector"
      && jsondecode(m.container_definitions)[1].essential == false
      && jsondecode(m.container_definitions)[1].command == ["--config", "env:ADOT_CONFIG"]
      && jsondecode(m.container_definitions)[1].environment == [{ name = "SERVICE_NAME", value = s }]
      && jsondecode(m.container_definitions)[1].secrets == [{ name = "ADOT_CONFIG", valueFrom = "arn:aws:ssm:eu-west-1:123456789012:parameter/temporal-dev/adot/sidecar" }]
    ])
    error_message = "On adot, each task carries the non-essential ADOT collector with its service name and the SSM config."
  }
  assert {
    condition = alltrue(flatten([
      for m in [module.temporal_history, module.temporal_matching, module.temporal_frontend, module.temporal_worker, module.benchmark_worker] : [
        for c in jsondecode(m.container_definitions) : c.name != "alloy" && length(try(c.mountPoints, [])) == 0
      ]
    ]))
    error_message = "On adot, no Alloy container and no Docker socket mount."
  }
  assert {
    condition = alltrue([
      for m in [module.temporal_history, module.temporal_matching, module.temporal_frontend, module.temporal_worker, module.benchmark_worker] :
      !m.loki_client
    ])
    error_message = "On adot, nothing pushes to Loki: a new Loki rolls no service."
  }
  assert {
    condition = alltrue([
      for m in [module.temporal_history, module.temporal_matching, module.temporal_frontend, module.temporal_worker, module.benchmark_worker] :
      length(m.volumes) == 0 && !strcontains(m.execution_role_policy, "/alloy/")
    ])
    error_message = "On adot, no sidecar volumes and no read access to Alloy configs."
  }
}
# <<< adot

# >>> adot
run "req_8_1_adot_services_always_keep_awslogs" {
  command = plan

  variables {
    cloudwatch_parallel_run = false
    service_collectors = {
      history            = "adot"
      matching           = "adot"
      frontend           = "adot"
      worker             = "adot"
      "benchmark-worker" = "adot"
    }
  }

  assert {
    condition = alltrue([
      for m in [module.temporal_history, module.temporal_matching, module.temporal_frontend, module.temporal_worker, module.benchmark_worker] :
      jsondecode(m.container_definitions)[0].logConfiguration.logDriver == "awslogs"
      && jsondecode(m.container_definitions)[0].logConfiguration.options["awslogs-group"] == m.log_group_name
    ])
    error_message = "A service on ADOT has no other log path than CloudWatch, whatever cloudwatch_parallel_run says."
  }
}
# <<< adot

# >>> adot: the ADOT starting point; cleanup-adot --prune-code deletes through the closing marker
run "req_8_3_log_groups_retained_on_adot" {
  command = plan

  variables {
    service_collectors = {
      history            = "adot"
      matching           = "adot"
      frontend           = "adot"
      worker             = "adot"
      "benchmark-worker" = "adot"
    }
  }

  assert {
    condition = alltrue([
      for s, m in { history = module.temporal_history, matching = module.temporal_matching, frontend = module.temporal_frontend, worker = module.temporal_worker, "benchmark-worker" = module.benchmark_worker } :
      m.log_group_name == (s == "benchmark-worker" ? "/ecs/temporal-dev/benchmark-worker" : "/ecs/temporal-dev/temporal-${s}") && m.log_group_skip_destroy
    ])
    error_message = "Every service has its CloudWatch log group, left in AWS even when Terraform stops managing it (req 8.5)."
  }
}
# <<< adot

run "req_8_3_log_groups_retained_on_alloy_after_parallel_run" {
  command = plan

  variables {
    cloudwatch_parallel_run = false
    service_collectors = {
      history            = "alloy"
      matching           = "alloy"
      frontend           = "alloy"
      worker             = "alloy"
      "benchmark-worker" = "alloy"
    }
  }

  assert {
    condition = alltrue([
      for m in [module.temporal_history, module.temporal_matching, module.temporal_frontend, module.temporal_worker, module.benchmark_worker] :
      m.log_group_skip_destroy && m.log_group_name != ""
    ])
    error_message = "Log groups stay after every service moved to Alloy and CloudWatch shipping stopped (req 8.3, 8.5)."
  }
}

# req: 5.2, 5.5
# Every check of the plan with this file's variables: one plan, many assertions.
run "temporal_services_with_the_file_variables" {
  command = plan

  # log retention follows loki (5.5)
  # This file leaves loki_retention_days unset, so the run also shows its default (5.2): 7 days in
  # Loki's compactor, the chunk lifecycle backup and the services' log groups alike.
  assert {
    condition = alltrue([
      for m in [module.temporal_history, module.temporal_matching, module.temporal_frontend, module.temporal_worker, module.benchmark_worker] :
      m.log_retention_days == var.loki_retention_days
    ])
    error_message = "The services' CloudWatch retention is loki_retention_days."
  }
  assert {
    condition = (
      alltrue([
        for m in [module.temporal_history, module.temporal_matching, module.temporal_frontend, module.temporal_worker, module.benchmark_worker] :
        m.log_retention_days == 7
      ]) &&
      yamldecode(aws_ssm_parameter.loki_config[local.loki_config_parameter_key].value).limits_config.retention_period == "168h" &&
      one([
        for r in aws_s3_bucket_lifecycle_configuration.loki[0].rule : r.expiration[0].days if r.id == "expire-chunks-after-retention"
      ]) == 9
    )
    error_message = "By default logs are kept 7 days: 168h in Loki, chunks expire after 9 days, log groups keep 7 (req 5.2)."
  }

  # persistence password from secret only
  assert {
    condition = alltrue([
      for m in [module.temporal_history, module.temporal_matching, module.temporal_frontend, module.temporal_worker] :
      jsondecode(m.container_definitions)[0].secrets == [{ name = "POSTGRES_PWD", valueFrom = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:temporal-db-AbCdEf" }]
      && !contains([for e in jsondecode(m.container_definitions)[0].environment : e.name], "POSTGRES_PWD")
      && contains(jsondecode(m.container_definitions)[0].environment, { name = "POSTGRES_SEEDS", value = "temporal-db.example.internal" })
      && contains(jsondecode(m.container_definitions)[0].environment, { name = "DB", value = "postgres12" })
    ])
    error_message = "The database password reaches the server only through `secrets`, never as plain environment."
  }
  assert {
    condition     = contains(jsondecode(module.temporal_history.execution_role_policy).Statement, { Sid = "SecretsManager", Effect = "Allow", Action = ["secretsmanager:GetSecretValue"], Resource = ["arn:aws:secretsmanager:eu-west-1:123456789012:secret:temporal-db-AbCdEf", "arn:aws:secretsmanager:eu-west-1:123456789012:secret:temporal-db-AbCdEf-??????"] })
    error_message = "The execution role may read exactly the database secret (a name ending in -XXXXXX may be the full ARN or a partial one: both are granted)."
  }

  # benchmark worker disabled keeps log group
  assert {
    condition     = output.temporal_services["benchmark-worker"].service_name == null && output.temporal_services["benchmark-worker"].log_group_name == "/ecs/temporal-dev/benchmark-worker"
    error_message = "A disabled benchmark worker runs no service but keeps its log group."
  }
  assert {
    condition     = output.temporal_services["history"].service_name == "temporal-dev-temporal-history"
    error_message = "Enabled services run."
  }
}
run "persistence_secret_json_key_is_scoped_to_the_secret" {
  command = plan

  variables {
    temporal_db_password_secret_arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:temporal-db-AbCdEf:password::"
  }

  assert {
    condition     = contains(jsondecode(module.temporal_matching.execution_role_policy).Statement[1].Resource, "arn:aws:secretsmanager:eu-west-1:123456789012:secret:temporal-db-AbCdEf")
    error_message = "A json-key suffix belongs in valueFrom, not in the IAM resource."
  }
}

run "partial_secret_arn_is_granted_with_the_suffix_wildcard" {
  command = plan

  # As envs/example.toml writes it: no `-XXXXXX` suffix. ECS resolves it; IAM matches only
  # `<arn>-??????`, so an exact grant would stop every task at launch.
  variables {
    temporal_db_password_secret_arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:temporal-dev/db-password:password::"
  }

  assert {
    condition = alltrue([
      for m in [module.temporal_history, module.temporal_matching, module.temporal_frontend, module.temporal_worker] :
      jsondecode(m.container_definitions)[0].secrets == [{ name = "POSTGRES_PWD", valueFrom = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:temporal-dev/db-password:password::" }]
      && one([for st in jsondecode(m.execution_role_policy).Statement : st.Resource if st.Sid == "SecretsManager"]) == ["arn:aws:secretsmanager:eu-west-1:123456789012:secret:temporal-dev/db-password-??????"]
    ])
    error_message = "A partial Secrets Manager ARN is granted as <arn>-?????? (IAM never matches the partial ARN itself)."
  }
}

# req: 8.2
# Terraform never rolls a service itself: the provider sends force_new_deployment with every
# in-place update, so with it a desired_count change would roll every task.
run "a_desired_count_change_rolls_no_task" {
  command = plan

  variables {
    loki_enabled = true
    temporal_service_sizes = {
      history            = { cpu = 1024, memory = 2048, desired_count = 2 }
      matching           = { cpu = 512, memory = 1024, desired_count = 1 }
      frontend           = { cpu = 512, memory = 1024, desired_count = 1 }
      worker             = { cpu = 512, memory = 1024, desired_count = 1 }
      "benchmark-worker" = { cpu = 512, memory = 1024, desired_count = 0 }
    }
  }

  override_resource {
    target          = aws_ecs_service.loki
    override_during = plan
    values          = { id = "arn:aws:ecs:eu-west-1:123456789012:service/temporal-dev/temporal-dev-loki" }
  }

  assert {
    condition = alltrue([
      for m in [module.temporal_history, module.temporal_matching, module.temporal_frontend, module.temporal_worker] :
      m.force_new_deployment == false && m.loki_client
    ])
    error_message = "No service may set force_new_deployment: any in-place update (a desired_count change) would roll its tasks."
  }
}

run "ports_metrics_and_service_connect" {
  command = plan

  override_resource {
    target          = aws_ecs_service.loki
    override_during = plan
    values          = { id = "arn:aws:ecs:eu-west-1:123456789012:service/temporal-dev/temporal-dev-loki" }
  }

  # Their sidecars push to loki:3100; an apply by hand must create Loki's endpoint first.
  assert {
    condition = alltrue([
      for m in [module.temporal_history, module.temporal_matching, module.temporal_frontend, module.temporal_worker, module.benchmark_worker] :
      m.loki_service_id == "arn:aws:ecs:eu-west-1:123456789012:service/temporal-dev/temporal-dev-loki"
    ])
    error_message = "Every Temporal service is ordered after aws_ecs_service.loki (Service Connect endpoints only resolve in tasks started after them)."
  }
  # A task started before Loki's endpoint existed never resolves `loki`: xtask rolls these once
  # when Loki's service is created or replaced, and names them by this output.
  assert {
    condition = alltrue([
      for s, m in { history = module.temporal_history, matching = module.temporal_matching, frontend = module.temporal_frontend, worker = module.temporal_worker } :
      m.loki_client && output.temporal_services[s].loki_client
    ])
    error_message = "Every (enabled) service whose Alloy sidecar pushes to Loki is named a Loki client (output temporal_services), so xtask rolls it once when Loki's service is created or replaced."
  }

  assert {
    condition = alltrue([
      for m in [module.temporal_history, module.temporal_matching, module.temporal_frontend, module.temporal_worker, module.benchmark_worker] :
      contains(jsondecode(m.container_definitions)[0].portMappings, { name = "metrics", containerPort = 9090, protocol = "tcp" })
      && contains(jsondecode(m.container_definitions)[0].environment, { name = "PROMETHEUS_ENDPOINT", value = "0.0.0.0:9090" })
    ])
    error_message = "Every main container serves Prometheus metrics on :9090 for the sidecar."
  }
  assert {
    condition     = contains(jsondecode(module.temporal_history.container_definitions)[0].portMappings, { name = "grpc", containerPort = 7234, protocol = "tcp" }) && contains(jsondecode(module.temporal_frontend.container_definitions)[0].portMappings, { name = "grpc", containerPort = 7233, protocol = "tcp" })
    error_message = "Temporal's per-role gRPC ports: frontend 7233, history 7234."
  }
  assert {
    condition     = contains(jsondecode(module.temporal_worker.container_definitions)[0].environment, { name = "PUBLIC_FRONTEND_ADDRESS", value = "temporal-frontend:7233" })
    error_message = "The other roles reach the frontend through Service Connect."
  }
}

# Each variable's own rule (Terraform requires both to fail).
run "bad_temporal_image_and_plain_password_fail" {
  command = plan

  variables {
    temporal_image                  = "temporalio/server:latest"
    temporal_db_password_secret_arn = "hunter2"
  }

  expect_failures = [var.temporal_image, var.temporal_db_password_secret_arn]
}

# A sidecar as big as the task would leave Temporal and the Service Connect proxy nothing.
run "task_memory_leaves_room_for_temporal_and_the_service_connect_proxy" {
  command = plan

  variables {
    # Loki's own task would refuse this sidecar too; this run is about the Temporal tasks.
    loki_enabled = false
    alloy_memory = 1024
  }

  expect_failures = [terraform_data.collector_choice]
}

# Loki's ECS service and task definition (req 1, 5, 7, 9.1, 10.1) and its config's delivery.

# The example environment (envs/example.toml), so every run plans what `dev` would.
variables {
  loki_enabled        = true
  loki_cpu            = 1024
  loki_memory         = 2048
  loki_count          = 1
  loki_retention_days = 7
}

# Plan-only: computed attributes get mock values during plan, nothing talks to AWS.
mock_provider "aws" {
  override_during = plan

  # The VPC's interface endpoints (security-groups.tf requires them without routed egress).
  mock_data "aws_vpc_endpoint" {
    defaults = { vpc_endpoint_type = "Interface", state = "available", private_dns_enabled = true }
  }
}

# Known ARNs for the parameters the task definition references, so its JSON is known during plan.
override_resource {
  target          = aws_ssm_parameter.alloy
  override_during = plan
  values          = { arn = "arn:aws:ssm:eu-west-1:123456789012:parameter/temporal-dev/alloy/loki" }
}

# req: 1.1, 1.2, 1.3, NF4, 4.2, 1.4, 1.5, 1.6, 1.7, 5.3, NF6, 7.1, 9.1, 10.1
# Every check of the plan with this file's variables: one plan, many assertions.
run "loki_service_with_the_file_variables" {
  command = plan

  # ecs service on ec2 capacity (1.1)
  assert {
    condition     = one(aws_ecs_service.loki[0].capacity_provider_strategy).capacity_provider == "temporal-dev-arm64" && aws_ecs_service.loki[0].cluster == "temporal-dev"
    error_message = "Loki runs in the existing cluster on its EC2 capacity provider."
  }
  assert {
    condition     = aws_ecs_task_definition.loki[0].requires_compatibilities == toset(["EC2"])
    error_message = "The task definition targets EC2."
  }

  # arm64 (1.2)
  assert {
    condition     = aws_ecs_task_definition.loki[0].runtime_platform[0].cpu_architecture == "ARM64" && aws_ecs_task_definition.loki[0].runtime_platform[0].operating_system_family == "LINUX"
    error_message = "Loki's task must run on ARM64 Linux (Graviton)."
  }

  # port 3100 (1.3)
  assert {
    condition = [
      for c in jsondecode(aws_ecs_task_definition.loki[0].container_definitions) : [for p in c.portMappings : "${p.name}/${p.containerPort}/${p.protocol}"] if c.name == "loki"
    ] == [["loki/3100/tcp"]]
    error_message = "The Loki container exposes exactly TCP 3100, named loki."
  }

  # service connect name loki (1.4)
  # Grafana's datasource waits 60 s; Envoy's 15 s default would 504 longer queries.
  assert {
    condition = (
      one(aws_ecs_service.loki[0].service_connect_configuration[0].service[0].timeout).per_request_timeout_seconds >
      one([for d in yamldecode(file("../grafana/provisioning/datasources/loki.yaml")).datasources : d.jsonData.timeout if d.uid == "loki"]) &&
      one(aws_ecs_service.loki[0].service_connect_configuration[0].service[0].timeout).idle_timeout_seconds >=
      one(aws_ecs_service.loki[0].service_connect_configuration[0].service[0].timeout).per_request_timeout_seconds
    )
    error_message = "Service Connect must let a Loki query run longer than Grafana's datasource timeout (per request and idle)."
  }
  assert {
    condition     = one(aws_ecs_service.loki[0].service_connect_configuration[0].service[0].timeout).per_request_timeout_seconds == 70
    error_message = "60 s of Grafana timeout plus 10 s: Grafana gives up first, with its own message, never the proxy."
  }

  assert {
    condition = (
      aws_ecs_service.loki[0].service_connect_configuration[0].enabled &&
      aws_ecs_service.loki[0].service_connect_configuration[0].namespace == var.service_connect_namespace_arn &&
      aws_ecs_service.loki[0].service_connect_configuration[0].service[0].port_name == "loki" &&
      aws_ecs_service.loki[0].service_connect_configuration[0].service[0].client_alias[0].dns_name == "loki" &&
      aws_ecs_service.loki[0].service_connect_configuration[0].service[0].client_alias[0].port == 3100
    )
    error_message = "Loki must answer as loki:3100 in the Service Connect namespace, through the port mapping named loki."
  }

  # health check is loki health (1.5)
  assert {
    condition = one([
      for c in jsondecode(aws_ecs_task_definition.loki[0].container_definitions) : c.healthCheck if c.name == "loki"
      ]) == {
      command     = ["CMD", "/usr/bin/loki", "-health"]
      interval    = 30
      timeout     = 10
      retries     = 3
      startPeriod = 300
    }
    error_message = "The health check must run the image's own `loki -health` (GET /ready), with time for WAL replay."
  }

  # monolithic (1.6)
  assert {
    condition = alltrue([
      for c in jsondecode(aws_ecs_task_definition.loki[0].container_definitions) :
      !anytrue([for a in c.command : startswith(a, "-target")]) if c.name == "loki"
    ]) && try(yamldecode(aws_ssm_parameter.loki_config[local.loki_config_parameter_key].value).target, "all") == "all"
    error_message = "Loki runs as a single binary (target all)."
  }

  # config file plus environment (1.7)
  assert {
    condition = one([
      for c in jsondecode(aws_ecs_task_definition.loki[0].container_definitions) : c.command if c.name == "loki"
    ]) == ["-config.file=/etc/loki/config.yaml", "-config.expand-env=true"]
    error_message = "Loki reads /etc/loki/config.yaml and expands $${VAR} from its environment."
  }
  assert {
    condition = one([
      for c in jsondecode(aws_ecs_task_definition.loki[0].container_definitions) : { for e in c.environment : e.name => e.value } if c.name == "loki"
      ]) == {
      LOKI_S3_BUCKET = "temporal-dev-loki-123456789012-eu-west-1"
      AWS_REGION     = "eu-west-1"
      GOMEMLIMIT     = "1228MiB"
    }
    error_message = "The container sets the deploy-time values the config expands (bucket, region) and GOMEMLIMIT, nothing else."
  }
  assert {
    condition     = aws_ssm_parameter.loki_config[local.loki_config_parameter_key].value == file("../rendered/example/loki-config.yaml") && aws_ssm_parameter.loki_config[local.loki_config_parameter_key].type == "String"
    error_message = "The SSM parameter holds the rendered config unchanged."
  }
  # Loki expands the whole file, comments included; an unset name would silently become "".
  assert {
    condition = length(setsubtract(
      flatten(regexall("(?:^|[^$])(?:\\$\\$)*\\$\\{#?([A-Za-z0-9_]+)", aws_ssm_parameter.loki_config[local.loki_config_parameter_key].value)),
      one([for c in jsondecode(aws_ecs_task_definition.loki[0].container_definitions) : [for e in c.environment : e.name] if c.name == "loki"]),
    )) == 0
    error_message = "Every $${NAME} in the deployed config is set by the Loki container."
  }

  # config from ssm through a pinned init container (1.7)
  assert {
    condition = one([
      for c in jsondecode(aws_ecs_task_definition.loki[0].container_definitions) : c if c.name == "loki-init"
      ]) == merge(one([for c in jsondecode(aws_ecs_task_definition.loki[0].container_definitions) : c if c.name == "loki-init"]), {
      image     = "public.ecr.aws/docker/library/busybox:1.37.0"
      essential = false
      secrets   = [{ name = "LOKI_CONFIG", valueFrom = "arn:aws:ssm:eu-west-1:123456789012:parameter/temporal-dev/loki/config-${substr(sha256(file("../rendered/example/loki-config.yaml")), 0, 12)}.yaml" }]
    })
    error_message = "A pinned, non-essential init container gets the config from SSM (injected by ECS) and writes it for Loki."
  }
  assert {
    condition = one([
      for c in jsondecode(aws_ecs_task_definition.loki[0].container_definitions) : c.dependsOn if c.name == "loki"
    ]) == [{ containerName = "loki-init", condition = "SUCCESS" }]
    error_message = "Loki starts only after the config was written."
  }

  # retention in the config matches the variable (5.3)
  assert {
    condition     = yamldecode(aws_ssm_parameter.loki_config[local.loki_config_parameter_key].value).limits_config.retention_period == "168h" && yamldecode(aws_ssm_parameter.loki_config[local.loki_config_parameter_key].value).compactor.retention_enabled
    error_message = "The deployed config enforces 7 days (168h) of retention in the compactor."
  }

  # wal flushed within stop timeout (NF6)
  assert {
    condition = one([
      for c in jsondecode(aws_ecs_task_definition.loki[0].container_definitions) : c.stopTimeout if c.name == "loki"
    ]) == 120 && yamldecode(aws_ssm_parameter.loki_config[local.loki_config_parameter_key].value).ingester.wal.flush_on_shutdown
    error_message = "Loki flushes its WAL on SIGTERM and gets 120 s to do it."
  }
  # A crash must not replace the task: its volume (the WAL) only survives a restart in place.
  assert {
    condition = one([
      for c in jsondecode(aws_ecs_task_definition.loki[0].container_definitions) : c.restartPolicy if c.name == "loki"
    ]) == { enabled = true, ignoredExitCodes = [], restartAttemptPeriod = 60 }
    error_message = "The Loki container restarts in place after any exit (OOM, panic), so the WAL on the task volume is replayed."
  }

  # ops ecs exec and own cloudwatch logs
  assert {
    condition     = aws_ecs_service.loki[0].enable_execute_command
    error_message = "ECS Exec must be on (run `loki -health` by hand)."
  }
  assert {
    condition = alltrue([
      for c in jsondecode(aws_ecs_task_definition.loki[0].container_definitions) :
      c.logConfiguration.logDriver == "awslogs" && c.logConfiguration.options.awslogs-group == "/ecs/temporal-dev-loki"
    ]) && aws_cloudwatch_log_group.loki[0].retention_in_days == 14
    error_message = "Loki's own logs go to CloudWatch, never to Loki itself."
  }

  # single replica never overlaps (7.1)
  assert {
    condition     = aws_ecs_service.loki[0].desired_count == 1 && aws_ecs_service.loki[0].deployment_minimum_healthy_percent == 0 && aws_ecs_service.loki[0].deployment_maximum_percent == 100
    error_message = "One replica, stopped before its successor starts: two in-memory rings must never run at once."
  }
  assert {
    condition     = yamldecode(aws_ssm_parameter.loki_config[local.loki_config_parameter_key].value).common.ring.kvstore.store == "inmemory" && length(aws_service_discovery_service.loki_peers) == 0
    error_message = "A single replica uses an in-memory ring and no peer discovery."
  }

  # metrics on the api port (9.1)
  assert {
    condition     = yamldecode(aws_ssm_parameter.loki_config[local.loki_config_parameter_key].value).server.http_listen_port == 3100
    error_message = "/metrics is served by Loki's HTTP server on 3100, the port collectors and Service Connect use."
  }

  # small by default (10.1)
  assert {
    condition     = aws_ecs_task_definition.loki[0].cpu == "1024" && aws_ecs_task_definition.loki[0].memory == "2048"
    error_message = "The dev task is 1024 CPU units / 2048 MiB: the smallest that carries 10 MB/s (crates/settings/src/capacity.rs)."
  }
  assert {
    condition = (
      yamldecode(aws_ssm_parameter.loki_config[local.loki_config_parameter_key].value).ingester.wal.replay_memory_ceiling == "84MB" &&
      one([for c in jsondecode(aws_ecs_task_definition.loki[0].container_definitions) : c.memory if c.name == "loki"]) == 1536 &&
      one([for c in jsondecode(aws_ecs_task_definition.loki[0].container_definitions) : c.memory if c.name == "alloy"]) == 384
    )
    error_message = "The 2048 MiB task holds the 384 MiB Alloy sidecar and 128 MiB of headroom: Loki gets 1536 MiB, and WAL replay what GOMEMLIMIT (1228) leaves after 120 MB of caches, 64 for a query and 960 of catch-up working set (84MB)."
  }
  assert {
    condition     = sum([for c in jsondecode(aws_ecs_task_definition.loki[0].container_definitions) : try(c.memory, 0)]) + 128 <= tonumber(aws_ecs_task_definition.loki[0].memory)
    error_message = "The containers' hard limits leave 128 MiB of the task for the Service Connect proxy and the ECS Exec agent."
  }
  assert {
    condition = one([
      for c in jsondecode(aws_ecs_task_definition.loki[0].container_definitions) : { for e in c.environment : e.name => e.value } if c.name == "loki"
    ]).GOMEMLIMIT == "1228MiB"
    error_message = "Loki's Go heap is held to 80 % of its 1536 MiB hard limit (GOMEMLIMIT), below the OOM kill."
  }
}
# loki_count alone (7.5) takes Loki beyond one instance (NF7): 3 replicas on one bucket (7.4).
# req: 7.3, 7.4, 7.5, NF7
run "req_7_2_ha_memberlist_with_per_task_dns" {
  command = plan

  variables {
    loki_count          = 3
    private_subnet_ids  = ["subnet-0123456789abcdef0", "subnet-0fedcba9876543210", "subnet-0a1b2c3d4e5f60718"]
    loki_retention_days = 30
    loki_cpu            = 1024
    loki_memory         = 2048
    rendered_config_dir = "../rendered/ha-example"
  }

  override_resource {
    target          = aws_service_discovery_service.loki_peers
    override_during = plan
    values          = { arn = "arn:aws:servicediscovery:eu-west-1:123456789012:service/srv-loki" }
  }

  assert {
    condition     = aws_ecs_service.loki[0].desired_count == 3 && aws_ecs_service.loki[0].deployment_minimum_healthy_percent == 66 && aws_ecs_service.loki[0].deployment_maximum_percent == 100
    error_message = "HA runs 3 replicas and replaces one at a time (ceil(3 x 66 %) = 2 stay up)."
  }
  assert {
    condition     = aws_service_discovery_service.loki_peers[0].dns_config[0].dns_records[0].type == "A" && aws_service_discovery_private_dns_namespace.loki_peers[0].name == "temporal-dev-loki.internal"
    error_message = "Each task registers an A record in a private Cloud Map DNS namespace."
  }
  assert {
    condition     = aws_ecs_service.loki[0].service_registries[0].registry_arn == "arn:aws:servicediscovery:eu-west-1:123456789012:service/srv-loki"
    error_message = "The service registers its tasks in the peers service."
  }
  assert {
    condition = one([
      for c in jsondecode(aws_ecs_task_definition.loki[0].container_definitions) : { for e in c.environment : e.name => e.value } if c.name == "loki"
    ]).LOKI_MEMBERLIST_JOIN == "dns+peers.temporal-dev-loki.internal:7946"
    error_message = "Loki joins its peers through the per-task DNS name."
  }
  assert {
    condition     = yamldecode(aws_ssm_parameter.loki_config[local.loki_config_parameter_key].value).common.ring.kvstore.store == "memberlist" && yamldecode(aws_ssm_parameter.loki_config[local.loki_config_parameter_key].value).common.replication_factor == 3
    error_message = "HA uses a memberlist ring with replication factor 3 (req 7.3)."
  }
  assert {
    condition     = yamldecode(aws_ssm_parameter.loki_config[local.loki_config_parameter_key].value).ingester.wal.replay_memory_ceiling == "84MB" && one([for c in jsondecode(aws_ecs_task_definition.loki[0].container_definitions) : c.memory if c.name == "loki"]) == 1536
    error_message = "Each 2048 MiB replica gives Loki 1536 MiB next to its sidecar and the headroom, and replays its WAL within what GOMEMLIMIT leaves after the caches and a query."
  }
  assert {
    condition = (
      length(aws_s3_bucket.loki) == 1 &&
      one([
        for c in jsondecode(aws_ecs_task_definition.loki[0].container_definitions) : { for e in c.environment : e.name => e.value } if c.name == "loki"
      ]).LOKI_S3_BUCKET == aws_s3_bucket.loki[0].bucket &&
      yamldecode(aws_ssm_parameter.loki_config[local.loki_config_parameter_key].value).common.storage.s3.bucketnames == "$${LOKI_S3_BUCKET}" &&
      alltrue([for p in yamldecode(aws_ssm_parameter.loki_config[local.loki_config_parameter_key].value).schema_config.configs : p.object_store == "s3"]) &&
      yamldecode(aws_ssm_parameter.loki_config[local.loki_config_parameter_key].value).compactor.delete_request_store == "s3"
    )
    error_message = "Every replica runs the one task definition and writes chunks, index and delete requests to the same bucket (req 7.4)."
  }
}

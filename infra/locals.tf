locals {
  loki_enabled = var.loki_enabled

  # HA (req 7): more than one replica means a memberlist ring; the rendered config must agree.
  loki_ha = var.loki_count > 1

  loki_name = "${var.project_name}-loki"

  # Ports Loki listens on. 7946 (memberlist gossip) and 9095 (gRPC between replicas) only matter in HA.
  loki_http_port       = 3100
  loki_grpc_port       = 9095
  loki_memberlist_port = 7946

  # The rendered config (cargo xtask render), checked against the variables at plan time.
  # try(): a missing or broken file is reported by the variable validation and the preconditions.
  loki_config_path = "${var.rendered_config_dir}/loki-config.yaml"
  loki_config_yaml = try(file(local.loki_config_path), "")
  loki_config      = try(yamldecode(local.loki_config_yaml), {})

  # Task memory no container of ours claims: the Service Connect proxy ECS adds to every task
  # (AWS asks for at least 64 MiB) and the ECS Exec agent. crates/settings TASK_MEMORY_HEADROOM
  # renders the Loki config with the same figure (a precondition compares them).
  task_memory_headroom = 128

  # Chunks live under the tenant prefix; with auth_enabled: false the tenant is `fake` (req 2.3).
  loki_chunk_prefix = "fake/"

  # Valid ECS task sizes (the Fargate table, which ECS on EC2 also accepts): cpu => memory range in MiB.
  ecs_task_sizes = {
    "256"   = { min = 512, max = 2048, step = 512 }
    "512"   = { min = 1024, max = 4096, step = 1024 }
    "1024"  = { min = 2048, max = 8192, step = 1024 }
    "2048"  = { min = 4096, max = 16384, step = 1024 }
    "4096"  = { min = 8192, max = 30720, step = 1024 }
    "8192"  = { min = 16384, max = 61440, step = 4096 }
    "16384" = { min = 32768, max = 122880, step = 8192 }
  }
  loki_task_size = lookup(local.ecs_task_sizes, tostring(var.loki_cpu), { min = 0, max = -1, step = 1 })
  loki_task_size_valid = (
    var.loki_memory >= local.loki_task_size.min &&
    var.loki_memory <= local.loki_task_size.max &&
    (var.loki_memory - local.loki_task_size.min) % local.loki_task_size.step == 0
  )

  # aws, aws-cn or aws-us-gov, taken from an ARN we already have instead of a data source.
  partition = split(":", var.service_connect_namespace_arn)[1]

  # Names and ARNs known at plan time, so policies and the task definition are readable in a plan.
  loki_bucket_name = "${local.loki_name}-${var.aws_account_id}-${var.aws_region}"
  loki_bucket_arn  = "arn:${local.partition}:s3:::${local.loki_bucket_name}"
  # Named by the config's hash, never overwritten (see local.alloy_parameter_keys).
  loki_parameter_prefix      = "/${var.project_name}/loki/"
  loki_config_parameter_key  = "config-${substr(sha256(local.loki_config_yaml), 0, 12)}.yaml"
  loki_config_parameter_name = "${local.loki_parameter_prefix}${local.loki_config_parameter_key}"
  loki_config_parameter_arn  = "${local.ssm_parameter_arn_prefix}${local.loki_config_parameter_name}"
  # An SSM parameter's ARN is this and its name (which starts with /).
  ssm_parameter_arn_prefix = "arn:${local.partition}:ssm:${var.aws_region}:${var.aws_account_id}:parameter"

  # Seams for other files (Grafana, Temporal services): null when Loki is disabled.
  loki_security_group_id = one(aws_security_group.loki[*].id)
  loki_endpoint          = local.loki_enabled ? "http://loki:${local.loki_http_port}" : null
  # Clients of the endpoint get aws_ecs_service.loki's id inline, not through a local: checkov's
  # graph then loses the modules' security group attachment (CKV2_AWS_5).
}

output "loki_endpoint" {
  description = "Loki's URL inside the Service Connect namespace, for collectors (loki.write) and Grafana's datasource; null when Loki is disabled."
  value       = local.loki_endpoint
}

output "loki_service_connect_name" {
  description = "The Service Connect client alias Loki answers on."
  value       = local.loki_enabled ? "loki" : null
}

output "loki_bucket_name" {
  description = "Name of the S3 bucket holding Loki's chunks (fake/) and TSDB index (index/)."
  value       = one(aws_s3_bucket.loki[*].bucket)
}

output "loki_bucket_arn" {
  description = "ARN of Loki's S3 bucket."
  value       = local.loki_enabled ? local.loki_bucket_arn : null
}

output "loki_security_group_id" {
  description = "Loki's security group; add an aws_vpc_security_group_ingress_rule on port 3100 from a client's group to let it in."
  value       = local.loki_security_group_id
}

output "loki_service_name" {
  description = "Name of Loki's ECS service (for ECS Exec and deployment checks)."
  value       = one(aws_ecs_service.loki[*].name)
}

output "loki_task_role_arn" {
  description = "ARN of Loki's task role (S3 access to its bucket only)."
  value       = one(aws_iam_role.loki_task[*].arn)
}

output "loki_log_group_name" {
  description = "CloudWatch log group with Loki's own logs."
  value       = one(aws_cloudwatch_log_group.loki[*].name)
}

output "loki_config_parameter_name" {
  description = "SSM parameter holding the current rendered Loki config (named by its hash)."
  value       = local.loki_enabled ? aws_ssm_parameter.loki_config[local.loki_config_parameter_key].name : null
}

output "loki_retention_days" {
  description = "Retention in days enforced by Loki; the services' CloudWatch log groups use the same value (req 5.5)."
  value       = var.loki_retention_days
}

# --- Temporal services and collectors (temporal-*.tf, alloy-sidecar.tf) ----------------------------

output "temporal_services" {
  description = "Per service: ECS service name (null when disabled), task definition family, CloudWatch log group, collector, and whether it pushes to Loki (rolled once by `cargo xtask` when Loki's service is created or replaced)."
  value = {
    for s, m in {
      history            = module.temporal_history
      matching           = module.temporal_matching
      frontend           = module.temporal_frontend
      worker             = module.temporal_worker
      "benchmark-worker" = module.benchmark_worker
      } : s => {
      service_name           = m.service_name
      task_definition_family = m.task_definition_family
      log_group_name         = m.log_group_name
      collector              = local.service_collectors[s]
      loki_client            = m.loki_client
    }
  }
}

output "alloy_config_parameters" {
  description = "SSM parameter holding each Alloy sidecar's current config, by service (loki: Loki's metrics sidecar); named by the config's hash."
  value       = { for s, k in local.alloy_parameter_keys : s => aws_ssm_parameter.alloy[k].name }
}

output "temporal_security_group_id" {
  description = "Security group of the Temporal tasks; add ingress from it elsewhere (e.g. the Temporal UI) as needed."
  value       = aws_security_group.temporal.id
}

output "grafana_ecr_repository_url" {
  description = "ECR repository `cargo xtask build-grafana` pushes the Grafana image to."
  value       = aws_ecr_repository.grafana.repository_url
}

output "grafana_admin_secret_arn" {
  description = "Secrets Manager secret with Grafana's admin login (JSON keys username, password); its value is set by the operator, never by Terraform."
  value       = aws_secretsmanager_secret.grafana_admin.arn
}

output "grafana_service_name" {
  description = "Name of Grafana's ECS service (ECS Exec port forwarding to port 3000); null until grafana_image is set."
  value       = one(aws_ecs_service.grafana[*].name)
}

output "grafana_force_new_deployment" {
  description = "Whether an in-place update of Grafana's ECS service rolls its task regardless of what changed (always false; null when Grafana is not deployed)."
  value       = one(aws_ecs_service.grafana[*].force_new_deployment)
}

output "grafana_security_group_id" {
  description = "Grafana's security group (egress to Loki 3100 and HTTPS only)."
  value       = aws_security_group.grafana.id
}

output "grafana_task_role_arn" {
  description = "ARN of Grafana's task role (AMP queries on this workspace only)."
  value       = aws_iam_role.grafana_task.arn
}

output "grafana_log_group_name" {
  description = "CloudWatch log group with Grafana's own logs."
  value       = aws_cloudwatch_log_group.grafana.name
}

output "cloudwatch_parallel_run" {
  description = "Whether the services' main containers still log to CloudWatch beside Alloy (req 8.1); a plan that turns it off needs a passing `cargo xtask verify parity`."
  value       = var.cloudwatch_parallel_run
}

output "loki_outage_budget" {
  description = "The longest Loki outage each Temporal container's json-file log outlasts at loki_ingestion_mb_per_s from that one container (survival_seconds, confirmed by the rig on a real dockerd), against a planned Loki restart (restart_seconds, from the measured restart with its margin); the files and their size (MB); the disk all Temporal containers' files take on one host (disk_mb); during the parallel run, the lines the awslogs driver holds while CloudWatch is slow and the slowdown they cover. The README states them per env."
  value = {
    survival_seconds = local.loki_outage_survival_seconds
    # The same file for a container that writes 1 MB/s.
    survival_seconds_at_1_mb_per_s = local.loki_outage_survival_seconds_at_1_mb_per_s
    restart_seconds                = local.loki_restart_seconds
    retry_gap_seconds              = local.alloy_retry_gap_seconds
    ring_files                     = local.docker_log_files
    ring_file_mb                   = local.docker_log_file_mb
    disk_mb                        = local.temporal_log_disk_mb
    # During the parallel run: lines the awslogs driver holds, a slowdown of this many seconds.
    cloudwatch_buffered_events  = local.awslogs_max_buffered_events
    cloudwatch_slowdown_seconds = local.cloudwatch_slowdown_seconds
  }

  precondition {
    condition     = local.temporal_log_disk_mb <= var.host_log_disk_mb
    error_message = "The Temporal containers' json-file logs (${local.docker_log_files} × ${local.docker_log_file_mb} MB per task, ${local.temporal_log_disk_mb} MB when every task lands on one host) do not fit host_log_disk_mb = ${var.host_log_disk_mb}: give the hosts a larger Docker volume and raise host_log_disk_mb, or lower loki_ingestion_mb_per_s or the task counts."
  }
}

output "container_definitions" {
  description = "The task's container definitions as ECS receives them (JSON); tests decode it."
  value       = aws_ecs_task_definition.this.container_definitions
}

output "execution_role_policy" {
  description = "The execution role's inline policy (JSON): which SSM parameters and secrets the agent may read."
  value       = aws_iam_role_policy.execution_secrets.policy
}

output "execution_role_pull_through_policy" {
  description = "The execution role's pull-through cache policy (JSON): the ECR repositories of the task's images a first pull may create and import; null when no image is in ECR."
  value       = one(aws_iam_role_policy.execution_pull_through[*].policy)
}

output "log_group_name" {
  description = "CloudWatch log group of the service's containers; kept whatever the collector (req 8.3, 8.5)."
  value       = aws_cloudwatch_log_group.this.name
}

output "log_group_skip_destroy" {
  description = "Whether Terraform leaves the log group in AWS when it stops managing it (req 8.5)."
  value       = aws_cloudwatch_log_group.this.skip_destroy
}

output "service_name" {
  description = "Name of the ECS service, null when the service is disabled."
  value       = one(aws_ecs_service.this[*].name)
}

output "task_definition_arn" {
  description = "ARN (with revision) of the task definition."
  value       = aws_ecs_task_definition.this.arn
}

output "task_definition_family" {
  description = "Family of the task definition; earlier revisions stay registered for rollback."
  value       = aws_ecs_task_definition.this.family
}

output "task_role_arn" {
  description = "ARN of the task role (AMP remote write, ECS Exec)."
  value       = aws_iam_role.task.arn
}

output "task_role_amp_policy" {
  description = "The task role's AMP policy (JSON)."
  value       = aws_iam_role_policy.task_amp.policy
}

output "volumes" {
  description = "Task volumes by name: host path and whether they are task-scoped Docker volumes."
  value = {
    for v in aws_ecs_task_definition.this.volume : v.name => {
      host_path   = v.host_path
      task_scoped = length(v.docker_volume_configuration) > 0 ? v.docker_volume_configuration[0].scope == "task" : false
    }
  }
}

output "cpu_architecture" {
  description = "CPU architecture of the task's runtime platform."
  value       = one(aws_ecs_task_definition.this.runtime_platform[*].cpu_architecture)
}

output "log_retention_days" {
  description = "Retention of the service's CloudWatch log group in days."
  value       = aws_cloudwatch_log_group.this.retention_in_days
}

output "loki_client" {
  description = "Whether the service runs and its sidecar pushes to Loki: `cargo xtask` rolls its tasks once when Loki's service is created or replaced (Service Connect resolves `loki` only in tasks started after that)."
  value       = var.enabled && local.loki_client
}

output "force_new_deployment" {
  description = "Whether an in-place update of the ECS service rolls its tasks regardless of what changed (always false; null when the service is disabled)."
  value       = one(aws_ecs_service.this[*].force_new_deployment)
}

output "loki_service_id" {
  description = "The Loki ECS service this service is created after (through terraform_data.loki_endpoint; null: none)."
  value       = var.loki_service_id
}

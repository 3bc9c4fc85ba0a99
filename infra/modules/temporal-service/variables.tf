# Inputs of one Temporal-side ECS service (a Temporal server role or the benchmark worker).
# Everything that is the same for all services travels in `platform`; the collector sidecar is
# chosen by the caller (alloy-sidecar.tf / adot-sidecar.tf) and passed in as `sidecar`.

variable "name" {
  type        = string
  description = "Name of the service and of its main container, e.g. temporal-history or benchmark-worker."

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}[a-z0-9]$", var.name))
    error_message = "name must be 3-32 characters of lowercase letters, digits and hyphens."
  }
}

variable "service" {
  type        = string
  description = "Short service name used as the service_name label on logs and metrics, e.g. history."

  validation {
    condition     = contains(["history", "matching", "frontend", "worker", "benchmark-worker"], var.service)
    error_message = "service must be one of history, matching, frontend, worker, benchmark-worker."
  }
}

variable "image" {
  type        = string
  description = "Image of the main container, pinned to a version tag or digest."

  validation {
    condition     = can(regex("^[^:@]+(:[A-Za-z0-9._-]+)?(@sha256:[0-9a-f]{64})?$", var.image)) && !can(regex(":(latest|main)$", var.image)) && can(regex("[:@]", var.image))
    error_message = "image must carry a version tag or digest (not `latest`, `main` or untagged)."
  }
}

variable "cpu" {
  type        = number
  description = "Task CPU units, sidecar included."

  validation {
    condition     = var.cpu >= 256 && var.cpu <= 16384
    error_message = "cpu must be between 256 and 16384 units."
  }
}

variable "memory" {
  type        = number
  description = "Task memory in MiB, sidecar included (the main container may use whatever the sidecar does not)."

  validation {
    condition     = var.memory >= 512 && var.memory <= 122880
    error_message = "memory must be between 512 and 122880 MiB."
  }
}

variable "desired_count" {
  type        = number
  description = "Number of tasks the service keeps running."
  default     = 1

  validation {
    condition     = var.desired_count >= 0 && floor(var.desired_count) == var.desired_count
    error_message = "desired_count must be a whole number >= 0."
  }
}

variable "enabled" {
  type        = bool
  description = "Run the ECS service. When false the task definition, roles and the log group stay (the log group is never removed, req 8.5) but no service runs."
  default     = true
}

variable "ports" {
  type        = map(number)
  description = "Named container ports besides metrics, e.g. { grpc = 7234, membership = 6934 }. Names are used by Service Connect."
  default     = {}
  nullable    = false
}

variable "metrics_port" {
  type        = number
  description = "Port of the main container's Prometheus endpoint the sidecar scrapes on localhost."
  default     = 9090
}

variable "environment" {
  type        = map(string)
  description = "Plain environment of the main container. Never put secrets here; use `secrets`."
  default     = {}
  nullable    = false
}

variable "secrets" {
  type        = map(string)
  description = "Environment variables of the main container resolved by ECS at start: name => Secrets Manager secret ARN (optionally with :json-key::) or SSM parameter ARN. The execution role may read exactly these."
  default     = {}
  nullable    = false

  validation {
    condition     = alltrue([for arn in values(var.secrets) : can(regex("^arn:aws[a-z-]*:(secretsmanager|ssm):[a-z0-9-]+:[0-9]{12}:(secret:|parameter/)", arn))])
    error_message = "secrets values must be Secrets Manager secret or SSM parameter ARNs."
  }
}

variable "service_connect_server" {
  type = object({
    port_name = string
    dns_name  = string
    port      = number
  })
  description = "Expose this service through Service Connect under dns_name:port (the frontend). null: client only."
  default     = null
}

variable "loki_service_id" {
  type        = string
  description = "ID of the ECS service that offers `loki` through Service Connect (null: none). This service is created after it: tasks started before a Service Connect endpoint exists cannot resolve it until they are redeployed."
  default     = null

  validation {
    condition     = var.loki_service_id == null || try(length(var.loki_service_id) > 0, false)
    error_message = "loki_service_id must be null or the ID of the Loki ECS service."
  }
}

variable "platform" {
  type = object({
    project_name                  = string
    aws_region                    = string
    ecs_cluster_name              = string
    capacity_provider_name        = string
    subnet_ids                    = list(string)
    security_group_ids            = list(string)
    service_connect_namespace_arn = string
    amp_workspace_arn             = string
    log_retention_days            = number
    cloudwatch_parallel_run       = bool
    task_assume_role_policy       = string
    docker_log_file_mb            = number
    docker_log_files              = number
    awslogs_max_buffered_events   = number
    ecr_repository_arns           = map(string)
  })
  description = "Settings shared by every Temporal-side service: cluster, network, AMP workspace, CloudWatch retention, whether container logs keep going to CloudWatch while a sidecar also ships them to Loki, the trust policy of the tasks' roles, and the size (MB) and count of the main container's json-file log files (after the parallel run), where lines wait while Loki is away, and the ECR repository ARN of each image pulled from an ECR (image => ARN)."
  nullable    = false

  validation {
    condition     = var.platform.awslogs_max_buffered_events >= 4096 && floor(var.platform.awslogs_max_buffered_events) == var.platform.awslogs_max_buffered_events
    error_message = "platform.awslogs_max_buffered_events must be a whole number of at least 4096 (Docker's default)."
  }

  validation {
    condition     = var.platform.docker_log_file_mb >= 20 && floor(var.platform.docker_log_file_mb) == var.platform.docker_log_file_mb && var.platform.docker_log_files >= 2 && floor(var.platform.docker_log_files) == var.platform.docker_log_files
    error_message = "platform.docker_log_file_mb must be a whole number of at least 20 (Docker's default) and platform.docker_log_files a whole number of at least 2 (one is written while a reader that fell behind finishes the one before)."
  }
}

variable "sidecar" {
  type = object({
    # ECS container definition (API field names) without logConfiguration; this module adds
    # the service's log group so the collector's own logs stay in CloudWatch.
    container = any
    # Task volumes the sidecar mounts. task_scoped: a Docker volume that lives as long as the task,
    # so it survives a sidecar restart. host_path: a bind mount from the EC2 instance.
    volumes = optional(list(object({
      name        = string
      host_path   = optional(string)
      task_scoped = optional(bool, false)
    })), [])
    # SSM parameters referenced by the sidecar's `secrets`; the execution role may read exactly these.
    parameter_arns = list(string)
    # Whether the sidecar ships container logs (Alloy). Without it the main container must keep awslogs.
    ships_logs = bool
  })
  description = "The telemetry collector sidecar of the task, built by adot-sidecar.tf or alloy-sidecar.tf."
  nullable    = false
}

variable "tags" {
  type        = map(string)
  description = "Extra tags for every resource (the provider adds the default tags)."
  default     = {}
  nullable    = false
}

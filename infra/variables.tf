# Inputs of the root module. `cargo xtask render` writes rendered/<env>/terraform.tfvars.json
# from envs/<env>.toml; infra/terraform.tfvars.example shows a complete set.

# --- Account and naming -------------------------------------------------------------------------

variable "aws_region" {
  type        = string
  description = "AWS region everything is deployed to, e.g. eu-west-1."

  validation {
    # The same list the env-file rules read (crates/settings). Relative to infra/ like
    # rendered_config_dir: Terraform before 1.9 allows no other reference (path.module) here.
    condition     = contains([for line in split("\n", file("../data/aws-regions.txt")) : split(" ", line)[0] if trimspace(line) != "" && !startswith(line, "#")], var.aws_region)
    error_message = "aws_region must be an AWS region listed in data/aws-regions.txt, such as eu-west-1."
  }
}

variable "aws_account_id" {
  type        = string
  description = "The only AWS account this configuration may be applied to (the provider refuses others)."

  validation {
    condition     = can(regex("^[0-9]{12}$", var.aws_account_id))
    error_message = "aws_account_id must be a 12-digit AWS account id."
  }
}

variable "project_name" {
  type        = string
  description = "Prefix of every resource name this configuration creates, e.g. temporal-dev."

  validation {
    # Bucket names start with it and must stay within 63 characters; S3 reserves some prefixes.
    condition     = can(regex("^[a-z][a-z0-9-]{1,22}[a-z0-9]$", var.project_name)) && !can(regex("^(xn--|sthree-|amzn-s3-demo-)", var.project_name))
    error_message = "project_name must be 3-24 characters of lowercase letters, digits and hyphens, starting with a letter and ending with a letter or digit, and not starting with xn--, sthree- or amzn-s3-demo- (S3 bucket names start with it)."
  }
}

variable "environment" {
  type        = string
  description = "Environment name (the envs/<name>.toml file it was rendered from); used in tags."

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,31}$", var.environment))
    error_message = "environment must be 1-32 characters of lowercase letters, digits and hyphens, starting with a letter."
  }
}

# --- Existing platform --------------------------------------------------------------------------

variable "vpc_id" {
  type        = string
  description = "Id of the existing VPC the ECS cluster runs in."

  validation {
    condition     = can(regex("^vpc-([0-9a-f]{8}|[0-9a-f]{17})$", var.vpc_id))
    error_message = "vpc_id must be vpc- and 8 or 17 hex digits, such as vpc-0123456789abcdef0."
  }
}

variable "vpc_cidr" {
  type        = string
  description = "IPv4 CIDR of that VPC; Loki's only non-S3 egress destination (VPC interface endpoints)."

  validation {
    # A VPC's IPv4 block is /16 to /28, written as its network address (security group rules need that form).
    condition     = can(regex("^[0-9.]+/[0-9]+$", var.vpc_cidr)) && try(cidrsubnet(var.vpc_cidr, 0, 0) == var.vpc_cidr && tonumber(split("/", var.vpc_cidr)[1]) >= 16 && tonumber(split("/", var.vpc_cidr)[1]) <= 28, false)
    error_message = "vpc_cidr must be a VPC's IPv4 CIDR block: a network address with a prefix from /16 to /28, such as 10.0.0.0/16."
  }
}

variable "private_subnet_ids" {
  type        = list(string)
  description = "Private subnets (no route to an internet gateway) for Loki's task ENIs (req 6.1)."
  nullable    = false

  validation {
    # An ECS service's awsvpc configuration takes at most 16 subnets.
    condition     = length(var.private_subnet_ids) > 0 && length(var.private_subnet_ids) <= 16 && length(distinct(var.private_subnet_ids)) == length(var.private_subnet_ids) && alltrue([for s in var.private_subnet_ids : can(regex("^subnet-([0-9a-f]{8}|[0-9a-f]{17})$", s))])
    error_message = "private_subnet_ids must list 1-16 distinct subnet ids, each subnet- and 8 or 17 hex digits, such as subnet-0123456789abcdef0."
  }
}

variable "ecs_cluster_name" {
  type        = string
  description = "Name of the existing ECS cluster."

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,255}$", var.ecs_cluster_name))
    error_message = "ecs_cluster_name must be 1-255 letters, digits, hyphens or underscores."
  }
}

variable "capacity_provider_name" {
  type        = string
  description = "The cluster's EC2 ARM64 (Graviton) capacity provider that Loki is placed on (req 1.1, 1.2)."

  validation {
    # ECS reserves the aws, ecs and fargate prefixes (FARGATE is not EC2 capacity).
    condition     = can(regex("^[A-Za-z0-9_-]{1,255}$", var.capacity_provider_name)) && !can(regex("^(?i)(aws|ecs|fargate)", var.capacity_provider_name))
    error_message = "capacity_provider_name must be 1-255 letters, digits, hyphens or underscores, not starting with aws, ecs or fargate (an EC2 capacity provider's name)."
  }
}

variable "instance_security_group_id" {
  type        = string
  description = "Security group of the cluster's EC2 instances; allowed to reach Loki on 3100 (collectors in host/bridge mode), never attached to Loki's task."

  validation {
    condition     = can(regex("^sg-([0-9a-f]{8}|[0-9a-f]{17})$", var.instance_security_group_id))
    error_message = "instance_security_group_id must be sg- and 8 or 17 hex digits, such as sg-0123456789abcdef0."
  }
}

variable "service_connect_namespace_arn" {
  type        = string
  description = "ARN of the Cloud Map namespace the cluster uses for ECS Service Connect (Loki registers as `loki`)."

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:servicediscovery:[a-z0-9-]+:[0-9]{12}:namespace/ns-[a-z0-9]+$", var.service_connect_namespace_arn))
    error_message = "service_connect_namespace_arn must be a Cloud Map namespace ARN (arn:aws:servicediscovery:<region>:<account>:namespace/ns-...)."
  }
}

variable "s3_prefix_list_id" {
  type        = string
  description = "Prefix list of the VPC's existing S3 gateway endpoint; Loki's S3 egress is limited to it (req 2.7, 6.5)."

  validation {
    condition     = can(regex("^pl-([0-9a-f]{8}|[0-9a-f]{17})$", var.s3_prefix_list_id))
    error_message = "s3_prefix_list_id must be pl- and 8 or 17 hex digits, such as pl-6da54004."
  }
}

variable "amp_workspace_id" {
  type        = string
  description = "Id of the existing Amazon Managed Prometheus workspace the collectors remote-write to."

  validation {
    condition     = can(regex("^ws-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", var.amp_workspace_id))
    error_message = "amp_workspace_id must be ws- and a lowercase UUID, such as ws-01234567-89ab-cdef-0123-456789abcdef."
  }
}

# --- Images -------------------------------------------------------------------------------------

variable "loki_image" {
  type        = string
  description = "Loki image from this account's ECR (a Docker Hub pull-through cache or a mirror), pinned to a 3.7.x release (optionally with @sha256 digest), such as <account>.dkr.ecr.<region>.amazonaws.com/docker-hub/grafana/loki:3.7.6. The config key list and `loki -health` are checked against 3.7."

  validation {
    condition     = can(regex("^([a-z0-9.-]+(:[0-9]+)?/)?[a-z0-9._/-]*loki:3\\.7\\.[0-9]+(@sha256:[0-9a-f]{64})?$", var.loki_image))
    error_message = "loki_image must be pinned to a Loki 3.7.x tag such as grafana/loki:3.7.6 (never `latest` or untagged)."
  }

  validation {
    # Docker Hub rate-limits anonymous pulls, and a task whose image cannot be pulled never starts.
    condition     = can(regex("^[0-9]{12}\\.dkr\\.ecr\\.[a-z0-9-]+\\.amazonaws\\.com(\\.cn)?/", var.loki_image))
    error_message = "loki_image must come from this account's ECR (<account>.dkr.ecr.<region>.amazonaws.com/...), not Docker Hub, which rate-limits anonymous pulls: a Loki that cannot be pulled never starts. Serve it through a pull-through cache rule for Docker Hub or a mirror, such as 123456789012.dkr.ecr.eu-west-1.amazonaws.com/docker-hub/grafana/loki:3.7.6."
  }
}

variable "alloy_image" {
  type        = string
  description = "Grafana Alloy collector image for the services' sidecars, from this account's ECR (a Docker Hub pull-through cache or a mirror) and pinned to a release tag, such as <account>.dkr.ecr.<region>.amazonaws.com/docker-hub/grafana/alloy:v1.21.2."

  validation {
    condition     = can(regex("^([a-z0-9.-]+(:[0-9]+)?/)?[a-z0-9._/-]+:v?[0-9]+\\.[0-9]+\\.[0-9]+([-.][A-Za-z0-9._-]+)?(@sha256:[0-9a-f]{64})?$", var.alloy_image))
    error_message = "alloy_image must be pinned to a version tag such as grafana/alloy:v1.21.2 (never `latest` or untagged)."
  }

  validation {
    # Every Temporal container waits for its sidecar to START: a sidecar image that cannot be
    # pulled stops every Temporal task. Docker Hub rate-limits anonymous pulls.
    condition     = can(regex("^[0-9]{12}\\.dkr\\.ecr\\.[a-z0-9-]+\\.amazonaws\\.com(\\.cn)?/", var.alloy_image))
    error_message = "alloy_image must come from this account's ECR (<account>.dkr.ecr.<region>.amazonaws.com/...), not Docker Hub, which rate-limits anonymous pulls: a sidecar that cannot be pulled stops every Temporal task. Serve it through a pull-through cache rule for Docker Hub or a mirror, such as 123456789012.dkr.ecr.eu-west-1.amazonaws.com/docker-hub/grafana/alloy:v1.21.2."
  }
}

variable "loki_init_image" {
  type        = string
  description = "Small image with a POSIX shell that writes Loki's config from SSM (injected by ECS) into the task and hands /loki to UID 10001, pinned to a version tag."
  default     = "public.ecr.aws/docker/library/busybox:1.37.0"

  validation {
    condition     = can(regex("^([a-z0-9.-]+(:[0-9]+)?/)?[a-z0-9._/-]+:v?[0-9]+\\.[0-9]+(\\.[0-9]+)?([-.][A-Za-z0-9._-]+)?(@sha256:[0-9a-f]{64})?$", var.loki_init_image))
    error_message = "loki_init_image must be pinned to a version tag such as public.ecr.aws/docker/library/busybox:1.37.0 (never `latest` or untagged)."
  }
}

# --- Loki ---------------------------------------------------------------------------------------

variable "loki_enabled" {
  type        = bool
  description = "Create Loki (bucket, roles, security group, config, ECS service). CloudWatch stays either way (req 8.1)."
  default     = true
}

variable "loki_cpu" {
  type        = number
  description = "Loki task CPU units. One of the ECS task sizes 256, 512, 1024, 2048, 4096, 8192, 16384 (1024 carries the required 10 MB/s with room for a restart's catch-up: crates/settings/src/capacity.rs)."
  default     = 1024

  validation {
    condition     = contains([256, 512, 1024, 2048, 4096, 8192, 16384], var.loki_cpu)
    error_message = "loki_cpu must be one of 256, 512, 1024, 2048, 4096, 8192, 16384 CPU units."
  }
}

variable "loki_memory" {
  type        = number
  description = "Loki task memory in MiB, valid for loki_cpu (256: 512-2048; 512: 1024-4096; 1024: 2048-8192; 2048: 4096-16384; 4096: 8192-30720; 8192: 16384-61440; 16384: 32768-122880)."
  default     = 2048

  validation {
    condition     = var.loki_memory >= 512 && var.loki_memory <= 122880 && floor(var.loki_memory) == var.loki_memory
    error_message = "loki_memory must be a whole number of MiB between 512 and 122880 (the range also depends on loki_cpu)."
  }
}

variable "loki_count" {
  type        = number
  description = "Loki replicas: 1 (in-memory ring) or 3-9 (HA: memberlist ring, replication factor 3, peers found through Cloud Map DNS). The rendered config must match (req 7)."
  default     = 1

  validation {
    condition     = floor(var.loki_count) == var.loki_count && (var.loki_count == 1 || (var.loki_count >= 3 && var.loki_count <= 9))
    error_message = "loki_count must be 1 (single replica, in-memory ring) or 3-9 (HA memberlist ring with replication factor 3); 2 cannot hold three replicas and an in-memory ring with more than one task silently splits data."
  }
}

variable "loki_retention_days" {
  type        = number
  description = "Log retention in days, enforced by Loki's compactor (req 5) and also the services' CloudWatch log group retention (req 5.5), so it must be a CloudWatch retention value."
  default     = 7

  validation {
    condition     = var.loki_retention_days >= 1 && var.loki_retention_days <= 3650 && contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288], var.loki_retention_days)
    error_message = "loki_retention_days must be between 1 and 3650 and a CloudWatch retention value: 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922 or 3288."
  }
}

variable "loki_ingestion_mb_per_s" {
  type        = number
  description = "Log volume (MB/s) the Loki tenant must accept (the requirement: 10). Each Temporal container's json-file log is sized to hold this rate, from that one container, through a Loki restart (log-buffer.tf)."
  default     = 10

  validation {
    condition     = var.loki_ingestion_mb_per_s >= 1 && var.loki_ingestion_mb_per_s <= 1000 && floor(var.loki_ingestion_mb_per_s) == var.loki_ingestion_mb_per_s
    error_message = "loki_ingestion_mb_per_s must be a whole number of MB/s between 1 and 1000."
  }
}

variable "host_log_disk_mb" {
  type        = number
  description = "Disk (MB) each EC2 host of the capacity provider has for Docker's container log files: its Docker volume less images and the OS (the ECS-optimized AMI's default 30 GiB root volume leaves about 20,000). A stopped task's files stay until ECS removes its containers, 3 hours after it stops (ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION)."
  default     = 20000
  nullable    = false

  validation {
    condition     = var.host_log_disk_mb >= 1000 && var.host_log_disk_mb <= 10000000 && floor(var.host_log_disk_mb) == var.host_log_disk_mb
    error_message = "host_log_disk_mb must be a whole number of MB between 1000 and 10000000."
  }
}

variable "loki_https_egress_cidrs" {
  type        = list(string)
  description = "HTTPS egress for Loki's task beyond S3 and the VPC. Empty (the default) keeps Loki off the internet (req 6.5) and makes the plan require available interface endpoints with private DNS for aps-workspaces (its Alloy sidecar) and ssmmessages (ECS Exec) in vpc_id; set it (e.g. to the NAT route's 0.0.0.0/0) only for a VPC without them."
  default     = []
  nullable    = false

  validation {
    condition     = alltrue([for c in var.loki_https_egress_cidrs : can(cidrhost(c, 0))])
    error_message = "loki_https_egress_cidrs must be IPv4 CIDR blocks such as 0.0.0.0/0."
  }
}

variable "loki_client_security_group_ids" {
  type        = list(string)
  description = "Extra security groups (e.g. awsvpc tasks carrying an Alloy sidecar) allowed to reach Loki on 3100. Other files can add their own aws_vpc_security_group_ingress_rule on local.loki_security_group_id instead."
  default     = []
  nullable    = false

  validation {
    condition     = alltrue([for s in var.loki_client_security_group_ids : can(regex("^sg-([0-9a-f]{8}|[0-9a-f]{17})$", s))])
    error_message = "loki_client_security_group_ids must only contain security group ids such as sg-0123456789abcdef0."
  }
}

variable "loki_log_retention_days" {
  type        = number
  description = "Retention of Loki's own CloudWatch log group (Loki cannot ship its own logs to itself)."
  default     = 14

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365], var.loki_log_retention_days)
    error_message = "loki_log_retention_days must be a CloudWatch retention value between 1 and 365: 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180 or 365."
  }
}

variable "rendered_config_dir" {
  type        = string
  description = "Directory, relative to infra/, holding the configs `cargo xtask render` produced for this environment (e.g. ../rendered/dev)."

  validation {
    condition     = fileexists("${var.rendered_config_dir}/loki-config.yaml")
    error_message = "rendered_config_dir must contain loki-config.yaml; run `cargo xtask render` first."
  }
}

variable "config_parameters_in_use" {
  type        = list(string)
  description = "SSM names of the Alloy, Loki and ADOT config parameters that a rollback may need: those the live ECS deployments and the 5 newest revisions of each task definition family read (`cargo xtask` passes them to each plan; `cargo xtask in-use --env <env>` prints them as a -var-file). Configs are named by their hash and never overwritten; these are kept with their values, so a circuit-breaker or manual rollback starts with its own config, and any other older one is deleted. null (a plain plan that names no list): every config parameter this stack has written is kept."
  default     = null

  validation {
    condition     = var.config_parameters_in_use == null || alltrue([for n in coalesce(var.config_parameters_in_use, []) : anytrue([for kind in ["alloy", "loki", "adot"] : startswith(n, "/${var.project_name}/${kind}/")])])
    error_message = "config_parameters_in_use must list only parameter names under /<project_name>/alloy/, /<project_name>/loki/ or /<project_name>/adot/ (the configs this stack writes); print the list with `cargo xtask in-use --env <env>`."
  }
}

# --- Temporal services and their collectors (alloy-sidecar.tf, temporal-*.tf) ---------------------

variable "service_collectors" {
  type        = map(string)
  description = "Collector sidecar per service (req 8.2): \"adot\" (the starting point) or \"alloy\". Keys: history, matching, frontend, worker, benchmark-worker; a service left out keeps ADOT while that code exists (alloy after cleanup-adot). Values are checked by terraform_data.collector_choice."
  default     = {}
  nullable    = false

  validation {
    condition     = length(setsubtract(keys(var.service_collectors), ["history", "matching", "frontend", "worker", "benchmark-worker"])) == 0
    error_message = "service_collectors: unknown service name; the keys must be among history, matching, frontend, worker, benchmark-worker."
  }
}

variable "adot_enabled" {
  type        = bool
  description = "Whether the ADOT sidecars' shared resources (their SSM config) exist; `cargo xtask cleanup-adot` sets false once every service runs Alloy."
  default     = true
  nullable    = false
}

variable "cloudwatch_parallel_run" {
  type        = bool
  description = "Keep the awslogs driver on services whose Alloy sidecar also ships to Loki (req 8.1). false: json-file with rotation, Loki only. Services on ADOT always use awslogs."
  default     = true
}

variable "benchmark_worker_enabled" {
  type        = bool
  description = "Run the optional benchmark worker service."
  default     = false
}

variable "temporal_image" {
  type        = string
  description = "temporalio/server image of the Temporal services, pinned to a release tag such as temporalio/server:1.28.1."

  validation {
    condition     = can(regex("^([a-z0-9.-]+(:[0-9]+)?/)?[a-z0-9._/-]+:v?[0-9]+\\.[0-9]+\\.[0-9]+(@sha256:[0-9a-f]{64})?$", var.temporal_image))
    error_message = "temporal_image must be pinned to a version tag such as temporalio/server:1.28.1 (never `latest` or untagged)."
  }
}

variable "benchmark_worker_image" {
  type        = string
  description = "temporalio/benchmark-workers image, pinned to a release tag or a digest (never `main` or `latest`)."
  default     = "ghcr.io/temporalio/benchmark-workers:v1.5.0"

  validation {
    condition     = can(regex("^([a-z0-9.-]+(:[0-9]+)?/)?[a-z0-9._/-]+(:v?[0-9]+\\.[0-9]+\\.[0-9]+)?(@sha256:[0-9a-f]{64})?$", var.benchmark_worker_image)) && can(regex("(:v?[0-9]+\\.[0-9]+\\.[0-9]+|@sha256:[0-9a-f]{64})$", var.benchmark_worker_image))
    error_message = "benchmark_worker_image must be pinned to a version tag or @sha256 digest (never `main`, `latest` or untagged)."
  }
}

variable "temporal_service_sizes" {
  type = map(object({
    cpu           = number
    memory        = number
    desired_count = number
  }))
  description = "Task CPU units, memory (MiB, sidecar included) and task count per service."
  default = {
    history            = { cpu = 1024, memory = 2048, desired_count = 1 }
    matching           = { cpu = 512, memory = 1024, desired_count = 1 }
    frontend           = { cpu = 512, memory = 1024, desired_count = 1 }
    worker             = { cpu = 512, memory = 1024, desired_count = 1 }
    "benchmark-worker" = { cpu = 512, memory = 1024, desired_count = 1 }
  }
  nullable = false

  validation {
    condition     = length(setsubtract(keys(var.temporal_service_sizes), ["history", "matching", "frontend", "worker", "benchmark-worker"])) == 0 && length(keys(var.temporal_service_sizes)) == 5
    error_message = "temporal_service_sizes must have exactly the keys history, matching, frontend, worker, benchmark-worker."
  }

  validation {
    # Room for the main container next to the sidecar (alloy_memory, 384 MiB by default).
    condition     = alltrue([for s in values(var.temporal_service_sizes) : s.cpu >= 256 && s.memory >= 1024 && s.desired_count >= 0])
    error_message = "temporal_service_sizes: every service needs cpu >= 256, memory >= 1024 MiB and desired_count >= 0."
  }
}

variable "temporal_history_shards" {
  type        = number
  description = "Number of history shards. Fixed when the cluster's database is created; never change it afterwards."
  default     = 512

  validation {
    condition     = var.temporal_history_shards >= 1 && floor(var.temporal_history_shards) == var.temporal_history_shards
    error_message = "temporal_history_shards must be a positive whole number."
  }
}

variable "temporal_db_host" {
  type        = string
  description = "Host name of the existing PostgreSQL-compatible database of the Temporal cluster."

  validation {
    # DNS: labels of 1-63 letters, digits and inner hyphens; 253 characters in all.
    condition     = length(var.temporal_db_host) <= 253 && can(regex("^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$", var.temporal_db_host))
    error_message = "temporal_db_host must be a DNS name or IPv4 address (labels of 1-63 letters, digits and inner hyphens, 253 characters at most)."
  }
}

variable "temporal_db_port" {
  type        = number
  description = "Port of the Temporal database."
  default     = 5432

  validation {
    condition     = var.temporal_db_port >= 1 && var.temporal_db_port <= 65535 && floor(var.temporal_db_port) == var.temporal_db_port
    error_message = "temporal_db_port must be a whole number between 1 and 65535."
  }
}

variable "temporal_db_name" {
  type        = string
  description = "Name of Temporal's main database."
  default     = "temporal"

  validation {
    condition     = can(regex("^[A-Za-z_][A-Za-z0-9_$-]{0,62}$", var.temporal_db_name))
    error_message = "temporal_db_name must be a PostgreSQL name: 1-63 letters, digits, _, $ or -, starting with a letter or _."
  }
}

variable "temporal_visibility_db_name" {
  type        = string
  description = "Name of Temporal's visibility database."
  default     = "temporal_visibility"

  validation {
    condition     = can(regex("^[A-Za-z_][A-Za-z0-9_$-]{0,62}$", var.temporal_visibility_db_name))
    error_message = "temporal_visibility_db_name must be a PostgreSQL name: 1-63 letters, digits, _, $ or -, starting with a letter or _."
  }
}

variable "temporal_db_user" {
  type        = string
  description = "Database user of the Temporal services."
  default     = "temporal"

  validation {
    condition     = can(regex("^[A-Za-z_][A-Za-z0-9_$-]{0,62}$", var.temporal_db_user))
    error_message = "temporal_db_user must be a PostgreSQL name: 1-63 letters, digits, _, $ or -, starting with a letter or _."
  }
}

variable "temporal_db_password_secret_arn" {
  type        = string
  description = "ARN of the database password: a Secrets Manager secret (optionally `<arn>:<json-key>::`) or an SSM SecureString parameter. ECS injects it as POSTGRES_PWD; it never appears in the task definition."

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:(secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:.+|ssm:[a-z0-9-]+:[0-9]{12}:parameter/.+)$", var.temporal_db_password_secret_arn))
    error_message = "temporal_db_password_secret_arn must be a Secrets Manager secret ARN or an SSM parameter ARN (never the password itself)."
  }
}

variable "temporal_db_tls_enabled" {
  type        = bool
  description = "Connect to the database with TLS."
  default     = true
}

variable "alloy_cpu" {
  type        = number
  description = "CPU units reserved for each Alloy sidecar."
  default     = 128

  validation {
    condition     = var.alloy_cpu >= 64 && var.alloy_cpu <= 1024
    error_message = "alloy_cpu must be between 64 and 1024 units."
  }
}

variable "alloy_memory" {
  type        = number
  description = "Hard memory limit (MiB) of each Alloy sidecar; GOMEMLIMIT is set to 80 % of it."
  default     = 384

  validation {
    condition     = var.alloy_memory >= 128 && var.alloy_memory <= 2048
    error_message = "alloy_memory must be between 128 and 2048 MiB."
  }
}

# --- Grafana (grafana.tf) -------------------------------------------------------------------------

variable "grafana_image" {
  type        = string
  description = "Grafana image pushed by `cargo xtask build-grafana` (<account>.dkr.ecr.<region>.amazonaws.com/<project>-grafana:<grafana version>-<commit>). null until the first push: the ECR repository and admin secret exist, the service does not."
  default     = null

  validation {
    condition     = var.grafana_image == null || can(regex("^([a-z0-9.-]+(:[0-9]+)?/)?[a-z0-9._/-]+(:[A-Za-z0-9._-]+)?(@sha256:[0-9a-f]{64})?$", var.grafana_image)) && can(regex("(:[0-9]+\\.[0-9]+\\.[0-9]+-[0-9a-f]{7,}(-dirty)?|@sha256:[0-9a-f]{64})$", var.grafana_image))
    error_message = "grafana_image must be an image build-grafana pushed, tagged <grafana version>-<commit> such as ...:13.2.3-1a2b3c4 (or pinned by @sha256 digest); never `latest`."
  }

  validation {
    condition     = var.grafana_image == null || can(regex("^[0-9]{12}\\.dkr\\.ecr\\.[a-z0-9-]+\\.amazonaws\\.com(\\.cn)?/", var.grafana_image))
    error_message = "grafana_image must come from this account's ECR, where build-grafana pushes it (<account>.dkr.ecr.<region>.amazonaws.com/<project>-grafana:...), not Docker Hub, which rate-limits anonymous pulls."
  }
}

variable "grafana_cpu" {
  type        = number
  description = "Grafana task CPU units: 256, 512, 1024, 2048 or 4096."
  default     = 256

  validation {
    condition     = contains([256, 512, 1024, 2048, 4096], var.grafana_cpu)
    error_message = "grafana_cpu must be one of 256, 512, 1024, 2048, 4096 CPU units."
  }
}

variable "grafana_memory" {
  type        = number
  description = "Grafana task memory in MiB, valid for grafana_cpu (256: 512-2048; 512: 1024-4096; 1024: 2048-8192; 2048: 4096-16384; 4096: 8192-30720)."
  default     = 512

  validation {
    condition     = var.grafana_memory >= 512 && var.grafana_memory <= 30720 && floor(var.grafana_memory) == var.grafana_memory
    error_message = "grafana_memory must be a whole number of MiB between 512 and 30720 (the range also depends on grafana_cpu)."
  }
}

variable "grafana_image_keep_count" {
  type        = number
  description = "Images the Grafana ECR repository keeps (the newest; older ones expire). They are the rollback targets."
  default     = 20

  validation {
    condition     = var.grafana_image_keep_count >= 1 && var.grafana_image_keep_count <= 1000 && floor(var.grafana_image_keep_count) == var.grafana_image_keep_count
    error_message = "grafana_image_keep_count must be a whole number between 1 and 1000."
  }
}

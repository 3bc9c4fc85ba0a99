# ADOT collector sidecar: the state the migration starts from. It scrapes the main container's
# :9090 and remote-writes to AMP with SigV4; container logs go to CloudWatch through awslogs.
#
# Everything ADOT lives in this file and templates/adot-sidecar-config.yaml.tera, plus the blocks
# between `# >>> adot` and `# <<< adot` elsewhere. `cargo xtask cleanup-adot --prune-code` deletes
# exactly those; the rest then validates with every service on `alloy`.

variable "adot_image" {
  type        = string
  description = "AWS Distro for OpenTelemetry collector image of the ADOT sidecars, pinned to a version tag."
  default     = "public.ecr.aws/aws-observability/aws-otel-collector:v0.40.0"

  validation {
    condition     = can(regex("^([a-z0-9.-]+(:[0-9]+)?/)?[a-z0-9._/-]+:v?[0-9]+\\.[0-9]+\\.[0-9]+(@sha256:[0-9a-f]{64})?$", var.adot_image))
    error_message = "adot_image must be pinned to a version tag such as public.ecr.aws/aws-observability/aws-otel-collector:v0.40.0 (never `latest` or untagged)."
  }
}

locals {
  adot_config_path = "${var.rendered_config_dir}/adot-sidecar-config.yaml"
  adot_config      = try(file(local.adot_config_path), "")

  # Known at plan time; see local.alloy_parameter_arns.
  adot_parameter_prefix = "/${var.project_name}/adot/"
  adot_parameter_name   = "${local.adot_parameter_prefix}sidecar"
  adot_parameter_arn    = "${local.ssm_parameter_arn_prefix}${local.adot_parameter_name}"

  # While ADOT runs, and after while a revision a rollback may start reads it (config-parameters.tf),
  # the config stays and every service's execution role may read it: a service on Alloy whose
  # deployment fails rolls back to its ADOT revision, which reads this at launch.
  adot_parameter_kept          = var.adot_enabled || contains(local.config_parameters_in_use, local.adot_parameter_name)
  adot_rollback_parameter_arns = local.adot_parameter_kept ? [local.adot_parameter_arn] : []

  # One config for all services: the OTel collector expands ${env:SERVICE_NAME} itself.
  adot_sidecars = {
    for s in local.temporal_services : s => {
      container = {
        name      = "adot-collector"
        image     = var.adot_image
        essential = false
        cpu       = 128
        memory    = 256
        command   = ["--config", "env:ADOT_CONFIG"]
        environment = [
          { name = "SERVICE_NAME", value = s },
        ]
        secrets      = [{ name = "ADOT_CONFIG", valueFrom = local.adot_parameter_arn }]
        dockerLabels = { "adot.config.sha256" = sha256(local.adot_config) }
      }
      volumes        = []
      parameter_arns = [local.adot_parameter_arn]
      ships_logs     = false
    }
  }
}

# What a kept config holds in AWS, once ADOT is off: read, never rewritten.
data "aws_ssm_parameter" "adot_in_use" {
  count = local.adot_parameter_kept && !var.adot_enabled ? 1 : 0

  name = local.adot_parameter_name
}

# Gone once `cargo xtask cleanup-adot` sets adot_enabled = false (every service on Alloy by then)
# and no revision a rollback may start reads it.
resource "aws_ssm_parameter" "adot" {
  #checkov:skip=CKV2_AWS_34:Collector config, no secrets (String on purpose, readable in the console).
  count = local.adot_parameter_kept ? 1 : 0

  name        = local.adot_parameter_name
  description = "ADOT collector sidecar config of the Temporal services, rendered by cargo xtask render"
  type        = "String"
  tier        = "Intelligent-Tiering"
  value       = var.adot_enabled ? local.adot_config : data.aws_ssm_parameter.adot_in_use[0].insecure_value

  lifecycle {
    precondition {
      condition     = !var.adot_enabled || (fileexists(local.adot_config_path) && trimspace(local.adot_config) != "")
      error_message = "${local.adot_config_path} is missing or empty; run `cargo xtask render` for this environment."
    }
  }
}

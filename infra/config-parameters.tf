# The older config parameters a rollback may need, kept with their values (alloy-sidecar.tf,
# loki.tf, adot-sidecar.tf). xtask names them before each plan (var.config_parameters_in_use:
# what the live deployments and the newest revisions read), so an older config nothing reads is
# deleted. A plan that names no list (a plain `terraform plan`) keeps every config this stack
# has written: only a plan told what may go deletes one, never one a rollback still needs.

data "aws_ssm_parameters_by_path" "configs" {
  for_each = var.config_parameters_in_use == null ? toset(local.config_parameter_prefixes) : toset([])

  path            = trimsuffix(each.key, "/")
  recursive       = true
  with_decryption = false
}

locals {
  config_parameter_prefixes = [
    local.alloy_parameter_prefix,
    local.loki_parameter_prefix,
    # >>> adot: `cargo xtask cleanup-adot --prune-code` deletes through the closing marker
    local.adot_parameter_prefix,
    # <<< adot
  ]

  config_parameters_in_use = (var.config_parameters_in_use != null ? var.config_parameters_in_use :
  flatten([for d in data.aws_ssm_parameters_by_path.configs : d.names]))
}

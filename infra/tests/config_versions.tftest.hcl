# Config parameters are versioned (issue 17.5): each config has a parameter named by its hash,
# never overwritten, so a task definition revision keeps reading the config it was registered
# with; the configs live deployments still read (var.config_parameters_in_use) are kept as they
# are, and their task's execution role can still read them: a rollback starts with its own config.

variables {
  loki_enabled        = true
  loki_cpu            = 1024
  loki_memory         = 2048
  loki_count          = 1
  loki_retention_days = 7
  service_collectors  = { history = "alloy", matching = "alloy", frontend = "alloy", worker = "alloy", "benchmark-worker" = "alloy" }
}

mock_provider "aws" {
  override_during = plan

  mock_data "aws_partition" {
    defaults = { partition = "aws" }
  }
  mock_data "aws_vpc_endpoint" {
    defaults = { vpc_endpoint_type = "Interface", state = "available", private_dns_enabled = true }
  }
}

# What the parameters still in use hold in AWS: read, never rewritten.
override_data {
  target          = data.aws_ssm_parameter.alloy_in_use
  override_during = plan
  values          = { insecure_value = "// the config the running revision was registered with" }
}
override_data {
  target          = data.aws_ssm_parameter.loki_config_in_use
  override_during = plan
  values          = { insecure_value = "# the Loki config the running revision was registered with" }
}

# req: 3.12
run "each_config_has_a_parameter_named_by_its_hash" {
  command = plan

  # xtask found no older config in use.
  variables {
    config_parameters_in_use = []
  }

  assert {
    condition = alltrue([
      for s in ["history", "matching", "frontend", "worker", "benchmark-worker", "loki"] :
      output.alloy_config_parameters[s] == "/temporal-dev/alloy/${s}/${substr(sha256(file("../rendered/example/alloy-${s}.alloy")), 0, 12)}"
    ])
    error_message = "Each Alloy config must get a parameter named by its hash, so a new config never overwrites the one older revisions read."
  }
  assert {
    condition     = output.loki_config_parameter_name == "/temporal-dev/loki/config-${substr(sha256(file("../rendered/example/loki-config.yaml")), 0, 12)}.yaml"
    error_message = "Loki's config must get a parameter named by its hash."
  }
  assert {
    condition = alltrue([
      for s, m in { history = module.temporal_history, worker = module.temporal_worker } :
      one([for c in jsondecode(m.container_definitions) : c.secrets if c.name == "alloy"]) == [{ name = "ALLOY_CONFIG", valueFrom = "arn:aws:ssm:eu-west-1:123456789012:parameter${output.alloy_config_parameters[s]}" }]
    ])
    error_message = "A task definition must read the parameter of its own config."
  }
  assert {
    condition     = length(aws_ssm_parameter.alloy) == 6 && length(aws_ssm_parameter.loki_config) == 1
    error_message = "With no older config in use, only the current configs have parameters (older ones are deleted)."
  }
}

# req: 3.12, 8.4
run "configs_live_deployments_read_are_kept_with_their_values" {
  command = plan

  variables {
    config_parameters_in_use = [
      "/temporal-dev/alloy/history",
      "/temporal-dev/alloy/matching/0123456789ab",
      "/temporal-dev/loki/config.yaml",
    ]
  }

  assert {
    condition = (
      aws_ssm_parameter.alloy["history"].name == "/temporal-dev/alloy/history" &&
      aws_ssm_parameter.alloy["history"].value == "// the config the running revision was registered with" &&
      aws_ssm_parameter.alloy["matching/0123456789ab"].value == "// the config the running revision was registered with" &&
      aws_ssm_parameter.loki_config["config.yaml"].value == "# the Loki config the running revision was registered with"
    )
    error_message = "A config parameter a live deployment reads must be kept with the value it has, not rewritten with the new config."
  }
  assert {
    condition = (
      length(aws_ssm_parameter.alloy) == 8 && length(aws_ssm_parameter.loki_config) == 2 &&
      aws_ssm_parameter.alloy[trimprefix(output.alloy_config_parameters["history"], "/temporal-dev/alloy/")].value == file("../rendered/example/alloy-history.alloy") &&
      aws_ssm_parameter.loki_config[trimprefix(output.loki_config_parameter_name, "/temporal-dev/loki/")].value == file("../rendered/example/loki-config.yaml")
    )
    error_message = "The new configs get parameters of their own next to the kept ones."
  }
  assert {
    condition = (
      strcontains(module.temporal_history.execution_role_policy, "\"arn:aws:ssm:eu-west-1:123456789012:parameter/temporal-dev/alloy/history\"") &&
      strcontains(module.temporal_history.execution_role_policy, "\"arn:aws:ssm:eu-west-1:123456789012:parameter${output.alloy_config_parameters["history"]}\"") &&
      strcontains(module.temporal_matching.execution_role_policy, "/temporal-dev/alloy/matching/0123456789ab\"") &&
      !strcontains(module.temporal_worker.execution_role_policy, "/temporal-dev/alloy/history\"") &&
      contains(jsondecode(aws_iam_role_policy.loki_execution_config[0].policy).Statement[0].Resource, "arn:aws:ssm:eu-west-1:123456789012:parameter/temporal-dev/loki/config.yaml")
    )
    error_message = "A rolled-back task must be able to read its own config: its service's execution role keeps the kept parameter (and no other service's)."
  }
  assert {
    condition     = one([for c in jsondecode(aws_ecs_task_definition.loki[0].container_definitions) : c.secrets if c.name == "loki-init"]) == [{ name = "LOKI_CONFIG", valueFrom = "arn:aws:ssm:eu-west-1:123456789012:parameter${output.loki_config_parameter_name}" }]
    error_message = "The new Loki task definition must read the new config, not the kept one."
  }
  assert {
    condition     = aws_ecs_task_definition.loki[0].skip_destroy == true
    error_message = "Loki's earlier task definition revisions must stay registered, or ECS refuses a rollback to them."
  }
}

# req: 8.4
run "a_plain_plan_that_names_no_list_deletes_no_config" {
  command = plan

  # What this stack wrote earlier, as SSM lists it under each prefix.
  override_data {
    target = data.aws_ssm_parameters_by_path.configs
    values = { names = ["/temporal-dev/alloy/history/0123456789ab", "/temporal-dev/loki/config.yaml"] }
  }

  assert {
    condition = (
      aws_ssm_parameter.alloy["history/0123456789ab"].value == "// the config the running revision was registered with" &&
      aws_ssm_parameter.loki_config["config.yaml"].value == "# the Loki config the running revision was registered with" &&
      length(aws_ssm_parameter.alloy) == 7 && length(aws_ssm_parameter.loki_config) == 2
    )
    error_message = "A plan without config_parameters_in_use (a plain `terraform plan`) must keep every config parameter this stack wrote, with its value: only a plan told what may go deletes one."
  }
  assert {
    condition     = strcontains(module.temporal_history.execution_role_policy, "/temporal-dev/alloy/history/0123456789ab\"")
    error_message = "A kept config stays readable by its service, for a rollback."
  }
}

run "a_name_outside_this_stack_is_refused" {
  command = plan

  variables {
    config_parameters_in_use = ["/another-project/alloy/history"]
  }

  expect_failures = [var.config_parameters_in_use]
}

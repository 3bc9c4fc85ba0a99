# Bad input (issue 3): invalid settings fail at plan time, naming the setting and what is allowed.

# The example environment (envs/example.toml), so every run plans what `dev` would.
variables {
  loki_enabled        = true
  loki_cpu            = 512
  loki_memory         = 1024
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

run "req_5_1_retention_0_is_rejected" {
  command = plan

  variables {
    loki_retention_days = 0
  }

  expect_failures = [var.loki_retention_days]
}

run "req_5_5_retention_must_be_a_cloudwatch_value" {
  command = plan

  variables {
    loki_retention_days = 10
  }

  expect_failures = [var.loki_retention_days]
}

run "req_5_5_retention_must_agree_with_the_rendered_config" {
  command = plan

  # Valid on its own, but rendered/example/loki-config.yaml says 168h.
  variables {
    loki_retention_days = 14
  }

  expect_failures = [aws_ssm_parameter.loki_config]
}

# The sidecar's memory is not Loki's: a bigger sidecar needs a config rendered for it.
run "req_nf6_replay_ceiling_must_count_the_sidecar" {
  command = plan

  # rendered/example/loki-config.yaml replays within 480MB: 75 % of 1024 - 384 MiB.
  variables {
    alloy_memory = 512
  }

  expect_failures = [aws_ecs_task_definition.loki]
}

run "req_10_1_cpu_300_is_rejected" {
  command = plan

  variables {
    loki_cpu = 300
  }

  expect_failures = [var.loki_cpu]
}

run "req_10_1_memory_must_fit_the_cpu" {
  command = plan

  variables {
    loki_cpu    = 512
    loki_memory = 8192
  }

  expect_failures = [aws_ecs_task_definition.loki]
}

run "bad_input_image_latest_is_rejected" {
  command = plan

  variables {
    loki_image = "grafana/loki:latest"
  }

  expect_failures = [var.loki_image]
}

run "bad_input_image_untagged_is_rejected" {
  command = plan

  variables {
    loki_image  = "grafana/loki"
    alloy_image = "grafana/alloy:latest"
  }

  expect_failures = [var.loki_image, var.alloy_image]
}

run "req_1_5_loki_before_3_7_is_rejected" {
  command = plan

  # 3.6.4 has no `loki -health`; the key list is 3.7's.
  variables {
    loki_image = "grafana/loki:3.6.4"
  }

  expect_failures = [var.loki_image]
}

run "image_pinned_by_digest_in_a_mirror_is_accepted" {
  command = plan

  variables {
    loki_image = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/mirror/grafana/loki:3.7.6@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
  }

  assert {
    condition     = strcontains(aws_ecs_task_definition.loki[0].container_definitions, "mirror/grafana/loki:3.7.6@sha256:")
    error_message = "A mirrored image pinned by tag and digest is used as given."
  }
}

run "req_7_3_loki_count_2_is_rejected" {
  command = plan

  variables {
    loki_count = 2
  }

  expect_failures = [var.loki_count]
}

run "req_7_3_ha_count_with_a_single_replica_config_is_rejected" {
  command = plan

  # 3 replicas on a config rendered for 1 (in-memory ring) would silently split data.
  variables {
    loki_count = 3
  }

  expect_failures = [aws_ssm_parameter.loki_config]
}

run "req_1_7_missing_rendered_config_is_rejected" {
  command = plan

  variables {
    rendered_config_dir = "../rendered/does-not-exist"
  }

  expect_failures = [var.rendered_config_dir]
}

run "bad_input_project_name_is_checked" {
  command = plan

  variables {
    project_name = "Temporal_Dev"
  }

  expect_failures = [var.project_name]
}

run "req_8_1_loki_disabled_creates_nothing" {
  command = plan

  variables {
    loki_enabled = false
  }

  assert {
    condition = (
      length(aws_s3_bucket.loki) == 0 && length(aws_ecs_service.loki) == 0 && length(aws_security_group.loki) == 0 &&
      length(aws_iam_role.loki_task) == 0 && length(aws_ssm_parameter.loki_config) == 0
    )
    error_message = "loki_enabled = false creates no Loki resources."
  }
  assert {
    condition     = output.loki_endpoint == null && output.loki_security_group_id == null
    error_message = "Without Loki its seams are null."
  }
}

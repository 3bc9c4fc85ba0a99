# Bad input (issue 3): invalid settings fail at plan time, naming the setting and what is allowed.

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

# The AZs of the HA runs' first two subnets (issue 31.5); each run places the third.
override_data {
  target = data.aws_subnet.loki["subnet-0123456789abcdef0"]
  values = { availability_zone = "eu-west-1a" }
}
override_data {
  target = data.aws_subnet.loki["subnet-0fedcba9876543210"]
  values = { availability_zone = "eu-west-1b" }
}

# Known ARNs for the parameters the task definition references, so its JSON is known during plan.
override_resource {
  target          = aws_ssm_parameter.alloy
  override_during = plan
  values          = { arn = "arn:aws:ssm:eu-west-1:123456789012:parameter/temporal-dev/alloy/loki" }
}

# Each setting's own validation, one bad value per setting and run: Terraform requires every
# listed object to fail, so a run still proves each rule on its own.
# req: 5.1, 10.1, 7.3, 1.7
run "bad_input_settings_are_rejected_by_their_own_rules" {
  command = plan

  variables {
    loki_retention_days = 0                            # 5.1: no retention
    loki_cpu            = 300                          # 10.1: not an ECS CPU size
    loki_image          = "grafana/loki:latest"        # unpinned
    loki_count          = 2                            # 7.3: neither 1 nor a 3-replica ring
    rendered_config_dir = "../rendered/does-not-exist" # 1.7: render first
    project_name        = "Temporal_Dev"               # not a name AWS accepts everywhere
  }

  expect_failures = [
    var.loki_retention_days,
    var.loki_cpu,
    var.loki_image,
    var.loki_count,
    var.rendered_config_dir,
    var.project_name,
  ]
}

# The second bad value of the settings with several rules.
# req: 5.5
run "bad_input_second_values_are_rejected" {
  command = plan

  variables {
    loki_retention_days = 10                     # 5.5: not a CloudWatch retention value
    loki_image          = "grafana/loki"         # untagged
    alloy_image         = "grafana/alloy:latest" # unpinned on purpose: must be refused
  }

  expect_failures = [var.loki_retention_days, var.loki_image, var.alloy_image]
}

run "req_1_5_loki_before_3_7_is_rejected" {
  command = plan

  # 3.6.4 has no `loki -health`; the key list is 3.7's.
  variables {
    loki_image = "grafana/loki:3.6.4"
  }

  expect_failures = [var.loki_image]
}

# Valid settings that disagree with the rendered config: each resource that holds the config
# refuses it (a run with one resource failing may leave the other unplanned, so one per run).
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

  # rendered/example/loki-config.yaml spends 268 MB under GOMEMLIMIT (120 of caches, 84 of WAL
  # replay, 64 for a query); a 1664 MiB sidecar leaves Loki 256 MiB, GOMEMLIMIT 204.
  variables {
    alloy_memory = 1664
  }

  expect_failures = [aws_ecs_task_definition.loki]
}

run "req_10_1_memory_must_fit_the_cpu" {
  command = plan

  variables {
    loki_cpu    = 512
    loki_memory = 8192
  }

  expect_failures = [aws_ecs_task_definition.loki]
}

run "req_7_3_ha_count_with_a_single_replica_config_is_rejected" {
  command = plan

  # 3 replicas on a config rendered for 1 (in-memory ring) would silently split data.
  variables {
    loki_count         = 3
    private_subnet_ids = ["subnet-0123456789abcdef0", "subnet-0fedcba9876543210", "subnet-0a1b2c3d4e5f60718"]
  }

  expect_failures = [aws_ssm_parameter.loki_config]
}

run "ha_replicas_over_fewer_azs_than_replicas_are_rejected" {
  command = plan

  # 3 replicas over 2 AZs: the AZ holding two takes the write quorum with it (platform.auto.tfvars
  # lists two subnets).
  variables {
    loki_count          = 3
    loki_retention_days = 30
    loki_cpu            = 1024
    loki_memory         = 2048
    rendered_config_dir = "../rendered/ha-example"
  }

  expect_failures = [aws_ecs_service.loki]
}

# Issue 31.5: the quorum rule counts AZs, not subnets. Three subnets, two of them in one AZ, leave
# a replica sharing an AZ; three AZs pass.
# req: 7.2
run "ha_replicas_over_three_subnets_in_two_azs_are_rejected" {
  command = plan

  variables {
    loki_count          = 3
    loki_retention_days = 30
    rendered_config_dir = "../rendered/ha-example"
    private_subnet_ids  = ["subnet-0123456789abcdef0", "subnet-0fedcba9876543210", "subnet-0a1b2c3d4e5f60718"]
  }

  override_data {
    target = data.aws_subnet.loki["subnet-0a1b2c3d4e5f60718"]
    values = { availability_zone = "eu-west-1a" }
  }

  expect_failures = [aws_ecs_service.loki]
}

run "ha_replicas_over_three_azs_are_accepted" {
  command = plan

  variables {
    loki_count          = 3
    loki_retention_days = 30
    rendered_config_dir = "../rendered/ha-example"
    private_subnet_ids  = ["subnet-0123456789abcdef0", "subnet-0fedcba9876543210", "subnet-0a1b2c3d4e5f60718"]
  }

  override_data {
    target = data.aws_subnet.loki["subnet-0a1b2c3d4e5f60718"]
    values = { availability_zone = "eu-west-1c" }
  }

  assert {
    condition     = local.loki_zones == tolist(["eu-west-1a", "eu-west-1b", "eu-west-1c"])
    error_message = "Each private subnet's AZ is looked up."
  }
}

# Issue 31.4: Docker Hub rate-limits anonymous pulls, and a task whose image cannot be pulled never
# starts (for Alloy, every Temporal task). Pinned images outside this account's ECR are refused.
# req: 3.11
run "images_outside_ecr_are_refused" {
  command = plan

  variables {
    loki_image    = "grafana/loki:3.7.6"
    alloy_image   = "public.ecr.aws/grafana/alloy:v1.21.2"
    grafana_image = "grafana/grafana:13.2.3-1a2b3c4"
  }

  expect_failures = [var.loki_image, var.alloy_image, var.grafana_image]
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

# Loki's IAM (req 2.6, 6.6): a task role for S3, a separate execution role, no keys.

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

# Known ARNs for the parameters the task definition references, so its JSON is known during plan.
override_resource {
  target          = aws_ssm_parameter.alloy
  override_during = plan
  values          = { arn = "arn:aws:ssm:eu-west-1:123456789012:parameter/temporal-dev/alloy/loki" }
}

# req: 2.6, 6.6, 1.7
# Every check of the plan with this file's variables: one plan, many assertions.
run "loki_iam_with_the_file_variables" {
  command = plan

  # Issue 31.4: a pull-through cache creates Loki's and its sidecar's repositories on the first
  # pull, with the execution role; busybox comes from ECR Public and needs nothing.
  assert {
    condition = jsondecode(aws_iam_role_policy.loki_execution_pull_through[0].policy).Statement == [{
      Sid      = "FirstPullThroughCache"
      Effect   = "Allow"
      Action   = ["ecr:BatchImportUpstreamImage", "ecr:CreateRepository"]
      Resource = ["arn:aws:ecr:eu-west-1:123456789012:repository/docker-hub/grafana/loki", "arn:aws:ecr:eu-west-1:123456789012:repository/docker-hub/grafana/alloy"]
    }]
    error_message = "Loki's execution role may create and import the ECR repositories of Loki's and Alloy's images (pull-through cache), and no other."
  }

  # task role reads and writes only its bucket (2.6)
  assert {
    condition = toset([
      for s in jsondecode(aws_iam_role_policy.loki_task_s3[0].policy).Statement : jsonencode([s.Effect, sort(s.Action), sort(s.Resource)])
      ]) == toset([
      jsonencode(["Allow", ["s3:ListBucket"], ["arn:aws:s3:::temporal-dev-loki-123456789012-eu-west-1"]]),
      jsonencode(["Allow", ["s3:DeleteObject", "s3:GetObject", "s3:PutObject"], ["arn:aws:s3:::temporal-dev-loki-123456789012-eu-west-1/*"]]),
    ])
    error_message = "The task role may list Loki's bucket and get/put/delete its objects, and nothing else in S3."
  }
  assert {
    condition = alltrue([
      for s in jsondecode(aws_iam_role_policy.loki_task_exec[0].policy).Statement :
      alltrue([for a in s.Action : startswith(a, "ssmmessages:")])
    ])
    error_message = "The task role's only other policy is ECS Exec's ssmmessages channels."
  }

  # no static credentials anywhere (6.6)
  assert {
    condition = alltrue(flatten([
      for c in jsondecode(aws_ecs_task_definition.loki[0].container_definitions) : [
        for e in try(c.environment, []) : !contains(["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"], e.name)
      ]
    ]))
    error_message = "No container may carry AWS keys; Loki uses the task role."
  }
  assert {
    condition     = !can(yamldecode(aws_ssm_parameter.loki_config[local.loki_config_parameter_key].value).common.storage.s3.access_key_id) && !can(yamldecode(aws_ssm_parameter.loki_config[local.loki_config_parameter_key].value).common.storage.s3.secret_access_key)
    error_message = "The Loki config must not hold S3 keys."
  }

  # execution role reads only the config parameter (1.7)
  assert {
    condition = (
      contains(jsondecode(aws_iam_role_policy.loki_execution_config[0].policy).Statement[0].Resource, "arn:aws:ssm:eu-west-1:123456789012:parameter/temporal-dev/loki/config-${substr(sha256(file("../rendered/example/loki-config.yaml")), 0, 12)}.yaml") &&
      alltrue([for r in jsondecode(aws_iam_role_policy.loki_execution_config[0].policy).Statement[0].Resource : can(regex(":ssm:eu-west-1:123456789012:parameter/temporal-dev/(loki/config-[0-9a-f]{12}\\.yaml|alloy/loki/[0-9a-f]{12})$", r))]) &&
      jsondecode(aws_iam_role_policy.loki_execution_config[0].policy).Statement[0].Action == ["ssm:GetParameters"]
    )
    error_message = "The execution role may read Loki's config parameter (and its metrics sidecar's), nothing else."
  }
  assert {
    condition     = aws_iam_role_policy_attachment.loki_execution[0].policy_arn == "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
    error_message = "The execution role needs the standard ECS task execution policy for image pulls and logs."
  }
}
run "req_6_6_separate_roles_assumed_by_ecs_tasks_only" {
  command = plan

  override_resource {
    target          = aws_iam_role.loki_task
    override_during = plan
    values          = { arn = "arn:aws:iam::123456789012:role/temporal-dev-loki-task" }
  }
  override_resource {
    target          = aws_iam_role.loki_execution
    override_during = plan
    values          = { arn = "arn:aws:iam::123456789012:role/temporal-dev-loki-execution" }
  }

  assert {
    condition     = aws_iam_role.loki_task[0].name == "temporal-dev-loki-task" && aws_iam_role.loki_execution[0].name == "temporal-dev-loki-execution"
    error_message = "Loki needs its own task role and a separate execution role."
  }
  assert {
    condition = alltrue([
      for r in [aws_iam_role.loki_task[0], aws_iam_role.loki_execution[0]] :
      jsondecode(r.assume_role_policy).Statement[0].Principal.Service == "ecs-tasks.amazonaws.com" &&
      jsondecode(r.assume_role_policy).Statement[0].Condition.StringEquals["aws:SourceAccount"] == "123456789012"
    ])
    error_message = "Both roles may only be assumed by ECS tasks of this account."
  }
  assert {
    condition     = aws_ecs_task_definition.loki[0].task_role_arn == aws_iam_role.loki_task[0].arn && aws_ecs_task_definition.loki[0].execution_role_arn == aws_iam_role.loki_execution[0].arn
    error_message = "The task definition must use the task role for Loki and the execution role for the agent."
  }
}

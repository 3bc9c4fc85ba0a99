# Grafana's ECS service (plan task 6.3; req 4.1-4.4, 6.1-6.2): the pushed image, EC2 ARM64, private,
# Service Connect client, admin login from Secrets Manager, health check on /api/health.

# The example environment (envs/example.toml) plus an image build-grafana would push.
variables {
  grafana_image = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/temporal-dev-grafana:13.2.3-1a2b3c4"
}

mock_provider "aws" {
  override_during = plan

  # The VPC's interface endpoints (security-groups.tf requires them without routed egress).
  mock_data "aws_vpc_endpoint" {
    defaults = { vpc_endpoint_type = "Interface", state = "available", private_dns_enabled = true }
  }
}

# A known ARN, so the container definition's secret references can be compared with it.
override_resource {
  target          = aws_secretsmanager_secret.grafana_admin
  override_during = plan
  values          = { arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:temporal-dev/grafana/admin-AbCdEf" }
}

run "req_4_4_no_service_until_an_image_is_pushed" {
  command = plan

  variables {
    grafana_image = null
  }

  assert {
    condition     = length(aws_ecs_service.grafana) == 0 && length(aws_ecs_task_definition.grafana) == 0
    error_message = "Without grafana_image there must be no task definition and no service (nothing to run yet)."
  }
  assert {
    condition     = aws_ecr_repository.grafana.name == "temporal-dev-grafana" && aws_secretsmanager_secret.grafana_admin.name == "temporal-dev/grafana/admin"
    error_message = "The ECR repository build-grafana pushes to and the admin secret must exist before the first image."
  }
}

# req: 4.4, 6.1, 6.2
# Every check of the plan with this file's variables: one plan, many assertions.
run "grafana_service_with_the_file_variables" {
  command = plan

  # the service runs the pushed image (4.4)
  assert {
    condition     = jsondecode(aws_ecs_task_definition.grafana[0].container_definitions)[0].image == var.grafana_image
    error_message = "The Grafana container must run exactly the image build-grafana pushed (it carries the provisioning)."
  }
  assert {
    condition     = aws_ecs_service.grafana[0].desired_count == 1
    error_message = "One Grafana task."
  }

  # grafana runs on ec2 arm64 awsvpc
  assert {
    condition = (
      aws_ecs_task_definition.grafana[0].runtime_platform[0].cpu_architecture == "ARM64" &&
      aws_ecs_task_definition.grafana[0].requires_compatibilities == toset(["EC2"]) &&
      aws_ecs_task_definition.grafana[0].network_mode == "awsvpc"
    )
    error_message = "Grafana must run as an awsvpc task on the EC2 ARM64 (Graviton) capacity."
  }
  assert {
    condition     = [for s in aws_ecs_service.grafana[0].capacity_provider_strategy : s.capacity_provider] == ["temporal-dev-arm64"]
    error_message = "Grafana must be placed on the cluster's ARM64 capacity provider."
  }

  # private subnets no public ip (6.1, 6.2)
  assert {
    condition     = aws_ecs_service.grafana[0].network_configuration[0].subnets == toset(var.private_subnet_ids)
    error_message = "Grafana's task must be placed in the private subnets."
  }
  assert {
    condition     = aws_ecs_service.grafana[0].network_configuration[0].assign_public_ip == false
    error_message = "Grafana's task ENI must not get a public IP."
  }

  # amp url and region reach the provisioning
  assert {
    condition = (
      { for e in jsondecode(aws_ecs_task_definition.grafana[0].container_definitions)[0].environment : e.name => e.value } ==
      {
        AWS_REGION    = "eu-west-1"
        AMP_QUERY_URL = "https://aps-workspaces.eu-west-1.amazonaws.com/workspaces/ws-01234567-89ab-cdef-0123-456789abcdef"
      }
    )
    error_message = "The container must set exactly AWS_REGION and AMP_QUERY_URL, which provisioning/datasources/amp.yaml reads."
  }

  # admin login comes from secrets manager only
  assert {
    condition = (
      { for s in jsondecode(aws_ecs_task_definition.grafana[0].container_definitions)[0].secrets : s.name => s.valueFrom } ==
      {
        GF_SECURITY_ADMIN_USER     = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:temporal-dev/grafana/admin-AbCdEf:username::"
        GF_SECURITY_ADMIN_PASSWORD = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:temporal-dev/grafana/admin-AbCdEf:password::"
      }
    )
    error_message = "The admin user and password must be injected by ECS from the secret's JSON keys."
  }
  assert {
    condition     = alltrue([for e in jsondecode(aws_ecs_task_definition.grafana[0].container_definitions)[0].environment : !startswith(e.name, "GF_SECURITY")])
    error_message = "No Grafana credential may be a plain environment variable."
  }

  # health check on api health
  assert {
    condition     = strcontains(join(" ", jsondecode(aws_ecs_task_definition.grafana[0].container_definitions)[0].healthCheck.command), "http://127.0.0.1:3000/api/health")
    error_message = "The container health check must GET /api/health."
  }
}
run "req_4_4_an_unpinned_image_is_rejected" {
  command = plan

  variables {
    grafana_image = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/temporal-dev-grafana:latest" # unpinned on purpose: must be refused
  }

  expect_failures = [var.grafana_image]
}

run "req_4_2_service_connect_client_resolves_loki" {
  command = plan

  override_resource {
    target          = aws_ecs_service.loki
    override_during = plan
    values          = { id = "arn:aws:ecs:eu-west-1:123456789012:service/temporal-dev/temporal-dev-loki" }
  }

  # `loki` resolves only in tasks started after the endpoint: one apply by hand must order them.
  assert {
    condition     = terraform_data.grafana_loki_endpoint[0].input == "arn:aws:ecs:eu-west-1:123456789012:service/temporal-dev/temporal-dev-loki"
    error_message = "Grafana's service is ordered after aws_ecs_service.loki (through terraform_data.grafana_loki_endpoint)."
  }
  assert {
    condition     = output.grafana_force_new_deployment == false
    error_message = "Grafana's service must not set force_new_deployment (every in-place update would roll it); xtask rolls it once when Loki's service is created or replaced."
  }

  assert {
    condition = (
      aws_ecs_service.grafana[0].service_connect_configuration[0].enabled &&
      aws_ecs_service.grafana[0].service_connect_configuration[0].namespace == var.service_connect_namespace_arn
    )
    error_message = "Grafana must join the Service Connect namespace so its proxy resolves http://loki:3100."
  }
  assert {
    condition     = length(aws_ecs_service.grafana[0].service_connect_configuration[0].service) == 0
    error_message = "Grafana is a Service Connect client only; it offers no endpoint to other tasks."
  }
}

run "task_size_must_be_a_valid_ecs_combination" {
  command = plan

  variables {
    grafana_cpu    = 1024
    grafana_memory = 512
  }

  expect_failures = [aws_ecs_task_definition.grafana]
}

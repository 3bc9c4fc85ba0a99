# Loki's network (req 6): own security group, one rule per resource, no public IP.

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

# A known id for Loki's group, so rules and the service can be compared with it during plan.
override_resource {
  target          = aws_security_group.loki
  override_during = plan
  values          = { id = "sg-0b0b0b0b0b0b0b0b0", ingress = [], egress = [] }
}

# req: 6.1, 6.2, 6.4, 2.7, P7, 6.5, 6.3
# Every check of the plan with this file's variables: one plan, many assertions.
run "loki_network_with_the_file_variables" {
  command = plan

  # private subnets only (6.1)
  assert {
    condition     = aws_ecs_service.loki[0].network_configuration[0].subnets == toset(var.private_subnet_ids)
    error_message = "Loki's tasks must be placed in the private subnets."
  }

  # no public ip (6.2)
  assert {
    condition     = aws_ecs_service.loki[0].network_configuration[0].assign_public_ip == false
    error_message = "Loki's task ENI must not get a public IP."
  }

  # grafana seam is the loki security group (6.4)
  assert {
    condition     = output.loki_security_group_id == aws_security_group.loki[0].id && output.loki_endpoint == "http://loki:3100"
    error_message = "Grafana needs Loki's group id (for its own ingress rule) and the Service Connect URL."
  }
  assert {
    condition     = length(aws_security_group.loki[0].ingress) == 0 && length(aws_security_group.loki[0].egress) == 0
    error_message = "The group has no inline rules; every rule is a separate resource other files can add to."
  }

  # egress only to s3 and the vpc (6.5)
  # S3 is reachable only through the gateway endpoint's prefix list (2.7, P7): no other egress leaves
  # the VPC, and Loki addresses S3 at its own region's endpoint, the addresses that list routes.
  assert {
    condition = (
      aws_vpc_security_group_egress_rule.loki_to_s3[0].prefix_list_id == "pl-6da54004" &&
      aws_vpc_security_group_egress_rule.loki_to_s3[0].from_port == 443 &&
      aws_vpc_security_group_egress_rule.loki_to_vpc[0].cidr_ipv4 == "10.0.0.0/16" &&
      aws_vpc_security_group_egress_rule.loki_to_vpc[0].from_port == 443
    )
    error_message = "Loki may leave its group only for S3 (gateway endpoint prefix list) and the VPC, on 443."
  }
  assert {
    condition     = length(aws_vpc_security_group_egress_rule.loki_to_peers) == 0 && length(aws_security_group.loki[0].egress) == 0 && length(aws_vpc_security_group_egress_rule.loki_https_out) == 0
    error_message = "A single replica has no peer egress, and the group has no inline egress (such as the default allow-all)."
  }
  assert {
    condition = (
      keys(data.aws_vpc_endpoint.loki_required) == ["aps-workspaces", "ssmmessages"] &&
      data.aws_vpc_endpoint.loki_required["ssmmessages"].service_name == "com.amazonaws.eu-west-1.ssmmessages" &&
      data.aws_vpc_endpoint.loki_required["aps-workspaces"].vpc_id == var.vpc_id
    )
    error_message = "Without routed egress the plan requires the VPC's aps-workspaces and ssmmessages interface endpoints."
  }
  assert {
    condition = (
      !can(yamldecode(aws_ssm_parameter.loki_config[local.loki_config_parameter_key].value).common.storage.s3.endpoint) &&
      !can(yamldecode(aws_ssm_parameter.loki_config[local.loki_config_parameter_key].value).storage_config.aws) &&
      yamldecode(aws_ssm_parameter.loki_config[local.loki_config_parameter_key].value).common.storage.s3.region == "$${AWS_REGION}" &&
      one([
        for c in jsondecode(aws_ecs_task_definition.loki[0].container_definitions) : { for e in c.environment : e.name => e.value } if c.name == "loki"
      ]).AWS_REGION == var.aws_region
    )
    error_message = "Loki must reach S3 at the deployment region's own endpoint (no endpoint override, no storage_config.aws): a gateway endpoint serves only its region, and only the prefix list's addresses are allowed out."
  }

  # task carries only the loki group (6.3, 6.5)
  assert {
    condition = (
      aws_ecs_service.loki[0].network_configuration[0].security_groups == toset([aws_security_group.loki[0].id]) &&
      !contains(aws_ecs_service.loki[0].network_configuration[0].security_groups, var.instance_security_group_id)
    )
    error_message = "Loki's task carries only its own group (rules add up: the instances' wide egress would undo Loki's)."
  }
  assert {
    condition     = aws_ecs_task_definition.loki[0].network_mode == "awsvpc"
    error_message = "Only awsvpc gives the task its own ENI and security group."
  }
}
run "req_6_3_ingress_only_from_collectors_on_3100" {
  command = plan

  variables {
    loki_client_security_group_ids = ["sg-0aaaaaaaaaaaaaaaa"]
  }

  assert {
    condition = (
      aws_vpc_security_group_ingress_rule.loki_from_instances[0].referenced_security_group_id == "sg-0123456789abcdef0" &&
      aws_vpc_security_group_ingress_rule.loki_from_instances[0].from_port == 3100 &&
      aws_vpc_security_group_ingress_rule.loki_from_instances[0].to_port == 3100 &&
      aws_vpc_security_group_ingress_rule.loki_from_instances[0].ip_protocol == "tcp"
    )
    error_message = "The instances' group may reach Loki on TCP 3100 only."
  }
  assert {
    condition = (
      aws_vpc_security_group_ingress_rule.loki_from_clients["sg-0aaaaaaaaaaaaaaaa"].from_port == 3100 &&
      aws_vpc_security_group_ingress_rule.loki_from_clients["sg-0aaaaaaaaaaaaaaaa"].to_port == 3100
    )
    error_message = "Each collector group in loki_client_security_group_ids gets its own rule on 3100."
  }
  assert {
    condition     = length(aws_vpc_security_group_ingress_rule.loki_from_peers) == 0
    error_message = "A single replica opens no gossip or gRPC ports."
  }
}

# Default: no routed egress, so the plan requires the interface endpoints the sidecar (9.2) and
# ECS Exec use, and stops on one it cannot use rather than let Alloy fail silently.
# req: 6.5, 9.2
run "req_6_5_without_egress_an_unusable_endpoint_stops_the_plan" {
  command = plan

  override_data {
    target          = data.aws_vpc_endpoint.loki_required["aps-workspaces"]
    override_during = plan
    values          = { vpc_endpoint_type = "Interface", state = "available", private_dns_enabled = false }
  }

  expect_failures = [data.aws_vpc_endpoint.loki_required["aps-workspaces"]]
}

# Opt-in routed egress (a VPC without those endpoints): one 443 rule per CIDR, no lookups.
# req: 6.5
run "req_6_5_routed_egress_is_explicit_and_needs_no_endpoints" {
  command = plan

  variables {
    loki_https_egress_cidrs = ["0.0.0.0/0"]
  }

  assert {
    condition     = length(data.aws_vpc_endpoint.loki_required) == 0
    error_message = "With routed HTTPS egress the plan needs no interface endpoints."
  }
  assert {
    condition = (
      aws_vpc_security_group_egress_rule.loki_https_out["0.0.0.0/0"].from_port == 443 &&
      aws_vpc_security_group_egress_rule.loki_https_out["0.0.0.0/0"].to_port == 443 &&
      aws_vpc_security_group_egress_rule.loki_https_out["0.0.0.0/0"].ip_protocol == "tcp"
    )
    error_message = "loki_https_egress_cidrs opens exactly HTTPS to each CIDR."
  }
}

run "req_7_3_ha_opens_gossip_and_grpc_between_replicas_only" {
  command = plan

  variables {
    loki_count          = 3
    private_subnet_ids  = ["subnet-0123456789abcdef0", "subnet-0fedcba9876543210", "subnet-0a1b2c3d4e5f60718"]
    loki_retention_days = 30
    loki_cpu            = 1024
    loki_memory         = 2048
    rendered_config_dir = "../rendered/ha-example"
  }

  assert {
    condition = toset([for r in aws_vpc_security_group_ingress_rule.loki_from_peers : "${r.ip_protocol}/${r.from_port}"]) == toset(["tcp/7946", "udp/7946", "tcp/9095"]) && alltrue([
      for r in aws_vpc_security_group_ingress_rule.loki_from_peers : r.referenced_security_group_id == aws_security_group.loki[0].id
    ])
    error_message = "HA opens memberlist (TCP+UDP 7946) and gRPC (9095) from Loki's own group only."
  }
  assert {
    condition     = toset([for r in aws_vpc_security_group_egress_rule.loki_to_peers : "${r.ip_protocol}/${r.from_port}"]) == toset(["tcp/7946", "udp/7946", "tcp/9095"])
    error_message = "HA allows the same ports out to Loki's own group."
  }
}

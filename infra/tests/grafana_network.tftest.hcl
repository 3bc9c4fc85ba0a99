# Grafana's network (req 6.4): Grafana may reach Loki on 3100 and Loki admits it. grafana.tf adds no
# ingress to Grafana's group: the UI is reached through ECS Exec port forwarding.

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

override_resource {
  target          = aws_security_group.loki
  override_during = plan
  values          = { id = "sg-0b0b0b0b0b0b0b0b0", ingress = [], egress = [] }
}

override_resource {
  target          = aws_security_group.grafana
  override_during = plan
  values          = { id = "sg-0c0c0c0c0c0c0c0c0", ingress = [], egress = [] }
}

# req: 6.4
# Every check of the plan with this file's variables: one plan, many assertions.
run "grafana_network_with_the_file_variables" {
  command = plan

  # loki admits grafana on 3100 (6.4)
  assert {
    condition = (
      aws_vpc_security_group_ingress_rule.loki_from_grafana[0].security_group_id == "sg-0b0b0b0b0b0b0b0b0" &&
      aws_vpc_security_group_ingress_rule.loki_from_grafana[0].referenced_security_group_id == "sg-0c0c0c0c0c0c0c0c0" &&
      aws_vpc_security_group_ingress_rule.loki_from_grafana[0].ip_protocol == "tcp" &&
      aws_vpc_security_group_ingress_rule.loki_from_grafana[0].from_port == 3100 &&
      aws_vpc_security_group_ingress_rule.loki_from_grafana[0].to_port == 3100
    )
    error_message = "Loki's group must admit Grafana's group on TCP 3100, and only that port."
  }

  # grafana may reach loki on 3100 (6.4)
  assert {
    condition = (
      aws_vpc_security_group_egress_rule.grafana_to_loki[0].security_group_id == "sg-0c0c0c0c0c0c0c0c0" &&
      aws_vpc_security_group_egress_rule.grafana_to_loki[0].referenced_security_group_id == "sg-0b0b0b0b0b0b0b0b0" &&
      aws_vpc_security_group_egress_rule.grafana_to_loki[0].from_port == 3100 &&
      aws_vpc_security_group_egress_rule.grafana_to_loki[0].to_port == 3100
    )
    error_message = "Grafana's group must allow egress to Loki's group on TCP 3100 (Service Connect's proxy connects to Loki's ENI)."
  }
  assert {
    condition     = aws_ecs_service.grafana[0].network_configuration[0].security_groups == toset(["sg-0c0c0c0c0c0c0c0c0"])
    error_message = "The Grafana task must carry Grafana's own group only."
  }

  # grafana other egress is https only
  assert {
    condition     = aws_vpc_security_group_egress_rule.grafana_to_https.from_port == 443 && aws_vpc_security_group_egress_rule.grafana_to_https.to_port == 443
    error_message = "Grafana's only other egress is HTTPS (AMP query, ECS Exec)."
  }
}
run "without_loki_there_are_no_loki_rules" {
  command = plan

  variables {
    loki_enabled = false
  }

  assert {
    condition     = length(aws_vpc_security_group_ingress_rule.loki_from_grafana) == 0 && length(aws_vpc_security_group_egress_rule.grafana_to_loki) == 0
    error_message = "With Loki disabled there is no Loki group to add rules to."
  }
}

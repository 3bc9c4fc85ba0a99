# Grafana's network (req 6.4): Grafana may reach Loki on 3100 and Loki admits it. grafana.tf adds no
# ingress to Grafana's group: the UI is reached through ECS Exec port forwarding.

variables {
  aws_region                    = "eu-west-1"
  aws_account_id                = "123456789012"
  project_name                  = "temporal-dev"
  environment                   = "example"
  rendered_config_dir           = "../rendered/example"
  vpc_id                        = "vpc-0123456789abcdef0"
  vpc_cidr                      = "10.0.0.0/16"
  private_subnet_ids            = ["subnet-0123456789abcdef0", "subnet-0fedcba9876543210"]
  ecs_cluster_name              = "temporal-dev"
  capacity_provider_name        = "temporal-dev-arm64"
  instance_security_group_id    = "sg-0123456789abcdef0"
  service_connect_namespace_arn = "arn:aws:servicediscovery:eu-west-1:123456789012:namespace/ns-abcdefghijklmnop"
  s3_prefix_list_id             = "pl-6da54004"
  amp_workspace_id              = "ws-01234567-89ab-cdef-0123-456789abcdef"
  loki_image                    = "grafana/loki:3.7.6"
  alloy_image                   = "grafana/alloy:v1.21.2"
  temporal_image                = "temporalio/server:1.28.1"
  temporal_db_host              = "temporal-db.example.internal"

  temporal_db_password_secret_arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:temporal-db-AbCdEf"

  grafana_image = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/temporal-dev-grafana:13.2.3-1a2b3c4"
}

mock_provider "aws" {
  override_during = plan
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

run "req_6_4_loki_admits_grafana_on_3100" {
  command = plan

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
}

run "req_6_4_grafana_may_reach_loki_on_3100" {
  command = plan

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
}

run "grafana_other_egress_is_https_only" {
  command = plan

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

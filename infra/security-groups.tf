# Loki's own security group (req 6.1-6.5). Rules are separate resources, one per rule, so other
# files (grafana.tf, the Temporal services) add their ingress on local.loki_security_group_id.

locals {
  # Replica-to-replica traffic, HA only: memberlist gossip (TCP and UDP) and gRPC.
  loki_peer_ports = local.loki_enabled && local.loki_ha ? {
    memberlist-tcp = { ip_protocol = "tcp", port = local.loki_memberlist_port }
    memberlist-udp = { ip_protocol = "udp", port = local.loki_memberlist_port }
    grpc           = { ip_protocol = "tcp", port = local.loki_grpc_port }
  } : {}
}

resource "aws_security_group" "loki" {
  count = local.loki_enabled ? 1 : 0

  name_prefix = "${local.loki_name}-"
  description = "Loki: HTTP 3100 from log collectors and Grafana; egress to S3 and the VPC only"
  vpc_id      = var.vpc_id

  tags = {
    Name = local.loki_name
  }

  lifecycle {
    create_before_destroy = true
  }
}

# Collectors running with the instances' network (host/bridge mode) and the instances themselves (req 6.3).
resource "aws_vpc_security_group_ingress_rule" "loki_from_instances" {
  count = local.loki_enabled ? 1 : 0

  security_group_id            = aws_security_group.loki[0].id
  description                  = "Loki HTTP from the ECS instances"
  ip_protocol                  = "tcp"
  from_port                    = local.loki_http_port
  to_port                      = local.loki_http_port
  referenced_security_group_id = var.instance_security_group_id
}

# Collectors in awsvpc tasks with their own groups (req 6.3); Grafana adds its rule in grafana.tf (req 6.4).
resource "aws_vpc_security_group_ingress_rule" "loki_from_clients" {
  for_each = local.loki_enabled ? toset(var.loki_client_security_group_ids) : toset([])

  security_group_id            = aws_security_group.loki[0].id
  description                  = "Loki HTTP from a log collector group"
  ip_protocol                  = "tcp"
  from_port                    = local.loki_http_port
  to_port                      = local.loki_http_port
  referenced_security_group_id = each.value
}

resource "aws_vpc_security_group_ingress_rule" "loki_from_peers" {
  for_each = local.loki_peer_ports

  security_group_id            = aws_security_group.loki[0].id
  description                  = "Loki ${each.key} between replicas"
  ip_protocol                  = each.value.ip_protocol
  from_port                    = each.value.port
  to_port                      = each.value.port
  referenced_security_group_id = aws_security_group.loki[0].id
}

resource "aws_vpc_security_group_egress_rule" "loki_to_peers" {
  for_each = local.loki_peer_ports

  security_group_id            = aws_security_group.loki[0].id
  description                  = "Loki ${each.key} between replicas"
  ip_protocol                  = each.value.ip_protocol
  from_port                    = each.value.port
  to_port                      = each.value.port
  referenced_security_group_id = aws_security_group.loki[0].id
}

# S3 only through the gateway endpoint (req 2.7, 6.5): no route to the internet is needed.
resource "aws_vpc_security_group_egress_rule" "loki_to_s3" {
  count = local.loki_enabled ? 1 : 0

  security_group_id = aws_security_group.loki[0].id
  description       = "HTTPS to S3 through the gateway endpoint"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  prefix_list_id    = var.s3_prefix_list_id
}

# VPC interface endpoints: Loki's Alloy sidecar writes to AMP (aps-workspaces, req 9.2) and ECS
# Exec needs ssmmessages (checkpoint 2). Loki reaches them inside the VPC on 443.
resource "aws_vpc_security_group_egress_rule" "loki_to_vpc" {
  count = local.loki_enabled ? 1 : 0

  security_group_id = aws_security_group.loki[0].id
  description       = "HTTPS to VPC interface endpoints"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = var.vpc_cidr
}

# Without routed HTTPS egress (loki_https_egress_cidrs, the default: req 6.5) those endpoints are
# the only way out, so the plan looks them up and stops if one is missing ("no matching EC2 VPC
# Endpoint found" names this block) or unusable: better than an Alloy that fails silently.
locals {
  loki_required_endpoints = local.loki_enabled && length(var.loki_https_egress_cidrs) == 0 ? toset(["aps-workspaces", "ssmmessages"]) : toset([])
}

data "aws_vpc_endpoint" "loki_required" {
  for_each = local.loki_required_endpoints

  vpc_id       = var.vpc_id
  service_name = "com.amazonaws.${var.aws_region}.${each.key}"

  lifecycle {
    postcondition {
      condition     = self.vpc_endpoint_type == "Interface" && self.state == "available" && self.private_dns_enabled == true
      error_message = "The ${each.key} endpoint of ${var.vpc_id} must be an available Interface endpoint with private DNS (it is ${self.vpc_endpoint_type}, ${self.state}, private DNS ${self.private_dns_enabled}): Loki's task has no other route to ${each.key} (req 6.5). Fix the endpoint, or set loki_https_egress_cidrs knowingly."
    }
  }
}

resource "aws_vpc_security_group_egress_rule" "loki_https_out" {
  for_each = local.loki_enabled ? toset(var.loki_https_egress_cidrs) : toset([])

  security_group_id = aws_security_group.loki[0].id
  description       = "HTTPS to AWS APIs without a VPC endpoint (opt-in)"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = each.value
}

# Temporal matching: task queues; reached by the other roles over the membership ring.
# Shared settings, the security group and the service list live in temporal-frontend.tf.

module "temporal_matching" {
  source = "./modules/temporal-service"

  name          = "temporal-matching"
  service       = "matching"
  image         = var.temporal_image
  cpu           = var.temporal_service_sizes["matching"].cpu
  memory        = var.temporal_service_sizes["matching"].memory
  desired_count = var.temporal_service_sizes["matching"].desired_count

  ports       = { grpc = 7235, membership = 6935 }
  environment = merge(local.temporal_server_environment, { SERVICES = "matching" })
  secrets     = local.temporal_server_secrets

  platform        = local.temporal_platform
  loki_service_id = local.loki_enabled ? aws_ecs_service.loki[0].id : null
  sidecar         = local.service_sidecars["matching"]
}

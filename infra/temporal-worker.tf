# Temporal worker (internal system workflows); a client of the frontend through Service Connect.
# Shared settings, the security group and the service list live in temporal-frontend.tf.

module "temporal_worker" {
  source = "./modules/temporal-service"

  name          = "temporal-worker"
  service       = "worker"
  image         = var.temporal_image
  cpu           = var.temporal_service_sizes["worker"].cpu
  memory        = var.temporal_service_sizes["worker"].memory
  desired_count = var.temporal_service_sizes["worker"].desired_count

  ports       = { grpc = 7239, membership = 6939 }
  environment = merge(local.temporal_server_environment, { SERVICES = "worker" })
  secrets     = local.temporal_server_secrets

  platform        = local.temporal_platform
  loki_service_id = local.loki_enabled ? aws_ecs_service.loki[0].id : null
  sidecar         = local.service_sidecars["worker"]
}

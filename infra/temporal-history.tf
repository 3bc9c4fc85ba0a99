# Temporal history: owns workflow state and the history shards; reached by the other roles over the membership ring.
# Shared settings, the security group and the service list live in temporal-frontend.tf.

module "temporal_history" {
  source = "./modules/temporal-service"

  name          = "temporal-history"
  service       = "history"
  image         = var.temporal_image
  cpu           = var.temporal_service_sizes["history"].cpu
  memory        = var.temporal_service_sizes["history"].memory
  desired_count = var.temporal_service_sizes["history"].desired_count

  ports       = { grpc = 7234, membership = 6934 }
  environment = merge(local.temporal_server_environment, { SERVICES = "history" })
  secrets     = local.temporal_server_secrets

  platform        = local.temporal_platform
  loki_service_id = local.loki_enabled ? aws_ecs_service.loki[0].id : null
  sidecar         = local.service_sidecars["history"]
}

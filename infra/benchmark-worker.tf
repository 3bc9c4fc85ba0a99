# Optional benchmark worker (temporalio/benchmark-workers): an SDK worker that runs the benchmark
# workflows against temporal-frontend:7233. Off unless benchmark_worker_enabled; its log group and
# task definition exist either way, so switching it off removes nothing in CloudWatch (req 8.5).

module "benchmark_worker" {
  source = "./modules/temporal-service"

  name          = "benchmark-worker"
  service       = "benchmark-worker"
  image         = var.benchmark_worker_image
  enabled       = var.benchmark_worker_enabled
  cpu           = var.temporal_service_sizes["benchmark-worker"].cpu
  memory        = var.temporal_service_sizes["benchmark-worker"].memory
  desired_count = var.temporal_service_sizes["benchmark-worker"].desired_count

  environment = {
    TEMPORAL_GRPC_ENDPOINT = local.temporal_frontend_address
    TEMPORAL_NAMESPACE     = "default"
    TEMPORAL_TASK_QUEUE    = "benchmark"
    PROMETHEUS_ENDPOINT    = "0.0.0.0:9090"
  }

  platform        = local.temporal_platform
  loki_service_id = local.loki_enabled ? aws_ecs_service.loki[0].id : null
  sidecar         = local.service_sidecars["benchmark-worker"]
}

# Where the tasks' images come from. Loki, Alloy and Grafana are pulled from this account's ECR
# (variables.tf refuses other hosts): Docker Hub rate-limits anonymous pulls, and a task whose image
# cannot be pulled never starts. For Alloy that is every Temporal task: each waits for its sidecar
# to START. Loki and Alloy reach ECR through a pull-through cache rule for Docker Hub or a mirror
# the env names (README, "Images"); Grafana through its own repository (grafana.tf).

locals {
  # <account>.dkr.ecr.<region>.amazonaws.com[.cn]/<repository>[:tag][@digest] => the repository's
  # ARN, for each image a task of this stack pulls from an ECR (the Temporal service module and
  # Loki's execution role read it).
  ecr_image_pattern = "^([0-9]{12})\\.dkr\\.ecr\\.([a-z0-9-]+)\\.amazonaws\\.com(?:\\.cn)?/([^:@]+)"
  ecr_repository_arns = {
    for image in distinct(concat(
      [var.loki_init_image, var.loki_image, var.alloy_image, var.temporal_image, var.benchmark_worker_image],
      # >>> adot: `cargo xtask cleanup-adot --prune-code` deletes through the closing marker
      [var.adot_image],
      # <<< adot
    )) :
    image => format("arn:%s:ecr:%s:%s:repository/%s", local.partition, regex(local.ecr_image_pattern, image)[1], regex(local.ecr_image_pattern, image)[0], regex(local.ecr_image_pattern, image)[2])
    if can(regex(local.ecr_image_pattern, image))
  }
  loki_ecr_repository_arns = distinct([
    for image in [var.loki_init_image, var.loki_image, var.alloy_image] : local.ecr_repository_arns[image] if contains(keys(local.ecr_repository_arns), image)
  ])
}

# A pull-through cache creates an image's repository and imports the image on its first pull, with
# the permissions of the role that pulls (the execution role); a mirror's repositories exist
# already and this changes nothing for them.
resource "aws_iam_role_policy" "loki_execution_pull_through" {
  count = local.loki_enabled ? 1 : 0

  name = "ecr-pull-through"
  role = aws_iam_role.loki_execution[0].id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid      = "FirstPullThroughCache"
        Effect   = "Allow"
        Action   = ["ecr:BatchImportUpstreamImage", "ecr:CreateRepository"]
        Resource = local.loki_ecr_repository_arns
      },
    ]
  })
}

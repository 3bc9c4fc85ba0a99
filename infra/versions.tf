terraform {
  # 1.7 brings mock_provider for the plan-only tests in tests/.
  required_version = ">= 1.7.0"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # The offline schema the tests validate against is exactly this release.
      version = "= 6.25.0"
    }
  }

  # Partial configuration: bucket, key and region come from
  # `terraform init -backend-config=...` (envs/<env>.toml [state]).
  backend "s3" {}
}

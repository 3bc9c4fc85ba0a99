# Harness fixture: assertions that hold on a mocked plan.
mock_provider "aws" {}

variables {
  retention_days = 14
}

run "lifecycle_expires_chunks_after_retention" {
  command = plan

  assert {
    condition     = aws_s3_bucket_lifecycle_configuration.chunks.rule[0].expiration[0].days == 16
    error_message = "chunk expiry must be retention + 2 days"
  }

  assert {
    condition     = aws_s3_bucket_lifecycle_configuration.chunks.rule[0].filter[0].prefix == "fake/"
    error_message = "expiry must be scoped to the chunk prefix"
  }
}

run "log_group_retention_follows_the_variable" {
  command = plan

  assert {
    condition     = aws_cloudwatch_log_group.app.retention_in_days == 14
    error_message = "log group retention must follow var.retention_days"
  }
}

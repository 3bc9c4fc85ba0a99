# Harness fixture: an assertion that is false, so `terraform test` must fail.
mock_provider "aws" {}

run "wrong_expectation_about_expiry" {
  command = plan

  assert {
    condition     = aws_s3_bucket_lifecycle_configuration.chunks.rule[0].expiration[0].days == 7
    error_message = "deliberately false: expiry is retention + 2 = 9"
  }
}

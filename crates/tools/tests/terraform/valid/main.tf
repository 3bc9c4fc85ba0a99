# Harness fixture: a small configuration the real hashicorp/aws schema accepts. The tests also
# run tests-pass/ and tests-fail/ against it, and misspell one attribute for the typo case.
terraform {
  required_version = ">= 1.7"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "= 6.25.0"
    }
  }
}

variable "retention_days" {
  type        = number
  description = "Days the log group keeps events."
  default     = 7
}

resource "aws_cloudwatch_log_group" "app" {
  name              = "/harness/app"
  retention_in_days = var.retention_days
}

resource "aws_s3_bucket" "chunks" {
  bucket = "harness-chunks"
}

resource "aws_s3_bucket_lifecycle_configuration" "chunks" {
  bucket = aws_s3_bucket.chunks.id
  rule {
    id     = "expire-chunks"
    status = "Enabled"
    filter {
      prefix = "fake/"
    }
    expiration {
      days = var.retention_days + 2
    }
  }
}

output "log_group_retention" {
  description = "Retention of the log group, in days."
  value       = aws_cloudwatch_log_group.app.retention_in_days
}

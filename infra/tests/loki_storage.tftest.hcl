# Loki storage (req 2, 5.4): the S3 bucket and what protects it.

# The example environment (envs/example.toml), so every run plans what `dev` would.
variables {
  loki_enabled        = true
  loki_cpu            = 1024
  loki_memory         = 2048
  loki_count          = 1
  loki_retention_days = 7
}

# Plan-only: computed attributes get mock values during plan, nothing talks to AWS.
mock_provider "aws" {
  override_during = plan

  # The VPC's interface endpoints (security-groups.tf requires them without routed egress).
  mock_data "aws_vpc_endpoint" {
    defaults = { vpc_endpoint_type = "Interface", state = "available", private_dns_enabled = true }
  }
}

# req: 2.1, 2.3, 2.4, 2.5
# Every check of the plan with this file's variables: one plan, many assertions.
run "loki_storage_with_the_file_variables" {
  command = plan

  # chunks and index in own bucket (2.1)
  assert {
    condition     = aws_s3_bucket.loki[0].bucket == "temporal-dev-loki-123456789012-eu-west-1"
    error_message = "Loki's bucket must be named <project>-loki-<account>-<region>, got ${aws_s3_bucket.loki[0].bucket}."
  }
  assert {
    condition     = output.loki_bucket_name == aws_s3_bucket.loki[0].bucket && output.loki_bucket_arn == "arn:aws:s3:::temporal-dev-loki-123456789012-eu-west-1"
    error_message = "The bucket name and ARN outputs must name Loki's bucket."
  }

  # lifecycle scoped to chunks (2.3)
  # Only the multipart-abort rule may leave fake/; it is checked not to expire anything below.
  assert {
    condition = alltrue([
      for r in aws_s3_bucket_lifecycle_configuration.loki[0].rule :
      r.id == "abort-incomplete-multipart-uploads" ? true : (length(r.filter) == 1 && r.filter[0].prefix == "fake/")
    ])
    error_message = "Every expiring rule must be scoped to the chunk prefix fake/; expiring index/, delete requests or the cluster seed corrupts Loki's store."
  }
  assert {
    condition = one([
      for r in aws_s3_bucket_lifecycle_configuration.loki[0].rule : r.expiration[0].days
      if r.id == "expire-chunks-after-retention" && r.status == "Enabled"
    ]) == 9
    error_message = "The chunk expiration must be retention + 2 days (7 + 2 = 9)."
  }

  # abort rule never expires objects (2.3)
  assert {
    condition = alltrue([
      for r in aws_s3_bucket_lifecycle_configuration.loki[0].rule :
      length(r.expiration) == 0 && length(r.noncurrent_version_expiration) == 0 && length(r.transition) == 0 && length(r.abort_incomplete_multipart_upload) == 1
      if r.id == "abort-incomplete-multipart-uploads"
    ])
    error_message = "The rule outside fake/ may only abort incomplete multipart uploads."
  }
  assert {
    condition     = length(aws_s3_bucket_lifecycle_configuration.loki[0].rule) == 2
    error_message = "Loki's bucket has exactly two lifecycle rules: chunk expiry and multipart abort."
  }

  # server side encryption (2.4)
  assert {
    condition     = one(one(aws_s3_bucket_server_side_encryption_configuration.loki[0].rule).apply_server_side_encryption_by_default).sse_algorithm == "AES256"
    error_message = "Loki's bucket must be encrypted at rest with SSE-S3."
  }

  # versioning disabled (2.5)
  assert {
    condition     = aws_s3_bucket_versioning.loki[0].versioning_configuration[0].status == "Disabled"
    error_message = "Versioning must stay disabled (append-only objects, req 2.5)."
  }

  # bucket public access blocked and tls only
  assert {
    condition = (
      aws_s3_bucket_public_access_block.loki[0].block_public_acls &&
      aws_s3_bucket_public_access_block.loki[0].block_public_policy &&
      aws_s3_bucket_public_access_block.loki[0].ignore_public_acls &&
      aws_s3_bucket_public_access_block.loki[0].restrict_public_buckets
    )
    error_message = "All four public access blocks must be on."
  }
  assert {
    condition = anytrue([
      for s in jsondecode(aws_s3_bucket_policy.loki[0].policy).Statement :
      s.Effect == "Deny" && s.Action == "s3:*" && s.Condition.Bool["aws:SecureTransport"] == "false" &&
      toset(s.Resource) == toset(["arn:aws:s3:::temporal-dev-loki-123456789012-eu-west-1", "arn:aws:s3:::temporal-dev-loki-123456789012-eu-west-1/*"])
    ])
    error_message = "The bucket policy must deny every request that is not over TLS, on the bucket and its objects."
  }
  assert {
    condition     = aws_s3_bucket_ownership_controls.loki[0].rule[0].object_ownership == "BucketOwnerEnforced"
    error_message = "ACLs must be disabled (BucketOwnerEnforced)."
  }
}
run "req_5_4_lifecycle_follows_retention" {
  command = plan

  variables {
    loki_retention_days = 30
    loki_count          = 3
    private_subnet_ids  = ["subnet-0123456789abcdef0", "subnet-0fedcba9876543210", "subnet-0a1b2c3d4e5f60718"]
    loki_cpu            = 1024
    loki_memory         = 2048
    rendered_config_dir = "../rendered/ha-example"
  }

  assert {
    condition = one([
      for r in aws_s3_bucket_lifecycle_configuration.loki[0].rule : r.expiration[0].days if r.id == "expire-chunks-after-retention"
    ]) == 32
    error_message = "With 30 days of retention the chunk expiration must be 32 days."
  }
}

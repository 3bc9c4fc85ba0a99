# Loki's object store: chunks under fake/, TSDB index under index/ (req 2).

resource "aws_s3_bucket" "loki" {
  #checkov:skip=CKV_AWS_21:Req 2.5: versioning disabled, Loki's objects are append-only and the compactor deletes them on purpose.
  #checkov:skip=CKV_AWS_144:No cross-region replication: logs are regional, retention is days (req 5, 10).
  #checkov:skip=CKV_AWS_145:Req 2.4 allows SSE-S3; no customer-managed KMS key to administer or pay for.
  #checkov:skip=CKV_AWS_18:No server access logging: Loki is the only writer and CloudTrail covers the API; a log bucket would double storage cost (req 10).
  #checkov:skip=CKV2_AWS_62:No event notifications: nothing consumes Loki's object writes.
  count = local.loki_enabled ? 1 : 0

  bucket = local.loki_bucket_name

  # Logs must outlive a mistaken `terraform destroy`; remove this on purpose to delete the store.
  lifecycle {
    prevent_destroy = true
  }
}

resource "aws_s3_bucket_ownership_controls" "loki" {
  count = local.loki_enabled ? 1 : 0

  bucket = aws_s3_bucket.loki[0].id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "loki" {
  count = local.loki_enabled ? 1 : 0

  bucket                  = aws_s3_bucket.loki[0].id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_server_side_encryption_configuration" "loki" {
  count = local.loki_enabled ? 1 : 0

  bucket = aws_s3_bucket.loki[0].id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_versioning" "loki" {
  count = local.loki_enabled ? 1 : 0

  bucket = aws_s3_bucket.loki[0].id

  versioning_configuration {
    # Req 2.5; "Disabled" is only valid for a bucket that was never versioned, which this one is.
    status = "Disabled"
  }
}

resource "aws_s3_bucket_policy" "loki" {
  count = local.loki_enabled ? 1 : 0

  bucket = aws_s3_bucket.loki[0].id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "DenyInsecureTransport"
        Effect    = "Deny"
        Principal = "*"
        Action    = "s3:*"
        Resource  = [local.loki_bucket_arn, "${local.loki_bucket_arn}/*"]
        Condition = { Bool = { "aws:SecureTransport" = "false" } }
      },
    ]
  })

  # The public access block must exist first or a policy update can race it.
  depends_on = [aws_s3_bucket_public_access_block.loki]
}

resource "aws_s3_bucket_lifecycle_configuration" "loki" {
  count = local.loki_enabled ? 1 : 0

  bucket = aws_s3_bucket.loki[0].id

  # Backup to compactor retention (req 2.3, 5.4). Only chunks: expiring index/, delete requests or
  # the cluster seed corrupts the store. +2 days covers retention_delete_delay and S3 rounding
  # expiry up to midnight UTC; it also removes chunks orphaned by a task replaced mid-sweep.
  rule {
    id     = "expire-chunks-after-retention"
    status = "Enabled"

    filter {
      prefix = local.loki_chunk_prefix
    }

    expiration {
      days = var.loki_retention_days + 2
    }
  }

  # Touches only unfinished multipart uploads, never a stored object, so it may span the bucket.
  rule {
    id     = "abort-incomplete-multipart-uploads"
    status = "Enabled"

    filter {}

    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
}

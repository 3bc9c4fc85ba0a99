//! AWS API calls of a live environment, signed with the AWS CLI's own credentials: each is
//! logged with its purpose like every command, and the credentials are exported again before
//! short-lived ones (SSO, roles) can expire during a long phase.

use std::cell::RefCell;
use std::time::{Duration, Instant};

use anyhow::Context;
use probes::amp::Credentials;
use probes::aws::{AwsApi, Service};
use probes::retry::Retry;
use serde_json::Value;
use tools::aws::{Aws, Identity};

/// Exported credentials are used this long, then exported again (STS sessions last ≥ 15 min).
const REEXPORT_AFTER: Duration = Duration::from_secs(10 * 60);

pub struct Api {
    aws: Aws,
    /// The SDKs' standard retries; one quota and clock correction for every call of a run.
    retry: Retry,
    current: RefCell<(AwsApi, Option<Instant>)>,
}

impl Api {
    /// The credentials the AWS CLI would use: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY when set
    /// (they come first for the CLI too), else whatever `aws configure export-credentials`
    /// resolves (profiles, SSO, roles, instance metadata).
    pub fn connect(aws: &Aws) -> anyhow::Result<Api> {
        let retry = Retry::from_env(|name| std::env::var(name).ok()).map_err(crate::project::usage)?;
        let (credentials, exported) = credentials(aws)?;
        let api = AwsApi::new(&aws.region, credentials, probes::Http::default()).with_retry(retry.clone());
        Ok(Api { aws: aws.clone(), retry, current: RefCell::new((api, exported)) })
    }

    fn api(&self) -> anyhow::Result<AwsApi> {
        let stale = matches!(self.current.borrow().1, Some(at) if at.elapsed() >= REEXPORT_AFTER);
        if stale {
            let (credentials, exported) = credentials(&self.aws)?;
            let api =
                AwsApi::new(&self.aws.region, credentials, probes::Http::default()).with_retry(self.retry.clone());
            *self.current.borrow_mut() = (api, exported);
        }
        Ok(self.current.borrow().0.clone())
    }

    /// The region every call is signed for and sent to.
    pub fn region(&self) -> &str {
        &self.aws.region
    }

    /// The base URL this client calls `service` at (the endpoint overrides applied): what a
    /// Session Manager plugin connecting to a session opened here must be given.
    pub fn endpoint(&self, service: &Service) -> String {
        self.current.borrow().0.endpoint_url(service)
    }

    pub fn credentials(&self) -> anyhow::Result<Credentials> {
        Ok(self.api()?.credentials().clone())
    }

    /// Who the credentials belong to (STS GetCallerIdentity).
    pub fn identity(&self) -> anyhow::Result<Identity> {
        log("check the AWS credentials", "STS GetCallerIdentity");
        let found = self.api()?.caller_identity()?;
        Ok(Identity { account: found.account, arn: found.arn })
    }

    /// One JSON-protocol action; the error names the purpose.
    pub fn json(
        &self,
        purpose: impl Into<String>,
        service: &Service,
        action: &str,
        input: Value,
    ) -> anyhow::Result<Value> {
        let purpose = purpose.into();
        log(&purpose, &format!("{} {action}", service.title));
        self.api()?.json(service, action, &input).with_context(|| format!("could not {purpose}"))
    }

    /// Like [`Api::json`], unlogged: for polls, whose progress is printed instead.
    pub fn json_quietly(&self, purpose: &str, service: &Service, action: &str, input: Value) -> anyhow::Result<Value> {
        self.api()?.json(service, action, &input).with_context(|| format!("could not {purpose}"))
    }

    /// A paginated list action, every page's `list` joined.
    pub fn json_all(
        &self,
        purpose: impl Into<String>,
        service: &Service,
        action: &str,
        input: Value,
        list: &str,
    ) -> anyhow::Result<Value> {
        let purpose = purpose.into();
        log(&purpose, &format!("{} {action}", service.title));
        self.api()?.json_all(service, action, &input, list).with_context(|| format!("could not {purpose}"))
    }

    /// Up to `max_keys` object keys under `prefix` (S3 ListObjectsV2).
    pub fn s3_keys(
        &self,
        purpose: impl Into<String>,
        bucket: &str,
        prefix: &str,
        max_keys: u32,
    ) -> anyhow::Result<Vec<String>> {
        let purpose = purpose.into();
        log(&purpose, "S3 ListObjectsV2");
        self.api()?.s3_keys(bucket, prefix, max_keys).with_context(|| format!("could not {purpose}"))
    }
}

fn log(purpose: &str, call: &str) {
    eprintln!("  → {purpose}: {call}");
}

/// The CLI's credentials and, when they were exported (and so may expire), when.
fn credentials(aws: &Aws) -> anyhow::Result<(Credentials, Option<Instant>)> {
    if let Some(from_env) = Credentials::from_env() {
        return Ok((from_env, None));
    }
    let out = aws
        .cmd(
            "export the AWS CLI's credentials to sign API calls (SigV4)",
            ["configure", "export-credentials", "--format", "process"],
        )
        .output()?;
    if out.success() {
        return Ok((Credentials::from_process_json(&out.stdout)?, Some(Instant::now())));
    }
    // Why not: the CLI's own answer to a call that needs credentials says it best.
    let asked = aws.cmd("check the AWS credentials", ["sts", "get-caller-identity"]).output()?;
    let why = if asked.success() {
        "the AWS CLI has credentials but cannot export them: `aws configure export-credentials` needs AWS CLI v2"
            .to_string()
    } else {
        asked.stderr.trim().to_string()
    };
    anyhow::bail!(tools::not_set_up(format!(
        "no usable AWS credentials ({why}): log in (`aws sso login --profile P` and `export AWS_PROFILE=P`, or set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)"
    )))
}

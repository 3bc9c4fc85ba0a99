//! The AWS CLI, always with an explicit region, JSON output and no pager. Endpoint overrides
//! (`AWS_ENDPOINT_URL`), profiles and credentials come from the environment as the CLI reads them.

use std::path::PathBuf;

use anyhow::Context;
use serde_json::Value;

use crate::{require, Cmd};

pub const INSTALL_HINT: &str =
    "install AWS CLI v2 (https://docs.aws.amazon.com/cli/latest/userguide/getting-started-install.html)";

#[derive(Debug, Clone)]
pub struct Aws {
    program: PathBuf,
    pub region: String,
}

/// Who the credentials belong to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub account: String,
    pub arn: String,
}

impl Aws {
    pub fn find(region: &str) -> anyhow::Result<Aws> {
        Ok(Aws { program: require("aws", INSTALL_HINT)?, region: region.to_string() })
    }

    pub fn program(&self) -> &std::path::Path {
        &self.program
    }

    /// `aws <args> --region R --output json`, not yet run.
    pub fn cmd<I: IntoIterator<Item = S>, S: AsRef<std::ffi::OsStr>>(
        &self,
        purpose: impl Into<String>,
        args: I,
    ) -> Cmd {
        Cmd::new(&self.program, purpose)
            .args(args)
            .args(["--region", &self.region, "--output", "json"])
            .env("AWS_PAGER", "")
    }

    /// Runs an AWS CLI call and parses its JSON answer (empty output is `null`).
    pub fn json<I: IntoIterator<Item = S>, S: AsRef<std::ffi::OsStr>>(
        &self,
        purpose: impl Into<String>,
        args: I,
    ) -> anyhow::Result<Value> {
        let cmd = self.cmd(purpose, args);
        let out = cmd.read()?;
        if out.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&out).with_context(|| format!("`{}` did not print JSON", cmd.display()))
    }

    /// The caller's identity; fails with the fix when there are no usable credentials.
    pub fn identity(&self) -> anyhow::Result<Identity> {
        let answer = self.json("check the AWS credentials", ["sts", "get-caller-identity"]).map_err(|err| {
            crate::not_set_up(format!(
                "no usable AWS credentials: log in (`aws sso login --profile P` and `export AWS_PROFILE=P`, or set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY): {err:#}"
            ))
        })?;
        Ok(Identity {
            account: answer["Account"].as_str().unwrap_or_default().to_string(),
            arn: answer["Arn"].as_str().unwrap_or_default().to_string(),
        })
    }

    /// `aws --version`, e.g. `aws-cli/2.17.0 Python/3.11 …`.
    pub fn version(&self) -> anyhow::Result<String> {
        let out = Cmd::new(&self.program, "read the AWS CLI version").arg("--version").quiet().output()?;
        // v1 prints its version on stderr.
        Ok(format!("{}{}", out.stdout, out.stderr).split_whitespace().next().unwrap_or("").to_string())
    }
}

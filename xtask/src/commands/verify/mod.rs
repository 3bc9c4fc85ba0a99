//! `cargo xtask verify`: the checkpoints 2, 5, 7, 9 and the live checks beside them (properties,
//! parity, capacity). They may use `phase`, `live` and `checks::report`.

// Loki through a tunnel, AMP with SigV4, the checks every checkpoint shares.
pub(crate) mod checkpoints;
// The properties P1-P5 (`verify properties`) share the checkpoints' tunnels, AMP access and checks.
pub(crate) mod properties;
// `verify parity`: CloudWatch against Loki over closed windows, and the gate on its record.
pub(crate) mod parity;
// `verify capacity`: a synthetic push at the env's rate, what Loki accepts and its memory.
pub(crate) mod capacity;

use anyhow::bail;
use clap::Args;
use settings::Environment;

use crate::checks::report::Report;
use crate::live::Live;
use crate::project::{usage, Project};
use checkpoints::{not_yet, print_verdict, Checkpoint, Checks};

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

impl VerifyArgs {
    pub fn run(self, project: &Project) -> anyhow::Result<()> {
        // Offline first: the arguments, the env file, the phase order; credentials last.
        if let Some(name) = &self.service {
            settings::check_service_name(name).map_err(usage)?;
        }
        if self.since.is_some() && self.checkpoint != CheckpointArg::Parity {
            bail!(usage("--since applies to parity only"));
        }
        if (self.rate.is_some() || self.seconds.is_some() || self.execute) && self.checkpoint != CheckpointArg::Capacity
        {
            bail!(usage("--rate, --seconds and --execute apply to capacity only"));
        }
        let which: Vec<Checkpoint> = match (self.checkpoint, self.service) {
            (CheckpointArg::Properties, service) => return properties::verify(project, &self.env, service, self.json),
            (CheckpointArg::Parity, service) => {
                return parity::verify(project, &self.env, service, self.since, self.json)
            }
            (CheckpointArg::Capacity, None) => {
                return capacity::verify(project, &self.env, self.rate, self.seconds, self.execute, self.json)
            }
            (CheckpointArg::Five, service) => vec![Checkpoint::Five { service }],
            (_, Some(_)) => bail!(usage("--service applies to checkpoint 5, properties and parity only")),
            (CheckpointArg::Two, None) => vec![Checkpoint::Two],
            (CheckpointArg::Seven, None) => vec![Checkpoint::Seven],
            (CheckpointArg::Nine, None) => vec![Checkpoint::Nine],
            (CheckpointArg::All, None) => {
                vec![Checkpoint::Two, Checkpoint::Five { service: None }, Checkpoint::Seven, Checkpoint::Nine]
            }
        };
        let env = Environment::load(&project.root, &self.env).map_err(usage)?;
        for checkpoint in &which {
            not_yet(&env, checkpoint)
                .map_err(|why| usage(format!("checkpoint {} cannot run yet: {why}", checkpoint.label())))?;
        }
        let live = Live::connect(project, env)?;
        let ctx = Checks::new(&live)?;
        // Every precondition first, so `all` fails before any check runs rather than half-way.
        for checkpoint in &which {
            ctx.preconditions(checkpoint)?;
        }
        let mut report = Report::new(if which.len() == 1 { which[0].label() } else { "all".to_string() });
        for checkpoint in &which {
            report.merge(ctx.run(checkpoint)?);
        }
        drop(ctx); // closes the tunnels before the verdict is printed
        print_verdict(&report, self.json)
    }
}

//! One file per `cargo xtask <command>`, named as the command, holding its arguments and its
//! `run`. They may use everything else (`phase`, `live`, `checks`); nothing but `cli` and `main` uses them whole.

pub mod backfill;
pub mod bench;
pub mod build_grafana;
pub mod check;
pub mod cleanup_adot;
pub mod cost;
pub mod deploy;
pub mod doctor;
pub mod in_use;
pub mod init;
pub mod logs;
pub mod migrate_sidecars;
pub mod render;
pub mod requirements;
pub mod schema;
pub mod test;
pub mod tools;
pub mod verify;

use clap::Args;

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

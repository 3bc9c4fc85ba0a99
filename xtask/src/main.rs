//! `cargo xtask`: parses, finds the repository, dispatches. Behaviour is in `commands/`, one file per command.

mod checks;
mod cli;
mod commands;
mod live;
mod phase;
mod project;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};
use crate::project::{ExitCodeOf, Project};

fn main() -> ExitCode {
    // Like any Unix tool: when the reader goes away (`| head`), end quietly by SIGPIPE rather
    // than panic on the next write. The SSM tunnels are closed before results go to stdout.
    // SAFETY: no other thread runs yet; SIG_DFL is a valid disposition for SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    match try_main(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(err.exit_code())
        }
    }
}

fn try_main(cli: Cli) -> anyhow::Result<()> {
    // The AWS retry settings are read here first, so a bad one stops every command before it
    // does anything, the dry runs included.
    probes::retry::Retry::from_env(|name| std::env::var(name).ok()).map_err(crate::project::usage)?;
    let project = Project::find()?;
    match cli.command {
        Command::Check(args) => args.run(&project),
        Command::Test(args) => args.run(&project),
        Command::Bench(args) => args.run(&project),
        Command::Render(args) => args.run(&project),
        Command::Schema(args) => args.run(&project),
        Command::Doctor(args) => args.run(&project),
        Command::Init(args) => args.run(&project),
        Command::Deploy(args) => args.run(&project),
        Command::MigrateSidecars(args) => args.run(&project),
        Command::CleanupAdot(args) => args.run(&project),
        Command::BuildGrafana(args) => args.run(&project),
        Command::Requirements(args) => args.run(&project),
        Command::Cost(args) => args.run(&project),
        Command::Verify(args) => args.run(&project),
        Command::Backfill(args) => args.run(&project),
        Command::Logs(args) => args.run(&project),
        Command::InUse(args) => args.run(&project),
        Command::Tools(args) => args.run(&project),
    }
}

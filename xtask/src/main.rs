//! `cargo xtask`: parses, finds the repository, dispatches. Behaviour is in one module per command.

mod check;
mod cli;
mod project;
mod render;
mod schema;
mod stages;
mod test;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};
use crate::project::{ExitCodeOf, Project};

fn main() -> ExitCode {
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
    let project = Project::find()?;
    match cli.command {
        Command::Check(args) => args.run(&project),
        Command::Test(args) => args.run(&project),
        Command::Render(args) => args.run(&project),
        Command::Schema(args) => args.run(&project),
        Command::Tools => project.python_tools().map(|tools| {
            println!("Python tools ready in {}", tools.venv().display());
        }),
    }
}

//! `cargo xtask tools`: installs the project-local tools (the pinned Python venv).

use crate::project::Project;

#[derive(Debug, clap::Args)]
pub struct ToolsArgs {}

impl ToolsArgs {
    pub fn run(self, project: &Project) -> anyhow::Result<()> {
        let tools = project.python_tools()?;
        println!("Python tools ready in {}", tools.venv().display());
        Ok(())
    }
}

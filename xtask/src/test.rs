//! `cargo xtask test`: the whole suite — Rust tests, then every offline check.

use crate::cli::TestArgs;
use crate::project::Project;
use crate::stages::Stages;

impl TestArgs {
    pub fn run(self, project: &Project) -> anyhow::Result<()> {
        suite(project).finish("test")
    }
}

/// Every stage of the suite, run; the caller prints the table.
pub fn suite(project: &Project) -> Stages {
    {
        let mut stages = Stages::default();
        // The Rust tests drive Terraform and moto too: install the tools first.
        stages.run("python tools", || project.python_tools().map(drop));
        stages.run("cargo test --workspace", || {
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            tools::Cmd::new(cargo, "run the Rust tests of every workspace member")
                .args(["test", "--workspace", "--quiet", "--no-fail-fast"])
                .dir(&project.root)
                .run()
        });
        crate::check::add_stages(project, &mut stages);
        stages
    }
}

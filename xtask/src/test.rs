//! `cargo xtask test`: the whole suite — the Rust tests, and beside them every offline check.

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
    let mut stages = Stages::default();
    // The Rust tests drive Terraform and moto too: the tools are installed first.
    let setup = crate::check::setup(project, &mut stages);
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let rust_tests = tools::Cmd::new(cargo, "run the Rust tests of every workspace member")
        .args(["test", "--workspace", "--quiet", "--no-fail-fast"])
        .dir(&project.root);
    // Neither the Rust tests nor the checks keep two cores busy on their own. The Rust tests are
    // a chain of waits (one test binary after another, each test on its processes): the checks
    // yield the CPU to them, and take what they leave.
    let beside = stages.start_beside("cargo test --workspace", &rust_tests);
    crate::stages::lower_priority(10);
    crate::check::add_checks(project, &mut stages, &setup);
    stages.join(beside);
    stages
}

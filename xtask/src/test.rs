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
    // Neither the Rust tests nor the checks keep two cores busy on their own. The Rust tests
    // are the longer chain (one test binary after another): the checks, started after them,
    // run at a lower priority and take the CPU the tests leave.
    let beside = stages.start_beside("cargo test --workspace", &rust_tests);
    lower_priority();
    crate::check::add_checks(project, &mut stages, &setup);
    stages.join(beside);
    stages
}

/// This process and what it starts from now on run at nice 10 (on top of the current value).
fn lower_priority() {
    // SAFETY: nice(2) changes only this process's scheduling priority.
    let _ = unsafe { libc::nice(10) };
}

//! `cargo xtask test`: the whole suite — the Rust tests, and beside them every offline check.

use clap::Args;

use crate::checks::stages::Stages;
use crate::project::Project;

#[derive(Debug, Args)]
pub struct TestArgs {}

impl TestArgs {
    pub fn run(self, project: &Project) -> anyhow::Result<()> {
        suite(project).finish("test")
    }
}

/// Every stage of the suite, run; the caller prints the table.
pub fn suite(project: &Project) -> Stages {
    let mut stages = Stages::default();
    let cargo_test = |purpose: &str| tools::cargo(purpose).args(["test", "--workspace", "--quiet"]).dir(&project.root);
    // A first run installs the Python tools (mostly waiting on PyPI and the disk) while the
    // Rust tests compile; once they are installed there is nothing to overlap.
    let build = tools::python::PythonTools::installed(&project.root).is_err().then(|| {
        stages.start_beside(
            "build the Rust tests",
            &cargo_test("build the Rust tests of every workspace member").arg("--no-run"),
        )
    });
    // The Rust tests drive Terraform and moto too: the tools are installed first.
    let setup = crate::checks::suite::setup(project, &mut stages, build);
    // A failed build said why already: running the tests would only say it again.
    let beside = setup.rust_tests_built.then(|| {
        // The end-to-end tests mostly wait (on moto, stand-ins, polls): four at a time on two
        // cores took them from 32 s to 22 s (measured alone); more gained nothing.
        let rust_tests = cargo_test("run the Rust tests of every workspace member but the Docker log rig")
            .args(["--exclude", "docker-rig", "--no-fail-fast"])
            .env("RUST_TEST_THREADS", "4");
        // The rig's cases mostly wait on dockerd: they run beside the other test binaries
        // rather than after them (cargo holds no lock while tests run).
        let rig = tools::cargo("run the Docker log rig's cases against the suite's engine")
            .args(["test", "-p", "docker-rig", "--quiet"])
            .dir(&project.root);
        // Neither the Rust tests nor the checks keep two cores busy on their own. The Rust
        // tests are a chain of waits (one test binary after another, each test on its
        // processes): the checks yield the CPU to them, and take what they leave.
        let beside = [
            stages.start_beside("cargo test --workspace --exclude docker-rig", &rust_tests),
            stages.start_beside("cargo test -p docker-rig (the Docker log rig)", &rig),
        ];
        crate::checks::stages::lower_priority(10);
        beside
    });
    crate::checks::suite::add_checks(project, &mut stages, &setup);
    for beside in beside.into_iter().flatten() {
        stages.join(beside);
    }
    stages
}

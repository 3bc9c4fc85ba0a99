//! The offline stages `cargo xtask check` runs, and `cargo xtask test` beside the Rust tests:
//! the setup (Docker engine, Python tools, Terraform), then every check in order.

use std::path::{Path, PathBuf};

use anyhow::bail;
use tools::terraform::Terraform;

use crate::checks::stages::Stages;
use crate::project::Project;

/// What the checks run with, set up before them: the Python tools and Terraform (setting it up
/// may build the offline provider with cargo, so it comes before `cargo test` starts beside).
pub struct Setup {
    tools: Option<tools::python::PythonTools>,
    terraform: Option<Terraform>,
    /// False when a build of the Rust tests run beside the setup failed.
    pub rust_tests_built: bool,
    /// The suite's Docker engine; ours (when none answers at DOCKER_HOST) stops with the run.
    _docker: Option<docker_rig::Engine>,
}

/// The check stages, in order; `cargo xtask test` runs them beside the Rust tests.
pub fn add_stages(project: &Project, stages: &mut Stages) {
    let setup = setup(project, stages, None);
    add_checks(project, stages, &setup);
}

/// `build`, a cargo build started beside, is joined before Terraform's setup, whose offline
/// provider build would only wait for cargo's lock.
pub fn setup(project: &Project, stages: &mut Stages, build: Option<crate::checks::stages::Beside>) -> Setup {
    let mut setup = Setup { tools: None, terraform: None, rust_tests_built: true, _docker: None };
    // One engine for the whole run: the Rust tests and the checks reach it through DOCKER_HOST.
    stages.run("Docker engine (DOCKER_HOST, or a dockerd of our own)", || {
        let engine = docker_rig::Engine::connect_or_start()?;
        let own = if engine.is_own() { " (started for this run)" } else { "" };
        eprintln!("    dockerd {} at {}{own}", engine.version()?, engine.docker_host());
        // SAFETY: set before the stages start their threads and children.
        std::env::set_var("DOCKER_HOST", engine.docker_host());
        setup._docker = Some(engine);
        Ok(())
    });
    stages.run("python tools", || {
        setup.tools = Some(project.python_tools()?);
        Ok(())
    });
    if let Some(build) = build {
        setup.rust_tests_built = stages.join(build);
    }
    stages.run("terraform setup", || {
        let found = project.terraform()?;
        eprintln!("    {}", found.describe());
        setup.terraform = Some(found);
        Ok(())
    });
    setup
}

pub fn add_checks(project: &Project, stages: &mut Stages, setup: &Setup) {
    // checkov reads infra/ and nothing the other checks write: it runs beside them.
    let checkov = setup.tools.as_ref().map(|tools| stages.start_beside("checkov", &checkov(project, tools)));
    stages.run("rendered files up to date", || crate::commands::render::check_rendered(project));
    stages.run("config checks (Loki, Alloy, Grafana, ECS start order)", || {
        crate::checks::configs::check_configs(project)
    });
    stages
        .run_if_possible("configs in the pinned images (Docker)", || crate::checks::configs::verify_in_images(project));
    stages.run("requirements", || crate::commands::requirements::check(project));
    if let Some(terraform) = &setup.terraform {
        stages.run("terraform fmt", || fmt(project, terraform));
        // Validate and test read the same folders at the same time: their modules come first.
        let mut dirs = Vec::new();
        if stages.run("terraform modules", || {
            dirs = crate::checks::configs::terraform_dirs(project)?;
            dirs.iter().try_for_each(|dir| terraform.prepare(dir))
        }) {
            let tests: Vec<_> = dirs
                .iter()
                .filter(|dir| dir.join("tests").is_dir())
                .map(|dir| {
                    let name = format!("terraform test {}", project.rel(dir).display());
                    (dir, stages.start_beside(&name, &terraform.test_cmd(dir)))
                })
                .collect();
            // Planning every env and phase (one terraform process) overlaps the stages below.
            std::thread::scope(|scope| {
                let containers = setup.tools.as_ref().map(|tools| {
                    scope.spawn(|| crate::phase::task_definitions::check(project, terraform, tools.venv()))
                });
                stages.run("terraform validate", || validate(project, terraform, &dirs));
                for (dir, beside) in tests {
                    stages.join_checked(beside, |output| report_tests(project, dir, output));
                }
                if let Some(containers) = containers {
                    stages.run("each env and phase planned (container definitions, outage budget)", || {
                        let summary =
                            containers.join().map_err(|_| anyhow::anyhow!("the planning thread panicked"))??;
                        eprintln!("    {summary}");
                        Ok(())
                    });
                }
            });
        }
    }
    if let Some(checkov) = checkov {
        stages.join(checkov);
    }
}

fn checkov(project: &Project, tools: &tools::python::PythonTools) -> tools::Cmd {
    tools::Cmd::new(tools.bin("checkov"), "scan infra/ with checkov (skips need an inline reason)")
        .args([
            "--directory",
            "infra",
            "--framework",
            "terraform",
            "--compact",
            "--quiet",
            "--skip-download",
            // Terraform test files are not resources (and checkov cannot parse them).
            "--skip-path",
            "infra/tests",
        ])
        .env("CHECKOV_RUN_SCA_PACKAGE_SCAN_V2", "false")
        .dir(&project.root)
}

/// Folders `terraform fmt -check` covers: the infrastructure and the harness fixtures.
fn fmt_dirs(project: &Project) -> Vec<PathBuf> {
    ["infra", "crates/tools/tests/terraform"].iter().map(|d| project.root.join(d)).filter(|d| d.is_dir()).collect()
}

fn fmt(project: &Project, terraform: &Terraform) -> anyhow::Result<()> {
    for dir in fmt_dirs(project) {
        terraform
            .cmd(format!("check the formatting of {}", project.rel(&dir).display()))
            .args(["fmt", "-check", "-recursive", "-diff", "-no-color"])
            .arg(&dir)
            .run()
            .map_err(|err| err.context("run `terraform fmt -recursive` to fix the formatting"))?;
    }
    Ok(())
}

fn validate(project: &Project, terraform: &Terraform, dirs: &[PathBuf]) -> anyhow::Result<()> {
    let mut failures = Vec::new();
    for dir in dirs {
        if let Err(err) = terraform.validate_prepared(dir) {
            failures.push(format!("{}: {err:#}", project.rel(dir).display()));
        }
    }
    if !failures.is_empty() {
        bail!("{}", failures.join("\n"));
    }
    Ok(())
}

/// One line per test file of a successful `terraform test` of `dir`.
fn report_tests(project: &Project, dir: &Path, output: &str) -> anyhow::Result<()> {
    for file in tools::terraform::test_results(dir, output)? {
        eprintln!("    {}/{}: {}, {} run(s) passed", project.rel(dir).display(), file.file, file.verdict, file.passed);
    }
    Ok(())
}

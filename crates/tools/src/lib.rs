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

/// Finds `name` on PATH, or says how to install it.
pub fn require(name: &str, install_hint: &str) -> anyhow::Result<PathBuf> {
    which::which(name).map_err(|_| anyhow::format_err!("`{name}` is not installed (not found on PATH); {install_hint}"))
}

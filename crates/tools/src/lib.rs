//! External tools: two runners that log each command with its purpose and name it on failure
//! ([`shell`], xshell, for plain sequential commands; [`Cmd`], duct, for the rest), tool
//! discovery, and the project-local Python tools and Terraform.

pub mod aws;
mod cmd;
pub mod python;
pub mod shell;
pub mod terraform;

pub use cmd::{Cmd, Output};

use std::path::{Path, PathBuf};

/// Where project-local tools live (git-ignored).
pub fn tools_dir(root: &Path) -> PathBuf {
    root.join(".tools")
}

/// Cargo (the one running this process, else the one on PATH) as the user's shell would run
/// it: without the variables `cargo run` and `cargo test` describe their package with. Cargo
/// takes an inherited `CARGO_PKG_NAME` or `CARGO_MANIFEST_DIR` for a dependency's own (ring
/// reads them), calls it changed, and rebuilds it and everything above it: in this build, and
/// again in the user's next one.
pub fn cargo(purpose: impl Into<String>) -> Cmd {
    package_vars().fold(Cmd::new(cargo_program(), purpose), Cmd::env_remove)
}

/// [`cargo`] in an xshell [`shell::Shell`], for a plain build.
pub fn cargo_in(sh: &shell::Shell) -> xshell::Cmd<'_> {
    package_vars().fold(sh.cmd(cargo_program()), xshell::Cmd::env_remove)
}

fn cargo_program() -> std::ffi::OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

fn package_vars() -> impl Iterator<Item = std::ffi::OsString> {
    std::env::vars_os().map(|(key, _)| key).filter(|key| describes_a_package(key))
}

fn describes_a_package(key: &std::ffi::OsStr) -> bool {
    let key = key.to_string_lossy();
    ["CARGO_PKG_", "CARGO_MANIFEST_"].iter().any(|prefix| key.starts_with(prefix))
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

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;

    /// `cargo test` runs this test with its package's variables set, as `cargo xtask` runs xtask.
    #[test]
    fn cargo_runs_without_the_variables_of_the_package_that_started_it() {
        assert!(
            std::env::var_os("CARGO_PKG_NAME").is_some() && std::env::var_os("CARGO_MANIFEST_DIR").is_some(),
            "run this test with `cargo test`, which sets CARGO_PKG_NAME and CARGO_MANIFEST_DIR"
        );
        let sh = super::shell::Shell::new().unwrap();
        let commands = [super::cargo("build something").quiet().std_command(), super::cargo_in(&sh).into()];
        for command in commands {
            let removed: Vec<&OsStr> =
                command.get_envs().filter(|(_, value)| value.is_none()).map(|(key, _)| key).collect();
            for key in ["CARGO_PKG_NAME", "CARGO_PKG_VERSION", "CARGO_MANIFEST_DIR"] {
                assert!(removed.contains(&OsStr::new(key)), "{key} is passed on: {removed:?}");
            }
        }
        // What configures cargo itself stays.
        for key in ["CARGO_HOME", "CARGO_TARGET_DIR", "CARGO_BUILD_JOBS", "CARGO"] {
            assert!(!super::describes_a_package(OsStr::new(key)), "{key} would be dropped");
        }
    }
}

//! Plain sequential commands (git, a cargo build, docker buildx) run with xshell, as
//! rust-analyzer's xtask runs them: a [`Shell`] whose working directory and environment are
//! scoped (`change_dir`, `push_dir`, `push_env`), commands written with [`cmd!`]. Each run is
//! logged with its purpose before it starts and its failure names the command and the purpose,
//! as with [`crate::Cmd`], which stays for what xshell does not do: children the caller manages
//! (tunnels and plugins in their own process group, the test stages that run beside each
//! other), and environment values or arguments that must be masked in the log.

use std::path::Path;

use anyhow::Context;
pub use xshell::{cmd, Shell};

use crate::Output;

/// A shell whose commands run in `dir`.
pub fn shell_in(dir: &Path) -> anyhow::Result<Shell> {
    let sh = Shell::new().context("could not set up a shell")?;
    sh.change_dir(dir);
    Ok(sh)
}

/// The command line, with `cd` to the shell's directory when it is not this process's.
pub fn display(sh: &Shell, cmd: &xshell::Cmd) -> String {
    let here = std::env::current_dir().ok();
    let dir = sh.current_dir();
    if here.as_deref() == Some(dir.as_path()) {
        cmd.to_string()
    } else {
        format!("(cd {} && {cmd})", dir.display())
    }
}

fn log(sh: &Shell, purpose: &str, cmd: &xshell::Cmd) {
    eprintln!("  → {purpose}: {}", display(sh, cmd));
}

/// Runs to the end with its stdout sent to our stderr (our stdout carries only results) and its
/// stderr inherited; fails on a non-zero exit. Stdin is empty: a command fed stdin is [`read`].
pub fn run(sh: &Shell, purpose: &str, cmd: xshell::Cmd) -> anyhow::Result<()> {
    log(sh, purpose, &cmd);
    let shown = display(sh, &cmd);
    let status = std::process::Command::from(cmd)
        .stdin(std::process::Stdio::null())
        .stdout(std::io::stderr())
        .status()
        .with_context(|| format!("could not start `{shown}` (to {purpose})"))?;
    anyhow::ensure!(status.success(), "`{shown}` failed ({status}) while trying to {purpose}");
    Ok(())
}

/// Runs and returns its stdout (the trailing newline trimmed); its stderr goes to ours. Fails
/// on a non-zero exit, naming the command and the purpose.
pub fn read(sh: &Shell, purpose: &str, cmd: xshell::Cmd) -> anyhow::Result<String> {
    log(sh, purpose, &cmd);
    cmd.quiet().read().with_context(|| format!("could not {purpose}"))
}

/// Runs unlogged, everything captured, a non-zero exit the caller's to judge: for probes whose
/// output is the point (`--version`).
pub fn probe(purpose: &str, cmd: xshell::Cmd) -> anyhow::Result<Output> {
    let out = cmd.quiet().ignore_status().output().with_context(|| format!("could not {purpose}"))?;
    Ok(Output {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_is_scoped_to_the_shells_directory_and_environment() {
        let dir = tempfile::tempdir().unwrap();
        let sh = shell_in(dir.path()).unwrap();
        let _env = sh.push_env("XTASK_SHELL_TEST", "scoped");
        let printed =
            read(&sh, "print the directory", cmd!(sh, "sh -c 'pwd; printf %s \"$XTASK_SHELL_TEST\"'")).unwrap();
        let dir = dir.path().canonicalize().unwrap();
        assert_eq!(printed, format!("{}\nscoped", dir.display()));
        assert!(std::env::var_os("XTASK_SHELL_TEST").is_none(), "the variable stays in the shell");
        assert_eq!(display(&sh, &cmd!(sh, "git status")), format!("(cd {} && git status)", sh.current_dir().display()));
    }

    #[test]
    fn a_failure_names_the_command_and_the_purpose() {
        let sh = Shell::new().unwrap();
        let err = run(&sh, "prove failures are named", cmd!(sh, "sh -c 'exit 3'")).unwrap_err();
        let message = format!("{err:#}");
        assert!(
            message.contains("`sh -c \"exit 3\"` failed (exit status: 3) while trying to prove failures are named"),
            "{message}"
        );
        let err = read(&sh, "read from a tool that is not there", cmd!(sh, "no-such-tool-xyz")).unwrap_err();
        assert!(format!("{err:#}").starts_with("could not read from a tool that is not there: "), "{err:#}");
        let out = probe("probe", cmd!(sh, "sh -c 'echo out; echo err >&2; exit 4'")).unwrap();
        assert_eq!((out.code, out.stdout.as_str(), out.stderr.as_str()), (Some(4), "out\n", "err\n"));
    }
}

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

/// An external command with the reason it runs. Every run is logged to stderr before it starts;
/// a failure names the command line and its exit status. Environment values are never printed
/// (they may hold credentials); arguments marked secret are masked.
#[derive(Debug, Clone)]
pub struct Cmd {
    program: PathBuf,
    args: Vec<(OsString, bool)>,
    envs: Vec<(OsString, OsString)>,
    /// Inherited environment variables the command must not see.
    removed_envs: Vec<OsString>,
    /// Environment variables that belong in the displayed command line (never secrets).
    shown_envs: Vec<(OsString, OsString)>,
    dir: Option<PathBuf>,
    purpose: String,
    stdin: Option<Vec<u8>>,
    quiet: bool,
    stdout_to_stderr: bool,
}

/// Captured result of a command that was allowed to fail.
#[derive(Debug, Clone)]
pub struct Output {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

impl Cmd {
    pub fn new(program: impl AsRef<Path>, purpose: impl Into<String>) -> Cmd {
        Cmd {
            program: program.as_ref().to_path_buf(),
            args: Vec::new(),
            envs: Vec::new(),
            removed_envs: Vec::new(),
            shown_envs: Vec::new(),
            dir: None,
            purpose: purpose.into(),
            stdin: None,
            quiet: false,
            stdout_to_stderr: false,
        }
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Cmd {
        self.args.push((arg.as_ref().to_os_string(), false));
        self
    }

    pub fn args<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(mut self, args: I) -> Cmd {
        for arg in args {
            self = self.arg(arg);
        }
        self
    }

    /// An argument that must never be printed.
    pub fn secret_arg(mut self, arg: impl AsRef<OsStr>) -> Cmd {
        self.args.push((arg.as_ref().to_os_string(), true));
        self
    }

    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Cmd {
        self.envs.push((key.as_ref().to_os_string(), value.as_ref().to_os_string()));
        self
    }

    /// Keeps an inherited environment variable from the command.
    pub fn env_remove(mut self, key: impl AsRef<OsStr>) -> Cmd {
        self.removed_envs.push(key.as_ref().to_os_string());
        self
    }

    /// An environment variable a person needs to rerun the command by hand (e.g. `TF_DATA_DIR`);
    /// it is shown in [`Cmd::display`]. Never for secrets.
    pub fn shown_env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Cmd {
        self.shown_envs.push((key.as_ref().to_os_string(), value.as_ref().to_os_string()));
        self.env(key, value)
    }

    pub fn dir(mut self, dir: impl AsRef<Path>) -> Cmd {
        self.dir = Some(dir.as_ref().to_path_buf());
        self
    }

    /// Bytes fed to the command's standard input (never logged).
    pub fn stdin_bytes(mut self, bytes: impl Into<Vec<u8>>) -> Cmd {
        self.stdin = Some(bytes.into());
        self
    }

    /// For [`Cmd::run`]: send the child's stdout to our stderr, keeping our stdout for results
    /// (e.g. `docker push` progress next to a command that prints the pushed image).
    pub fn stdout_to_stderr(mut self) -> Cmd {
        self.stdout_to_stderr = true;
        self
    }

    /// Don't log before running (for probes whose output is the point, e.g. `--version`).
    pub fn quiet(mut self) -> Cmd {
        self.quiet = true;
        self
    }

    pub fn purpose(&self) -> &str {
        &self.purpose
    }

    /// The command line as a shell would take it, secrets masked.
    pub fn display(&self) -> String {
        let mut parts: Vec<String> = self
            .shown_envs
            .iter()
            .map(|(key, value)| format!("{}={}", key.to_string_lossy(), shell_quote(value)))
            .collect();
        parts.push(shell_quote(self.program.as_os_str()));
        for (arg, secret) in &self.args {
            parts.push(if *secret { "'***'".to_string() } else { shell_quote(arg) });
        }
        let line = parts.join(" ");
        match &self.dir {
            Some(dir) => format!("(cd {} && {line})", shell_quote(dir.as_os_str())),
            None => line,
        }
    }

    fn expression(&self) -> duct::Expression {
        let args: Vec<&OsString> = self.args.iter().map(|(arg, _)| arg).collect();
        // As an OsStr, a bare name is looked up on PATH (duct makes a relative Path `./name`).
        let mut expr = duct::cmd(self.program.as_os_str(), args).unchecked();
        for key in &self.removed_envs {
            expr = expr.env_remove(key);
        }
        for (key, value) in &self.envs {
            expr = expr.env(key, value);
        }
        if let Some(dir) = &self.dir {
            expr = expr.dir(dir);
        }
        if let Some(bytes) = &self.stdin {
            expr = expr.stdin_bytes(bytes.clone());
        }
        if self.stdout_to_stderr {
            expr = expr.stdout_to_stderr();
        }
        expr
    }

    /// The command as a `std::process::Command`, for a long-running child the caller manages
    /// itself (e.g. an SSM tunnel); logged now like every run. Standard streams and stdin bytes
    /// are the caller's to set up.
    pub fn std_command(&self) -> std::process::Command {
        self.log();
        let mut command = std::process::Command::new(&self.program);
        command.args(self.args.iter().map(|(arg, _)| arg));
        for key in &self.removed_envs {
            command.env_remove(key);
        }
        command.envs(self.envs.iter().map(|(key, value)| (key, value)));
        if let Some(dir) = &self.dir {
            command.current_dir(dir);
        }
        command
    }

    fn log(&self) {
        if !self.quiet {
            eprintln!("  → {}: {}", self.purpose, self.display());
        }
    }

    /// Runs with the terminal's stdout/stderr; fails on a non-zero exit.
    pub fn run(&self) -> anyhow::Result<()> {
        self.log();
        let output = self.expression().run().with_context(|| self.start_error())?;
        if !output.status.success() {
            bail!("`{}` failed ({}) while trying to {}", self.display(), describe(output.status.code()), self.purpose);
        }
        Ok(())
    }

    /// Runs and captures stdout and stderr; fails on a non-zero exit, with stderr in the error.
    pub fn read(&self) -> anyhow::Result<String> {
        let output = self.output()?;
        if !output.success() {
            bail!(
                "`{}` failed ({}) while trying to {}:\n{}",
                self.display(),
                describe(output.code),
                self.purpose,
                output.stderr.trim_end()
            );
        }
        Ok(output.stdout)
    }

    /// Runs and captures everything; fails on a non-zero exit with all the command printed (for
    /// tools like Terraform that put diagnostics on stdout).
    pub fn checked_output(&self) -> anyhow::Result<Output> {
        let output = self.output()?;
        if !output.success() {
            bail!(
                "`{}` failed ({}) while trying to {}:\n{}{}",
                self.display(),
                describe(output.code),
                self.purpose,
                output.stdout,
                output.stderr.trim_end()
            );
        }
        Ok(output)
    }

    /// Runs and captures everything; a non-zero exit is the caller's to judge.
    pub fn output(&self) -> anyhow::Result<Output> {
        self.log();
        let output = self.expression().stdout_capture().stderr_capture().run().with_context(|| self.start_error())?;
        Ok(Output {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        })
    }

    fn start_error(&self) -> String {
        format!("could not start `{}` (to {})", self.display(), self.purpose)
    }
}

fn describe(code: Option<i32>) -> String {
    match code {
        Some(code) => format!("exit code {code}"),
        None => "killed by a signal".to_string(),
    }
}

fn shell_quote(arg: &OsStr) -> String {
    let text = arg.to_string_lossy();
    let plain = !text.is_empty() && text.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./=:,@+%".contains(&b));
    if plain {
        text.into_owned()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_quotes_and_masks_secrets() {
        let cmd = Cmd::new("docker", "log in").args(["login", "--username", "AWS"]).secret_arg("hunter2").arg("it's");
        assert_eq!(cmd.display(), r"docker login --username AWS '***' 'it'\''s'");
        let shown =
            Cmd::new("terraform", "plan").shown_env("TF_DATA_DIR", "a b").env("AWS_SECRET_ACCESS_KEY", "x").arg("plan");
        assert_eq!(shown.display(), "TF_DATA_DIR='a b' terraform plan");
    }

    #[test]
    fn failure_names_the_command_and_the_purpose() {
        let err = Cmd::new("sh", "prove failures are named").args(["-c", "exit 3"]).run().unwrap_err();
        let text = format!("{err:#}");
        assert!(text.contains("`sh -c 'exit 3'` failed (exit code 3)"), "{text}");
        assert!(text.contains("prove failures are named"), "{text}");
    }

    #[test]
    fn read_returns_stdout_and_env_reaches_the_child() {
        let out = Cmd::new("sh", "echo").args(["-c", "printf %s \"$X\""]).env("X", "value").read().unwrap();
        assert_eq!(out, "value");
    }

    #[test]
    fn a_missing_program_is_a_clear_error() {
        let err = Cmd::new("no-such-tool-xyz", "run a tool that is not there").run().unwrap_err();
        assert!(format!("{err:#}").contains("could not start `no-such-tool-xyz`"), "{err:#}");
    }
}

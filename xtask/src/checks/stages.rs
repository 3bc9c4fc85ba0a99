//! Named stages with wall times: run them all, then report and fail naming the failed ones.
//! One stage may run as a child process beside the others (the Rust tests beside the offline
//! checks: neither fills two cores alone).

use std::io::{Read, Seek};
use std::process::ExitStatus;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

#[derive(Default)]
pub struct Stages {
    done: Vec<(String, Duration, Option<String>)>,
    /// Stages that could not run on this machine, with the reason (shown, never silent).
    not_run: Vec<(String, String)>,
    /// When the first stage started: the total is wall time, shorter than the sum with a stage
    /// run beside the others.
    began: Option<Instant>,
}

/// The thread that waits for a stage's child: its exit status and how long it ran.
type Waiter = JoinHandle<(std::io::Result<ExitStatus>, Duration)>;

/// A stage running as a child process; its output waits in a file until [`Stages::join`].
pub struct Beside {
    name: String,
    /// Waits for the child: its exit status and how long it ran (not until it was joined).
    waiter: anyhow::Result<(Waiter, std::fs::File)>,
    display: String,
}

impl Stages {
    /// Runs one stage; a failure is recorded (and printed) and the next stage still runs.
    pub fn run(&mut self, name: &str, stage: impl FnOnce() -> anyhow::Result<()>) -> bool {
        eprintln!("==> {name}");
        self.began.get_or_insert_with(Instant::now);
        let start = Instant::now();
        let result = stage();
        self.record(name, start.elapsed(), result)
    }

    fn record(&mut self, name: &str, took: Duration, result: anyhow::Result<()>) -> bool {
        let failure = result.err().map(|err| format!("{err:#}"));
        match &failure {
            None => eprintln!("    ok: {name} ({:.1}s)", took.as_secs_f64()),
            Some(err) => eprintln!("    FAILED: {name} ({:.1}s)\n{}", took.as_secs_f64(), indent(err)),
        }
        let ok = failure.is_none();
        self.done.push((name.to_string(), took, failure));
        ok
    }

    /// Starts `cmd` as a stage that runs while the next stages do; [`Stages::join`] waits for it
    /// and prints its output then, so the two never interleave.
    pub fn start_beside(&mut self, name: &str, cmd: &tools::Cmd) -> Beside {
        eprintln!("==> {name} (runs beside the stages below; its output follows when it ends)");
        self.began.get_or_insert_with(Instant::now);
        let display = cmd.display();
        let waiter = (|| {
            let output = unlinked_file()?;
            let mut command = cmd.std_command();
            command.stdin(std::process::Stdio::null()).stdout(output.try_clone()?).stderr(output.try_clone()?);
            let started = Instant::now();
            let mut child =
                command.spawn().with_context(|| format!("could not start `{display}` (to {})", cmd.purpose()))?;
            let waiter = std::thread::spawn(move || (child.wait(), started.elapsed()));
            Ok((waiter, output))
        })();
        Beside { name: name.to_string(), waiter, display }
    }

    /// Waits for a stage started with [`Stages::start_beside`], prints its output and records it
    /// with the time it ran.
    pub fn join(&mut self, beside: Beside) -> bool {
        self.join_checked(beside, |_| Ok(()))
    }

    /// [`Stages::join`], and the stage passes only if `check` accepts its output too.
    pub fn join_checked(&mut self, beside: Beside, check: impl FnOnce(&str) -> anyhow::Result<()>) -> bool {
        let Beside { name, waiter, display } = beside;
        eprintln!("==> {name} (output)");
        let mut took = Duration::ZERO;
        let result = (|| {
            let (waiter, mut output) = waiter?;
            let (status, ran) =
                waiter.join().map_err(|_| anyhow::anyhow!("the thread waiting for `{display}` panicked"))?;
            took = ran;
            let status = status.with_context(|| format!("waiting for `{display}`"))?;
            let mut text = Vec::new();
            output.rewind().and_then(|()| output.read_to_end(&mut text)).context("reading the stage's output")?;
            let text = String::from_utf8_lossy(&text);
            eprint!("{text}");
            if !status.success() {
                bail!("`{display}` failed ({status})");
            }
            check(&text)
        })();
        self.record(&name, took, result)
    }

    /// A stage that needs something this machine may lack: `Ok(Some(reason))` means it did not run.
    pub fn run_if_possible(&mut self, name: &str, stage: impl FnOnce() -> anyhow::Result<Option<String>>) {
        let mut reason = None;
        self.run(name, || {
            reason = stage()?;
            Ok(())
        });
        if let Some(reason) = reason {
            eprintln!("    not run: {reason}");
            self.not_run.push((name.to_string(), reason));
        }
    }

    /// Prints the table of stages and fails when any stage failed.
    pub fn finish(self, what: &str) -> anyhow::Result<()> {
        let width = self.done.iter().map(|(name, ..)| name.len()).max().unwrap_or(0);
        let total = self.began.map_or(Duration::ZERO, |began| began.elapsed());
        eprintln!("\n{what}:");
        for (name, took, failure) in &self.done {
            let skipped = self.not_run.iter().any(|(n, _)| n == name);
            let verdict = if failure.is_some() {
                "FAILED"
            } else if skipped {
                "NOT RUN"
            } else {
                "ok"
            };
            eprintln!("  {name:width$}  {verdict:6}  {:>6.1}s", took.as_secs_f64());
        }
        eprintln!("  {:width$}  {:6}  {:>6.1}s", "total (wall)", "", total.as_secs_f64());
        for (name, reason) in &self.not_run {
            eprintln!("  not run: {name}: {reason}");
        }
        let failed: Vec<&str> = self.done.iter().filter(|(.., f)| f.is_some()).map(|(n, ..)| n.as_str()).collect();
        if !failed.is_empty() {
            bail!("{what} failed in: {}", failed.join(", "));
        }
        Ok(())
    }
}

/// This process, and what it starts from now on, run `by` nice levels lower.
pub fn lower_priority(by: i32) {
    // SAFETY: nice(2) changes only this process's scheduling priority.
    let _ = unsafe { libc::nice(by) };
}

/// A scratch file with no name: gone with the last handle, whatever ends the process.
fn unlinked_file() -> anyhow::Result<std::fs::File> {
    static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!("xtask-stage-{}-{n}.out", std::process::id()));
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .with_context(|| format!("creating {} for the stage's output", path.display()))?;
    std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
    Ok(file)
}

fn indent(text: &str) -> String {
    text.lines().map(|line| format!("      {line}")).collect::<Vec<_>>().join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stage_beside_the_others_reports_its_own_time_and_its_failure() {
        let scratch = tempfile::tempdir().unwrap();
        let marker = scratch.path().join("done");
        let mut stages = Stages::default();
        let quick = tools::Cmd::new("sh", "write a marker and fail")
            .args(["-c", "echo from-the-side; : > \"$1\"; exit 3", "sh"])
            .arg(&marker);
        let beside = stages.start_beside("side", &quick);
        // The stage in front outlasts the one beside it by a second: it ends a second after the
        // marker shows that the other has as good as ended.
        stages.run("front", || {
            while !marker.exists() {
                std::thread::yield_now();
            }
            std::thread::sleep(Duration::from_secs(1));
            Ok(())
        });
        assert!(!stages.join(beside));
        let took = |stage: &str| stages.done.iter().find(|(name, ..)| name == stage).unwrap().1;
        assert!(took("side") < took("front"), "the time it ran, not until it was joined");
        let failure = stages.done.iter().find(|(name, ..)| name == "side").unwrap().2.clone();
        assert!(failure.as_deref().unwrap().contains("failed (exit status: 3)"), "{failure:?}");
        let err = stages.finish("suite").unwrap_err().to_string();
        assert_eq!(err, "suite failed in: side");
    }
}

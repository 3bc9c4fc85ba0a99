//! Named stages with wall times: run them all, then report and fail naming the failed ones.

use std::time::{Duration, Instant};

use anyhow::bail;

#[derive(Default)]
pub struct Stages {
    done: Vec<(String, Duration, Option<String>)>,
    /// Stages that could not run on this machine, with the reason (shown, never silent).
    not_run: Vec<(String, String)>,
}

impl Stages {
    /// Runs one stage; a failure is recorded (and printed) and the next stage still runs.
    pub fn run(&mut self, name: &str, stage: impl FnOnce() -> anyhow::Result<()>) -> bool {
        eprintln!("==> {name}");
        let start = Instant::now();
        let result = stage();
        let took = start.elapsed();
        let failure = result.err().map(|err| format!("{err:#}"));
        match &failure {
            None => eprintln!("    ok: {name} ({:.1}s)", took.as_secs_f64()),
            Some(err) => eprintln!("    FAILED: {name} ({:.1}s)\n{}", took.as_secs_f64(), indent(err)),
        }
        let ok = failure.is_none();
        self.done.push((name.to_string(), took, failure));
        ok
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
        let total: Duration = self.done.iter().map(|(_, took, _)| *took).sum();
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
        eprintln!("  {:width$}  {:6}  {:>6.1}s", "total", "", total.as_secs_f64());
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

fn indent(text: &str) -> String {
    text.lines().map(|line| format!("      {line}")).collect::<Vec<_>>().join("\n")
}

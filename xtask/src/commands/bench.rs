//! `cargo xtask bench`: the figures no test may assert, because they depend on the machine and
//! its load: how long the requirement scan takes, and (unless `--quick`) the whole suite's stage
//! times, as `cargo xtask test` runs it.

use std::time::{Duration, Instant};

use clap::Args;

use crate::project::Project;

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Only the micro-benchmarks, not the whole suite
    #[arg(long)]
    pub quick: bool,
}

/// Runs of the requirement scan; the median is the figure.
const SCAN_RUNS: usize = 21;

impl BenchArgs {
    pub fn run(self, project: &Project) -> anyhow::Result<()> {
        let scan = scan_times(project)?;
        if self.quick {
            println!("{scan}");
            return Ok(());
        }
        let started = Instant::now();
        let stages = crate::commands::test::suite(project);
        let result = stages.finish("suite");
        eprintln!("\n{scan}\nsuite wall time: {:.1}s", started.elapsed().as_secs_f64());
        result
    }
}

fn scan_times(project: &Project) -> anyhow::Result<String> {
    let mut times = Vec::with_capacity(SCAN_RUNS);
    let mut found = 0;
    for _ in 0..SCAN_RUNS {
        let started = Instant::now();
        found = crate::commands::requirements::scan(&project.root)?.tests.len();
        times.push(started.elapsed());
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    Ok(format!(
        "requirement scan ({found} tests, {SCAN_RUNS} runs): median {:.1} ms, min {:.1} ms, max {:.1} ms",
        ms(times[SCAN_RUNS / 2]),
        ms(times[0]),
        ms(times[SCAN_RUNS - 1])
    ))
}

//! `cargo xtask verify capacity`: does the deployed Loki carry this env's rate? Pushes a
//! synthetic stream (`service_name="xtask-capacity"`) in Alloy's shape (protobuf + snappy,
//! `task_id` as structured metadata) through the tunnel at the rate for a while, and reports the
//! accepted rate, 429s, push→queryable latency and Loki's resident memory against its limit;
//! then deletes the synthetic lines. A dry run by default: it writes to Loki.
//!
//! The latest result is kept in `envs/<env>.capacity.json`; the plan that turns the parallel run
//! off shows it.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::bail;
use probes::http::Http;
use probes::loki::Loki;
use probes::push::{Entry, Stream};
use serde_json::{json, Value};
use settings::Environment;

use crate::commands::verify::checkpoints::LOKI_PORT;
use crate::live::tunnel::{Endpoint, Tunnel};
use crate::live::Live;
use crate::project::{usage, Project};

/// The synthetic stream's `service_name` (and `container`): no real service has it.
pub const SERVICE: &str = "xtask-capacity";
/// Bytes a synthetic line carries: Temporal's JSON lines measure about that (docs/measured.md).
const LINE_BYTES: usize = 350;
/// One push holds at most this much, as `loki.write`'s default batch_size.
const BATCH_BYTES: f64 = 1_048_576.0;
/// Loki's memory is at risk past this share of its hard limit (the kill is at the limit).
const MEMORY_WARNING: f64 = 0.9;
/// Longest a run may push.
const MAX_SECONDS: u64 = 600;

/// What a run will do, checked offline.
struct Plan {
    env: String,
    cluster: String,
    rate_mb_per_s: f64,
    seconds: u64,
    /// Loki's container memory, MiB (what the kernel kills it at).
    memory_limit_mib: u32,
}

impl Plan {
    fn new(env: &Environment, rate: Option<f64>, seconds: Option<u64>) -> Result<Plan, String> {
        let s = &env.settings;
        // Loki accepts twice the env's rate from the tenant (ingestion_rate_mb, rendered).
        let limit = 2.0 * f64::from(s.loki.ingestion_mb_per_s);
        let rate_mb_per_s = rate.unwrap_or(f64::from(s.loki.ingestion_mb_per_s));
        if !rate_mb_per_s.is_finite() || rate_mb_per_s <= 0.0 || rate_mb_per_s > limit {
            return Err(format!(
                "--rate {rate_mb_per_s}: expected more than 0 and at most {limit} MB/s, the tenant limit Loki is rendered with for loki.ingestion_mb_per_s = {} (envs/{}.toml)",
                s.loki.ingestion_mb_per_s, env.name
            ));
        }
        let seconds = seconds.unwrap_or(30);
        if !(1..=MAX_SECONDS).contains(&seconds) {
            return Err(format!("--seconds {seconds}: expected 1 to {MAX_SECONDS}"));
        }
        Ok(Plan {
            env: env.name.clone(),
            cluster: s.platform.ecs_cluster_name.clone(),
            rate_mb_per_s,
            seconds,
            memory_limit_mib: s.loki_container_memory(),
        })
    }

    fn selector(&self) -> String {
        format!("{{service_name=\"{SERVICE}\", cluster=\"{}\"}}", self.cluster)
    }

    fn describe(&self) -> String {
        format!(
            "push {:.1} MB to Loki ({} in envs/{}.toml) at {} MB/s for {} s, through an SSM tunnel, as {} in {:.0} KiB protobuf batches;\n\
             measure the accepted rate, 429s, push→queryable latency (p50, p99) and Loki's resident memory (process_resident_memory_bytes) against its {} MiB;\n\
             then delete the lines (POST /loki/api/v1/delete for {}), and record the result in envs/{}.capacity.json",
            self.rate_mb_per_s * self.seconds as f64,
            self.cluster,
            self.env,
            self.rate_mb_per_s,
            self.seconds,
            self.selector(),
            BATCH_BYTES / 1024.0,
            self.memory_limit_mib,
            self.selector(),
            self.env
        )
    }

    /// Pushes for `seconds` at the rate: every 100 ms what is due, in batches; a sampler thread
    /// times how long marked lines take to be queryable.
    fn run(&self, base_url: &str, http: &Http) -> anyhow::Result<Measured> {
        let loki = Loki::new(base_url, http.clone());
        let run_id = format!("{:x}", probes::loki::now_ns() / 1_000_000);
        let started_s = (probes::loki::now_ns() / 1_000_000_000) as u64;
        let (marks, marked) = mpsc::channel::<(String, Instant)>();
        let sampler = {
            let (loki, selector) = (Loki::new(base_url, http.clone()), self.selector());
            std::thread::spawn(move || sample_latencies(&loki, &selector, marked))
        };
        let labels = format!("{{cluster=\"{}\", container=\"{SERVICE}\", service_name=\"{SERVICE}\"}}", self.cluster);
        let bytes_per_s = self.rate_mb_per_s * 1e6;
        let began = Instant::now();
        let (mut sent, mut accepted, mut rejected, mut line) = (0.0, 0u64, 0u64, 0u64);
        let mut resident_max = 0.0f64;
        let mut last_memory_read = None::<Instant>;
        // Every byte of rate × seconds is pushed: what is due when the time is up goes too, and
        // the rate is what Loki took over the whole time it took.
        let total = bytes_per_s * self.seconds as f64;
        loop {
            if last_memory_read.is_none_or(|at: Instant| at.elapsed() >= Duration::from_secs(1)) {
                let text = loki.metrics()?;
                resident_max =
                    resident_max.max(probes::loki::metric_sum(&text, "process_resident_memory_bytes").unwrap_or(0.0));
                last_memory_read = Some(Instant::now());
            }
            let in_time = began.elapsed() < Duration::from_secs(self.seconds);
            let due = if in_time { bytes_per_s * began.elapsed().as_secs_f64() - sent } else { total - sent };
            if due < LINE_BYTES as f64 {
                if !in_time {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
            let batch_bytes = due.min(BATCH_BYTES);
            let count = (batch_bytes / LINE_BYTES as f64).ceil() as u64;
            let entries: Vec<Entry> = (0..count)
                .map(|i| {
                    let text = format!("{{\"level\":\"info\",\"msg\":\"xtask capacity {run_id} {}\"", line + i);
                    let padding = LINE_BYTES.saturating_sub(text.len() + 2);
                    Entry {
                        ts_ns: probes::loki::now_ns(),
                        line: format!("{text},\"pad\":\"{}\"}}", "x".repeat(padding.saturating_sub(9))),
                        metadata: vec![("task_id".to_string(), run_id.clone())],
                    }
                })
                .collect();
            let bytes: u64 = entries.iter().map(|e| e.line.len() as u64).sum();
            let marker = format!("xtask capacity {run_id} {}\"", line + count - 1);
            let pushed_at = Instant::now();
            let (status, answer) = loki.push_protobuf(&[Stream { labels: labels.clone(), entries }])?;
            match status {
                204 => {
                    accepted += bytes;
                    let _ = marks.send((marker, pushed_at));
                }
                429 => rejected += 1,
                other => bail!("Loki answered a push with {other}: {}", answer.trim()),
            }
            sent += bytes as f64;
            line += count;
        }
        let elapsed = began.elapsed().as_secs_f64();
        drop(marks);
        let mut latencies = sampler.join().map_err(|_| anyhow::anyhow!("the latency sampler panicked"))?;
        latencies.sort_by(f64::total_cmp);
        let text = loki.metrics()?;
        resident_max =
            resident_max.max(probes::loki::metric_sum(&text, "process_resident_memory_bytes").unwrap_or(0.0));
        let ended_s = (probes::loki::now_ns() / 1_000_000_000) as u64 + 1;
        loki.delete(&self.selector(), started_s, ended_s)?;
        Ok(Measured {
            accepted_mb_per_s: accepted as f64 / 1e6 / elapsed,
            rejected_pushes: rejected,
            latency_p50_ms: percentile(&latencies, 0.50),
            latency_p99_ms: percentile(&latencies, 0.99),
            resident_max_mib: resident_max / 1_048_576.0,
        })
    }
}

/// Milliseconds from each marked push to its line being queryable; at most one query in flight.
fn sample_latencies(loki: &Loki, selector: &str, marked: mpsc::Receiver<(String, Instant)>) -> Vec<f64> {
    let mut latencies = Vec::new();
    while let Ok((marker, pushed_at)) = marked.recv() {
        // Newer marks waiting mean this sampler is behind: time the newest only.
        let (marker, pushed_at) = marked.try_iter().last().unwrap_or((marker, pushed_at));
        let query = format!("{selector} |= \"{}\"", marker.replace('"', "\\\""));
        while pushed_at.elapsed() < Duration::from_secs(10) {
            match loki.query_range(&query, Duration::from_secs(120), 1) {
                Ok(lines) if !lines.is_empty() => {
                    latencies.push(pushed_at.elapsed().as_secs_f64() * 1000.0);
                    break;
                }
                _ => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    }
    latencies
}

fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    (!sorted.is_empty()).then(|| sorted[((sorted.len() - 1) as f64 * p).round() as usize])
}

struct Measured {
    accepted_mb_per_s: f64,
    rejected_pushes: u64,
    latency_p50_ms: Option<f64>,
    latency_p99_ms: Option<f64>,
    resident_max_mib: f64,
}

impl Measured {
    /// Why the run fails, if it does.
    fn problems(&self, plan: &Plan) -> Vec<String> {
        let mut problems = Vec::new();
        if self.rejected_pushes > 0 {
            problems.push(format!("Loki refused {} pushes with 429 (rate limited)", self.rejected_pushes));
        }
        if self.accepted_mb_per_s < plan.rate_mb_per_s * 0.95 {
            problems.push(format!(
                "Loki accepted {:.2} MB/s of the {} MB/s pushed",
                self.accepted_mb_per_s, plan.rate_mb_per_s
            ));
        }
        if self.latency_p50_ms.is_none() {
            problems.push("no pushed line became queryable within 10 s".into());
        }
        let warning = f64::from(plan.memory_limit_mib) * MEMORY_WARNING;
        if self.resident_max_mib > warning {
            problems.push(format!(
                "Loki's resident memory reached {:.0} MiB of its {} MiB limit (over {:.0} %: a restart's catch-up can get it killed; raise loki.memory)",
                self.resident_max_mib,
                plan.memory_limit_mib,
                MEMORY_WARNING * 100.0
            ));
        }
        problems
    }
}

/// `envs/<env>.capacity.json`, beside the env file it belongs to.
pub fn record_path(env: &Environment) -> std::path::PathBuf {
    env.path.with_file_name(format!("{}.capacity.json", env.name))
}

/// The latest result, as one line for a gate's dry run.
pub fn latest(env: &Environment) -> String {
    let Ok(text) = std::fs::read_to_string(record_path(env)) else {
        return format!("no `cargo xtask verify capacity --env {} --execute` result yet", env.name);
    };
    let Ok(record) = serde_json::from_str::<Value>(&text) else {
        return format!("{} is not JSON", record_path(env).display());
    };
    format!(
        "latest `verify capacity` ({}): {} at {} MB/s for {} s, {:.2} MB/s accepted, {} 429s, {:.0} MiB resident of {} MiB",
        record["ended"].as_str().unwrap_or("?"),
        if record["passed"] == true { "PASS" } else { "FAIL" },
        record["rate_mb_per_s"].as_f64().unwrap_or(0.0),
        record["seconds"],
        record["accepted_mb_per_s"].as_f64().unwrap_or(0.0),
        record["rejected_pushes"],
        record["resident_max_mib"].as_f64().unwrap_or(0.0),
        record["memory_limit_mib"]
    )
}

pub fn verify(
    project: &Project,
    env_name: &str,
    rate: Option<f64>,
    seconds: Option<u64>,
    execute: bool,
    json: bool,
) -> anyhow::Result<()> {
    // Offline first: the env file, the phase order, the arguments; credentials last.
    let env = Environment::load(&project.root, env_name).map_err(usage)?;
    crate::phase::order::loki_deployed(&env).map_err(|why| usage(format!("verify capacity cannot run yet: {why}")))?;
    let plan = Plan::new(&env, rate, seconds).map_err(usage)?;
    if !execute {
        println!("verify capacity (dry run) would:\n{}", plan.describe());
        println!("{}", latest(&env));
        println!("\nRun again with --execute to push.");
        return Ok(());
    }
    eprintln!("{}", plan.describe());
    let live = Live::connect(project, env)?;
    let service = live.output_str("loki_service_name", "cargo xtask deploy loki --execute")?;
    let tunnel = Tunnel::open(&live, &Endpoint { what: "Loki", service: &service, port: LOKI_PORT })?;
    let measured = plan.run(&tunnel.base_url(), &Http::default());
    drop(tunnel);
    let measured = measured?;
    let problems = measured.problems(&plan);
    let ended = crate::commands::logs::rfc3339_millis(probes::loki::now_ns());
    let record = json!({
        "env": plan.env,
        "ended": ended,
        "rate_mb_per_s": plan.rate_mb_per_s,
        "seconds": plan.seconds,
        "accepted_mb_per_s": measured.accepted_mb_per_s,
        "rejected_pushes": measured.rejected_pushes,
        "latency_p50_ms": measured.latency_p50_ms,
        "latency_p99_ms": measured.latency_p99_ms,
        "resident_max_mib": measured.resident_max_mib,
        "memory_limit_mib": plan.memory_limit_mib,
        "passed": problems.is_empty(),
        "problems": problems,
        "deleted": plan.selector(),
    });
    settings::write_atomically(&record_path(&live.env), &(serde_json::to_string_pretty(&record)? + "\n"))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&record)?);
    } else {
        let ms = |v: Option<f64>| v.map_or("none".to_string(), |v| format!("{v:.0} ms"));
        println!(
            "verify capacity: {}\n  pushed      {} MB/s for {} s\n  accepted    {:.2} MB/s\n  429s        {}\n  queryable   p50 {}, p99 {}\n  memory      {:.0} MiB resident at most, of Loki's {} MiB\n  deleted     the synthetic lines ({})",
            if problems.is_empty() { "PASS" } else { "FAIL" },
            plan.rate_mb_per_s,
            plan.seconds,
            measured.accepted_mb_per_s,
            measured.rejected_pushes,
            ms(measured.latency_p50_ms),
            ms(measured.latency_p99_ms),
            measured.resident_max_mib,
            plan.memory_limit_mib,
            plan.selector()
        );
    }
    if !problems.is_empty() {
        bail!("verify capacity failed: {}", problems.join("; "));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_from_the_sorted_samples() {
        let samples: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&samples, 0.5), Some(51.0));
        assert_eq!(percentile(&samples, 0.99), Some(99.0));
        assert_eq!(percentile(&[], 0.5), None);
    }
}

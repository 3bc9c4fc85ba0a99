//! `cargo xtask backfill`: makes Loki whole from CloudWatch while the parallel run lasts, so a
//! parity gap (a Loki restart that outlasted Docker's buffer, a sidecar that was down) does not
//! stop the switch-off. For each service on Alloy it takes the windows in which Loki has fewer
//! lines than CloudWatch (the latest `verify parity` record, or its own count over `--since` /
//! `--from --to`), finds the lines Loki lacks by content and timestamp, and pushes exactly those
//! with their original timestamps and the labels Alloy gives them (`service_name`, `cluster`,
//! `container`; `task_id` as structured metadata, from the stream `ecs/<container>/<task>`), plus
//! [`LABEL`], which marks them. Parity's selector matches the backfilled streams, so a repaired
//! window passes, and a second run finds nothing missing and pushes nothing.
//!
//! Loki's own rules (3.7.6) decide what it keeps, read from the env's rendered config:
//! - the ingester refuses an entry older than its stream's newest minus `max_chunk_age / 2`
//!   ("entry too far behind"): the live streams have recent lines, so backfilled lines go to a
//!   stream of their own per run (`backfill="<run start>"`), pushed oldest first;
//! - the distributor refuses entries older than `limits_config.reject_old_samples_max_age`
//!   (168h by default): those are named with the change that would accept them, never pushed;
//! - the tenant's rate limit: batches of at most 1 MiB (`loki.write`'s batch_size), paced at half
//!   the env's `loki.ingestion_mb_per_s` so live traffic keeps its room; a 429 or 5xx is retried
//!   as `loki.write` does (backoff from 500 ms doubling to 5 min, 10 retries), any other answer
//!   stops the run.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use probes::logql;
use probes::loki::{LogLine, Loki};
use probes::push::{Entry, Stream};
use serde_json::{json, Value};
use settings::Environment;
use yaml_rust2::YamlLoader;

use crate::commands::verify::checkpoints::Checks;
use crate::commands::verify::parity::{self, Read, Span, BACKFILL_LABEL as LABEL, WINDOW};
use crate::commands::verify::properties::{migrated_services, ALLOY_CONTAINER};
use crate::live::Live;
use crate::project::{usage, Project};

/// One push holds at most this much, as `loki.write`'s default batch_size.
const BATCH_BYTES: usize = 1 << 20;
/// Lines this close to the oldest age Loki accepts are counted too old: they would cross it
/// before their push.
const AGE_MARGIN: u64 = 300;
/// `loki.write`'s retries of a 429 or 5xx: min_backoff 500 ms, max_backoff 5 min, max_retries 10.
const MIN_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(300);
const MAX_RETRIES: u32 = 10;

#[derive(Debug, Args)]
#[command(
    after_help = "A dry run by default: it reads CloudWatch (FilterLogEvents) and Loki and shows, per service and\n\
                  window, what it would push and what the reads cost; --execute pushes. Without --since or\n\
                  --from/--to it repairs the short windows of the latest `verify parity` (envs/<ENV>.parity.json),\n\
                  else it counts the span itself. Then run `cargo xtask verify parity` again.\n\
                  Exit codes: 0 done (or nothing missing), 1 a push failed or lines are too old for Loki to\n\
                  accept (named, with the config change that accepts them), 2 refused input or an earlier phase first."
)]
pub struct BackfillArgs {
    /// Environment name: envs/<ENV>.toml
    #[arg(long, short, default_value = "example")]
    pub env: String,
    /// Only this service (one on Alloy)
    #[arg(long)]
    pub service: Option<String>,
    /// Compare and repair the last span, e.g. 6h, 1d (instead of the latest parity record's windows)
    #[arg(long, conflicts_with_all = ["from", "to"])]
    pub since: Option<String>,
    /// Start of the span to repair (UTC): 2026-05-01T10:00Z, `2026-05-01 10:00` or Unix seconds
    #[arg(long, requires = "to")]
    pub from: Option<String>,
    /// End of the span to repair (UTC), same forms as --from
    #[arg(long, requires = "from")]
    pub to: Option<String>,
    /// Push the missing lines to Loki (without it, show what would be pushed)
    #[arg(long)]
    pub execute: bool,
    /// Print the report as JSON on stdout (progress stays on stderr)
    #[arg(long)]
    pub json: bool,
}

/// What the rendered Loki config accepts.
#[derive(Debug, Clone, PartialEq)]
struct Rules {
    max_chunk_age_h: f64,
    /// `reject_old_samples_max_age` in hours, None when `reject_old_samples: false`.
    max_age_h: Option<f64>,
    /// Whether the config sets the max age (else it is Loki's default).
    max_age_set: bool,
    config: String,
}

impl Rules {
    fn read(yaml: &str, config: String) -> anyhow::Result<Rules> {
        let docs = YamlLoader::load_from_str(yaml).map_err(|err| anyhow::format_err!("{config} is not YAML: {err}"))?;
        let doc = docs.first().with_context(|| format!("{config} is empty"))?;
        let limits = &doc["limits_config"];
        let max_age = &limits["reject_old_samples_max_age"];
        let context = || format!("reading {config}");
        // Loki 3.7's defaults: max_chunk_age 2h, reject_old_samples true, max age 168h.
        Ok(Rules {
            max_chunk_age_h: crate::commands::cost::hours(
                &doc["ingester"]["max_chunk_age"],
                "ingester.max_chunk_age",
                "2h",
            )
            .with_context(context)?,
            max_age_h: match limits["reject_old_samples"].as_bool() {
                Some(false) => None,
                _ => Some(
                    crate::commands::cost::hours(max_age, "limits_config.reject_old_samples_max_age", "168h")
                        .with_context(context)?,
                ),
            },
            max_age_set: !max_age.is_badvalue(),
            config,
        })
    }

    /// The oldest second a line may have to be pushed at `now`.
    fn oldest(&self, now: u64) -> Option<u64> {
        self.max_age_h.map(|h| now.saturating_sub((h * 3600.0) as u64) + AGE_MARGIN)
    }

    fn describe(&self) -> String {
        let age = match self.max_age_h {
            Some(h) => format!(
                "entries older than {h}h are refused (limits_config.reject_old_samples_max_age{})",
                if self.max_age_set { "" } else { ", Loki's default: the config sets none" }
            ),
            None => "reject_old_samples is false: no entry is too old".to_string(),
        };
        format!(
            "Loki's rules ({}): {age}; an entry more than {}h behind its stream's newest is refused (ingester.max_chunk_age {}h / 2), so backfilled lines go to a stream of their own, oldest first",
            self.config,
            self.max_chunk_age_h / 2.0,
            self.max_chunk_age_h
        )
    }
}

/// One CloudWatch event as Loki would get it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Line {
    ts_ms: u64,
    task_id: String,
    text: String,
}

/// One container's short window and what it takes to repair it.
#[derive(Debug)]
struct Window {
    service: &'static str,
    container: String,
    end: u64,
    cloudwatch: u64,
    loki: u64,
    push: Vec<Line>,
    too_old: Vec<Line>,
}

fn bytes(lines: &[Line]) -> u64 {
    lines.iter().map(|l| l.text.len() as u64).sum()
}

/// The CloudWatch lines of one window that Loki lacks: each Loki line accounts for one CloudWatch
/// line of the same content, at the same millisecond if there is one (CloudWatch keeps Docker's
/// timestamp to the millisecond), else at another; the rest are missing, oldest first.
fn missing(mut cloudwatch: Vec<Line>, loki: &[LogLine]) -> Vec<Line> {
    let mut held: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for line in loki {
        held.entry(parity::trim_line(&line.line)).or_default().push((line.ts_ns / 1_000_000) as u64);
    }
    cloudwatch.sort_by_key(|l| l.ts_ms);
    let mut unmatched: Vec<Line> = cloudwatch
        .into_iter()
        .filter(|line| {
            let Some(times) = held.get_mut(line.text.as_str()) else { return true };
            match times.iter().position(|t| *t == line.ts_ms) {
                Some(at) => {
                    times.swap_remove(at);
                    false
                }
                None => true,
            }
        })
        .collect();
    unmatched.retain(|line| match held.get_mut(line.text.as_str()) {
        Some(times) if !times.is_empty() => {
            times.pop();
            false
        }
        _ => true,
    });
    unmatched
}

/// `2026-05-01T10:00Z`, `2026-05-01T10:00:30Z`, `2026-05-01 10:00` (UTC) or Unix seconds.
fn parse_time(flag: &str, text: &str) -> Result<u64, String> {
    let bad = || {
        format!("{flag} `{text}`: expected a UTC time such as 2026-05-01T10:00Z, `2026-05-01 10:00` or Unix seconds")
    };
    let text = text.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().map_err(|_| bad());
    }
    let body = text.strip_suffix('Z').unwrap_or(text);
    let (date, time) = body.split_once(['T', ' ']).ok_or_else(bad)?;
    let number = |s: &str| s.parse::<u32>().map_err(|_| bad());
    let date: Vec<&str> = date.split('-').collect();
    let time: Vec<&str> = time.split(':').collect();
    let ([y, mo, d], [h, mi, rest @ ..]) = (date.as_slice(), time.as_slice()) else { return Err(bad()) };
    let (y, mo, d, h, mi) = (number(y)?, number(mo)?, number(d)?, number(h)?, number(mi)?);
    let s = match rest {
        [] => 0,
        [s] => number(s)?,
        _ => return Err(bad()),
    };
    if !(1970..=9999).contains(&y) || !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 59 {
        return Err(bad());
    }
    let days = probes::time::days_from_civil(i64::from(y), mo, d);
    if probes::time::civil_from_days(days) != (i64::from(y), mo, d) {
        return Err(format!("{flag} `{text}`: there is no such day"));
    }
    Ok(days as u64 * 86_400 + u64::from(h * 3600 + mi * 60 + s))
}

impl BackfillArgs {
    pub fn run(self, project: &Project) -> anyhow::Result<()> {
        // Offline first: the arguments, the env file, the phase order; credentials last.
        if let Some(name) = &self.service {
            settings::check_service_name(name).map_err(usage)?;
        }
        let now = parity::now_s();
        let span = match (&self.since, &self.from, &self.to) {
            (Some(text), _, _) => Some(Span::ending(now, logql::parse_duration(text).map_err(usage)?)),
            (None, Some(from), Some(to)) => {
                let (from, to) = (parse_time("--from", from).map_err(usage)?, parse_time("--to", to).map_err(usage)?);
                Some(Span::between(from, to, now).map_err(usage)?)
            }
            _ => None,
        };
        let env = Environment::load(&project.root, &self.env).map_err(usage)?;
        let refuse = |why: String| usage(format!("backfill cannot run yet: {why}"));
        crate::phase::order::parallel_run_on(
            &env,
            "backfill repairs what parity finds while CloudWatch still gets every line, and parity can no longer confirm it",
        )
        .map_err(refuse)?;
        let services = migrated_services(&env, self.service.as_deref())?;
        let files = render::render_env(&project.root, &env)?;
        let config = format!("rendered/{}/loki-config.yaml", env.name);
        let rules = Rules::read(crate::commands::cost::rendered_file(&files, &env, "loki-config.yaml")?, config)?;
        let made_up = settings::placeholder_ids(&env.settings);
        if self.execute && !made_up.is_empty() {
            bail!(refuse(crate::phase::order::placeholders_why(&env, &made_up)));
        }
        let live = Live::connect(project, env)?;
        let checks = Checks::new(&live)?;
        let groups = parity::log_groups(&checks, &services)?;
        let mut read = Read::default();
        let (source, short) = short_windows(&checks, &groups, span, now, &mut read)?;
        eprintln!("  windows to repair: {source}");
        let oldest = rules.oldest(now);
        let mut windows = Vec::new();
        for (service, group, container, end, cloudwatch, loki) in short {
            let lines = lacking(&checks, service, &group, &container, end, &mut read)?;
            let (too_old, push) = lines.into_iter().partition(|l| oldest.is_some_and(|o| l.ts_ms / 1000 < o));
            windows.push(Window { service, container, end, cloudwatch, loki, push, too_old });
        }
        let run_id = crate::commands::logs::rfc3339_millis(u128::from(now) * 1_000_000_000)[..19].to_string() + "Z";
        let pushed = if self.execute && windows.iter().any(|w| !w.push.is_empty()) {
            let rate = f64::from(live.env.settings.loki.ingestion_mb_per_s) * 1e6 / 2.0;
            Some(push_all(checks.loki()?, &checks.cluster, &run_id, &windows, rate))
        } else {
            None
        };
        drop(checks); // closes the tunnel before the verdict
        let cost = parity::cost_of(project, &live.env, &read);
        let env = &live.env;
        let pushed = pushed.transpose()?;
        let report = Report { env, rules: &rules, source: &source, windows: &windows, run_id: &run_id, pushed, cost };
        if self.json {
            println!("{}", serde_json::to_string_pretty(&report.json())?);
        } else {
            print!("{}", report.text(self.execute));
        }
        let too_old: usize = windows.iter().map(|w| w.too_old.len()).sum();
        if self.execute && too_old > 0 {
            bail!(
                "{too_old} line(s) missing from Loki are too old for it to accept and were not pushed ({}); parity stays short for their windows",
                too_old_fix(&rules, env, &windows, now)
            );
        }
        Ok(())
    }
}

/// A service, its log group, a container, a window end and its (CloudWatch, Loki) counts.
type Short = (&'static str, String, String, u64, u64, u64);

/// The windows to repair: the latest parity record's short ones when no span is asked and the
/// record holds a result for every service here, else a count of the span (parity's default).
fn short_windows(
    checks: &Checks,
    groups: &[(&'static str, String)],
    span: Option<Span>,
    now: u64,
    read: &mut Read,
) -> anyhow::Result<(String, Vec<Short>)> {
    let env = &checks.live.env;
    if span.is_none() {
        let path = parity::record_path(env);
        let record = parity::read_record(&path)?;
        let results: Option<Vec<&Value>> = groups
            .iter()
            .map(|(service, group)| {
                let result = &record["services"][*service];
                (result["short_windows"].is_array() && result["log_group"] == group.as_str()).then_some(result)
            })
            .collect();
        if let (true, Some(results)) = (record["bound_to"] == parity::binding(env), results) {
            let mut short = Vec::new();
            for ((service, group), result) in groups.iter().zip(&results) {
                for w in result["short_windows"].as_array().into_iter().flatten() {
                    let number = |key: &str| w[key].as_u64().unwrap_or_default();
                    let container = w["container"].as_str().unwrap_or_default().to_string();
                    short.push((
                        *service,
                        group.clone(),
                        container,
                        number("end"),
                        number("cloudwatch"),
                        number("loki"),
                    ));
                }
            }
            let checked = results.iter().filter_map(|r| r["checked_at"].as_u64()).min().unwrap_or_default();
            return Ok((
                format!(
                    "the short windows of the latest `verify parity` ({}, checked {} UTC)",
                    checks.live.project.rel(&path).display(),
                    parity::hhmm(checked)
                ),
                short,
            ));
        }
    }
    let hours = env.settings.migration.parity_hours;
    let span = span.unwrap_or_else(|| Span::ending(now, Duration::from_secs(u64::from(hours) * 3600)));
    let mut short = Vec::new();
    for (service, group) in groups {
        for (container, counts) in parity::count(checks, service, group, span, read)? {
            for (end, (cloudwatch, loki)) in counts.into_iter().filter(|(_, (cw, loki))| loki < cw) {
                short.push((*service, group.clone(), container.clone(), end, cloudwatch, loki));
            }
        }
    }
    Ok((format!("counted now, closed windows {} to {} UTC", parity::hhmm(span.from), parity::hhmm(span.to)), short))
}

/// The lines of one container's window that CloudWatch has and Loki lacks.
fn lacking(
    checks: &Checks,
    service: &str,
    group: &str,
    container: &str,
    end: u64,
    read: &mut Read,
) -> anyhow::Result<Vec<Line>> {
    let start = end - WINDOW;
    let mut cloudwatch = Vec::new();
    let purpose = format!("read {service}/{container}'s lines of one window from CloudWatch");
    parity::filter_events(checks.live, &purpose, group, &format!("ecs/{container}/"), start, end, read, &mut |e| {
        // The sidecar's own lines never go to Loki (Alloy drops its own container).
        if container != ALLOY_CONTAINER {
            let task_id = e.stream.split('/').nth(2).unwrap_or_default().to_string();
            cloudwatch.push(Line { ts_ms: e.ts_ms, task_id, text: parity::trim_line(e.message).to_string() });
        }
    })?;
    let selector =
        logql::selector(&[("service_name", service), ("cluster", &checks.cluster), ("container", container)]);
    Ok(missing(cloudwatch, &parity::loki_lines(checks.loki()?, &selector, start, end)?))
}

/// What the pushes took.
#[derive(Debug, Default)]
struct Pushed {
    lines: u64,
    bytes: u64,
    pushes: u64,
    retries: u64,
}

/// Pushes every window's lines, one stream per container, oldest first, in paced batches.
fn push_all(loki: &Loki, cluster: &str, run_id: &str, windows: &[Window], rate: f64) -> anyhow::Result<Pushed> {
    let mut streams: BTreeMap<(&str, &str), Vec<&Line>> = BTreeMap::new();
    for w in windows {
        streams.entry((w.service, &w.container)).or_default().extend(&w.push);
    }
    let began = Instant::now();
    let mut pushed = Pushed::default();
    for ((service, container), mut lines) in streams {
        // Oldest first: nothing pushed is then behind the stream's newest.
        lines.sort_by_key(|l| l.ts_ms);
        let labels = logql::selector(&[
            ("service_name", service),
            ("cluster", cluster),
            ("container", container),
            (LABEL, run_id),
        ]);
        let mut batch = Vec::new();
        let mut batch_bytes = 0;
        let limit = BATCH_BYTES.min(rate as usize).max(1);
        for (i, line) in lines.iter().enumerate() {
            batch_bytes += line.text.len();
            batch.push(Entry {
                ts_ns: u128::from(line.ts_ms) * 1_000_000,
                line: line.text.clone(),
                metadata: vec![("task_id".to_string(), line.task_id.clone())],
            });
            let last = i + 1 == lines.len();
            if !last && batch_bytes + lines[i + 1].text.len() <= limit {
                continue;
            }
            let stream = Stream { labels: labels.clone(), entries: std::mem::take(&mut batch) };
            push_batch(loki, &stream, &mut pushed)?;
            pushed.lines += stream.entries.len() as u64;
            pushed.bytes += batch_bytes as u64;
            batch_bytes = 0;
            // Paced: the bytes so far take at least bytes / rate seconds.
            let due = Duration::from_secs_f64(pushed.bytes as f64 / rate);
            if let Some(wait) = due.checked_sub(began.elapsed()) {
                std::thread::sleep(wait);
            }
        }
    }
    Ok(pushed)
}

/// The wait before retry `retry` (0-based): doubling from the minimum, at most the maximum.
fn backoff(retry: u32) -> Duration {
    MIN_BACKOFF.saturating_mul(1 << retry.min(20)).min(MAX_BACKOFF)
}

/// One push, retried on 429 and 5xx as `loki.write` does; any other refusal stops the run.
fn push_batch(loki: &Loki, stream: &Stream, pushed: &mut Pushed) -> anyhow::Result<()> {
    let what = format!("{} line(s) of {}", stream.entries.len(), stream.labels);
    for retry in 0..=MAX_RETRIES {
        let (status, answer) = loki.push_protobuf(std::slice::from_ref(stream))?;
        pushed.pushes += 1;
        match status {
            200..=299 => return Ok(()),
            429 | 500..=599 if retry < MAX_RETRIES => {
                let wait = backoff(retry);
                pushed.retries += 1;
                eprintln!(
                    "  Loki answered a push of {what} with HTTP {status}: {}; retry {} of {MAX_RETRIES} in {wait:?}",
                    answer.lines().next().unwrap_or_default(),
                    retry + 1
                );
                std::thread::sleep(wait);
            }
            _ => bail!(
                "Loki refused a push of {what} with HTTP {status}: {}\n(the lines it did not refuse are stored; run backfill again: it pushes only what is still missing)",
                answer.trim()
            ),
        }
    }
    unreachable!("the last retry returns or fails")
}

/// Which lines are too old, since when, and the change that would let Loki take them.
fn too_old_fix(rules: &Rules, env: &Environment, windows: &[Window], now: u64) -> String {
    let Some(h) = rules.max_age_h else { return String::new() };
    let oldest_line = windows.iter().flat_map(|w| &w.too_old).map(|l| l.ts_ms / 1000).min().unwrap_or(now);
    // An hour more than the oldest line's age: the render and deploy take time.
    let needed_h = (now - oldest_line).div_ceil(3600) + 1;
    format!(
        "Loki refuses entries older than {h}h ('greater_than_max_sample_age': limits_config.reject_old_samples_max_age in {}{}), the oldest missing line is more than {}h old; to accept them set limits_config.reject_old_samples_max_age: {needed_h}h in templates/loki-config.yaml.tera, run `cargo xtask render` and `cargo xtask deploy loki --env {} --execute`, then backfill again while CloudWatch still holds them",
        rules.config,
        if rules.max_age_set { "" } else { ", not set: Loki's default" },
        (now - oldest_line) / 3600,
        env.name
    )
}

struct Report<'a> {
    env: &'a Environment,
    rules: &'a Rules,
    source: &'a str,
    windows: &'a [Window],
    run_id: &'a str,
    pushed: Option<Pushed>,
    cost: Value,
}

impl Report<'_> {
    fn text(&self, execute: bool) -> String {
        let (lines, size): (usize, u64) =
            (self.windows.iter().map(|w| w.push.len()).sum(), self.windows.iter().map(|w| bytes(&w.push)).sum());
        let too_old: usize = self.windows.iter().map(|w| w.too_old.len()).sum();
        let mut out = format!(
            "backfill (env {}){}\n  windows: {}\n  {}\n",
            self.env.name,
            if execute { "" } else { ": dry run" },
            self.source,
            self.rules.describe()
        );
        if self.windows.is_empty() {
            out.push_str("  no window has fewer lines in Loki than in CloudWatch: nothing to push\n");
        } else {
            out.push_str(&format!(
                "  {:<18} {:<24} {:<22} {:>10} {:>8} {:>8} {:>10} {:>8}\n",
                "service", "container", "window (UTC)", "CloudWatch", "Loki", "push", "bytes", "too old"
            ));
            for w in self.windows {
                out.push_str(&format!(
                    "  {:<18} {:<24} {:<22} {:>10} {:>8} {:>8} {:>10} {:>8}\n",
                    w.service,
                    w.container,
                    format!("{}–{}", parity::hhmm(w.end - WINDOW), &parity::hhmm(w.end)[11..]),
                    w.cloudwatch,
                    w.loki,
                    w.push.len(),
                    bytes(&w.push),
                    w.too_old.len()
                ));
            }
        }
        if too_old > 0 {
            out.push_str(&format!(
                "  too old to backfill: {too_old} line(s) older than Loki accepts; {}\n",
                too_old_fix(self.rules, self.env, self.windows, parity::now_s())
            ));
        }
        let labels = format!("{{service_name, cluster, container, {LABEL}=\"{}\"}}", self.run_id);
        match (&self.pushed, lines) {
            (_, 0) => out.push_str("  nothing to push: Loki lacks no line that it would accept\n"),
            (Some(p), _) => out.push_str(&format!(
                "  pushed {} line(s), {} bytes, in {} push(es) ({} retried after 429/5xx) to {labels}, task_id as structured metadata\n",
                p.lines, p.bytes, p.pushes, p.retries
            )),
            (None, _) => out.push_str(&format!(
                "  would push {lines} line(s), {size} bytes, with their CloudWatch timestamps, to {labels} (task_id as structured metadata), oldest first in batches of at most {} KiB at {} MB/s\n",
                BATCH_BYTES / 1024,
                f64::from(self.env.settings.loki.ingestion_mb_per_s) / 2.0
            )),
        }
        out.push_str(&format!("  {}\n", parity::describe_cost(&self.cost)));
        if execute && self.pushed.is_some() {
            out.push_str(&format!(
                "\nRun `cargo xtask verify parity --env {}` to confirm the windows pass.\n",
                self.env.name
            ));
        } else if !execute && lines > 0 {
            out.push_str("\nRun again with --execute to push.\n");
        }
        out
    }

    fn json(&self) -> Value {
        let windows: Vec<Value> = self
            .windows
            .iter()
            .map(|w| {
                json!({"service": w.service, "container": w.container, "start": w.end - WINDOW, "end": w.end,
                       "cloudwatch": w.cloudwatch, "loki": w.loki, "push_lines": w.push.len(),
                       "push_bytes": bytes(&w.push), "too_old_lines": w.too_old.len()})
            })
            .collect();
        let pushed = self.pushed.as_ref().map(|p| {
            json!({"lines": p.lines, "bytes": p.bytes, "pushes": p.pushes, "retries": p.retries,
                   "labels": {LABEL: self.run_id}})
        });
        json!({
            "env": self.env.name, "source": self.source, "windows": windows,
            "push_lines": self.windows.iter().map(|w| w.push.len()).sum::<usize>(),
            "push_bytes": self.windows.iter().map(|w| bytes(&w.push)).sum::<u64>(),
            "too_old_lines": self.windows.iter().map(|w| w.too_old.len()).sum::<usize>(),
            "rules": {"max_chunk_age_hours": self.rules.max_chunk_age_h,
                      "reject_old_samples_max_age_hours": self.rules.max_age_h},
            "pushed": pushed, "cost": self.cost,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(ts_ms: u64, text: &str) -> Line {
        Line { ts_ms, task_id: "t".into(), text: text.into() }
    }

    fn loki(ts_ms: u64, text: &str) -> LogLine {
        LogLine { ts_ns: u128::from(ts_ms) * 1_000_000 + 123, labels: BTreeMap::new(), line: text.into() }
    }

    #[test]
    fn the_missing_lines_are_found_by_content_and_timestamp() {
        let cloudwatch = vec![line(3, "b"), line(1, "a"), line(2, "a"), line(4, "a"), line(5, "c")];
        // One "a" at 2 ms, one "a" at another time, "c" at its time: one "a" and "b" are missing,
        // and the "a" missing is the one whose millisecond Loki has not.
        let found = missing(cloudwatch, &[loki(2, "a"), loki(9, "a"), loki(5, "c\n")]);
        assert_eq!(found, vec![line(3, "b"), line(4, "a")]);
        // Everything there: nothing missing (a second run).
        let all = vec![line(1, "a"), line(2, "a")];
        assert!(missing(all.clone(), &[loki(1, "a"), loki(2, "a")]).is_empty());
        assert_eq!(missing(all, &[]), vec![line(1, "a"), line(2, "a")]);
    }

    #[test]
    fn times_parse_in_the_forms_the_tables_print() {
        let t = 1_777_629_600; // 2026-05-01T10:00:00Z
        assert_eq!(parse_time("--from", "2026-05-01T10:00Z"), Ok(t));
        assert_eq!(parse_time("--from", "2026-05-01 10:00"), Ok(t));
        assert_eq!(parse_time("--from", "2026-05-01T10:00:30Z"), Ok(t + 30));
        assert_eq!(parse_time("--from", "1777629600"), Ok(t));
        assert!(parse_time("--from", "yesterday").unwrap_err().contains("--from `yesterday`: expected a UTC time"));
        assert!(parse_time("--to", "2026-02-30T10:00Z").unwrap_err().contains("no such day"));
        assert!(parse_time("--to", "2026-05-01T25:00Z").is_err());
    }

    #[test]
    fn the_rules_come_from_the_rendered_config_with_lokis_defaults() {
        let rendered = "ingester:\n  max_chunk_age: 2h\nlimits_config:\n  retention_period: 720h\n";
        let rules = Rules::read(rendered, "c.yaml".into()).unwrap();
        assert_eq!((rules.max_chunk_age_h, rules.max_age_h, rules.max_age_set), (2.0, Some(168.0), false));
        assert_eq!(rules.oldest(1_000_000), Some(1_000_000 - 168 * 3600 + AGE_MARGIN));
        let set = "ingester:\n  max_chunk_age: 4h\nlimits_config:\n  reject_old_samples_max_age: 30d\n";
        let rules = Rules::read(set, "c.yaml".into()).unwrap();
        assert_eq!((rules.max_chunk_age_h, rules.max_age_h, rules.max_age_set), (4.0, Some(720.0), true));
        let off = "limits_config:\n  reject_old_samples: false\n";
        assert_eq!(Rules::read(off, "c.yaml".into()).unwrap().oldest(1_000_000), None);
        assert!(Rules::read("ingester:\n  max_chunk_age: soon\n", "c.yaml".into()).is_err());
    }

    #[test]
    fn retries_back_off_as_loki_write_does() {
        assert_eq!(backoff(0), Duration::from_millis(500));
        assert_eq!(backoff(1), Duration::from_secs(1));
        assert_eq!(backoff(9), Duration::from_secs(256));
        assert_eq!(backoff(10), MAX_BACKOFF);
        assert_eq!(backoff(40), MAX_BACKOFF);
    }
}

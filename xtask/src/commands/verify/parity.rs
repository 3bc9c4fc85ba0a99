//! `cargo xtask verify parity`: did Loki get every line CloudWatch got? For each enabled service
//! on Alloy and each of its containers, the lines in CloudWatch (the service's log group, streams
//! `ecs/<container>/<task>` as awslogs names them with the prefix `ecs`) and in Loki (the labels
//! the Alloy pipeline sets: `service_name`, `cluster`, `container`) are counted over the same
//! closed 5-minute windows. A window with fewer lines in Loki fails; for the worst one, lines
//! missing from Loki are shown, matched by content; content Loki holds more often than CloudWatch
//! (a sidecar re-reading after a restart) is reported as duplicates, which lose nothing.
//!
//! **The CloudWatch read is FilterLogEvents, not Logs Insights.** Both count exactly, but Insights
//! bills every GB its query scans ($0.005/GB in us-east-1, `data/prices.toml`) each time the gate
//! runs, and the missing lines would still need the events' content, which only the events give.
//! FilterLogEvents has no per-GB charge; it pages (up to 10,000 events or 1 MB a call) under a
//! per-account rate quota, so a large fleet's 24 hours take a while: the command prints the bytes
//! read and what Insights would have cost for the same span.
//!
//! Every run is recorded per service in `envs/<env>.parity.json` (written atomically, next to the
//! env file it belongs to, never inside it): [`gate`] reads it for `cleanup-adot --execute` and for
//! a plan that turns `cloudwatch_parallel_run` off.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use probes::aws::LOGS;
use probes::logql;
use serde_json::{json, Value};
use settings::{Collector, Environment};

use super::checkpoints::{Checks, DEPLOY_LOKI};
use super::properties::{migrated_services, ALLOY_CONTAINER};
use crate::live::session::require_plugin;
use crate::live::Live;
use crate::project::{usage, Project};

/// Bucket width, seconds (Loki's `count_over_time` range and the query's step).
pub const WINDOW: u64 = 300;
/// A window counts once it ended this long ago: Alloy batches, Loki ingests, awslogs buffers.
pub const LAG: u64 = 180;
/// Sample lines shown per container for the worst window.
const SAMPLES: usize = 10;
/// The gate accepts a run whose last window ended at most this long ago.
const FRESH: u64 = 2 * 3600;
/// The label `cargo xtask backfill` marks its streams with (value: the run's start, UTC);
/// parity counts those streams with the rest and says how many lines each window got from them.
pub const BACKFILL_LABEL: &str = "backfill";
/// Loki's default `max_entries_limit_per_query`.
const LOKI_PAGE: u32 = 5000;

/// The span a run covers: closed windows `(from, to]`, and the open tail `(to, now]` left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub from: u64,
    pub to: u64,
    pub now: u64,
}

impl Span {
    /// The closed windows of the last `since` before `now` (seconds since the epoch).
    pub fn ending(now: u64, since: Duration) -> Span {
        let to = now.saturating_sub(LAG) / WINDOW * WINDOW;
        let windows = since.as_secs().div_ceil(WINDOW).max(1);
        Span { from: to - windows * WINDOW, to, now }
    }

    /// The closed windows covering `[from, to)` (seconds since the epoch), up to the last one
    /// closed at `now`; an error names what is wrong with the bounds.
    pub fn between(from: u64, to: u64, now: u64) -> Result<Span, String> {
        let closed = Span::ending(now, Duration::from_secs(WINDOW)).to;
        if from >= to {
            return Err(format!("--from {} is not before --to {}", hhmm(from), hhmm(to)));
        }
        let (start, end) = (from / WINDOW * WINDOW, to.div_ceil(WINDOW) * WINDOW);
        if start >= closed {
            return Err(format!(
                "--from {} leaves no closed window: the last one ended {} UTC (windows close {} minutes after their end)",
                hhmm(from),
                hhmm(closed),
                LAG / 60
            ));
        }
        Ok(Span { from: start, to: end.min(closed), now })
    }

    /// The end of each window, oldest first.
    pub(crate) fn ends(&self) -> impl Iterator<Item = u64> {
        (self.from + WINDOW..=self.to).step_by(WINDOW as usize)
    }
}

/// The end of the window a CloudWatch event (milliseconds) falls in. Loki's ranges are
/// `(t - 5m, t]` in nanoseconds; CloudWatch truncates Docker's timestamp to milliseconds, so
/// `[t - 5m, t)` in milliseconds puts a line in the same window (but for one at exactly `t`).
pub fn window_of_ms(ts_ms: u64) -> u64 {
    (ts_ms / 1000 / WINDOW + 1) * WINDOW
}

/// One container's counts per window end: (CloudWatch, Loki).
pub(crate) type Counts = BTreeMap<u64, (u64, u64)>;
/// Lines and how many more times one side holds them.
type Samples = Vec<(String, u64)>;

struct ContainerResult {
    service: &'static str,
    container: String,
    counts: Counts,
    /// Per window end, the lines of the counted ones that `cargo xtask backfill` pushed.
    backfilled: BTreeMap<u64, u64>,
    missing: Samples,
    duplicates: Samples,
    /// The windows the samples come from.
    missing_window: Option<u64>,
    duplicate_window: Option<u64>,
}

impl ContainerResult {
    fn missing_lines(&self) -> u64 {
        self.counts.values().map(|(cw, loki)| cw.saturating_sub(*loki)).sum()
    }
    fn extra_lines(&self) -> u64 {
        self.counts.values().map(|(cw, loki)| loki.saturating_sub(*cw)).sum()
    }
    fn worst(&self, missing: bool) -> Option<u64> {
        let gap = |(cw, loki): (u64, u64)| if missing { cw.saturating_sub(loki) } else { loki.saturating_sub(cw) };
        self.counts
            .iter()
            .filter(|(_, c)| gap(**c) > 0)
            .max_by_key(|(end, c)| (gap(**c), std::cmp::Reverse(**end)))
            .map(|(end, _)| *end)
    }
}

/// Runs the comparison, prints it, records it; exit 1 when a window misses lines in Loki.
pub fn verify(
    project: &Project,
    env: &str,
    service: Option<String>,
    since: Option<String>,
    json_out: bool,
) -> anyhow::Result<()> {
    let env = Environment::load(&project.root, env).map_err(usage)?;
    let since = match since {
        Some(text) => logql::parse_duration(&text).map_err(usage)?,
        None => Duration::from_secs(u64::from(env.settings.migration.parity_hours) * 3600),
    };
    let refuse = |why: String| usage(format!("parity cannot be checked yet: {why}"));
    crate::phase::order::parallel_run_on(
        &env,
        "CloudWatch no longer gets the services' lines, so there is nothing to compare",
    )
    .map_err(refuse)?;
    let services = migrated_services(&env, service.as_deref())?;
    let live = Live::connect(project, env)?;
    let checks = Checks::new(&live)?;
    let groups = log_groups(&checks, &services)?;
    let span = Span::ending(now_s(), since);
    let mut results = Vec::new();
    let mut read = Read::default();
    for (service, group) in &groups {
        results.extend(compare(&checks, service, group, span, &mut read)?);
    }
    drop(checks); // closes the tunnel before the verdict
    let cost = cost_of(project, &live.env, &read);
    let record = record(&live.env, &groups, &results, span)?;
    let passed = results.iter().all(|r| r.missing_lines() == 0);
    if json_out {
        println!("{}", serde_json::to_string_pretty(&to_json(&live.env, span, &services, &results, &cost, passed))?);
    } else {
        print!("{}", table(&live.env, span, &services, &results, &cost, passed));
    }
    eprintln!("  recorded in {}", project.rel(&record).display());
    if !passed {
        let failed: Vec<String> = results
            .iter()
            .filter(|r| r.missing_lines() > 0)
            .map(|r| {
                let windows = r.counts.values().filter(|(cw, loki)| loki < cw).count();
                format!("{}/{} ({windows} window(s), {} line(s) short)", r.service, r.container, r.missing_lines())
            })
            .collect();
        bail!("parity failed: Loki has fewer lines than CloudWatch: {}", failed.join(", "));
    }
    Ok(())
}

/// Each service's log group, once Loki's service and the session plugin are known to be there.
pub(crate) fn log_groups(checks: &Checks, services: &[&'static str]) -> anyhow::Result<Vec<(&'static str, String)>> {
    checks.live.output_str("loki_service_name", DEPLOY_LOKI)?;
    let mut groups = Vec::new();
    for name in services {
        groups.push((*name, checks.service_outputs(name)?.log_group));
    }
    require_plugin()?;
    Ok(groups)
}

pub(crate) fn now_s() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// What the CloudWatch reads took.
#[derive(Debug, Default)]
pub(crate) struct Read {
    pub bytes: u64,
    pub requests: u64,
}

/// Counts one service's containers on both sides, and for the worst windows the lines by content.
fn compare(
    checks: &Checks,
    service: &'static str,
    group: &str,
    span: Span,
    read: &mut Read,
) -> anyhow::Result<Vec<ContainerResult>> {
    let counts = count(checks, service, group, span, read)?;
    let mut backfilled: BTreeMap<String, BTreeMap<u64, u64>> = BTreeMap::new();
    let selector = logql::selector(&[("service_name", service), ("cluster", &checks.cluster)]);
    let mark = format!("{}=~\".+\"}}", BACKFILL_LABEL);
    let query = format!("sum by (container) (count_over_time({}, {mark}[{WINDOW}s]))", selector.trim_end_matches('}'));
    eprintln!("  → count {service}'s backfilled lines in Loki: {query}");
    for series in checks.loki()?.metric_range(&query, span.from + WINDOW, span.to, WINDOW)? {
        let container = series.labels.get("container").cloned().unwrap_or_default();
        for (end, value) in series.samples {
            *backfilled.entry(container.clone()).or_default().entry(end).or_default() += value as u64;
        }
    }
    let mut results = Vec::new();
    for (container, counts) in counts {
        let mut result = ContainerResult {
            service,
            backfilled: backfilled.remove(&container).unwrap_or_default(),
            container,
            counts,
            missing: vec![],
            duplicates: vec![],
            missing_window: None,
            duplicate_window: None,
        };
        result.missing_window = result.worst(true);
        result.duplicate_window = result.worst(false);
        let mut windows: Vec<u64> = result.missing_window.into_iter().chain(result.duplicate_window).collect();
        windows.dedup();
        for end in windows {
            let (missing, extra) = by_content(checks, service, group, &result.container, end, read)?;
            if Some(end) == result.missing_window {
                result.missing = missing;
            }
            if Some(end) == result.duplicate_window {
                result.duplicates = extra;
            }
        }
        results.push(result);
    }
    Ok(results)
}

/// One service's lines per container and window on both sides: CloudWatch's (streams
/// `ecs/<container>/…`, the sidecar's own left out) and Loki's (every stream of the service,
/// backfilled ones included).
pub(crate) fn count(
    checks: &Checks,
    service: &'static str,
    group: &str,
    span: Span,
    read: &mut Read,
) -> anyhow::Result<BTreeMap<String, Counts>> {
    let mut counts: BTreeMap<String, Counts> = BTreeMap::new();
    let purpose = format!("count {service}'s lines in CloudWatch ({group}, streams ecs/*)");
    // Counted page by page: a day of a busy service does not fit in memory.
    filter_events(checks.live, &purpose, group, "ecs/", span.from, span.to, read, &mut |event| {
        let container = event.stream.split('/').nth(1).unwrap_or_default();
        // The sidecar's own lines stay in CloudWatch by design (Alloy drops its own container).
        if !container.is_empty() && container != ALLOY_CONTAINER {
            counts.entry(container.to_string()).or_default().entry(window_of_ms(event.ts_ms)).or_default().0 += 1;
        }
    })?;
    let loki = checks.loki()?;
    let selector = logql::selector(&[("service_name", service), ("cluster", &checks.cluster)]);
    let query = format!("sum by (container) (count_over_time({selector}[{WINDOW}s]))");
    eprintln!("  → count {service}'s lines in Loki: {query}");
    for series in loki.metric_range(&query, span.from + WINDOW, span.to, WINDOW)? {
        let container = series.labels.get("container").cloned().unwrap_or_default();
        for (end, value) in series.samples {
            counts.entry(container.clone()).or_default().entry(end).or_default().1 += value as u64;
        }
    }
    Ok(counts)
}

/// Lines of one window that CloudWatch has more often than Loki, and the reverse (up to
/// [`SAMPLES`] each), with how many more.
fn by_content(
    checks: &Checks,
    service: &str,
    group: &str,
    container: &str,
    end: u64,
    read: &mut Read,
) -> anyhow::Result<(Samples, Samples)> {
    let start = end - WINDOW;
    let mut seen: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let purpose = format!("read {service}/{container}'s lines of one window from CloudWatch");
    filter_events(checks.live, &purpose, group, &format!("ecs/{container}/"), start, end, read, &mut |event| {
        seen.entry(trim_line(event.message).to_string()).or_default().0 += 1;
    })?;
    let selector =
        logql::selector(&[("service_name", service), ("cluster", &checks.cluster), ("container", container)]);
    for line in loki_lines(checks.loki()?, &selector, start, end)? {
        seen.entry(trim_line(&line.line).to_string()).or_default().1 += 1;
    }
    let pick = |more: fn(u64, u64) -> u64| -> Samples {
        seen.iter()
            .filter(|(_, (cw, l))| more(*cw, *l) > 0)
            .take(SAMPLES)
            .map(|(t, (cw, l))| (t.clone(), more(*cw, *l)))
            .collect()
    };
    Ok((pick(|cw, loki| cw.saturating_sub(loki)), pick(|cw, loki| loki.saturating_sub(cw))))
}

/// The line as both sides store it, without the newline the application wrote.
pub(crate) fn trim_line(line: &str) -> &str {
    line.trim_end_matches(['\n', '\r'])
}

/// Every line of a selector in the window `(start, end]`, paged forward.
pub(crate) fn loki_lines(
    loki: &probes::loki::Loki,
    selector: &str,
    start: u64,
    end: u64,
) -> anyhow::Result<Vec<probes::loki::LogLine>> {
    let ns = |s: u64| u128::from(s) * 1_000_000_000;
    // query_range returns [start, end): one nanosecond on, both ends, is (start, end].
    let (mut from, to) = (ns(start) + 1, ns(end) + 1);
    let mut lines = Vec::new();
    loop {
        let page = loki.lines_between(selector, from, to, LOKI_PAGE, "forward")?;
        let full = page.len() == LOKI_PAGE as usize;
        let last = page.iter().map(|l| l.ts_ns).max();
        // A full page may stop inside a nanosecond: keep what precedes it and read that one again.
        lines.extend(page.into_iter().filter(|l| !full || Some(l.ts_ns) != last));
        match last {
            Some(last) if full && last > from => from = last,
            Some(_) if full => bail!("Loki holds more than {LOKI_PAGE} lines of {selector} in one nanosecond"),
            _ => return Ok(lines),
        }
    }
}

pub(crate) struct Event<'a> {
    pub stream: &'a str,
    pub ts_ms: u64,
    pub message: &'a str,
}

/// FilterLogEvents over `[from, to)` (seconds), every page, each event to `each`; counts
/// requests and bytes.
#[allow(clippy::too_many_arguments)]
pub(crate) fn filter_events(
    live: &Live,
    purpose: &str,
    group: &str,
    prefix: &str,
    from: u64,
    to: u64,
    read: &mut Read,
    each: &mut dyn FnMut(Event),
) -> anyhow::Result<()> {
    // endTime is inclusive: the last millisecond before `to`.
    let mut input = json!({"logGroupName": group, "logStreamNamePrefix": prefix,
                           "startTime": from * 1000, "endTime": to * 1000 - 1, "limit": 10000});
    loop {
        // FilterLogEvents has a per-account rate quota that a long read meets: the SDK retries
        // (`AWS_MAX_ATTEMPTS`) absorb it.
        let page = if input.get("nextToken").is_none() {
            live.api.json(purpose, &LOGS, "FilterLogEvents", input.clone())
        } else {
            live.api.json_quietly(purpose, &LOGS, "FilterLogEvents", input.clone())
        }?;
        read.requests += 1;
        for event in page["events"].as_array().into_iter().flatten() {
            let message = event["message"].as_str().unwrap_or_default();
            read.bytes += message.len() as u64;
            each(Event {
                stream: event["logStreamName"].as_str().unwrap_or_default(),
                ts_ms: event["timestamp"].as_u64().context("a FilterLogEvents event has no timestamp")?,
                message,
            });
        }
        match page["nextToken"].as_str().filter(|t| !t.is_empty()) {
            Some(token) if input["nextToken"].as_str() != Some(token) => input["nextToken"] = json!(token),
            _ => return Ok(()),
        }
    }
}

/// What the reads cost, and what Logs Insights would have cost for the same bytes.
pub(crate) fn cost_of(project: &Project, env: &Environment, read: &Read) -> Value {
    let gb = read.bytes as f64 / 1e9;
    let region = &env.settings.aws.region;
    let insights = crate::commands::cost::Prices::load(&project.root)
        .and_then(|p| Ok(p.region(region)?.cloudwatch_insights_per_gb_scanned.usd))
        .ok();
    json!({
        "filter_log_events_requests": read.requests,
        "bytes_read": read.bytes,
        "gb_read": gb,
        "usd": 0.0,
        "insights_usd_per_gb_scanned": insights,
        "insights_would_cost_usd": insights.map(|p| gb * p),
    })
}

pub(crate) fn describe_cost(cost: &Value) -> String {
    let base = format!(
        "cost: {} FilterLogEvents request(s), {} bytes read, $0 (FilterLogEvents has no per-GB charge)",
        cost["filter_log_events_requests"], cost["bytes_read"]
    );
    match cost["insights_usd_per_gb_scanned"].as_f64() {
        Some(price) => format!(
            "{base}; Logs Insights would scan at least that: {:.6} GB × ${price}/GB = ${:.6}",
            cost["gb_read"].as_f64().unwrap_or(0.0),
            cost["insights_would_cost_usd"].as_f64().unwrap_or(0.0)
        ),
        None => format!("{base}; data/prices.toml has no Logs Insights price for this region"),
    }
}

pub(crate) fn hhmm(s: u64) -> String {
    crate::commands::logs::rfc3339_millis(u128::from(s) * 1_000_000_000)[..16].replace('T', " ")
}

fn table(
    env: &Environment,
    span: Span,
    services: &[&'static str],
    results: &[ContainerResult],
    cost: &Value,
    passed: bool,
) -> String {
    let mut out = format!(
        "parity (env {}): {}\n  closed windows {} to {} UTC, {} minutes each\n",
        env.name,
        if passed { "PASS" } else { "FAIL" },
        hhmm(span.from),
        hhmm(span.to),
        WINDOW / 60
    );
    out.push_str(&format!(
        "  {:<18} {:<24} {:<22} {:>10} {:>10} {:>10}\n",
        "service", "container", "window (UTC)", "CloudWatch", "Loki", "difference"
    ));
    for service in services {
        let mine: Vec<&ContainerResult> = results.iter().filter(|r| r.service == *service).collect();
        if mine.is_empty() {
            out.push_str(&format!(
                "  {service:<18} no line in CloudWatch or Loki in the covered windows (no traffic)\n"
            ));
        }
        for r in mine {
            let mut quiet = 0;
            for end in span.ends() {
                let (cw, loki) = r.counts.get(&end).copied().unwrap_or_default();
                if cw == 0 && loki == 0 {
                    quiet += 1;
                    continue;
                }
                let mark = if loki < cw {
                    "  FAIL"
                } else if loki > cw {
                    "  duplicates"
                } else {
                    ""
                };
                let backfilled = match r.backfilled.get(&end) {
                    Some(n) if *n > 0 => format!("  ({n} backfilled)"),
                    _ => String::new(),
                };
                out.push_str(&format!(
                    "  {service:<18} {:<24} {:<22} {cw:>10} {loki:>10} {:>+10}{mark}{backfilled}\n",
                    r.container,
                    format!("{}–{}", hhmm(end - WINDOW), &hhmm(end)[11..]),
                    loki as i64 - cw as i64
                ));
            }
            if quiet > 0 {
                out.push_str(&format!(
                    "  {service:<18} {:<24} {quiet} window(s) without a line on either side\n",
                    r.container
                ));
            }
        }
    }
    if span.now > span.to {
        out.push_str(&format!(
            "  open: {}–{} not counted (still open, or within {} minutes of now: lines may still be on their way)\n",
            hhmm(span.to),
            &hhmm(span.now)[11..],
            LAG / 60
        ));
    }
    for r in results {
        let samples = [
            ("missing from Loki", "", r.missing_window, &r.missing),
            ("duplicates in Loki (nothing lost)", "more ", r.duplicate_window, &r.duplicates),
        ];
        for (what, more, window, lines) in samples {
            let Some(end) = window.filter(|_| !lines.is_empty()) else { continue };
            out.push_str(&format!(
                "  {what}, {}/{}, window ending {} (by content):\n",
                r.service,
                r.container,
                hhmm(end)
            ));
            for (line, n) in lines {
                out.push_str(&format!("    {n}× {more}{}\n", line.chars().take(200).collect::<String>()));
            }
        }
    }
    out.push_str(&format!("  {}\n", describe_cost(cost)));
    out
}

fn to_json(
    env: &Environment,
    span: Span,
    services: &[&'static str],
    results: &[ContainerResult],
    cost: &Value,
    passed: bool,
) -> Value {
    let samples =
        |s: &[(String, u64)]| -> Vec<Value> { s.iter().map(|(l, n)| json!({"line": l, "count": n})).collect() };
    let services: Vec<Value> = services
        .iter()
        .map(|service| {
            let containers: Vec<Value> = results
                .iter()
                .filter(|r| r.service == *service)
                .map(|r| {
                    let windows: Vec<Value> = span
                        .ends()
                        .map(|end| {
                            let (cw, loki) = r.counts.get(&end).copied().unwrap_or_default();
                            let backfilled = r.backfilled.get(&end).copied().unwrap_or_default();
                            json!({"start": end - WINDOW, "end": end, "cloudwatch": cw, "loki": loki, "difference": loki as i64 - cw as i64, "backfilled": backfilled})
                        })
                        .collect();
                    json!({"container": r.container, "windows": windows, "missing_lines": r.missing_lines(),
                           "extra_lines": r.extra_lines(), "missing_window_end": r.missing_window,
                           "missing_samples": samples(&r.missing), "duplicate_window_end": r.duplicate_window,
                           "duplicate_samples": samples(&r.duplicates)})
                })
                .collect();
            let passed = results.iter().filter(|r| r.service == *service).all(|r| r.missing_lines() == 0);
            json!({"service": service, "passed": passed, "traffic": !containers.is_empty(), "containers": containers})
        })
        .collect();
    json!({"env": env.name, "passed": passed, "from": span.from, "to": span.to, "window_seconds": WINDOW,
           "open": {"from": span.to, "to": span.now, "counted": false}, "services": services, "cost": cost})
}

// ---- the record and the gate --------------------------------------------------------------------

/// `envs/<env>.parity.json`, beside the env file it belongs to.
pub fn record_path(env: &Environment) -> PathBuf {
    env.path.with_file_name(format!("{}.parity.json", env.name))
}

pub(crate) fn read_record(path: &std::path::Path) -> anyhow::Result<Value> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text).with_context(|| {
            format!("{} is not JSON; delete it and run `cargo xtask verify parity` again", path.display())
        }),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(json!({"services": {}})),
        Err(err) => Err(err).with_context(|| format!("reading {}", path.display())),
    }
}

/// What a record proves things about: a record copied from another env, account, region,
/// cluster or state proves nothing here.
pub(crate) fn binding(env: &Environment) -> Value {
    let s = &env.settings;
    json!({
        "env": env.name, "account": s.aws.account_id, "region": s.aws.region,
        "cluster": s.platform.ecs_cluster_name, "state": format!("s3://{}/{}", s.state.bucket, s.state.key),
    })
}

/// Each checked service's latest result replaces its previous one; the file is replaced whole.
/// A record of another env's is started over.
fn record(
    env: &Environment,
    groups: &[(&'static str, String)],
    results: &[ContainerResult],
    span: Span,
) -> anyhow::Result<PathBuf> {
    let path = record_path(env);
    let mut all = read_record(&path)?;
    if all["bound_to"] != binding(env) {
        all = json!({"services": {}});
    }
    all["bound_to"] = binding(env);
    for (service, log_group) in groups {
        let mine: Vec<&ContainerResult> = results.iter().filter(|r| r.service == *service).collect();
        let missing: u64 = mine.iter().map(|r| r.missing_lines()).sum();
        let cloudwatch: u64 = mine.iter().flat_map(|r| r.counts.values()).map(|c| c.0).sum();
        let loki: u64 = mine.iter().flat_map(|r| r.counts.values()).map(|c| c.1).sum();
        // The windows `cargo xtask backfill` repairs when given no span of its own.
        let short: Vec<Value> = mine
            .iter()
            .flat_map(|r| {
                r.counts.iter().filter(|(_, (cw, loki))| loki < cw).map(
                    |(end, (cw, loki))| json!({"container": r.container, "end": end, "cloudwatch": cw, "loki": loki}),
                )
            })
            .collect();
        all["services"][*service] = json!({
            "passed": missing == 0, "from": span.from, "to": span.to, "checked_at": span.now,
            "cloudwatch_lines": cloudwatch, "loki_lines": loki, "missing_lines": missing,
            "extra_lines": mine.iter().map(|r| r.extra_lines()).sum::<u64>(),
            "backfilled_lines": mine.iter().flat_map(|r| r.backfilled.values()).sum::<u64>(),
            "short_windows": short,
            "log_group": log_group,
        });
    }
    settings::write_atomically(&path, &(serde_json::to_string_pretty(&all)? + "\n"))?;
    Ok(path)
}

/// A record's end may be this far past the clock (two hosts' clocks), no further.
const FUTURE_SKEW: u64 = 300;

/// A passing parity run covering the last `migration.parity_hours` for every enabled service on
/// Alloy: `Ok(summary)`, or why not and the command that fixes it.
pub fn gate(project: &Project, env: &Environment) -> Result<String, String> {
    gate_at(project, env, now_s())
}

fn gate_at(project: &Project, env: &Environment, now: u64) -> Result<String, String> {
    let hours = env.settings.migration.parity_hours;
    let path = record_path(env);
    let record = read_record(&path).map_err(|e| format!("{e:#}"))?;
    let fix = format!("run `cargo xtask verify parity --env {} --since {hours}h` first", env.name);
    let mut problems = Vec::new();
    let mut summary = Vec::new();
    let bound = &record["bound_to"];
    let has_results = record["services"].as_object().is_some_and(|s| !s.is_empty());
    if has_results && *bound != binding(env) {
        let here = binding(env);
        let differs: Vec<String> = ["env", "account", "region", "cluster", "state"]
            .iter()
            .filter(|k| bound[**k] != here[**k])
            .map(|k| format!("{k} {} (this env: {})", bound[*k], here[*k]))
            .collect();
        return Err(format!(
            "{} was not recorded for this env ({}): it proves nothing here; {fix}",
            project.rel(&path).display(),
            if bound.is_null() { "it names no env, account, cluster or state".to_string() } else { differs.join(", ") }
        ));
    }
    for (name, _) in env.settings.services.iter().filter(|(_, s)| s.enabled && s.collector == Collector::Alloy) {
        let r = &record["services"][name];
        let (from, to) = (r["from"].as_u64().unwrap_or(0), r["to"].as_u64().unwrap_or(0));
        if r.is_null() {
            problems.push(format!("{name} has no parity result"));
        } else if to > now + FUTURE_SKEW || from > to {
            problems.push(format!("{name}'s result ends in the future ({} UTC): the record is not a run's", hhmm(to)));
        } else if r["passed"] != true {
            problems
                .push(format!("{name}'s latest parity run failed ({} line(s) missing from Loki)", r["missing_lines"]));
        } else if to.saturating_sub(from) < u64::from(hours) * 3600 {
            problems.push(format!(
                "{name}'s passing run covers {}h, less than migration.parity_hours = {hours}",
                to.saturating_sub(from) / 3600
            ));
        } else if now.saturating_sub(to) > FRESH {
            problems.push(format!("{name}'s passing run ended {} ago, more than {}h", age(now - to), FRESH / 3600));
        } else {
            summary.push(format!("{name} {}–{} UTC", hhmm(from), hhmm(to)));
        }
    }
    if !problems.is_empty() {
        return Err(format!("{} (latest results in {}); {fix}", problems.join("; "), project.rel(&path).display()));
    }
    if summary.is_empty() {
        return Ok("no enabled service runs Alloy yet: nothing to compare".to_string());
    }
    Ok(format!("passed over the last {hours}h for {}", summary.join(", ")))
}

/// Where the live outputs are at hand: each recorded result counted the log group the service
/// has now (`temporal_services` output), not one it had before.
pub fn counted_the_live_log_groups(env: &Environment, temporal_services: &Value) -> Result<(), String> {
    let path = record_path(env);
    let record = read_record(&path).map_err(|e| format!("{e:#}"))?;
    let problems: Vec<String> = record["services"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(name, result)| {
            let live = &temporal_services[name]["log_group_name"];
            (result["log_group"] != *live)
                .then(|| format!("{name}'s result counted log group {}, not {live}", result["log_group"]))
        })
        .collect();
    if problems.is_empty() {
        return Ok(());
    }
    Err(format!(
        "{}; run `cargo xtask verify parity --env {} --since {}h` first",
        problems.join("; "),
        env.name,
        env.settings.migration.parity_hours
    ))
}

/// Whether a plan (`terraform show -json`) turns the parallel run off: the output
/// `cloudwatch_parallel_run` becomes false from true, or from unknown (a state from before the
/// output existed, when the parallel run was on as it is by default).
pub fn turns_off_parallel_run(plan_json: &Value) -> bool {
    let change = &plan_json["output_changes"]["cloudwatch_parallel_run"];
    change["after"] == false && change["before"] != false
}

fn age(s: u64) -> String {
    format!("{}h{:02}m", s / 3600, s % 3600 / 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_end_with_the_last_closed_window_before_the_lag() {
        // 10:07:30: 10:05 ended 2.5 min ago, inside the lag, so the last closed window ends 10:00.
        let now = 36_000 + 450;
        let span = Span::ending(now, Duration::from_secs(3600));
        assert_eq!((span.from, span.to), (36_000 - 3600, 36_000));
        assert_eq!(span.ends().count(), 12);
        assert_eq!(Span::ending(36_000 + 481, Duration::from_secs(3600)).to, 36_300);
        // A since that is not a whole number of windows covers at least as much.
        let span = Span::ending(now, Duration::from_secs(301));
        assert_eq!(span.to - span.from, 600);
    }

    #[test]
    fn cloudwatch_milliseconds_fall_in_the_window_loki_counts_them_in() {
        // Loki: (t - 5m, t]. A line at t - 5m + 0.5 ms is Loki's window t; CloudWatch says t - 5m.
        assert_eq!(window_of_ms(300_000), 600);
        assert_eq!(window_of_ms(599_999), 600);
        assert_eq!(window_of_ms(600_000), 900);
    }

    #[test]
    fn only_a_plan_that_switches_the_parallel_run_off_needs_parity() {
        let plan = |before: Value, after: Value| json!({"output_changes": {"cloudwatch_parallel_run": {"actions": ["update"], "before": before, "after": after}}});
        assert!(turns_off_parallel_run(&plan(json!(true), json!(false))));
        assert!(turns_off_parallel_run(&plan(Value::Null, json!(false))), "a state from before the output");
        assert!(!turns_off_parallel_run(&plan(json!(false), json!(false))), "already off");
        assert!(!turns_off_parallel_run(&plan(json!(true), json!(true))));
        assert!(!turns_off_parallel_run(&json!({"resource_changes": []})));
    }

    #[test]
    fn the_gate_wants_a_recent_passing_run_of_every_migrated_service_over_the_set_hours() {
        let dir = tempfile::tempdir().unwrap();
        let project = Project { root: dir.path().to_path_buf() };
        let mut settings: settings::Settings = settings::parse(
            &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../envs/example.toml")).unwrap(),
        )
        .unwrap();
        for (name, service) in [("worker", &mut settings.services.worker), ("history", &mut settings.services.history)]
        {
            assert!(service.enabled, "{name}");
            service.collector = Collector::Alloy;
        }
        let env = Environment { name: "dev".into(), path: dir.path().join("dev.toml"), settings };
        let now = 1_800_000_000;
        let day = 24 * 3600;
        let write = |services: Value| {
            std::fs::write(record_path(&env), json!({"services": services, "bound_to": binding(&env)}).to_string())
                .unwrap();
        };
        let ok = |to: u64| json!({"passed": true, "from": to - day, "to": to, "missing_lines": 0});
        let log_group = |service: &str| format!("/ecs/temporal-dev/{service}");
        let ok_in = |to: u64, service: &str| {
            let mut result = ok(to);
            result["log_group"] = json!(log_group(service));
            result
        };
        let why = gate_at(&project, &env, now).unwrap_err();
        assert!(why.contains("worker has no parity result") && why.contains("history has no parity result"), "{why}");
        assert!(why.contains("run `cargo xtask verify parity --env dev --since 24h` first"), "{why}");
        write(json!({"worker": ok_in(now - 600, "worker"), "history": ok_in(now - 600, "history")}));
        let passed = gate_at(&project, &env, now).unwrap();
        assert!(passed.starts_with("passed over the last 24h for "), "{passed}");
        // Evidence bound to another env, or none, or ending in the future, opens nothing.
        let good = std::fs::read_to_string(record_path(&env)).unwrap();
        let copied = good.replace(&format!("\"{}\"", env.settings.aws.account_id), "\"210987654321\"");
        assert_ne!(copied, good);
        std::fs::write(record_path(&env), &copied).unwrap();
        let why = gate_at(&project, &env, now).unwrap_err();
        assert!(
            why.contains("was not recorded for this env (account \"210987654321\" (this env: \"123456789012\"))"),
            "{why}"
        );
        std::fs::write(record_path(&env), json!({"services": {"worker": ok_in(now, "worker")}}).to_string()).unwrap();
        assert!(gate_at(&project, &env, now).unwrap_err().contains("it names no env, account, cluster or state"));
        write(json!({"worker": ok_in(now + 30 * day, "worker"), "history": ok_in(now - 600, "history")}));
        let why = gate_at(&project, &env, now).unwrap_err();
        assert!(why.contains("worker's result ends in the future"), "{why}");
        write(json!({"worker": ok(now - 600), "history": ok_in(now - 600, "history")}));
        let outputs = json!({"worker": {"log_group_name": log_group("worker")}, "history": {"log_group_name": "/ecs/renamed/history"}});
        let why = counted_the_live_log_groups(&env, &outputs).unwrap_err();
        assert!(
            why.contains(
                "history's result counted log group \"/ecs/temporal-dev/history\", not \"/ecs/renamed/history\""
            ),
            "{why}"
        );
        assert!(why.contains("worker's result counted log group null, not \"/ecs/temporal-dev/worker\""), "{why}");
        write(
            json!({"worker": ok_in(now - 600, "worker"), "history": {"passed": false, "from": now - day, "to": now, "missing_lines": 3, "log_group": log_group("history")}}),
        );
        let why = gate_at(&project, &env, now).unwrap_err();
        assert!(why.contains("history's latest parity run failed (3 line(s) missing from Loki)"), "{why}");
        assert!(!why.contains("worker"), "{why}");
        write(
            json!({"worker": ok_in(now - 3 * 3600, "worker"), "history": {"passed": true, "from": now - 3600, "to": now, "missing_lines": 0, "log_group": log_group("history")}}),
        );
        let why = gate_at(&project, &env, now).unwrap_err();
        assert!(why.contains("worker's passing run ended 3h00m ago, more than 2h"), "{why}");
        assert!(why.contains("history's passing run covers 1h, less than migration.parity_hours = 24"), "{why}");
        std::fs::write(record_path(&env), "{half").unwrap();
        assert!(gate_at(&project, &env, now).unwrap_err().contains("is not JSON"));
    }
}

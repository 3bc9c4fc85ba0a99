//! A stand-in for everything `cargo xtask verify`/`logs` talk to besides moto, answering in the
//! documented API shapes: Loki (v3.7 HTTP API), Grafana (`/api/health`, datasources, `/api/ds/query`),
//! AMP (Prometheus instant queries and label values; SigV4 headers required), and the SSM session
//! APIs moto lacks, `StartSession` and `TerminateSession` (point `AWS_ENDPOINT_URL_SSM` at it;
//! terminated sessions are recorded in [`StackState::terminated_sessions`]). Plus a `session-manager-plugin`
//! stand-in that really forwards its local port, to this server, never to the task's private
//! address.
//!
//! For ECS Exec, which moto lacks, the stack is also an ECS proxy (point `AWS_ENDPOINT_URL_ECS` at
//! it and set [`StackState::ecs_upstream`] to moto): every ECS call goes to moto, except
//! - `ExecuteCommand`, answered here and recorded in [`StackState::execs`], with the effect the
//!   command would have in a real task: into the `alloy` container, any command stops the sidecar
//!   and ECS's restart policy brings it back: counted in [`StackState::restarts`], and its start-up
//!   line (`msg="now listening for http traffic"`) goes to the awslogs group and stream of its
//!   container definition in moto (it stays STOPPED when [`StackState::sidecar_restarts`] is
//!   false); into another container, the one command shape
//!   `/bin/sh -c 'for i in <numbers>; do echo <words with $i>; done > /proc/1/fd/1'` writes its lines
//!   to the container's stdout, which the task's Alloy ships to "Loki" as an entry each (labels
//!   `service_name` from [`StackState::alloy_services`], `cluster`, `container`; `task_id` as
//!   structured metadata), unless [`StackState::ship_exec_lines`] is false;
//! - `DescribeTasks`, whose tasks get one container per container definition (moto gives only the
//!   first) with `runtimeId` and `lastStatus` (ECS reports no restart count: the sidecar's own
//!   log tells a restart);
//! - `ListTasks`, filtered by `serviceName` (moto ignores it) through the task group `service:<name>`;
//! - `DescribeServices`, where a service named in [`StackState::held_rollouts`] is one task short
//!   of its desired count: its rollout goes on until the test takes the name out.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use serde_json::{json, Value};

use crate::http::{Answer, HttpServer, Request};

/// One stored log entry.
#[derive(Debug, Clone)]
pub struct Entry {
    pub labels: BTreeMap<String, String>,
    pub ts_ns: u128,
    pub line: String,
    /// Structured metadata: returned with the stream labels by a query, not by the label API.
    pub metadata: BTreeMap<String, String>,
}

/// What the fake knows; tests change it through [`FakeStack::state`].
#[derive(Debug, Clone)]
pub struct StackState {
    pub loki_ready: bool,
    pub entries: Vec<Entry>,
    /// `(job, cluster, value)` of the `up` series in AMP.
    pub up: Vec<(String, String, f64)>,
    pub grafana_user: String,
    pub grafana_password: String,
    /// Type of the datasource with uid `loki`; None answers 404.
    pub loki_datasource_type: Option<String>,
    /// Every request, in order: `METHOD path` (SSM: `SSM <operation>`).
    pub requests: Vec<String>,
    /// Query strings AMP received, each with whether it carried a SigV4 `authorization`.
    pub amp_queries: Vec<(String, bool)>,
    /// Milliseconds to wait before answering Loki's `/ready` (to interrupt a command mid-way).
    pub ready_delay_ms: u64,
    /// `(job, metric name)` of the series in AMP, for the label values API.
    pub metric_names: Vec<(String, String)>,
    /// The moto endpoint the ECS proxy forwards to; None answers every ECS call with an error.
    pub ecs_upstream: Option<String>,
    /// ECS service name → the `service_name` its Alloy sidecar gives the task's lines.
    pub alloy_services: BTreeMap<String, String>,
    /// Whether lines an exec writes to a container's stdout reach "Loki".
    pub ship_exec_lines: bool,
    /// Whether ECS restarts a stopped `alloy` container.
    pub sidecar_restarts: bool,
    /// Every `ExecuteCommand`, in order.
    pub execs: Vec<Exec>,
    /// Restarts per `(task id, container)`.
    pub restarts: BTreeMap<(String, String), u64>,
    /// Containers stopped and not restarted, as `(task id, container)`.
    pub stopped_containers: BTreeSet<(String, String)>,
    /// ECS services whose rollout does not finish while they are named here.
    pub held_rollouts: BTreeSet<String>,
    /// How often `DescribeServices` reported a held rollout.
    pub held_answers: u64,
    /// The `SessionId` of every `TerminateSession`, in order.
    pub terminated_sessions: Vec<String>,
    /// Every AWS API request (ECS, SSM) as it arrived, for the checks against AWS's models;
    /// what the ECS proxy forwards to moto is marked [`PROXIED`] there, so it counts once.
    pub aws_requests: Vec<configcheck::botocore::HttpRequest>,
    /// Loki's per-tenant ingestion limit, bytes a second (the rendered example's
    /// `ingestion_rate_mb: 20`); a push past it in the current second is refused with 429.
    pub ingestion_limit_bytes_per_s: u64,
    /// Bytes pushed in the current whole second: `(second, bytes)`.
    pub ingested_this_second: (u64, u64),
    /// What `/metrics` reports as `process_resident_memory_bytes`.
    pub resident_memory_bytes: u64,
    /// Every delete request: `(query, start, end)` as sent.
    pub delete_requests: Vec<(String, String, String)>,
    /// Task id → the `availabilityZone` DescribeTasks reports (moto gives none); a task not named
    /// here is in the region's `a` zone.
    pub task_zones: BTreeMap<String, String>,
    /// `ingester.max_chunk_age` (the rendered 2h): within a stream, an entry older than the
    /// stream's newest minus half of it is refused as too far behind.
    pub max_chunk_age: Duration,
    /// `limits_config.reject_old_samples_max_age` (Loki's default 168h, which the rendered config
    /// keeps): older entries are refused; None is `reject_old_samples: false`.
    pub reject_old_samples_max_age: Option<Duration>,
    /// The next pushes answered 429 as the rate limiter does, whatever their size.
    pub rate_limit_next_pushes: u32,
}

/// The header the ECS proxy adds to what it forwards to moto.
pub const PROXIED: &str = "x-standin-proxied";

/// One `ExecuteCommand` the ECS proxy answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exec {
    pub task_id: String,
    pub container: String,
    pub command: String,
}

impl Default for StackState {
    fn default() -> StackState {
        StackState {
            loki_ready: true,
            entries: Vec::new(),
            up: Vec::new(),
            grafana_user: "admin".into(),
            grafana_password: "grafana-test-password".into(),
            loki_datasource_type: Some("loki".into()),
            requests: Vec::new(),
            amp_queries: Vec::new(),
            ready_delay_ms: 0,
            metric_names: Vec::new(),
            ecs_upstream: None,
            alloy_services: BTreeMap::new(),
            ship_exec_lines: true,
            sidecar_restarts: true,
            execs: Vec::new(),
            restarts: BTreeMap::new(),
            stopped_containers: BTreeSet::new(),
            held_rollouts: BTreeSet::new(),
            held_answers: 0,
            terminated_sessions: Vec::new(),
            aws_requests: Vec::new(),
            ingestion_limit_bytes_per_s: 20 << 20,
            ingested_this_second: (0, 0),
            resident_memory_bytes: 400 << 20,
            task_zones: BTreeMap::new(),
            delete_requests: Vec::new(),
            max_chunk_age: Duration::from_secs(2 * 3600),
            reject_old_samples_max_age: Some(Duration::from_secs(168 * 3600)),
            rate_limit_next_pushes: 0,
        }
    }
}

pub struct FakeStack {
    server: HttpServer,
    state: Arc<Mutex<StackState>>,
}

pub fn now_ns() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
}

impl FakeStack {
    pub fn start(state: StackState) -> anyhow::Result<FakeStack> {
        let state = Arc::new(Mutex::new(state));
        let shared = Arc::clone(&state);
        let server = HttpServer::start(Arc::new(move |req: &Request| {
            // Recorded on arrival, so a test sees a request that is still being answered.
            let delay = {
                let mut state = shared.lock().expect("stand-in state lock");
                state.requests.push(match req.header("x-amz-target") {
                    Some(target) if target.starts_with(ECS_TARGET) => format!("ECS {}", &target[ECS_TARGET.len()..]),
                    Some(target) => format!("SSM {}", target.rsplit('.').next().unwrap_or(target)),
                    None => format!("{} {}", req.method, req.path),
                });
                if req.headers.contains_key("x-amz-target") {
                    state.aws_requests.push(configcheck::botocore::HttpRequest {
                        method: req.method.clone(),
                        path: req.path.clone(),
                        query: req.query.clone().into_iter().collect(),
                        headers: req.headers.clone(),
                        body: req.body.clone().into_bytes(),
                    });
                }
                state.ready_delay_ms
            };
            if req.path == "/ready" && delay > 0 {
                // Outside the lock: the test keeps reading the state meanwhile.
                std::thread::sleep(std::time::Duration::from_millis(delay));
            }
            let mut state = shared.lock().expect("stand-in state lock");
            route(&mut state, req)
        }))?;
        Ok(FakeStack { server, state })
    }

    pub fn url(&self) -> String {
        self.server.url()
    }

    pub fn port(&self) -> u16 {
        self.server.port()
    }

    pub fn state(&self) -> std::sync::MutexGuard<'_, StackState> {
        self.state.lock().expect("stand-in state lock")
    }

    /// Adds `count` recent lines of a service as its Alloy sidecar would label them.
    pub fn add_service_lines(&self, service: &str, cluster: &str, container: &str, lines: &[&str]) {
        let now = now_ns();
        let mut state = self.state();
        for (i, line) in lines.iter().enumerate() {
            let labels = [("service_name", service), ("cluster", cluster), ("container", container)]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            // Oldest first, a millisecond apart, all within the last second.
            let ts_ns = now - 1_000_000_000 + (i as u128) * 1_000_000;
            state.entries.push(Entry { labels, ts_ns, line: line.to_string(), metadata: BTreeMap::new() });
        }
    }

    /// Like [`FakeStack::add_service_lines`], with the task id as structured metadata (req 3.8).
    pub fn add_task_lines(&self, service: &str, cluster: &str, container: &str, task_id: &str, lines: &[&str]) {
        let first = self.state().entries.len();
        self.add_service_lines(service, cluster, container, lines);
        for entry in &mut self.state().entries[first..] {
            entry.metadata.insert("task_id".into(), task_id.into());
        }
    }
}

fn route(state: &mut StackState, req: &Request) -> Answer {
    if let Some(target) = req.header("x-amz-target") {
        if let Some(operation) = target.strip_prefix(ECS_TARGET) {
            return ecs(state, operation, req);
        }
        return ssm(state, target, req);
    }
    match (req.method.as_str(), req.path.as_str()) {
        ("GET", "/ready") if state.loki_ready => Answer::text(200, "ready\n"),
        ("GET", "/ready") => Answer::text(503, "Ingester not ready: waiting for 15s after being ready\n"),
        ("GET", "/loki/api/v1/query_range") => query_range(state, req),
        ("GET", "/loki/api/v1/labels") => labels(state, req),
        ("POST", "/loki/api/v1/push") => push(state, req),
        ("POST", "/loki/api/v1/delete") => delete(state, req),
        ("POST", "/flush") => Answer::text(204, ""),
        ("GET", "/metrics") => Answer::text(
            200,
            &format!(
                "# TYPE loki_distributor_lines_received_total counter\nloki_distributor_lines_received_total{{tenant=\"fake\"}} {}\n\
                 # TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes {}\n",
                state.entries.len(),
                state.resident_memory_bytes
            ),
        ),
        ("GET", "/api/health") => Answer::json(200, &json!({"commit": "abc", "database": "ok", "version": "13.2.3"})),
        ("GET", path) if path.starts_with("/api/datasources/uid/") => datasource(state, req, &path["/api/datasources/uid/".len()..]),
        ("POST", "/api/ds/query") => ds_query(state, req),
        ("GET", path) if path.starts_with("/workspaces/") && path.ends_with("/api/v1/query") => amp_query(state, req),
        ("GET", path) if path.starts_with("/workspaces/") && path.ends_with("/api/v1/label/__name__/values") => amp_names(state, req),
        _ => Answer::text(404, "404 page not found\n"),
    }
}

/// The session calls moto lacks; every other SSM call (parameters) goes on to moto when
/// [`StackState::ecs_upstream`] names it.
fn ssm(state: &mut StackState, target: &str, req: &Request) -> Answer {
    let operation = target.rsplit('.').next().unwrap_or(target);
    let body: Value = serde_json::from_str(&req.body).unwrap_or(Value::Null);
    let answer = match operation {
        "StartSession" => json!({
            "SessionId": format!("xtask-test-{}", body["Target"].as_str().unwrap_or("unknown")),
            "TokenValue": "stand-in-token",
            "StreamUrl": "wss://ssmmessages.invalid/v1/data-channel/xtask-test",
        }),
        "TerminateSession" => {
            state.terminated_sessions.push(body["SessionId"].as_str().unwrap_or_default().to_string());
            json!({"SessionId": body["SessionId"]})
        }
        _ => {
            return match &state.ecs_upstream {
                Some(upstream) => call_moto(upstream, req, "ssm", target, &req.body)
                    .unwrap_or_else(|err| Answer::text(502, &format!("{err:#}"))),
                None => Answer::json(
                    400,
                    &json!({"__type": "InvalidAction", "message": format!("the stand-in has no {operation}")}),
                ),
            }
        }
    };
    Answer::new(200, "application/x-amz-json-1.1", answer.to_string())
}

/// A LogQL log query as far as the fake understands it: `{k="v", k=~".+"}` then `|= "s"` and
/// `|~ "(?i)word"` filters.
struct LogQuery {
    matchers: Vec<(String, bool, String)>,
    contains: Vec<(String, bool)>,
}

fn parse_logql(query: &str) -> Option<LogQuery> {
    let open = query.find('{')?;
    let close = query[open..].find('}')? + open;
    let mut matchers = Vec::new();
    for part in query[open + 1..close].split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, regex, value) = if let Some((n, v)) = part.split_once("=~") {
            (n, true, v)
        } else {
            let (n, v) = part.split_once('=')?;
            (n, false, v)
        };
        matchers.push((name.trim().to_string(), regex, unquote(value.trim())));
    }
    let mut contains = Vec::new();
    let mut rest = query[close + 1..].trim();
    while !rest.is_empty() {
        let (op, after) = rest.split_at(2.min(rest.len()));
        let after = after.trim_start();
        let end = closing_quote(after)?;
        let literal = unquote(&after[..=end]);
        match op {
            "|=" => contains.push((literal, false)),
            "|~" => contains.push((literal.trim_start_matches("(?i)").replace('\\', ""), true)),
            _ => return None,
        }
        rest = after[end + 1..].trim();
    }
    Some(LogQuery { matchers, contains })
}

fn closing_quote(text: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in text.char_indices().skip(1) {
        match c {
            '\\' if !escaped => escaped = true,
            '"' if !escaped => return Some(i),
            _ => escaped = false,
        }
    }
    None
}

fn unquote(text: &str) -> String {
    let inner = text.strip_prefix('"').and_then(|t| t.strip_suffix('"')).unwrap_or(text);
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}

impl LogQuery {
    fn matches(&self, entry: &Entry) -> bool {
        let labels_ok = self.matchers.iter().all(|(name, regex, value)| {
            let actual = entry.labels.get(name).map(String::as_str).unwrap_or("");
            // The only regex the callers use is "match anything non-empty".
            if *regex {
                !actual.is_empty()
            } else {
                actual == value
            }
        });
        labels_ok
            && self.contains.iter().all(|(needle, fold)| {
                if *fold {
                    entry.line.to_lowercase().contains(&needle.to_lowercase())
                } else {
                    entry.line.contains(needle.as_str())
                }
            })
    }
}

fn select<'a>(state: &'a StackState, query: &str, req: &Request) -> Result<Vec<&'a Entry>, Answer> {
    let parsed =
        parse_logql(query).ok_or_else(|| Answer::text(400, &format!("parse error : syntax error in {query}")))?;
    let start: u128 = req.query.get("start").and_then(|s| s.parse().ok()).unwrap_or(0);
    let end: u128 = req.query.get("end").and_then(|s| s.parse().ok()).unwrap_or(u128::MAX);
    Ok(state.entries.iter().filter(|e| e.ts_ns >= start && e.ts_ns <= end && parsed.matches(e)).collect())
}

fn query_range(state: &StackState, req: &Request) -> Answer {
    let query = req.query.get("query").cloned().unwrap_or_default();
    if query.starts_with("sum") {
        return count_query(state, &query, req);
    }
    let mut found = match select(state, &query, req) {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    let limit: usize = req.query.get("limit").and_then(|l| l.parse().ok()).unwrap_or(100);
    // direction=backward: the newest `limit`, newest first.
    found.sort_by_key(|e| std::cmp::Reverse(e.ts_ns));
    found.truncate(limit);
    let mut streams: BTreeMap<Vec<(String, String)>, Vec<Value>> = BTreeMap::new();
    for entry in found {
        // Without `categorize-labels`, Loki returns structured metadata among the stream labels.
        let key = entry.labels.iter().chain(&entry.metadata).map(|(k, v)| (k.clone(), v.clone())).collect();
        streams.entry(key).or_default().push(json!([entry.ts_ns.to_string(), entry.line]));
    }
    let result: Vec<Value> = streams
        .into_iter()
        .map(|(labels, values)| json!({"stream": labels.into_iter().collect::<BTreeMap<_, _>>(), "values": values}))
        .collect();
    Answer::json(200, &json!({"status": "success", "data": {"resultType": "streams", "result": result, "stats": {}}}))
}

/// `sum(count_over_time(<log query>[<range>]))` or `sum by (<labels>) (count_over_time(…))`,
/// evaluated as Loki does at `start`, `start + step`, … up to `end`: each sample counts the
/// entries in `(t - range, t]`; a series has no sample where it counts nothing.
fn count_query(state: &StackState, query: &str, req: &Request) -> Answer {
    let bad = || Answer::text(400, &format!("parse error : syntax error in {query}"));
    let Some((by, inner)) = parse_count_query(query) else { return bad() };
    let Some((selector, range)) = inner.rsplit_once('[') else { return bad() };
    let Some(range_s) = range.strip_suffix(']').and_then(seconds) else { return bad() };
    let Some(parsed) = parse_logql(selector) else { return bad() };
    let number = |key: &str| req.query.get(key).and_then(|v| v.parse::<u128>().ok());
    let (Some(start), Some(end)) = (number("start"), number("end")) else { return bad() };
    let Some(step_s) = req.query.get("step").and_then(|s| seconds(s)) else { return bad() };
    let (range_ns, step_ns) = (range_s as u128 * 1_000_000_000, step_s as u128 * 1_000_000_000);
    let mut series: BTreeMap<BTreeMap<String, String>, Vec<Value>> = BTreeMap::new();
    let mut t = start;
    while t <= end {
        let mut counts: BTreeMap<BTreeMap<String, String>, u64> = BTreeMap::new();
        for entry in state.entries.iter().filter(|e| e.ts_ns > t.saturating_sub(range_ns) && e.ts_ns <= t) {
            if parsed.matches(entry) {
                let key = by.iter().filter_map(|l| Some((l.clone(), entry.labels.get(l)?.clone()))).collect();
                *counts.entry(key).or_default() += 1;
            }
        }
        for (key, count) in counts {
            series.entry(key).or_default().push(json!([(t / 1_000_000_000) as f64, count.to_string()]));
        }
        t += step_ns.max(1);
    }
    let result: Vec<Value> =
        series.into_iter().map(|(metric, values)| json!({"metric": metric, "values": values})).collect();
    Answer::json(200, &json!({"status": "success", "data": {"resultType": "matrix", "result": result, "stats": {}}}))
}

/// The grouping labels and the `count_over_time` argument of a count query.
fn parse_count_query(query: &str) -> Option<(Vec<String>, &str)> {
    let rest = query.strip_prefix("sum")?.trim_start();
    let (by, rest) = match rest.strip_prefix("by") {
        Some(after) => {
            let after = after.trim_start().strip_prefix('(')?;
            let (labels, rest) = after.split_once(')')?;
            (labels.split(',').map(|l| l.trim().to_string()).filter(|l| !l.is_empty()).collect(), rest.trim_start())
        }
        None => (Vec::new(), rest),
    };
    let inner = rest.strip_prefix('(')?.trim().strip_prefix("count_over_time(")?;
    Some((by, inner.strip_suffix(')')?.trim_end().strip_suffix(')')?))
}

/// `300`, `300s`, `5m`, `1h` as whole seconds.
fn seconds(text: &str) -> Option<u64> {
    let (number, unit) = match text.char_indices().last()? {
        (i, 's') => (&text[..i], 1),
        (i, 'm') => (&text[..i], 60),
        (i, 'h') => (&text[..i], 3600),
        _ => (text, 1),
    };
    Some(number.parse::<f64>().ok()? as u64 * unit)
}

fn labels(state: &StackState, req: &Request) -> Answer {
    let query = req.query.get("query").cloned().unwrap_or_else(|| "{}".into());
    match select(state, &query, req) {
        Ok(found) => {
            let mut names: Vec<&String> = found.iter().flat_map(|e| e.labels.keys()).collect();
            names.sort();
            names.dedup();
            Answer::json(200, &json!({"status": "success", "data": names}))
        }
        Err(answer) => answer,
    }
}

fn push(state: &mut StackState, req: &Request) -> Answer {
    let streams = if req.header("content-type") == Some("application/x-protobuf") {
        match probes::push::decode(&req.raw) {
            Ok(streams) => streams
                .into_iter()
                .map(|stream| {
                    let labels = parse_logql(&stream.labels).map(|q| q.matchers).unwrap_or_default();
                    let labels = labels.into_iter().map(|(name, _, value)| (name, value)).collect();
                    let entries = stream
                        .entries
                        .into_iter()
                        .map(|e| (e.ts_ns, e.line, e.metadata.into_iter().collect()))
                        .collect();
                    (labels, entries)
                })
                .collect::<Vec<(BTreeMap<String, String>, Vec<(u128, String, BTreeMap<String, String>)>)>>(),
            Err(err) => return Answer::text(400, &format!("{err:#}")),
        }
    } else {
        let Ok(body) = serde_json::from_str::<Value>(&req.body) else { return Answer::text(400, "not JSON") };
        body["streams"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|stream| {
                let labels = stream["stream"]
                    .as_object()
                    .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string())).collect())
                    .unwrap_or_default();
                let entries = stream["values"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|value| {
                        let ts_ns = value[0].as_str().and_then(|t| t.parse().ok()).unwrap_or(0);
                        (ts_ns, value[1].as_str().unwrap_or("").to_string(), BTreeMap::new())
                    })
                    .collect();
                (labels, entries)
            })
            .collect()
    };
    // Loki 3.7's order: the distributor drops entries older than reject_old_samples_max_age (the
    // rest go on), the tenant's rate limiter refuses the whole push, then each stream's ingester
    // drops entries too far behind its newest. Either kind of drop answers 400 for what was
    // dropped, after storing the rest.
    let now = now_ns();
    let mut too_old = Vec::new();
    let mut streams = streams;
    if let Some(max_age) = state.reject_old_samples_max_age {
        let oldest = now.saturating_sub(max_age.as_nanos());
        for (labels, entries) in &mut streams {
            entries.retain(|(ts_ns, _, _)| {
                let keep = *ts_ns >= oldest;
                if !keep {
                    too_old.push(format!(
                        "entry for stream '{}' has timestamp too old: {}, oldest acceptable timestamp is: {}",
                        go_labels(labels),
                        rfc3339(*ts_ns),
                        rfc3339(oldest)
                    ));
                }
                keep
            });
        }
    }
    let (lines, bytes) = streams
        .iter()
        .flat_map(|(_, entries)| entries.iter())
        .fold((0u64, 0u64), |(n, b), (_, line, _)| (n + 1, b + line.len() as u64));
    let second = (now / 1_000_000_000) as u64;
    if state.ingested_this_second.0 != second {
        state.ingested_this_second = (second, 0);
    }
    let forced = state.rate_limit_next_pushes > 0 && lines > 0;
    state.rate_limit_next_pushes -= u32::from(forced);
    if forced || state.ingested_this_second.1 + bytes > state.ingestion_limit_bytes_per_s {
        return Answer::text(
            429,
            &format!(
                "Ingestion rate limit exceeded for user fake (limit: {} bytes/sec) while attempting to ingest '{lines}' lines totaling '{bytes}' bytes, reduce log volume or contact your Loki administrator to see if the limit can be increased",
                state.ingestion_limit_bytes_per_s
            ),
        );
    }
    state.ingested_this_second.1 += bytes;
    let mut behind = None;
    for (labels, entries) in streams {
        let total = entries.len();
        let mut newest = state.entries.iter().filter(|e| e.labels == labels).map(|e| e.ts_ns).max();
        let mut ignored = Vec::new();
        for (ts_ns, line, metadata) in entries {
            let cutoff = newest.map(|n| n.saturating_sub(state.max_chunk_age.as_nanos() / 2));
            if cutoff.is_some_and(|cutoff| cutoff > ts_ns) {
                ignored.push((ts_ns, cutoff.unwrap_or_default()));
                continue;
            }
            newest = newest.max(Some(ts_ns));
            state.entries.push(Entry { labels: labels.clone(), ts_ns, line, metadata });
        }
        if !ignored.is_empty() && behind.is_none() {
            // The ingester names at most max_returned_stream_errors (10) entries.
            let mut text = String::new();
            for (ts_ns, cutoff) in ignored.iter().take(10) {
                text.push_str(&format!(
                    "entry with timestamp {} ignored, reason: 'entry too far behind, entry timestamp is: {}, oldest acceptable timestamp is: {}',\n",
                    go_time(*ts_ns),
                    rfc3339(*ts_ns),
                    rfc3339(*cutoff)
                ));
            }
            text.push_str(&format!(
                "user 'fake', total ignored: {} out of {total} for stream: {}",
                ignored.len(),
                go_labels(&labels)
            ));
            behind = Some(text);
        }
    }
    if let Some(text) = behind {
        return Answer::text(400, &format!("{text}\n"));
    }
    if !too_old.is_empty() {
        return Answer::text(400, &format!("{}\n", grouped(&too_old)));
    }
    Answer::text(204, "")
}

/// Errors as Loki's `GroupedErrors` joins them: one of each message, counted when repeated.
fn grouped(errors: &[String]) -> String {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for error in errors {
        *counts.entry(error).or_default() += 1;
    }
    let unique = counts.len();
    let parts: Vec<String> = counts
        .into_iter()
        .map(|(error, n)| if unique > 1 || n > 1 { format!("{n} errors like: {error}") } else { error.to_string() })
        .collect();
    parts.join("; ")
}

/// Labels as Go's `labels.Labels.String()` writes them: sorted, `{a="b", c="d"}`.
fn go_labels(labels: &BTreeMap<String, String>) -> String {
    let parts: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{{{}}}", parts.join(", "))
}

/// Go's `time.RFC3339` of a UTC time: whole seconds, `Z`.
fn rfc3339(ts_ns: u128) -> String {
    let s = (ts_ns / 1_000_000_000) as u64;
    let (y, m, d) = probes::time::civil_from_days((s / 86_400) as i64);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", s % 86_400 / 3600, s % 3600 / 60, s % 60)
}

/// Go's `time.Time.String()` of a UTC time: `2006-01-02 15:04:05.999999999 +0000 UTC`.
fn go_time(ts_ns: u128) -> String {
    let date = rfc3339(ts_ns).replace('T', " ").replace('Z', "");
    let nanos = format!("{:09}", ts_ns % 1_000_000_000);
    let fraction = nanos.trim_end_matches('0');
    let fraction = if fraction.is_empty() { String::new() } else { format!(".{fraction}") };
    format!("{date}{fraction} +0000 UTC")
}

/// `POST /loki/api/v1/delete?query=<selector>&start=<s>&end=<s>`: the compactor would delete
/// later; queries stop returning the lines at once, as here.
fn delete(state: &mut StackState, req: &Request) -> Answer {
    let param = |name: &str| req.query.get(name).cloned().unwrap_or_default();
    let (query, start, end) = (param("query"), param("start"), param("end"));
    let Some(selector) = parse_logql(&query).filter(|q| q.contains.is_empty()) else {
        return Answer::text(400, "invalid query: a delete request takes a stream selector");
    };
    let (Ok(start_s), Ok(end_s)) = (start.parse::<u128>(), end.parse::<u128>()) else {
        return Answer::text(400, "start and end must be Unix seconds");
    };
    state.entries.retain(|e| {
        let inside = e.ts_ns >= start_s * 1_000_000_000 && e.ts_ns <= (end_s + 1) * 1_000_000_000;
        !(inside && selector.matchers.iter().all(|(name, _, value)| e.labels.get(name) == Some(value)))
    });
    state.delete_requests.push((query, start, end));
    Answer::text(204, "")
}

fn authorised(state: &StackState, req: &Request) -> bool {
    let expected = format!("{}:{}", state.grafana_user, state.grafana_password);
    req.header("authorization").and_then(|h| h.strip_prefix("Basic ")).map(base64_decode).as_deref()
        == Some(expected.as_str())
}

fn datasource(state: &StackState, req: &Request, uid: &str) -> Answer {
    if !authorised(state, req) {
        return Answer::json(401, &json!({"message": "Unauthorized"}));
    }
    match (&state.loki_datasource_type, uid) {
        (Some(kind), "loki") => Answer::json(
            200,
            &json!({"id": 1, "uid": "loki", "name": "Loki", "type": kind, "url": "http://loki:3100", "access": "proxy"}),
        ),
        _ => Answer::json(404, &json!({"message": "Data source not found"})),
    }
}

fn ds_query(state: &StackState, req: &Request) -> Answer {
    if !authorised(state, req) {
        return Answer::json(401, &json!({"message": "Unauthorized"}));
    }
    let Ok(body) = serde_json::from_str::<Value>(&req.body) else { return Answer::text(400, "not JSON") };
    let query = &body["queries"][0];
    let expr = query["expr"].as_str().unwrap_or("");
    let found = match select(state, expr, req) {
        Ok(found) => found,
        Err(_) => {
            return Answer::json(
                200,
                &json!({"results": {"A": {"status": 400, "error": format!("parse error: {expr}")}}}),
            )
        }
    };
    let lines: Vec<&str> = found.iter().map(|e| e.line.as_str()).collect();
    let times: Vec<u128> = found.iter().map(|e| e.ts_ns / 1_000_000).collect();
    let labels: Vec<&BTreeMap<String, String>> = found.iter().map(|e| &e.labels).collect();
    let frame = json!({
        "schema": {"fields": [{"name": "labels", "type": "other"}, {"name": "Time", "type": "time"}, {"name": "Line", "type": "string"}]},
        "data": {"values": [labels, times, lines]},
    });
    Answer::json(200, &json!({"results": {"A": {"status": 200, "frames": [frame]}}}))
}

fn amp_query(state: &mut StackState, req: &Request) -> Answer {
    let query = req.query.get("query").cloned().unwrap_or_default();
    let signed = req.header("authorization").is_some_and(|a| a.starts_with("AWS4-HMAC-SHA256 Credential="))
        && req.header("x-amz-date").is_some();
    state.amp_queries.push((query.clone(), signed));
    if !signed {
        return Answer::json(403, &json!({"message": "Missing Authentication Token"}));
    }
    let label = |name: &str| {
        let start = query.find(&format!("{name}=\""))? + name.len() + 2;
        let end = query[start..].find('"')? + start;
        Some(query[start..end].to_string())
    };
    let (job, cluster) = (label("job"), label("cluster"));
    let series: Vec<&(String, String, f64)> = state
        .up
        .iter()
        .filter(|(j, c, _)| job.as_ref().is_none_or(|want| want == j) && cluster.as_ref().is_none_or(|want| want == c))
        .collect();
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0);
    let result: Vec<Value> = if query.starts_with("count by (job)") {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for (j, _, _) in &series {
            *counts.entry(j.as_str()).or_default() += 1;
        }
        counts.into_iter().map(|(j, n)| json!({"metric": {"job": j}, "value": [now, n.to_string()]})).collect()
    } else {
        series
            .iter()
            .map(|(j, c, v)| json!({"metric": {"__name__": "up", "job": j, "cluster": c, "instance": "localhost:9090"}, "value": [now, v.to_string()]}))
            .collect()
    };
    Answer::json(200, &json!({"status": "success", "data": {"resultType": "vector", "result": result}}))
}

/// `/api/v1/label/__name__/values?match[]={job="…", …}`: the names of the job's series.
fn amp_names(state: &mut StackState, req: &Request) -> Answer {
    let selector = req.query.get("match[]").cloned().unwrap_or_default();
    let signed = req.header("authorization").is_some_and(|a| a.starts_with("AWS4-HMAC-SHA256 Credential="))
        && req.header("x-amz-date").is_some();
    state.amp_queries.push((selector.clone(), signed));
    if !signed {
        return Answer::json(403, &json!({"message": "Missing Authentication Token"}));
    }
    let job = parse_logql(&selector)
        .and_then(|q| q.matchers.into_iter().find(|(name, _, _)| name == "job").map(|(_, _, value)| value));
    let names: BTreeSet<&str> = state
        .metric_names
        .iter()
        .filter(|(j, _)| job.as_ref().is_none_or(|want| want == j))
        .map(|(_, name)| name.as_str())
        .collect();
    Answer::json(200, &json!({"status": "success", "data": names}))
}

const ECS_TARGET: &str = "AmazonEC2ContainerServiceV20141113.";

fn ecs(state: &mut StackState, operation: &str, req: &Request) -> Answer {
    let Some(upstream) = state.ecs_upstream.clone() else {
        return ecs_error("ServerException", "the ECS proxy has no upstream (StackState::ecs_upstream)");
    };
    let answered = match operation {
        "ExecuteCommand" => execute_command(state, &upstream, req),
        "DescribeTasks" => describe_tasks(state, &upstream, req),
        "ListTasks" => list_tasks(&upstream, req),
        "DescribeServices" if !state.held_rollouts.is_empty() => describe_services(state, &upstream, req),
        _ => forward(&upstream, req, operation, &req.body),
    };
    answered.unwrap_or_else(|err| ecs_error("ServerException", &format!("ECS proxy: {err:#}")))
}

fn ecs_error(kind: &str, message: &str) -> Answer {
    Answer::new(400, "application/x-amz-json-1.1", json!({"__type": kind, "message": message}).to_string())
}

/// One ECS call to moto with the caller's headers (moto reads the region from the signature).
fn forward(upstream: &str, req: &Request, operation: &str, body: &str) -> anyhow::Result<Answer> {
    call_moto(upstream, req, "ecs", &format!("{ECS_TARGET}{operation}"), body)
}

/// A JSON-protocol call to moto as `service` (moto picks the backend by the signature's scope).
fn call_moto(upstream: &str, req: &Request, service: &str, target: &str, body: &str) -> anyhow::Result<Answer> {
    let addr = upstream.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = std::net::TcpStream::connect(addr).with_context(|| format!("connecting to {addr}"))?;
    // HTTP/1.0: the answer is never chunked and ends when the connection closes.
    let mut head = format!(
        "POST / HTTP/1.0\r\nHost: {addr}\r\nContent-Length: {}\r\nX-Amz-Target: {target}\r\n{PROXIED}: 1\r\n",
        body.len()
    );
    for (name, value) in &req.headers {
        if !["host", "content-length", "connection", "x-amz-target", "expect", "transfer-encoding"]
            .contains(&name.as_str())
        {
            let value = if name == "authorization" {
                value.replace("/ecs/aws4_request", &format!("/{service}/aws4_request"))
            } else {
                value.clone()
            };
            head.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    stream.write_all(format!("{head}\r\n{body}").as_bytes())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").context("moto's answer has no header end")?;
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).context("moto's answer has no status")?;
    let content_type = head
        .lines()
        .find_map(|l| {
            l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case("content-type")).map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "application/x-amz-json-1.1".into());
    Ok(Answer::new(status, &content_type, body.to_string()))
}

fn forward_json(upstream: &str, req: &Request, operation: &str, body: &Value) -> anyhow::Result<Value> {
    let answer = forward(upstream, req, operation, &body.to_string())?;
    anyhow::ensure!(answer.status == 200, "moto answered {operation} with {}: {}", answer.status, answer.body);
    serde_json::from_str(&answer.body).with_context(|| format!("moto's {operation} answer is not JSON"))
}

fn describe_services(state: &mut StackState, upstream: &str, req: &Request) -> anyhow::Result<Answer> {
    let body: Value = serde_json::from_str(&req.body).unwrap_or(Value::Null);
    let mut described = forward_json(upstream, req, "DescribeServices", &body)?;
    for service in described["services"].as_array_mut().into_iter().flatten() {
        if state.held_rollouts.contains(service["serviceName"].as_str().unwrap_or_default()) {
            let desired = service["desiredCount"].as_i64().unwrap_or(1);
            service["runningCount"] = json!(desired - 1);
            state.held_answers += 1;
        }
    }
    Ok(Answer::json(200, &described))
}

fn list_tasks(upstream: &str, req: &Request) -> anyhow::Result<Answer> {
    let body: Value = serde_json::from_str(&req.body).unwrap_or(Value::Null);
    let mut listed = forward_json(upstream, req, "ListTasks", &body)?;
    if let (Some(service), Some(arns)) = (body["serviceName"].as_str(), listed["taskArns"].as_array()) {
        let group = format!("service:{service}");
        let mut kept = Vec::new();
        if !arns.is_empty() {
            let described =
                forward_json(upstream, req, "DescribeTasks", &json!({"cluster": body["cluster"], "tasks": arns}))?;
            kept = described["tasks"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|t| t["group"] == group.as_str())
                .map(|t| t["taskArn"].clone())
                .collect();
        }
        listed["taskArns"] = Value::Array(kept);
    }
    Ok(Answer::json(200, &listed))
}

fn task_id(task_arn: &str) -> String {
    task_arn.rsplit('/').next().unwrap_or(task_arn).to_string()
}

fn describe_tasks(state: &StackState, upstream: &str, req: &Request) -> anyhow::Result<Answer> {
    let body: Value = serde_json::from_str(&req.body).unwrap_or(Value::Null);
    let mut described = forward_json(upstream, req, "DescribeTasks", &body)?;
    for task in described["tasks"].as_array_mut().into_iter().flatten() {
        let arn = task["taskArn"].as_str().unwrap_or_default().to_string();
        let definition = forward_json(
            upstream,
            req,
            "DescribeTaskDefinition",
            &json!({"taskDefinition": task["taskDefinitionArn"]}),
        )?;
        let containers: Vec<Value> = definition["taskDefinition"]["containerDefinitions"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|def| {
                let name = def["name"].as_str().unwrap_or_default();
                let key = (task_id(&arn), name.to_string());
                let stopped = state.stopped_containers.contains(&key);
                json!({
                    "containerArn": format!("{}/{name}", arn.replace(":task/", ":container/")),
                    "taskArn": arn,
                    "name": name,
                    "image": def["image"],
                    "runtimeId": format!("{}-{name}", key.0),
                    "lastStatus": if stopped { json!("STOPPED") } else { task["lastStatus"].clone() },
                    "exitCode": if stopped { json!(0) } else { Value::Null },
                })
            })
            .collect();
        task["containers"] = Value::Array(containers);
        let region = arn.split(':').nth(3).unwrap_or_default();
        let zone = state.task_zones.get(&task_id(&arn)).cloned().unwrap_or_else(|| format!("{region}a"));
        task["availabilityZone"] = zone.into();
    }
    Ok(Answer::json(200, &described))
}

fn execute_command(state: &mut StackState, upstream: &str, req: &Request) -> anyhow::Result<Answer> {
    let body: Value = serde_json::from_str(&req.body).unwrap_or(Value::Null);
    let (cluster, container, command) = (
        body["cluster"].as_str().unwrap_or_default(),
        body["container"].as_str().unwrap_or_default(),
        body["command"].as_str().unwrap_or_default(),
    );
    let described =
        forward_json(upstream, req, "DescribeTasks", &json!({"cluster": cluster, "tasks": [body["task"]]}))?;
    let Some(task) = described["tasks"].as_array().and_then(|t| t.first()) else {
        return Ok(ecs_error("InvalidParameterException", "The specified task is not found."));
    };
    if task["lastStatus"] != "RUNNING" {
        return Ok(ecs_error(
            "InvalidParameterException",
            "The execute command failed because the task is not running.",
        ));
    }
    let arn = task["taskArn"].as_str().unwrap_or_default().to_string();
    let id = task_id(&arn);
    state.execs.push(Exec { task_id: id.clone(), container: container.to_string(), command: command.to_string() });
    if container == "alloy" {
        let key = (id.clone(), container.to_string());
        if state.sidecar_restarts {
            *state.restarts.entry(key).or_default() += 1;
            log_sidecar_start(upstream, req, task, &id)?;
        } else {
            state.stopped_containers.insert(key);
        }
    } else if let Some(lines) = stdout_lines(command) {
        let service = task["group"]
            .as_str()
            .and_then(|g| g.strip_prefix("service:"))
            .and_then(|s| state.alloy_services.get(s))
            .cloned();
        if let Some(service) = service.filter(|_| state.ship_exec_lines) {
            let labels: BTreeMap<String, String> =
                [("service_name", service.as_str()), ("cluster", cluster), ("container", container)]
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect();
            let now = now_ns();
            for (i, line) in lines.into_iter().enumerate() {
                let metadata = [("task_id".to_string(), id.clone())].into();
                state.entries.push(Entry { labels: labels.clone(), ts_ns: now + i as u128, line, metadata });
            }
        }
    }
    let answer = json!({
        "clusterArn": task["clusterArn"],
        "containerArn": format!("{}/{container}", arn.replace(":task/", ":container/")),
        "containerName": container,
        "interactive": true,
        "taskArn": arn,
        "session": {"sessionId": format!("ecs-execute-command-{id}"), "streamUrl": "wss://ssmmessages.invalid/v1/data-channel/xtask-test", "tokenValue": "stand-in-token"},
    });
    Ok(Answer::new(200, "application/x-amz-json-1.1", answer.to_string()))
}

/// A restarted `alloy` container's start-up line, where its awslogs driver sends it: the group
/// and `<prefix>/alloy/<task id>` stream of its task definition's logConfiguration.
fn log_sidecar_start(upstream: &str, req: &Request, task: &Value, task_id: &str) -> anyhow::Result<()> {
    let definition =
        forward_json(upstream, req, "DescribeTaskDefinition", &json!({"taskDefinition": task["taskDefinitionArn"]}))?;
    let alloy = definition["taskDefinition"]["containerDefinitions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["name"] == "alloy");
    let Some(options) =
        alloy.map(|c| &c["logConfiguration"]).filter(|l| l["logDriver"] == "awslogs").map(|l| &l["options"])
    else {
        return Ok(());
    };
    let group = options["awslogs-group"].as_str().unwrap_or_default();
    let stream = format!("{}/alloy/{task_id}", options["awslogs-stream-prefix"].as_str().unwrap_or("ecs"));
    // An existing stream answers 400 (ResourceAlreadyExistsException): fine.
    call_moto(
        upstream,
        req,
        "logs",
        "Logs_20140328.CreateLogStream",
        &json!({"logGroupName": group, "logStreamName": stream}).to_string(),
    )?;
    let now_ms = (now_ns() / 1_000_000) as u64;
    let message = "level=info msg=\"now listening for http traffic\" service=http addr=127.0.0.1:12345";
    let events = json!({"logGroupName": group, "logStreamName": stream, "logEvents": [{"timestamp": now_ms, "message": message}]});
    let answer = call_moto(upstream, req, "logs", "Logs_20140328.PutLogEvents", &events.to_string())?;
    anyhow::ensure!(answer.status == 200, "moto refused the sidecar's log line: {}", answer.body);
    Ok(())
}

/// The lines `/bin/sh -c 'for i in 1 2; do echo <words> $i/2; done > /proc/1/fd/1'` writes to the
/// container's stdout; None for any other command.
fn stdout_lines(command: &str) -> Option<Vec<String>> {
    let script = command.strip_prefix("/bin/sh -c '")?.strip_suffix('\'')?;
    let (numbers, rest) = script.strip_prefix("for i in ")?.split_once("; do echo ")?;
    let template = rest.strip_suffix("; done > /proc/1/fd/1")?;
    Some(numbers.split_whitespace().map(|n| template.replace("$i", n)).collect())
}

fn base64_decode(text: &str) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bits: u32 = 0;
    let mut count = 0;
    let mut out = Vec::new();
    for c in text.trim().bytes().take_while(|c| *c != b'=') {
        let Some(v) = TABLE.iter().position(|t| *t == c) else { break };
        bits = (bits << 6) | v as u32;
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Writes a `session-manager-plugin` stand-in into `dir`, run by `python` (the venv's). It is
/// called as the AWS CLI calls the real one, `session-manager-plugin <response> <region>
/// StartSession <profile> <params JSON> <endpoint>`, where `<response>` may instead name the
/// environment variable holding it (`AWS_SSM_START_SESSION_RESPONSE…`, read as the real plugin
/// reads it); it listens on the requested `localPortNumber` and forwards each connection to the
/// loopback address `STANDIN_FORWARD` maps the requested `portNumber` to
/// (`3100=127.0.0.1:5000,3000=…`). Each call (argv, the response it read, its `AWS_*`
/// environment, pid) is appended to `STANDIN_PLUGIN_LOG`. An ECS Exec session (no document
/// parameters) is logged too and ends at once: the stand-in ECS applied its command when it
/// answered `ExecuteCommand`. With `STANDIN_PLUGIN_RECORD_ONLY` set, every call ends once logged;
/// `STANDIN_PLUGIN_VERSION` is the version it prints (1.2.764.0 unless set).
pub fn install_session_manager_plugin(dir: &Path, python: &Path) -> anyhow::Result<PathBuf> {
    let path = dir.join("session-manager-plugin");
    let script = format!("#!{}\n{}", python.display(), PLUGIN_SCRIPT);
    std::fs::write(&path, script).with_context(|| format!("writing {}", path.display()))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
    Ok(path)
}

const PLUGIN_SCRIPT: &str = r#"# session-manager-plugin stand-in, written by the standins crate for a test.
import json, os, signal, socket, sys, threading

if sys.argv[1:2] == ["--version"]:
    print(os.environ.get("STANDIN_PLUGIN_VERSION", "1.2.764.0"))
    sys.exit(0)

# Run bare (as `aws ecs execute-command` does first, to see that it is installed).
if len(sys.argv) == 1:
    print("The Session Manager plugin was installed successfully. Use the AWS CLI to start a session.")
    sys.exit(0)

# As the real plugin: argv[1] may name the environment variable that holds the response.
response = sys.argv[1]
if response.startswith("AWS_SSM_START_SESSION_RESPONSE"):
    response = os.environ[response]
response = json.loads(response)

with open(os.environ["STANDIN_PLUGIN_LOG"], "a") as log:
    env = {k: v for k, v in os.environ.items() if k.startswith("AWS_")}
    log.write(json.dumps({"tool": "session-manager-plugin", "argv": sys.argv[1:], "response": response, "env": env, "pid": os.getpid()}) + "\n")

# Record only: a test comparing what two callers hand the plugin needs no session carried.
if os.environ.get("STANDIN_PLUGIN_RECORD_ONLY"):
    sys.exit(0)

# SIGINT is how a session is ended politely; SIGTERM the impolite way. Either: exit now.
signal.signal(signal.SIGINT, lambda *_: os._exit(0))
signal.signal(signal.SIGTERM, lambda *_: os._exit(0))

# An ECS Exec session (no document parameters): the stand-in ECS already applied the command.
request = json.loads(sys.argv[5])
if "Parameters" not in request:
    print("Starting session with SessionId: " + response["sessionId"], flush=True)
    print("Exiting session with sessionId: " + response["sessionId"] + ".", flush=True)
    sys.exit(0)

params = request["Parameters"]
remote_port, local_port = params["portNumber"][0], int(params["localPortNumber"][0])
forward = dict(item.split("=", 1) for item in os.environ["STANDIN_FORWARD"].split(",") if item)
host, port = forward[remote_port].rsplit(":", 1)
assert host.startswith("127."), "the stand-in forwards to loopback only"

server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", local_port))
server.listen(16)
print("Port %d opened for sessionId stand-in." % local_port, flush=True)
print("Waiting for connections...", flush=True)

def pump(src, dst):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass

def handle(client):
    try:
        upstream = socket.create_connection((host, int(port)), timeout=10)
        upstream.settimeout(None)
    except OSError:
        client.close()
        return
    back = threading.Thread(target=pump, args=(upstream, client), daemon=True)
    back.start()
    pump(client, upstream)
    back.join()
    client.close()
    upstream.close()

while True:
    conn, _ = server.accept()
    threading.Thread(target=handle, args=(conn,), daemon=True).start()
"#;

#[cfg(test)]
mod tests {
    use super::*;

    fn protobuf_push(streams: &[probes::push::Stream]) -> Request {
        let raw = probes::push::encode(streams);
        Request {
            method: "POST".into(),
            path: "/loki/api/v1/push".into(),
            query: BTreeMap::new(),
            headers: [("content-type".to_string(), "application/x-protobuf".to_string())].into(),
            body: String::from_utf8_lossy(&raw).into_owned(),
            raw,
        }
    }

    #[test]
    fn a_protobuf_push_keeps_labels_and_metadata_and_a_push_past_the_limit_is_refused_whole() {
        let entry = |line: &str| probes::push::Entry {
            ts_ns: now_ns(),
            line: line.into(),
            metadata: vec![("task_id".into(), "abc".into())],
        };
        let stream = |lines: &[&str]| probes::push::Stream {
            labels: r#"{service_name="xtask-capacity", cluster="c"}"#.into(),
            entries: lines.iter().map(|l| entry(l)).collect(),
        };
        let mut state = StackState { ingestion_limit_bytes_per_s: 10, ..StackState::default() };
        assert_eq!(push(&mut state, &protobuf_push(&[stream(&["12345"])])).status, 204);
        assert_eq!(state.entries[0].labels["service_name"], "xtask-capacity");
        assert_eq!(state.entries[0].metadata["task_id"], "abc");
        // 5 of 10 bytes taken this second: 6 more are refused, nothing of them stored. (A
        // second boundary in between would let them through: the test retries once.)
        let answer = push(&mut state, &protobuf_push(&[stream(&["123", "456"])]));
        let answer = if answer.status == 204 {
            push(&mut state, &protobuf_push(&[stream(&["123456789", "0"])]))
        } else {
            answer
        };
        assert_eq!(answer.status, 429);
        assert!(
            answer.body.contains("Ingestion rate limit exceeded for user fake (limit: 10 bytes/sec)"),
            "{}",
            answer.body
        );
        assert!(push(&mut state, &protobuf_push(&[])).status == 204);
        let mut bad = protobuf_push(&[]);
        bad.raw = b"not snappy".to_vec();
        assert_eq!(push(&mut state, &bad).status, 400);
    }

    // Loki 3.7.6's rules and texts: pkg/distributor/validator.go (greater_than_max_sample_age),
    // pkg/ingester/stream.go with pkg/chunkenc/interface.go (too far behind: max_chunk_age / 2).
    #[test]
    fn entries_too_old_or_too_far_behind_their_stream_are_refused_as_loki_does() {
        let hour: u128 = 3600 * 1_000_000_000;
        let now = now_ns() / 1_000_000_000 * 1_000_000_000;
        let stream = |labels: &str, ts: &[u128]| probes::push::Stream {
            labels: labels.into(),
            entries: ts
                .iter()
                .map(|t| probes::push::Entry { ts_ns: *t, line: format!("at {t}"), metadata: vec![] })
                .collect(),
        };
        let live = r#"{service_name="worker", cluster="c"}"#;
        let mut state = StackState::default();
        assert_eq!(push(&mut state, &protobuf_push(&[stream(live, &[now])])).status, 204);
        // Within the hour behind the newest: kept; 1 h 0.5 s behind: ignored, the rest stored.
        let far = now - hour - 500_000_000;
        let answer = push(&mut state, &protobuf_push(&[stream(live, &[now - hour + 1, far])]));
        assert_eq!(answer.status, 400);
        assert_eq!(
            answer.body,
            format!(
                "entry with timestamp {} ignored, reason: 'entry too far behind, entry timestamp is: {}, oldest acceptable timestamp is: {}',\n\
                 user 'fake', total ignored: 1 out of 2 for stream: {{cluster=\"c\", service_name=\"worker\"}}\n",
                go_time(far),
                rfc3339(far),
                rfc3339(now - hour)
            )
        );
        assert!(go_time(far).ends_with(".5 +0000 UTC"), "{}", go_time(far));
        assert_eq!(state.entries.len(), 2);
        // A stream of its own has no newest yet: oldest first, nothing is behind.
        let own = r#"{service_name="worker", cluster="c", backfill="x"}"#;
        assert_eq!(push(&mut state, &protobuf_push(&[stream(own, &[now - 5 * hour, now - 3 * hour])])).status, 204);
        // Older than reject_old_samples_max_age (168h): refused at the distributor, the rest kept.
        let old = now - 169 * hour;
        let answer = push(&mut state, &protobuf_push(&[stream(own, &[old, old, now - 2 * hour])]));
        assert_eq!(answer.status, 400);
        let one = format!(
            "entry for stream '{{backfill=\"x\", cluster=\"c\", service_name=\"worker\"}}' has timestamp too old: {}, oldest acceptable timestamp is: {}",
            rfc3339(old),
            rfc3339(now_ns() - 168 * hour)
        );
        assert!(answer.body == format!("2 errors like: {one}\n"), "{}\nwanted 2 errors like: {one}", answer.body);
        assert_eq!(state.entries.len(), 5);
        state.reject_old_samples_max_age = None;
        assert_eq!(push(&mut state, &protobuf_push(&[stream(r#"{a="b"}"#, &[old])])).status, 204);
        // A rate-limited push stores nothing.
        state.rate_limit_next_pushes = 1;
        let answer = push(&mut state, &protobuf_push(&[stream(own, &[now])]));
        assert_eq!(answer.status, 429);
        assert!(answer.body.starts_with("Ingestion rate limit exceeded for user fake"), "{}", answer.body);
        assert_eq!(state.entries.len(), 6);
        assert_eq!(push(&mut state, &protobuf_push(&[stream(own, &[now])])).status, 204);
    }

    #[test]
    fn understands_the_logql_the_probes_send() {
        let q = parse_logql(r#"{service_name="worker", cluster=~".+"} |~ "(?i)error" |= "x\"y""#).unwrap();
        assert_eq!(q.matchers.len(), 2);
        assert_eq!(q.contains, [("error".to_string(), true), ("x\"y".to_string(), false)]);
        let entry = |line: &str| Entry {
            labels: [("service_name".to_string(), "worker".to_string()), ("cluster".to_string(), "c".to_string())]
                .into(),
            ts_ns: 1,
            line: line.into(),
            metadata: BTreeMap::new(),
        };
        assert!(q.matches(&entry("ERROR x\"y")));
        assert!(!q.matches(&entry("info x\"y")));
        assert!(parse_logql("up").is_none());
    }

    #[test]
    fn counts_as_loki_does_per_step_over_left_open_ranges() {
        let entry = |container: &str, ts_s: u128| Entry {
            labels: [("service_name", "worker"), ("container", container)]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ts_ns: ts_s * 1_000_000_000,
            line: "x".into(),
            metadata: BTreeMap::new(),
        };
        let state = StackState {
            // 600 s is the end of the first range, not the start of the second.
            entries: vec![entry("a", 301), entry("a", 600), entry("b", 601), entry("a", 900)],
            ..StackState::default()
        };
        let request = |query: &str| Request {
            method: "GET".into(),
            path: "/loki/api/v1/query_range".into(),
            query: [("query", query), ("start", "600000000000"), ("end", "900000000000"), ("step", "300")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            headers: BTreeMap::new(),
            body: String::new(),
            raw: Vec::new(),
        };
        let answer = |query: &str| -> Value {
            let req = request(query);
            serde_json::from_str(&query_range(&state, &req).body).unwrap()
        };
        let total = answer(r#"sum(count_over_time({service_name="worker"}[5m]))"#);
        assert_eq!(total["data"]["resultType"], "matrix");
        assert_eq!(total["data"]["result"][0]["values"], json!([[600.0, "2"], [900.0, "2"]]));
        let by = answer(r#"sum by (container) (count_over_time({service_name="worker"}[5m]))"#);
        assert_eq!(by["data"]["result"][0]["metric"], json!({"container": "a"}));
        assert_eq!(by["data"]["result"][0]["values"], json!([[600.0, "2"], [900.0, "1"]]));
        assert_eq!(by["data"]["result"][1]["values"], json!([[900.0, "1"]]));
        assert_eq!(query_range(&state, &request("sum(count_over_time({x}))")).status, 400);
    }

    #[test]
    fn reads_the_lines_an_exec_writes_to_stdout() {
        let lines = stdout_lines("/bin/sh -c 'for i in 1 2; do echo xtask-p1 abc $i/2; done > /proc/1/fd/1'").unwrap();
        assert_eq!(lines, ["xtask-p1 abc 1/2", "xtask-p1 abc 2/2"]);
        assert!(stdout_lines("/bin/sh -c 'kill 1'").is_none());
    }

    #[test]
    fn decodes_basic_auth() {
        assert_eq!(base64_decode("YWRtaW46czNjcmV0"), "admin:s3cret");
    }
}

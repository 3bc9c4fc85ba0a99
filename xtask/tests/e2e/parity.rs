//! `cargo xtask verify parity` end to end: CloudWatch lines in moto, Loki's in the stand-in, and
//! the gate `cleanup-adot --execute` keeps on the recorded result.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use crate::common::*;
use serde_json::{json, Value};
use standins::http::{Answer, HttpServer, Request};
use standins::observability::Entry;

pub const WINDOW: u64 = 300;

pub fn now_s() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

/// The end of the last window the command counts (it leaves out the 3 minutes before now).
pub fn last_closed() -> u64 {
    (now_s() - 180) / WINDOW * WINDOW
}

/// Lines in the service's main-container stream in CloudWatch, at `ts_s` (one ms apart).
pub fn cloudwatch(world: &World, service: &str, ts_s: u64, lines: &[&str]) {
    let (group, stream) = (world.log_group(service), format!("ecs/{}/0123456789abcdef", container(service)));
    let _ =
        world.api.json(&probes::aws::LOGS, "CreateLogStream", &json!({"logGroupName": group, "logStreamName": stream}));
    let events: Vec<Value> =
        lines.iter().enumerate().map(|(i, l)| json!({"timestamp": ts_s * 1000 + i as u64, "message": l})).collect();
    world.call("logs", "PutLogEvents", json!({"logGroupName": group, "logStreamName": stream, "logEvents": events}));
}

/// The same lines in "Loki", labelled as the service's Alloy sidecar labels them.
pub fn loki(world: &World, service: &str, ts_s: u64, lines: &[&str]) {
    let labels: BTreeMap<String, String> =
        [("service_name", service.to_string()), ("cluster", world.cluster.clone()), ("container", container(service))]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
    let mut state = world.stack.state();
    for (i, line) in lines.iter().enumerate() {
        let ts_ns = u128::from(ts_s) * 1_000_000_000 + i as u128 * 1_000_000;
        state.entries.push(Entry { labels: labels.clone(), ts_ns, line: line.to_string(), metadata: BTreeMap::new() });
    }
}

pub fn record(world: &World) -> Value {
    let path = world.env.repo().join("envs/dev.parity.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("the parity record")).expect("JSON")
}

// Equal counts pass; a service without traffic and a still-open window are shown, not counted;
// lines missing from Loki fail with samples; duplicates are reported apart; the gate follows.
// req: 8.3
#[test]
fn parity_counts_windows_shows_missing_and_duplicate_lines_and_gates_the_cleanup() {
    let world = World::deployed(&["worker", "history"], healthy_stack(&example_cluster(), &["worker", "history"]));
    settings::set(&world.env.path, &["loki", "enabled"], true.into()).unwrap();
    let closed = last_closed();
    // Two closed windows with traffic; history has none.
    let (a, b) = (closed - 2 * WINDOW + 100, closed - WINDOW + 100);
    let first =
        [r#"{"level":"info","msg":"one"}"#, r#"{"level":"info","msg":"two"}"#, r#"{"level":"info","msg":"three"}"#];
    cloudwatch(&world, "worker", a, &first);
    loki(&world, "worker", a, &first);
    cloudwatch(&world, "worker", b, &["four"]);
    loki(&world, "worker", b, &["four"]);
    // Still open: in CloudWatch only, as if Alloy had not shipped it yet.
    cloudwatch(&world, "worker", now_s(), &["just written"]);

    let run = world.xtask(&["verify", "parity", "--since", "1h"]);
    run.assert_code(0);
    let out = &run.stdout;
    assert!(out.starts_with("parity (env dev): PASS\n"), "{out}");
    // worker, temporal-worker, date, HH:MM–HH:MM, CloudWatch, Loki, difference.
    let row = |out: &str, end: u64, cw: u64, loki: u64| {
        let want = [cw.to_string(), loki.to_string(), format!("{:+}", loki as i64 - cw as i64)];
        out.lines().any(|l| {
            let cells: Vec<&str> = l.split_whitespace().collect();
            cells.len() >= 7
                && cells[..2] == ["worker", "temporal-worker"]
                && cells[3] == format!("{}–{}", hhmm(end - WINDOW), hhmm(end))
                && cells[4..7] == want
        })
    };
    assert!(row(out, closed - WINDOW, 3, 3) && row(out, closed, 1, 1), "{out}");
    assert!(out.contains(" 10 window(s) without a line on either side"), "{out}");
    assert!(
        out.lines().any(|l| l.starts_with("  history ")
            && l.ends_with("no line in CloudWatch or Loki in the covered windows (no traffic)")),
        "{out}"
    );
    assert!(out.contains(&format!("  open: {}–", full(closed))) && out.contains("not counted (still open"), "{out}");
    // The sidecar's own CloudWatch stream (ecs/alloy/) is never compared: Alloy drops it by design.
    assert!(!out.contains(" alloy "), "{out}");
    assert!(
        out.contains("FilterLogEvents request(s)") && out.contains("Logs Insights would scan at least that"),
        "{out}"
    );
    assert!(out.contains("× $0.0057/GB"), "eu-west-1's price from data/prices.toml:\n{out}");
    assert!(run.stderr.contains(": CloudWatch Logs FilterLogEvents"), "{}", run.stderr);
    assert!(run.stderr.contains("sum by (container) (count_over_time({service_name=\"worker\""), "{}", run.stderr);
    let recorded = record(&world);
    assert_eq!(recorded["services"]["worker"]["passed"], true);
    assert_eq!(recorded["services"]["worker"]["cloudwatch_lines"], 4);
    assert_eq!(recorded["services"]["history"]["cloudwatch_lines"], 0);
    assert_eq!(recorded["services"]["worker"]["to"], closed);
    world.assert_no_tunnel_left();

    // One hour is less than the gate's 24: cleanup-adot's dry run shows why --execute would refuse.
    for service in ["matching", "frontend"] {
        settings::set_collector(&world.env.path, service, settings::Collector::Alloy).unwrap();
    }
    let run = world.xtask(&["cleanup-adot"]);
    run.assert_code(2);
    assert!(
        run.stdout.contains("worker's passing run covers 1h, less than migration.parity_hours = 24"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("matching has no parity result"), "{}", run.stdout);
    assert!(run.stderr.contains("run `cargo xtask verify parity --env dev --since 24h` first"), "{}", run.stderr);
    let run = world.xtask(&["cleanup-adot", "--execute"]);
    run.assert_code(2);
    assert!(run.stderr.contains("cargo xtask verify parity --env dev --since 24h"), "{}", run.stderr);
    assert!(
        !run.stderr.contains("FilterLogEvents") && !run.stderr.contains("terraform"),
        "refused before any call:\n{}",
        run.stderr
    );
    for service in ["matching", "frontend"] {
        settings::set_collector(&world.env.path, service, settings::Collector::Adot).unwrap();
    }

    // Two lines never reach Loki; one reaches it twice (a restarted sidecar re-reading).
    cloudwatch(&world, "worker", b + 10, &["lost one", "lost two", "twice"]);
    loki(&world, "worker", b + 10, &["twice", "twice"]);
    loki(&world, "worker", a + 10, &[r#"{"level":"info","msg":"one"}"#]);
    let run = world.xtask(&["verify", "parity", "--service", "worker", "--since", "1h"]);
    run.assert_code(1);
    let out = &run.stdout;
    assert!(out.starts_with("parity (env dev): FAIL\n"), "{out}");
    assert!(row(out, closed, 4, 3) && out.contains("-1  FAIL"), "{out}");
    assert!(row(out, closed - WINDOW, 3, 4) && out.contains("+1  duplicates"), "{out}");
    // By content the failing window lost two lines (one "twice" too many hides one in the count).
    assert!(
        out.contains(&format!("missing from Loki, worker/temporal-worker, window ending {} (by content):\n    1× lost one\n    1× lost two\n", full(closed))),
        "{out}"
    );
    // Duplicates come from the window with the most extra lines.
    assert!(
        out.contains(&format!("duplicates in Loki (nothing lost), worker/temporal-worker, window ending {} (by content):\n    1× more {}\n", full(closed - WINDOW), first[0])),
        "{out}"
    );
    assert!(!out.contains("history"), "--service worker only:\n{out}");
    assert!(run.stderr.contains("error: parity failed: Loki has fewer lines than CloudWatch: worker/temporal-worker (1 window(s), 1 line(s) short)"), "{}", run.stderr);
    let recorded = record(&world);
    assert_eq!(recorded["services"]["worker"]["passed"], false);
    assert_eq!(recorded["services"]["worker"]["missing_lines"], 1);
    assert_eq!(recorded["services"]["history"]["passed"], true, "history's result stays");

    let run = world.xtask(&["verify", "parity", "--service", "worker", "--since", "1h", "--json"]);
    run.assert_code(1);
    let report: Value = serde_json::from_str(&run.stdout).expect("--json prints only JSON on stdout");
    assert_eq!(report["passed"], false);
    let worker = &report["services"][0]["containers"][0];
    assert_eq!(worker["container"], "temporal-worker");
    assert_eq!(worker["windows"].as_array().unwrap().len(), 12);
    assert_eq!(
        worker["windows"][11],
        json!({"start": closed - WINDOW, "end": closed, "cloudwatch": 4, "loki": 3, "difference": -1, "backfilled": 0})
    );
    assert_eq!(worker["missing_samples"], json!([{"line": "lost one", "count": 1}, {"line": "lost two", "count": 1}]));
    assert_eq!(report["open"]["counted"], false);
    assert!(report["cost"]["gb_read"].as_f64().unwrap() > 0.0, "{}", report["cost"]);

    // Arguments and the phase order first, without AWS.
    let run = world.xtask(&["verify", "parity", "--since", "soon"]);
    run.assert_code(2);
    assert!(run.stderr.contains("invalid duration `soon`"), "{}", run.stderr);
    let run = world.xtask(&["verify", "5", "--since", "1h"]);
    run.assert_code(2);
    assert!(run.stderr.contains("--since applies to parity only"), "{}", run.stderr);
    let run = world.xtask(&["verify", "parity", "--service", "matching"]);
    run.assert_code(2);
    assert!(run.stderr.contains("matching does not run Alloy"), "{}", run.stderr);
}

/// `HH:MM` of a window end as the table prints it.
pub fn hhmm(s: u64) -> String {
    full(s)[11..].to_string()
}

/// `YYYY-MM-DD HH:MM` (UTC).
pub fn full(s: u64) -> String {
    let days = (s / 86_400) as i64;
    let (y, m, d) = civil(days);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}", s % 86_400 / 3600, s % 3600 / 60)
}

/// A CloudWatch Logs endpoint in front of moto that answers the first `throttle` FilterLogEvents
/// calls with ThrottlingException, as CloudWatch does past the account's rate quota.
/// Counts every FilterLogEvents call, refused or answered.
pub fn throttling_proxy(upstream: String, throttle: u32) -> (HttpServer, Arc<AtomicU32>) {
    let calls = Arc::new(AtomicU32::new(0));
    let counter = Arc::clone(&calls);
    let server = fault_proxy(upstream, move |req: &Request| {
        let target = req.header("x-amz-target").unwrap_or_default();
        (target.ends_with(".FilterLogEvents") && counter.fetch_add(1, Ordering::SeqCst) < throttle)
            .then(|| Answer::json(400, &json!({"__type": "ThrottlingException", "message": "Rate exceeded"})))
    });
    (server, calls)
}

// A throttled CloudWatch read is retried, and the counts come out as without throttling; past the
// retries, the run fails naming the throttling and records nothing.
#[test]
fn a_throttled_cloudwatch_read_is_retried_and_counts_the_same() {
    let world = World::deployed(&["worker"], healthy_stack(&example_cluster(), &["worker"]));
    settings::set(&world.env.path, &["loki", "enabled"], true.into()).unwrap();
    let at = last_closed() - WINDOW + 60;
    cloudwatch(&world, "worker", at, &["a", "b"]);
    loki(&world, "worker", at, &["a", "b"]);
    let (proxy, calls) = throttling_proxy(world.moto.endpoint(), 2);
    let mut command = world.xtask_command(&["verify", "parity", "--since", "30m"]);
    command.env("AWS_ENDPOINT_URL_CLOUDWATCH_LOGS", proxy.url());
    let run = run_xtask(command, "verify parity (throttled twice)");
    run.assert_code(0);
    assert_eq!(calls.load(Ordering::SeqCst), 3, "2 refused, then the third attempt answered");
    let retries = run.stderr.matches("CloudWatch Logs FilterLogEvents: HTTP 400 ThrottlingException; attempt");
    assert_eq!(retries.count(), 2, "{}", run.stderr);
    assert!(run.stdout.starts_with("parity (env dev): PASS\n"), "{}", run.stdout);
    assert_eq!(record(&world)["services"]["worker"]["cloudwatch_lines"], 2);

    // The SDKs' standard mode: 3 attempts in all, unless AWS_MAX_ATTEMPTS says otherwise.
    let (proxy, calls) = throttling_proxy(world.moto.endpoint(), 100);
    std::fs::remove_file(world.env.repo().join("envs/dev.parity.json")).unwrap();
    let mut command = world.xtask_command(&["verify", "parity", "--since", "30m"]);
    command.env("AWS_ENDPOINT_URL_CLOUDWATCH_LOGS", proxy.url());
    let run = run_xtask(command, "verify parity (always throttled)");
    run.assert_code(1);
    assert!(
        run.stderr.contains("FilterLogEvents was refused 3 times: HTTP 400: ThrottlingException: Rate exceeded"),
        "{}",
        run.stderr
    );
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert!(!world.env.repo().join("envs/dev.parity.json").exists(), "a failed read records no result");

    let (proxy, calls) = throttling_proxy(world.moto.endpoint(), 4);
    let mut command = world.xtask_command(&["verify", "parity", "--since", "30m"]);
    command.env("AWS_ENDPOINT_URL_CLOUDWATCH_LOGS", proxy.url()).env("AWS_MAX_ATTEMPTS", "5");
    let run = run_xtask(command, "verify parity (throttled 4 times, 5 attempts)");
    run.assert_code(0);
    assert_eq!(calls.load(Ordering::SeqCst), 5, "4 refused, then the fifth attempt answered");

    let mut command = world.xtask_command(&["verify", "parity", "--since", "30m"]);
    command.env("AWS_MAX_ATTEMPTS", "none");
    let run = run_xtask(command, "verify parity (AWS_MAX_ATTEMPTS=none)");
    run.assert_code(2);
    assert!(run.stderr.contains("AWS_MAX_ATTEMPTS is \"none\": it must be a whole number"), "{}", run.stderr);
}

// A plan whose output cloudwatch_parallel_run goes from true to false is refused before anything
// is applied until a passing parity run covers the last day; then it goes ahead.
// req: 8.1
#[test]
fn a_plan_turning_the_parallel_run_off_waits_for_parity() {
    let world = World::deployed(&["worker"], healthy_stack(&example_cluster(), &["worker"]));
    settings::set(&world.env.path, &["loki", "enabled"], true.into()).unwrap();
    let plan = json!({
        "resource_changes": [{"address": "module.temporal_worker.aws_ecs_task_definition.this", "change": {"actions": ["update"]}}],
        "output_changes": {"cloudwatch_parallel_run": {"actions": ["update"], "before": true, "after": false}},
    });
    world.set_terraform(&world.outputs(), &plan, None);
    let parallel_run =
        |on: bool| settings::set(&world.env.path, &["migration", "cloudwatch_parallel_run"], on.into()).unwrap();
    parallel_run(false);
    let applied = || world.terraform_calls().iter().filter(|argv| argv[0] == "apply").count();

    for args in [&["deploy", "baseline"][..], &["deploy", "baseline", "--execute"]] {
        let run = world.xtask(args);
        run.assert_code(2);
        assert!(
            run.stderr
                .contains("refusing: this plan turns cloudwatch_parallel_run off, and worker has no parity result"),
            "{}",
            run.stderr
        );
        assert!(
            run.stderr.contains("run `cargo xtask verify parity --env dev --since 24h` first; nothing was applied"),
            "{}",
            run.stderr
        );
    }
    assert_eq!(applied(), 0);

    // Parity is checked while CloudWatch still gets the lines, and not after.
    let run = world.xtask(&["verify", "parity"]);
    run.assert_code(2);
    assert!(
        run.stderr.contains("migration.cloudwatch_parallel_run = false: CloudWatch no longer gets the services' lines"),
        "{}",
        run.stderr
    );
    parallel_run(true);
    world.xtask(&["verify", "parity"]).assert_code(0);
    parallel_run(false);
    world.xtask(&["deploy", "baseline", "--execute"]).assert_code(0);
    assert_eq!(applied(), 1);
}

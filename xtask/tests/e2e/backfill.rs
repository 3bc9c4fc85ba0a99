//! `cargo xtask backfill` end to end: CloudWatch's lines in moto, Loki's in the stand-in, which
//! refuses what Loki 3.7.6 refuses (entries too far behind their stream's newest, entries older
//! than reject_old_samples_max_age) with Loki's 400s, so a backfill that ignored those rules fails.

use std::sync::atomic::Ordering;

use crate::common::*;
use crate::parity::{cloudwatch, full, last_closed, loki, now_s, record, throttling_proxy, WINDOW};
use serde_json::Value;

const HOUR: u64 = 3600;
/// The stream the `cloudwatch` helper writes: `ecs/<container>/<task id>`.
const TASK: &str = "0123456789abcdef";

fn world() -> World {
    let world = World::deployed(&["worker"], healthy_stack(&example_cluster(), &["worker"]));
    settings::set(&world.env.path, &["loki", "enabled"], true.into()).unwrap();
    world
}

/// The stand-in's backfilled entries: (ms timestamp, line, task_id), oldest first.
fn backfilled(world: &World) -> Vec<(u64, String, String)> {
    let mut found: Vec<(u64, String, String)> = world
        .stack
        .state()
        .entries
        .iter()
        .filter(|e| e.labels.contains_key("backfill"))
        .map(|e| {
            assert_eq!(e.labels["service_name"], "worker");
            assert_eq!(e.labels["cluster"], world.cluster);
            assert_eq!(e.labels["container"], container("worker"));
            assert_eq!(e.ts_ns % 1_000_000, 0, "CloudWatch's millisecond, as it was");
            ((e.ts_ns / 1_000_000) as u64, e.line.clone(), e.metadata.get("task_id").cloned().unwrap_or_default())
        })
        .collect();
    found.sort();
    found
}

fn pushes(world: &World) -> usize {
    world.stack.state().requests.iter().filter(|r| *r == "POST /loki/api/v1/push").count()
}

// Two windows 2 h apart lost lines 2-4 h ago while the live stream went on (its newest is minutes
// old, so Loki would refuse them in it as too far behind; newest first, the older window would be
// refused in any stream): parity fails, the dry run shows what would go,
// --execute pushes exactly the missing lines to a stream of their own, parity passes and says how
// many lines each window got from backfill, and a second run pushes nothing.
// req: 8.1, 8.3
#[test]
fn backfill_repairs_a_gap_so_parity_passes_and_a_second_run_pushes_nothing() {
    let world = world();
    let closed = last_closed();
    let (early, late, recent) = (closed - 4 * HOUR + 60, closed - 2 * HOUR + 60, closed - WINDOW + 60);
    cloudwatch(&world, "worker", early, &["a", "b", "c"]);
    loki(&world, "worker", early, &["a"]);
    cloudwatch(&world, "worker", late, &["d", "e"]);
    cloudwatch(&world, "worker", recent, &["live"]);
    loki(&world, "worker", recent, &["live"]);
    world.xtask(&["verify", "parity", "--since", "5h"]).assert_code(1);

    let entries = world.stack.state().entries.len();
    let run = world.xtask(&["backfill"]);
    run.assert_code(0);
    let out = &run.stdout;
    assert!(out.starts_with("backfill (env dev): dry run\n"), "{out}");
    assert!(out.contains("the short windows of the latest `verify parity` (envs/dev.parity.json"), "{out}");
    assert!(
        out.contains("entries older than 168h are refused (limits_config.reject_old_samples_max_age, Loki's default"),
        "{out}"
    );
    assert!(
        out.contains("more than 1h behind its stream's newest is refused (ingester.max_chunk_age 2h / 2)"),
        "{out}"
    );
    let row = |end: u64, cw: u64, loki: u64, push: u64, bytes: u64| {
        let want = [cw.to_string(), loki.to_string(), push.to_string(), bytes.to_string(), "0".to_string()];
        out.lines().any(|l| {
            let cells: Vec<&str> = l.split_whitespace().collect();
            cells.len() == 9
                && cells[..2] == ["worker", "temporal-worker"]
                && l.contains(&full(end - WINDOW))
                && cells[4..] == want
        })
    };
    let end = |ts: u64| (ts / WINDOW + 1) * WINDOW;
    assert!(row(end(early), 3, 1, 2, 2) && row(end(late), 2, 0, 2, 2), "{out}");
    assert!(out.contains("would push 4 line(s), 4 bytes"), "{out}");
    assert!(out.contains("FilterLogEvents request(s)"), "the reads and their cost:\n{out}");
    assert!(out.trim_end().ends_with("Run again with --execute to push."), "{out}");
    assert_eq!(world.stack.state().entries.len(), entries, "a dry run pushes nothing");

    let run = world.xtask(&["backfill", "--execute", "--json"]);
    run.assert_code(0);
    let report: Value = serde_json::from_str(&run.stdout).expect("--json prints only JSON on stdout");
    assert_eq!(report["pushed"]["lines"], 4, "{report}");
    assert_eq!(report["pushed"]["retries"], 0, "{report}");
    let ms = |s: u64, i: u64| s * 1000 + i;
    let want: Vec<(u64, String, String)> =
        [(ms(early, 1), "b"), (ms(early, 2), "c"), (ms(late, 0), "d"), (ms(late, 1), "e")]
            .into_iter()
            .map(|(ts, line)| (ts, line.to_string(), TASK.to_string()))
            .collect();
    assert_eq!(backfilled(&world), want);

    let run = world.xtask(&["verify", "parity", "--since", "5h"]);
    run.assert_code(0);
    assert!(run.stdout.starts_with("parity (env dev): PASS\n"), "{}", run.stdout);
    assert!(run.stdout.matches("  (2 backfilled)").count() == 2, "{}", run.stdout);
    assert_eq!(record(&world)["services"]["worker"]["backfilled_lines"], 4);

    // Again, from the passing record and from a count of its own: nothing is missing any more.
    let before = pushes(&world);
    for args in [&["backfill", "--execute"][..], &["backfill", "--execute", "--since", "5h"]] {
        let run = world.xtask(args);
        run.assert_code(0);
        assert!(run.stdout.contains("nothing to push"), "{args:?}: {}", run.stdout);
    }
    assert_eq!(pushes(&world), before);
    assert_eq!(backfilled(&world).len(), 4);

    // Bad input is refused before any AWS call, naming the problem.
    for (args, says) in [
        (&["backfill", "--since", "0h"][..], "invalid duration `0h`"),
        (
            &["backfill", "--from", "2026-05-01T11:00Z", "--to", "2026-05-01T10:00Z"],
            "--from 2026-05-01 11:00 is not before --to 2026-05-01 10:00",
        ),
        (&["backfill", "--from", "yesterday", "--to", "2026-05-01T10:00Z"], "--from `yesterday`: expected a UTC time"),
        (&["backfill", "--service", "nosuch"], "nosuch"),
        (&["backfill", "--service", "matching"], "matching does not run Alloy"),
    ] {
        let run = world.xtask(args);
        run.assert_code(2);
        assert!(run.stderr.contains(says), "{args:?}: {}", run.stderr);
        assert!(!run.stderr.contains("FilterLogEvents"), "{args:?}: {}", run.stderr);
    }
    world.xtask(&["backfill", "--since", "1h", "--from", "2026-05-01T10:00Z"]).assert_code(2);
    world.assert_no_tunnel_left();
}

// Lines older than reject_old_samples_max_age (168h, Loki's default the rendered config keeps)
// are named with the change that would accept them and never pushed; the rest are.
#[test]
fn lines_older_than_loki_accepts_are_named_and_not_pushed() {
    let world = world();
    let (old, recent) = (now_s() - 8 * 24 * HOUR + HOUR / 2, last_closed() - HOUR);
    cloudwatch(&world, "worker", old, &["old one", "old two"]);
    cloudwatch(&world, "worker", recent, &["fine"]);
    let (from, to) = ((old - 600).to_string(), now_s().to_string());
    let run = world.xtask(&["backfill", "--from", &from, "--to", &to]);
    run.assert_code(0);
    assert!(run.stdout.contains("too old to backfill: 2 line(s) older than Loki accepts"), "{}", run.stdout);
    assert!(
        run.stdout.contains("Loki refuses entries older than 168h ('greater_than_max_sample_age'")
            && run.stdout.contains("the oldest missing line is more than 191h old; to accept them set limits_config.reject_old_samples_max_age: 193h in templates/loki-config.yaml.tera"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("would push 1 line(s)"), "{}", run.stdout);

    let run = world.xtask(&["backfill", "--from", &from, "--to", &to, "--execute"]);
    run.assert_code(1);
    assert!(
        run.stderr.contains("2 line(s) missing from Loki are too old for it to accept and were not pushed"),
        "{}",
        run.stderr
    );
    let pushed = backfilled(&world);
    assert_eq!(pushed.len(), 1, "{pushed:?}");
    assert_eq!(pushed[0].1, "fine");
}

// A throttled CloudWatch read is retried as every AWS call is; a 429 during the push is retried
// as loki.write does, and every line lands once.
#[test]
fn a_throttled_read_and_a_429_during_the_push_are_retried() {
    let world = world();
    let at = last_closed() - WINDOW + 60;
    cloudwatch(&world, "worker", at, &["x", "y"]);
    loki(&world, "worker", at, &["x"]);
    world.stack.state().rate_limit_next_pushes = 2;
    let (proxy, calls) = throttling_proxy(world.moto.endpoint(), 2);
    let mut command = world.xtask_command(&["backfill", "--since", "30m", "--execute"]);
    command.env("AWS_ENDPOINT_URL_CLOUDWATCH_LOGS", proxy.url());
    let run = run_xtask(command, "backfill (throttled twice, rate-limited twice)");
    run.assert_code(0);
    assert!(calls.load(Ordering::SeqCst) >= 3, "2 refused reads, then the rest answered");
    assert_eq!(
        run.stderr.matches("FilterLogEvents: HTTP 400 ThrottlingException; attempt").count(),
        2,
        "{}",
        run.stderr
    );
    assert_eq!(
        run.stderr.matches("with HTTP 429: Ingestion rate limit exceeded for user fake").count(),
        2,
        "{}",
        run.stderr
    );
    assert!(
        run.stdout.contains("pushed 1 line(s), 1 bytes, in 3 push(es) (2 retried after 429/5xx)"),
        "{}",
        run.stdout
    );
    assert_eq!(backfilled(&world), vec![(at * 1000 + 1, "y".to_string(), TASK.to_string())]);
}

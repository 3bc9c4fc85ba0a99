//! `cargo xtask verify capacity` end to end: a dry run until --execute, careless input refused
//! offline, and against the Loki stand-in (which decodes Alloy's protobuf pushes, enforces the
//! tenant's ingestion limit with Loki's 429 and reports process_resident_memory_bytes): a Loki
//! that carries the rate, one that rate-limits, one near its memory limit.

use crate::common::*;
use serde_json::Value;

const SERVICES: [&str; 4] = ["history", "matching", "frontend", "worker"];

fn deployed_world() -> World {
    let world = World::deployed(&SERVICES, healthy_stack(&example_cluster(), &SERVICES));
    settings::set(&world.env.path, &["loki", "enabled"], true.into()).unwrap();
    world
}

fn synthetic_lines(world: &World) -> usize {
    world
        .stack
        .state()
        .entries
        .iter()
        .filter(|e| e.labels.get("service_name").map(String::as_str) == Some("xtask-capacity"))
        .count()
}

#[test]
fn capacity_is_a_dry_run_until_execute_and_refuses_careless_input_offline() {
    let world = deployed_world();
    let run = world.xtask(&["verify", "capacity"]);
    run.assert_code(0);
    assert!(
        run.stdout.contains("push 300.0 MB to Loki") && run.stdout.contains("at 10 MB/s for 30 s"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("no `cargo xtask verify capacity --env dev --execute` result yet"), "{}", run.stdout);
    assert!(run.stdout.trim_end().ends_with("Run again with --execute to push."), "{}", run.stdout);
    assert!(world.plugin_calls().is_empty(), "a dry run opens no tunnel");

    for (args, says) in [
        (&["verify", "capacity", "--rate", "25"][..], "at most 20 MB/s, the tenant limit"),
        (&["verify", "capacity", "--rate", "0"], "expected more than 0"),
        (&["verify", "capacity", "--rate", "NaN"], "expected more than 0"),
        (&["verify", "capacity", "--seconds", "0"], "expected 1 to 600"),
        (&["verify", "2", "--rate", "1"], "apply to capacity only"),
    ] {
        let run = world.xtask(args);
        run.assert_code(2);
        assert!(run.stderr.contains(says), "{args:?}: {}", run.stderr);
    }
    settings::set(&world.env.path, &["loki", "enabled"], false.into()).unwrap();
    let run = world.xtask(&["verify", "capacity", "--execute"]);
    run.assert_code(2);
    assert!(run.stderr.contains("cargo xtask deploy loki --env dev --execute"), "{}", run.stderr);
    assert!(world.plugin_calls().is_empty());
}

#[test]
fn capacity_measures_the_deployed_loki_and_deletes_its_lines() {
    let world = deployed_world();
    // A rate the test's own pushing keeps up with on a loaded machine: the measured rate is what
    // Loki took over the time the pushes took, so a slow pusher would read as a slow Loki.
    let run = world.xtask(&["verify", "capacity", "--execute", "--rate", "0.25", "--seconds", "2", "--json"]);
    run.assert_code(0);
    let result: Value = serde_json::from_str(&run.stdout).expect("--json prints JSON");
    assert_eq!(result["passed"], true, "{result}");
    let accepted = result["accepted_mb_per_s"].as_f64().unwrap();
    assert!((0.2375..0.3).contains(&accepted), "{result}");
    assert_eq!(result["rejected_pushes"], 0);
    assert!(result["latency_p50_ms"].as_f64().is_some() && result["latency_p99_ms"].as_f64().is_some(), "{result}");
    assert_eq!(result["resident_max_mib"].as_f64(), Some(400.0));
    assert_eq!(result["memory_limit_mib"], 1536);
    // Alloy's shape went over the wire, and the lines are gone afterwards.
    let state = world.stack.state();
    assert!(state.requests.iter().filter(|r| *r == "POST /loki/api/v1/push").count() >= 10, "{:?}", state.requests);
    assert_eq!(state.delete_requests.len(), 1);
    assert!(state.delete_requests[0].0.contains("service_name=\"xtask-capacity\""), "{:?}", state.delete_requests);
    drop(state);
    assert_eq!(synthetic_lines(&world), 0);
    world.assert_no_tunnel_left();
    // Recorded for the gate that turns the parallel run off, which shows it.
    let recorded: Value =
        serde_json::from_str(&std::fs::read_to_string(world.env.path.with_file_name("dev.capacity.json")).unwrap())
            .unwrap();
    assert_eq!(recorded, result);
    let dry = world.xtask(&["verify", "capacity"]);
    assert!(
        dry.stdout.contains("latest `verify capacity` (") && dry.stdout.contains("PASS at 0.25 MB/s for 2 s"),
        "{}",
        dry.stdout
    );
}

#[test]
fn a_rate_limited_loki_fails_with_its_429s() {
    let world = deployed_world();
    world.stack.state().ingestion_limit_bytes_per_s = 300_000;
    let run = world.xtask(&["verify", "capacity", "--execute", "--rate", "1", "--seconds", "2"]);
    run.assert_code(1);
    assert!(run.stdout.starts_with("verify capacity: FAIL"), "{}", run.stdout);
    assert!(run.stderr.contains("pushes with 429 (rate limited)"), "{}", run.stderr);
    assert_eq!(synthetic_lines(&world), 0, "what was accepted is deleted too");
}

#[test]
fn a_loki_near_its_memory_limit_fails() {
    let world = deployed_world();
    world.stack.state().resident_memory_bytes = 1450 << 20;
    let run = world.xtask(&["verify", "capacity", "--execute", "--rate", "1", "--seconds", "1"]);
    run.assert_code(1);
    assert!(run.stderr.contains("resident memory reached 1450 MiB of its 1536 MiB limit"), "{}", run.stderr);
}

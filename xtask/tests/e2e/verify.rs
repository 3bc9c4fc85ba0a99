//! `cargo xtask verify` and `cargo xtask logs` end to end, as an operator runs them (see
//! `common` for the stand-ins).

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common::*;
use serde_json::{json, Value};
use standins::observability::StackState;

/// What the env file says once Loki (and Grafana) are deployed: the checkpoints follow it.
fn record_deployed(world: &World, grafana: bool) {
    settings::set(&world.env.path, &["loki", "enabled"], true.into()).unwrap();
    if grafana {
        let image = format!("{}.dkr.ecr.eu-west-1.amazonaws.com/temporal-dev-grafana:13.2.3-1a2b3c4", world.account);
        settings::set(&world.env.path, &["versions", "grafana_image"], image.as_str().into()).unwrap();
    }
}

#[test]
fn checkpoints_2_5_7_and_all_pass_against_the_stand_ins() {
    let services = ["history", "matching", "frontend", "worker"];
    let world = World::deployed(&services, healthy_stack(&example_cluster(), &services));
    record_deployed(&world, true);
    for service in services {
        world.stack.add_service_lines(
            service,
            &world.cluster,
            &container(service),
            &[r#"{"level":"info","msg":"started"}"#],
        );
    }

    let run = world.xtask(&["verify", "2"]);
    run.assert_code(0);
    assert!(run.stdout.starts_with("checkpoint 2: PASS\n"), "{}", run.stdout);
    for name in ["loki service stable", "loki ready", "loki ingests a probe line", "s3 holds loki objects"] {
        assert!(run.stdout.contains(&format!("pass  {name}")), "{name} missing:\n{}", run.stdout);
    }
    // Every external call is logged with its purpose, the tunnel's among them: the API call that
    // opens the session, with its target and document, then the plugin that carries it, given
    // the endpoint StartSession went to (AWS_ENDPOINT_URL_SSM); the session token never.
    assert!(run.stderr.contains("open an SSM tunnel to Loki"), "{}", run.stderr);
    let region = world.env.settings().aws.region;
    let logged = |needle: &str| {
        let found: Vec<&str> = run.stderr.lines().filter(|l| l.contains(needle)).collect();
        assert_eq!(found.len(), 1, "one line with {needle:?} expected in:\n{}", run.stderr);
        found[0]
    };
    let started = logged(": SSM StartSession");
    assert!(
        started.starts_with(&format!(
            "  → start an SSM session on {} (AWS-StartPortForwardingSessionToRemoteHost) to open an SSM tunnel to Loki port 3100 (",
            world.instance_id
        )),
        "{started}"
    );
    let plugin = logged(": session-manager-plugin AWS_SSM_START_SESSION_RESPONSE ");
    assert!(plugin.starts_with("  → open an SSM tunnel to Loki port 3100 ("), "{plugin}");
    assert!(
        plugin.contains(&format!(
            ": session-manager-plugin AWS_SSM_START_SESSION_RESPONSE {region} StartSession '' '{{\"DocumentName\":\"AWS-StartPortForwardingSessionToRemoteHost\","
        )) && plugin.ends_with(&format!(" {}", world.stack.url())),
        "{plugin}"
    );
    assert!(!run.stderr.contains("stand-in-token"), "{}", run.stderr);

    // The tunnel went through the cluster's instance to the Loki task's private address, with
    // the argv the AWS CLI gives the plugin; the stand-in (1.2.764.0) reads the response from
    // the environment variable argv names.
    let calls = world.plugin_calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    let argv: Vec<&str> = calls[0]["argv"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
    assert_eq!(argv.len(), 6, "{argv:?}");
    assert_eq!(argv[0], "AWS_SSM_START_SESSION_RESPONSE");
    assert_eq!(argv[1], region);
    assert_eq!(argv[2], "StartSession");
    assert_eq!(argv[3], "", "no --profile, as the CLI without one");
    assert_eq!(argv[5], world.stack.url());
    assert_eq!(
        calls[0]["response"],
        json!({"SessionId": format!("xtask-test-{}", world.instance_id), "TokenValue": "stand-in-token",
               "StreamUrl": "wss://ssmmessages.invalid/v1/data-channel/xtask-test"})
    );
    let params: Value = serde_json::from_str(argv[4]).unwrap();
    assert_eq!(params["Target"], world.instance_id.as_str());
    assert_eq!(params["DocumentName"], "AWS-StartPortForwardingSessionToRemoteHost");
    assert_eq!(params["Parameters"]["portNumber"], json!(["3100"]));
    let local_port = params["Parameters"]["localPortNumber"][0].as_str().unwrap();
    assert!(plugin.contains(&format!(" on 127.0.0.1:{local_port}: ")), "{plugin}");
    let tasks = world.tasks("RUNNING");
    let loki_ip = tasks.iter().find(|t| t["group"] == format!("service:{}", world.loki_service()).as_str()).unwrap()
        ["attachments"][0]["details"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "privateIPv4Address")
        .unwrap()["value"]
        .clone();
    assert_eq!(params["Parameters"]["host"][0], loki_ip);
    assert!(world.stack.state().requests.contains(&"SSM StartSession".to_string()));
    // The probe line reached "Loki".
    assert!(world
        .stack
        .state()
        .entries
        .iter()
        .any(|e| e.labels.get("service_name").map(String::as_str) == Some("xtask-verify")));
    world.assert_no_tunnel_left();

    let run = world.xtask(&["verify", "5", "--service", "worker"]);
    run.assert_code(0);
    assert!(run.stdout.starts_with("checkpoint 5 (worker): PASS\n"), "{}", run.stdout);
    for name in [
        "worker: service stable",
        "worker: logs in loki",
        "worker: stream labels",
        "worker: metrics in amp",
        "worker: alloy sidecar without errors",
    ] {
        assert!(run.stdout.contains(&format!("pass  {name}")), "{name} missing:\n{}", run.stdout);
    }
    // AMP was queried with SigV4 headers, for the worker job of this cluster.
    let amp = world.stack.state().amp_queries.clone();
    assert!(!amp.is_empty() && amp.iter().all(|(_, signed)| *signed), "{amp:?}");
    // Only the service's current tasks count (ADOT's older series must not pass the check).
    assert!(amp[0].0.starts_with(r#"up{job="worker", cluster=""#) && amp[0].0.contains(r#"task_id=~""#), "{amp:?}");

    let run = world.xtask(&["verify", "7"]);
    run.assert_code(0);
    for name in
        ["grafana service stable", "grafana healthy", "grafana loki datasource", "grafana logql query returns lines"]
    {
        assert!(run.stdout.contains(&format!("pass  {name}")), "{name} missing:\n{}", run.stdout);
    }
    // The admin password came from Secrets Manager and was never printed.
    assert!(!run.stdout.contains("grafana-test-password") && !run.stderr.contains("grafana-test-password"));

    let run = world.xtask(&["verify", "all", "--json"]);
    run.assert_code(0);
    let report: Value = serde_json::from_str(&run.stdout).expect("--json prints only JSON on stdout");
    assert_eq!(report["checkpoint"], "all");
    assert_eq!(report["passed"], true);
    let checks = report["checks"].as_array().unwrap();
    for check in checks {
        assert!(check["name"].is_string() && check["passed"] == true && check["detail"].is_string(), "{check}");
    }
    let names: Vec<&str> = checks.iter().map(|c| c["name"].as_str().unwrap()).collect();
    for name in [
        "loki ready",
        "history: metrics in amp",
        "frontend: stream labels",
        "grafana loki datasource",
        "amp answers queries",
        "s3 holds chunks",
        "s3 holds index",
    ] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
    // One tunnel per run and target (2: Loki, 5: Loki, 7: Grafana, all: both), all closed; the
    // plugin's version was asked once for both.
    assert_eq!(world.plugin_calls().len(), 1 + 1 + 1 + 2);
    assert_eq!(run.stderr.matches(": session-manager-plugin --version").count(), 1, "{}", run.stderr);
    assert_eq!(run.stderr.matches(": SSM StartSession").count(), 2, "{}", run.stderr);
    world.assert_no_tunnel_left();
}

#[test]
fn failed_checks_exit_1_by_name_and_logs_reads_the_service() {
    // worker runs Alloy, but nothing reaches AMP and its sidecar logs errors.
    let world = World::deployed(&["worker"], StackState::default());
    record_deployed(&world, false);
    world.sidecar_log("worker", "level=error msg=\"Failed to send batch, retrying\" component=prometheus.remote_write.amp err=\"403 Forbidden\"");
    world.stack.add_service_lines(
        "worker",
        &world.cluster,
        "temporal-worker",
        &[
            r#"{"level":"info","msg":"first"}"#,
            r#"{"level":"error","msg":"second"}"#,
            r#"{"level":"info","msg":"third"}"#,
            r#"{"level":"ERROR","msg":"fourth"}"#,
        ],
    );

    let run = world.xtask(&["verify", "5"]);
    run.assert_code(1);
    assert!(run.stdout.starts_with("checkpoint 5: FAIL\n"), "{}", run.stdout);
    assert!(run.stdout.contains("pass  worker: logs in loki"), "{}", run.stdout);
    assert!(run.stdout.contains("FAIL  worker: metrics in amp"), "{}", run.stdout);
    assert!(
        run.stdout.contains("FAIL  worker: alloy sidecar without errors") && run.stdout.contains("403 Forbidden"),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr.contains("error: checkpoint 5 failed: worker: metrics in amp, worker: alloy sidecar without errors"),
        "{}",
        run.stderr
    );
    world.assert_no_tunnel_left();

    let run = world.xtask(&["logs", "worker", "--since", "10m", "--level", "error"]);
    run.assert_code(0);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", run.stdout);
    // Oldest first, `timestamp container line`.
    assert!(lines[0].ends_with(r#" temporal-worker {"level":"error","msg":"second"}"#), "{}", lines[0]);
    assert!(lines[1].ends_with(r#" temporal-worker {"level":"ERROR","msg":"fourth"}"#), "{}", lines[1]);
    assert!(lines[0].len() > 24 && lines[0].as_bytes()[10] == b'T' && lines[0].as_bytes()[23] == b'Z', "{}", lines[0]);
    world.assert_no_tunnel_left();

    // Bad input is refused before any AWS call or tunnel.
    let tunnels = world.plugin_calls().len();
    let run = world.xtask(&["logs", "worker", "--since", "10x"]);
    run.assert_code(2);
    assert!(run.stderr.contains("invalid duration `10x`"), "{}", run.stderr);
    let run = world.xtask(&["logs", "nope"]);
    run.assert_code(2);
    assert!(run.stderr.contains("unknown service `nope`"), "{}", run.stderr);
    assert_eq!(world.plugin_calls().len(), tunnels);
}

#[test]
fn ctrl_c_closes_the_tunnel() {
    let world = World::deployed(&[], StackState { ready_delay_ms: 20_000, ..StackState::default() });
    record_deployed(&world, false);
    let mut child = world
        .xtask_command(&["verify", "2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start xtask");
    // Wait until the tunnel is open and /ready is in flight (the stand-in holds it for 20 s).
    let started = Instant::now();
    while !world.stack.state().requests.iter().any(|r| r == "GET /ready") {
        assert!(started.elapsed() < Duration::from_secs(60), "the tunnel never carried /ready");
        std::thread::sleep(Duration::from_millis(100));
    }
    let code = interrupt(&mut child).code();
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut stderr).unwrap();
    assert_eq!(code, Some(130), "{stderr}");
    assert!(stderr.contains("interrupted: closing 1 SSM tunnel(s)"), "{stderr}");
    assert_eq!(world.plugin_calls().len(), 1);
    world.assert_no_tunnel_left();
}

#[test]
fn a_plugin_that_cannot_start_leaves_no_session_open() {
    let world = World::deployed(&[], StackState::default());
    record_deployed(&world, false);
    // On PATH and executable, so the checks before the session pass, but its interpreter is gone.
    std::fs::write(world.bins.bin_dir().join("session-manager-plugin"), "#!/nonexistent/python3\n").unwrap();

    let run = world.xtask(&["logs", "worker", "--since", "10m"]);
    run.assert_code(2);
    assert!(
        run.stderr.contains(
            "the Session Manager plugin could not be started: could not start `session-manager-plugin --version`"
        ),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("install the Session Manager plugin (https://docs.aws.amazon.com/systems-manager/latest/userguide/session-manager-working-with-install-plugin.html)"), "{}", run.stderr);
    // The session StartSession opened was terminated, and it is the only one.
    let session = format!("xtask-test-{}", world.instance_id);
    let state = world.stack.state();
    let position = |call: &str| state.requests.iter().position(|r| r == call);
    let (started, ended) = (position("SSM StartSession"), position("SSM TerminateSession"));
    assert!(started.is_some() && ended.is_some() && started < ended, "{:?}", state.requests);
    assert_eq!(state.requests.iter().filter(|r| r.starts_with("SSM ")).count(), 2, "{:?}", state.requests);
    assert_eq!(state.terminated_sessions, [session.as_str()]);
    assert!(
        run.stderr.contains(&format!("  → end session {session}, which the plugin cannot carry: SSM TerminateSession")),
        "{}",
        run.stderr
    );
    assert!(world.plugin_calls().is_empty());
}

#[test]
fn checkpoints_that_cannot_run_yet_exit_2_with_the_fix() {
    let world = World::bare(&[], StackState::default());

    // Before `deploy loki`, as the env file says: refused offline, no AWS call.
    for checkpoint in ["2", "5", "9"] {
        let run = world.xtask(&["verify", checkpoint]);
        run.assert_code(2);
        assert!(run.stderr.contains("run `cargo xtask deploy loki --env dev --execute` first"), "{}", run.stderr);
    }
    assert!(world.terraform_calls().is_empty(), "{:?}", world.terraform_calls());

    // The env file says Loki is deployed, its state has no Loki outputs.
    record_deployed(&world, false);
    world.set_outputs(&json!({}));
    let run = world.xtask(&["verify", "2"]);
    run.assert_code(2);
    assert!(
        run.stderr.contains("the Terraform output `loki_service_name` is missing")
            && run.stderr.contains("run `cargo xtask deploy loki --execute` first"),
        "{}",
        run.stderr
    );

    // Before `deploy grafana`: the env file names no image; then the state has no Grafana outputs.
    let run = world.xtask(&["verify", "7"]);
    run.assert_code(2);
    assert!(run.stderr.contains("run `cargo xtask build-grafana --env dev --execute` and `cargo xtask deploy grafana --env dev --execute` first"), "{}", run.stderr);
    record_deployed(&world, true);
    let mut outputs = world.outputs();
    outputs.as_object_mut().unwrap().retain(|k, _| !k.starts_with("grafana"));
    world.set_outputs(&outputs);
    let run = world.xtask(&["verify", "7"]);
    run.assert_code(2);
    assert!(run.stderr.contains("run `cargo xtask deploy grafana --execute` first"), "{}", run.stderr);

    // Before `migrate-sidecars`: no service on Alloy.
    world.set_outputs(&world.outputs());
    let run = world.xtask(&["verify", "5"]);
    run.assert_code(2);
    assert!(run.stderr.contains("run `cargo xtask migrate-sidecars --env dev --execute` first"), "{}", run.stderr);
    let run = world.xtask(&["verify", "2", "--service", "worker"]);
    run.assert_code(2);
    assert!(run.stderr.contains("--service applies to checkpoint 5, properties and parity only"), "{}", run.stderr);

    // No session manager plugin: the fix, and no session started.
    std::fs::remove_file(world.bins.bin_dir().join("session-manager-plugin")).unwrap();
    let run = world.xtask(&["verify", "2"]);
    run.assert_code(2);
    assert!(run.stderr.contains("`session-manager-plugin` is not installed"), "{}", run.stderr);
    assert!(run.stderr.contains("https://docs.aws.amazon.com/systems-manager/latest/userguide/session-manager-working-with-install-plugin.html"), "{}", run.stderr);
    assert!(world.stack.state().requests.is_empty(), "{:?}", world.stack.state().requests);
}

// Issue 31.5: Terraform requires an AZ per Loki replica, but ECS places tasks where it can (an
// AZ without capacity, a task replaced during an outage). Checkpoint 2 names two replicas in one
// AZ as a warning: Loki works, its write quorum does not survive that AZ.
// req: 7.2
#[test]
fn checkpoint_2_warns_when_ecs_placed_two_loki_replicas_in_one_az() {
    let world = World::deployed(&[], healthy_stack(&example_cluster(), &[]));
    record_deployed(&world, false);
    let subnets = ["subnet-0123456789abcdef0", "subnet-0fedcba9876543210", "subnet-0a1b2c3d4e5f60718"];
    settings::set(&world.env.path, &["platform", "private_subnet_ids"], subnets.into_iter().collect()).unwrap();
    settings::set(&world.env.path, &["loki", "count"], 3.into()).unwrap();
    let loki = world.loki_service();
    world.ecs(
        "RunTask",
        json!({"cluster": world.cluster, "taskDefinition": loki, "group": format!("service:{loki}"), "count": 2,
               "launchType": "EC2", "networkConfiguration": world.network()}),
    );
    let group = format!("service:{loki}");
    let ids: Vec<String> = world
        .tasks("RUNNING")
        .iter()
        .filter(|t| t["group"] == group.as_str())
        .map(|t| t["taskArn"].as_str().unwrap().rsplit('/').next().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 3, "{ids:?}");
    world.stack.state().ecs_upstream = Some(world.moto.endpoint());
    let verify = |zones: [&str; 3]| {
        world.stack.state().task_zones = ids.iter().cloned().zip(zones.map(str::to_string)).collect();
        let mut command = world.xtask_command(&["verify", "2"]);
        command.env("AWS_ENDPOINT_URL_ECS", world.stack.url());
        run_xtask(command, "verify 2 with three Loki replicas")
    };

    let run = verify(["eu-west-1a", "eu-west-1b", "eu-west-1a"]);
    run.assert_code(0);
    assert!(run.stdout.starts_with("checkpoint 2: PASS\n"), "{}", run.stdout);
    let line = run.stdout.lines().find(|l| l.contains("loki replicas in distinct AZs")).unwrap_or_default();
    assert!(line.starts_with("  WARN  "), "{}", run.stdout);
    assert!(
        line.contains(&format!(
            "ECS placed two or more replicas in eu-west-1a (eu-west-1a: {}, {}; eu-west-1b: {})",
            ids[0], ids[2], ids[1]
        )),
        "{line}"
    );
    assert!(line.contains("--force-new-deployment"), "{line}");

    let run = verify(["eu-west-1a", "eu-west-1b", "eu-west-1c"]);
    run.assert_code(0);
    assert!(
        run.stdout.contains("pass  loki replicas in distinct AZs  3 replica(s), one per AZ (eu-west-1a: "),
        "{}",
        run.stdout
    );
}

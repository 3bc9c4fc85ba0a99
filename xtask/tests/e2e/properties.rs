//! `cargo xtask verify properties` (P1, P2, P3, P5) end to end against the stand-ins (see
//! `common`). moto serves ECS; ECS Exec, which moto lacks, comes from the observability stand-in
//! acting as an ECS proxy in front of moto (`AWS_ENDPOINT_URL_ECS`; see `standins::observability`):
//! an exec that writes lines to a container's stdout puts them in "Loki" as that task's Alloy
//! would, and an exec into the `alloy` container restarts it as ECS's restart policy would.

use crate::common::*;
use serde_json::{json, Value};
use standins::observability::StackState;

/// A world whose Alloy services run tasks of a realistic task definition: the main container and
/// a non-essential `alloy` sidecar with a restart policy (infra/alloy-sidecar.tf).
fn migrated(services: &[&str], state: StackState) -> World {
    let world = World::deployed(services, state);
    settings::set(&world.env.path, &["loki", "enabled"], true.into()).unwrap();
    {
        let mut state = world.stack.state();
        state.ecs_upstream = Some(world.moto.endpoint());
        state.alloy_services = services.iter().map(|s| (world.service_name(s), s.to_string())).collect();
    }
    let network = world.network();
    let region = world.env.settings().aws.region;
    for service in services {
        let family = world.service_name(service);
        let awslogs = json!({"logDriver": "awslogs", "options": {"awslogs-group": world.log_group(service), "awslogs-region": region, "awslogs-stream-prefix": "ecs"}});
        let containers = json!([
            {"name": container(service), "image": "temporalio/server:1.28.1", "memory": 256, "essential": true, "logConfiguration": awslogs},
            {"name": "alloy", "image": "grafana/alloy:v1.21.2", "memory": 128, "essential": false, "logConfiguration": awslogs,
             "restartPolicy": {"enabled": true, "ignoredExitCodes": [], "restartAttemptPeriod": 60}},
        ]);
        let registered = world.ecs(
            "RegisterTaskDefinition",
            json!({"family": family, "networkMode": "awsvpc", "containerDefinitions": containers}),
        );
        let arn = registered["taskDefinition"]["taskDefinitionArn"].as_str().unwrap();
        world.ecs("UpdateService", json!({"cluster": world.cluster, "service": family, "taskDefinition": arn}));
        // The service's task now runs the new revision (moto starts no tasks for services).
        world.ecs("StopTask", json!({"cluster": world.cluster, "task": running_task(&world, service)}));
        let ran = world.ecs(
            "RunTask",
            json!({"cluster": world.cluster, "taskDefinition": arn, "group": format!("service:{family}"),
                   "launchType": "EC2", "networkConfiguration": network}),
        );
        // The sidecar's first start, in its own stream as the awslogs driver names it.
        let task = ran["tasks"][0]["taskArn"].as_str().unwrap().rsplit('/').next().unwrap();
        world.put_log_line(
            &world.log_group(service),
            &format!("ecs/alloy/{task}"),
            "level=info msg=\"now listening for http traffic\" service=http addr=127.0.0.1:12345",
        );
    }
    world
}

/// The id of the running task of a service (moto's list-tasks ignores --service-name).
fn running_task(world: &World, service: &str) -> String {
    let described = world.tasks("RUNNING");
    let group = format!("service:{}", world.service_name(service));
    let task = described.iter().find(|t| t["group"] == group.as_str()).expect("a running task of the service");
    task["taskArn"].as_str().unwrap().rsplit('/').next().unwrap().to_string()
}

/// `verify properties` with ECS behind the stand-in's proxy.
fn properties(world: &World, extra: &[&str]) -> Run {
    let args = [&["verify", "properties"][..], extra].concat();
    let mut command = world.xtask_command(&args);
    command.env("AWS_ENDPOINT_URL_ECS", world.stack.url());
    run_xtask(command, &format!("{args:?}"))
}

fn snapshot_path(world: &World, service: &str) -> std::path::PathBuf {
    world.env.repo().join(format!("infra/.terraform/envs/{}/series-{service}.json", world.env.name))
}

/// The snapshot `migrate-sidecars` writes before the switch.
fn write_snapshot(world: &World, service: &str, names: &[&str]) {
    let path = snapshot_path(world, service);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let taken_at = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() - 600;
    std::fs::write(&path, json!({"service": service, "taken_at": taken_at, "names": names}).to_string()).unwrap();
}

fn metric_names(job: &str, names: &[&str]) -> Vec<(String, String)> {
    names.iter().map(|n| (job.to_string(), n.to_string())).collect()
}

fn row<'r>(report: &'r Value, prefix: &str) -> &'r Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"].as_str().unwrap().starts_with(prefix))
        .unwrap_or_else(|| panic!("no check {prefix}: {report}"))
}

// req: P1, P2, P3, P5
#[test]
fn the_properties_hold_on_a_healthy_migrated_service() {
    let state = StackState {
        metric_names: metric_names("worker", &["up", "temporal_request", "persistence_latency_bucket", "target_info"]),
        ..StackState::default()
    };
    let world = migrated(&["worker"], state);
    let task = running_task(&world, "worker");
    world.stack.add_task_lines(
        "worker",
        &world.cluster,
        "temporal-worker",
        &task,
        &[r#"{"level":"info","msg":"started"}"#],
    );
    // ADOT wrote `target_info` itself; Alloy does not, and P3 does not count it.
    write_snapshot(&world, "worker", &["up", "temporal_request", "persistence_latency_bucket", "target_info"]);
    world.stack.state().metric_names.retain(|(_, n)| n != "target_info");

    let run = properties(&world, &["--json"]);
    run.assert_code(0);
    let report: Value = serde_json::from_str(&run.stdout).expect("--json prints only JSON on stdout");
    assert_eq!(report["checkpoint"], "properties");
    assert_eq!(report["passed"], true, "{report:#}");
    assert!(row(&report, "P1 worker").detail_contains("all 20 lines written to temporal-worker"), "{report:#}");
    assert!(row(&report, "P2 worker").detail_contains("task_id of 1 task(s) as structured metadata"), "{report:#}");
    assert!(row(&report, "P3 worker").detail_contains("all 3 metric name(s) of the snapshot (10m old)"), "{report:#}");
    assert!(
        row(&report, "P5 worker").detail_contains("alloy started again")
            && row(&report, "P5 worker").detail_contains("(start-up 2 in /ecs/"),
        "{report:#}"
    );

    // P1 wrote 20 numbered lines into the main container's stdout, with one run id; P5 stopped
    // only the sidecar. Nothing else was exec'd, and never into the main container twice.
    let execs = world.stack.state().execs.clone();
    assert_eq!(execs.len(), 2, "{execs:?}");
    assert_eq!((execs[0].task_id.as_str(), execs[0].container.as_str()), (task.as_str(), "temporal-worker"));
    assert!(
        execs[0].command.starts_with("/bin/sh -c 'for i in 1 2 3 ")
            && execs[0].command.ends_with("; done > /proc/1/fd/1'"),
        "{execs:?}"
    );
    assert_eq!(
        (execs[1].task_id.as_str(), execs[1].container.as_str(), execs[1].command.as_str()),
        (task.as_str(), "alloy", "/bin/sh -c 'kill 1'")
    );
    assert_eq!(world.stack.state().restarts.get(&(task.clone(), "alloy".to_string())), Some(&1));
    let probe_lines: Vec<String> = world
        .stack
        .state()
        .entries
        .iter()
        .filter(|e| e.line.starts_with("xtask-p1 "))
        .map(|e| e.line.clone())
        .collect();
    assert_eq!(probe_lines.len(), 20);
    assert!(probe_lines[19].ends_with(" 20/20"), "{probe_lines:?}");
    // Every external call was logged with its purpose, the exec's among them: ExecuteCommand,
    // then the plugin on its session (the token never).
    assert!(run.stderr.contains("write 20 numbered lines to the stdout of temporal-worker"), "{}", run.stderr);
    assert!(run.stderr.contains("stop the alloy sidecar of task"), "{}", run.stderr);
    let region = world.env.settings().aws.region;
    assert!(
        run.stderr.contains(&format!(
            "  → write 20 numbered lines to the stdout of temporal-worker in task {task} (ECS Exec): ECS ExecuteCommand\n"
        )),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(&format!("  → stop the alloy sidecar of task {task} (SIGTERM to its PID 1 through ECS Exec); temporal-worker is not touched: ECS ExecuteCommand\n")),
        "{}",
        run.stderr
    );
    for container in ["temporal-worker", "alloy"] {
        let target = json!({"Target": format!("ecs:{}_{task}_{task}-{container}", world.cluster)}).to_string();
        let plugin = format!(
            "  → carry ECS Exec session ecs-execute-command-{task} into {container} of task {task}: session-manager-plugin AWS_SSM_START_SESSION_RESPONSE {region} StartSession '' '{target}' {}\n",
            world.stack.url()
        );
        assert!(run.stderr.contains(&plugin), "{plugin} missing from:\n{}", run.stderr);
    }
    assert!(!run.stderr.contains("stand-in-token"), "{}", run.stderr);
    // How the plugin got each session is compared with the AWS CLI's own handover below
    // (the_plugin_gets_what_the_aws_cli_gives_it).
    // The runtime id was read after each ExecuteCommand, as the CLI reads it.
    let requests = world.stack.state().requests.clone();
    let execs_at: Vec<usize> =
        requests.iter().enumerate().filter(|(_, r)| *r == "ECS ExecuteCommand").map(|(i, _)| i).collect();
    assert_eq!(execs_at.len(), 2, "{requests:?}");
    assert!(
        execs_at.iter().all(|i| requests.get(i + 1).map(String::as_str) == Some("ECS DescribeTasks")),
        "{requests:?}"
    );
    // AMP's label values were asked for the job's current tasks, signed.
    let amp = world.stack.state().amp_queries.clone();
    assert!(
        amp.iter().any(|(q, signed)| *signed
            && q == &format!(r#"{{job="worker", cluster="{}", task_id=~"{task}"}}"#, world.cluster)),
        "{amp:?}"
    );
    world.assert_no_tunnel_left();
}

// req: P1, P2, P3
#[test]
fn failed_properties_exit_1_by_name() {
    // The sidecar ships nothing new, an entry lacks `cluster`, a metric name disappeared.
    let state =
        StackState { ship_exec_lines: false, metric_names: metric_names("worker", &["up"]), ..StackState::default() };
    let world = migrated(&["worker"], state);
    let task = running_task(&world, "worker");
    world.stack.add_task_lines("worker", "", "temporal-worker", &task, &["no cluster label"]);
    write_snapshot(&world, "worker", &["up", "temporal_request"]);

    let run = properties(&world, &[]);
    run.assert_code(1);
    assert!(run.stdout.starts_with("checkpoint properties: FAIL\n"), "{}", run.stdout);
    assert!(
        run.stdout.contains("FAIL  P1 worker: every stdout line reaches loki")
            && run.stdout.contains("0 of 20 lines written to temporal-worker"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("FAIL  P2 worker: labels on every entry") && run.stdout.contains("cluster=\"\""),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("FAIL  P3 worker: metric names as under adot")
            && run.stdout.contains("1 of 2 metric name(s) of the snapshot (10m old) are gone under Alloy"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains(": temporal_request"), "{}", run.stdout);
    assert!(run.stdout.contains("pass  P5 worker"), "{}", run.stdout);
    assert!(run.stderr.contains("error: checkpoint properties failed: P1 worker: every stdout line reaches loki, P2 worker: labels on every entry, P3 worker: metric names as under adot"), "{}", run.stderr);

    // Without a snapshot P3 cannot compare, and says where the snapshot comes from.
    std::fs::remove_file(snapshot_path(&world, "worker")).unwrap();
    world.stack.state().ship_exec_lines = true;
    world.stack.state().entries.retain(|e| e.labels.get("cluster").is_some_and(|c| !c.is_empty()));
    world.stack.add_task_lines("worker", &world.cluster, "temporal-worker", &task, &["ok"]);
    let run = properties(&world, &["--service", "worker"]);
    run.assert_code(1);
    assert!(run.stdout.contains("pass  P1 worker") && run.stdout.contains("pass  P2 worker"), "{}", run.stdout);
    assert!(run.stdout.contains("FAIL  P3 worker: metric names as under adot"), "{}", run.stdout);
    assert!(run.stdout.contains("no snapshot: it is taken by migrate-sidecars before the switch (infra/.terraform/envs/dev/series-worker.json is missing)"), "{}", run.stdout);
    world.assert_no_tunnel_left();
}

// req: P2
#[test]
fn a_task_id_label_against_the_setting_fails_p2() {
    let world = migrated(&["worker"], StackState::default());
    let task = running_task(&world, "worker");
    // Alloy made task_id a stream label while the env keeps it structured metadata.
    world.stack.add_service_lines("worker", &world.cluster, "temporal-worker", &["x"]);
    for entry in &mut world.stack.state().entries {
        entry.labels.insert("task_id".into(), task.clone());
    }
    let run = properties(&world, &[]);
    run.assert_code(1);
    assert!(
        run.stdout.contains(
            "task_id is a stream label but alloy.task_id_label = false wants it structured metadata (req 3.8)"
        ),
        "{}",
        run.stdout
    );
}

// req: P3
#[test]
fn migrate_sidecars_snapshots_the_metric_names_before_the_switch() {
    let state = StackState {
        up: vec![("worker".into(), example_cluster(), 1.0)],
        metric_names: metric_names("worker", &["up", "temporal_request"]),
        ..StackState::default()
    };
    let world = World::worker_on_adot(state);
    let plan = json!({"resource_changes": [
        {"address": "module.temporal_worker.aws_ecs_task_definition.this", "change": {"actions": ["delete", "create"]}},
    ]});
    world.set_terraform(&world.outputs(), &plan, None);

    let run = world.xtask(&["migrate-sidecars", "--service", "worker", "--execute"]);
    run.assert_code(0);
    assert!(run.stderr.contains("snapshot of 2 metric name(s) of {job=\"worker\", cluster=\"temporal-dev\"} for P3: infra/.terraform/envs/dev/series-worker.json"), "{}", run.stderr);
    let snapshot: Value =
        serde_json::from_str(&std::fs::read_to_string(snapshot_path(&world, "worker")).unwrap()).unwrap();
    assert_eq!(snapshot["names"], json!(["temporal_request", "up"]));
    assert_eq!(snapshot["window_seconds"], 3600);
    // Its AMP request came first, before checkpoint 5's (after the switch).
    let requests = world.stack.state().amp_queries.clone();
    assert_eq!(requests[0], (r#"{job="worker", cluster="temporal-dev"}"#.to_string(), true), "{requests:?}");
}

#[test]
fn properties_need_a_migrated_service() {
    let world = World::bare(&[], StackState::default());
    // Before Loki, the env file alone says which phase comes first.
    let run = properties(&world, &[]);
    run.assert_code(2);
    assert!(run.stderr.contains("run `cargo xtask deploy loki --env dev --execute` first"), "{}", run.stderr);
    settings::set(&world.env.path, &["loki", "enabled"], true.into()).unwrap();
    let run = properties(&world, &[]);
    run.assert_code(2);
    assert!(
        run.stderr.contains("no enabled service of `dev` uses it yet; run `cargo xtask migrate-sidecars` first"),
        "{}",
        run.stderr
    );
    settings::set_collector(&world.env.path, "worker", settings::Collector::Alloy).unwrap();
    let run = properties(&world, &["--service", "history"]);
    run.assert_code(2);
    assert!(run.stderr.contains("history does not run Alloy in `dev`"), "{}", run.stderr);
    assert!(world.stack.state().requests.is_empty(), "{:?}", world.stack.state().requests);
}

trait Detail {
    fn detail_contains(&self, text: &str) -> bool;
}

impl Detail for Value {
    fn detail_contains(&self, text: &str) -> bool {
        self["passed"] == true && self["detail"].as_str().is_some_and(|d| d.contains(text))
    }
}

/// The pinned AWS CLI (`aws <args>`) in this world's environment, with `extra` variables and
/// the plugin recording only; its exit checked.
fn aws_cli(world: &World, args: &[&str], extra: &[(&str, String)]) {
    let mut command = std::process::Command::new(venv_bin().join("aws"));
    command
        .args(args)
        .env_clear()
        .envs(world.env_vars())
        .envs(extra.iter().map(|(k, v)| (k.to_string(), v.clone())))
        .env("STANDIN_PLUGIN_RECORD_ONLY", "1")
        .env("AWS_SDK_UA_APP_ID", ORACLE_APP_ID)
        .stdin(std::process::Stdio::null());
    let out = command.output().expect("run the AWS CLI");
    assert!(
        out.status.success(),
        "aws {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What a plugin call's argv says, its JSON arguments (the session, the request) parsed: the
/// CLI formats JSON with Python's separators, and the plugin parses it.
fn plugin_argv(call: &Value) -> Vec<Value> {
    let argv = call["argv"].as_array().unwrap();
    argv.iter()
        .map(|a| {
            let a = a.as_str().unwrap();
            if a.starts_with('{') {
                serde_json::from_str(a).unwrap_or_else(|_| json!(a))
            } else {
                json!(a)
            }
        })
        .collect()
}

/// The `AWS_*` environment a plugin call saw, the session variable parsed, less `AWS_DATA_PATH`
/// (the CLI sets it for its own botocore, awscli/__init__.py; the plugin does not read it) and
/// the oracle's `AWS_SDK_UA_APP_ID` (the test's own).
fn plugin_env(call: &Value) -> Value {
    let mut env = call["env"].as_object().unwrap().clone();
    env.remove("AWS_DATA_PATH");
    env.remove("AWS_SDK_UA_APP_ID");
    if let Some(session) = env.get_mut("AWS_SSM_START_SESSION_RESPONSE") {
        *session = serde_json::from_str(session.as_str().unwrap()).unwrap();
    }
    Value::Object(env)
}

// The oracle for how a session reaches the plugin is the pinned AWS CLI itself: after xtask's
// SSM tunnel and ECS Exec sessions, `aws ssm start-session` and `aws ecs execute-command` open
// the same sessions against the same stand-ins, and the plugin must have been handed the same
// argv, session and AWS environment by both. One difference is deliberate (session.rs): for
// ECS Exec the CLI puts the session JSON, token and all, in argv; xtask puts it in
// AWS_SSM_START_SESSION_RESPONSE, as the CLI does for SSM sessions, and names that in argv.
#[test]
fn the_plugin_gets_what_the_aws_cli_gives_it() {
    let world =
        migrated(&["worker"], StackState { metric_names: metric_names("worker", &["up"]), ..StackState::default() });
    let task = running_task(&world, "worker");
    write_snapshot(&world, "worker", &["up"]);
    let region = world.env.settings().aws.region;
    // A named profile, which the CLI passes to the plugin for ECS Exec only.
    std::fs::write(world.home.path().join("aws-config"), format!("[profile xtask-e2e]\nregion = {region}\n")).unwrap();
    let shared = [("AWS_PROFILE", "xtask-e2e".to_string()), ("AWS_ENDPOINT_URL_ECS", world.stack.url())];

    let mut command = world.xtask_command(&["verify", "properties"]);
    command.envs(shared.iter().cloned());
    run_xtask(command, "verify properties (sessions for the CLI to compare)").assert_code(0);
    let by_xtask = world.plugin_calls();
    let tunnel = by_xtask.iter().find(|c| plugin_argv(c)[4]["Parameters"].is_object()).expect("an SSM tunnel session");
    let exec = by_xtask
        .iter()
        .find(|c| plugin_argv(c)[4]["Target"].as_str().is_some_and(|t| t.ends_with("-temporal-worker")))
        .expect("an ECS Exec session into temporal-worker");

    let cli_tunnel = cli_tunnel_like(&world, tunnel, &shared);
    aws_cli(
        &world,
        &[
            "ecs",
            "execute-command",
            "--region",
            &region,
            "--cluster",
            &world.cluster,
            "--task",
            &task,
            "--container",
            "temporal-worker",
            "--interactive",
            "--command",
            "/bin/true",
        ],
        &shared,
    );
    let cli_exec = &world.plugin_calls().pop().unwrap();

    // SSM: the same argv (the response by name), session and environment.
    assert_same_handover(tunnel, &cli_tunnel);
    assert_eq!(tunnel["argv"][0], "AWS_SSM_START_SESSION_RESPONSE");

    // ECS Exec: the same region, profile, target and endpoint, the same session.
    assert_eq!(plugin_argv(exec)[1..], plugin_argv(cli_exec)[1..]);
    assert_eq!(cli_exec["argv"][3], "xtask-e2e", "the CLI's session profile");
    assert_eq!(exec["response"], cli_exec["response"]);
    assert_eq!(exec["argv"][0], "AWS_SSM_START_SESSION_RESPONSE");
    let cli_session: Value = serde_json::from_str(cli_exec["argv"][0].as_str().unwrap()).unwrap();
    assert_eq!(cli_session, exec["response"], "the CLI's argv holds the session itself");
    let mut exec_env = plugin_env(exec);
    let by_name = exec_env.as_object_mut().unwrap().remove("AWS_SSM_START_SESSION_RESPONSE");
    assert_eq!(by_name, Some(cli_session));
    assert_eq!(exec_env, plugin_env(cli_exec));

    // A plugin too old for the variable (1.2.497.0 or older) gets the session in argv from both.
    let old = [shared.to_vec(), vec![("STANDIN_PLUGIN_VERSION", "1.2.497.0".to_string())]].concat();
    let mut command = world.xtask_command(&["logs", "worker", "--since", "5m"]);
    command.envs(old.iter().cloned());
    let run = run_xtask(command, "logs worker (a plugin of 1.2.497.0)");
    run.assert_code(0);
    assert!(!run.stderr.contains("stand-in-token"), "the session in argv is masked in the log: {}", run.stderr);
    let tunnel = world.plugin_calls().pop().unwrap();
    assert_eq!(tunnel["argv"][0].as_str().map(|a| a.starts_with('{')), Some(true), "{tunnel}");
    assert_same_handover(&tunnel, &cli_tunnel_like(&world, &tunnel, &old));
}

/// `aws ssm start-session` of the same target, document and parameters as xtask's `tunnel`
/// session: the plugin call it made.
fn cli_tunnel_like(world: &World, tunnel: &Value, env: &[(&str, String)]) -> Value {
    let request = &plugin_argv(tunnel)[4];
    let parameters: Vec<String> = request["Parameters"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| format!("{k}={}", v[0].as_str().unwrap()))
        .collect();
    let region = world.env.settings().aws.region;
    let args = [
        "ssm",
        "start-session",
        "--region",
        &region,
        "--target",
        request["Target"].as_str().unwrap(),
        "--document-name",
        request["DocumentName"].as_str().unwrap(),
        "--parameters",
        &parameters.join(","),
    ];
    aws_cli(world, &args, env);
    world.plugin_calls().pop().unwrap()
}

/// Two SSM sessions reached the plugin alike: argv (JSON compared parsed), session, environment.
fn assert_same_handover(by_xtask: &Value, by_cli: &Value) {
    assert_eq!(plugin_argv(by_xtask), plugin_argv(by_cli));
    assert_eq!(by_xtask["response"], by_cli["response"]);
    assert_eq!(plugin_env(by_xtask), plugin_env(by_cli));
}

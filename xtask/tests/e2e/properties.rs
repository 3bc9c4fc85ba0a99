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
    // Each exec's session reached the plugin as the AWS CLI hands it over: the session in the
    // environment variable argv names, the target by the container's runtime id, ECS's endpoint.
    let sessions: Vec<Value> = world
        .plugin_calls()
        .into_iter()
        .filter(|c| !c["argv"][4].as_str().unwrap().contains("\"Parameters\""))
        .collect();
    assert_eq!(sessions.len(), 2, "{sessions:?}");
    for (call, container) in sessions.iter().zip(["temporal-worker", "alloy"]) {
        let argv: Vec<&str> = call["argv"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
        assert_eq!(argv[..4], ["AWS_SSM_START_SESSION_RESPONSE", region.as_str(), "StartSession", ""], "{argv:?}");
        let request: Value = serde_json::from_str(argv[4]).unwrap();
        assert_eq!(request, json!({"Target": format!("ecs:{}_{task}_{task}-{container}", world.cluster)}));
        assert_eq!(argv[5], world.stack.url(), "the ECS endpoint ExecuteCommand went to");
        assert_eq!(argv.len(), 6, "{argv:?}");
        assert_eq!(
            call["response"],
            json!({"sessionId": format!("ecs-execute-command-{task}"), "streamUrl": "wss://ssmmessages.invalid/v1/data-channel/xtask-test", "tokenValue": "stand-in-token"})
        );
    }
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

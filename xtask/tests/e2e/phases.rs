//! The migration phases end to end against the stand-ins (see `common`): what runs, in which
//! order, what the env file says before and after, and the failure paths: a failed checkpoint
//! rolls back, an interrupted run resumes, and bad input changes nothing.

use std::time::{Duration, Instant};

use crate::common::*;
use serde_json::{json, Value};
use settings::Collector;
use standins::observability::StackState;

/// A plan that replaces the worker's task definition, as moving it to Alloy does.
fn worker_plan() -> Value {
    json!({"resource_changes": [
        {"address": "module.temporal_worker.aws_ecs_task_definition.this", "change": {"actions": ["delete", "create"]}},
        {"address": "module.temporal_worker.aws_ecs_service.this[0]", "change": {"actions": ["update"]}},
        {"address": "aws_ssm_parameter.alloy[\"worker\"]", "change": {"actions": ["no-op"]}},
        {"address": "aws_s3_bucket.loki[0]", "change": {"actions": ["no-op"]}},
    ]})
}

/// Loki deployed, the worker still on ADOT, everything checkpoint 5 looks at healthy.
fn ready_to_migrate_worker(state: StackState) -> World {
    let world = World::worker_on_adot(state);
    world.set_terraform(&world.outputs(), &worker_plan(), None);
    world
}

fn healthy_worker(world_cluster: &str) -> StackState {
    StackState { up: vec![("worker".into(), world_cluster.into(), 1.0)], ..StackState::default() }
}

fn subcommands(calls: &[Vec<String>]) -> Vec<String> {
    calls.iter().map(|argv| argv[0].clone()).collect()
}

fn collector(world: &World, service: &str) -> Collector {
    world.env.settings().services.get(service).unwrap().collector
}

// req: 8.2, 8.1
#[test]
fn migrate_moves_one_service_and_records_it_only_after_checkpoint_5() {
    let world = ready_to_migrate_worker(healthy_worker(&example_cluster()));
    let before = world.env.text();

    // The dry run shows the live plan and changes nothing.
    let run = world.xtask(&["migrate-sidecars"]);
    run.assert_code(0);
    assert!(run.stdout.contains("migrate worker to alloy (env `dev`): dry run"), "{}", run.stdout);
    assert!(run.stdout.contains("replace") || run.stdout.contains("delete+create"), "{}", run.stdout);
    assert!(!subcommands(&world.terraform_calls()).contains(&"apply".to_string()));
    assert_eq!(world.env.text(), before);

    let run = world.xtask(&["migrate-sidecars", "--execute"]);
    run.assert_code(0);
    assert!(run.stdout.contains("worker runs Alloy and passed checkpoint 5"), "{}", run.stdout);
    // Worker first, and only the worker: the env file changed in exactly that line.
    assert_eq!(collector(&world, "worker"), Collector::Alloy);
    assert_eq!(collector(&world, "history"), Collector::Adot);
    let after = world.env.text();
    let changed: Vec<(&str, &str)> = before.lines().zip(after.lines()).filter(|(a, b)| a != b).collect();
    assert_eq!(changed, vec![("collector = \"adot\"", "collector = \"alloy\"")]);

    let calls = world.terraform_calls();
    let executed: Vec<String> = subcommands(&calls).into_iter().skip_while(|c| c != "apply").collect();
    assert_eq!(executed, vec!["apply", "output"], "{calls:?}");
    let plan = calls.iter().rev().find(|argv| argv[0] == "plan").unwrap();
    let var_file = plan.iter().find_map(|a| a.strip_prefix("-var-file=")).unwrap();
    let tfvars = std::fs::read_to_string(var_file).unwrap();
    assert!(tfvars.contains("\"worker\"           = \"alloy\""), "{tfvars}");
    assert!(tfvars.contains("\"history\"          = \"adot\""), "{tfvars}");
    // The rendered tfvars of the env follow the recorded change.
    let rendered = std::fs::read_to_string(world.env.repo().join("rendered/dev/terraform.tfvars")).unwrap();
    assert!(rendered.contains("\"worker\"           = \"alloy\""), "{rendered}");
    world.assert_no_tunnel_left();
}

// req: 8.4
#[test]
fn a_failed_checkpoint_rolls_the_service_back_and_leaves_the_env_file() {
    // Nothing reaches AMP for the worker: checkpoint 5 fails.
    let world = ready_to_migrate_worker(StackState::default());
    let before = world.env.text();
    let run = world.xtask(&["migrate-sidecars", "--service", "worker", "--execute"]);
    run.assert_code(1);
    assert!(run.stderr.contains("FAIL  worker: metrics in amp"), "{}", run.stderr);
    assert!(run.stderr.contains("rolling it back to ADOT"), "{}", run.stderr);
    assert!(run.stderr.contains("it is back on ADOT and envs/dev.toml is unchanged"), "{}", run.stderr);
    assert_eq!(world.env.text(), before);

    // Two plans and two applies: to Alloy, then back; the second with the worker on ADOT.
    let calls = world.terraform_calls();
    let plans: Vec<&Vec<String>> = calls.iter().filter(|argv| argv[0] == "plan").collect();
    assert_eq!(plans.len(), 2, "{calls:?}");
    assert_eq!(subcommands(&calls).iter().filter(|c| *c == "apply").count(), 2, "{calls:?}");
    let rollback_vars = plans[1].iter().find_map(|a| a.strip_prefix("-var-file=")).unwrap();
    assert!(std::fs::read_to_string(rollback_vars).unwrap().contains("\"worker\"           = \"adot\""));
    assert!(
        !world.env.repo().join("infra/.terraform/envs/dev/migrating").exists(),
        "the journal is cleared after a rollback"
    );
    world.assert_no_tunnel_left();
}

// req: 8.2
#[test]
fn an_interrupted_migration_resumes_with_the_same_service() {
    let world = ready_to_migrate_worker(healthy_worker(&example_cluster()));
    let before = world.env.text();
    // ECS through the stand-in, which keeps the worker's rollout going until the test ends it.
    let worker = world.service_name("worker");
    {
        let mut state = world.stack.state();
        state.ecs_upstream = Some(world.moto.endpoint());
        state.held_rollouts.insert(worker.clone());
    }
    let output = world.home.path().join("interrupted-run.log");
    let log = std::fs::File::create(&output).unwrap();
    let mut child = world
        .xtask_command(&["migrate-sidecars", "--all", "--execute"])
        .env("AWS_ENDPOINT_URL_ECS", world.stack.url())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    // Applied, and now waiting for ECS: it cannot get past the wait while the rollout is held.
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut held_before_apply = None;
    loop {
        let printed = std::fs::read_to_string(&output).unwrap_or_default();
        assert!(child.try_wait().unwrap().is_none(), "the run ended before waiting for ECS:\n{printed}");
        assert!(Instant::now() < deadline, "the run never waited for the worker's rollout:\n{printed}");
        let held = world.stack.state().held_answers;
        match held_before_apply {
            None if subcommands(&world.terraform_calls()).contains(&"apply".to_string()) => {
                held_before_apply = Some(held)
            }
            Some(before) if held > before => break,
            _ => {}
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!interrupt(&mut child).success());
    let printed = std::fs::read_to_string(&output).unwrap_or_default();
    assert_eq!(world.env.text(), before, "an interrupted phase records nothing:\n{printed}");
    assert!(!printed.contains("passed checkpoint 5"), "{printed}");
    let journal = world.env.repo().join("infra/.terraform/envs/dev/migrating");
    assert_eq!(std::fs::read_to_string(&journal).unwrap(), "worker");

    // ECS catches up; the rerun names the service it takes up and finishes it first.
    world.stack.state().held_rollouts.clear();
    let run = world.xtask(&["migrate-sidecars", "--service", "history", "--execute"]);
    assert!(run.stderr.contains("Resuming: the last run stopped while moving worker to Alloy"), "{}", run.stderr);
    assert_eq!(collector(&world, "worker"), Collector::Alloy, "{}", run.stderr);
    // The stand-in's plan is the worker's, so history's plan is refused before anything is
    // applied: nothing is in flight afterwards.
    run.assert_code(1);
    assert!(run.stderr.contains("would also change resources outside this phase"), "{}", run.stderr);
    assert!(!journal.exists());
    assert_eq!(collector(&world, "history"), Collector::Adot);
}

// req: 8.1, 8.3
#[test]
fn cleanup_is_refused_while_a_service_uses_adot() {
    let world = World::bare(&["worker"], StackState::default());
    settings::set(&world.env.path, &["loki", "enabled"], true.into()).unwrap();
    let before = world.env.text();
    let run = world.xtask(&["cleanup-adot", "--execute"]);
    run.assert_code(2);
    // benchmark-worker is disabled: no task, no sidecar, so it holds nothing up.
    assert!(
        run.stderr.contains(
            "cleanup adot cannot run yet: matching, history, frontend still use ADOT in `dev`; move them first: \
             `cargo xtask migrate-sidecars --env dev --all --execute`"
        ),
        "{}",
        run.stderr
    );
    assert_eq!(world.env.text(), before);
    assert!(world.terraform_calls().is_empty(), "nothing ran: {:?}", world.terraform_calls());
}

#[test]
fn plans_reaching_outside_the_phase_or_a_held_lock_stop_before_apply() {
    let world = ready_to_migrate_worker(healthy_worker(&example_cluster()));
    let before = world.env.text();
    let mut plan = worker_plan();
    plan["resource_changes"]
        .as_array_mut()
        .unwrap()
        .push(json!({"address": "module.temporal_history.aws_ecs_service.this[0]", "change": {"actions": ["update"]}}));
    world.set_terraform(&world.outputs(), &plan, None);
    let run = world.xtask(&["migrate-sidecars", "--execute"]);
    run.assert_code(1);
    assert!(run.stderr.contains("would also change resources outside this phase"), "{}", run.stderr);
    assert!(run.stderr.contains("module.temporal_history.aws_ecs_service.this[0] (update)"), "{}", run.stderr);
    assert!(!subcommands(&world.terraform_calls()).contains(&"apply".to_string()));
    assert_eq!(world.env.text(), before);

    world.set_terraform(
        &world.outputs(),
        &worker_plan(),
        Some((1, "Error: Error acquiring the state lock\n\nLock Info:\n  ID:        8d1e-77aa\n")),
    );
    let run = world.xtask(&["migrate-sidecars", "--execute"]);
    run.assert_code(2);
    assert!(
        run.stderr.contains("locked by another run (lock ID 8d1e-77aa)")
            && run.stderr.contains("force-unlock 8d1e-77aa"),
        "{}",
        run.stderr
    );
    assert!(!subcommands(&world.terraform_calls()).contains(&"apply".to_string()));
    assert_eq!(world.env.text(), before);
}

#[test]
fn bad_input_changes_nothing_and_exits_2() {
    let world = World::bare(&[], StackState::default());
    let before = world.env.text();

    // --execute without credentials: refused before Terraform runs.
    let mut command = world.xtask_command(&["deploy", "loki", "--execute"]);
    command.env_remove("AWS_ACCESS_KEY_ID").env_remove("AWS_SECRET_ACCESS_KEY");
    let out = command.output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no usable AWS credentials"));
    assert!(world
        .terraform_calls()
        .iter()
        .all(|argv| argv[0] != "init" || argv.contains(&"-backend=false".to_string())));

    // A checkpoint's phase before its prerequisite: migrating without Loki.
    let run = world.xtask(&["migrate-sidecars", "--execute"]);
    run.assert_code(2);
    assert!(run.stderr.contains("Loki is not deployed in `dev` (loki.enabled = false)"), "{}", run.stderr);

    // Unknown service.
    settings::set(&world.env.path, &["loki", "enabled"], true.into()).unwrap();
    let enabled = world.env.text();
    let run = world.xtask(&["migrate-sidecars", "--service", "scheduler"]);
    run.assert_code(2);
    assert!(
        run.stderr.contains(
            "unknown service `scheduler`; expected one of: worker, benchmark-worker, matching, history, frontend"
        ),
        "{}",
        run.stderr
    );
    assert_eq!(world.env.text(), enabled);

    // Malformed and unknown-key env files: the file, the key and the allowed values are named.
    std::fs::write(&world.env.path, before.replace("[loki]\n", "[loki]\nretension = 3\n")).unwrap();
    let run = world.xtask(&["deploy", "loki"]);
    run.assert_code(2);
    assert!(run.stderr.contains("envs/dev.toml") && run.stderr.contains("retension"), "{}", run.stderr);
    std::fs::write(&world.env.path, before.replace("collector = \"adot\"", "collector = \"fluentd\"")).unwrap();
    let run = world.xtask(&["deploy", "loki"]);
    run.assert_code(2);
    assert!(run.stderr.contains("fluentd") && run.stderr.contains("`adot` or `alloy`"), "{}", run.stderr);

    // Unknown environment.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["deploy", "loki", "--env", "nope"])
        .env_clear()
        .envs(world.env_vars())
        .current_dir(root())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no environment `nope`"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

// req: 1.1, 8.1
#[test]
fn deploy_loki_applies_the_loki_plan_and_records_it_after_checkpoint_2() {
    let world = World::deployed(&[], StackState::default());
    // Loki's service runs revision 3, and revision 2 is registered: the plan must keep the config
    // parameters both read (issue 17.5: a rollback reads its own), and only this project's Alloy
    // and Loki ones.
    let parameter = |name: &str| format!("arn:aws:ssm:{}:{}:parameter{name}", world.api.region, world.account);
    let family = world.loki_service();
    let register = |containers: Value| {
        world.ecs(
            "RegisterTaskDefinition",
            json!({"family": family, "networkMode": "awsvpc", "containerDefinitions": containers}),
        )
    };
    register(json!([{"name": "loki-init", "image": "stand-in:1", "memory": 64,
                     "secrets": [{"name": "LOKI_CONFIG", "valueFrom": parameter("/temporal-dev/loki/config.yaml")}]}]));
    let current = register(json!([
        {"name": "loki-init", "image": "stand-in:1", "memory": 64,
         "secrets": [{"name": "LOKI_CONFIG", "valueFrom": parameter("/temporal-dev/loki/config-0123456789ab.yaml")}]},
        {"name": "alloy", "image": "stand-in:1", "memory": 64,
         "secrets": [{"name": "ALLOY_CONFIG", "valueFrom": parameter("/temporal-dev/alloy/loki/0123456789ab")},
                     {"name": "OTHER", "valueFrom": parameter("/another-project/alloy/loki")}]},
    ]))["taskDefinition"]["taskDefinitionArn"]
        .as_str()
        .expect("the registered ARN")
        .to_string();
    world.ecs("UpdateService", json!({"cluster": world.cluster, "service": family, "taskDefinition": current}));
    // One of them is gone (deleted by hand): it is named, and left out (Terraform cannot keep it).
    world.stack.state().ecs_upstream = Some(world.moto.endpoint());
    for name in ["/temporal-dev/loki/config.yaml", "/temporal-dev/loki/config-0123456789ab.yaml"] {
        world.call("ssm", "PutParameter", json!({"Name": name, "Value": "auth_enabled: false", "Type": "String"}));
    }
    let before = world.env.text();
    let plan = json!({"resource_changes": [
        {"address": "aws_s3_bucket.loki[0]", "change": {"actions": ["create"]}},
        {"address": "aws_ecs_service.loki[0]", "change": {"actions": ["create"]}},
        {"address": "aws_vpc_security_group_ingress_rule.loki_from_temporal[0]", "change": {"actions": ["create"]}},
        {"address": "module.temporal_worker.aws_ecs_service.this[0]", "change": {"actions": ["no-op"]}},
    ]});
    world.set_terraform(&world.outputs(), &plan, None);

    let run = world.xtask(&["deploy", "loki", "--execute"]);
    run.assert_code(0);
    assert!(run.stdout.contains("Loki is deployed and passed checkpoint 2"), "{}", run.stdout);
    assert!(run.stderr.contains("pass  loki ready"), "{}", run.stderr);
    assert!(world.env.settings().loki.enabled);
    let after = world.env.text();
    let changed: Vec<(&str, &str)> = before.lines().zip(after.lines()).filter(|(a, b)| a != b).collect();
    assert_eq!(changed, vec![("enabled = false", "enabled = true")]);

    // init against the env's backend, plan with loki_enabled = true, show, apply, outputs.
    let calls = world.terraform_calls();
    let init = calls.iter().find(|argv| argv[0] == "init").unwrap();
    assert!(init.contains(&"-backend-config=bucket=temporal-dev-terraform-state".to_string()), "{init:?}");
    assert!(init.contains(&"-backend-config=use_lockfile=true".to_string()), "{init:?}");
    let order: Vec<String> = subcommands(&calls).into_iter().filter(|c| c != "output").collect();
    assert_eq!(order, vec!["init", "plan", "show", "apply"], "{calls:?}");
    let plan = calls.iter().find(|argv| argv[0] == "plan").unwrap();
    let var_file = plan.iter().find_map(|a| a.strip_prefix("-var-file=")).unwrap();
    let tfvars = std::fs::read_to_string(var_file).unwrap();
    assert!(tfvars.lines().any(|l| l.starts_with("loki_enabled ") && l.ends_with("= true")), "{tfvars}");
    assert!(
        tfvars.contains("\nconfig_parameters_in_use = [\"/temporal-dev/loki/config-0123456789ab.yaml\",\"/temporal-dev/loki/config.yaml\"]\n"),
        "{tfvars}"
    );
    let gone = format!(
        "warning: SSM parameter /temporal-dev/alloy/loki/0123456789ab, which {current} reads, no longer exists"
    );
    assert!(run.stderr.contains(&gone), "{}", run.stderr);
    assert!(run.stderr.contains("read the deployments of ECS services"), "{}", run.stderr);
    world.assert_no_tunnel_left();
}

/// An ECS endpoint in front of moto that refuses the first DescribeServices calls as `fault`
/// says, and counts every DescribeServices call.
fn faulty_describe_services(
    world: &World,
    fault: impl Fn(u32) -> Option<standins::http::Answer> + Send + Sync + 'static,
) -> (standins::http::HttpServer, std::sync::Arc<std::sync::atomic::AtomicU32>) {
    use std::sync::atomic::{AtomicU32, Ordering};
    let calls = std::sync::Arc::new(AtomicU32::new(0));
    let counter = std::sync::Arc::clone(&calls);
    let proxy = fault_proxy(world.moto.endpoint(), move |req| {
        let target = req.header("x-amz-target").unwrap_or_default();
        if !target.ends_with(".DescribeServices") {
            return None;
        }
        fault(counter.fetch_add(1, Ordering::SeqCst))
    });
    (proxy, calls)
}

fn ecs_error(status: u16, kind: &str) -> standins::http::Answer {
    standins::http::Answer::json(status, &json!({"__type": kind, "message": "stand-in fault"}))
}

// req: 8.2
// The wait for ECS after an apply is a poll: a throttled or failing DescribeServices is retried as
// the SDKs retry it, a poll that runs out of attempts polls on, and the phase passes.
#[test]
fn a_throttled_and_failing_ecs_wait_polls_on_and_the_phase_passes() {
    let world = ready_to_migrate_worker(healthy_worker(&example_cluster()));
    // Call 0 reads the metrics snapshot, call 1 the config parameters in use, both before the
    // plan. Calls 2-5 throttled: the first poll's 3 attempts and the second poll's first; call 6 a 500.
    let (proxy, calls) = faulty_describe_services(&world, |call| match call {
        2..=5 => Some(ecs_error(400, "ThrottlingException")),
        6 => Some(ecs_error(500, "ServerException")),
        _ => None,
    });
    let mut command = world.xtask_command(&["migrate-sidecars", "--execute"]);
    command.env("AWS_ENDPOINT_URL_ECS", proxy.url());
    let run = run_xtask(command, "migrate-sidecars with ECS throttling, then failing");
    run.assert_code(0);
    assert!(run.stdout.contains("worker runs Alloy and passed checkpoint 5"), "{}", run.stdout);
    assert_eq!(collector(&world, "worker"), Collector::Alloy);
    let waited = |needle: &str| run.stderr.matches(needle).count();
    assert_eq!(waited("ECS DescribeServices: HTTP 400 ThrottlingException; attempt"), 3, "{}", run.stderr);
    assert_eq!(waited("ECS DescribeServices: HTTP 500 ServerException; attempt 3 of 3"), 1, "{}", run.stderr);
    assert_eq!(
        waited("was refused 3 times: HTTP 400: ThrottlingException: stand-in fault); polling on"),
        1,
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("no metrics snapshot"), "{}", run.stderr);
    assert!(calls.load(std::sync::atomic::Ordering::SeqCst) >= 8, "the wait went on to an answer");
}

// A phase whose ECS wait is refused by something no retry helps (AccessDenied) fails at once,
// naming it, and rolls back.
#[test]
fn an_ecs_wait_refused_for_good_fails_without_retrying() {
    let world = ready_to_migrate_worker(healthy_worker(&example_cluster()));
    let before = world.env.text();
    // Calls 0 and 1 (before the plan) answered, the wait's refused.
    let (proxy, calls) =
        faulty_describe_services(&world, |call| (call >= 2).then(|| ecs_error(400, "AccessDeniedException")));
    let mut command = world.xtask_command(&["migrate-sidecars", "--execute"]);
    command.env("AWS_ENDPOINT_URL_ECS", proxy.url());
    let run = run_xtask(command, "migrate-sidecars with DescribeServices denied");
    run.assert_code(1);
    assert!(run.stderr.contains("AccessDeniedException: stand-in fault"), "{}", run.stderr);
    assert!(!run.stderr.contains("DescribeServices: HTTP 400 AccessDeniedException; attempt"), "{}", run.stderr);
    assert_eq!(world.env.text(), before);
    assert!(
        subcommands(&world.terraform_calls()).contains(&"apply".to_string()),
        "refused in the wait, after the apply"
    );
    assert!(calls.load(std::sync::atomic::Ordering::SeqCst) >= 3);
}

// A clock an hour behind AWS's: the first signed call is refused as expired, the signing clock
// moves to the server's Date, and everything after is signed right, as the SDKs correct skew.
#[test]
fn a_skewed_clock_is_corrected_from_the_servers_date() {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::{SystemTime, UNIX_EPOCH};
    let world = ready_to_migrate_worker(healthy_worker(&example_cluster()));
    let server_now = || SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() + 3600;
    let refused = std::sync::Arc::new(AtomicU32::new(0));
    let counter = std::sync::Arc::clone(&refused);
    let proxy = fault_proxy(world.moto.endpoint(), move |req| {
        let signed = req.header("x-amz-date").unwrap_or_default();
        // SigV4 allows 5 minutes; the fixed-width dates compare as strings.
        (signed < amz_date(server_now() - 300).as_str()).then(|| {
            counter.fetch_add(1, Ordering::SeqCst);
            ecs_error(403, "InvalidSignatureException").with_header("Date", &http_date(server_now()))
        })
    });
    let mut command = world.xtask_command(&["migrate-sidecars", "--execute"]);
    command.env("AWS_ENDPOINT_URL_ECS", proxy.url());
    let run = run_xtask(command, "migrate-sidecars with the local clock an hour slow");
    run.assert_code(0);
    assert_eq!(refused.load(Ordering::SeqCst), 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("HTTP 403 InvalidSignatureException; signing with the server's clock; attempt 2 of 3"),
        "{}",
        run.stderr
    );
}

// req: 8.4
#[test]
fn in_use_prints_the_configs_a_rollback_needs_as_a_var_file() {
    let world = World::deployed(&["worker"], StackState::default());
    world.stack.state().ecs_upstream = Some(world.moto.endpoint());
    let parameter = |name: &str| format!("arn:aws:ssm:{}:{}:parameter{name}", world.api.region, world.account);
    // The worker runs on Alloy, and its previous revision (ADOT) is what a rollback starts.
    let family = world.service_name("worker");
    for secrets in [
        json!([{"name": "ADOT_CONFIG", "valueFrom": parameter("/temporal-dev/adot/sidecar")}]),
        json!([{"name": "ALLOY_CONFIG", "valueFrom": parameter("/temporal-dev/alloy/worker/0123456789ab")}]),
    ] {
        let registered = world.ecs(
            "RegisterTaskDefinition",
            json!({"family": family, "networkMode": "awsvpc",
                   "containerDefinitions": [{"name": "sidecar", "image": "stand-in:1", "memory": 64, "secrets": secrets}]}),
        );
        let arn = registered["taskDefinition"]["taskDefinitionArn"].as_str().unwrap().to_string();
        world.ecs("UpdateService", json!({"cluster": world.cluster, "service": family, "taskDefinition": arn}));
    }
    for name in ["/temporal-dev/adot/sidecar", "/temporal-dev/alloy/worker/0123456789ab"] {
        world.call("ssm", "PutParameter", json!({"Name": name, "Value": "config", "Type": "String"}));
    }
    let before = world.env.text();

    let run = world.xtask(&["in-use"]);
    run.assert_code(0);
    assert_eq!(
        run.stdout,
        "config_parameters_in_use = [\"/temporal-dev/adot/sidecar\",\"/temporal-dev/alloy/worker/0123456789ab\"]\n",
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("-var-file=in-use.tfvars"), "{}", run.stderr);
    let json = world.xtask(&["in-use", "--json"]);
    json.assert_code(0);
    let names: Vec<String> = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(names, ["/temporal-dev/adot/sidecar", "/temporal-dev/alloy/worker/0123456789ab"]);
    assert!(world.terraform_calls().iter().all(|argv| argv[0] != "plan" && argv[0] != "apply"));
    assert_eq!(world.env.text(), before, "in-use changes nothing");
}

/// The services xtask asked ECS to roll (UpdateService with forceNewDeployment), in order.
fn rolled(world: &World) -> Vec<String> {
    let xtask = &world.xtask_credentials.access_key_id;
    let requests = world.moto.requests_with(&[xtask]).expect("moto's recording");
    let stand_in = world.stack.state().aws_requests.clone();
    // Each once: what reached moto directly, and what the stand-in took (and maybe forwarded).
    requests
        .iter()
        .filter(|r| signed_by(r, xtask) && !r.headers.contains_key(standins::observability::PROXIED))
        .chain(&stand_in)
        .filter(|r| r.headers.get("x-amz-target").is_some_and(|t| t.ends_with(".UpdateService")))
        .filter_map(|r| serde_json::from_slice::<Value>(&r.body).ok())
        .filter(|body| body["forceNewDeployment"] == true)
        .map(|body| body["service"].as_str().unwrap_or_default().to_string())
        .collect()
}

// req: 8.2
#[test]
fn a_replaced_loki_service_rolls_its_clients_once_and_a_count_change_rolls_none() {
    let world = World::deployed(&["worker"], StackState::default());
    settings::set(&world.env.path, &["loki", "enabled"], true.into()).unwrap();
    world.stack.state().ecs_upstream = Some(world.moto.endpoint());
    let count_change = json!({"resource_changes": [
        {"address": "module.temporal_worker.aws_ecs_service.this[0]", "change": {"actions": ["update"],
            "before": {"desired_count": 1}, "after": {"desired_count": 2}}},
    ]});
    world.set_terraform(&world.outputs(), &count_change, None);
    world.xtask(&["deploy", "baseline", "--execute"]).assert_code(0);
    assert_eq!(rolled(&world), Vec::<String>::new(), "a desired_count change rolls nothing");

    let replaced = json!({"resource_changes": [
        {"address": "aws_ecs_service.loki[0]", "change": {"actions": ["delete", "create"]}},
    ]});
    world.set_terraform(&world.outputs(), &replaced, None);
    let run = world.xtask(&["deploy", "baseline", "--execute"]);
    run.assert_code(0);
    // The Alloy service and Grafana, once each; the services on ADOT push nothing to Loki.
    assert_eq!(rolled(&world), [world.service_name("worker"), world.grafana_service()], "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!("rolling ECS service {} once", world.service_name("worker"))),
        "{}",
        run.stderr
    );
    let dry = world.xtask(&["deploy", "loki"]);
    assert!(
        dry.stdout.contains("if the plan creates or replaces Loki's ECS service: roll each service"),
        "{}",
        dry.stdout
    );
}

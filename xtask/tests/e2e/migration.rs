//! The whole migration of the example env by commands alone, against the stand-ins (see
//! `common`): init → baseline → loki → every service → grafana → cleanup-adot → verify 9, with
//! what each later phase says (offline, exit 2) while the phase before it has not run.

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};

use crate::common::*;
use serde_json::{json, Value};
use settings::Collector;

/// The services the example env runs (benchmark-worker is disabled there).
const ENABLED: [&str; 4] = ["history", "matching", "frontend", "worker"];

/// A `terraform show -json` plan updating these addresses.
fn plan(addresses: &[&str]) -> Value {
    let changes: Vec<Value> =
        addresses.iter().map(|a| json!({"address": a, "change": {"actions": ["update"]}})).collect();
    json!({ "resource_changes": changes })
}

/// The built binary with exactly `args` (no `--env` appended) in the world's environment.
fn xtask_plain(world: &World, args: &[&str]) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_xtask"));
    command.args(args).current_dir(root()).env_clear().envs(world.env_vars()).stdin(Stdio::null());
    run_xtask(command, &format!("{args:?}"))
}

/// `args` without AWS credentials: what it says comes from the arguments and the env file alone.
fn offline(world: &World, args: &[&str]) -> Run {
    let mut command = world.xtask_command(args);
    command.env_remove("AWS_ACCESS_KEY_ID").env_remove("AWS_SECRET_ACCESS_KEY");
    run_xtask(command, &format!("{args:?} (no credentials)"))
}

/// Refused with exit 2, naming the command that must run first, not the (missing) credentials.
fn assert_not_yet(run: &Run, first: &str) {
    run.assert_code(2);
    assert!(run.stderr.contains(&format!("`{first}` first")), "{first} not named:\n{}", run.stderr);
    assert!(!run.stderr.contains("no usable AWS credentials"), "{}", run.stderr);
    assert!(!run.stdout.contains("Run again with --execute"), "{}", run.stdout);
}

fn git(repo: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(["-c", "user.name=test", "-c", "user.email=test@example.com"])
        .args(args)
        .current_dir(repo)
        .output()
        .expect("run git");
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn collectors(world: &World) -> Vec<(&'static str, Collector)> {
    world.env.settings().services.iter().map(|(name, s)| (name, s.collector)).collect()
}

// req: 8.1, 8.2, 8.3, 8.5
#[test]
fn the_example_env_migrates_end_to_end_by_commands_alone() {
    let world = World::deployed(&ENABLED, healthy_stack(&example_cluster(), &ENABLED));
    // SSM parameter calls (cleanup's after-check) pass through the stand-in to moto.
    world.stack.state().ecs_upstream = Some(world.moto.endpoint());
    for service in ENABLED {
        world.stack.add_service_lines(service, &world.cluster, &container(service), &[r#"{"msg":"started"}"#]);
    }
    let repo = world.env.repo();
    // The Grafana image's tag names the Dockerfile's version and the commit of grafana/.
    std::fs::create_dir_all(repo.join("grafana")).unwrap();
    std::fs::copy(root().join("grafana/Dockerfile"), repo.join("grafana/Dockerfile")).unwrap();
    git(repo, &["init", "-q"]);
    git(repo, &["add", "grafana"]);
    git(repo, &["commit", "-q", "-m", "grafana"]);

    // ---- init: the example as a new environment ---------------------------------------------
    std::fs::remove_file(&world.env.path).unwrap();
    std::fs::copy(root().join("envs/example.toml"), repo.join("envs/example.toml")).unwrap();
    let init = ["init", "dev", "--region", "eu-west-1", "--account-id", &world.account];
    xtask_plain(&world, &[&init[..], &["--state-bucket", "temporal-dev-terraform-state"]].concat()).assert_code(0);
    // The operator sets the ids of their platform (every phase refuses the example's).
    set_own_ids(&world.env.path);
    assert!(collectors(&world).iter().all(|(_, c)| *c == Collector::Adot), "{:?}", collectors(&world));
    assert!(!world.env.settings().loki.enabled);

    // ---- before phase 1: every later phase previews, then says what comes first -------------
    let deploy_loki = "cargo xtask deploy loki --env dev --execute";
    let run = offline(&world, &["migrate-sidecars"]);
    assert_not_yet(&run, deploy_loki);
    assert!(run.stdout.contains("migrate worker to alloy (env `dev`): dry run"), "{}", run.stdout);
    assert!(run.stdout.contains("services.worker.collector = \"alloy\""), "{}", run.stdout);
    assert!(run.stdout.contains("one of worker's resources"), "{}", run.stdout);
    assert!(run.stdout.contains("Not yet: --execute would refuse now, because Loki is not deployed"), "{}", run.stdout);
    let run = offline(&world, &["deploy", "grafana"]);
    assert_not_yet(&run, deploy_loki);
    assert!(run.stdout.contains("versions.grafana_image = "), "{}", run.stdout);
    let run = offline(&world, &["cleanup-adot"]);
    assert_not_yet(&run, deploy_loki);
    assert!(
        run.stdout.contains("services.benchmark-worker.collector = \"alloy\", adot.enabled = false"),
        "{}",
        run.stdout
    );
    for args in [&["verify", "5"][..], &["verify", "9"], &["logs", "worker"], &["migrate-sidecars", "--execute"]] {
        assert_not_yet(&offline(&world, args), deploy_loki);
    }
    // Arguments come before the phase order.
    let run = offline(&world, &["migrate-sidecars", "--service", "nosuch"]);
    run.assert_code(2);
    assert!(run.stderr.contains("unknown service `nosuch`"), "{}", run.stderr);
    assert!(world.terraform_calls().iter().all(|argv| argv[0] != "plan"), "{:?}", world.terraform_calls());

    // A dry run into a closed pipe (`| head`) ends by SIGPIPE, without a panic.
    let mut child =
        world.xtask_command(&["deploy", "loki"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.signal(), Some(libc::SIGPIPE), "{:?}: {stderr}", out.status);
    assert!(!stderr.contains("panicked"), "{stderr}");

    // ---- baseline, then phase 1: Loki ---------------------------------------------------------
    world.set_terraform(&world.outputs(), &plan(&["aws_ssm_parameter.adot[0]", "aws_ecr_repository.grafana"]), None);
    let run = world.xtask(&["deploy", "baseline", "--execute"]);
    run.assert_code(0);
    assert!(run.stdout.contains("Next: `cargo xtask deploy loki --env dev`"), "{}", run.stdout);
    world.set_terraform(&world.outputs(), &plan(&["aws_ecs_service.loki[0]", "aws_s3_bucket.loki[0]"]), None);
    let run = world.xtask(&["deploy", "loki", "--execute"]);
    run.assert_code(0);
    assert!(run.stdout.contains("Next: `cargo xtask migrate-sidecars --env dev`"), "{}", run.stdout);
    assert!(world.env.settings().loki.enabled);
    assert_not_yet(&offline(&world, &["verify", "7"]), "cargo xtask deploy grafana --env dev --execute");

    // ---- phase 2: the worker first, then every other enabled service --------------------------
    let worker_plan = plan(&["module.temporal_worker.aws_ecs_task_definition.this", "terraform_data.collector_choice"]);
    world.set_terraform(&world.outputs(), &worker_plan, None);
    world.xtask(&["migrate-sidecars", "--execute"]).assert_code(0);
    // The collector choice is the one change inside every service's phase.
    world.set_terraform(&world.outputs(), &plan(&["terraform_data.collector_choice"]), None);
    let run = world.xtask(&["migrate-sidecars", "--all", "--execute"]);
    run.assert_code(0);
    for service in ["matching", "history", "frontend"] {
        assert!(run.stdout.contains(&format!("{service} runs Alloy and passed checkpoint 5")), "{}", run.stdout);
    }
    // benchmark-worker is disabled: nothing to move, and nothing points at a command that cannot help.
    for args in [
        &["migrate-sidecars"][..],
        &["migrate-sidecars", "--all"],
        &["migrate-sidecars", "--service", "benchmark-worker"],
    ] {
        let run = world.xtask(args);
        run.assert_code(0);
        assert!(run.stdout.contains("Next: `cargo xtask build-grafana --env dev --execute`"), "{}", run.stdout);
        assert!(!run.stdout.contains("--all"), "{}", run.stdout);
    }

    let run = offline(&world, &["verify", "5", "--service", "benchmark-worker"]);
    run.assert_code(2);
    assert!(run.stderr.contains("benchmark-worker is disabled in `dev`"), "{}", run.stderr);

    // ---- phase 3: Grafana, from the image build-grafana pushed ---------------------------------
    let version =
        configcheck::grafana::grafana_version(&std::fs::read_to_string(repo.join("grafana/Dockerfile")).unwrap())
            .unwrap();
    let tag = format!("{version}-{}", git(repo, &["rev-parse", "--short=7", "HEAD"]));
    let name = format!("{}-grafana", world.project);
    let created = world.call("ecr", "CreateRepository", json!({"repositoryName": name}));
    let repository = created["repository"]["repositoryUri"].as_str().unwrap().to_string();
    let mut outputs = world.outputs();
    outputs["grafana_ecr_repository_url"] = json!({"sensitive": false, "type": "string", "value": repository});
    world.set_terraform(&outputs, &plan(&["aws_ecs_service.grafana[0]", "aws_ecs_task_definition.grafana[0]"]), None);
    // Before the push, the dry run (with credentials) previews and says what comes first.
    let run = world.xtask(&["deploy", "grafana"]);
    assert_not_yet(&run, "cargo xtask build-grafana --env dev --execute");
    assert!(run
        .stdout
        .contains(&format!("Not yet: --execute would refuse now, because {repository}:{tag} is not in ECR")));
    let manifest = json!({"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 1, "digest": "sha256:00"},
        "layers": []});
    world.call(
        "ecr",
        "PutImage",
        json!({"repositoryName": name, "imageTag": tag, "imageManifest": manifest.to_string()}),
    );
    let run = world.xtask(&["deploy", "grafana", "--execute"]);
    run.assert_code(0);
    assert!(run.stdout.contains("Next: `cargo xtask cleanup-adot --env dev`"), "{}", run.stdout);
    assert_eq!(world.env.settings().versions.get("grafana_image"), Some(&format!("{repository}:{tag}")));

    // ---- phase 4: ADOT off; the disabled service goes to alloy with it ------------------------
    let before = world.env.text();
    world.set_terraform(
        &outputs,
        &plan(&[
            "aws_ssm_parameter.adot[0]",
            "terraform_data.collector_choice",
            "module.benchmark_worker.aws_ecs_task_definition.this",
        ]),
        None,
    );
    let run = world.xtask(&["cleanup-adot"]);
    assert_not_yet(&run, "cargo xtask verify parity --env dev --since 24h");
    assert!(run.stdout.contains("history has no parity result"), "{}", run.stdout);
    world.xtask(&["verify", "parity"]).assert_code(0);
    let run = world.xtask(&["cleanup-adot"]);
    run.assert_code(0);
    assert!(run.stdout.contains("(parity: passed over the last 24h for worker "), "{}", run.stdout);
    assert!(run.stdout.contains("Run again with --execute to do it."), "{}", run.stdout);
    assert_eq!(world.env.text(), before, "the dry run changed the env file");
    let run = world.xtask(&["cleanup-adot", "--execute"]);
    run.assert_code(0);
    assert!(run.stdout.contains("ADOT is gone from `dev`"), "{}", run.stdout);
    let settings = world.env.settings();
    assert!(!settings.adot.enabled);
    assert!(collectors(&world).iter().all(|(_, c)| *c == Collector::Alloy), "{:?}", collectors(&world));
    assert!(!settings.services.benchmark_worker.enabled, "still disabled: only its collector changed");

    // Rerunning a finished phase changes nothing and says so.
    world.xtask(&["cleanup-adot"]).assert_code(0);
    let run = world.xtask(&["migrate-sidecars"]);
    run.assert_code(0);
    assert!(run.stdout.contains("Next: nothing: the migration is done"), "{}", run.stdout);

    // ---- checkpoint 9 -------------------------------------------------------------------------
    let run = world.xtask(&["verify", "9"]);
    run.assert_code(0);
    assert!(run.stdout.starts_with("checkpoint 9: PASS\n"), "{}", run.stdout);
    world.assert_no_tunnel_left();
}

//! The commands an operator meets first and last, end to end against the stand-ins (see
//! `common`): `doctor`, `init`, `cleanup-adot` (with and without `--prune-code`), and what the
//! binary says outside the repository or to a command it does not know.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::common::*;
use serde_json::{json, Value};
use standins::observability::StackState;
use standins::{Reply, StandIn};

const ALL_SERVICES: [&str; 5] = ["history", "matching", "frontend", "worker", "benchmark-worker"];
/// benchmark-worker is disabled in the example env, so checkpoint 5 leaves it out.
const ENABLED_SERVICES: [&str; 4] = ["history", "matching", "frontend", "worker"];

// ---- helpers ----------------------------------------------------------------------------------

/// The built binary with exactly `args` (no `--env` appended), an empty environment but PATH,
/// no terminal, run from the repository.
fn xtask_bare(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_xtask"));
    command
        .args(args)
        .current_dir(root())
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("LANG", "C.UTF-8")
        .stdin(Stdio::null());
    command
}

/// `args` on the scratch repository `repo` (XTASK_ROOT); no AWS, no Terraform.
fn xtask_in(repo: &Path, args: &[&str]) -> Run {
    let mut command = xtask_bare(args);
    command.env("HOME", repo).env("XTASK_ROOT", repo);
    run_xtask(command, &format!("{args:?}"))
}

/// `args` in the world's environment, for commands without `--env` (`world.xtask` appends it).
fn xtask_plain(world: &World, args: &[&str]) -> Run {
    let mut command = xtask_bare(args);
    command.envs(world.env_vars());
    run_xtask(command, &format!("{args:?}"))
}

/// Files that differ (or exist on one side only) between two snapshots.
fn differing(before: &BTreeMap<PathBuf, Vec<u8>>, after: &BTreeMap<PathBuf, Vec<u8>>) -> Vec<PathBuf> {
    let paths: std::collections::BTreeSet<&PathBuf> =
        before.keys().chain(after.keys()).filter(|p| before.get(*p) != after.get(*p)).collect();
    paths.into_iter().cloned().collect()
}

/// A `terraform` stand-in: `version -json` for discovery, plain `version` as doctor reads it,
/// the given outputs and plan, and extra replies (e.g. a failing `validate`).
fn install_terraform(world: &World, plan: &Value, extra: &[(&[&str], Reply)]) {
    let mut terraform = StandIn::new("terraform")
        .reply(&["version", "-json"], Reply::ok(r#"{"terraform_version":"1.15.5"}"#))
        .reply(&["version"], Reply::ok("Terraform v1.15.5\non linux_arm64\n"))
        .reply(&["output", "-json"], Reply::ok(&world.outputs().to_string()))
        .reply(&["show", "-json"], Reply::ok(&plan.to_string()));
    for (prefix, reply) in extra {
        terraform = terraform.reply(prefix, reply.clone());
    }
    world.bins.install(&terraform).expect("install the terraform stand-in");
}

fn install_docker(world: &World) {
    let docker =
        StandIn::new("docker").reply(&["buildx", "version"], Reply::ok("github.com/docker/buildx v0.17.1 257815a\n"));
    world.bins.install(&docker).expect("install the docker stand-in");
}

/// PATH with the stand-ins and the venv but none of the machine's own tools in /usr/local/bin.
fn path_without_local_tools(world: &World) -> String {
    std::env::join_paths([world.bins.bin_dir(), venv_bin(), "/usr/bin".into(), "/bin".into()])
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

/// One row of doctor's table: (ok, detail). Rows are `" ok "|"FIX "`, two spaces, the padded
/// name, two spaces, the detail; a multi-line detail (a TOML parse error) continues on the lines
/// up to the next row.
fn doctor_row(stdout: &str, what: &str) -> (bool, String) {
    let is_row = |line: &str| line.starts_with(" ok  ") || line.starts_with("FIX  ");
    let mut lines = stdout.lines();
    while let Some(line) = lines.next() {
        let Some(rest) = line
            .get(6..)
            .and_then(|rest| rest.strip_prefix(what))
            .filter(|rest| is_row(line) && rest.starts_with("  "))
        else {
            continue;
        };
        let mut detail = rest.trim().to_string();
        for more in lines.by_ref().take_while(|l| !is_row(l) && !l.is_empty()) {
            detail.push('\n');
            detail.push_str(more);
        }
        return (line.starts_with(" ok "), detail);
    }
    panic!("no `{what}` row in:\n{stdout}")
}

/// The lines that differ between two texts of the same length in lines.
fn changed_lines<'a>(before: &'a str, after: &'a str) -> Vec<(&'a str, &'a str)> {
    assert_eq!(before.lines().count(), after.lines().count(), "lines were added or removed:\n{after}");
    before.lines().zip(after.lines()).filter(|(a, b)| a != b).collect()
}

/// Copies a directory tree, leaving out Terraform's working data (`.terraform`).
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() == ".terraform" {
            continue;
        }
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Every file below the repository's `infra/`, `templates/`, `rendered/` and `envs/` with its
/// bytes (Terraform's `.terraform` working data left out).
fn snapshot(repo: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(repo: &Path, dir: &Path, files: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            if entry.file_name() == ".terraform" {
                continue;
            }
            if entry.file_type().unwrap().is_dir() {
                walk(repo, &entry.path(), files);
            } else {
                files.insert(
                    entry.path().strip_prefix(repo).unwrap().to_path_buf(),
                    std::fs::read(entry.path()).unwrap(),
                );
            }
        }
    }
    let mut files = BTreeMap::new();
    for dir in ["infra", "templates", "rendered", "envs"] {
        walk(repo, &repo.join(dir), &mut files);
    }
    files
}

fn subcommands(calls: &[Vec<String>]) -> Vec<String> {
    calls.iter().map(|argv| argv[0].clone()).collect()
}

// ---- doctor -----------------------------------------------------------------------------------

/// A world for doctor: moto answers `sts get-caller-identity`; terraform, docker and the Session
/// Manager plugin are stand-ins first on PATH; the real `aws` comes from the venv.
fn doctor_world() -> World {
    let world = World::bare(&[], StackState::default());
    install_terraform(&world, &json!({"resource_changes": []}), &[]);
    install_docker(&world);
    // doctor's `python tools` row asks whether the pinned venv under the repository root is
    // installed and matches the pins. The scratch repo has no venv of its own, so it gets the real
    // one (the tests need it anyway: `venv_bin()` fails without it) and the real pin files the
    // venv's stamp is compared with: the row then reports the truth about this checkout's tools
    // rather than a stand-in. Only `.tools/venv` is linked, so nothing doctor might write under
    // `.tools` lands in the real checkout.
    let repo = world.env.repo();
    std::fs::create_dir_all(repo.join(".tools")).unwrap();
    std::os::unix::fs::symlink(root().join(".tools/venv"), repo.join(".tools/venv")).expect("link the venv");
    std::fs::create_dir_all(repo.join("xtask")).unwrap();
    for pins in ["xtask/python-tools.txt", "xtask/python-constraints.txt"] {
        std::fs::copy(root().join(pins), repo.join(pins)).expect("copy the pins");
    }
    world
}

// A ready machine: exit 0 and an ` ok ` row with a version for every tool.
#[test]
fn doctor_passes_with_every_tool_and_names_their_versions() {
    let world = doctor_world();
    let out = world.xtask(&["doctor"]);
    out.assert_code(0);
    assert!(out.stdout.contains("Ready: checks run offline and deployments can run."), "{}", out.stdout);
    for what in ["python tools", "terraform", "aws", "session-manager-plugin", "docker", "aws credentials", "env file"]
    {
        let (ok, detail) = doctor_row(&out.stdout, what);
        assert!(ok, "`{what}` should be ok: {detail}");
    }
    assert_eq!(doctor_row(&out.stdout, "python tools").1, "pinned venv in .tools/venv");
    let (_, terraform) = doctor_row(&out.stdout, "terraform");
    assert!(
        terraform.starts_with("1.15.5 (") && terraform.contains(&world.bins.bin_dir().display().to_string()),
        "{terraform}"
    );
    assert!(doctor_row(&out.stdout, "aws").1.starts_with("aws-cli/"), "{}", out.stdout);
    assert_eq!(doctor_row(&out.stdout, "session-manager-plugin").1, "1.2.764.0");
    assert_eq!(doctor_row(&out.stdout, "docker").1, "github.com/docker/buildx v0.17.1 257815a");
    let (_, credentials) = doctor_row(&out.stdout, "aws credentials");
    assert!(credentials.contains(&format!("(account {})", world.account)), "{credentials}");
    assert_eq!(doctor_row(&out.stdout, "env file").1, "envs/dev.toml is valid");
}

// Missing tools, another account's credentials, no venv and a broken env file: FIX rows with the fix, exit 2 (not set up).
#[test]
fn doctor_says_what_to_fix_and_exits_2() {
    let world = doctor_world();

    // No Session Manager plugin and no docker anywhere on PATH.
    std::fs::remove_file(world.bins.bin_dir().join("session-manager-plugin")).unwrap();
    std::fs::remove_file(world.bins.bin_dir().join("docker")).unwrap();
    let doctor = || {
        let mut command = world.xtask_command(&["doctor"]);
        command.env("PATH", path_without_local_tools(&world));
        run_xtask(command, "doctor")
    };
    let out = doctor();
    out.assert_code(2);
    let (ok, plugin) = doctor_row(&out.stdout, "session-manager-plugin");
    assert!(
        !ok && plugin
            .starts_with("not found on PATH; install the Session Manager plugin (https://docs.aws.amazon.com/"),
        "{plugin}"
    );
    let (ok, docker) = doctor_row(&out.stdout, "docker");
    assert!(
        !ok && docker.contains("install Docker with the buildx plugin") && docker.contains("build-grafana needs it"),
        "{docker}"
    );
    assert!(out.stdout.lines().any(|l| l.starts_with("FIX   session-manager-plugin")), "{}", out.stdout);
    assert!(doctor_row(&out.stdout, "aws credentials").0, "{}", out.stdout);
    assert!(out.stderr.contains("error: not ready: fix session-manager-plugin, docker (see above)"), "{}", out.stderr);

    // Credentials for another account than the env file's (its ARNs moved along, as init does).
    let mut doc: settings::TomlDocument = world.env.text().parse().unwrap();
    settings::retarget(&mut doc, "eu-west-1", "210987654321");
    settings::set_in_document(&mut doc, &["aws", "account_id"], "210987654321".into()).unwrap();
    std::fs::write(&world.env.path, doc.to_string()).unwrap();
    let out = doctor();
    out.assert_code(2);
    let (ok, credentials) = doctor_row(&out.stdout, "aws credentials");
    assert!(!ok, "{credentials}");
    assert!(
        credentials.contains(&format!("is account {}, the env file says 210987654321; switch profile", world.account)),
        "{credentials}"
    );
    assert!(
        out.stderr.contains("error: not ready: fix session-manager-plugin, docker, aws credentials (see above)"),
        "{}",
        out.stderr
    );

    // Without the pinned venv, the python tools row says how to install it.
    std::fs::remove_file(world.env.repo().join(".tools/venv")).unwrap();
    let out = doctor();
    out.assert_code(2);
    let (ok, python) = doctor_row(&out.stdout, "python tools");
    assert!(!ok && python.contains("are not installed") && python.ends_with("run `cargo xtask tools`"), "{python}");

    // An invalid env file: its row names the file and the key.
    let text = world.env.text().replace("210987654321", &world.account).replace("[loki]\n", "[loki]\nretension = 3\n");
    std::fs::write(&world.env.path, text).unwrap();
    let out = doctor();
    out.assert_code(2);
    let (ok, env_file) = doctor_row(&out.stdout, "env file");
    assert!(!ok && env_file.contains("envs/dev.toml") && env_file.contains("retension"), "{env_file}");
    assert!(
        out.stderr.contains("error: not ready: fix python tools, session-manager-plugin, docker, env file (see above)"),
        "{}",
        out.stderr
    );
}

// ---- init -------------------------------------------------------------------------------------

/// A scratch repository with the example env init copies from (and the `dev` env EnvFile makes).
fn init_repo() -> EnvFile {
    let repo = EnvFile::new(&[], OFFLINE_ACCOUNT);
    std::fs::copy(root().join("envs/example.toml"), repo.repo().join("envs/example.toml")).unwrap();
    repo
}

/// `init <name> <flags> --no-backend` in the scratch repository.
fn init(repo: &EnvFile, name: &str, flags: &[&str]) -> Run {
    xtask_in(repo.repo(), &[&["init", name], flags, &["--no-backend"]].concat())
}

const QA_FLAGS: [&str; 8] = [
    "--region",
    "eu-west-1",
    "--account-id",
    "123456789012",
    "--project-name",
    "temporal-qa",
    "--state-bucket",
    "qa-state",
];

// init writes the example with the given values (comments kept), its state key, and renders it.
#[test]
fn init_creates_the_env_file_from_the_example_and_renders_it() {
    let repo = init_repo();
    let out = init(&repo, "qa", &QA_FLAGS);
    out.assert_code(0);
    assert!(
        out.stdout.contains("created envs/qa.toml") && out.stdout.contains("rendered rendered/qa"),
        "{}",
        out.stdout
    );

    let example = std::fs::read_to_string(root().join("envs/example.toml")).unwrap();
    let created = std::fs::read_to_string(repo.repo().join("envs/qa.toml")).unwrap();
    // Region and account equal the example's placeholders: only these three lines differ.
    assert_eq!(
        changed_lines(&example, &created),
        vec![
            (r#"name = "temporal-dev""#, r#"name = "temporal-qa""#),
            (r#"bucket = "temporal-dev-terraform-state""#, r#"bucket = "qa-state""#),
            (r#"key = "loki-migration/example.tfstate""#, r#"key = "loki-migration/qa.tfstate""#),
        ]
    );
    let settings = settings::Environment::load(repo.repo(), "qa").unwrap().settings;
    assert_eq!((settings.aws.region.as_str(), settings.aws.account_id.as_str()), ("eu-west-1", "123456789012"));
    assert_eq!(settings.state.key, "loki-migration/qa.tfstate");

    // rendered/qa holds what rendered/example holds, made from the new file.
    let names = |dir: PathBuf| -> Vec<String> {
        let mut names: Vec<String> =
            std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        names
    };
    assert_eq!(names(repo.repo().join("rendered/qa")), names(root().join("rendered/example")));
    let tfvars = std::fs::read_to_string(repo.repo().join("rendered/qa/terraform.tfvars")).unwrap();
    assert!(
        tfvars.starts_with("# Generated by `cargo xtask render` from envs/qa.toml")
            && tfvars.contains("\"temporal-qa\""),
        "{tfvars}"
    );
}

// Bad input to init exits 2, names the problem, and writes no env file (or leaves the existing one).
#[test]
fn init_refuses_bad_input_and_writes_nothing() {
    let repo = init_repo();
    let qa = repo.repo().join("envs/qa.toml");

    // 11 digits: the key is named and no file is left behind.
    let mut flags = QA_FLAGS;
    flags[3] = "12345678901";
    let out = init(&repo, "qa", &flags);
    out.assert_code(2);
    assert!(
        out.stderr.contains("aws.account_id = \"12345678901\": must be a 12-digit AWS account id"),
        "{}",
        out.stderr
    );
    assert!(!qa.exists());

    // A required flag missing and no terminal to ask on: the flag is named.
    for (flag, question) in [("--account-id", "AWS account id"), ("--state-bucket", "S3 bucket of the Terraform state")]
    {
        let at = QA_FLAGS.iter().position(|f| *f == flag).unwrap();
        let without: Vec<&str> =
            QA_FLAGS.iter().enumerate().filter(|(i, _)| *i != at && *i != at + 1).map(|(_, f)| *f).collect();
        let out = init(&repo, "qa", &without);
        out.assert_code(2);
        assert!(
            out.stderr.contains(&format!("missing {question}")) && out.stderr.contains(&format!("pass {flag} ")),
            "{}",
            out.stderr
        );
        assert!(!qa.exists());
    }

    // An existing env with settings: refused, file unchanged.
    let before = repo.text();
    let out = init(&repo, "dev", &QA_FLAGS);
    out.assert_code(2);
    assert!(out.stderr.contains("envs/dev.toml exists already"), "{}", out.stderr);
    assert_eq!(repo.text(), before);

    // A name that cannot be a file name.
    let out = init(&repo, "Dev!", &QA_FLAGS);
    out.assert_code(2);
    assert!(out.stderr.contains("invalid environment name `Dev!`"), "{}", out.stderr);
    assert_eq!(settings::list(repo.repo()).unwrap(), vec!["dev", "example"]);
    assert!(!repo.repo().join("rendered/qa").exists());
}

// init for another region and account moves the example's ARNs and host names there; a file that
// keeps them is refused by every command and reported by doctor.
#[test]
fn init_moves_the_example_arns_to_the_new_region_and_account() {
    let repo = init_repo();
    let mut flags = QA_FLAGS;
    (flags[1], flags[3]) = ("us-east-2", "210987654321");
    let out = init(&repo, "qa", &flags);
    out.assert_code(0);
    assert!(out.stdout.contains("moved to us-east-2 / 210987654321"), "{}", out.stdout);
    let s = settings::Environment::load(repo.repo(), "qa").unwrap().settings;
    assert_eq!(
        s.platform.service_connect_namespace_arn,
        "arn:aws:servicediscovery:us-east-2:210987654321:namespace/ns-abcdefghijklmnop"
    );
    assert!(s.temporal.db_password_secret_arn.starts_with("arn:aws:secretsmanager:us-east-2:210987654321:secret:"));
    assert!(s.temporal.db_host.ends_with(".us-east-2.rds.amazonaws.com"), "{}", s.temporal.db_host);

    // Put the example's ARN back: render refuses (exit 2), doctor calls the file unfit.
    let path = repo.repo().join("envs/qa.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        text.replace("servicediscovery:us-east-2:210987654321", "servicediscovery:eu-west-1:123456789012"),
    )
    .unwrap();
    let out = xtask_in(repo.repo(), &["render"]);
    out.assert_code(2);
    assert!(
        out.stderr
            .contains("platform.service_connect_namespace_arn = \"arn:aws:servicediscovery:eu-west-1:123456789012")
            && out.stderr.contains("this env is aws / us-east-2 / 210987654321"),
        "{}",
        out.stderr
    );
    let out = xtask_in(repo.repo(), &["doctor", "--env", "qa"]);
    let (ok, detail) = doctor_row(&out.stdout, "env file");
    assert!(!ok && detail.contains("platform.service_connect_namespace_arn"), "{detail}");
}

// A value Terraform or AWS would refuse stops every command when the env file is read: exit 2, the
// file, each key with its value and what is allowed, and nothing written.
#[test]
fn bad_settings_stop_every_command_before_anything_runs() {
    let repo = EnvFile::new(&[], OFFLINE_ACCOUNT);
    let mut doc: settings::TomlDocument = repo.text().parse().unwrap();
    let bad: [(&[&str], settings::TomlValue); 7] = [
        (&["loki", "cpu"], 3i64.into()),
        (&["loki", "retention_days"], (-7i64).into()),
        (&["platform", "vpc_cidr"], "10.0.0.0/33".into()),
        (&["platform", "private_subnet_ids"], r#"["bogus"]"#.parse().unwrap()),
        (&["aws", "region"], "eu-wst-1".into()),
        (&["state", "bucket"], "Bad_Bucket!".into()),
        (&["platform", "instance_security_group_id"], "sg-123".into()),
    ];
    for (keys, value) in bad {
        settings::set_in_document(&mut doc, keys, value).unwrap();
    }
    std::fs::write(&repo.path, doc.to_string()).unwrap();
    let before = snapshot(repo.repo());
    for args in [
        &["render"][..],
        &["deploy", "loki", "--env", "dev"],
        &["deploy", "grafana", "--env", "dev", "--execute"],
        &["migrate-sidecars", "--env", "dev"],
        &["cleanup-adot", "--env", "dev"],
        &["verify", "2", "--env", "dev"],
        &["logs", "worker", "--env", "dev"],
        &["cost", "--env", "dev"],
        &["init", "dev"],
    ] {
        let out = xtask_in(repo.repo(), args);
        out.assert_code(2);
        for expected in [
            "envs/dev.toml",
            "loki.cpu = 3: must be one of 256, 512, 1024, 2048, 4096, 8192, 16384",
            "loki.retention_days = -7: must be between 1 and 3650",
            "platform.vpc_cidr = \"10.0.0.0/33\": must be a VPC's IPv4 CIDR block",
            "platform.private_subnet_ids = [\"bogus\"]: must list 1-16 distinct subnet ids",
            "aws.region = \"eu-wst-1\": must be an AWS region listed in data/aws-regions.txt, such as eu-west-1. Did you mean eu-west-1?",
            "state.bucket = \"Bad_Bucket!\": must be an S3 bucket name",
            "platform.instance_security_group_id = \"sg-123\": must be sg- and 8 or 17 hex digits",
        ] {
            assert!(out.stderr.contains(expected), "{args:?}: no `{expected}` in:\n{}", out.stderr);
        }
        assert!(!out.stdout.contains("terraform validate: ok"), "{}", out.stdout);
    }
    assert!(differing(&before, &snapshot(repo.repo())).is_empty(), "a refused command wrote files");
}

// `cost --gb-per-month 0` has no saving to compute: refused, never "-inf %".
#[test]
fn cost_refuses_no_log_volume() {
    let repo = EnvFile::new(&[], OFFLINE_ACCOUNT);
    let out = xtask_in(repo.repo(), &["cost", "--env", "dev", "--gb-per-month", "0"]);
    out.assert_code(2);
    assert!(out.stderr.contains("--gb-per-month 0.0: expected a number of GB greater than 0"), "{}", out.stderr);
    assert!(!out.stdout.contains("inf"), "{}", out.stdout);
}

// ---- cleanup-adot -----------------------------------------------------------------------------

/// A plan that removes the ADOT SSM parameter, as `adot_enabled = false` does.
fn adot_plan() -> Value {
    json!({"resource_changes": [
        {"address": "aws_ssm_parameter.adot[0]", "change": {"actions": ["delete"]}},
        {"address": "aws_ssm_parameter.alloy[\"worker\"]", "change": {"actions": ["no-op"]}},
    ]})
}

/// Loki deployed, every service on Alloy, checkpoint 5 healthy for the enabled ones, their log groups in moto,
/// no ADOT SSM parameter left; ADOT still enabled in the env file. SSM parameter calls pass through
/// the stand-in (it serves the session calls moto lacks) to moto.
fn migrated_world(plan: &Value) -> World {
    let world = World::deployed(&ALL_SERVICES, healthy_stack(&example_cluster(), &ENABLED_SERVICES));
    // Phase 4 follows Loki (phase 1): cleanup-adot refuses before it.
    settings::set(&world.env.path, &["loki", "enabled"], true.into()).unwrap();
    world.stack.state().ecs_upstream = Some(world.moto.endpoint());
    for service in ENABLED_SERVICES {
        world.stack.add_service_lines(
            service,
            &world.cluster,
            &container(service),
            &[r#"{"level":"info","msg":"started"}"#],
        );
    }
    world.set_terraform(&world.outputs(), plan, None);
    // The gate of phase 4: parity over the last day (no closed window has traffic: equal).
    world.xtask(&["verify", "parity"]).assert_code(0);
    world
}

// A leftover ADOT parameter fails the after-check (env unchanged); once it is gone, cleanup records adot off, log groups kept.
// req: 8.1, 8.3
#[test]
fn cleanup_adot_removes_adot_keeps_the_log_groups_and_records_it() {
    let world = migrated_world(&adot_plan());
    let before = world.env.text();

    // The apply "forgot" the ADOT parameter: the after-check fails and nothing is recorded.
    let leftover = format!("/{}/adot/collector-config", world.project);
    world.call("ssm", "PutParameter", json!({"Name": leftover, "Type": "String", "Value": "receivers: {}"}));
    let out = world.xtask(&["cleanup-adot", "--execute"]);
    out.assert_code(1);
    assert!(
        out.stderr.contains(&format!("FAIL  no ADOT SSM parameter left       still there: {leftover}")),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("the cleanup did not verify (table above); envs/dev.toml is unchanged"),
        "{}",
        out.stderr
    );
    assert_eq!(world.env.text(), before);

    world.call("ssm", "DeleteParameter", json!({"Name": leftover}));
    let out = world.xtask(&["cleanup-adot", "--execute"]);
    out.assert_code(0);
    assert!(
        out.stdout.contains("ADOT is gone from `dev`; the CloudWatch log groups stay for rollback."),
        "{}",
        out.stdout
    );
    assert!(out.stderr.contains("checkpoint 5: PASS"), "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!("pass  no ADOT SSM parameter left       nothing under /{}/adot", world.project)),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("pass  CloudWatch log groups untouched  5 log groups still there"), "{}", out.stderr);

    // Only `[adot] enabled` changed, and the rendered tfvars follow.
    assert_eq!(changed_lines(&before, &world.env.text()), vec![("enabled = true", "enabled = false")]);
    assert!(!world.env.settings().adot.enabled);
    let tfvars = std::fs::read_to_string(world.env.repo().join("rendered/dev/terraform.tfvars")).unwrap();
    assert!(tfvars.lines().any(|l| l.starts_with("adot_enabled ") && l.ends_with("= false")), "{tfvars}");

    // Both runs planned and applied (the after-check follows the apply); only the second recorded.
    // The first init is the parity run's (migrated_world).
    let calls = world.terraform_calls();
    let order: Vec<String> = subcommands(&calls).into_iter().filter(|c| c != "output").collect();
    assert_eq!(order, vec!["init", "init", "plan", "show", "apply", "init", "plan", "show", "apply"], "{calls:?}");
    for service in ALL_SERVICES {
        let groups = world.call("logs", "DescribeLogGroups", json!({"logGroupNamePrefix": world.log_group(service)}));
        assert_eq!(groups["logGroups"].as_array().map(Vec::len), Some(1), "{service}: {groups}");
    }
    world.assert_no_tunnel_left();
}

// req: 8.5, 8.3
#[test]
fn cleanup_adot_refuses_a_plan_that_deletes_a_log_group() {
    let mut plan = adot_plan();
    plan["resource_changes"].as_array_mut().unwrap().push(
        json!({"address": "module.temporal_history.aws_cloudwatch_log_group.this", "change": {"actions": ["delete"]}}),
    );
    let world = migrated_world(&plan);
    let before = world.env.text();

    let out = world.xtask(&["cleanup-adot", "--execute"]);
    out.assert_code(1);
    assert!(
        out.stderr
            .contains("would delete CloudWatch log groups (module.temporal_history.aws_cloudwatch_log_group.this)"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("nothing was applied"), "{}", out.stderr);
    assert!(!subcommands(&world.terraform_calls()).contains(&"apply".to_string()), "{:?}", world.terraform_calls());
    assert_eq!(world.env.text(), before);
    world.assert_no_tunnel_left();
}

// ---- cleanup-adot --prune-code ----------------------------------------------------------------

/// A scratch repository with the real `infra/` and `templates/`, every service on Alloy, ADOT
/// off in `dev` (its only env), rendered; terraform is a stand-in answering `validate` with `validate`.
fn pruneable_world(validate: Reply) -> World {
    let world = World::bare(&ALL_SERVICES, StackState::default());
    let repo = world.env.repo();
    copy_tree(&root().join("infra"), &repo.join("infra"));
    copy_tree(&root().join("templates"), &repo.join("templates"));
    settings::set(&world.env.path, &["adot", "enabled"], false.into()).unwrap();
    install_terraform(&world, &json!({"resource_changes": []}), &[(&["validate"], validate)]);
    xtask_plain(&world, &["render"]).assert_code(0);
    assert!(
        repo.join("rendered/dev/adot-sidecar-config.yaml").is_file(),
        "the ADOT config is rendered before the prune"
    );
    world
}

/// Files below the repository's `infra/` and `templates/` that still hold an ADOT marker.
fn files_with_markers(repo: &Path) -> Vec<PathBuf> {
    snapshot(repo)
        .into_iter()
        .filter(|(path, bytes)| {
            (path.starts_with("infra") || path.starts_with("templates"))
                && String::from_utf8_lossy(bytes).contains(">>> adot")
        })
        .map(|(path, _)| path)
        .collect()
}

// While any env still has ADOT, --prune-code is refused and nothing is deleted.
#[test]
fn prune_code_is_refused_while_an_env_has_adot() {
    let world = pruneable_world(Reply::ok(""));
    // A second environment that has not been cleaned up yet.
    std::fs::copy(root().join("envs/example.toml"), world.env.repo().join("envs/staging.toml")).unwrap();
    let before = snapshot(world.env.repo());
    for args in [&["cleanup-adot", "--prune-code", "--execute"][..], &["cleanup-adot", "--prune-code"]] {
        let out = world.xtask(args);
        out.assert_code(2);
        assert!(out.stderr.contains("refusing --prune-code: environments staging still have ADOT"), "{}", out.stderr);
        // Refused before anything else is said: no dry run that ends "Run again with --execute".
        assert!(out.stdout.is_empty(), "{}", out.stdout);
    }
    assert_eq!(differing(&before, &snapshot(world.env.repo())), Vec::<PathBuf>::new());
    assert!(subcommands(&world.terraform_calls()).iter().all(|c| c != "validate"), "{:?}", world.terraform_calls());
}

// The dry run lists the prune and changes nothing; --execute prunes every ADOT file and block, then validates.
#[test]
fn prune_code_lists_then_removes_the_adot_code_and_validates() {
    let world = pruneable_world(Reply::ok("Success! The configuration is valid.\n"));
    let repo = world.env.repo();
    // The examples (the template `init` copies, the HA one) are deployed nowhere: they go to
    // Alloy with the code.
    for example in ["example", "ha-example"] {
        let file = format!("envs/{example}.toml");
        std::fs::copy(root().join(&file), repo.join(&file)).unwrap();
    }
    let before = snapshot(repo);
    let marked = files_with_markers(repo);
    assert!(marked.contains(&PathBuf::from("infra/alloy-sidecar.tf")), "{marked:?}");

    let out = world.xtask(&["cleanup-adot", "--prune-code"]);
    out.assert_code(0);
    assert!(out.stdout.contains("already removed (adot.enabled = false)"), "{}", out.stdout);
    assert!(out.stdout.contains("--prune-code would delete or edit:"), "{}", out.stdout);
    assert!(out.stdout.contains("  edit   envs/example.toml"), "{}", out.stdout);
    assert!(out.stdout.contains("  edit   envs/ha-example.toml"), "{}", out.stdout);
    for file in ["infra/adot-sidecar.tf", "templates/adot-sidecar-config.yaml.tera"] {
        assert!(out.stdout.contains(&format!("  delete {file}")), "{file} not listed:\n{}", out.stdout);
    }
    for file in marked.iter().filter(|f| !f.ends_with("adot-sidecar.tf")) {
        assert!(
            out.stdout.contains(&format!("  edit   {}", file.display())),
            "{} not listed:\n{}",
            file.display(),
            out.stdout
        );
    }
    assert_eq!(differing(&before, &snapshot(repo)), Vec::<PathBuf>::new(), "the dry run changed files");
    assert!(world.terraform_calls().is_empty(), "{:?}", world.terraform_calls());

    let out = world.xtask(&["cleanup-adot", "--prune-code", "--execute"]);
    out.assert_code(0);
    assert!(out.stdout.contains("ADOT code removed; review and commit the change"), "{}", out.stdout);
    assert!(!repo.join("infra/adot-sidecar.tf").exists());
    assert!(!repo.join("templates/adot-sidecar-config.yaml.tera").exists());
    assert!(!repo.join("rendered/dev/adot-sidecar-config.yaml").exists());
    for example in ["example", "ha-example"] {
        let example = settings::Environment::load(repo, example).unwrap().settings;
        assert!(
            !example.adot.enabled && example.services.iter().all(|(_, s)| s.collector == settings::Collector::Alloy)
        );
    }
    assert!(!repo.join("rendered/example/adot-sidecar-config.yaml").exists());
    assert_eq!(files_with_markers(repo), Vec::<PathBuf>::new());
    assert!(!std::fs::read_to_string(repo.join("infra/alloy-sidecar.tf")).unwrap().contains("<<< adot"));
    // Only the marked blocks went: the tests' other runs stay, files without markers are untouched.
    let tests = std::fs::read_to_string(repo.join("infra/tests/alloy_sidecar.tftest.hcl")).unwrap();
    assert!(
        tests.contains(r#"run "alloy_sidecar_with_the_file_variables""#)
            && !tests.contains("req_8_2_one_service_at_a_time"),
        "{tests}"
    );
    let after = snapshot(repo);
    assert_eq!(after.get(Path::new("infra/loki.tf")), before.get(Path::new("infra/loki.tf")));
    let calls = world.terraform_calls();
    let validate = calls.iter().find(|argv| argv[0] == "validate").unwrap_or_else(|| panic!("no validate: {calls:?}"));
    assert_eq!(validate, &vec!["validate".to_string(), "-no-color".to_string()]);
}

// A prune that does not validate is undone: every file restored byte for byte, exit 1.
#[test]
fn prune_code_restores_every_file_when_validation_fails() {
    let world = pruneable_world(Reply::fail(1, "Error: Reference to undeclared resource\n"));
    let repo = world.env.repo();
    let before = snapshot(repo);
    let out = world.xtask(&["cleanup-adot", "--prune-code", "--execute"]);
    out.assert_code(1);
    assert!(
        out.stderr.contains("pruning the ADOT code broke the configuration; every file was restored"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("Reference to undeclared resource"), "{}", out.stderr);
    assert!(subcommands(&world.terraform_calls()).contains(&"validate".to_string()));
    assert_eq!(differing(&before, &snapshot(repo)), Vec::<PathBuf>::new(), "not restored byte for byte");
}

// ---- outside the repository, unknown commands -------------------------------------------------

// Run outside the checkout (no XTASK_ROOT): refused with where to run it, exit 2.
#[test]
fn outside_the_repository_the_binary_says_where_to_run_it() {
    let elsewhere = tempfile::tempdir().unwrap();
    let mut command = xtask_bare(&["doctor"]);
    command.current_dir(elsewhere.path());
    let out = run_xtask(command, "doctor (outside)");
    out.assert_code(2);
    assert!(out.stderr.contains("run `cargo xtask` inside the repository"), "{}", out.stderr);
    assert!(out.stderr.contains(&elsewhere.path().display().to_string()), "{}", out.stderr);
}

// An unknown subcommand: clap's error naming it, exit 2.
#[test]
fn an_unknown_command_is_named_and_exits_2() {
    let repo = EnvFile::new(&[], OFFLINE_ACCOUNT);
    let out = xtask_in(repo.repo(), &["frobnicate"]);
    out.assert_code(2);
    assert!(out.stderr.contains("unrecognized subcommand 'frobnicate'"), "{}", out.stderr);
    assert!(out.stdout.is_empty(), "{}", out.stdout);
}

// Numbers and tools at the edges (issue 33.5): each refused with exit 2 and the accepted range,
// before any AWS call.
#[test]
fn numbers_and_tools_at_the_edges_are_refused_with_what_is_accepted() {
    let world = World::bare(&[], standins::observability::StackState::default());
    for (args, says) in [
        (&["deploy", "loki", "--timeout", "0"][..], "0 is not in 1..=86400"),
        (&["migrate-sidecars", "--timeout", "-5"], "-5 is not in 1..=86400"),
        (&["logs", "worker", "--limit", "-1"], "--limit -1: expected 1 to 5000"),
        (
            &["cost", "--gb-per-month", "inf"],
            "--gb-per-month inf: expected a number of GB greater than 0, at most 1000000000",
        ),
        (&["cost", "--gb-per-month", "1e308"], "--gb-per-month 1e308: expected"),
        (&["cost", "--queries-gb", "-1"], "--queries-gb -1.0: expected a number of GB from 0 to 1000000000"),
    ] {
        let run = world.xtask(args);
        run.assert_code(2);
        assert!(run.stderr.contains(says), "{args:?}: {}", run.stderr);
    }
    let mut attempts = world.xtask_command(&["deploy", "loki"]);
    attempts.env("AWS_MAX_ATTEMPTS", "0");
    let run = run_xtask(attempts, "AWS_MAX_ATTEMPTS=0");
    run.assert_code(2);
    assert!(
        run.stderr.contains("AWS_MAX_ATTEMPTS is \"0\": it must be a whole number of attempts, 1 or more"),
        "{}",
        run.stderr
    );
    let mut mode = world.xtask_command(&["deploy", "loki"]);
    mode.env("AWS_RETRY_MODE", "adaptive");
    let run = run_xtask(mode, "AWS_RETRY_MODE=adaptive");
    run.assert_code(2);
    assert!(run.stderr.contains("AWS_RETRY_MODE is \"adaptive\""), "{}", run.stderr);
    let mut terraform = world.xtask_command(&["deploy", "loki"]);
    terraform.env("XTASK_TERRAFORM", "/nonexistent/terraform");
    let run = run_xtask(terraform, "XTASK_TERRAFORM missing");
    run.assert_code(2);
    assert!(run.stderr.contains("XTASK_TERRAFORM=/nonexistent/terraform is not a file"), "{}", run.stderr);
}

// A hand-edited env file whose phases are out of order (issue 33.4): refused by every phase,
// dry run or --execute, with exit 2 and before any AWS call or Terraform run.
#[test]
fn an_env_file_with_phases_out_of_order_is_refused_before_anything_runs() {
    let world = World::bare(&["worker"], standins::observability::StackState::default());
    for args in [
        &["deploy", "baseline"][..],
        &["deploy", "baseline", "--execute"],
        &["deploy", "loki", "--execute"],
        &["cleanup-adot"],
    ] {
        let run = world.xtask(args);
        run.assert_code(2);
        assert!(
            run.stderr.contains("worker use(s) the alloy collector in envs/dev.toml while loki.enabled = false"),
            "{args:?}: {}",
            run.stderr
        );
        assert!(!run.stdout.contains("Run again with --execute"), "{args:?}: {}", run.stdout);
    }
    settings::set_collector(&world.env.path, "worker", settings::Collector::Adot).unwrap();
    let image = format!("{}.dkr.ecr.eu-west-1.amazonaws.com/temporal-dev-grafana:13.2.3-1a2b3c4", world.account);
    settings::set(&world.env.path, &["versions", "grafana_image"], image.as_str().into()).unwrap();
    let run = world.xtask(&["deploy", "baseline"]);
    run.assert_code(2);
    assert!(
        run.stderr.contains("versions.grafana_image is set in envs/dev.toml while loki.enabled = false"),
        "{}",
        run.stderr
    );
    assert!(world.terraform_calls().is_empty(), "{:?}", world.terraform_calls());
}

// The newcomer's first run (issue 33.7, in part) and messages that name the flag (33.6).
#[test]
fn init_says_what_it_kept_what_is_still_a_placeholder_and_which_flag_to_use() {
    let repo = init_repo();
    // Without AWS access the backend step fails after the file was written: exit 1, and it says so.
    let out = xtask_in(repo.repo(), &[&["init", "qa"][..], &QA_FLAGS].concat());
    out.assert_code(1);
    assert!(out.stderr.contains("envs/qa.toml and rendered/qa were written and are kept"), "{}", out.stderr);
    assert!(out.stderr.contains("`cargo xtask init qa --no-backend`"), "{}", out.stderr);
    // Every id still the example's is listed, not only those moved to the new region.
    assert!(out.stdout.contains("still the example's placeholders, to set before deploying: platform.vpc_id, platform.private_subnet_ids, platform.ecs_cluster_name"), "{}", out.stdout);
    assert!(out.stdout.contains("temporal.db_password_secret_arn"), "{}", out.stdout);
    let again = init(&repo, "qa", &[]);
    again.assert_code(0);
    assert!(
        again.stdout.contains("envs/qa.toml exists; nothing to create, and --no-backend leaves its backend alone"),
        "{}",
        again.stdout
    );
    // A derived project name that does not fit names the flag that sets it.
    let long = "a".repeat(30);
    let flags = ["--region", "eu-west-1", "--account-id", "123456789012", "--state-bucket", "qa-state"];
    let out = init(&repo, &long, &flags);
    out.assert_code(2);
    assert!(out.stderr.contains("pass --project-name to choose one that fits"), "{}", out.stderr);
    // render takes --env as every other command does.
    xtask_in(repo.repo(), &["render", "--env", "qa"]).assert_code(0);
    let out = xtask_in(repo.repo(), &["render", "--env", "nope"]);
    out.assert_code(2);
    assert!(out.stderr.contains("no environment `nope`"), "{}", out.stderr);
}

// A dry run with the example's made-up ids promises nothing (issue 33.7): it names them and
// exits 2, and --execute refuses before anything runs; the example env itself says it is one
// (exit 0: the README's first command runs it).
#[test]
fn a_dry_run_with_the_examples_placeholder_ids_promises_nothing() {
    let world = World::bare(&[], standins::observability::StackState::default());
    let example = std::fs::read_to_string(root().join("envs/example.toml")).unwrap();
    std::fs::write(world.env.repo().join("envs/example.toml"), &example).unwrap();
    let qa = example.replacen("loki-migration/example.tfstate", "loki-migration/qa.tfstate", 1);
    std::fs::write(world.env.repo().join("envs/qa.toml"), qa).unwrap();
    let out = xtask_plain(&world, &["deploy", "loki", "--env", "qa"]);
    out.assert_code(2);
    assert!(
        out.stdout
            .contains("Not yet: --execute would refuse now, because platform.vpc_id, platform.private_subnet_ids"),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("Run again with --execute"), "{}", out.stdout);
    let out = xtask_plain(&world, &["deploy", "loki", "--env", "qa", "--execute"]);
    out.assert_code(2);
    assert!(out.stderr.contains("are still the example's placeholders; set your own ids there"), "{}", out.stderr);
    let out = xtask_plain(&world, &["deploy", "loki", "--env", "example"]);
    out.assert_code(0);
    assert!(out.stdout.contains("This is an example env:"), "{}", out.stdout);
    assert!(!out.stdout.contains("Run again with --execute"), "{}", out.stdout);
    assert!(
        world.terraform_calls().iter().all(|call| !call.iter().any(|a| a == "apply")),
        "{:?}",
        world.terraform_calls()
    );
}

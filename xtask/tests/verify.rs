//! `cargo xtask verify` and `cargo xtask logs` end to end, as an operator runs them: the built
//! binary, the project's pinned AWS CLI against a local moto_server, a recording `terraform`
//! (XTASK_TERRAFORM), and an SSM tunnel that really forwards: moto has no StartSession, so
//! AWS_ENDPOINT_URL_SSM points at the observability stand-in, and the `session-manager-plugin`
//! stand-in forwards its local port to that same stand-in (loopback only), which answers as Loki,
//! Grafana and AMP in their documented shapes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use settings::{Collector, Environment};
use standins::observability::{install_session_manager_plugin, FakeStack, StackState};
use standins::{MotoServer, Recorder, Reply, StandIn};

const BUCKET: &str = "temporal-dev-loki-test";
const MOTO_ACCOUNT: &str = "123456789012";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask/ is in the repository").to_path_buf()
}

/// The pinned Python tools; their absence fails the test (never a silent skip).
fn venv_bin() -> PathBuf {
    let bin = root().join(".tools/venv/bin");
    for tool in ["aws", "moto_server", "python"] {
        assert!(bin.join(tool).is_file(), "{} is missing: run `cargo xtask tools` to install the project's Python tools", bin.join(tool).display());
    }
    bin
}

/// `envs/<unique>.toml`: the example with moto's account and the given services on Alloy;
/// removed when dropped.
struct EnvFile {
    name: String,
    path: PathBuf,
}

impl EnvFile {
    fn new(alloy: &[&str]) -> EnvFile {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let name = format!("test-verify-{}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::SeqCst));
        let path = root().join("envs").join(format!("{name}.toml"));
        std::fs::copy(root().join("envs/example.toml"), &path).expect("copy the example env");
        let file = EnvFile { name, path };
        settings::set(&file.path, &["aws", "account_id"], MOTO_ACCOUNT.into()).expect("set the account");
        for service in alloy {
            settings::set_collector(&file.path, service, Collector::Alloy).expect("set a collector");
        }
        file
    }

    fn settings(&self) -> settings::Settings {
        Environment::load(&root(), &self.name).expect("the test env loads").settings
    }
}

impl Drop for EnvFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

struct World {
    moto: MotoServer,
    stack: FakeStack,
    bins: Recorder,
    home: tempfile::TempDir,
    env: EnvFile,
    cluster: String,
    project: String,
    secret_arn: String,
    instance_id: String,
}

impl World {
    /// moto, the stand-ins and an env file; no AWS resources yet.
    fn bare(alloy: &[&str], state: StackState) -> World {
        let bin = venv_bin();
        let moto = MotoServer::start_with_env(&bin.join("moto_server"), &[("MOTO_ECS_SERVICE_RUNNING", "1")]).expect("start moto_server");
        // moto moves a task past RUNNING on every describe; these tests describe them many times.
        post(&moto.endpoint(), "/moto-api/state-manager/set-transition", &json!({"model_name": "ecs::task", "transition": {"progression": "manual", "times": 1_000_000}}));
        let env = EnvFile::new(alloy);
        let settings = env.settings();
        let world = World {
            moto,
            stack: FakeStack::start(state).expect("start the observability stand-in"),
            bins: Recorder::new().expect("stand-in dir"),
            home: tempfile::tempdir().expect("home"),
            cluster: settings.platform.ecs_cluster_name.clone(),
            project: settings.project.name.clone(),
            env,
            secret_arn: String::new(),
            instance_id: String::new(),
        };
        install_session_manager_plugin(&world.bins.bin_dir(), &bin.join("python")).expect("install the plugin stand-in");
        world.set_outputs(&world.outputs());
        world
    }

    /// Everything the checkpoints look at: ECS services with running tasks for Loki, Grafana and
    /// the Alloy services, a container instance, the bucket with chunks and index, the Grafana
    /// secret, and the services' log groups.
    fn deployed(alloy: &[&str], state: StackState) -> World {
        let mut world = World::bare(alloy, state);
        let cluster = world.cluster.clone();
        world.aws(&["ecs", "create-cluster", "--cluster-name", &cluster]);
        // moto wants the EC2 instance behind a container instance to exist.
        let ran = world.aws(&["ec2", "run-instances", "--image-id", "ami-12c6146b", "--count", "1", "--instance-type", "t4g.medium"]);
        world.instance_id = ran["Instances"][0]["InstanceId"].as_str().expect("an instance id").to_string();
        let document = json!({"instanceId": world.instance_id}).to_string();
        world.aws(&["ecs", "register-container-instance", "--cluster", &cluster, "--instance-identity-document", &document]);
        let subnets = world.aws(&["ec2", "describe-subnets"]);
        let subnet = subnets["Subnets"][0]["SubnetId"].as_str().expect("moto's default subnet").to_string();
        let groups = world.aws(&["ec2", "describe-security-groups"]);
        let group = groups["SecurityGroups"][0]["GroupId"].as_str().expect("moto's default security group").to_string();
        let network = format!("awsvpcConfiguration={{subnets=[{subnet}],securityGroups=[{group}]}}");
        let mut services: Vec<String> = vec![world.loki_service(), world.grafana_service()];
        services.extend(alloy.iter().map(|s| world.service_name(s)));
        for service in &services {
            let containers = json!([{"name": service, "image": "stand-in:1", "memory": 128}]).to_string();
            world.aws(&["ecs", "register-task-definition", "--family", service, "--network-mode", "awsvpc", "--container-definitions", &containers]);
            world.aws(&["ecs", "create-service", "--cluster", &cluster, "--service-name", service, "--task-definition", service, "--desired-count", "1", "--network-configuration", &network]);
            world.aws(&["ecs", "run-task", "--cluster", &cluster, "--task-definition", service, "--group", &format!("service:{service}"), "--launch-type", "EC2", "--network-configuration", &network]);
        }
        world.aws(&["s3api", "create-bucket", "--bucket", BUCKET, "--create-bucket-configuration", &format!("LocationConstraint={}", world.env.settings().aws.region)]);
        for key in ["index/index_20000/fake/1-compactor.tsdb.gz", "fake/6a1b2c3d/19a0b1c2d3e:19a0b1c2d3f:abcdef01"] {
            world.aws(&["s3api", "put-object", "--bucket", BUCKET, "--key", key]);
        }
        let secret = json!({"username": "admin", "password": "grafana-test-password"}).to_string();
        let created = world.aws(&["secretsmanager", "create-secret", "--name", "temporal-dev/grafana-admin", "--secret-string", &secret]);
        world.secret_arn = created["ARN"].as_str().expect("secret ARN").to_string();
        for service in alloy {
            world.aws(&["logs", "create-log-group", "--log-group-name", &world.log_group(service)]);
            world.sidecar_log(service, "level=info msg=\"now listening\" service=http");
        }
        world.set_outputs(&world.outputs());
        world
    }

    fn loki_service(&self) -> String {
        format!("{}-loki", self.project)
    }

    fn grafana_service(&self) -> String {
        format!("{}-grafana", self.project)
    }

    fn service_name(&self, service: &str) -> String {
        format!("{}-{}", self.project, container(service))
    }

    fn log_group(&self, service: &str) -> String {
        format!("/ecs/{}/{}", self.project, container(service))
    }

    /// One line in the service's CloudWatch group, stream `ecs/alloy/<task>`.
    fn sidecar_log(&self, service: &str, message: &str) {
        let group = self.log_group(service);
        let stream = "ecs/alloy/0123456789abcdef";
        let _ = self.aws_output(&["logs", "create-log-stream", "--log-group-name", &group, "--log-stream-name", stream]);
        let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
        let events = json!([{"timestamp": now_ms, "message": format!("ts=2026-01-01T00:00:00Z {message}")}]).to_string();
        self.aws(&["logs", "put-log-events", "--log-group-name", &group, "--log-stream-name", stream, "--log-events", &events]);
    }

    /// `terraform output -json` as Terraform would print it after every phase.
    fn outputs(&self) -> Value {
        let services: serde_json::Map<String, Value> = ["history", "matching", "frontend", "worker", "benchmark-worker"]
            .iter()
            .map(|s| (s.to_string(), json!({"service_name": self.service_name(s), "log_group_name": self.log_group(s)})))
            .collect();
        let value = |v: Value| json!({"sensitive": false, "type": "string", "value": v});
        json!({
            "loki_service_name": value(json!(self.loki_service())),
            "loki_bucket_name": value(json!(BUCKET)),
            "loki_log_group_name": value(json!(format!("/ecs/{}-loki", self.project))),
            "grafana_service_name": value(json!(self.grafana_service())),
            "grafana_admin_secret_arn": value(json!(self.secret_arn)),
            "temporal_services": value(Value::Object(services)),
        })
    }

    /// (Re)writes the recording terraform stand-in with these outputs.
    fn set_outputs(&self, outputs: &Value) {
        let terraform = StandIn::new("terraform")
            .reply(&["version", "-json"], Reply::ok(r#"{"terraform_version":"1.15.5"}"#))
            .reply(&["output", "-json"], Reply::ok(&outputs.to_string()));
        self.bins.install(&terraform).expect("install the terraform stand-in");
    }

    fn env_vars(&self) -> Vec<(String, String)> {
        let path = std::env::join_paths([self.bins.bin_dir(), venv_bin(), "/usr/local/bin".into(), "/usr/bin".into(), "/bin".into()]).unwrap();
        let home = self.home.path();
        let forward = format!("3100=127.0.0.1:{port},3000=127.0.0.1:{port}", port = self.stack.port());
        [
            ("PATH", path.to_string_lossy().into_owned()),
            ("HOME", home.display().to_string()),
            ("LANG", "C.UTF-8".into()),
            ("AWS_ENDPOINT_URL", self.moto.endpoint()),
            ("AWS_ENDPOINT_URL_SSM", self.stack.url()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_CONFIG_FILE", home.join("aws-config").display().to_string()),
            ("AWS_SHARED_CREDENTIALS_FILE", home.join("aws-credentials").display().to_string()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
            ("XTASK_TERRAFORM", self.bins.bin_dir().join("terraform").display().to_string()),
            ("XTASK_AMP_ENDPOINT", self.stack.url()),
            ("XTASK_POLL_SECONDS", "1".into()),
            ("XTASK_TUNNEL_TIMEOUT_SECONDS", "30".into()),
            ("STANDIN_FORWARD", forward),
            ("STANDIN_PLUGIN_LOG", self.plugin_log().display().to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    fn plugin_log(&self) -> PathBuf {
        self.home.path().join("plugin-calls.jsonl")
    }

    fn aws_output(&self, args: &[&str]) -> Output {
        let region = self.env.settings().aws.region;
        Command::new(venv_bin().join("aws"))
            .args(args)
            .args(["--region", &region, "--output", "json"])
            .env_clear()
            .envs(self.env_vars())
            .output()
            .expect("run the aws CLI")
    }

    /// Sets moto up through the real CLI; panics with its stderr on failure.
    fn aws(&self, args: &[&str]) -> Value {
        let out = self.aws_output(args);
        assert!(out.status.success(), "aws {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8_lossy(&out.stdout);
        if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).expect("aws printed JSON")
        }
    }

    fn xtask_command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_xtask"));
        command.args(args).args(["--env", &self.env.name]).current_dir(root()).env_clear().envs(self.env_vars()).stdin(Stdio::null());
        command
    }

    fn xtask(&self, args: &[&str]) -> Run {
        let started = Instant::now();
        let out = self.xtask_command(args).output().expect("run xtask");
        let run = Run {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        // Shown when a test fails (or with --nocapture).
        eprintln!("xtask {args:?}: exit {:?} in {:.1}s\n{}", run.code, started.elapsed().as_secs_f32(), run.stdout);
        run
    }

    /// Each session-manager-plugin start: its argv and pid.
    fn plugin_calls(&self) -> Vec<Value> {
        std::fs::read_to_string(self.plugin_log())
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("plugin log line"))
            .collect()
    }

    /// The tunnels are gone: no plugin process of this world is alive.
    fn assert_no_tunnel_left(&self) {
        for call in self.plugin_calls() {
            let pid = call["pid"].as_u64().expect("pid") as u32;
            assert!(gone_within(pid, Duration::from_secs(5)), "the session-manager-plugin stand-in (pid {pid}) is still running");
        }
    }
}

/// The ECS container / Terraform module name of a service.
fn container(service: &str) -> String {
    if service == "benchmark-worker" {
        service.to_string()
    } else {
        format!("temporal-{service}")
    }
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn assert_code(&self, code: i32) -> &Run {
        assert_eq!(self.code, Some(code), "stdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        self
    }
}

fn gone_within(pid: u32, limit: Duration) -> bool {
    let started = Instant::now();
    loop {
        // Gone, or a zombie waiting for a reaper that is not us.
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok();
        if state.as_deref().is_none_or(|s| s.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))) {
            return true;
        }
        if started.elapsed() > limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A JSON POST over a raw socket (moto's state-manager API; no HTTP client in the dev-deps).
fn post(base: &str, path: &str, body: &Value) {
    use std::io::{Read, Write};
    let addr = base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).expect("connect to moto");
    let body = body.to_string();
    write!(stream, "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 2") || answer.starts_with("HTTP/1.0 2"), "moto answered {answer}");
}

fn healthy_stack(world_cluster: &str, services: &[&str]) -> StackState {
    StackState { up: services.iter().map(|s| (s.to_string(), world_cluster.to_string(), 1.0)).collect(), ..StackState::default() }
}

fn example_cluster() -> String {
    Environment::load(&root(), "example").expect("the example env loads").settings.platform.ecs_cluster_name
}

#[test]
fn checkpoints_2_5_7_and_all_pass_against_the_stand_ins() {
    let services = ["history", "matching", "frontend", "worker"];
    let world = World::deployed(&services, healthy_stack(&example_cluster(), &services));
    for service in services {
        world.stack.add_service_lines(service, &world.cluster, &container(service), &[r#"{"level":"info","msg":"started"}"#]);
    }

    let run = world.xtask(&["verify", "2"]);
    run.assert_code(0);
    assert!(run.stdout.starts_with("checkpoint 2: PASS\n"), "{}", run.stdout);
    for name in ["loki service stable", "loki ready", "loki ingests a probe line", "s3 holds loki objects"] {
        assert!(run.stdout.contains(&format!("pass  {name}")), "{name} missing:\n{}", run.stdout);
    }
    // Every external command is logged with its purpose, the tunnel's among them.
    assert!(run.stderr.contains("open an SSM tunnel to Loki"), "{}", run.stderr);
    assert!(run.stderr.contains(&format!("ssm start-session --target {} --document-name AWS-StartPortForwardingSessionToRemoteHost", world.instance_id)), "{}", run.stderr);

    // The tunnel went through the cluster's instance to the Loki task's private address.
    let calls = world.plugin_calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    let argv: Vec<&str> = calls[0]["argv"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
    assert_eq!(argv[2], "StartSession");
    let params: Value = serde_json::from_str(argv[4]).unwrap();
    assert_eq!(params["Target"], world.instance_id.as_str());
    assert_eq!(params["DocumentName"], "AWS-StartPortForwardingSessionToRemoteHost");
    assert_eq!(params["Parameters"]["portNumber"], json!(["3100"]));
    let tasks = world.aws(&["ecs", "list-tasks", "--cluster", &world.cluster]);
    let described = world.aws(&[&["ecs", "describe-tasks", "--cluster", &world.cluster, "--tasks"][..], &tasks["taskArns"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect::<Vec<_>>()].concat());
    let loki_ip = described["tasks"].as_array().unwrap().iter().find(|t| t["group"] == format!("service:{}", world.loki_service()).as_str()).unwrap()["attachments"][0]["details"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "privateIPv4Address")
        .unwrap()["value"]
        .clone();
    assert_eq!(params["Parameters"]["host"][0], loki_ip);
    assert!(world.stack.state().requests.contains(&"SSM StartSession".to_string()));
    // The probe line reached "Loki".
    assert!(world.stack.state().entries.iter().any(|e| e.labels.get("service_name").map(String::as_str) == Some("xtask-verify")));
    world.assert_no_tunnel_left();

    let run = world.xtask(&["verify", "5", "--service", "worker"]);
    run.assert_code(0);
    assert!(run.stdout.starts_with("checkpoint 5 (worker): PASS\n"), "{}", run.stdout);
    for name in ["worker: service stable", "worker: logs in loki", "worker: stream labels", "worker: metrics in amp", "worker: alloy sidecar without errors"] {
        assert!(run.stdout.contains(&format!("pass  {name}")), "{name} missing:\n{}", run.stdout);
    }
    // AMP was queried with SigV4 headers, for the worker job of this cluster.
    let amp = world.stack.state().amp_queries.clone();
    assert!(!amp.is_empty() && amp.iter().all(|(_, signed)| *signed), "{amp:?}");
    // Only the service's current tasks count (ADOT's older series must not pass the check).
    assert!(amp[0].0.starts_with(r#"up{job="worker", cluster=""#) && amp[0].0.contains(r#"task_id=~""#), "{amp:?}");

    let run = world.xtask(&["verify", "7"]);
    run.assert_code(0);
    for name in ["grafana service stable", "grafana healthy", "grafana loki datasource", "grafana logql query returns lines"] {
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
    for name in ["loki ready", "history: metrics in amp", "frontend: stream labels", "grafana loki datasource", "amp answers queries", "s3 holds chunks", "s3 holds index"] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
    // One tunnel per run and target (2: Loki, 5: Loki, 7: Grafana, all: both), all closed.
    assert_eq!(world.plugin_calls().len(), 1 + 1 + 1 + 2);
    world.assert_no_tunnel_left();
}

#[test]
fn failed_checks_exit_1_by_name_and_logs_reads_the_service() {
    // worker runs Alloy, but nothing reaches AMP and its sidecar logs errors.
    let world = World::deployed(&["worker"], StackState::default());
    world.sidecar_log("worker", "level=error msg=\"Failed to send batch, retrying\" component=prometheus.remote_write.amp err=\"403 Forbidden\"");
    world.stack.add_service_lines("worker", &world.cluster, "temporal-worker", &[
        r#"{"level":"info","msg":"first"}"#,
        r#"{"level":"error","msg":"second"}"#,
        r#"{"level":"info","msg":"third"}"#,
        r#"{"level":"ERROR","msg":"fourth"}"#,
    ]);

    let run = world.xtask(&["verify", "5"]);
    run.assert_code(1);
    assert!(run.stdout.starts_with("checkpoint 5: FAIL\n"), "{}", run.stdout);
    assert!(run.stdout.contains("pass  worker: logs in loki"), "{}", run.stdout);
    assert!(run.stdout.contains("FAIL  worker: metrics in amp"), "{}", run.stdout);
    assert!(run.stdout.contains("FAIL  worker: alloy sidecar without errors") && run.stdout.contains("403 Forbidden"), "{}", run.stdout);
    assert!(run.stderr.contains("error: checkpoint 5 failed: worker: metrics in amp, worker: alloy sidecar without errors"), "{}", run.stderr);
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
    let mut child = world.xtask_command(&["verify", "2"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("start xtask");
    // Wait until the tunnel is open and /ready is in flight (the stand-in holds it for 20 s).
    let started = Instant::now();
    while !world.stack.state().requests.iter().any(|r| r == "GET /ready") {
        assert!(started.elapsed() < Duration::from_secs(60), "the tunnel never carried /ready");
        std::thread::sleep(Duration::from_millis(100));
    }
    let status = Command::new("kill").args(["-INT", &child.id().to_string()]).status().expect("kill -INT");
    assert!(status.success());
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        assert!(started.elapsed() < Duration::from_secs(60), "xtask did not stop after SIGINT");
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut stderr).unwrap();
    assert_eq!(code, Some(130), "{stderr}");
    assert!(stderr.contains("interrupted: closing 1 SSM tunnel(s)"), "{stderr}");
    assert_eq!(world.plugin_calls().len(), 1);
    world.assert_no_tunnel_left();
}

#[test]
fn checkpoints_that_cannot_run_yet_exit_2_with_the_fix() {
    let world = World::bare(&[], StackState::default());

    // Before `deploy loki`: no Loki outputs.
    world.set_outputs(&json!({}));
    let run = world.xtask(&["verify", "2"]);
    run.assert_code(2);
    assert!(run.stderr.contains("the Terraform output `loki_service_name` is missing") && run.stderr.contains("run `cargo xtask deploy loki --execute` first"), "{}", run.stderr);

    // Before `deploy grafana`.
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
    assert!(run.stderr.contains("run `cargo xtask migrate-sidecars` first"), "{}", run.stderr);
    let run = world.xtask(&["verify", "2", "--service", "worker"]);
    run.assert_code(2);
    assert!(run.stderr.contains("--service applies to checkpoint 5 only"), "{}", run.stderr);

    // No session manager plugin: the fix, and no session started.
    std::fs::remove_file(world.bins.bin_dir().join("session-manager-plugin")).unwrap();
    let run = world.xtask(&["verify", "2"]);
    run.assert_code(2);
    assert!(run.stderr.contains("`session-manager-plugin` is not installed"), "{}", run.stderr);
    assert!(run.stderr.contains("https://docs.aws.amazon.com/systems-manager/latest/userguide/session-manager-working-with-install-plugin.html"), "{}", run.stderr);
    assert!(world.stack.state().requests.is_empty(), "{:?}", world.stack.state().requests);
}

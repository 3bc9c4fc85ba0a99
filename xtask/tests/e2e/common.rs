//! Scaffolding shared by the end-to-end tests: the built binary, the project's pinned AWS CLI
//! against a local moto_server, a recording `terraform` (XTASK_TERRAFORM), and an SSM tunnel that
//! really forwards: moto has no StartSession, so AWS_ENDPOINT_URL_SSM points at the observability
//! stand-in, and the `session-manager-plugin` stand-in forwards its local port to that same
//! stand-in (loopback only), which answers as Loki, Grafana and AMP in their documented shapes.
//! Each world acts on a scratch copy of the repository (XTASK_ROOT), never on `envs/` itself, and
//! in an AWS account of its own on the test binary's one moto_server. Worlds are set up and
//! inspected with direct API calls (`standins::AwsApi`); the commands under test sign their own
//! calls with credentials the aws CLI would use and run the aws CLI where they still need it.

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use configcheck::botocore::{HttpRequest, Models};
use probes::aws::{AwsApi, EC2, ECS};
use serde_json::{json, Value};
use settings::{Collector, Environment};
use standins::observability::{install_session_manager_plugin, FakeStack, StackState};
use standins::{MotoServer, Recorder, Reply, StandIn};

/// The account of an env file that never meets moto (commands that stop before AWS).
pub const OFFLINE_ACCOUNT: &str = "123456789012";

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask/ is in the repository").to_path_buf()
}

/// The pinned Python tools; their absence fails the test (never a silent skip).
pub fn venv_bin() -> PathBuf {
    let bin = root().join(".tools/venv/bin");
    for tool in ["aws", "moto_server", "python"] {
        assert!(
            bin.join(tool).is_file(),
            "{} is missing: run `cargo xtask tools` to install the project's Python tools",
            bin.join(tool).display()
        );
    }
    bin
}

/// A scratch copy of the repository's inputs (env file, templates, infra versions) with one
/// env file: the example with moto's account and the given services on Alloy. Commands run with
/// `XTASK_ROOT` pointing here, so the real `envs/` and `rendered/` are never touched.
pub struct EnvFile {
    pub name: String,
    pub path: PathBuf,
    pub scratch: tempfile::TempDir,
}

/// Replaces the example's made-up ids (which every phase refuses to run with) by ids of this
/// world's, as an operator sets theirs after `cargo xtask init`.
pub fn set_own_ids(path: &Path) {
    let doc: toml_edit::DocumentMut = std::fs::read_to_string(path).expect("the env file").parse().expect("TOML");
    let region = doc["aws"]["region"].as_str().expect("a region").to_string();
    let account = doc["aws"]["account_id"].as_str().expect("an account").to_string();
    let values = [
        (&["platform", "vpc_id"][..], "\"vpc-0e2e00000000000a1\"".to_string()),
        (
            &["platform", "private_subnet_ids"],
            r#"["subnet-0e2e00000000000a1", "subnet-0e2e00000000000a2"]"#.to_string(),
        ),
        (&["platform", "instance_security_group_id"], "\"sg-0e2e00000000000a1\"".to_string()),
        (
            &["platform", "service_connect_namespace_arn"],
            format!("\"arn:aws:servicediscovery:{region}:{account}:namespace/ns-e2e0000000000001\""),
        ),
        (&["platform", "amp_workspace_id"], "\"ws-0e2e0000-0000-0000-0000-000000000001\"".to_string()),
        (&["temporal", "db_host"], format!("\"temporal-e2e.cluster-0e2e00000001.{region}.rds.amazonaws.com\"")),
    ];
    for (key, value) in values {
        settings::set(path, key, value.parse().expect("a TOML value")).expect("set an id");
    }
}

impl EnvFile {
    pub fn new(alloy: &[&str], account: &str) -> EnvFile {
        let scratch = tempfile::Builder::new().prefix("xtask-repo-").tempdir().expect("scratch repository");
        let repo = scratch.path();
        for dir in ["envs", "infra", "templates", "rendered"] {
            std::fs::create_dir_all(repo.join(dir)).expect("scratch folders");
        }
        for entry in std::fs::read_dir(root().join("templates")).expect("templates") {
            let entry = entry.expect("template");
            std::fs::copy(entry.path(), repo.join("templates").join(entry.file_name())).expect("copy a template");
        }
        std::fs::copy(root().join("infra/versions.tf"), repo.join("infra/versions.tf")).expect("copy versions.tf");
        // `verify parity` prices its reads from it.
        std::fs::create_dir_all(repo.join("data")).expect("scratch data/");
        std::fs::copy(root().join("data/prices.toml"), repo.join("data/prices.toml")).expect("copy prices.toml");
        let name = "dev".to_string();
        let path = repo.join("envs").join(format!("{name}.toml"));
        // The example in this world's account, its ARNs moved along as `cargo xtask init` does.
        let example = std::fs::read_to_string(root().join("envs/example.toml")).expect("read the example env");
        let mut doc: toml_edit::DocumentMut = example.parse().expect("the example env is TOML");
        let region = doc["aws"]["region"].as_str().expect("the example's region").to_string();
        settings::retarget(&mut doc, &region, account);
        doc["aws"]["account_id"] = toml_edit::value(account);
        // A state of its own, as `cargo xtask init` gives every env.
        doc["state"]["key"] = toml_edit::value(format!("loki-migration/{name}.tfstate"));
        std::fs::write(&path, doc.to_string()).expect("write the scratch env");
        set_own_ids(&path);
        let file = EnvFile { name, path, scratch };
        for service in alloy {
            settings::set_collector(&file.path, service, Collector::Alloy).expect("set a collector");
        }
        file
    }

    pub fn repo(&self) -> &Path {
        self.scratch.path()
    }

    pub fn settings(&self) -> settings::Settings {
        Environment::load(self.repo(), &self.name).expect("the test env loads").settings
    }

    pub fn text(&self) -> String {
        std::fs::read_to_string(&self.path).expect("read the env file")
    }
}

pub struct World {
    pub moto: &'static MotoServer,
    /// This world's own account on the shared moto, and its id.
    pub api: AwsApi,
    pub account: String,
    /// The commands under test sign with credentials of their own in the account, so their
    /// requests are told apart from the test's set-up calls.
    pub xtask_credentials: probes::amp::Credentials,
    pub bucket: String,
    pub stack: FakeStack,
    pub bins: Recorder,
    pub home: tempfile::TempDir,
    pub env: EnvFile,
    pub cluster: String,
    pub project: String,
    pub secret_arn: String,
    pub instance_id: String,
}

impl World {
    /// moto, the stand-ins and an env file; no AWS resources yet.
    pub fn bare(alloy: &[&str], state: StackState) -> World {
        let bin = venv_bin();
        let moto = MotoServer::shared(&bin.join("python"));
        let region = settings::parse(&std::fs::read_to_string(root().join("envs/example.toml")).expect("example env"))
            .expect("the example env parses")
            .aws
            .region;
        let (api, account) = moto.new_account(&region).expect("a fresh moto account");
        let xtask_credentials = moto.credentials_in(&account, &region).expect("credentials for xtask");
        let env = EnvFile::new(alloy, &account);
        let settings = env.settings();
        let world = World {
            moto,
            bucket: format!("temporal-dev-loki-{account}"),
            api,
            account,
            xtask_credentials,
            stack: FakeStack::start(state).expect("start the observability stand-in"),
            bins: Recorder::new().expect("stand-in dir"),
            home: tempfile::tempdir().expect("home"),
            cluster: settings.platform.ecs_cluster_name.clone(),
            project: settings.project.name.clone(),
            env,
            secret_arn: String::new(),
            instance_id: String::new(),
        };
        install_session_manager_plugin(&world.bins.bin_dir(), &bin.join("python"))
            .expect("install the plugin stand-in");
        world.set_outputs(&world.outputs());
        world
    }

    /// Everything the checkpoints look at: ECS services with running tasks for Loki, Grafana and
    /// the Alloy services, a container instance, the bucket with chunks and index, the Grafana
    /// secret, and the services' log groups.
    pub fn deployed(alloy: &[&str], state: StackState) -> World {
        let mut world = World::bare(alloy, state);
        let cluster = world.cluster.clone();
        world.ecs("CreateCluster", json!({"clusterName": cluster}));
        // moto wants the EC2 instance behind a container instance to exist.
        let ran = world.ec2(
            "RunInstances",
            &[("ImageId", "ami-12c6146b"), ("MinCount", "1"), ("MaxCount", "1"), ("InstanceType", "t4g.medium")],
        );
        world.instance_id = first_xml(&ran, "instanceId");
        let document = json!({"instanceId": world.instance_id}).to_string();
        world.ecs("RegisterContainerInstance", json!({"cluster": cluster, "instanceIdentityDocument": document}));
        let network = world.network();
        let mut services: Vec<String> = vec![world.loki_service(), world.grafana_service()];
        services.extend(alloy.iter().map(|s| world.service_name(s)));
        for service in &services {
            let containers = json!([{"name": service, "image": "stand-in:1", "memory": 128}]);
            world.ecs(
                "RegisterTaskDefinition",
                json!({"family": service, "networkMode": "awsvpc", "containerDefinitions": containers}),
            );
            world.ecs(
                "CreateService",
                json!({"cluster": cluster, "serviceName": service, "taskDefinition": service, "desiredCount": 1,
                       "networkConfiguration": network}),
            );
            world.ecs(
                "RunTask",
                json!({"cluster": cluster, "taskDefinition": service, "group": format!("service:{service}"),
                       "launchType": "EC2", "networkConfiguration": network}),
            );
        }
        let location = format!(
            "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><LocationConstraint>{}</LocationConstraint></CreateBucketConfiguration>",
            world.api.region
        );
        world.api.s3_put(&format!("/{}", world.bucket), location.as_bytes()).expect("create the Loki bucket");
        for key in ["index/index_20000/fake/1-compactor.tsdb.gz", "fake/6a1b2c3d/19a0b1c2d3e:19a0b1c2d3f:abcdef01"] {
            world.api.s3_put(&format!("/{}/{key}", world.bucket), b"").expect("put a Loki object");
        }
        let secret = json!({"username": "admin", "password": "grafana-test-password"}).to_string();
        let created = world.call(
            "secretsmanager",
            "CreateSecret",
            json!({"Name": "temporal-dev/grafana-admin", "SecretString": secret}),
        );
        world.secret_arn = created["ARN"].as_str().expect("secret ARN").to_string();
        for service in alloy {
            world.call("logs", "CreateLogGroup", json!({"logGroupName": world.log_group(service)}));
            world.sidecar_log(service, "level=info msg=\"now listening\" service=http");
        }
        world.set_outputs(&world.outputs());
        world
    }

    /// Loki deployed, the worker still on ADOT with a line of its own in "Loki": what
    /// `migrate-sidecars` starts from (the caller sets the plan the stand-in shows).
    pub fn worker_on_adot(state: StackState) -> World {
        let world = World::deployed(&["worker"], state);
        settings::set_collector(&world.env.path, "worker", Collector::Adot).unwrap();
        settings::set(&world.env.path, &["loki", "enabled"], true.into()).unwrap();
        world.stack.add_service_lines(
            "worker",
            &world.cluster,
            "temporal-worker",
            &[r#"{"level":"info","msg":"started"}"#],
        );
        world
    }

    /// A JSON-protocol call in this world's account; panics with the answer on failure.
    pub fn call(&self, service: &str, action: &str, input: Value) -> Value {
        let service = match service {
            "ecs" => &ECS,
            "logs" => &probes::aws::LOGS,
            "secretsmanager" => &probes::aws::SECRETS_MANAGER,
            "ssm" => &probes::aws::SSM,
            "ecr" => &probes::aws::ECR,
            other => panic!("no JSON-protocol service {other}"),
        };
        self.api.json(service, action, &input).unwrap_or_else(|err| panic!("{action}: {err:#}"))
    }

    pub fn ecs(&self, action: &str, input: Value) -> Value {
        self.call("ecs", action, input)
    }

    /// An EC2 query action; its XML answer.
    pub fn ec2(&self, action: &str, params: &[(&str, &str)]) -> String {
        self.api.query(&EC2, action, "2016-11-15", params).unwrap_or_else(|err| panic!("ec2 {action}: {err:#}"))
    }

    /// The awsvpc configuration of this account's default subnet and security group.
    pub fn network(&self) -> Value {
        let subnet = first_xml(&self.ec2("DescribeSubnets", &[]), "subnetId");
        let group = first_xml(&self.ec2("DescribeSecurityGroups", &[]), "groupId");
        json!({"awsvpcConfiguration": {"subnets": [subnet], "securityGroups": [group]}})
    }

    /// Every task of the cluster with this desired status, described.
    pub fn tasks(&self, desired_status: &str) -> Vec<Value> {
        let listed = self.ecs("ListTasks", json!({"cluster": self.cluster, "desiredStatus": desired_status}));
        let arns = listed["taskArns"].clone();
        if arns.as_array().is_none_or(Vec::is_empty) {
            return Vec::new();
        }
        let described = self.ecs("DescribeTasks", json!({"cluster": self.cluster, "tasks": arns}));
        described["tasks"].as_array().cloned().unwrap_or_default()
    }

    pub fn loki_service(&self) -> String {
        format!("{}-loki", self.project)
    }

    pub fn grafana_service(&self) -> String {
        format!("{}-grafana", self.project)
    }

    pub fn service_name(&self, service: &str) -> String {
        format!("{}-{}", self.project, container(service))
    }

    pub fn log_group(&self, service: &str) -> String {
        format!("/ecs/{}/{}", self.project, container(service))
    }

    /// One line in the service's CloudWatch group, stream `ecs/alloy/<task>`.
    pub fn sidecar_log(&self, service: &str, message: &str) {
        self.put_log_line(
            &self.log_group(service),
            "ecs/alloy/0123456789abcdef",
            &format!("ts=2026-01-01T00:00:00Z {message}"),
        );
    }

    /// One line in a CloudWatch stream, created when missing.
    pub fn put_log_line(&self, group: &str, stream: &str, message: &str) {
        // An existing stream is refused (ResourceAlreadyExistsException): fine.
        let _ = self.api.json(
            &probes::aws::LOGS,
            "CreateLogStream",
            &json!({"logGroupName": group, "logStreamName": stream}),
        );
        let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
        self.call(
            "logs",
            "PutLogEvents",
            json!({"logGroupName": group, "logStreamName": stream, "logEvents": [{"timestamp": now_ms, "message": message}]}),
        );
    }

    /// `terraform output -json` as Terraform would print it after every phase.
    pub fn outputs(&self) -> Value {
        let settings = self.env.settings();
        let services: serde_json::Map<String, Value> =
            ["history", "matching", "frontend", "worker", "benchmark-worker"]
                .iter()
                .map(|s| {
                    let on_alloy =
                        settings.services.get(s).is_some_and(|c| c.enabled && c.collector == Collector::Alloy);
                    let output = json!({"service_name": self.service_name(s), "log_group_name": self.log_group(s),
                                        "loki_client": on_alloy && settings.loki.enabled});
                    (s.to_string(), output)
                })
                .collect();
        let value = |v: Value| json!({"sensitive": false, "type": "string", "value": v});
        json!({
            "loki_service_name": value(json!(self.loki_service())),
            "loki_bucket_name": value(json!(self.bucket)),
            "loki_log_group_name": value(json!(format!("/ecs/{}-loki", self.project))),
            "grafana_service_name": value(json!(self.grafana_service())),
            "grafana_admin_secret_arn": value(json!(self.secret_arn)),
            "temporal_services": value(Value::Object(services)),
        })
    }

    /// (Re)writes the recording terraform stand-in with these outputs.
    pub fn set_outputs(&self, outputs: &Value) {
        self.set_terraform(outputs, &json!({"resource_changes": []}), None);
    }

    /// (Re)writes the recording terraform stand-in: its outputs, the plan `show -json` prints,
    /// and optionally a failing `plan` (exit code, stderr).
    pub fn set_terraform(&self, outputs: &Value, plan: &Value, plan_fails: Option<(i32, &str)>) {
        let mut terraform = StandIn::new("terraform")
            .reply(&["version", "-json"], Reply::ok(r#"{"terraform_version":"1.15.5"}"#))
            .reply(&["output", "-json"], Reply::ok(&outputs.to_string()))
            .reply(&["show", "-json"], Reply::ok(&plan.to_string()));
        if let Some((code, stderr)) = plan_fails {
            terraform = terraform.reply(&["plan"], Reply::fail(code, stderr));
        }
        self.bins.install(&terraform).expect("install the terraform stand-in");
    }

    /// The terraform subcommands run so far, in order (`init`, `plan`, …), and their argv.
    pub fn terraform_calls(&self) -> Vec<Vec<String>> {
        self.bins
            .argv_of("terraform")
            .expect("read the stand-in log")
            .into_iter()
            .filter(|argv| argv.first().map(String::as_str) != Some("version"))
            .collect()
    }

    pub fn env_vars(&self) -> Vec<(String, String)> {
        let path = std::env::join_paths([
            self.bins.bin_dir(),
            venv_bin(),
            "/usr/local/bin".into(),
            "/usr/bin".into(),
            "/bin".into(),
        ])
        .unwrap();
        let home = self.home.path();
        let forward = format!("3100=127.0.0.1:{port},3000=127.0.0.1:{port}", port = self.stack.port());
        [
            ("PATH", path.to_string_lossy().into_owned()),
            ("HOME", home.display().to_string()),
            ("LANG", "C.UTF-8".into()),
            ("AWS_ENDPOINT_URL_SSM", self.stack.url()),
            ("AWS_CONFIG_FILE", home.join("aws-config").display().to_string()),
            ("AWS_SHARED_CREDENTIALS_FILE", home.join("aws-credentials").display().to_string()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
            ("XTASK_ROOT", self.env.repo().display().to_string()),
            ("XTASK_TERRAFORM", self.bins.bin_dir().join("terraform").display().to_string()),
            ("XTASK_AMP_ENDPOINT", self.stack.url()),
            // The stand-ins answer at once: polls need not wait long.
            ("XTASK_POLL_SECONDS", "0.2".into()),
            // A failing P1 waits its whole deadline.
            ("XTASK_P1_SECONDS", "3".into()),
            ("XTASK_TUNNEL_TIMEOUT_SECONDS", "30".into()),
            // A throttled or failed AWS call is retried at once (the SDK's backoff unit is 1 s).
            ("XTASK_RETRY_BASE_SECONDS", "0.01".into()),
            ("STANDIN_FORWARD", forward),
            ("STANDIN_PLUGIN_LOG", self.plugin_log().display().to_string()),
        ]
        .into_iter()
        .chain(self.credential_vars())
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// moto's endpoint and this world's credentials, as the commands under test get them.
    fn credential_vars(&self) -> Vec<(&'static str, String)> {
        let credentials = &self.xtask_credentials;
        vec![
            ("AWS_ENDPOINT_URL", self.moto.endpoint()),
            ("AWS_ACCESS_KEY_ID", credentials.access_key_id.clone()),
            ("AWS_SECRET_ACCESS_KEY", credentials.secret_access_key.clone()),
            ("AWS_SESSION_TOKEN", credentials.session_token.clone().unwrap_or_default()),
        ]
    }

    pub fn plugin_log(&self) -> PathBuf {
        self.home.path().join("plugin-calls.jsonl")
    }

    pub fn xtask_command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_xtask"));
        command
            .args(args)
            .args(["--env", &self.env.name])
            .current_dir(root())
            .env_clear()
            .envs(self.env_vars())
            .stdin(Stdio::null());
        // Ctrl-C ends xtask as in an operator's terminal, even where this test runs with SIGINT
        // ignored (a background job of a non-interactive shell), which children inherit.
        // SAFETY: signal(2) is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            command.pre_exec(|| {
                libc::signal(libc::SIGINT, libc::SIG_DFL);
                Ok(())
            });
        }
        command
    }

    pub fn xtask(&self, args: &[&str]) -> Run {
        run_xtask(self.xtask_command(args), &format!("{args:?}"))
    }

    /// Each session-manager-plugin start: its argv and pid.
    pub fn plugin_calls(&self) -> Vec<Value> {
        std::fs::read_to_string(self.plugin_log())
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("plugin log line"))
            .collect()
    }

    /// The tunnels are gone: no plugin process of this world is alive.
    pub fn assert_no_tunnel_left(&self) {
        for call in self.plugin_calls() {
            let pid = call["pid"].as_u64().expect("pid") as u32;
            assert!(
                gone_within(pid, Duration::from_secs(5)),
                "the session-manager-plugin stand-in (pid {pid}) is still running"
            );
        }
    }
}

/// The ECS container / Terraform module name of a service.
impl World {
    /// Every AWS request of this world (to moto in its account, and to the stand-ins) against
    /// botocore's service models, failing the test on any mismatch or on an operation of xtask's
    /// that `aws-operations.txt` does not list.
    fn check_requests(&self) {
        let (setup, xtask) = (&self.api.credentials().access_key_id, &self.xtask_credentials.access_key_id);
        let from_moto =
            self.moto.requests_with(&[setup, xtask]).expect("read moto's recording").into_iter().filter(|r| {
                (signed_by(r, setup) || signed_by(r, xtask))
                    && !r.headers.contains_key(standins::observability::PROXIED)
            });
        let requests: Vec<_> = from_moto.chain(self.stack.state().aws_requests.clone()).collect();
        // The world's region and the env file's, where a test moved it; a command that cannot
        // read the env file (doctor) has no region to follow: any AWS region then.
        let regions: Vec<&str> = match settings::parse(&self.env.text()) {
            Ok(env) => settings::rules::regions()
                .map(|(region, _)| region)
                .filter(|r| *r == self.api.region || *r == env.aws.region)
                .collect(),
            Err(_) => settings::rules::regions().map(|(region, _)| region).collect(),
        };
        let client = |request: &HttpRequest| match request.headers.get("user-agent") {
            _ if signed_by(request, setup) => "test set-up",
            Some(agent) if agent.contains(&format!("app/{ORACLE_APP_ID}")) => "test set-up",
            Some(agent) if agent.starts_with("aws-cli/") => "aws-cli run by xtask",
            _ => "xtask",
        };
        assert_requests_match_models(&requests, &regions, client);
    }
}

/// Each world's requests are checked as the test ends (a test that failed already says why).
impl Drop for World {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            self.check_requests();
        }
    }
}

/// The `AWS_SDK_UA_APP_ID` of an AWS CLI a test runs as an oracle: its requests are checked
/// against the models but are not the product's.
pub const ORACLE_APP_ID: &str = "xtask-e2e-oracle";

/// Whether `request` is signed with this access key.
pub fn signed_by(request: &HttpRequest, access_key: &str) -> bool {
    request.headers.get("authorization").is_some_and(|a| a.contains(&format!("Credential={access_key}/")))
}

/// The operations xtask sends (itself and through the aws CLI), one `service Operation (client)`
/// a line: a test that sees one not listed fails, so a new call is reviewed, and checked
/// against the model, the day it is added.
const PRODUCT_OPERATIONS: &str = include_str!("aws-operations.txt");

/// Fails the test when botocore's models reject one of `requests` (signed for one of `regions`)
/// or one of the product's is not in [`PRODUCT_OPERATIONS`]; prints the operations seen.
pub fn assert_requests_match_models(
    requests: &[HttpRequest],
    regions: &[&str],
    client: impl Fn(&HttpRequest) -> &'static str,
) {
    static MODELS: std::sync::OnceLock<Models> = std::sync::OnceLock::new();
    let models =
        MODELS.get_or_init(|| Models::in_venv(&root().join(".tools/venv")).unwrap_or_else(|err| panic!("{err:#}")));
    let listed: Vec<&str> =
        PRODUCT_OPERATIONS.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).collect();
    let mut problems = Vec::new();
    let mut seen = BTreeMap::new();
    for request in requests {
        let client = client(request);
        match models.check_request(request, regions) {
            Ok((operation, found)) => {
                let name = format!("{operation} ({client})");
                if client != "test set-up" && !listed.contains(&name.as_str()) {
                    problems.push(format!(
                        "`{name}` is not in xtask/tests/e2e/aws-operations.txt: a new call? list it there"
                    ));
                }
                *seen.entry(name).or_insert(0) += 1;
                let body = String::from_utf8_lossy(&request.body);
                problems.extend(found.into_iter().map(|p| format!("{operation}: {p}\n    request body: {body}")));
            }
            Err(err) => problems.push(format!("{} {}: {err:#}", request.method, request.path)),
        }
    }
    let listed: Vec<String> = seen.iter().map(|(op, n)| format!("  {op} ×{n}")).collect();
    eprintln!("AWS requests of this test, checked against botocore's models:\n{}", listed.join("\n"));
    let mut once = std::collections::BTreeSet::new();
    problems.retain(|p| once.insert(p.clone()));
    assert!(problems.is_empty(), "{} problem(s) with AWS requests:\n{}", problems.len(), problems.join("\n"));
}

pub fn container(service: &str) -> String {
    if service == "benchmark-worker" {
        service.to_string()
    } else {
        format!("temporal-{service}")
    }
}

/// Runs a prepared xtask command and keeps what it printed; shown (under `label`) when a test fails.
/// Ctrl-C to a running xtask, as an operator would; its exit status once it has stopped (a run
/// that does not stop within a minute fails the test instead of hanging it).
pub fn interrupt(child: &mut std::process::Child) -> std::process::ExitStatus {
    let pid = i32::try_from(child.id()).expect("pid");
    // SAFETY: kill(2) of our own child; no memory is involved.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0, "kill -INT {pid}");
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait for xtask") {
            return status;
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("xtask did not stop within 60 s of SIGINT");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn run_xtask(mut command: Command, label: &str) -> Run {
    let started = Instant::now();
    let out = command.output().expect("run xtask");
    let run = Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    eprintln!(
        "xtask {label}: exit {:?} in {:.1}s\nstdout:\n{}\nstderr:\n{}",
        run.code,
        started.elapsed().as_secs_f32(),
        run.stdout,
        run.stderr
    );
    run
}

pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn assert_code(&self, code: i32) -> &Run {
        assert_eq!(self.code, Some(code), "stdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        self
    }
}

pub fn gone_within(pid: u32, limit: Duration) -> bool {
    let started = Instant::now();
    loop {
        // Gone, or a zombie waiting for a reaper that is not us.
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok();
        if state
            .as_deref()
            .is_none_or(|s| s.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')))
        {
            return true;
        }
        if started.elapsed() > limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn healthy_stack(world_cluster: &str, services: &[&str]) -> StackState {
    StackState {
        up: services.iter().map(|s| (s.to_string(), world_cluster.to_string(), 1.0)).collect(),
        ..StackState::default()
    }
}

/// The first `<tag>` of an XML answer.
pub fn first_xml(xml: &str, tag: &str) -> String {
    probes::aws::xml_values(xml, tag).into_iter().next().unwrap_or_else(|| panic!("no <{tag}> in {xml}"))
}

pub fn example_cluster() -> String {
    Environment::load(&root(), "example").expect("the example env loads").settings.platform.ecs_cluster_name
}

/// An AWS endpoint in front of `upstream` (moto): `fault` answers a request itself (a throttle,
/// a 500, a clock-skew refusal) or lets it through unchanged.
pub fn fault_proxy(
    upstream: String,
    fault: impl Fn(&standins::http::Request) -> Option<standins::http::Answer> + Send + Sync + 'static,
) -> standins::http::HttpServer {
    let handler = move |req: &standins::http::Request| {
        fault(req).unwrap_or_else(|| {
            forward(&upstream, req).unwrap_or_else(|err| standins::http::Answer::text(502, &format!("{err:#}")))
        })
    };
    standins::http::HttpServer::start(std::sync::Arc::new(handler)).expect("start the fault proxy")
}

/// The request as it came (moto checks no signature), over HTTP/1.0 so the answer ends at close.
fn forward(upstream: &str, req: &standins::http::Request) -> anyhow::Result<standins::http::Answer> {
    use std::io::{Read, Write};
    let addr = upstream.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = std::net::TcpStream::connect(addr)?;
    let query: Vec<String> = req.query.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let path = if query.is_empty() { req.path.clone() } else { format!("{}?{}", req.path, query.join("&")) };
    let mut head = format!("{} {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Length: {}\r\n", req.method, req.body.len());
    for (name, value) in &req.headers {
        if !["host", "content-length", "connection", "expect", "transfer-encoding"].contains(&name.as_str()) {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    stream.write_all(format!("{head}\r\n{}", req.body).as_bytes())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(|| anyhow::format_err!("no header end"))?;
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(502);
    Ok(standins::http::Answer::new(status, "application/x-amz-json-1.1", body.to_string()))
}

pub use probes::time::civil_from_days as civil;

/// `YYYYMMDDTHHMMSSZ`, SigV4's `x-amz-date`, of seconds since the epoch.
pub fn amz_date(s: u64) -> String {
    let (y, m, d) = civil((s / 86_400) as i64);
    format!("{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z", s % 86_400 / 3600, s % 3600 / 60, s % 60)
}

/// An HTTP `Date` (RFC 7231 IMF-fixdate) of seconds since the epoch.
pub fn http_date(s: u64) -> String {
    let days = s / 86_400;
    let (y, m, d) = civil(days as i64);
    let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][(days % 7) as usize];
    let month = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"][m as usize - 1];
    format!("{weekday}, {d:02} {month} {y} {:02}:{:02}:{:02} GMT", s % 86_400 / 3600, s % 3600 / 60, s % 60)
}

//! `cargo xtask build-grafana` end to end (req 4.4): the built xtask binary, a recording `docker`
//! first on PATH, and the project's pinned AWS CLI against a local moto_server (STS, ECR).
//!
//! PATH is hermetic: the stand-ins, the venv's `aws`, and links to git and the few utilities the
//! stand-in script uses, so the machine's real docker can never be reached.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use standins::{MotoServer, Recorder, Reply, StandIn};
use tools::python::PythonTools;
use tools::Cmd;

const REGION: &str = "eu-west-1"; // envs/example.toml
const REPOSITORY: &str = "temporal-dev-grafana"; // <project.name>-grafana
/// xtask's access key (moto's default account, as `testing`): its requests, and those of the aws
/// CLI it runs, are told apart from the test's own and checked against AWS's models.
const XTASK_KEY: &str = "xtask-build-grafana";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask is inside the repository").to_path_buf()
}

/// The pinned tools are a requirement of this test, never a reason to skip it.
fn python_tools() -> PythonTools {
    PythonTools::installed(&root()).unwrap_or_else(|err| panic!("{err:#}"))
}

struct Harness {
    tools: PythonTools,
    recorder: Recorder,
    /// Links to git, sh utilities: everything on PATH besides the stand-ins and the venv.
    system: tempfile::TempDir,
    home: tempfile::TempDir,
    /// The moto this harness talks to: the binary's shared one, or one of its own.
    moto: Option<&'static MotoServer>,
    own_moto: Option<MotoServer>,
}

impl Harness {
    fn new(docker: Option<StandIn>) -> Harness {
        let tools = python_tools();
        let recorder = Recorder::new().unwrap();
        if let Some(docker) = docker {
            recorder.install(&docker).unwrap();
        }
        let system = tempfile::tempdir().unwrap();
        let path = std::env::var_os("PATH").unwrap_or_default();
        for tool in ["git", "sed", "awk", "cat"] {
            let real =
                standins::find_on(&path, tool).unwrap_or_else(|| panic!("`{tool}` is needed on PATH for this test"));
            std::os::unix::fs::symlink(real, system.path().join(tool)).unwrap();
        }
        Harness { tools, recorder, system, home: tempfile::tempdir().unwrap(), moto: None, own_moto: None }
    }

    /// The shared moto, in its default account (the example env's): the tests that use it all
    /// want the Grafana repository to exist, so sharing it is safe.
    fn with_repository(mut self) -> (Harness, String) {
        self.moto = Some(MotoServer::shared(&self.tools.bin("python")));
        let uri = self.create_repository();
        (self, uri)
    }

    /// A moto of its own: an account where the repository does not exist.
    fn with_own_moto(mut self) -> Harness {
        self.own_moto = Some(MotoServer::start(&self.tools.bin("python")).unwrap());
        self
    }

    fn endpoint(&self) -> String {
        self.moto.or(self.own_moto.as_ref()).map(MotoServer::endpoint).unwrap_or_else(|| "http://127.0.0.1:9".into())
    }

    /// The environment every process here gets: nothing from the developer's shell or ~/.aws.
    fn command(&self, program: &Path) -> Command {
        let mut cmd = Command::new(program);
        cmd.env_clear()
            .env("PATH", self.recorder.path_with(&[&self.tools.venv().join("bin"), self.system.path()]))
            .env("HOME", self.home.path())
            .env("AWS_CONFIG_FILE", self.home.path().join("aws-config"))
            .env("AWS_SHARED_CREDENTIALS_FILE", self.home.path().join("aws-credentials"))
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_ENDPOINT_URL", self.endpoint())
            .env("AWS_ACCESS_KEY_ID", XTASK_KEY)
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .current_dir(root());
        cmd
    }

    /// Creates the repository grafana.tf would create (or finds it, made by a test before);
    /// returns its URI.
    fn create_repository(&self) -> String {
        let testing = probes::amp::Credentials {
            access_key_id: "testing".into(),
            secret_access_key: "testing".into(),
            session_token: None,
        };
        let api = probes::aws::AwsApi::new(REGION, testing, probes::Http::default()).with_endpoint(&self.endpoint());
        let name = serde_json::json!({"repositoryName": REPOSITORY});
        match api.json(&probes::aws::ECR, "CreateRepository", &name) {
            Ok(answer) => answer["repository"]["repositoryUri"].as_str().unwrap().to_string(),
            Err(err)
                if err
                    .downcast_ref::<probes::aws::Refused>()
                    .is_some_and(|r| r.kind == "RepositoryAlreadyExistsException") =>
            {
                let found = api
                    .json(
                        &probes::aws::ECR,
                        "DescribeRepositories",
                        &serde_json::json!({"repositoryNames": [REPOSITORY]}),
                    )
                    .expect("find the test ECR repository in moto");
                found["repositories"][0]["repositoryUri"].as_str().unwrap().to_string()
            }
            Err(err) => panic!("create the test ECR repository in moto: {err:#}"),
        }
    }

    fn xtask(&self, args: &[&str], adjust: impl FnOnce(&mut Command)) -> Output {
        let mut cmd = self.command(Path::new(env!("CARGO_BIN_EXE_xtask")));
        cmd.args(["build-grafana", "--env", "example"]).args(args);
        adjust(&mut cmd);
        cmd.output().unwrap()
    }

    fn docker(&self) -> String {
        self.recorder.bin_dir().join("docker").display().to_string()
    }

    fn docker_calls(&self) -> Vec<Vec<String>> {
        self.recorder.argv_of("docker").unwrap()
    }
}

/// xtask's requests to this harness's moto against botocore's models, as the test ends.
impl Drop for Harness {
    fn drop(&mut self) {
        let Some(moto) = self.moto.or(self.own_moto.as_ref()) else { return };
        if std::thread::panicking() {
            return;
        }
        let requests = moto.requests_with(&[XTASK_KEY]).expect("read moto's recording");
        let requests: Vec<_> = requests.into_iter().filter(|r| crate::common::signed_by(r, XTASK_KEY)).collect();
        crate::common::assert_requests_match_models(&requests, &[REGION], |request| {
            match request.headers.get("user-agent") {
                Some(agent) if agent.starts_with("aws-cli/") => "aws-cli run by xtask",
                _ => "xtask",
            }
        });
    }
}

/// Prints what the real one prints on stdout, so the test sees whether it pollutes xtask's stdout.
fn docker_with_buildx() -> StandIn {
    StandIn::new("docker")
        .reply(&["buildx", "version"], Reply::ok("github.com/docker/buildx v0.17.1 257815a\n"))
        .reply(&["login"], Reply::ok("Login Succeeded\n"))
        .reply(&["push"], Reply::ok("13.2.3-abc: digest: sha256:0000 size: 1234\n"))
        .reads_stdin(&["login"])
}

/// What build-grafana tags: `<repo uri>:<Dockerfile's Grafana version>-<commit>[-dirty]`.
fn expected_image(uri: &str) -> String {
    let dockerfile = std::fs::read_to_string(root().join("grafana/Dockerfile")).unwrap();
    let version = configcheck::grafana::grafana_version(&dockerfile).unwrap();
    let git_bin = tools::require("git", "install git").unwrap();
    let git = |args: &[&str]| Cmd::new(&git_bin, "read the test's expectation").args(args).dir(root()).read().unwrap();
    let sha = git(&["rev-parse", "--short=7", "HEAD"]).trim().to_string();
    let dirty = !git(&["status", "--porcelain", "--untracked-files=all", "--", "grafana"]).trim().is_empty();
    format!("{uri}:{version}-{sha}{}", if dirty { "-dirty" } else { "" })
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn assert_failed_with(out: &Output, needles: &[&str]) {
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "expected a failure; stderr:\n{stderr}");
    for needle in needles {
        assert!(stderr.contains(needle), "{needle:?} not in stderr:\n{stderr}");
    }
}

/// No build, login or push happened: at most the read-only `docker buildx version` probe.
fn assert_nothing_pushed(h: &Harness) {
    let calls = h.docker_calls();
    assert!(calls.iter().all(|argv| argv == &["buildx", "version"]), "{calls:?}");
}

// req: 4.4
#[test]
fn dry_run_prints_the_exact_commands_and_builds_nothing() {
    let (h, uri) = Harness::new(Some(docker_with_buildx())).with_repository();
    let image = expected_image(&uri);
    let registry = uri.split('/').next().unwrap();

    let out = h.xtask(&["--allow-dirty"], |_| {});
    assert!(out.status.success(), "stderr:\n{}", text(&out.stderr));

    let aws = h.tools.bin("aws").display().to_string();
    let docker = h.docker();
    let root = root().display().to_string();
    assert_eq!(
        text(&out.stdout).lines().collect::<Vec<_>>(),
        [
            format!("{docker} buildx build --platform linux/arm64 --provenance=false --tag {image} --load {root}/grafana"),
            format!("{aws} ecr get-login-password --region {REGION} --output json | {docker} login --username AWS --password-stdin {registry}"),
            format!("{docker} push {image}"),
        ]
    );
    assert!(text(&out.stderr).contains("dry run: nothing was built"), "{}", text(&out.stderr));
    // Only the read-only version probe reached docker.
    assert_eq!(h.docker_calls(), [["buildx", "version"]]);
}

// req: 4.4
#[test]
fn execute_builds_logs_in_through_stdin_and_pushes_in_order() {
    let (h, uri) = Harness::new(Some(docker_with_buildx())).with_repository();
    let image = expected_image(&uri);
    let registry = uri.split('/').next().unwrap();

    let out = h.xtask(&["--allow-dirty", "--execute"], |_| {});
    assert!(out.status.success(), "stderr:\n{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim_end(), image, "stdout is the pushed image, for scripts");

    let grafana = root().join("grafana").display().to_string();
    let calls = h.recorder.calls().unwrap();
    let argv: Vec<Vec<&str>> = calls.iter().map(|c| c.argv.iter().map(String::as_str).collect()).collect();
    assert_eq!(
        argv,
        [
            vec!["buildx", "version"],
            vec![
                "buildx",
                "build",
                "--platform",
                "linux/arm64",
                "--provenance=false",
                "--tag",
                &image,
                "--load",
                &grafana
            ],
            vec!["login", "--username", "AWS", "--password-stdin", registry],
            vec!["push", &image],
        ]
    );

    // The password moto issued reached docker on stdin, and nowhere else.
    let password = Cmd::new(h.tools.bin("aws"), "read moto's ECR password")
        .args(["ecr", "get-login-password", "--region", REGION])
        .env("AWS_ENDPOINT_URL", h.endpoint())
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .read()
        .unwrap();
    let password = password.trim();
    assert!(!password.is_empty());
    assert_eq!(calls[2].stdin.as_deref(), Some(password));
    for call in &calls {
        assert!(call.argv.iter().all(|a| !a.contains(password)), "password in argv: {call:?}");
    }
    assert!(!text(&out.stdout).contains(password) && !text(&out.stderr).contains(password), "password printed");
}

#[test]
fn missing_docker_is_a_clear_error() {
    let h = Harness::new(None);
    let out = h.xtask(&["--allow-dirty", "--execute"], |_| {});
    assert_failed_with(&out, &["`docker` is not installed", "install Docker"]);
    assert!(h.recorder.calls().unwrap().is_empty());
}

#[test]
fn missing_buildx_is_a_clear_error() {
    let docker =
        StandIn::new("docker").reply(&["buildx"], Reply::fail(1, "docker: 'buildx' is not a docker command.\n"));
    let h = Harness::new(Some(docker));
    let out = h.xtask(&["--allow-dirty", "--execute"], |_| {});
    assert_failed_with(
        &out,
        &["docker buildx is not available", "is not a docker command", "buildx plugin 0.10 or newer"],
    );
    assert_nothing_pushed(&h);
}

#[test]
fn an_old_buildx_is_refused() {
    let docker =
        StandIn::new("docker").reply(&["buildx", "version"], Reply::ok("github.com/docker/buildx v0.9.1 ed00243\n"));
    let h = Harness::new(Some(docker));
    let out = h.xtask(&["--allow-dirty", "--execute"], |_| {});
    assert_failed_with(&out, &["docker buildx 0.9 is too old"]);
    assert_nothing_pushed(&h);
}

#[test]
fn no_credentials_is_a_clear_error() {
    let (h, _) = Harness::new(Some(docker_with_buildx())).with_repository();
    let out = h.xtask(&["--allow-dirty", "--execute"], |cmd| {
        cmd.env_remove("AWS_ACCESS_KEY_ID").env_remove("AWS_SECRET_ACCESS_KEY");
    });
    assert_failed_with(&out, &["no usable AWS credentials", "aws sso login", "Unable to locate credentials"]);
    // Missing credentials are a configuration error, as for every command.
    assert_eq!(out.status.code(), Some(2));
    assert_nothing_pushed(&h);
}

#[test]
fn an_absent_repository_says_to_apply_grafana_tf_first() {
    let h = Harness::new(Some(docker_with_buildx())).with_own_moto();
    let out = h.xtask(&["--allow-dirty", "--execute"], |_| {});
    assert_failed_with(
        &out,
        &[&format!("the ECR repository {REPOSITORY} does not exist in {REGION}"), "apply infra/grafana.tf first"],
    );
    // An earlier phase must come first: exit 2.
    assert_eq!(out.status.code(), Some(2));
    assert_nothing_pushed(&h);
}

#[test]
fn an_unknown_env_is_a_usage_error() {
    let h = Harness::new(Some(docker_with_buildx()));
    let mut cmd = h.command(Path::new(env!("CARGO_BIN_EXE_xtask")));
    let out = cmd.args(["build-grafana", "--env", "no-such-env"]).output().unwrap();
    assert_failed_with(&out, &["no environment `no-such-env`"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(h.recorder.calls().unwrap().is_empty());
}

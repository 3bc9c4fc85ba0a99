use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::Value;

use configcheck::botocore::{parse_query, HttpRequest};

use probes::amp::Credentials;
use probes::aws::{xml_values, AwsApi, STS};

/// A `moto_server` on a free loopback port, stopped (by its process id) when dropped. It also
/// exits on its own when this process ends (it watches its stdin, whose write end only we hold),
/// so a server shared by a whole test binary never outlives it.
pub struct MotoServer {
    child: Child,
    /// Held open for the server's life: closing it (our exit) ends the server.
    _lifeline: ChildStdin,
    port: u16,
    next_account: AtomicU64,
    /// Every request moto answered, a JSON line each (its recorder): removed when the server
    /// is dropped or, for a server shared by a test binary, by moto as it exits.
    recording: tempfile::TempPath,
}

/// The first start imports every moto backend; seconds, not milliseconds.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// moto's server, plus a thread that exits the interpreter once stdin reaches end of file
/// (removing the recording first). The recorder appends from every request thread: one at a
/// time, so a long entry is never interleaved with another.
const LAUNCHER: &str = "\
import os, sys, threading
def lifeline():
    sys.stdin.buffer.read()
    try:
        os.remove(os.environ['MOTO_RECORDER_FILEPATH'])
    except OSError:
        pass
    os._exit(0)
threading.Thread(target=lifeline, daemon=True).start()
from moto.moto_api import recorder
lock = threading.Lock()
record = recorder._record_request
def record_one(*args, **kwargs):
    with lock:
        return record(*args, **kwargs)
recorder._record_request = record_one
from moto.server import main
main(sys.argv[1:])
";

/// ECS services report as many running tasks as they want (moto's default is none); every
/// request is recorded, for the checks against AWS's service models.
const SERVER_ENV: [(&str, &str); 2] = [("MOTO_ECS_SERVICE_RUNNING", "1"), ("MOTO_ENABLE_RECORDING", "true")];

impl MotoServer {
    /// Starts moto with the venv's `python` and waits until it answers HTTP.
    pub fn start(python: &Path) -> anyhow::Result<MotoServer> {
        // The port is free when we ask; another process could take it before moto binds, so a
        // server that exits at once is retried on a new port.
        let mut last_error = None;
        for _ in 0..3 {
            let port = free_port()?;
            // moto logs every request to stderr: a file, so a full pipe can never block it. Its
            // name goes once moto answers (a server shared by a test binary is never dropped);
            // moto writes on into the nameless file.
            let log = tempfile::NamedTempFile::new().context("creating moto_server's log file")?;
            let recording = tempfile::Builder::new()
                .prefix("moto-recording-")
                .tempfile()
                .context("creating moto_server's recording")?
                .into_temp_path();
            let mut child = Command::new(python)
                .args(["-c", LAUNCHER, "-H", "127.0.0.1", "-p", &port.to_string()])
                .envs(SERVER_ENV)
                .env("MOTO_RECORDER_FILEPATH", &*recording)
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(log.reopen()?)
                .spawn()
                .with_context(|| format!("could not start moto with {} (to stand in for AWS)", python.display()))?;
            let lifeline = child.stdin.take().context("moto_server's stdin")?;
            let mut server =
                MotoServer { child, _lifeline: lifeline, port, next_account: AtomicU64::new(1), recording };
            match server.wait_ready(&log) {
                Ok(()) => {
                    server.manual_task_transitions()?;
                    return Ok(server);
                }
                Err(err) => last_error = Some(err),
            }
        }
        Err(last_error.expect("at least one attempt"))
    }

    /// One server for the whole test binary, started on first use. Tests keep apart by each
    /// working in an account of its own ([`MotoServer::new_account`]).
    pub fn shared(python: &Path) -> &'static MotoServer {
        static SHARED: OnceLock<MotoServer> = OnceLock::new();
        SHARED.get_or_init(|| MotoServer::start(python).expect("start moto_server"))
    }

    /// `http://127.0.0.1:<port>`: the value for `AWS_ENDPOINT_URL`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A client for a new, empty AWS account, and the account's id.
    pub fn new_account(&self, region: &str) -> anyhow::Result<(AwsApi, String)> {
        let number = self.next_account.fetch_add(1, Ordering::SeqCst);
        let account = format!("{:012}", 100_000_000_000 + number);
        let credentials = self.credentials_in(&account, region)?;
        Ok((AwsApi::new(region, credentials, probes::Http::default()).with_endpoint(&self.endpoint()), account))
    }

    /// New credentials of `account` (an access key of their own, so a test can tell its
    /// callers apart): moto's AssumeRole into a role of another account switches to that
    /// account (the role need not exist).
    pub fn credentials_in(&self, account: &str, region: &str) -> anyhow::Result<Credentials> {
        let any =
            Credentials { access_key_id: "testing".into(), secret_access_key: "testing".into(), session_token: None };
        let default = AwsApi::new(region, any, probes::Http::default()).with_endpoint(&self.endpoint());
        let role = format!("arn:aws:iam::{account}:role/xtask-test");
        let answer = default.query(
            &STS,
            "AssumeRole",
            "2011-06-15",
            &[("RoleArn", role.as_str()), ("RoleSessionName", "xtask-test")],
        )?;
        let field = |tag: &str| {
            xml_values(&answer, tag).into_iter().next().with_context(|| format!("AssumeRole answered no {tag}"))
        };
        Ok(Credentials {
            access_key_id: field("AccessKeyId")?,
            secret_access_key: field("SecretAccessKey")?,
            session_token: Some(field("SessionToken")?),
        })
    }

    /// The requests moto has recorded so far whose entry mentions one of `needles` (an access
    /// key id: one test's requests on the shared server), in arrival order.
    pub fn requests_with(&self, needles: &[&str]) -> anyhow::Result<Vec<HttpRequest>> {
        let text = std::fs::read_to_string(&self.recording).context("reading moto's recording")?;
        // The last line may still be being written.
        let complete = text.rfind('\n').map_or("", |end| &text[..end]);
        complete
            .lines()
            .filter(|line| needles.iter().any(|n| line.contains(n)))
            .map(|line| {
                let entry: Value = serde_json::from_str(line).context("a line of moto's recording")?;
                recorded_request(&entry).with_context(|| format!("moto recorded {line}"))
            })
            .collect()
    }

    /// moto moves a task past RUNNING on every describe; the tests describe them many times.
    fn manual_task_transitions(&self) -> anyhow::Result<()> {
        let body = r#"{"model_name": "ecs::task", "transition": {"progression": "manual", "times": 1000000}}"#;
        let url = format!("{}/moto-api/state-manager/set-transition", self.endpoint());
        probes::Http::default()
            .post(&url, &[("content-type", "application/json")], body.as_bytes())?
            .expect(201, "moto's state manager")?;
        Ok(())
    }

    fn wait_ready(&mut self, log: &tempfile::NamedTempFile) -> anyhow::Result<()> {
        let started = Instant::now();
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        while started.elapsed() < START_TIMEOUT {
            if let Some(status) = self.child.try_wait()? {
                let stderr = std::fs::read_to_string(log.path()).unwrap_or_default();
                bail!("moto_server exited ({status}) before answering on port {}: {}", self.port, stderr.trim());
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!("moto_server did not answer on port {} within {:?}", self.port, START_TIMEOUT)
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        // Child::kill signals exactly this pid; wait() reaps it.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One entry of moto's recorder: `{headers, method, url, body, body_encoded}`.
fn recorded_request(entry: &Value) -> anyhow::Result<HttpRequest> {
    use base64::Engine;
    let url = entry["url"].as_str().context("no url")?;
    let target = url.split_once("://").map_or(url, |(_, rest)| rest.find('/').map_or("/", |i| &rest[i..]));
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let body = entry["body"].as_str().unwrap_or_default();
    let body = if entry["body_encoded"].as_bool() == Some(true) {
        base64::engine::general_purpose::STANDARD.decode(body).context("a body that is not base64")?
    } else {
        body.as_bytes().to_vec()
    };
    Ok(HttpRequest {
        method: entry["method"].as_str().context("no method")?.to_string(),
        path: path.to_string(),
        query: parse_query(query),
        headers: entry["headers"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.as_str().unwrap_or_default().to_string()))
            .collect(),
        body,
    })
}

fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).context("finding a free loopback port")?;
    Ok(listener.local_addr()?.port())
}

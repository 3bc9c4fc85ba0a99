use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

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
}

/// The first start imports every moto backend; seconds, not milliseconds.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// moto's server, plus a thread that exits the interpreter once stdin reaches end of file.
const LAUNCHER: &str = "\
import os, sys, threading
def lifeline():
    sys.stdin.buffer.read()
    os._exit(0)
threading.Thread(target=lifeline, daemon=True).start()
from moto.server import main
main(sys.argv[1:])
";

/// ECS services report as many running tasks as they want (moto's default is none).
const SERVER_ENV: [(&str, &str); 1] = [("MOTO_ECS_SERVICE_RUNNING", "1")];

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
            let mut child = Command::new(python)
                .args(["-c", LAUNCHER, "-H", "127.0.0.1", "-p", &port.to_string()])
                .envs(SERVER_ENV)
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(log.reopen()?)
                .spawn()
                .with_context(|| format!("could not start moto with {} (to stand in for AWS)", python.display()))?;
            let lifeline = child.stdin.take().context("moto_server's stdin")?;
            let mut server = MotoServer { child, _lifeline: lifeline, port, next_account: AtomicU64::new(1) };
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

    /// A client for a new, empty AWS account, and the account's id: moto's AssumeRole into a
    /// role of another account switches to that account (the role need not exist).
    pub fn new_account(&self, region: &str) -> anyhow::Result<(AwsApi, String)> {
        let number = self.next_account.fetch_add(1, Ordering::SeqCst);
        let account = format!("{:012}", 100_000_000_000 + number);
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
        let credentials = Credentials {
            access_key_id: field("AccessKeyId")?,
            secret_access_key: field("SecretAccessKey")?,
            session_token: Some(field("SessionToken")?),
        };
        Ok((AwsApi::new(region, credentials, probes::Http::default()).with_endpoint(&self.endpoint()), account))
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

fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).context("finding a free loopback port")?;
    Ok(listener.local_addr()?.port())
}

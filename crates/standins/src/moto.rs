use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// A `moto_server` on a free loopback port, stopped (by its process id) when dropped.
pub struct MotoServer {
    child: Child,
    port: u16,
    /// moto logs every request to stderr: a file, so a full pipe can never block it.
    log: tempfile::NamedTempFile,
}

/// The first start imports every moto backend; seconds, not milliseconds.
const START_TIMEOUT: Duration = Duration::from_secs(60);

impl MotoServer {
    /// Starts `program` (the venv's `moto_server`) and waits until it answers HTTP.
    pub fn start(program: &Path) -> anyhow::Result<MotoServer> {
        MotoServer::start_with_env(program, &[])
    }

    /// Like [`MotoServer::start`], with environment variables for moto itself (e.g.
    /// `MOTO_ECS_SERVICE_RUNNING=1`: ECS services report running tasks).
    pub fn start_with_env(program: &Path, envs: &[(&str, &str)]) -> anyhow::Result<MotoServer> {
        // The port is free when we ask; another process could take it before moto binds, so a
        // server that exits at once is retried on a new port.
        let mut last_error = None;
        for _ in 0..3 {
            let port = free_port()?;
            let log = tempfile::NamedTempFile::new().context("creating moto_server's log file")?;
            let child = Command::new(program)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .envs(envs.iter().copied())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log.reopen()?)
                .spawn()
                .with_context(|| format!("could not start {} (to stand in for AWS)", program.display()))?;
            let mut server = MotoServer { child, port, log };
            match server.wait_ready() {
                Ok(()) => return Ok(server),
                Err(err) => last_error = Some(err),
            }
        }
        Err(last_error.expect("at least one attempt"))
    }

    /// `http://127.0.0.1:<port>`: the value for `AWS_ENDPOINT_URL`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn wait_ready(&mut self) -> anyhow::Result<()> {
        let started = Instant::now();
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        while started.elapsed() < START_TIMEOUT {
            if let Some(status) = self.child.try_wait()? {
                let stderr = std::fs::read_to_string(self.log.path()).unwrap_or_default();
                bail!("moto_server exited ({status}) before answering on port {}: {}", self.port, stderr.trim());
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
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

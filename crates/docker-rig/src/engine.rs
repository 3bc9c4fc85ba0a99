//! A real Docker engine for the suite: the one at `DOCKER_HOST` when it answers, otherwise a
//! dockerd of our own (scratch data root and socket) that ends with the process that started it.
//! Spoken to through the Engine API on its unix socket, as Alloy's `loki.source.docker` does.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// How a developer or CI gets an engine, said whenever none can be had.
pub const HOW_TO_GET_ONE: &str = "the Docker log rig needs a Docker engine: point DOCKER_HOST at one \
(unix://…), or install Debian's docker.io (`apt-get install docker.io`, as .ci/run does) and run as root \
so the suite can start its own dockerd";

/// The environment our own dockerd gets: its awslogs driver signs with these (moto accepts any).
const DAEMON_AWS_ENV: [(&str, &str); 2] = [("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing")];

pub struct Engine {
    socket: PathBuf,
    /// Set when we started the daemon; it ends when this process does (see `start_own`).
    own: Option<OwnDaemon>,
}

struct OwnDaemon {
    _child: Child,
    /// Closing it (our exit, or a drop) stops dockerd and removes its scratch folder.
    _lifeline: ChildStdin,
}

impl Engine {
    /// The engine at `DOCKER_HOST` if one answers there, otherwise a dockerd of our own.
    pub fn connect_or_start() -> anyhow::Result<Engine> {
        if let Some(engine) = Self::from_docker_host()? {
            return Ok(engine);
        }
        Self::start_own()
    }

    /// The engine at `DOCKER_HOST` (unix sockets only), if the variable is set and it answers.
    pub fn from_docker_host() -> anyhow::Result<Option<Engine>> {
        let Ok(host) = std::env::var("DOCKER_HOST") else { return Ok(None) };
        let Some(path) = host.strip_prefix("unix://") else {
            bail!("DOCKER_HOST={host}: the rig speaks to unix sockets only (unix:///path); unset it to let the suite start its own dockerd");
        };
        let engine = Engine { socket: PathBuf::from(path), own: None };
        Ok(engine.ping().is_ok().then_some(engine))
    }

    /// Starts `dockerd` on a scratch data root and socket. A shell between us and dockerd waits
    /// for its stdin to close (only we hold the write end), then stops dockerd and removes the
    /// folder: the daemon never outlives the suite, even when a test binary exits without drops.
    pub fn start_own() -> anyhow::Result<Engine> {
        let dockerd = which::which("dockerd")
            .map_err(|_| anyhow::anyhow!("no engine at DOCKER_HOST and no `dockerd` on PATH: {HOW_TO_GET_ONE}"))?;
        if !is_root() {
            bail!("starting dockerd needs root and this process is not: {HOW_TO_GET_ONE}");
        }
        // Socket paths are limited to 108 bytes: a short folder under /tmp.
        let dir = tempfile::Builder::new()
            .prefix("rig-dockerd-")
            .tempdir_in("/tmp")
            .context("creating dockerd's scratch folder")?
            .keep();
        let socket = dir.join("docker.sock");
        let script = r#"
"$DOCKERD" --data-root "$DIR/data" --exec-root "$DIR/exec" --pidfile "$DIR/dockerd.pid" \
  --host "unix://$DIR/docker.sock" --storage-driver=vfs --iptables=false --ip-masq=false --bridge=none \
  >"$DIR/dockerd.log" 2>&1 &
pid=$!
cat >/dev/null
kill -TERM "$pid" 2>/dev/null
wait "$pid"
rm -rf "$DIR"
"#;
        let mut child = Command::new("sh")
            .args(["-c", script])
            .env("DOCKERD", &dockerd)
            .env("DIR", &dir)
            .envs(DAEMON_AWS_ENV)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", dockerd.display()))?;
        let lifeline = child.stdin.take().expect("piped stdin");
        let engine = Engine { socket, own: Some(OwnDaemon { _child: child, _lifeline: lifeline }) };
        let deadline = Instant::now() + Duration::from_secs(60);
        while let Err(err) = engine.ping() {
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(dir.join("dockerd.log")).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(15).collect::<Vec<_>>().into_iter().rev().collect();
                bail!(
                    "dockerd did not answer within 60 s ({err:#}); its log ends:\n{}\n{HOW_TO_GET_ONE}",
                    tail.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(engine)
    }

    /// `unix://<socket>`, for `DOCKER_HOST` of the processes that share this engine.
    pub fn docker_host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// Whether we started this engine (its daemon has the rig's AWS credentials then).
    pub fn is_own(&self) -> bool {
        self.own.is_some()
    }

    pub fn ping(&self) -> anyhow::Result<()> {
        let (status, body) = self.request("GET", "/_ping", None)?;
        if status != 200 {
            bail!("GET /_ping answered {status}: {}", String::from_utf8_lossy(&body));
        }
        Ok(())
    }

    pub fn version(&self) -> anyhow::Result<String> {
        let (_, body) = self.expect("GET", "/version", None, 200)?;
        let version: serde_json::Value = serde_json::from_slice(&body)?;
        Ok(version["Version"].as_str().unwrap_or("unknown").to_string())
    }

    /// One request on a new connection; the whole answer (plain or chunked).
    pub fn request(&self, method: &str, path: &str, body: Option<(&str, &[u8])>) -> anyhow::Result<(u16, Vec<u8>)> {
        let mut stream = self.send(method, path, body)?;
        let status = read_head(&mut stream)?;
        let mut answer = Vec::new();
        stream.body.read_to_end(&mut answer).with_context(|| format!("reading the answer to {method} {path}"))?;
        Ok((status.0, answer))
    }

    /// A request whose answer must have `want` as its status.
    pub fn expect(
        &self,
        method: &str,
        path: &str,
        body: Option<(&str, &[u8])>,
        want: u16,
    ) -> anyhow::Result<(u16, Vec<u8>)> {
        let (status, answer) = self.request(method, path, body)?;
        if status != want {
            bail!("{method} {path} answered {status} (wanted {want}): {}", String::from_utf8_lossy(&answer).trim());
        }
        Ok((status, answer))
    }

    /// A request whose answer is read as it arrives (a followed log stream).
    pub fn stream(&self, path: &str) -> anyhow::Result<Stream> {
        let mut stream = self.send("GET", path, None)?;
        let (status, _) = read_head(&mut stream)?;
        if status != 200 {
            let mut answer = String::new();
            let _ = stream.body.read_to_string(&mut answer);
            bail!("GET {path} answered {status}: {}", answer.trim());
        }
        Ok(stream)
    }

    fn send(&self, method: &str, path: &str, body: Option<(&str, &[u8])>) -> anyhow::Result<Stream> {
        let mut socket = UnixStream::connect(&self.socket)
            .with_context(|| format!("connecting to the Docker engine at {}", self.socket.display()))?;
        let mut head = format!("{method} /v1.41{path} HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n");
        if let Some((content_type, bytes)) = body {
            head.push_str(&format!("Content-Type: {content_type}\r\nContent-Length: {}\r\n", bytes.len()));
        }
        head.push_str("\r\n");
        socket.write_all(head.as_bytes())?;
        if let Some((_, bytes)) = body {
            socket.write_all(bytes)?;
        }
        let reader = BufReader::with_capacity(64 * 1024, socket.try_clone()?);
        Ok(Stream { socket, body: Body { reader, chunked: false, left_in_chunk: 0, done: false } })
    }
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|status| status.lines().any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0")))
        .unwrap_or(false)
}

/// An answer being read; dropping it closes the connection (as a restarted reader does).
pub struct Stream {
    socket: UnixStream,
    pub body: Body,
}

impl Stream {
    /// The connection, to end it from another thread (`shutdown`) whatever is still unread.
    pub fn socket(&self) -> std::io::Result<UnixStream> {
        self.socket.try_clone()
    }
}

/// An HTTP/1.1 body, de-chunked when the engine chunks it.
pub struct Body {
    reader: BufReader<UnixStream>,
    chunked: bool,
    left_in_chunk: usize,
    done: bool,
}

impl Read for Body {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if !self.chunked {
            return self.reader.read(buf);
        }
        if self.done {
            return Ok(0);
        }
        if self.left_in_chunk == 0 {
            let mut line = String::new();
            self.reader.read_line(&mut line)?;
            if line.trim().is_empty() {
                // The CRLF that ends the previous chunk.
                line.clear();
                self.reader.read_line(&mut line)?;
            }
            if line.is_empty() {
                self.done = true;
                return Ok(0);
            }
            let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16).map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::InvalidData, format!("bad chunk size {line:?}"))
            })?;
            if size == 0 {
                self.done = true;
                return Ok(0);
            }
            self.left_in_chunk = size;
        }
        let want = buf.len().min(self.left_in_chunk);
        let got = self.reader.read(&mut buf[..want])?;
        if got == 0 {
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "the engine closed mid-chunk"));
        }
        self.left_in_chunk -= got;
        Ok(got)
    }
}

/// Reads the status line and headers; the body is what follows.
fn read_head(stream: &mut Stream) -> anyhow::Result<(u16, ())> {
    let mut line = String::new();
    stream.body.reader.read_line(&mut line).context("reading the engine's status line")?;
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("the engine answered {line:?}, not HTTP"))?;
    loop {
        line.clear();
        stream.body.reader.read_line(&mut line)?;
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("transfer-encoding") && value.trim().eq_ignore_ascii_case("chunked") {
                stream.body.chunked = true;
            }
        }
    }
    Ok((status, ()))
}

/// Percent-encodes a query value (JSON filters, log options).
pub fn query_value(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

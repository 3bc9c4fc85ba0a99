//! CloudWatch Logs for the rig: a proxy that holds an endpoint's (moto's) answers back until it is
//! told to let them go, as a CloudWatch that stops answering for a while (throttled, slow), and
//! a count of the rig's lines a log stream holds.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use serde_json::{json, Value};

/// Forwards loopback connections to `upstream`; answers wait while the proxy holds them.
pub struct HoldingProxy {
    pub port: u16,
    held: Arc<AtomicBool>,
}

impl HoldingProxy {
    /// Starts holding every answer back.
    pub fn start_holding(upstream: u16) -> anyhow::Result<HoldingProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").context("binding the holding proxy")?;
        let port = listener.local_addr()?.port();
        let held = Arc::new(AtomicBool::new(true));
        let hold = Arc::clone(&held);
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else { continue };
                let (Ok(client_in), Ok(server_out)) = (client.try_clone(), server.try_clone()) else { continue };
                std::thread::spawn(move || pipe(client_in, server_out, None));
                let hold = Arc::clone(&hold);
                std::thread::spawn(move || pipe(server, client, Some(hold)));
            }
        });
        Ok(HoldingProxy { port, held })
    }

    /// Lets every answer, held or to come, through.
    pub fn release(&self) {
        self.held.store(false, Ordering::SeqCst);
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// Copies `from` to `to`, each piece only once `hold` (if any) is released.
fn pipe(mut from: TcpStream, mut to: TcpStream, hold: Option<Arc<AtomicBool>>) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                while hold.as_ref().is_some_and(|h| h.load(Ordering::SeqCst)) {
                    std::thread::sleep(Duration::from_millis(10));
                }
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Write);
}

/// A CloudWatch Logs call to moto (JSON protocol; moto reads the account from the access key
/// `testing`, the one the rig's dockerd signs with).
fn call(endpoint_port: u16, target: &str, body: &Value) -> anyhow::Result<Value> {
    let body = body.to_string();
    let mut stream = TcpStream::connect(("127.0.0.1", endpoint_port)).context("connecting to moto")?;
    write!(
        stream,
        "POST / HTTP/1.1\r\nHost: logs.us-east-1.amazonaws.com\r\nConnection: close\r\n\
         Content-Type: application/x-amz-json-1.1\r\nX-Amz-Target: Logs_20140328.{target}\r\n\
         Authorization: AWS4-HMAC-SHA256 Credential=testing/20261207/us-east-1/logs/aws4_request, SignedHeaders=host, Signature=0\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    let text = String::from_utf8_lossy(&answer);
    let (head, body) = text.split_once("\r\n\r\n").context("moto's answer has no body")?;
    if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
        bail!("{target}: {}: {body}", head.lines().next().unwrap_or_default());
    }
    Ok(serde_json::from_str(body).unwrap_or(Value::Null))
}

pub fn create_log_group(moto_port: u16, group: &str) -> anyhow::Result<()> {
    call(moto_port, "CreateLogGroup", &json!({"logGroupName": group})).map(|_| ())
}

/// How many times each of the rig's line numbers is in the stream.
pub fn line_counts(moto_port: u16, group: &str, stream: &str) -> anyhow::Result<BTreeMap<u64, u32>> {
    let mut counts = BTreeMap::new();
    let mut token: Option<String> = None;
    loop {
        let mut request =
            json!({"logGroupName": group, "logStreamName": stream, "startFromHead": true, "limit": 10000});
        if let Some(token) = &token {
            request["nextToken"] = json!(token);
        }
        let page = call(moto_port, "GetLogEvents", &request)?;
        let events = page["events"].as_array().cloned().unwrap_or_default();
        for event in &events {
            if let Some(number) = event["message"].as_str().and_then(|m| m.get(..10)).and_then(|d| d.parse().ok()) {
                *counts.entry(number).or_default() += 1;
            }
        }
        let next = page["nextForwardToken"].as_str().map(str::to_string);
        if events.is_empty() || next == token {
            return Ok(counts);
        }
        token = next;
    }
}

/// Waits until the stream holds all `lines` of the rig's lines, or until it has gained none for
/// `quiet` (what is missing then was dropped); the counts at that point.
pub fn settled_line_counts(
    moto_port: u16,
    group: &str,
    stream: &str,
    lines: u64,
    quiet: Duration,
) -> anyhow::Result<BTreeMap<u64, u32>> {
    let mut last = (0, std::time::Instant::now());
    loop {
        let counts = line_counts(moto_port, group, stream)?;
        if counts.len() as u64 >= lines || last.1.elapsed() > quiet {
            return Ok(counts);
        }
        if counts.len() > last.0 {
            last = (counts.len(), std::time::Instant::now());
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

//! The loss rig: a container with a given `logConfiguration` writes numbered lines at a set rate;
//! a reader that reads the way Alloy's `loki.source.docker` does hands them on to a sink (Loki)
//! that stops taking lines for a while (Loki away), and the rig counts what never arrived.
//!
//! The reader, as Alloy's: `GET /containers/{id}/logs?follow=1&timestamps=1&since=<position>`;
//! each line goes into a bounded in-memory queue (`loki.write`'s), blocking when it is full, and
//! the position (whole seconds, as Alloy stores it) advances once the line is handed on, not
//! when the sink takes it. A restart of the reader loses what the queue holds and reopens the
//! stream from the stored position.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::json;

use crate::engine::{query_value, Engine};

/// One run of the rig.
#[derive(Debug, Clone)]
pub struct Case {
    /// Docker's log driver and its options, as an ECS `logConfiguration` gives them.
    pub log_driver: String,
    pub log_options: BTreeMap<String, String>,
    /// Lines written, lines a second, bytes a line (newline included).
    pub lines: u64,
    pub rate: u64,
    pub line_bytes: u64,
    /// The sink stops taking lines once it has line `stall.0`, and takes none until the writer
    /// has written line `stall.1` (Loki away meanwhile); the writer goes on to `lines`. Counted
    /// in lines, not seconds, so what a stall covers does not depend on how busy the machine is.
    pub stall: (u64, u64),
    /// Restart the reader once the writer has written this line (Alloy restarted while Loki
    /// is away).
    pub restart_reader_at_line: Option<u64>,
    /// Stop the container when the stall ends, before the reader resumes (a task stopped while
    /// Loki is away: a deploy, a scale-in); the lines it wrote after `stall.1` are not counted.
    pub stop_at_stall_end: bool,
    /// Lines the reader holds in memory before it blocks (loki.write's queue).
    pub queue_lines: usize,
}

impl Case {
    /// Lines the rig writes by default: 350 bytes (Temporal's JSON lines measure about that),
    /// 20,000 a second, about 8.4 MB/s as json-file stores them. dockerd holds up to 4,096 lines
    /// of a followed stream in memory (its log watcher's channel): a stall must write far more
    /// than that, or the daemon's buffer, which does not scale with the real rate, hides the loss.
    pub const LINE_BYTES: u64 = 350;
    pub const RATE: u64 = 20_000;
    /// Lines read before the stall, and written after it while the reader catches up: about
    /// 1 MB each as json-file stores them.
    pub const BEFORE_STALL: u64 = 2500;
    pub const AFTER_STALL: u64 = 2500;

    /// The sink away while `stall_lines` lines are written, after the first 2,500; 2,500 more
    /// follow.
    pub fn outage(log_driver: &str, log_options: &[(&str, &str)], stall_lines: u64) -> Case {
        Case {
            log_driver: log_driver.to_string(),
            log_options: log_options.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            lines: Self::BEFORE_STALL + stall_lines + Self::AFTER_STALL,
            rate: Self::RATE,
            line_bytes: Self::LINE_BYTES,
            stall: (Self::BEFORE_STALL, Self::BEFORE_STALL + stall_lines),
            restart_reader_at_line: None,
            stop_at_stall_end: false,
            queue_lines: 500,
        }
    }
}

/// What the sink got, against what was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub written: u64,
    /// Distinct lines the sink took.
    pub delivered: u64,
    /// Lines the sink took more than once (a reopened stream replays its position's second).
    pub duplicated: u64,
    /// Lines never delivered, as inclusive ranges of line numbers.
    pub lost: Vec<(u64, u64)>,
    /// Of the lost lines, those that were in the reader's queue when it restarted.
    pub lost_in_reader_memory: u64,
    /// The engine stopped sending while lines were left unread (the stream stays open, silent).
    pub stuck: bool,
}

impl Outcome {
    pub fn lost_lines(&self) -> u64 {
        self.lost.iter().map(|(a, b)| b - a + 1).sum()
    }

    /// Lost lines that Docker dropped (not the restarted reader's in-memory queue).
    pub fn lost_by_docker(&self) -> u64 {
        self.lost_lines() - self.lost_in_reader_memory
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ranges: Vec<String> = self.lost.iter().take(5).map(|(a, b)| format!("{a}–{b}")).collect();
        write!(
            f,
            "{} written, {} delivered, {} duplicated, {} lost ({} by Docker, {} in the reader's memory){}{}",
            self.written,
            self.delivered,
            self.duplicated,
            self.lost_lines(),
            self.lost_by_docker(),
            self.lost_in_reader_memory,
            if ranges.is_empty() { String::new() } else { format!(": lines {}", ranges.join(", ")) },
            if self.stuck { "; the stream went silent with lines unread" } else { "" }
        )
    }
}

/// Once the last line is in, this long with nothing new ends the run (late duplicates included).
const QUIET: Duration = Duration::from_millis(300);

/// A stream that sends nothing for this long, with lines left to read, is stuck: a healthy
/// follower catching up sends thousands of lines a second.
const STUCK: Duration = Duration::from_secs(3);

/// A line as the reader hands it on: its number and its Docker timestamp's whole second.
type Line = (u64, i64);

struct Reader {
    lines: Receiver<Line>,
    /// Shuts the stream down, as a killed Alloy's connection ends.
    socket: std::os::unix::net::UnixStream,
    thread: JoinHandle<anyhow::Result<()>>,
}

pub fn run(engine: &Engine, image: &str, case: &Case) -> anyhow::Result<Outcome> {
    run_then(engine, image, case, || Ok(())).map(|(outcome, ())| outcome)
}

/// [`run`], and `while_running` once the reader is done, before the container stops (a driver
/// that ships elsewhere drops what it still holds when its container stops).
pub fn run_then<T>(
    engine: &Engine,
    image: &str,
    case: &Case,
    while_running: impl FnOnce() -> anyhow::Result<T>,
) -> anyhow::Result<(Outcome, T)> {
    let container = Container::start(engine, image, case)?;
    let result = measure(engine, &container.id, case).and_then(|outcome| Ok((outcome, while_running()?)));
    container.remove(engine);
    result
}

fn measure(engine: &Engine, id: &str, case: &Case) -> anyhow::Result<Outcome> {
    let position = Arc::new(AtomicI64::new(0));
    let mut reader = open_reader(engine, id, case.queue_lines, &position)?;
    let mut seen: BTreeMap<u64, u32> = BTreeMap::new();
    let mut in_memory_at_restart = BTreeSet::new();
    // Writing the lines takes lines / rate; reading them all back may take that again.
    let deadline = Instant::now() + Duration::from_secs(60 + 2 * case.lines / case.rate);
    let last = case.lines - 1;
    let (mut stalled, mut stall_over, mut restart_at) = (false, false, case.restart_reader_at_line);
    let (mut last_line_at, mut stuck) = (Instant::now(), false);
    // The last line of a container stopped on purpose; the stream then ends when the reader is done.
    let mut stopped_after: Option<u64> = None;
    loop {
        if Instant::now() > deadline {
            bail!("the reader did not reach the end of the container's log within the rig's deadline");
        }
        if stalled && !stall_over {
            // Loki away: nothing taken. The writer's progress is read on a second, unfollowed
            // request (its last line), which leaves the stalled stream as it is.
            let written = last_line_written(engine, id)?;
            if restart_at.is_some_and(|line| written.is_some_and(|w| w >= line)) {
                restart_at = None;
                let _ = reader.socket.shutdown(std::net::Shutdown::Both);
                // What the queue holds dies with the process; the reader blocked on it goes too.
                while let Ok((number, _)) = reader.lines.try_recv() {
                    in_memory_at_restart.insert(number);
                }
                drop(reader.lines);
                let _ = reader.thread.join();
                reader = open_reader(engine, id, case.queue_lines, &position)?;
            } else if written.is_some_and(|w| w >= case.stall.1) && restart_at.is_none() {
                stall_over = true;
                last_line_at = Instant::now();
                if case.stop_at_stall_end {
                    engine.expect("POST", &format!("/containers/{id}/stop?t=0"), None, 204)?;
                    stopped_after = last_line_written(engine, id)?;
                }
            } else {
                // 50 lines at the rig's rate: the stall ends within that of its line.
                std::thread::sleep(Duration::from_millis(10));
            }
            continue;
        }
        // Lines left unread and the stream silent: the follower is stuck.
        if stall_over && last_line_at.elapsed() > STUCK {
            stuck = true;
            break;
        }
        match reader.lines.recv_timeout(QUIET) {
            Ok((number, _)) => {
                *seen.entry(number).or_default() += 1;
                last_line_at = Instant::now();
                stalled |= number >= case.stall.0;
            }
            // The last line is in, and nothing came for a while: all there is has been read.
            Err(RecvTimeoutError::Timeout) if seen.contains_key(&last) => break,
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) if stopped_after.is_some() => break,
            Err(RecvTimeoutError::Disconnected) => bail!("the engine ended the log stream of a running container"),
        }
    }
    let _ = reader.socket.shutdown(std::net::Shutdown::Both);
    drop(reader.lines);
    reader.thread.join().map_err(|_| anyhow::anyhow!("the reader panicked"))??;
    let written = stopped_after.map_or(case.lines, |line| line + 1);
    let mut lost = Vec::new();
    for number in (0..written).filter(|n| !seen.contains_key(n)) {
        match lost.last_mut() {
            Some((_, end)) if *end + 1 == number => *end = number,
            _ => lost.push((number, number)),
        }
    }
    let lost_in_reader_memory = in_memory_at_restart.iter().filter(|n| !seen.contains_key(n)).count() as u64;
    Ok(Outcome {
        written,
        delivered: seen.len() as u64,
        duplicated: seen.values().map(|&count| u64::from(count - 1)).sum(),
        lost,
        lost_in_reader_memory,
        stuck,
    })
}

/// The number of the last line the writer has written, as the engine has it (`tail=1`).
fn last_line_written(engine: &Engine, id: &str) -> anyhow::Result<Option<u64>> {
    let (status, body) = engine.request("GET", &format!("/containers/{id}/logs?stdout=1&stderr=1&tail=1"), None)?;
    if status != 200 {
        bail!("reading the writer's last line: the engine answered {status}");
    }
    // Frames of an 8-byte header and the line; the last one is the newest line.
    let mut rest = body.as_slice();
    let mut newest = None;
    while rest.len() >= 8 {
        let size = u32::from_be_bytes([rest[4], rest[5], rest[6], rest[7]]) as usize;
        let frame = rest.get(8..8 + size).context("a truncated log frame")?;
        newest = String::from_utf8_lossy(frame).get(..10).and_then(|digits| digits.parse().ok());
        rest = &rest[8 + size..];
    }
    Ok(newest)
}

/// Opens the followed stream from `position` (whole seconds; 0 reads from the beginning, as
/// Alloy does for a container it has no position for).
fn open_reader(engine: &Engine, id: &str, queue_lines: usize, position: &Arc<AtomicI64>) -> anyhow::Result<Reader> {
    let since = position.load(Ordering::SeqCst);
    let stream =
        engine.stream(&format!("/containers/{id}/logs?follow=1&stdout=1&stderr=1&timestamps=1&since={since}"))?;
    let socket = stream.socket()?;
    let (sender, lines) = sync_channel::<Line>(queue_lines);
    let position = Arc::clone(position);
    let thread = std::thread::spawn(move || -> anyhow::Result<()> {
        let mut body = stream.body;
        let mut header = [0u8; 8];
        loop {
            match body.read_exact(&mut header) {
                Ok(()) => {}
                // The stream ended: the container stopped and all was read, or we were restarted.
                Err(_) => return Ok(()),
            }
            let size = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
            let mut frame = vec![0u8; size];
            if body.read_exact(&mut frame).is_err() {
                return Ok(());
            }
            let text = String::from_utf8_lossy(&frame);
            let (timestamp, line) = text.split_once(' ').context("a log line without Docker's timestamp")?;
            let number: u64 = line
                .get(..10)
                .and_then(|digits| digits.parse().ok())
                .with_context(|| format!("a line the writer did not write: {line:?}"))?;
            let second = unix_second(timestamp).with_context(|| format!("Docker's timestamp {timestamp:?}"))?;
            if sender.send((number, second)).is_err() {
                return Ok(());
            }
            position.store(second, Ordering::SeqCst);
        }
    });
    Ok(Reader { lines, socket, thread })
}

/// The whole second of an RFC 3339 UTC timestamp (`2026-12-07T10:56:00.123456789Z`).
pub fn unix_second(timestamp: &str) -> Option<i64> {
    let number = |range: std::ops::Range<usize>| timestamp.get(range)?.parse::<i64>().ok();
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    // Days from civil (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    Some(days * 86400 + hour * 3600 + minute * 60 + second)
}

struct Container {
    id: String,
}

impl Container {
    fn start(engine: &Engine, image: &str, case: &Case) -> anyhow::Result<Container> {
        let body = json!({
            "Image": image,
            "Cmd": ["/writer", case.lines.to_string(), case.rate.to_string(), case.line_bytes.to_string()],
            "Labels": {"rig": "docker-log-loss"},
            "HostConfig": {
                "NetworkMode": "none",
                "LogConfig": {"Type": case.log_driver, "Config": case.log_options},
            },
        })
        .to_string();
        let (_, answer) = engine
            .expect("POST", "/containers/create", Some(("application/json", body.as_bytes())), 201)
            .with_context(|| format!("creating a container logging with {} {:?}", case.log_driver, case.log_options))?;
        let created: serde_json::Value = serde_json::from_slice(&answer)?;
        let id = created["Id"].as_str().context("the engine named no container id")?.to_string();
        let container = Container { id };
        if let Err(err) = engine.expect("POST", &format!("/containers/{}/start", container.id), None, 204) {
            container.remove(engine);
            return Err(err.context(format!("starting the writer with {} {:?}", case.log_driver, case.log_options)));
        }
        Ok(container)
    }

    fn remove(&self, engine: &Engine) {
        let _ = engine.request("DELETE", &format!("/containers/{}?force=1&v=1", query_value(&self.id)), None);
    }
}

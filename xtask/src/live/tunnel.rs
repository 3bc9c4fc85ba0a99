//! An SSM port-forwarding session from a local port to a task's private IP, so Loki and Grafana
//! in private subnets answer on `127.0.0.1`. The session runs through one of the cluster's
//! container instances (the task's own host when it can), or ECS Exec into the task; it is opened
//! with SSM StartSession and carried by `session-manager-plugin` (see [`crate::live::session`]), and it
//! is always closed: on drop, on an error, and on Ctrl-C/SIGTERM/SIGHUP.

use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use probes::aws::ECS;
use serde_json::json;
use serde_json::Value;

use crate::live::api::Api;
use crate::live::session::{require_plugin, Session};
use crate::live::Live;

/// What to reach: the task of an ECS service, on a port of its private IP.
pub struct Endpoint<'a> {
    /// For messages: "Loki", "Grafana".
    pub what: &'a str,
    pub service: &'a str,
    pub port: u16,
}

/// Seconds to wait for the local port; `XTASK_TUNNEL_TIMEOUT_SECONDS` changes it.
fn open_timeout() -> Duration {
    let secs = std::env::var("XTASK_TUNNEL_TIMEOUT_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(45);
    Duration::from_secs(secs)
}

pub struct Tunnel {
    child: Option<Child>,
    /// The child, the plugin, leads its own process group.
    pgid: i32,
    local_port: u16,
    output: Arc<Mutex<String>>,
    readers: Vec<JoinHandle<()>>,
}

impl Tunnel {
    pub fn open(live: &Live, endpoint: &Endpoint) -> anyhow::Result<Tunnel> {
        require_plugin()?;
        let cluster = &live.env.settings.platform.ecs_cluster_name;
        let task = running_task(&live.api, cluster, endpoint.service)?;
        let local_port = free_port()?;
        let (what, port) = (endpoint.what, endpoint.port);
        // ECS Exec into the task when its agent runs (no security-group rule needed: the traffic
        // arrives on the task's own loopback); else through a container instance to the task's IP
        // (needs ingress from the instances' security group and their SSM registration).
        let (target, document, mut parameters, via) = match &task.exec_target {
            Some(target) => (
                target.clone(),
                "AWS-StartPortForwardingSession",
                Vec::new(),
                format!("ECS Exec into task {}", task.id),
            ),
            None => {
                let instance = container_instance(&live.api, cluster, task.container_instance.as_deref())?;
                let via = format!("{} through instance {instance}", task.ip);
                (instance, "AWS-StartPortForwardingSessionToRemoteHost", vec![("host", task.ip.clone())], via)
            }
        };
        parameters.extend([("portNumber", port.to_string()), ("localPortNumber", local_port.to_string())]);
        let purpose = format!("open an SSM tunnel to {what} port {port} ({via}) on 127.0.0.1:{local_port}");
        let session = Session::start(&live.api, &purpose, &target, document, &parameters)?;
        install_signal_cleanup();
        let mut child = session.connect(&live.api, purpose, |command| {
            // Its own process group: the terminal's Ctrl-C does not reach it directly (we close
            // it in order), and one signal to the group reaches everything it may start.
            command.process_group(0).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        })?;
        let pgid = i32::try_from(child.id()).context("process id out of range")?;
        register(pgid);
        let output = Arc::new(Mutex::new(String::new()));
        // Drained into memory so a chatty plugin can never block on a full pipe.
        let readers = [child.stdout.take().map(|s| drain(s, &output)), child.stderr.take().map(|s| drain(s, &output))]
            .into_iter()
            .flatten()
            .collect();
        let mut tunnel = Tunnel { child: Some(child), pgid, local_port, output, readers };
        tunnel.wait_ready(what, open_timeout())?;
        Ok(tunnel)
    }

    /// `http://127.0.0.1:<local port>`.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.local_port)
    }

    fn wait_ready(&mut self, what: &str, timeout: Duration) -> anyhow::Result<()> {
        let started = Instant::now();
        let addr = SocketAddr::from(([127, 0, 0, 1], self.local_port));
        eprintln!(
            "  waiting for the SSM tunnel to {what} on 127.0.0.1:{} (up to {}s)",
            self.local_port,
            timeout.as_secs()
        );
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Some(status) = child.try_wait()? {
                    self.join_readers();
                    bail!("the SSM session to {what} ended before its port opened ({status}): {}", self.output_text());
                }
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(300)).is_ok() {
                eprintln!("  tunnel to {what} open after {:.1}s", started.elapsed().as_secs_f32());
                return Ok(());
            }
            if started.elapsed() >= timeout {
                bail!(
                    "the SSM tunnel to {what} did not open within {}s (XTASK_TUNNEL_TIMEOUT_SECONDS raises it); the session said: {}",
                    timeout.as_secs(),
                    self.output_text()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn output_text(&self) -> String {
        let text = self.output.lock().map(|t| t.trim().replace('\n', " | ")).unwrap_or_default();
        if text.is_empty() {
            "(nothing)".to_string()
        } else {
            text
        }
    }

    fn join_readers(&mut self) {
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
    }

    /// Ends the session: SIGINT first (the plugin then tells SSM to terminate the session), then
    /// SIGTERM, then SIGKILL, each to the whole process group; reaps the child.
    pub fn close(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        for (signal, grace) in [(libc::SIGINT, 3), (libc::SIGTERM, 2), (libc::SIGKILL, 5)] {
            if matches!(child.try_wait(), Ok(Some(_))) {
                break;
            }
            signal_group(self.pgid, signal);
            wait_exit(&mut child, Duration::from_secs(grace));
        }
        // Anything the plugin started and left behind is still in the group.
        signal_group(self.pgid, libc::SIGKILL);
        let _ = child.wait();
        unregister(self.pgid);
        self.join_readers();
    }
}

impl Drop for Tunnel {
    fn drop(&mut self) {
        self.close();
    }
}

fn wait_exit(child: &mut Child, grace: Duration) -> bool {
    let started = Instant::now();
    while started.elapsed() < grace {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

fn signal_group(pgid: i32, signal: i32) {
    // SAFETY: kill(2) with a negative pid signals that process group; no memory is involved.
    unsafe {
        libc::kill(-pgid, signal);
    }
}

fn drain(mut stream: impl Read + Send + 'static, into: &Arc<Mutex<String>>) -> JoinHandle<()> {
    let into = Arc::clone(into);
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stream.read(&mut buf) {
            if n == 0 {
                break;
            }
            if let Ok(mut text) = into.lock() {
                text.push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        }
    })
}

fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).context("finding a free local port for the tunnel")?;
    Ok(listener.local_addr()?.port())
}

/// Process groups of the open tunnels, for the signal thread.
static OPEN: Mutex<Vec<i32>> = Mutex::new(Vec::new());

fn register(pgid: i32) {
    if let Ok(mut open) = OPEN.lock() {
        open.push(pgid);
    }
}

fn unregister(pgid: i32) {
    if let Ok(mut open) = OPEN.lock() {
        open.retain(|p| *p != pgid);
    }
}

/// The signal that interrupted xtask (0: none), and whether its tunnels are closed.
static INTERRUPTED: AtomicI32 = AtomicI32::new(0);
static CLOSED_AFTER_SIGNAL: AtomicBool = AtomicBool::new(false);

/// On Ctrl-C, SIGTERM or SIGHUP: close every open tunnel, then exit 128 + signal (130 for Ctrl-C).
/// Without it the default action would end xtask and leave the sessions running.
fn install_signal_cleanup() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]) else {
            eprintln!(
                "warning: could not install the signal handler; an interrupted command may leave its SSM tunnel open"
            );
            return;
        };
        // The main thread may finish (its checks fail once the tunnel is gone) while this thread
        // still closes tunnels: its exit then waits for that and exits as interrupted too.
        // SAFETY: registers a plain extern "C" function; it only touches atomics and exits.
        unsafe {
            libc::atexit(exit_as_interrupted);
        }
        std::thread::spawn(move || {
            if let Some(signal) = signals.forever().next() {
                INTERRUPTED.store(signal, Ordering::SeqCst);
                let open: Vec<i32> = OPEN.lock().map(|o| o.clone()).unwrap_or_default();
                if !open.is_empty() {
                    eprintln!("\ninterrupted: closing {} SSM tunnel(s)", open.len());
                }
                for pgid in &open {
                    signal_group(*pgid, libc::SIGINT);
                }
                let started = Instant::now();
                while started.elapsed() < Duration::from_secs(3) && !open.iter().all(|pid| exited(*pid)) {
                    std::thread::sleep(Duration::from_millis(50));
                }
                for pgid in &open {
                    signal_group(*pgid, libc::SIGKILL);
                }
                CLOSED_AFTER_SIGNAL.store(true, Ordering::SeqCst);
                // _exit, not exit: the main thread may be inside exit() already.
                // SAFETY: ends the process; nothing runs after it.
                unsafe { libc::_exit(128 + signal) }
            }
        });
    });
}

extern "C" fn exit_as_interrupted() {
    let signal = INTERRUPTED.load(Ordering::SeqCst);
    if signal != 0 {
        let started = Instant::now();
        while !CLOSED_AFTER_SIGNAL.load(Ordering::SeqCst) && started.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(10));
        }
        // SAFETY: ends the process from an atexit handler, as intended.
        unsafe { libc::_exit(128 + signal) }
    }
}

/// Whether the child `pid` has exited, without reaping it (its `Child` stays the main thread's).
fn exited(pid: i32) -> bool {
    // SAFETY: waitid fills a zeroed siginfo_t we own; WNOWAIT leaves the child waitable.
    unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        let rc = libc::waitid(libc::P_PID, pid as libc::id_t, &mut info, libc::WEXITED | libc::WNOHANG | libc::WNOWAIT);
        // ECHILD: already reaped by the main thread's close().
        rc != 0 || info.si_pid() != 0
    }
}

/// A running task of a service: its private IP and the container instance it runs on.
#[derive(Debug, PartialEq, Eq)]
pub struct Task {
    /// The task id (last part of its ARN).
    pub id: String,
    pub ip: String,
    pub container_instance: Option<String>,
    /// `ecs:<cluster>_<task id>_<container runtime id>` of a container whose ECS Exec agent runs.
    pub exec_target: Option<String>,
}

fn running_task(api: &Api, cluster: &str, service: &str) -> anyhow::Result<Task> {
    let listed = api.json_all(
        format!("find the running tasks of ECS service {service}"),
        &ECS,
        "ListTasks",
        json!({"cluster": cluster, "serviceName": service, "desiredStatus": "RUNNING"}),
        "taskArns",
    )?;
    let arns: Vec<&str> = listed["taskArns"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    if arns.is_empty() {
        bail!("ECS service {service} in cluster {cluster} has no running task to connect to");
    }
    let described = api.json(
        format!("read the network address of a {service} task"),
        &ECS,
        "DescribeTasks",
        json!({"cluster": cluster, "tasks": arns.iter().take(100).collect::<Vec<_>>()}),
    )?;
    pick_task(&described, cluster, service)
        .with_context(|| format!("ECS service {service} in cluster {cluster} has no running task with a private IP"))
}

/// The first RUNNING task of the service (group `service:<name>`) with an ENI address.
pub fn pick_task(described: &Value, cluster: &str, service: &str) -> Option<Task> {
    let group = format!("service:{service}");
    described["tasks"]
        .as_array()?
        .iter()
        .filter(|t| t["lastStatus"] == "RUNNING" && t["group"] == group.as_str())
        .find_map(|task| {
            let ip = task["attachments"]
                .as_array()?
                .iter()
                .filter(|a| a["type"] == "ElasticNetworkInterface")
                .flat_map(|a| a["details"].as_array().into_iter().flatten())
                .find(|d| d["name"] == "privateIPv4Address")?["value"]
                .as_str()?
                .to_string();
            let id = task["taskArn"].as_str()?.rsplit('/').next()?.to_string();
            // Any container will do: in awsvpc mode they share the task's network namespace.
            let exec_target = task["containers"].as_array().into_iter().flatten().find_map(|c| {
                let agent_runs = c["managedAgents"]
                    .as_array()?
                    .iter()
                    .any(|a| a["name"] == "ExecuteCommandAgent" && a["lastStatus"] == "RUNNING");
                agent_runs.then(|| c["runtimeId"].as_str().map(|runtime| format!("ecs:{cluster}_{id}_{runtime}")))?
            });
            Some(Task {
                id,
                ip,
                container_instance: task["containerInstanceArn"].as_str().map(str::to_string),
                exec_target,
            })
        })
}

/// The EC2 instance to start the session on: the task's own host if it is usable, else any
/// active container instance with a connected agent.
fn container_instance(api: &Api, cluster: &str, preferred: Option<&str>) -> anyhow::Result<String> {
    let listed = api.json_all(
        format!("list the container instances of cluster {cluster}"),
        &ECS,
        "ListContainerInstances",
        json!({"cluster": cluster, "status": "ACTIVE"}),
        "containerInstanceArns",
    )?;
    let arns: Vec<&str> =
        listed["containerInstanceArns"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    if arns.is_empty() {
        bail!("cluster {cluster} has no active container instance to open an SSM session on");
    }
    let described = api.json(
        format!("find an EC2 instance of cluster {cluster} for the SSM session"),
        &ECS,
        "DescribeContainerInstances",
        json!({"cluster": cluster, "containerInstances": arns.iter().take(100).collect::<Vec<_>>()}),
    )?;
    pick_instance(&described, preferred)
        .with_context(|| format!("no container instance of cluster {cluster} is ACTIVE with a connected agent"))
}

pub fn pick_instance(described: &Value, preferred: Option<&str>) -> Option<String> {
    let usable: Vec<&Value> = described["containerInstances"]
        .as_array()?
        .iter()
        .filter(|i| i["status"] == "ACTIVE" && i["agentConnected"] == true && i["ec2InstanceId"].is_string())
        .collect();
    let chosen = usable
        .iter()
        .find(|i| preferred.is_some() && i["containerInstanceArn"].as_str() == preferred)
        .or(usable.first())?;
    chosen["ec2InstanceId"].as_str().map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn picks_a_running_task_of_the_service_with_its_eni_address() {
        let eni = |ip: &str| json!([{"type": "ElasticNetworkInterface", "details": [{"name": "subnetId", "value": "s"}, {"name": "privateIPv4Address", "value": ip}]}]);
        let described = json!({"tasks": [
            {"taskArn": "arn:aws:ecs:r:1:task/c/t1", "lastStatus": "STOPPED", "group": "service:loki", "attachments": eni("10.0.0.1")},
            {"taskArn": "arn:aws:ecs:r:1:task/c/t2", "lastStatus": "RUNNING", "group": "service:grafana", "attachments": eni("10.0.0.2")},
            {"taskArn": "arn:aws:ecs:r:1:task/c/t3", "lastStatus": "RUNNING", "group": "service:loki", "attachments": eni("10.0.0.3"), "containerInstanceArn": "arn:ci/1",
             "containers": [{"name": "loki", "runtimeId": "t3-111", "managedAgents": [{"name": "ExecuteCommandAgent", "lastStatus": "PENDING"}]}]},
        ]});
        let task = pick_task(&described, "c", "loki").unwrap();
        assert_eq!(
            (task.id.as_str(), task.ip.as_str(), task.container_instance.as_deref()),
            ("t3", "10.0.0.3", Some("arn:ci/1"))
        );
        // The agent is not running yet: no ECS Exec, the instance path is used.
        assert_eq!(task.exec_target, None);
        assert!(pick_task(&described, "c", "other").is_none());
    }

    #[test]
    fn uses_ecs_exec_when_a_containers_agent_runs() {
        let described = json!({"tasks": [{
            "taskArn": "arn:aws:ecs:r:1:task/temporal-dev/abc", "lastStatus": "RUNNING", "group": "service:g",
            "attachments": [{"type": "ElasticNetworkInterface", "details": [{"name": "privateIPv4Address", "value": "10.0.0.9"}]}],
            "containers": [
                {"name": "alloy", "runtimeId": "abc-1"},
                {"name": "grafana", "runtimeId": "abc-2", "managedAgents": [{"name": "ExecuteCommandAgent", "lastStatus": "RUNNING"}]},
            ],
        }]});
        let task = pick_task(&described, "temporal-dev", "g").unwrap();
        assert_eq!(task.exec_target.as_deref(), Some("ecs:temporal-dev_abc_abc-2"));
    }

    #[test]
    fn prefers_the_tasks_own_host_among_connected_instances() {
        let described = json!({"containerInstances": [
            {"containerInstanceArn": "arn:ci/1", "ec2InstanceId": "i-1", "status": "ACTIVE", "agentConnected": false},
            {"containerInstanceArn": "arn:ci/2", "ec2InstanceId": "i-2", "status": "ACTIVE", "agentConnected": true},
            {"containerInstanceArn": "arn:ci/3", "ec2InstanceId": "i-3", "status": "ACTIVE", "agentConnected": true},
        ]});
        assert_eq!(pick_instance(&described, Some("arn:ci/3")).as_deref(), Some("i-3"));
        assert_eq!(pick_instance(&described, Some("arn:ci/1")).as_deref(), Some("i-2"));
        assert_eq!(pick_instance(&described, None).as_deref(), Some("i-2"));
        assert_eq!(pick_instance(&json!({"containerInstances": []}), None), None);
    }
}

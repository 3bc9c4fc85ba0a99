//! Session Manager sessions, opened as the AWS CLI opens them but without its Python start-up
//! (about 0.7 s of CPU per session): the signed API call that creates the session (SSM
//! `StartSession` where the CLI runs `aws ssm start-session`, ECS `ExecuteCommand` where it runs
//! `aws ecs execute-command`), then `session-manager-plugin` with the argv the CLI gives it:
//!
//! `session-manager-plugin <response> <region> StartSession <profile> <request> <endpoint>`
//!
//! - `<response>`: the session's id, token and stream URL as JSON. A plugin newer than 1.2.497.0
//!   reads it from the environment variable `AWS_SSM_START_SESSION_RESPONSE`, whose name then
//!   stands in argv; an older plugin, or one whose version does not parse, gets the JSON itself.
//!   The CLI passes the variable for SSM sessions only; here ECS Exec sessions use it too (when
//!   the plugin takes it), so the session token never shows in `ps` or in the logged command line.
//! - `<profile>`: for SSM `""` (the CLI passes only its `--profile` flag, and xtask gives none);
//!   for ECS Exec the CLI's session profile (`AWS_DEFAULT_PROFILE`, else `AWS_PROFILE`). The
//!   plugin inherits xtask's environment either way.
//! - `<request>`: the StartSession input as JSON; for ECS Exec `{"Target": "ecs:<cluster
//!   name>_<task id>_<container runtime id>"}`, the runtime id read with DescribeTasks after
//!   ExecuteCommand, as the CLI reads it.
//! - `<endpoint>`: the URL the API call went to (SSM's; ECS's for ECS Exec, as the CLI passes).
//!
//! The plugin's version is asked once per xtask process. When the plugin cannot be started after
//! the session was created, the session is terminated (SSM `TerminateSession`, as the CLI does
//! after StartSession) so none is left open, and the error says how to install the plugin.

use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

use anyhow::Context;
use probes::aws::{ECS, SSM};
use serde_json::{json, Map, Value};
use tools::{Cmd, Output};

use crate::live::api::Api;
use crate::project::usage;

const PLUGIN: &str = "session-manager-plugin";

pub const PLUGIN_INSTALL_HINT: &str =
    "the SSM tunnels to Loki and Grafana need it: install the Session Manager plugin \
    (https://docs.aws.amazon.com/systems-manager/latest/userguide/session-manager-working-with-install-plugin.html)";

/// The environment variable a plugin newer than [`LAST_VERSION_WITHOUT_VAR`] reads the session
/// response from, when argv names it in the response's place.
pub const RESPONSE_VAR: &str = "AWS_SSM_START_SESSION_RESPONSE";
const LAST_VERSION_WITHOUT_VAR: &str = "1.2.497.0";

/// The session manager plugin is on PATH, or a usage error with the install link (exit 2).
pub fn require_plugin() -> anyhow::Result<()> {
    tools::require(PLUGIN, PLUGIN_INSTALL_HINT).map(drop).map_err(usage)
}

/// A session the API opened, for the plugin to carry.
#[derive(Debug)]
pub struct Session {
    pub id: String,
    /// The session's id, token and stream URL as the API answered them.
    response: Value,
    /// The plugin's `<request>` argument.
    request: Value,
    profile: String,
    region: String,
    /// The base URL of the API call that opened the session.
    endpoint: String,
}

impl Session {
    /// SSM StartSession of `document` on `target`, each parameter with one value: what
    /// `aws ssm start-session --target T --document-name D --parameters k=v,…` sends.
    pub fn start(
        api: &Api,
        purpose: &str,
        target: &str,
        document: &str,
        parameters: &[(&str, String)],
    ) -> anyhow::Result<Session> {
        let parameters: Map<String, Value> = parameters.iter().map(|(k, v)| (k.to_string(), json!([v]))).collect();
        let request = json!({"Target": target, "DocumentName": document, "Parameters": parameters});
        let answer = api.json(
            format!("start an SSM session on {target} ({document}) to {purpose}"),
            &SSM,
            "StartSession",
            request.clone(),
        )?;
        // Never the answer itself in an error: it holds the session's token.
        let field = |name: &str| {
            answer[name].as_str().map(str::to_string).with_context(|| format!("SSM StartSession answered no {name}"))
        };
        let response = json!({"SessionId": field("SessionId")?, "TokenValue": field("TokenValue")?, "StreamUrl": field("StreamUrl")?});
        Ok(Session {
            id: field("SessionId")?,
            response,
            request,
            profile: String::new(),
            region: api.region().to_string(),
            endpoint: api.endpoint(&SSM),
        })
    }

    /// ECS ExecuteCommand of `command` in `container` of `task`, interactive (ECS runs only
    /// interactive commands): what `aws ecs execute-command … --interactive --command X` sends.
    pub fn execute_command(
        api: &Api,
        purpose: &str,
        cluster: &str,
        task: &str,
        container: &str,
        command: &str,
    ) -> anyhow::Result<Session> {
        let answer = api.json(
            purpose,
            &ECS,
            "ExecuteCommand",
            json!({"cluster": cluster, "task": task, "container": container, "interactive": true, "command": command}),
        )?;
        let (cluster_name, task_id, container_name) = exec_names(&answer)?;
        let described = api.json(
            format!("read the runtime id of {container_name} in task {task_id}, the target of its ECS Exec session"),
            &ECS,
            "DescribeTasks",
            json!({"cluster": cluster_name, "tasks": [task_id]}),
        )?;
        let target = exec_target(&answer, &described)?;
        let session = answer["session"].clone();
        let id = session["sessionId"].as_str().context("ECS ExecuteCommand answered no session id")?.to_string();
        Ok(Session {
            id,
            response: session,
            request: json!({"Target": target}),
            profile: cli_session_profile(|name| std::env::var(name).ok()),
            region: api.region().to_string(),
            endpoint: api.endpoint(&ECS),
        })
    }

    /// Starts the plugin on this session, logged with `purpose`; `setup` gives the child its
    /// process group and streams. If it cannot start, the session is terminated first.
    pub fn connect(
        &self,
        api: &Api,
        purpose: impl Into<String>,
        setup: impl FnOnce(&mut Command),
    ) -> anyhow::Result<Child> {
        let purpose = purpose.into();
        let started = plugin_takes_response_var().and_then(|via_var| {
            let cmd = self.plugin_cmd(purpose, via_var);
            let mut command = cmd.std_command();
            setup(&mut command);
            command.spawn().with_context(|| format!("could not start `{}` (to {})", cmd.display(), cmd.purpose()))
        });
        started.map_err(|err| self.abandon(api, err))
    }

    /// Runs the plugin until the session ends (an ECS Exec of one command), its output captured;
    /// a non-zero exit is the caller's to judge.
    pub fn run(&self, api: &Api, purpose: impl Into<String>) -> anyhow::Result<Output> {
        let child = self.connect(api, purpose, |command| {
            command.stdout(Stdio::piped()).stderr(Stdio::piped());
        })?;
        let out = child.wait_with_output().with_context(|| format!("waiting for session {} to end", self.id))?;
        Ok(Output {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }

    /// The plugin's command line: the response in argv, or (`via_var`) in [`RESPONSE_VAR`].
    fn plugin_cmd(&self, purpose: String, via_var: bool) -> Cmd {
        let response = self.response.to_string();
        let cmd = Cmd::new(PLUGIN, purpose);
        // In argv the token would be logged with the command line: masked there.
        let cmd = if via_var { cmd.arg(RESPONSE_VAR).env(RESPONSE_VAR, response) } else { cmd.secret_arg(response) };
        cmd.args([&self.region, "StartSession", &self.profile, &self.request.to_string(), &self.endpoint])
    }

    /// Ends a session no plugin carries (it would stay open on the agent until it times out) and
    /// returns why the plugin did not start, with the fix.
    fn abandon(&self, api: &Api, why: anyhow::Error) -> anyhow::Error {
        let ended = api.json(
            format!("end session {}, which the plugin cannot carry", self.id),
            &SSM,
            "TerminateSession",
            json!({"SessionId": self.id}),
        );
        let left_open = match ended {
            Ok(_) => String::new(),
            Err(err) => format!("; session {} stays open until it times out ({err:#})", self.id),
        };
        tools::not_set_up(format!(
            "the Session Manager plugin could not be started: {why:#}{left_open}; {PLUGIN_INSTALL_HINT}"
        ))
    }
}

/// Whether the plugin on PATH takes the response from [`RESPONSE_VAR`]; its version is asked
/// once per process.
fn plugin_takes_response_var() -> anyhow::Result<bool> {
    static VERSION: OnceLock<String> = OnceLock::new();
    let version = match VERSION.get() {
        Some(version) => version,
        None => {
            let printed =
                Cmd::new(PLUGIN, "read the Session Manager plugin's version, which says how it takes a session")
                    .arg("--version")
                    .read()?;
            VERSION.get_or_init(|| printed)
        }
    };
    Ok(takes_response_var(version))
}

/// The AWS CLI's rule: the version `--version` printed, whitespace removed, is 1 to 4 numeric
/// parts and, padded with zeros to the length of the other, greater than 1.2.497.0. Anything
/// else (garbage, an empty answer) means the JSON goes in argv.
fn takes_response_var(version: &str) -> bool {
    let version: String = version.chars().filter(|c| !c.is_whitespace()).collect();
    let (Some(mut version), Some(mut last)) = (version_parts(&version), version_parts(LAST_VERSION_WITHOUT_VAR)) else {
        return false;
    };
    let len = version.len().max(last.len());
    version.resize(len, 0);
    last.resize(len, 0);
    version > last
}

fn version_parts(version: &str) -> Option<Vec<u128>> {
    let parts: Vec<&str> = version.split('.').collect();
    if parts.len() > 4 {
        return None;
    }
    parts
        .iter()
        .map(|part| if !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()) { part.parse().ok() } else { None })
        .collect()
}

/// The cluster name, task id and container name of an ExecuteCommand answer.
fn exec_names(answer: &Value) -> anyhow::Result<(&str, &str, &str)> {
    let last = |key: &str| {
        answer[key]
            .as_str()
            .and_then(|arn| arn.rsplit('/').next())
            .filter(|s| !s.is_empty())
            .with_context(|| format!("ECS ExecuteCommand answered no {key}"))
    };
    let container = answer["containerName"].as_str().context("ECS ExecuteCommand answered no containerName")?;
    Ok((last("clusterArn")?, last("taskArn")?, container))
}

/// `ecs:<cluster name>_<task id>_<runtime id>` of the container an ExecuteCommand answer names,
/// its runtime id from `described` (DescribeTasks of that task).
fn exec_target(answer: &Value, described: &Value) -> anyhow::Result<String> {
    let (cluster, task, container) = exec_names(answer)?;
    let found = described["tasks"].as_array().and_then(|tasks| tasks.first()).with_context(|| {
        format!("task {task} is not in cluster {cluster} any more: its ECS Exec session has no target")
    })?;
    let runtime = found["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["name"] == container)
        .and_then(|c| c["runtimeId"].as_str())
        .with_context(|| format!("task {task} reports no runtime id for its container {container}"))?;
    Ok(format!("ecs:{cluster}_{task}_{runtime}"))
}

/// The AWS CLI's session profile, which it passes to the plugin for ECS Exec: the first of
/// `AWS_DEFAULT_PROFILE`, `AWS_PROFILE` that is set (botocore's order), else "".
fn cli_session_profile(var: impl Fn(&str) -> Option<String>) -> String {
    ["AWS_DEFAULT_PROFILE", "AWS_PROFILE"].into_iter().find_map(var).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn only_a_plugin_newer_than_1_2_497_0_reads_the_response_from_the_environment() {
        for (version, via_var) in [
            ("1.2.497.0", false),
            ("1.2.497.0\n", false),
            ("1.2.497", false),
            ("1.2.764.0", true),
            ("1.2.764.0\n", true),
            ("1.2.497.1", true),
            ("1.3", true),
            (" 1 . 2 . 800\t", true),
            ("2", true),
            ("1.2.496.9999", false),
            ("garbage", false),
            ("", false),
            ("1.2.764.0.1", false),
            ("1..2", false),
            ("v1.2.764.0", false),
            ("1.2.764.0-beta", false),
        ] {
            assert_eq!(takes_response_var(version), via_var, "{version:?}");
        }
    }

    fn session(endpoint: &str) -> Session {
        Session {
            id: "s-1".into(),
            response: json!({"SessionId": "s-1", "TokenValue": "secret-token", "StreamUrl": "wss://x"}),
            request: json!({"Target": "i-1", "DocumentName": "AWS-StartPortForwardingSession", "Parameters": {"portNumber": ["3100"]}}),
            profile: String::new(),
            region: "eu-west-1".into(),
            endpoint: endpoint.into(),
        }
    }

    fn argv(command: &Command) -> Vec<String> {
        command.get_args().map(|a| a.to_string_lossy().into_owned()).collect()
    }

    #[test]
    fn the_plugin_gets_the_cli_argv_and_the_endpoint_the_api_call_used() {
        let session = session("http://127.0.0.1:5000");
        let request = session.request.to_string();

        let cmd = session.plugin_cmd("open a tunnel".into(), true);
        let command = cmd.std_command();
        assert_eq!(command.get_program(), OsStr::new("session-manager-plugin"));
        assert_eq!(
            argv(&command),
            [RESPONSE_VAR, "eu-west-1", "StartSession", "", request.as_str(), "http://127.0.0.1:5000"]
        );
        let env: Vec<_> = command.get_envs().filter(|(k, _)| *k == OsStr::new(RESPONSE_VAR)).collect();
        let response: Value = serde_json::from_str(&env[0].1.unwrap().to_string_lossy()).unwrap();
        assert_eq!(response, session.response);
        assert!(!cmd.display().contains("secret-token"), "{}", cmd.display());

        // An older plugin: the JSON itself in argv, masked in the logged line.
        let cmd = session.plugin_cmd("open a tunnel".into(), false);
        let command = cmd.std_command();
        let args = argv(&command);
        assert_eq!(serde_json::from_str::<Value>(&args[0]).unwrap(), session.response);
        assert_eq!(args[1..], ["eu-west-1", "StartSession", "", request.as_str(), "http://127.0.0.1:5000"]);
        assert_eq!(command.get_envs().count(), 0);
        assert!(
            cmd.display().starts_with("session-manager-plugin '***' eu-west-1 StartSession '' ")
                && !cmd.display().contains("secret-token"),
            "{}",
            cmd.display()
        );
    }

    #[test]
    fn an_exec_session_targets_the_container_by_its_runtime_id() {
        let answer = json!({
            "clusterArn": "arn:aws:ecs:eu-west-1:1:cluster/temporal-dev",
            "taskArn": "arn:aws:ecs:eu-west-1:1:task/temporal-dev/abc",
            "containerName": "alloy",
            "session": {"sessionId": "ecs-execute-command-1", "streamUrl": "wss://x", "tokenValue": "t"},
        });
        let described = json!({"tasks": [{"containers": [
            {"name": "temporal-worker", "runtimeId": "abc-1"},
            {"name": "alloy", "runtimeId": "abc-2"},
        ]}]});
        assert_eq!(exec_target(&answer, &described).unwrap(), "ecs:temporal-dev_abc_abc-2");
        let gone = exec_target(&answer, &json!({"tasks": []})).unwrap_err();
        assert!(gone.to_string().contains("task abc is not in cluster temporal-dev"), "{gone}");
        let nameless = exec_target(&json!({"taskArn": "t"}), &described).unwrap_err();
        assert!(nameless.to_string().contains("no containerName"), "{nameless}");
    }

    #[test]
    fn the_exec_profile_is_the_clis_session_profile() {
        let vars = |set: &'static [(&'static str, &'static str)]| {
            move |name: &str| set.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string())
        };
        assert_eq!(cli_session_profile(vars(&[])), "");
        assert_eq!(cli_session_profile(vars(&[("AWS_PROFILE", "dev")])), "dev");
        assert_eq!(cli_session_profile(vars(&[("AWS_PROFILE", "dev"), ("AWS_DEFAULT_PROFILE", "ops")])), "ops");
    }
}

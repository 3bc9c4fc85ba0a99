//! The plan's checkpoints 2, 5, 7 and 9 as live checks against a deployed environment.
//!
//! Loki (port 3100) and Grafana (port 3000) are reached through SSM tunnels ([`Tunnel`]), opened
//! once per run and always closed. AMP is queried over HTTPS with SigV4; `XTASK_AMP_ENDPOINT`
//! replaces `https://aps-workspaces.<region>.amazonaws.com` (a VPC endpoint, or a test stand-in).
//! The Alloy sidecars' own logs are read where the task definition sends them: CloudWatch, in the
//! service's log group under the stream prefix `ecs/alloy/` (they never go to Loki, so they are
//! readable when Loki is the thing that is broken).

use std::cell::OnceCell;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, format_err, Context};
use probes::amp::{Amp, Credentials};
use probes::aws::{ECS, LOGS, SECRETS_MANAGER};
use probes::grafana::{Grafana, Login};
use probes::logql;
use probes::loki::Loki;
use probes::Http;
use serde_json::json;
use settings::{Collector, Environment};

use crate::checks::report::Report;
use crate::live::ecs::{poll_interval, polled, rollout, Rollout};
use crate::live::session::require_plugin;
use crate::live::tunnel::{Endpoint, Tunnel};
use crate::live::Live;
use crate::phase;
use crate::project::usage;

pub const LOKI_PORT: u16 = 3100;
pub const GRAFANA_PORT: u16 = 3000;
/// The uid the provisioning file gives the Loki datasource (grafana/provisioning/datasources/loki.yaml).
pub const LOKI_DATASOURCE_UID: &str = "loki";
/// The stream checkpoint 2 pushes its probe line to (never a real service's name).
pub const PROBE_SERVICE: &str = "xtask-verify";
/// How far back "recent" logs, metrics and sidecar errors are looked for.
pub(crate) const RECENT: Duration = Duration::from_secs(15 * 60);
/// After a flush, how long checkpoint 2 waits for Loki's first objects in S3.
pub(crate) const S3_WAIT: Duration = Duration::from_secs(120);

pub(crate) const DEPLOY_LOKI: &str = "cargo xtask deploy loki --execute";
pub(crate) const DEPLOY_GRAFANA: &str = "cargo xtask deploy grafana --execute";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checkpoint {
    /// Loki service stable and ready; S3 writes proven.
    Two,
    /// Alloy services (or just one): logs with labels in Loki, metrics in AMP, a quiet sidecar.
    Five { service: Option<String> },
    /// Grafana: healthy, Loki datasource by uid, a LogQL query through it returns lines.
    Seven,
    /// End to end: every enabled service has logs, AMP answers, chunks and index in S3.
    Nine,
}

impl Checkpoint {
    pub(crate) fn label(&self) -> String {
        match self {
            Checkpoint::Two => "2".into(),
            Checkpoint::Five { service: Some(s) } => format!("5 ({s})"),
            Checkpoint::Five { service: None } => "5".into(),
            Checkpoint::Seven => "7".into(),
            Checkpoint::Nine => "9".into(),
        }
    }
}

/// Runs one checkpoint. Errors (exit 2) when it cannot run yet: an output of an earlier phase is
/// missing, no service runs Alloy (5), the session manager plugin is missing. Failed checks are
/// in the report, not errors.
pub fn run_checkpoint(live: &Live, which: Checkpoint) -> anyhow::Result<Report> {
    let ctx = Checks::new(live)?;
    ctx.run(&which)
}

/// A stream's labels as Loki writes them: `{container="x", service_name="y"}`.
pub(crate) fn show_labels(labels: &std::collections::BTreeMap<String, String>) -> String {
    let pairs: Vec<(&str, &str)> = labels.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    logql::selector(&pairs)
}

/// What the env file says must have run before a checkpoint can: no credentials needed.
pub(crate) fn not_yet(env: &Environment, which: &Checkpoint) -> Result<(), String> {
    phase::order::loki_deployed(env)?;
    let name = &env.name;
    match which {
        Checkpoint::Two | Checkpoint::Nine => Ok(()),
        Checkpoint::Seven => phase::order::grafana_deployed(env),
        Checkpoint::Five { service: Some(service) } => {
            let settings = env.settings.services.get(service).expect("checked name");
            if !settings.enabled {
                return Err(format!(
                    "{service} is disabled in `{name}` (services.{service}.enabled = false): it has no task to check"
                ));
            }
            if settings.collector == Collector::Adot {
                return Err(format!(
                    "{service} still uses ADOT in `{name}`; run `cargo xtask migrate-sidecars --env {name} --service {service} --execute` first"
                ));
            }
            Ok(())
        }
        Checkpoint::Five { service: None } => {
            let any = env.settings.services.iter().any(|(_, s)| s.enabled && s.collector == Collector::Alloy);
            if any {
                return Ok(());
            }
            Err(format!(
                "no enabled service of `{name}` runs Alloy yet; run `cargo xtask migrate-sidecars --env {name} --execute` first"
            ))
        }
    }
}

/// Prints the report (table, or JSON on stdout); fails naming the failed checks (exit 1).
pub(crate) fn print_verdict(report: &Report, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(&report.to_json())?);
    } else {
        print!("{}", report.table());
    }
    if !report.passed() {
        let failed: Vec<&str> = report.checks.iter().filter(|c| !c.passed).map(|c| c.name.as_str()).collect();
        bail!("checkpoint {} failed: {}", report.checkpoint, failed.join(", "));
    }
    Ok(())
}

/// One service as Terraform created it.
pub(crate) struct ServiceOutputs {
    pub(crate) ecs_service: String,
    pub(crate) log_group: String,
}

/// What checks share within one run: the tunnels (opened on first use).
pub(crate) struct Checks<'l, 'p> {
    pub(crate) live: &'l Live<'p>,
    pub(crate) cluster: String,
    http: Http,
    loki: OnceCell<Result<(Tunnel, Loki), String>>,
    grafana: OnceCell<Result<(Tunnel, Grafana), String>>,
}

impl<'l, 'p> Checks<'l, 'p> {
    pub(crate) fn new(live: &'l Live<'p>) -> anyhow::Result<Checks<'l, 'p>> {
        Ok(Checks {
            live,
            cluster: live.env.settings.platform.ecs_cluster_name.clone(),
            http: Http::default(),
            loki: OnceCell::new(),
            grafana: OnceCell::new(),
        })
    }

    pub(crate) fn preconditions(&self, which: &Checkpoint) -> anyhow::Result<()> {
        self.live.output_str("loki_service_name", DEPLOY_LOKI)?;
        match which {
            Checkpoint::Two => drop(self.live.output_str("loki_bucket_name", DEPLOY_LOKI)?),
            Checkpoint::Five { service } => drop(self.five_services(service.as_deref())?),
            Checkpoint::Seven => {
                self.live.output_str("grafana_service_name", DEPLOY_GRAFANA)?;
                self.live.output_str("grafana_admin_secret_arn", DEPLOY_GRAFANA)?;
            }
            Checkpoint::Nine => {
                self.live.output_str("loki_bucket_name", DEPLOY_LOKI)?;
                self.service_outputs("worker")?;
            }
        }
        require_plugin()
    }

    pub(crate) fn run(&self, which: &Checkpoint) -> anyhow::Result<Report> {
        self.preconditions(which)?;
        let mut report = Report::new(which.label());
        match which {
            Checkpoint::Two => self.two(&mut report)?,
            Checkpoint::Five { service } => {
                for service in self.five_services(service.as_deref())? {
                    self.five(&mut report, service)?;
                }
            }
            Checkpoint::Seven => self.seven(&mut report)?,
            Checkpoint::Nine => self.nine(&mut report)?,
        }
        Ok(report)
    }

    // ---- checkpoint 2 -------------------------------------------------------------------------

    pub(crate) fn two(&self, report: &mut Report) -> anyhow::Result<()> {
        let service = self.live.output_str("loki_service_name", DEPLOY_LOKI)?;
        let bucket = self.live.output_str("loki_bucket_name", DEPLOY_LOKI)?;
        report.check("loki service stable", self.service_stable(&service));
        report.check(
            "loki ready",
            self.loki().and_then(|loki| loki.ready().map(|body| format!("/ready answered 200 {body:?}"))),
        );
        let pushed = report.check("loki ingests a probe line", self.probe_line());
        let flushed = pushed && self.loki().and_then(Loki::flush).is_ok();
        report.check("s3 holds loki objects", self.s3_writes(&bucket, flushed));
        if self.live.env.settings.loki.count > 1 {
            report.warn("loki replicas in distinct AZs", self.replica_zones(&service));
        }
        Ok(())
    }

    /// The AZ of each running Loki task. Terraform requires an AZ per replica, but ECS spreads
    /// tasks over AZs only as far as it can place them (capacity, a task replaced during an AZ's
    /// outage): two replicas in one AZ can hold two of a stream's three copies, and losing that AZ
    /// loses the write quorum (issue 31.5).
    pub(crate) fn replica_zones(&self, service: &str) -> anyhow::Result<String> {
        let ids = self.task_ids(service, "RUNNING")?;
        if ids.is_empty() {
            bail!("{service} has no running task to place");
        }
        let described = self.live.api.json(
            format!("read the availability zones of {service}'s tasks"),
            &ECS,
            "DescribeTasks",
            json!({"cluster": self.cluster, "tasks": ids.iter().take(100).collect::<Vec<_>>()}),
        )?;
        let mut by_zone: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
        for task in described["tasks"].as_array().into_iter().flatten() {
            let zone = task["availabilityZone"].as_str().unwrap_or("an unknown AZ");
            let id = task["taskArn"].as_str().and_then(|a| a.rsplit('/').next()).unwrap_or("?");
            by_zone.entry(zone).or_default().push(id);
        }
        let placed: Vec<String> = by_zone.iter().map(|(zone, ids)| format!("{zone}: {}", ids.join(", "))).collect();
        let shared: Vec<&&str> = by_zone.iter().filter(|(_, ids)| ids.len() > 1).map(|(zone, _)| zone).collect();
        if shared.is_empty() {
            return Ok(format!("{} replica(s), one per AZ ({})", ids.len(), placed.join("; ")));
        }
        bail!(
            "ECS placed two or more replicas in {} ({}): losing that AZ can lose 2 of a stream's 3 copies, below the write quorum. \
             Give the capacity provider instances in every AZ of platform.private_subnet_ids, then `aws ecs update-service --cluster {} --service {service} --force-new-deployment` to spread them again",
            shared.iter().map(|z| z.to_string()).collect::<Vec<_>>().join(", "),
            placed.join("; "),
            self.cluster
        )
    }

    /// Pushes a uniquely marked line and reads it back (ingesters serve it before any flush).
    pub(crate) fn probe_line(&self) -> anyhow::Result<String> {
        let loki = self.loki()?;
        let marker = format!("xtask verify probe {}", probes::loki::now_ns());
        loki.push(&[("service_name", PROBE_SERVICE), ("cluster", &self.cluster)], &marker)?;
        let query = format!("{} |= {}", logql::selector(&[("service_name", PROBE_SERVICE)]), logql::quote(&marker));
        let started = Instant::now();
        loop {
            if !loki.query_range(&query, Duration::from_secs(300), 10)?.is_empty() {
                return Ok(format!("pushed and read back in {:.1}s", started.elapsed().as_secs_f32()));
            }
            if started.elapsed() > Duration::from_secs(15) {
                bail!("a line pushed to Loki was not returned by query_range within 15s ({query})");
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// Objects under `index/` or `fake/`, polled for a while after a flush.
    pub(crate) fn s3_writes(&self, bucket: &str, flushed: bool) -> anyhow::Result<String> {
        let started = Instant::now();
        loop {
            let counts = self.s3_count(bucket, "index/").and_then(|index| Ok((index, self.s3_count(bucket, "fake/")?)));
            match polled(&format!("list s3://{bucket}"), counts)? {
                Some((index, chunks)) if index + chunks > 0 => {
                    return Ok(format!("s3://{bucket}: {chunks}+ chunk object(s) under fake/, {index}+ under index/"))
                }
                _ => {}
            }
            if !flushed || started.elapsed() >= S3_WAIT {
                bail!(
                    "s3://{bucket} has no object under fake/ or index/{}; Loki cannot write to its bucket: check the task role and the S3 gateway endpoint, and Loki's log group",
                    if flushed { format!(" {}s after a flush", S3_WAIT.as_secs()) } else { String::new() }
                );
            }
            std::thread::sleep(poll_interval().max(Duration::from_secs(1)));
        }
    }

    pub(crate) fn s3_count(&self, bucket: &str, prefix: &str) -> anyhow::Result<usize> {
        let keys = self.live.api.s3_keys(
            format!("look for Loki's objects under s3://{bucket}/{prefix}"),
            bucket,
            prefix,
            5,
        )?;
        Ok(keys.len())
    }

    // ---- checkpoint 5 -------------------------------------------------------------------------

    /// The services checkpoint 5 covers: the one asked for (whatever the env file says: a
    /// migration checks before it records), else every enabled service on Alloy.
    pub(crate) fn five_services(&self, only: Option<&str>) -> anyhow::Result<Vec<&'static str>> {
        let services = &self.live.env.settings.services;
        let names: Vec<&'static str> = match only {
            Some(name) => vec![settings::check_service_name(name).map_err(usage)?],
            None => {
                services.iter().filter(|(_, s)| s.enabled && s.collector == Collector::Alloy).map(|(n, _)| n).collect()
            }
        };
        if names.is_empty() {
            bail!(usage(format!(
                "checkpoint 5 checks the services on Alloy, and no enabled service of `{}` uses it yet; run `cargo xtask migrate-sidecars` first",
                self.live.env.name
            )));
        }
        for name in &names {
            self.service_outputs(name)?;
        }
        Ok(names)
    }

    pub(crate) fn five(&self, report: &mut Report, service: &str) -> anyhow::Result<()> {
        let outputs = self.service_outputs(service)?;
        report.check(format!("{service}: service stable"), self.service_stable(&outputs.ecs_service));
        // One query serves two checks; its error (a String) is repeated in both.
        let lines = self.recent_lines(service).map_err(|e| format!("{e:#}"));
        let lines = || lines.as_ref().map_err(|e| format_err!("{e}"));
        report.check(format!("{service}: logs in loki"), lines().and_then(|lines| describe_lines(service, lines)));
        report.check(format!("{service}: stream labels"), lines().and_then(|lines| self.labels_ok(service, lines)));
        report.check(format!("{service}: metrics in amp"), self.amp_up(service, &outputs.ecs_service));
        report
            .check(format!("{service}: alloy sidecar without errors"), self.sidecar_quiet(service, &outputs.log_group));
        Ok(())
    }

    pub(crate) fn recent_lines(&self, service: &str) -> anyhow::Result<Vec<probes::loki::LogLine>> {
        self.loki()?.query_range(&logql::selector(&[("service_name", service)]), RECENT, 100)
    }

    /// Every stream carries service_name, this cluster and a container name (req 3.8, P2).
    pub(crate) fn labels_ok(&self, service: &str, lines: &[probes::loki::LogLine]) -> anyhow::Result<String> {
        if lines.is_empty() {
            bail!("no lines to check");
        }
        for line in lines {
            let label = |name: &str| line.labels.get(name).map(String::as_str).unwrap_or("");
            let problems: Vec<String> = [
                (label("service_name") != service).then(|| format!("service_name={:?}", label("service_name"))),
                (label("cluster") != self.cluster)
                    .then(|| format!("cluster={:?} (expected {:?})", label("cluster"), self.cluster)),
                label("container").is_empty().then(|| "no container label".to_string()),
            ]
            .into_iter()
            .flatten()
            .collect();
            if !problems.is_empty() {
                bail!("a stream has wrong labels: {}; its labels: {}", problems.join(", "), show_labels(&line.labels));
            }
        }
        Ok(format!("service_name, cluster={}, container on every stream", self.cluster))
    }

    /// `up{job, cluster, task_id=~<running tasks>}`: a current task's sidecar scrapes and writes.
    /// Restricted to the running tasks because ADOT wrote `up` for the job too: after a
    /// migration only the new tasks prove that Alloy's remote write works.
    pub(crate) fn amp_up(&self, service: &str, ecs_service: &str) -> anyhow::Result<String> {
        let ids = self.task_ids(ecs_service, "RUNNING")?;
        if ids.is_empty() {
            bail!("ECS service {ecs_service} has no running task");
        }
        let query = format!(
            "up{{job={}, cluster={}, task_id=~{}}}",
            logql::quote(service),
            logql::quote(&self.cluster),
            logql::quote(&ids.join("|"))
        );
        let samples = self.amp_query(&query)?;
        let up = samples.iter().filter(|s| s.value == 1.0).count();
        if up == 0 {
            bail!(
                "AMP has {} series of `up` for job {service} from its {} running task(s), none up: the Alloy sidecar is not scraping or not remote-writing (check its aps:RemoteWrite permission and its logs)",
                samples.len(),
                ids.len()
            );
        }
        Ok(format!("{up} target(s) up in AMP for job {service} ({} running task(s))", ids.len()))
    }

    pub(crate) fn sidecar_quiet(&self, service: &str, log_group: &str) -> anyhow::Result<String> {
        let start_ms =
            (SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().saturating_sub(RECENT)).as_millis();
        let found = self.live.api.json_all(
            format!("look for errors in the Alloy sidecar logs of {service}"),
            &LOGS,
            "FilterLogEvents",
            json!({"logGroupName": log_group, "logStreamNamePrefix": "ecs/alloy/", "startTime": start_ms as u64,
                   "filterPattern": "\"level=error\""}),
            "events",
        )?;
        let events: Vec<&str> =
            found["events"].as_array().into_iter().flatten().filter_map(|e| e["message"].as_str()).collect();
        if !events.is_empty() {
            let shown: Vec<String> = events.iter().take(3).map(|m| m.trim().chars().take(200).collect()).collect();
            bail!(
                "{} error line(s) in {log_group} (ecs/alloy/*) in the last {}m, e.g.: {}",
                events.len(),
                RECENT.as_secs() / 60,
                shown.join(" | ")
            );
        }
        Ok(format!("no level=error line in {log_group} (ecs/alloy/*) in the last {}m", RECENT.as_secs() / 60))
    }

    // ---- checkpoint 7 -------------------------------------------------------------------------

    pub(crate) fn seven(&self, report: &mut Report) -> anyhow::Result<()> {
        let service = self.live.output_str("grafana_service_name", DEPLOY_GRAFANA)?;
        report.check("grafana service stable", self.service_stable(&service));
        report.check(
            "grafana healthy",
            self.grafana().and_then(|g| g.health().map(|v| format!("/api/health: database ok, version {v}"))),
        );
        report.check(
            "grafana loki datasource",
            self.grafana().and_then(|g| {
                let ds = g.datasource(LOKI_DATASOURCE_UID)?;
                if ds["type"] != "loki" {
                    bail!("datasource `{LOKI_DATASOURCE_UID}` has type {} rather than \"loki\"", ds["type"]);
                }
                Ok(format!("uid {LOKI_DATASOURCE_UID}, type loki, url {}", ds["url"].as_str().unwrap_or("?")))
            }),
        );
        let expr = logql::selector(&[("cluster", &self.cluster)]);
        report.check("grafana logql query returns lines", self.grafana().and_then(|g| {
            let lines = g.loki_query_lines(LOKI_DATASOURCE_UID, &expr, 60, 20)?;
            if lines == 0 {
                bail!("{expr} over the last hour returned no line through Grafana (Loki has none, or Grafana cannot reach http://loki:3100)");
            }
            Ok(format!("{lines} line(s) for {expr} through Grafana"))
        }));
        Ok(())
    }

    // ---- checkpoint 9 -------------------------------------------------------------------------

    pub(crate) fn nine(&self, report: &mut Report) -> anyhow::Result<()> {
        for (service, settings) in self.live.env.settings.services.iter().filter(|(_, s)| s.enabled) {
            let check = if settings.collector == Collector::Alloy {
                self.recent_lines(service).and_then(|lines| describe_lines(service, &lines))
            } else {
                Err(format_err!("{service} still uses the {} collector: its logs are not in Loki; run `cargo xtask migrate-sidecars`", settings.collector))
            };
            report.check(format!("{service}: logs in loki"), check);
        }
        let query = format!("count by (job) (up{{cluster={}}})", logql::quote(&self.cluster));
        report.check(
            "amp answers queries",
            self.amp_query(&query).and_then(|samples| {
                let mut jobs: Vec<&str> =
                    samples.iter().filter_map(|s| s.metric.get("job").map(String::as_str)).collect();
                jobs.sort_unstable();
                if jobs.is_empty() {
                    bail!("{query} returned no series: no metrics from this cluster reach AMP");
                }
                Ok(format!("jobs: {}", jobs.join(", ")))
            }),
        );
        let bucket = self.live.output_str("loki_bucket_name", DEPLOY_LOKI)?;
        for (name, prefix, what) in
            [("s3 holds chunks", "fake/", "chunks"), ("s3 holds index", "index/", "TSDB index files")]
        {
            report.check(
                name,
                self.s3_count(&bucket, prefix).and_then(|n| {
                    if n == 0 {
                        bail!("s3://{bucket}/{prefix} is empty: Loki has written no {what} yet");
                    }
                    Ok(format!("{n}+ object(s) under s3://{bucket}/{prefix}"))
                }),
            );
        }
        Ok(())
    }

    // ---- shared -------------------------------------------------------------------------------

    /// The ids of the service's tasks with this desired status (RUNNING, STOPPED).
    pub(crate) fn task_ids(&self, ecs_service: &str, desired_status: &str) -> anyhow::Result<Vec<String>> {
        let listed = self.live.api.json_all(
            format!("list the {} tasks of {ecs_service}", desired_status.to_lowercase()),
            &ECS,
            "ListTasks",
            json!({"cluster": self.cluster, "serviceName": ecs_service, "desiredStatus": desired_status}),
            "taskArns",
        )?;
        Ok(listed["taskArns"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| Some(a.as_str()?.rsplit('/').next()?.to_string()))
            .collect())
    }

    pub(crate) fn service_stable(&self, service: &str) -> anyhow::Result<String> {
        let answer = self.live.api.json(
            format!("read the state of ECS service {service}"),
            &ECS,
            "DescribeServices",
            json!({"cluster": self.cluster, "services": [service]}),
        )?;
        let found = answer["services"]
            .as_array()
            .and_then(|s| s.first())
            .with_context(|| format!("ECS service {service} does not exist in cluster {}", self.cluster))?;
        match rollout(found) {
            Rollout::Stable => Ok(format!(
                "{service}: {}/{} tasks running, one deployment",
                found["runningCount"], found["desiredCount"]
            )),
            Rollout::InProgress(progress) => bail!("{service} is not stable: {progress}"),
            Rollout::Failed(why) => bail!("{service}: {why}"),
        }
    }

    /// `temporal_services[<name>]`: its ECS service and log group.
    pub(crate) fn service_outputs(&self, name: &str) -> anyhow::Result<ServiceOutputs> {
        let entry = &self.live.outputs()?["temporal_services"][name];
        let field = |key: &str| entry[key].as_str().filter(|s| !s.is_empty()).map(str::to_string);
        let missing = || {
            usage(format!(
                "the Terraform output `temporal_services` has no {name} service in environment `{}`; run `{DEPLOY_LOKI}` first",
                self.live.env.name
            ))
        };
        Ok(ServiceOutputs {
            ecs_service: field("service_name").ok_or_else(missing)?,
            log_group: field("log_group_name").ok_or_else(missing)?,
        })
    }

    pub(crate) fn loki(&self) -> anyhow::Result<&Loki> {
        let opened = self.loki.get_or_init(|| {
            let service = self.live.output_str("loki_service_name", DEPLOY_LOKI).map_err(|e| format!("{e:#}"))?;
            let tunnel = Tunnel::open(self.live, &Endpoint { what: "Loki", service: &service, port: LOKI_PORT })
                .map_err(|e| format!("{e:#}"))?;
            let loki = Loki::new(&tunnel.base_url(), self.http.clone());
            Ok((tunnel, loki))
        });
        opened.as_ref().map(|(_, loki)| loki).map_err(|e| format_err!("could not reach Loki: {e}"))
    }

    pub(crate) fn grafana(&self) -> anyhow::Result<&Grafana> {
        let opened = self.grafana.get_or_init(|| {
            let open = || -> anyhow::Result<(Tunnel, Grafana)> {
                let service = self.live.output_str("grafana_service_name", DEPLOY_GRAFANA)?;
                let secret = self.live.output_str("grafana_admin_secret_arn", DEPLOY_GRAFANA)?;
                // Captured, never printed: Cmd logs the command line only.
                let answer = self.live.api.json(
                    "read the Grafana admin credentials from Secrets Manager",
                    &SECRETS_MANAGER,
                    "GetSecretValue",
                    json!({"SecretId": secret}),
                )?;
                let login = Login::from_secret_string(
                    answer["SecretString"].as_str().context("the Grafana admin secret has no SecretString")?,
                )?;
                let tunnel =
                    Tunnel::open(self.live, &Endpoint { what: "Grafana", service: &service, port: GRAFANA_PORT })?;
                let grafana = Grafana::new(&tunnel.base_url(), self.http.clone(), Some(login));
                Ok((tunnel, grafana))
            };
            open().map_err(|e| format!("{e:#}"))
        });
        opened.as_ref().map(|(_, grafana)| grafana).map_err(|e| format_err!("could not reach Grafana: {e}"))
    }

    pub(crate) fn amp_query(&self, promql: &str) -> anyhow::Result<Vec<probes::amp::Sample>> {
        let (amp, credentials) = self.amp()?;
        amp.query(promql, &credentials)
    }

    /// The env's AMP workspace and the credentials to sign for it.
    pub(crate) fn amp(&self) -> anyhow::Result<(Amp, Credentials)> {
        let credentials = self.live.api.credentials()?;
        let s = &self.live.env.settings;
        let override_base = std::env::var("XTASK_AMP_ENDPOINT").ok().filter(|v| !v.is_empty());
        let url = probes::amp::workspace_url(&s.aws.region, &s.platform.amp_workspace_id, override_base.as_deref());
        Ok((Amp::new(&url, &s.aws.region, self.http.clone()), credentials))
    }
}

pub(crate) fn describe_lines(service: &str, lines: &[probes::loki::LogLine]) -> anyhow::Result<String> {
    if lines.is_empty() {
        bail!(
            "no line with service_name={service:?} in the last {}m: its Alloy sidecar ships nothing (read its logs in CloudWatch, stream prefix ecs/alloy/)",
            RECENT.as_secs() / 60
        );
    }
    let mut containers: Vec<&str> =
        lines.iter().filter_map(|l| l.labels.get("container").map(String::as_str)).collect();
    containers.sort_unstable();
    containers.dedup();
    Ok(format!(
        "{}{} line(s) in the last {}m from {}",
        lines.len(),
        if lines.len() >= 100 { "+" } else { "" },
        RECENT.as_secs() / 60,
        containers.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_labels_name_the_service() {
        assert_eq!(Checkpoint::Five { service: Some("worker".into()) }.label(), "5 (worker)");
        assert_eq!(Checkpoint::Two.label(), "2");
    }

    #[test]
    fn line_summaries_name_the_containers_or_the_fix() {
        let line = |c: &str| probes::loki::LogLine {
            ts_ns: 1,
            labels: [("container".to_string(), c.to_string())].into(),
            line: "x".into(),
        };
        let summary = describe_lines("worker", &[line("temporal-worker"), line("temporal-worker")]).unwrap();
        assert_eq!(summary, "2 line(s) in the last 15m from temporal-worker");
        assert!(format!("{:#}", describe_lines("worker", &[]).unwrap_err()).contains("ecs/alloy/"));
    }
}

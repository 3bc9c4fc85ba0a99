//! `cargo xtask logs <service>`: a service's recent lines from Loki, through an SSM tunnel,
//! oldest first, as `timestamp container line`.

use anyhow::bail;
use clap::Args;
use probes::logql;
use probes::loki::{LogLine, Loki};
use probes::Http;
use settings::{Collector, Environment};

use crate::commands::verify::checkpoints::LOKI_PORT;
use crate::live::session::require_plugin;
use crate::live::tunnel::{Endpoint, Tunnel};
use crate::live::Live;
use crate::project::{usage, Project};

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// history, matching, frontend, worker or benchmark-worker (Loki's own logs stay in CloudWatch)
    pub service: String,
    /// Environment name: envs/<ENV>.toml
    #[arg(long, short, default_value = "example")]
    pub env: String,
    /// How far back, e.g. 10m, 2h, 1d
    #[arg(long, default_value = "10m")]
    pub since: String,
    /// Only lines at this level or a given word (matched case-insensitively), e.g. error
    #[arg(long)]
    pub level: Option<String>,
    /// A full LogQL log query instead of the service's stream
    #[arg(long, conflicts_with = "level")]
    pub query: Option<String>,
    /// Most lines to print (1-5000, Loki's per-query maximum)
    #[arg(long, default_value_t = 200, allow_negative_numbers = true)]
    pub limit: i64,
}

/// Loki's default `max_entries_limit_per_query`.
const MAX_LIMIT: u32 = 5000;

impl LogsArgs {
    pub fn run(self, project: &Project) -> anyhow::Result<()> {
        // Input first: a typo costs no AWS call.
        let since = logql::parse_duration(&self.since).map_err(usage)?;
        let Some(limit) = u32::try_from(self.limit).ok().filter(|l| (1..=MAX_LIMIT).contains(l)) else {
            bail!(usage(format!("--limit {}: expected 1 to {MAX_LIMIT} (Loki's per-query maximum)", self.limit)));
        };
        if self.service == "loki" {
            bail!(usage(
                "Loki's own logs are not in Loki (they stay in CloudWatch, readable when Loki is down): \
                 `aws logs tail <loki_log_group_name> --since 10m` (the name is the Terraform output loki_log_group_name)"
            ));
        }
        let query = match &self.query {
            Some(query) => query.clone(),
            None => {
                let service = settings::check_service_name(&self.service).map_err(usage)?;
                build_query(service, self.level.as_deref())
            }
        };
        let env = Environment::load(&project.root, &self.env).map_err(usage)?;
        crate::phase::order::loki_deployed(&env).map_err(|why| usage(format!("no logs to read yet: {why}")))?;
        require_plugin()?;
        let live = Live::connect(project, env)?;
        let loki_service = live.output_str("loki_service_name", "cargo xtask deploy loki --execute")?;
        let tunnel = Tunnel::open(&live, &Endpoint { what: "Loki", service: &loki_service, port: LOKI_PORT })?;
        let mut lines = Loki::new(&tunnel.base_url(), Http::default()).query_range(&query, since, limit)?;
        drop(tunnel);
        // Loki answers newest first (direction=backward keeps the newest when --limit cuts).
        lines.sort_by_key(|l| l.ts_ns);
        for line in &lines {
            println!("{}", format_line(line));
        }
        if lines.is_empty() {
            eprintln!("no line matched {query} in the last {}", self.since);
            let on_adot = live.env.settings.services.get(&self.service).is_some_and(|s| s.collector == Collector::Adot);
            if self.query.is_none() && on_adot {
                eprintln!("{} still uses the ADOT collector: its logs are in CloudWatch until `cargo xtask migrate-sidecars --service {}`", self.service, self.service);
            }
        } else {
            eprintln!("{} line(s) for {query}", lines.len());
        }
        Ok(())
    }
}

/// `{service_name="<svc>"}`, plus a case-insensitive line filter for `--level`.
pub fn build_query(service: &str, level: Option<&str>) -> String {
    let mut query = logql::selector(&[("service_name", service)]);
    if let Some(level) = level.filter(|l| !l.is_empty()) {
        query.push(' ');
        query.push_str(&logql::contains_ignoring_case(level));
    }
    query
}

/// `2026-01-02T03:04:05.678Z container line`.
pub fn format_line(line: &LogLine) -> String {
    let container = line.labels.get("container").map(String::as_str).unwrap_or("-");
    format!("{} {container} {}", rfc3339_millis(line.ts_ns), line.line.trim_end())
}

/// UTC RFC 3339 with milliseconds from nanoseconds since the epoch.
pub(crate) fn rfc3339_millis(ts_ns: u128) -> String {
    let secs = (ts_ns / 1_000_000_000) as i64;
    let millis = (ts_ns / 1_000_000 % 1000) as u32;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = probes::time::civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_select_the_service_and_filter_the_level_in_any_case() {
        assert_eq!(build_query("worker", None), r#"{service_name="worker"}"#);
        assert_eq!(build_query("history", Some("error")), r#"{service_name="history"} |~ "(?i)error""#);
    }

    #[test]
    fn lines_print_as_utc_timestamp_container_and_text() {
        let line = LogLine {
            ts_ns: 1_700_000_000_123_456_789,
            labels: [("container".to_string(), "temporal-worker".to_string())].into(),
            line: "{\"level\":\"info\"}\n".into(),
        };
        assert_eq!(format_line(&line), "2023-11-14T22:13:20.123Z temporal-worker {\"level\":\"info\"}");
        assert_eq!(rfc3339_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_millis(951_782_400_000_000_000), "2000-02-29T00:00:00.000Z");
    }
}

//! Loki's HTTP API (v3.7): readiness, log queries, labels, push, flush and metrics.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use serde_json::{json, Value};

use crate::http::{url, Http};

pub struct Loki {
    base: String,
    http: Http,
}

/// One log entry of a stream result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// Nanoseconds since the Unix epoch.
    pub ts_ns: u128,
    pub labels: BTreeMap<String, String>,
    pub line: String,
}

pub fn now_ns() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
}

impl Loki {
    /// `base` is e.g. `http://127.0.0.1:40123` (the local end of a tunnel).
    pub fn new(base: &str, http: Http) -> Loki {
        Loki { base: base.trim_end_matches('/').to_string(), http }
    }

    /// `GET /ready`: the body ("ready") on 200, else an error with Loki's reason.
    pub fn ready(&self) -> anyhow::Result<String> {
        let answer = self.http.get(&url(&self.base, "/ready", &[]), &[])?.expect(200, "Loki /ready")?;
        Ok(answer.body.trim().to_string())
    }

    /// Log lines matching `query` over the last `since`, newest first (as Loki returns them with
    /// `direction=backward`), at most `limit`.
    pub fn query_range(&self, query: &str, since: Duration, limit: u32) -> anyhow::Result<Vec<LogLine>> {
        let end = now_ns();
        self.lines_between(query, end.saturating_sub(since.as_nanos()), end, limit, "backward")
    }

    /// Log lines matching `query` in `[start_ns, end_ns]`, at most `limit`, `direction`
    /// `forward` (oldest first) or `backward`.
    pub fn lines_between(
        &self,
        query: &str,
        start_ns: u128,
        end_ns: u128,
        limit: u32,
        direction: &str,
    ) -> anyhow::Result<Vec<LogLine>> {
        let (start, end, limit) = (start_ns.to_string(), end_ns.to_string(), limit.to_string());
        let params = [("query", query), ("start", &start), ("end", &end), ("limit", &limit), ("direction", direction)];
        let answer = self
            .http
            .get(&url(&self.base, "/loki/api/v1/query_range", &params), &[])?
            .expect(200, &format!("Loki query_range for {query}"))?;
        parse_streams(&answer.json("Loki query_range")?).with_context(|| format!("reading Loki's answer to {query}"))
    }

    /// A metric query (`sum by (…) (count_over_time(…))`) evaluated at `start`, `start + step`, …
    /// `end` (seconds since the epoch): each series with its samples.
    pub fn metric_range(&self, query: &str, start_s: u64, end_s: u64, step_s: u64) -> anyhow::Result<Vec<Series>> {
        let ns = |s: u64| (s as u128 * 1_000_000_000).to_string();
        let (start, end, step) = (ns(start_s), ns(end_s), step_s.to_string());
        let params = [("query", query), ("start", &start), ("end", &end), ("step", &step)];
        let answer = self
            .http
            .get(&url(&self.base, "/loki/api/v1/query_range", &params), &[])?
            .expect(200, &format!("Loki query_range for {query}"))?;
        parse_matrix(&answer.json("Loki query_range")?).with_context(|| format!("reading Loki's answer to {query}"))
    }

    /// Label names of the streams matching `selector` over the last `since`.
    pub fn labels(&self, selector: &str, since: Duration) -> anyhow::Result<Vec<String>> {
        let end = now_ns();
        let (start, end) = (end.saturating_sub(since.as_nanos()).to_string(), end.to_string());
        let params = [("query", selector), ("start", start.as_str()), ("end", end.as_str())];
        let answer =
            self.http.get(&url(&self.base, "/loki/api/v1/labels", &params), &[])?.expect(200, "Loki labels")?;
        parse_labels(&answer.json("Loki labels")?)
    }

    /// Pushes one line (JSON push API; 204 on success).
    pub fn push(&self, labels: &[(&str, &str)], line: &str) -> anyhow::Result<()> {
        let stream: serde_json::Map<String, Value> = labels.iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
        let body = json!({"streams": [{"stream": stream, "values": [[now_ns().to_string(), line]]}]});
        self.http
            .post(
                &url(&self.base, "/loki/api/v1/push", &[]),
                &[("Content-Type", "application/json")],
                body.to_string().as_bytes(),
            )?
            .expect(204, "Loki push")?;
        Ok(())
    }

    /// `POST /loki/api/v1/push` in Alloy's shape (protobuf, snappy): Loki's status and answer,
    /// whatever they are (the caller counts 429s).
    pub fn push_protobuf(&self, streams: &[crate::push::Stream]) -> anyhow::Result<(u16, String)> {
        let response = self.http.post(
            &url(&self.base, "/loki/api/v1/push", &[]),
            &[("Content-Type", "application/x-protobuf")],
            &crate::push::encode(streams),
        )?;
        Ok((response.status, response.body))
    }

    /// `POST /loki/api/v1/delete`: a delete request for the lines of `selector` between two
    /// Unix seconds (the compactor removes them; queries stop returning them at once).
    pub fn delete(&self, selector: &str, start_s: u64, end_s: u64) -> anyhow::Result<()> {
        let (start, end) = (start_s.to_string(), end_s.to_string());
        let query = [("query", selector), ("start", start.as_str()), ("end", end.as_str())];
        self.http
            .post(&url(&self.base, "/loki/api/v1/delete", &query), &[], b"")?
            .expect(204, "Loki delete request")?;
        Ok(())
    }

    /// `POST /flush`: ingesters write their in-memory chunks to the object store now.
    pub fn flush(&self) -> anyhow::Result<()> {
        self.http.post(&url(&self.base, "/flush", &[]), &[], b"")?.expect(204, "Loki /flush")?;
        Ok(())
    }

    /// The Prometheus text of `/metrics`.
    pub fn metrics(&self) -> anyhow::Result<String> {
        Ok(self.http.get(&url(&self.base, "/metrics", &[]), &[])?.expect(200, "Loki /metrics")?.body)
    }
}

/// The entries of a `query_range` answer with `resultType: streams`, in the order given.
pub fn parse_streams(answer: &Value) -> anyhow::Result<Vec<LogLine>> {
    if answer["status"] != "success" {
        bail!("status is {} rather than \"success\"", answer["status"]);
    }
    let data = &answer["data"];
    if data["resultType"] != "streams" {
        bail!("resultType is {}, not \"streams\": a metric query is not a log query", data["resultType"]);
    }
    let mut lines = Vec::new();
    for stream in data["result"].as_array().context("data.result is not a list")? {
        let labels: BTreeMap<String, String> = stream["stream"]
            .as_object()
            .context("a result has no `stream` labels")?
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
            .collect();
        for value in stream["values"].as_array().context("a stream has no `values`")? {
            let ts_ns = value[0]
                .as_str()
                .and_then(|ts| ts.parse().ok())
                .context("an entry's timestamp is not a nanosecond string")?;
            let line = value[1].as_str().context("an entry's line is not a string")?.to_string();
            lines.push(LogLine { ts_ns, labels: labels.clone(), line });
        }
    }
    Ok(lines)
}

/// One series of a metric query: its labels and `(seconds since the epoch, value)` samples.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub labels: BTreeMap<String, String>,
    pub samples: Vec<(u64, f64)>,
}

/// The series of a `query_range` answer with `resultType: matrix`.
pub fn parse_matrix(answer: &Value) -> anyhow::Result<Vec<Series>> {
    if answer["status"] != "success" {
        bail!("status is {} rather than \"success\"", answer["status"]);
    }
    let data = &answer["data"];
    if data["resultType"] != "matrix" {
        bail!("resultType is {}, not \"matrix\": a log query is not a metric query", data["resultType"]);
    }
    let mut series = Vec::new();
    for result in data["result"].as_array().context("data.result is not a list")? {
        let labels = result["metric"]
            .as_object()
            .context("a result has no `metric` labels")?
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
            .collect();
        let mut samples = Vec::new();
        for value in result["values"].as_array().context("a series has no `values`")? {
            let at = value[0].as_f64().context("a sample's time is not a number")? as u64;
            let v =
                value[1].as_str().and_then(|v| v.parse().ok()).context("a sample's value is not a number string")?;
            samples.push((at, v));
        }
        series.push(Series { labels, samples });
    }
    Ok(series)
}

/// `{"status":"success","data":["label",…]}`.
pub fn parse_labels(answer: &Value) -> anyhow::Result<Vec<String>> {
    if answer["status"] != "success" {
        bail!("status is {} rather than \"success\"", answer["status"]);
    }
    Ok(answer["data"]
        .as_array()
        .context("data is not a list")?
        .iter()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect())
}

/// The sum of every sample of `name` (all label sets) in Prometheus text, or None if absent.
pub fn metric_sum(text: &str, name: &str) -> Option<f64> {
    let mut found = None;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some(rest) = line.strip_prefix(name) else { continue };
        // Only this metric, not one whose name merely starts the same.
        if !(rest.starts_with('{') || rest.starts_with(' ')) {
            continue;
        }
        let value = rest.rsplit_once('}').map_or(rest, |(_, v)| v).split_whitespace().next()?;
        if let Ok(v) = value.parse::<f64>() {
            *found.get_or_insert(0.0) += v;
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_streams_shape() {
        let answer = json!({"status": "success", "data": {"resultType": "streams", "result": [
            {"stream": {"service_name": "worker", "container": "temporal-worker"},
             "values": [["1700000000000000002", "b"], ["1700000000000000001", "a"]]}
        ], "stats": {}}});
        let lines = parse_streams(&answer).unwrap();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].ts_ns, 1_700_000_000_000_000_002);
        assert_eq!(lines[0].labels["container"], "temporal-worker");
        assert_eq!(lines[1].line, "a");
    }

    #[test]
    fn a_metric_answer_is_not_a_log_answer() {
        let matrix = json!({"status": "success", "data": {"resultType": "matrix", "result": []}});
        assert!(format!("{:#}", parse_streams(&matrix).unwrap_err()).contains("not a log query"));
        assert!(parse_streams(&json!({"status": "error"})).is_err());
    }

    #[test]
    fn parses_the_documented_matrix_shape() {
        let answer = json!({"status": "success", "data": {"resultType": "matrix", "result": [
            {"metric": {"container": "temporal-worker"}, "values": [[1700000100, "3"], [1700000400.0, "0"]]}
        ]}});
        let series = parse_matrix(&answer).unwrap();
        assert_eq!(series[0].labels["container"], "temporal-worker");
        assert_eq!(series[0].samples, [(1_700_000_100, 3.0), (1_700_000_400, 0.0)]);
        let streams = json!({"status": "success", "data": {"resultType": "streams", "result": []}});
        assert!(format!("{:#}", parse_matrix(&streams).unwrap_err()).contains("not a metric query"));
    }

    #[test]
    fn parses_labels() {
        let answer = json!({"status": "success", "data": ["cluster", "container", "service_name"]});
        assert_eq!(parse_labels(&answer).unwrap(), ["cluster", "container", "service_name"]);
    }

    #[test]
    fn sums_a_metric_over_its_label_sets() {
        let text = "# HELP x\nloki_distributor_lines_received_total{tenant=\"fake\"} 5\n\
                    loki_distributor_lines_received_total{tenant=\"other\"} 2\n\
                    loki_distributor_lines_received_total_extra 100\nplain 3\n";
        assert_eq!(metric_sum(text, "loki_distributor_lines_received_total"), Some(7.0));
        assert_eq!(metric_sum(text, "plain"), Some(3.0));
        assert_eq!(metric_sum(text, "absent"), None);
    }
}

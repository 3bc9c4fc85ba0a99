//! Checkpoint reports: named checks that pass or fail, as a table or as JSON.

use serde_json::json;

#[derive(Debug, Clone)]
pub struct CheckResult {
    pub name: String,
    pub passed: bool,
    /// What was seen: the evidence on success, the problem and its fix on failure.
    pub detail: String,
    /// Passed, but with something the operator should know (the detail says what and the fix).
    pub warning: bool,
}

#[derive(Debug, Clone)]
pub struct Report {
    /// e.g. "2", "5 (worker)".
    pub checkpoint: String,
    pub checks: Vec<CheckResult>,
}

impl Report {
    pub fn new(checkpoint: impl Into<String>) -> Report {
        Report { checkpoint: checkpoint.into(), checks: Vec::new() }
    }

    /// Records the outcome of one check; an error is a failed check with the error as detail.
    pub fn check(&mut self, name: impl Into<String>, outcome: anyhow::Result<String>) -> bool {
        let (passed, detail) = match outcome {
            Ok(evidence) => (true, evidence),
            Err(err) => (false, format!("{err:#}")),
        };
        self.checks.push(CheckResult { name: name.into(), passed, detail, warning: false });
        passed
    }

    /// Like [`Report::check`], but `Err` is a warning: the check passes and says why it worries.
    pub fn warn(&mut self, name: impl Into<String>, outcome: anyhow::Result<String>) {
        let (warning, detail) = match outcome {
            Ok(evidence) => (false, evidence),
            Err(err) => (true, format!("{err:#}")),
        };
        self.checks.push(CheckResult { name: name.into(), passed: true, detail, warning });
    }

    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.passed)
    }

    pub fn merge(&mut self, other: Report) {
        self.checks.extend(other.checks);
    }

    pub fn table(&self) -> String {
        let width = self.checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
        let mut out = format!("checkpoint {}: {}\n", self.checkpoint, if self.passed() { "PASS" } else { "FAIL" });
        for check in &self.checks {
            let verdict = match (check.passed, check.warning) {
                (false, _) => "FAIL",
                (true, true) => "WARN",
                (true, false) => "pass",
            };
            out.push_str(&format!("  {verdict}  {:width$}  {}\n", check.name, check.detail.replace('\n', " ")));
        }
        out
    }

    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "checkpoint": self.checkpoint,
            "passed": self.passed(),
            "checks": self.checks.iter().map(|c| json!({"name": c.name, "passed": c.passed, "warning": c.warning, "detail": c.detail})).collect::<Vec<_>>(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_fails_when_any_check_fails_and_says_which() {
        let mut report = Report::new("2");
        report.check("loki ready", Ok("200 ready".into()));
        report.check("s3 writes", Err(anyhow::format_err!("no objects under index/")));
        assert!(!report.passed());
        let table = report.table();
        assert!(table.starts_with("checkpoint 2: FAIL\n"), "{table}");
        assert!(table.contains("FAIL  s3 writes   no objects under index/"), "{table}");
        assert_eq!(report.to_json()["checks"][1]["passed"], false);
    }

    #[test]
    fn a_warning_passes_and_says_so() {
        let mut report = Report::new("2");
        report.warn("loki replicas in distinct AZs", Err(anyhow::format_err!("two in eu-west-1a")));
        assert!(report.passed());
        assert!(
            report.table().contains("WARN  loki replicas in distinct AZs  two in eu-west-1a"),
            "{}",
            report.table()
        );
        assert_eq!(report.to_json()["checks"][0]["warning"], true);
    }
}

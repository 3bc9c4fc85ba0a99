//! `cargo xtask requirements`: which tests and live checks cover each requirement of
//! `requirements.toml`; fails when an offline-checkable requirement has no test or when a test
//! names a requirement that does not exist.
//!
//! # The convention
//!
//! A test names the requirements it checks in one or both of two ways; its requirements are the
//! union of the two.
//!
//! 1. **Its name** starts with `req_`, then one or more ids joined by `_req_`, then what it checks:
//!    - an id is `<section>_<item>` for a numbered requirement (`2_3` is 2.3, `10_5` is 10.5),
//!      `nf<n>` for a non-functional one (`nf6` is NF6) or `p<n>` for a property (`p4` is P4);
//!    - the tests are terraform `run "<name>" {` blocks in `*.tftest.hcl` files and Rust functions
//!      marked `#[test]` (also inside `proptest! { … }`);
//!    - examples: `req_2_3_lifecycle_scoped_to_chunks` (2.3), `req_3_5_req_3_6_pipeline` (3.5 and
//!      3.6), `req_p6_req_2_3_lifecycle_outlasts_retention` (P6 and 2.3).
//!
//!    A name that starts with `req_` must continue with an id: `req_5_retention…` (a section, not a
//!    requirement) and `req_safe_shutdown…` (no id) are reported as problems.
//! 2. **A tag comment** whose text starts with `req:`, followed by canonical ids separated by
//!    commas or spaces (`2.3`, `NF6`, `P4`; letters in any case), among the comment and attribute
//!    lines directly above the test: `// req: 3.8, P2` above `#[test]` in Rust, `# req: 2.3` (or
//!    `// req: 2.3`) above `run "…" {` in HCL. A blank line ends the block, so a tag separated from
//!    its test by a blank line, or above anything that is not a test, is reported as a problem.
//!
//! Scanned: every `*.rs` and `*.tftest.hcl` file below the repository root, skipping directories
//! named `target`, `fixtures` or `node_modules` and hidden ones (`.git`, `.tools`). A plain file
//! walk, no parsing beyond lines: the report reflects whatever the tree holds at the time.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;

use anyhow::{bail, format_err, Context};
use clap::Args;
use serde::{Deserialize, Serialize};

use crate::project::Project;

#[derive(Debug, Args)]
pub struct RequirementsArgs {
    /// Print the report as JSON on stdout (still exits 1 on gaps)
    #[arg(long)]
    pub json: bool,
}

/// The requirements file at the repository root.
pub const REQUIREMENTS_FILE: &str = "requirements.toml";

const SKIPPED_DIRS: &[&str] = &["target", "fixtures", "node_modules"];

impl RequirementsArgs {
    pub fn run(self, project: &Project) -> anyhow::Result<()> {
        let report = build(&project.root)?;
        if self.json {
            println!("{}", serde_json::to_string_pretty(&report.to_json())?);
        } else {
            print!("{}", report.table());
        }
        report.verdict()
    }
}

/// The `requirements` stage of `cargo xtask check`: only the problems, not the whole table.
pub fn check(project: &Project) -> anyhow::Result<()> {
    let report = build(&project.root)?;
    let covered = report.rows.iter().filter(|row| !row.tests.is_empty()).count();
    eprintln!(
        "    {covered} of {} requirements named by {} tests (`cargo xtask requirements` lists them)",
        report.rows.len(),
        report.tests
    );
    report.verdict()
}

/// Reads the requirements and scans the tree below `root`.
pub fn build(root: &Path) -> anyhow::Result<Report> {
    let path = root.join(REQUIREMENTS_FILE);
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!("reading {}; it lists the requirements (see README, \"Requirement traceability\")", path.display())
    })?;
    let requirements = parse_requirements(&text).with_context(|| format!("in {}", path.display()))?;
    let scan = scan(root)?;
    Ok(Report::new(requirements, scan))
}

// ---------------------------------------------------------------------------------------------
// requirements.toml

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Requirement {
    pub id: String,
    pub statement: String,
    /// Whether a test without AWS can establish it.
    pub offline: bool,
    /// The command that checks it against a deployed environment, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RequirementsFile {
    requirement: Vec<Requirement>,
}

pub fn parse_requirements(text: &str) -> anyhow::Result<Vec<Requirement>> {
    let file: RequirementsFile = toml::from_str(text).map_err(|err| format_err!("{}", err.to_string().trim_end()))?;
    let mut seen = BTreeSet::new();
    let mut problems = Vec::new();
    for requirement in &file.requirement {
        if canonical_id(&requirement.id).as_deref() != Some(requirement.id.as_str()) {
            problems.push(format!("id {:?}: write it as 2.3, NF6 or P4", requirement.id));
        }
        if !seen.insert(requirement.id.clone()) {
            problems.push(format!("id {} is listed twice", requirement.id));
        }
        if requirement.statement.trim().is_empty() {
            problems.push(format!("id {} has an empty statement", requirement.id));
        }
    }
    if !problems.is_empty() {
        bail!("invalid requirements:\n  - {}", problems.join("\n  - "));
    }
    Ok(file.requirement)
}

/// `2.3`, `nf6`, `P4` → `2.3`, `NF6`, `P4`; `None` for anything else.
pub fn canonical_id(token: &str) -> Option<String> {
    let upper = token.trim().to_ascii_uppercase();
    let is_number = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && !s.starts_with('0');
    if let Some((section, item)) = upper.split_once('.') {
        return (is_number(section) && is_number(item)).then_some(upper);
    }
    for prefix in ["NF", "P"] {
        if let Some(n) = upper.strip_prefix(prefix) {
            return is_number(n).then_some(upper);
        }
    }
    None
}

// ---------------------------------------------------------------------------------------------
// Scanning the tree

/// A test found in the tree, with the requirement ids it names (canonical form).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Test {
    pub name: String,
    /// Path relative to the repository root, with `/`.
    pub file: String,
    pub line: usize,
    pub kind: TestKind,
    pub ids: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TestKind {
    Terraform,
    Rust,
}

/// Something in the tree that breaks the convention, at a file and line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub file: String,
    pub line: usize,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.message)
    }
}

#[derive(Debug, Default)]
pub struct Scan {
    pub tests: Vec<Test>,
    pub problems: Vec<Problem>,
}

/// Every test and convention problem in the `*.rs` and `*.tftest.hcl` files below `root`.
pub fn scan(root: &Path) -> anyhow::Result<Scan> {
    let mut files = Vec::new();
    walk(root, root, &mut files)?;
    files.sort_by(|a, b| a.0.cmp(&b.0));
    let mut scan = Scan::default();
    for (rel, kind) in files {
        let path = root.join(&rel);
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        scan_text(&rel, kind, &text, &mut scan);
    }
    Ok(scan)
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, TestKind)>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let entry = entry.with_context(|| format!("reading {}", dir.display()))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let file_type = entry.file_type()?;
        if file_type.is_dir() {
            if !name.starts_with('.') && !SKIPPED_DIRS.contains(&name.as_ref()) {
                walk(root, &entry.path(), out)?;
            }
            continue;
        }
        let kind = if name.ends_with(".tftest.hcl") {
            TestKind::Terraform
        } else if name.ends_with(".rs") {
            TestKind::Rust
        } else {
            continue;
        };
        let path = entry.path();
        let rel = path.strip_prefix(root).unwrap_or(&path);
        let rel = rel.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/");
        out.push((rel, kind));
    }
    Ok(())
}

/// The comment and attribute lines directly above the line being read.
#[derive(Default)]
struct Block {
    /// `req:` tags seen, with their line numbers.
    tags: Vec<(usize, Result<Vec<String>, String>)>,
    /// A Rust `#[test]` attribute was seen.
    test_attribute: bool,
}

impl Block {
    /// Ends the block above something that is not a test: its tags are dangling.
    fn close(&mut self, file: &str, scan: &mut Scan) {
        for (line, _) in self.tags.drain(..) {
            scan.problems.push(Problem {
                file: file.to_string(),
                line,
                message: "a `req:` tag that is not directly above a test (no blank line between); move it or remove it"
                    .into(),
            });
        }
        self.test_attribute = false;
    }
}

/// Finds the tests of one file.
pub fn scan_text(file: &str, kind: TestKind, text: &str, scan: &mut Scan) {
    let mut block = Block::default();
    for (index, raw) in text.lines().enumerate() {
        let number = index + 1;
        let line = raw.trim();
        if line.is_empty() {
            block.close(file, scan);
            continue;
        }
        if let Some(comment) = comment_text(line, kind) {
            if let Some(tag) = comment.strip_prefix("req:") {
                block.tags.push((number, parse_tag(tag)));
            }
            continue;
        }
        if kind == TestKind::Rust && line.starts_with("#") {
            // An attribute; `#[test] fn name()` may share the line.
            if let Some(rest) = line.strip_prefix("#[test]") {
                block.test_attribute = true;
                if let Some(name) = rust_fn_name(rest.trim()) {
                    record(file, kind, number, name, &mut block, scan);
                }
            }
            continue;
        }
        let name = match kind {
            TestKind::Terraform => terraform_run_name(line),
            TestKind::Rust if block.test_attribute => rust_fn_name(line),
            TestKind::Rust => None,
        };
        match name {
            Some(name) => record(file, kind, number, name, &mut block, scan),
            None => block.close(file, scan),
        }
    }
    block.close(file, scan);
}

fn record(file: &str, kind: TestKind, line: usize, name: &str, block: &mut Block, scan: &mut Scan) {
    let mut ids = Vec::new();
    let mut problem = |line: usize, message: String| {
        scan.problems.push(Problem { file: file.to_string(), line, message });
    };
    match parse_name(name) {
        Ok(found) => ids.extend(found),
        Err(why) => problem(line, format!("test `{name}`: {why}")),
    }
    for (tag_line, tag) in block.tags.drain(..) {
        match tag {
            Ok(found) => ids.extend(found),
            Err(why) => problem(tag_line, format!("`req:` tag above `{name}`: {why}")),
        }
    }
    block.test_attribute = false;
    let mut seen = BTreeSet::new();
    ids.retain(|id| seen.insert(id.clone()));
    scan.tests.push(Test { name: name.to_string(), file: file.to_string(), line, kind, ids });
}

/// The text of a whole-line comment, trimmed.
fn comment_text(line: &str, kind: TestKind) -> Option<&str> {
    let text = match kind {
        // `///` and `//!` are comments too.
        TestKind::Rust => line.strip_prefix("//")?.trim_start_matches(['/', '!']),
        TestKind::Terraform => line.strip_prefix('#').or_else(|| line.strip_prefix("//"))?,
    };
    Some(text.trim())
}

/// `run "name" {` → `name`.
fn terraform_run_name(line: &str) -> Option<&str> {
    let rest = line.strip_prefix("run")?.trim_start().strip_prefix('"')?;
    let (name, after) = rest.split_once('"')?;
    after.trim_start().starts_with('{').then_some(name)
}

/// `pub async fn name(…` → `name`.
fn rust_fn_name(line: &str) -> Option<&str> {
    let mut rest = line;
    for qualifier in ["pub(crate) ", "pub ", "async ", "unsafe "] {
        rest = rest.strip_prefix(qualifier).unwrap_or(rest).trim_start();
    }
    let rest = rest.strip_prefix("fn ")?.trim_start();
    let end = rest.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(rest.len());
    (end > 0).then(|| &rest[..end])
}

/// The requirement ids a test name carries: none unless it starts with `req_`.
pub fn parse_name(name: &str) -> Result<Vec<String>, String> {
    let Some(mut rest) = name.strip_prefix("req_") else {
        return Ok(Vec::new());
    };
    let mut ids = Vec::new();
    loop {
        let (id, after) = name_id(rest)?;
        ids.push(id);
        match after.strip_prefix("_req_") {
            Some(next) => rest = next,
            None => return Ok(ids),
        }
    }
}

/// One id at the start of `text` (`2_3…`, `nf6…`, `p4…`) and what follows it.
fn name_id(text: &str) -> Result<(String, &str), String> {
    const HINT: &str = "after `req_` comes a requirement id (`req_2_3_…`, `req_nf6_…`, `req_p4_…`); rename the test or drop the `req_` prefix";
    let digits = |s: &str| s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    // The id must end at `_` or the end of the name.
    let ends = |s: &str| s.is_empty() || s.starts_with('_');
    let section_len = digits(text);
    if section_len > 0 {
        let section = &text[..section_len];
        let after = &text[section_len..];
        let item = after.strip_prefix('_').map(|s| &s[..digits(s)]).unwrap_or("");
        let rest = after.get(1 + item.len()..).unwrap_or("");
        if item.is_empty() || !ends(rest) {
            return Err(format!(
                "`req_{section}` names section {section}, not a requirement; name the requirements, e.g. `req_{section}_1_…`"
            ));
        }
        return Ok((format!("{section}.{item}"), rest));
    }
    for prefix in ["nf", "p"] {
        if let Some(after) = text.strip_prefix(prefix) {
            let n = digits(after);
            if n > 0 && ends(&after[n..]) {
                return Ok((format!("{}{}", prefix.to_ascii_uppercase(), &after[..n]), &after[n..]));
            }
        }
    }
    Err(HINT.into())
}

/// The ids of a `req:` tag's text (after `req:`).
fn parse_tag(text: &str) -> Result<Vec<String>, String> {
    let tokens: Vec<&str> = text.split([',', ' ', '\t']).filter(|t| !t.is_empty()).collect();
    if tokens.is_empty() {
        return Err("no ids after `req:`; write e.g. `req: 2.3, P4`".into());
    }
    tokens
        .iter()
        .map(|token| {
            canonical_id(token).ok_or_else(|| format!("`{token}` is not a requirement id (write 2.3, NF6 or P4)"))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The report

pub struct Row {
    pub requirement: Requirement,
    pub tests: Vec<Test>,
}

pub struct Report {
    pub rows: Vec<Row>,
    /// How many tests name at least one requirement.
    pub tests: usize,
    /// Convention problems and tests naming unknown ids.
    pub problems: Vec<Problem>,
}

impl Report {
    pub fn new(requirements: Vec<Requirement>, scan: Scan) -> Report {
        let known: BTreeSet<&str> = requirements.iter().map(|r| r.id.as_str()).collect();
        let mut problems = scan.problems;
        let mut by_id: BTreeMap<String, Vec<Test>> = BTreeMap::new();
        let mut tests = 0;
        for test in scan.tests {
            if test.ids.is_empty() {
                continue;
            }
            tests += 1;
            for id in &test.ids {
                if known.contains(id.as_str()) {
                    by_id.entry(id.clone()).or_default().push(test.clone());
                } else {
                    problems.push(Problem {
                        file: test.file.clone(),
                        line: test.line,
                        message: format!(
                            "test `{}` names requirement {id}, which {REQUIREMENTS_FILE} does not have; fix the id or add the requirement",
                            test.name
                        ),
                    });
                }
            }
        }
        let rows = requirements
            .into_iter()
            .map(|requirement| {
                let tests = by_id.remove(&requirement.id).unwrap_or_default();
                Row { requirement, tests }
            })
            .collect();
        Report { rows, tests, problems }
    }

    /// Offline-checkable requirements that no test names.
    pub fn missing(&self) -> Vec<&str> {
        self.rows
            .iter()
            .filter(|row| row.requirement.offline && row.tests.is_empty())
            .map(|row| row.requirement.id.as_str())
            .collect()
    }

    /// Fails (exit 1) naming every gap and problem at once.
    pub fn verdict(&self) -> anyhow::Result<()> {
        let missing = self.missing();
        let mut parts = Vec::new();
        if !missing.is_empty() {
            parts.push(format!(
                "{} offline-checkable requirement(s) have no test: {}; add a test named `req_<id>_…` or tagged `// req: <id>`",
                missing.len(),
                missing.join(", ")
            ));
        }
        if !self.problems.is_empty() {
            let list: Vec<String> = self.problems.iter().map(|p| format!("  {p}")).collect();
            parts.push(format!("{} problem(s) with requirement names:\n{}", self.problems.len(), list.join("\n")));
        }
        if !parts.is_empty() {
            bail!("{}", parts.join("\n"));
        }
        Ok(())
    }

    /// The human report: each requirement, its tests and its live check.
    pub fn table(&self) -> String {
        let mut out = String::new();
        for row in &self.rows {
            let r = &row.requirement;
            out.push_str(&format!("{:<5} {}\n", r.id, r.statement));
            if row.tests.is_empty() {
                let why = if r.offline { "NONE (offline-checkable: needs a test)" } else { "none (live only)" };
                out.push_str(&format!("      tests: {why}\n"));
            }
            for test in &row.tests {
                out.push_str(&format!("      test:  {} ({}:{})\n", test.name, test.file, test.line));
            }
            out.push_str(&format!("      live:  {}\n", r.live.as_deref().unwrap_or("none")));
        }
        let covered = self.rows.iter().filter(|row| !row.tests.is_empty()).count();
        out.push_str(&format!(
            "\n{covered} of {} requirements have tests ({} tests name requirements); {} offline-checkable without a test; {} problem(s)\n",
            self.rows.len(),
            self.tests,
            self.missing().len(),
            self.problems.len()
        ));
        out
    }

    pub fn to_json(&self) -> serde_json::Value {
        let rows: Vec<serde_json::Value> = self
            .rows
            .iter()
            .map(|row| {
                serde_json::json!({
                    "id": row.requirement.id,
                    "statement": row.requirement.statement,
                    "offline": row.requirement.offline,
                    "live": row.requirement.live,
                    "tests": row.tests,
                })
            })
            .collect();
        serde_json::json!({
            "requirements": rows,
            "missing": self.missing(),
            "problems": self.problems,
            "passed": self.missing().is_empty() && self.problems.is_empty(),
        })
    }
}

#[cfg(test)]
mod tests;

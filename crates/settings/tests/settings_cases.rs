//! One table of setting values (infra/tests/settings_cases.toml) for both layers: every case
//! against the env-file rules here, and the cases with a Terraform variable as
//! infra/tests/settings_cases.tftest.hcl, which must be what this table generates (`terraform test`
//! in `cargo xtask check` then runs it against infra/variables.tf).

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

const EXAMPLE: &str = include_str!("../../../envs/example.toml");
const TABLE: &str = "../../infra/tests/settings_cases.toml";
const GENERATED: &str = "../../infra/tests/settings_cases.tftest.hcl";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Table {
    case: Vec<Case>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    key: String,
    value: toml::Value,
    ok: bool,
    variable: Option<String>,
    #[serde(default)]
    with: BTreeMap<String, toml::Value>,
}

fn table() -> Vec<Case> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(TABLE);
    let text = std::fs::read_to_string(&path).unwrap();
    toml::from_str::<Table>(&text).unwrap_or_else(|err| panic!("{}: {err}", path.display())).case
}

/// A TOML value as toml_edit's (for the env file) and as HCL (for Terraform).
fn edit_value(value: &toml::Value) -> settings::TomlValue {
    match value {
        toml::Value::String(s) => s.as_str().into(),
        toml::Value::Integer(n) => (*n).into(),
        toml::Value::Float(f) => (*f).into(),
        toml::Value::Array(items) => items.iter().map(edit_value).collect::<toml_edit::Array>().into(),
        other => panic!("no cases of type {}", other.type_str()),
    }
}

fn hcl(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => format!("{:?}", s).replace("${", "$${").replace("%{", "%%{"),
        toml::Value::Integer(n) => n.to_string(),
        toml::Value::Float(f) => f.to_string(),
        toml::Value::Array(items) => format!("[{}]", items.iter().map(hcl).collect::<Vec<_>>().join(", ")),
        other => panic!("no cases of type {}", other.type_str()),
    }
}

/// The env file's answer to a case: `Err` with the message when it is refused.
fn env_file_answer(case: &Case) -> Result<(), String> {
    let mut doc: settings::TomlDocument = EXAMPLE.parse().unwrap();
    let mut env = "example".to_string();
    let mut sets: Vec<(&str, &toml::Value)> = vec![(&case.key, &case.value)];
    sets.extend(case.with.iter().map(|(k, v)| (k.as_str(), v)));
    for (key, value) in sets {
        if key == "env" {
            env = value.as_str().unwrap().to_string();
            continue;
        }
        let keys: Vec<&str> = key.split('.').collect();
        // As `init` does: the example's ARNs follow the region and account.
        if let ("aws.region" | "aws.account_id", Some(text)) = (key, value.as_str()) {
            let s = settings::parse(EXAMPLE).unwrap();
            let (region, account) =
                if key == "aws.region" { (text, s.aws.account_id.as_str()) } else { (s.aws.region.as_str(), text) };
            settings::retarget(&mut doc, region, account);
        }
        settings::set_in_document(&mut doc, &keys, edit_value(value)).unwrap();
    }
    let text = doc.to_string();
    settings::check_env_name(&env).map_err(|e| format!("{e:#}"))?;
    settings::parse_env(Some(&env), &text).map(|_| ()).map_err(|e| format!("{e:#}"))
}

#[test]
fn every_case_gets_the_env_file_answer_the_table_gives() {
    let mut wrong = Vec::new();
    for case in table() {
        let answer = env_file_answer(&case);
        match (&answer, case.ok) {
            (Ok(()), true) => {}
            (Err(message), false) => {
                // The message names the key and the value (the env name: its own wording).
                let named = if case.key == "env" {
                    message.contains(case.value.as_str().unwrap())
                } else {
                    message.contains(&format!("{} = ", case.key))
                };
                if !named {
                    wrong.push(format!("{} = {}: refused without naming it: {message}", case.key, hcl(&case.value)));
                }
            }
            (Ok(()), false) => {
                wrong.push(format!("{} = {}: accepted, the table says refused", case.key, hcl(&case.value)))
            }
            (Err(message), true) => {
                wrong.push(format!("{} = {}: refused, the table says ok: {message}", case.key, hcl(&case.value)))
            }
        }
        if let Some(variable) = &case.variable {
            let mapped = settings::rules::terraform_variable(&case.key);
            if mapped != Some(variable.as_str()) {
                wrong.push(format!("{}: the table says variable {variable}, the rules {mapped:?}", case.key));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// Run blocks that plan the cases: each variable's refused values, then its accepted ones, one per
/// run. Terraform reports every failing validation of a plan and fails a run on any it does not
/// expect, so run `n` checks the `n`-th value of every variable at once.
fn tftest(cases: &[Case]) -> String {
    let mut out = String::from(
        "# Generated from settings_cases.toml by crates/settings/tests/settings_cases.rs; do not edit.\n\
         # UPDATE_SETTINGS_CASES=1 cargo test -p settings --test settings_cases rewrites it.\n\
         # Run n sets each variable's n-th value of the table (refused ones first) and expects exactly\n\
         # the refused ones to fail, so a few plans answer the whole table.\n\n\
         # Variable validations only: without Loki no precondition of its resources runs.\n\
         variables {\n  loki_enabled = false\n}\n\n\
         mock_provider \"aws\" {\n  override_during = plan\n\n  mock_data \"aws_partition\" {\n    defaults = { partition = \"aws\" }\n  }\n}\n",
    );
    let mut columns: BTreeMap<&str, Vec<(bool, String)>> = BTreeMap::new();
    for ok in [false, true] {
        for case in cases.iter().filter(|c| c.ok == ok && c.with.is_empty()) {
            if let Some(variable) = &case.variable {
                columns.entry(variable).or_default().push((ok, hcl(&case.value)));
            }
        }
    }
    let runs = columns.values().map(Vec::len).max().unwrap_or(0);
    for n in 0..runs {
        let row: Vec<(&str, &(bool, String))> =
            columns.iter().filter_map(|(variable, values)| values.get(n).map(|v| (*variable, v))).collect();
        let width = row.iter().map(|(variable, _)| variable.len()).max().unwrap_or(0);
        out.push_str(&format!("\nrun \"settings_cases_{}\" {{\n  command = plan\n\n  variables {{\n", n + 1));
        for (variable, (_, value)) in &row {
            out.push_str(&format!("    {variable:width$} = {value}\n"));
        }
        out.push_str("  }\n");
        let refused: Vec<String> =
            row.iter().filter(|(_, (ok, _))| !ok).map(|(variable, _)| format!("var.{variable}")).collect();
        if !refused.is_empty() {
            out.push_str(&format!("\n  expect_failures = [{}]\n", refused.join(", ")));
        }
        out.push_str("}\n");
    }
    out
}

#[test]
fn the_terraform_test_is_what_the_table_generates() {
    let expected = tftest(&table());
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(GENERATED);
    if std::env::var_os("UPDATE_SETTINGS_CASES").is_some() {
        std::fs::write(&path, &expected).unwrap();
    }
    let actual = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        actual == expected,
        "{} is not what settings_cases.toml generates; run `UPDATE_SETTINGS_CASES=1 cargo test -p settings --test settings_cases`",
        path.display()
    );
}

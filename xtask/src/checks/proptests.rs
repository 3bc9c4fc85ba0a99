//! Property tests (plan task 10) of what the render decides, for any valid settings: the Alloy
//! configs carry the labels and the task filter and pass configcheck (P2, 3.3, 3.8); the log
//! pipeline never rewrites a line (P4, 3.7); the S3 lifecycle outlasts Loki's retention plus the
//! compactor's delete delay (P6, 2.3). They live here because they join the render, configcheck's
//! parsers and the Terraform's lifecycle formula (`cost::terraform`).
//!
//! The lifecycle property splits the work with Terraform: the terraform tests
//! (`infra/tests/loki_storage.tftest.hcl`) prove that the plan's expiration rule is
//! `loki_retention_days + N` on the chunk prefix; this test reads N from `infra/loki-s3.tf` and the
//! retention from the rendered tfvars, and checks the rendered Loki config against them for every
//! retention an env file may set. Running `terraform console` per case would take seconds each.

use std::path::{Path, PathBuf};

use configcheck::alloy::{self, Block, Body, Expr, Statement};
use proptest::prelude::*;
use settings::{Environment, Settings};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask is in the repository").to_path_buf()
}

fn example_settings() -> Settings {
    let text = std::fs::read_to_string(repo_root().join("envs/example.toml")).expect("envs/example.toml");
    settings::parse(&text).expect("the example env is valid")
}

/// An environment from the example with the generated values.
fn env_with(cluster: &str, project: &str, retention_days: u32, task_id_label: bool) -> Environment {
    let mut settings = example_settings();
    settings.alloy.task_id_label = task_id_label;
    settings.platform.ecs_cluster_name = cluster.to_string();
    settings.project.name = project.to_string();
    settings.loki.retention_days = retention_days;
    Environment { name: "prop".into(), path: repo_root().join("envs/prop.toml"), settings }
}

/// Everything the render produces for `env`.
fn render(env: &Environment) -> Vec<render::RenderedFile> {
    render::render_env(&repo_root(), env).expect("the render succeeds")
}

/// The rendered file `name`.
fn file<'f>(files: &'f [render::RenderedFile], name: &str) -> &'f str {
    files
        .iter()
        .find(|f| f.path.file_name().is_some_and(|n| n == name))
        .unwrap_or_else(|| panic!("the render has no {name}"))
        .contents
        .as_str()
}

// ---------------------------------------------------------------------------------------------
// Small readers over configcheck's Alloy syntax tree

fn blocks<'b>(body: &'b Body, name: &str) -> Vec<&'b Block> {
    body.statements
        .iter()
        .filter_map(|s| match s {
            Statement::Block(b) if b.name == name => Some(b),
            _ => None,
        })
        .collect()
}

fn the_block<'b>(body: &'b Body, name: &str) -> &'b Block {
    let found = blocks(body, name);
    assert_eq!(found.len(), 1, "expected one `{name}` block, found {}", found.len());
    found[0]
}

fn attribute<'b>(block: &'b Block, name: &str) -> Option<&'b Expr> {
    block.body.statements.iter().find_map(|s| match s {
        Statement::Attribute(a) if a.name == name => Some(&a.value),
        _ => None,
    })
}

fn string(expr: &Expr) -> Option<&str> {
    match expr {
        Expr::String(s, _) => Some(s),
        _ => None,
    }
}

fn object_field<'e>(expr: &'e Expr, key: &str) -> Option<&'e Expr> {
    match expr {
        Expr::Object(fields, _) => fields.iter().find(|(k, _)| k == key).map(|(_, v)| v),
        _ => None,
    }
}

fn dotted(expr: Option<&Expr>) -> String {
    expr.and_then(Expr::dotted).map(|p| p.join(".")).unwrap_or_default()
}

/// Environment names the Alloy container gets from its task definition (infra/alloy-sidecar.tf).
const SIDECAR_ENV: &[&str] = &["ALLOY_CONFIG", "GOMEMLIMIT"];

/// Stages of `loki.process` that leave the line byte for byte as it came (they read it, or touch
/// labels, metadata or the timestamp only) and drop nothing. Anything else may rewrite or lose a
/// line: stage.output, stage.replace, stage.template (with output), stage.pack, stage.decolorize,
/// stage.luhn, stage.docker, stage.cri, stage.multiline, stage.drop, stage.limit, stage.sampling.
const LINE_PRESERVING_STAGES: &[&str] = &[
    "stage.structured_metadata",
    "stage.labels",
    "stage.static_labels",
    "stage.label_drop",
    "stage.label_keep",
    "stage.json",
    "stage.logfmt",
    "stage.regex",
    "stage.timestamp",
    "stage.metrics",
    "stage.tenant",
];

/// Every stage in a `loki.process` body (recursing into stage.match) that is not line-preserving.
fn line_changing_stages(body: &Body, out: &mut Vec<String>) {
    for statement in &body.statements {
        if let Statement::Block(b) = statement {
            if b.name == "stage.match" {
                line_changing_stages(&b.body, out);
            } else if b.name.starts_with("stage.") && !LINE_PRESERVING_STAGES.contains(&b.name.as_str()) {
                out.push(format!("{} at line {}", b.name, b.pos.line));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Strategies: what an env file may hold (settings::parse's rules, ECS's name rules)

/// ECS cluster names: 1-255 letters, digits, hyphens and underscores.
fn cluster_name() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_-]{1,255}"
}

/// project.name: 1-24 of a-z, 0-9 and '-'.
fn project_name() -> impl Strategy<Value = String> {
    "[a-z0-9-]{1,24}"
}

/// loki.retention_days: one of the values CloudWatch accepts (req 5.5).
fn retention_days() -> impl Strategy<Value = u32> {
    prop::sample::select(settings::cloudwatch_retention_days())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// For any valid cluster, project and retention, every sidecar config (each service and Loki's)
    /// parses and passes configcheck, and carries the labels of req 3.8: service_name and cluster
    /// on the stream, container from the ECS container name, task_id as structured metadata; its
    /// Docker discovery is filtered to its own task's ARN (req 3.3).
    // req: P2, 3.3, 3.8
    #[test]
    fn req_p2_alloy_configs_carry_labels_and_task_filter(
        cluster in cluster_name(),
        project in project_name(),
        retention in retention_days(),
        task_id_label in any::<bool>(),
    ) {
        let files = render(&env_with(&cluster, &project, retention, task_id_label));
        for service in render::sidecar_services() {
            let src = file(&files, &format!("alloy-{service}.alloy"));
            let findings = alloy::check_alloy_config(src, SIDECAR_ENV);
            prop_assert!(findings.is_empty(), "alloy-{service}.alloy: {findings:?}\n{src}");
            let body = alloy::parse(src).expect("checked above");

            // Metrics carry the same identity as the logs (and as under ADOT, P3).
            let scrape = the_block(&body, "prometheus.scrape");
            let target = match attribute(scrape, "targets") {
                Some(Expr::Array(items, _)) if items.len() == 1 => &items[0],
                other => panic!("prometheus.scrape targets: {other:?}"),
            };
            prop_assert_eq!(object_field(target, "service_name").and_then(string), Some(service));
            prop_assert_eq!(object_field(target, "cluster").and_then(string), Some(cluster.as_str()));
            prop_assert!(object_field(target, "task_id").is_some());

            if service == "loki" {
                // Loki's sidecar ships no logs (its logs stay in CloudWatch).
                prop_assert!(blocks(&body, "loki.source.docker").is_empty());
                continue;
            }
            let source = the_block(&body, "loki.source.docker");
            let labels = attribute(source, "labels").expect("loki.source.docker labels");
            prop_assert_eq!(object_field(labels, "service_name").and_then(string), Some(service));
            prop_assert_eq!(object_field(labels, "cluster").and_then(string), Some(cluster.as_str()));

            // The source reads relabelled targets of a discovery filtered by this task's ARN.
            let relabel = the_block(&body, "discovery.relabel");
            let discovery = the_block(&body, "discovery.docker");
            let relabel_label = relabel.label.clone().unwrap_or_default();
            let discovery_label = discovery.label.clone().unwrap_or_default();
            prop_assert_eq!(dotted(attribute(source, "targets")), format!("discovery.relabel.{relabel_label}.output"));
            prop_assert_eq!(dotted(attribute(relabel, "targets")), format!("discovery.docker.{discovery_label}.targets"));
            let filter = the_block(&discovery.body, "filter");
            prop_assert_eq!(attribute(filter, "name").and_then(string), Some("label"));
            let filters_by_task = match attribute(filter, "values") {
                Some(Expr::Array(values, _)) => values.iter().any(|v| matches!(
                    v,
                    Expr::Binary("+", left, _, _) if string(left) == Some("com.amazonaws.ecs.task-arn=")
                )),
                _ => false,
            };
            prop_assert!(filters_by_task, "discovery.docker is not filtered by the task ARN");

            // container and task_id come from the ECS labels of each container.
            let targets: Vec<&str> = blocks(&relabel.body, "rule")
                .into_iter()
                .filter_map(|rule| attribute(rule, "target_label").and_then(string))
                .collect();
            prop_assert!(targets.contains(&"container") && targets.contains(&"task_id"), "{targets:?}");
            // task_id is structured metadata unless the env opts in to the label (amended 3.8).
            let process = the_block(&body, "loki.process");
            let metadata = blocks(&process.body, "stage.structured_metadata");
            let as_metadata = metadata.iter().any(|m| attribute(m, "values").and_then(|v| object_field(v, "task_id")).is_some());
            prop_assert_eq!(as_metadata, !task_id_label);
        }
    }

    /// For any valid settings, lines go from loki.source.docker through loki.process stages that
    /// leave every line as it came, to loki.write: a JSON line reaches Loki byte for byte and
    /// stays queryable with `| json`.
    // req: P4, 3.7
    #[test]
    fn req_p4_pipeline_never_rewrites_a_line(
        cluster in cluster_name(),
        project in project_name(),
        retention in retention_days(),
        task_id_label in any::<bool>(),
    ) {
        let files = render(&env_with(&cluster, &project, retention, task_id_label));
        for service in settings::SERVICE_NAMES {
            let src = file(&files, &format!("alloy-{service}.alloy"));
            let body = alloy::parse(src).map_err(|f| TestCaseError::fail(f.to_string()))?;
            let source = the_block(&body, "loki.source.docker");
            let process = the_block(&body, "loki.process");
            let process_label = process.label.clone().unwrap_or_default();
            let forwards = |block: &Block| -> Vec<String> {
                match attribute(block, "forward_to") {
                    Some(Expr::Array(items, _)) => items.iter().map(|i| dotted(Some(i))).collect(),
                    _ => Vec::new(),
                }
            };
            prop_assert_eq!(forwards(source), vec![format!("loki.process.{process_label}.receiver")]);
            let sinks = forwards(process);
            prop_assert!(sinks.iter().all(|s| s.starts_with("loki.write.")), "{sinks:?}");
            let mut changing = Vec::new();
            line_changing_stages(&process.body, &mut changing);
            prop_assert!(changing.is_empty(), "alloy-{service}.alloy: stages that may rewrite or drop lines: {changing:?}");
        }
    }

    /// For any retention an env file may set: the rendered Loki config enforces it in the
    /// compactor, and the S3 lifecycle rule (retention from the rendered tfvars + the margin in
    /// infra/loki-s3.tf) expires chunks only after retention + retention_delete_delay + a day of
    /// S3's midnight rounding, with a margin of at least 2 days (req 2.3 amended).
    // req: P6, 2.3, 5.3
    #[test]
    fn req_p6_lifecycle_outlasts_retention_and_delete_delay(retention in retention_days()) {
        let env = env_with("temporal-dev", "temporal-dev", retention, false);
        let files = render(&env);
        let yaml = file(&files, "loki-config.yaml");
        let s = &env.settings;
        let expected = configcheck::loki::Expected {
            retention_days: retention,
            replicas: s.loki.count,
            memory_mib: s.loki.memory,
            sidecar_memory_mib: s.alloy.memory,
            ingestion_mb_per_s: s.loki.ingestion_mb_per_s,
        };
        let findings = configcheck::loki::check_loki_config_for(yaml, &expected);
        prop_assert!(findings.is_empty(), "{findings:?}");
        let loki = crate::commands::cost::loki_inputs(yaml, s.loki.cpu, s.loki.memory, s.loki.count)
            .map_err(|e| TestCaseError::fail(format!("{e:#}")))?;
        prop_assert_eq!(loki.retention_hours, f64::from(retention) * 24.0);

        let tf_retention = crate::commands::cost::terraform::assignment(file(&files, "terraform.tfvars"), "loki_retention_days").expect("tfvars sets it");
        let margin = crate::commands::cost::terraform::lifecycle_margin_days(&repo_root()).map_err(|e| TestCaseError::fail(format!("{e:#}")))?;
        prop_assert!(margin >= 2, "req 2.3: expiration must be at least retention + 2 days, is + {margin}");
        let lifecycle_hours = (tf_retention + f64::from(margin)) * 24.0;
        prop_assert!(
            lifecycle_hours >= loki.retention_hours + loki.delete_delay_hours + 24.0,
            "lifecycle {lifecycle_hours} h vs retention {} h + delete delay {} h + 24 h",
            loki.retention_hours,
            loki.delete_delay_hours
        );
    }
}

#[test]
fn the_line_stage_check_sees_rewriting_stages() {
    let body = alloy::parse(
        "loki.process \"x\" {\n  forward_to = []\n  stage.json {\n    expressions = {}\n  }\n  stage.match {\n    selector = \"{a=\\\"b\\\"}\"\n    stage.output {\n      source = \"msg\"\n    }\n  }\n}\n",
    )
    .unwrap();
    let process = the_block(&body, "loki.process");
    let mut changing = Vec::new();
    line_changing_stages(&process.body, &mut changing);
    assert_eq!(changing, ["stage.output at line 8"]);
}

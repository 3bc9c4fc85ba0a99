//! Each failing case starts from a copy of the repository's `grafana/` and breaks one thing.

use std::path::{Path, PathBuf};

use super::*;

fn repo_grafana() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../grafana")
}

/// A copy of `grafana/` in a temp dir, with `edit` applied to one file's text.
fn copy_with(file: &str, edit: impl FnOnce(String) -> String) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&repo_grafana(), tmp.path());
    let path = tmp.path().join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    std::fs::write(&path, edit(text)).unwrap();
    tmp
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn replace(from: &'static str, to: &'static str) -> impl FnOnce(String) -> String {
    move |text| {
        assert!(text.contains(from), "fixture no longer contains {from:?}");
        text.replacen(from, to, 1)
    }
}

/// Exactly one finding, whose text contains every needle.
fn assert_one(dir: &Path, needles: &[&str]) {
    let findings = check_grafana_dir(dir);
    assert_eq!(findings.len(), 1, "expected one finding, got: {findings:#?}");
    let text = findings[0].to_string();
    for needle in needles {
        assert!(text.contains(needle), "{needle:?} not in {text:?}");
    }
}

// req: 4.3
#[test]
fn the_repository_grafana_dir_passes() {
    let findings = check_grafana_dir(&repo_grafana());
    assert!(findings.is_empty(), "{findings:#?}");
}

fn repo_yaml(file: &str) -> Yaml {
    let text = std::fs::read_to_string(repo_grafana().join(file)).unwrap();
    YamlLoader::load_from_str(&text).unwrap().remove(0)
}

#[test]
fn req_4_1_req_4_2_loki_is_provisioned_at_its_service_connect_name() {
    let doc = repo_yaml("provisioning/datasources/loki.yaml");
    let loki = &doc["datasources"][0];
    assert_eq!(loki["type"].as_str(), Some("loki"));
    assert_eq!(loki["uid"].as_str(), Some("loki"), "dashboards refer to this uid");
    assert_eq!(loki["url"].as_str(), Some("http://loki:3100"));
    assert_eq!(loki["access"].as_str(), Some("proxy"), "the server queries Loki, browsers cannot reach it");
    assert!(loki["jsonData"]["timeout"].as_i64().is_some() && loki["jsonData"]["maxLines"].as_i64().is_some());
}

#[test]
fn req_4_4_the_image_carries_the_provisioning_and_dashboards() {
    let dir = repo_grafana();
    let mut out = Vec::new();
    let copies = check_dockerfile(&std::fs::read_to_string(dir.join("Dockerfile")).unwrap(), &dir, &mut out);
    assert!(out.is_empty(), "{out:#?}");
    assert!(copies.contains(&("provisioning/".into(), "/etc/grafana/provisioning/".into())), "{copies:?}");
    assert!(copies.contains(&("dashboards/".into(), "/etc/grafana/dashboards/".into())), "{copies:?}");
}

#[test]
fn req_9_4_the_loki_health_dashboard_covers_ingestion_rejects_flushes_latency_and_compactor() {
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(repo_grafana().join("dashboards/loki-health.json")).unwrap())
            .unwrap();
    let exprs: Vec<&str> = doc["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().unwrap())
        .filter_map(|t| t["expr"].as_str())
        .collect();
    for metric in [
        "loki_distributor_bytes_received_total",
        "loki_discarded_samples_total",
        "loki_ingester_chunks_flush_failures_total",
        "loki_request_duration_seconds_bucket",
        "loki_boltdb_shipper_compact_tables_operation_last_successful_run_timestamp_seconds",
    ] {
        assert!(exprs.iter().any(|e| e.contains(metric)), "no panel queries {metric}");
    }
}

#[test]
fn grafana_version_is_read_from_the_final_from() {
    let dockerfile = std::fs::read_to_string(repo_grafana().join("Dockerfile")).unwrap();
    let version = grafana_version(&dockerfile).unwrap();
    assert!(is_version(&version), "{version}");
    assert_eq!(
        grafana_version("FROM alpine:3.20 AS tools\nFROM grafana/grafana:13.2.3@sha256:aa\n").unwrap(),
        "13.2.3"
    );
    assert!(grafana_version("FROM grafana/grafana-oss:12.4.0").unwrap_err().contains("grafana-oss"));
    assert!(grafana_version("FROM grafana/grafana:main").unwrap_err().contains("not a release version"));
    assert!(grafana_version("# nothing\n").is_err());
}

#[test]
fn image_references_split_at_the_tag_not_the_registry_port() {
    assert_eq!(
        split_image("registry:5000/grafana/grafana:13.2.3"),
        ("registry:5000/grafana/grafana", Some("13.2.3"), None)
    );
    assert_eq!(split_image("registry:5000/grafana"), ("registry:5000/grafana", None, None));
    assert_eq!(split_image("grafana/grafana@sha256:ab"), ("grafana/grafana", None, Some("sha256:ab")));
}

#[test]
fn an_unpinned_base_is_reported_once() {
    let dir = copy_with("Dockerfile", replace("FROM grafana/grafana:13.2.3", "FROM grafana/grafana:latest"));
    assert_one(dir.path(), &["Dockerfile: FROM", "`latest` is not a version"]);
    let dir = copy_with("Dockerfile", replace("FROM grafana/grafana:13.2.3", "FROM grafana/grafana"));
    assert_one(dir.path(), &["has no tag"]);
    let dir =
        copy_with("Dockerfile", replace("FROM grafana/grafana:13.2.3", "ARG V=13.2.3\nFROM grafana/grafana:${V}"));
    assert_one(dir.path(), &["not through an ARG"]);
}

#[test]
fn a_missing_copy_source_is_reported() {
    let dir = copy_with("Dockerfile", replace("COPY dashboards/ ", "COPY dashbords/ "));
    let findings = check_grafana_dir(dir.path());
    let text = format!("{findings:?}");
    assert!(text.contains("source `dashbords/` does not exist"), "{text}");
    // The provider's path is then fed from a directory without dashboards.
    assert!(text.contains("holds no dashboard JSON"), "{text}");
}

#[test]
fn copying_from_outside_the_context_is_reported() {
    let dir = copy_with("Dockerfile", replace("COPY dashboards/ ", "COPY ../dashboards/ "));
    assert!(format!("{:?}", check_grafana_dir(dir.path())).contains("outside the build context"));
}

#[test]
fn an_entrypoint_and_a_root_user_are_reported() {
    let dir = copy_with("Dockerfile", |t| format!("{t}ENTRYPOINT [\"/bin/sh\", \"/fix.sh\"]\n"));
    assert_one(dir.path(), &["ENTRYPOINT", "keep the image's /run.sh"]);
    let dir = copy_with("Dockerfile", |t| format!("{t}USER root\n"));
    assert_one(dir.path(), &["USER", "ends as root"]);
}

#[test]
fn continuation_lines_and_json_copy_are_understood() {
    let steps = instructions("FROM a:1\nRUN x \\\n  && y\n# c\ncopy [\"a b\", \"/d/\"]\n");
    assert_eq!(steps[1], ("RUN".to_string(), "x  && y".to_string()));
    assert_eq!(words(&steps[2].1), vec!["a b".to_string(), "/d/".to_string()]);
}

#[test]
fn a_wrong_api_version_is_reported() {
    let dir = copy_with("provisioning/datasources/loki.yaml", replace("apiVersion: 1", "apiVersion: 2"));
    assert_one(dir.path(), &["datasources/loki.yaml: apiVersion", "must be 1"]);
}

#[test]
fn a_datasource_without_uid_or_type_is_reported() {
    let dir = copy_with("provisioning/datasources/amp.yaml", replace("    uid: amp\n", ""));
    let findings = check_grafana_dir(dir.path());
    let text = format!("{findings:?}");
    assert!(text.contains("datasources[0].uid") && text.contains("required"), "{text}");
    // …and the dashboards that use it now point at nothing.
    assert!(text.contains("uid `amp` is not provisioned"), "{text}");
}

#[test]
fn an_unknown_key_is_reported() {
    let dir = copy_with("provisioning/datasources/loki.yaml", replace("maxLines: 1000", "maxline: 1000"));
    assert_one(dir.path(), &["jsonData.maxline", "unknown jsonData key for type loki"]);
    let dir = copy_with("provisioning/datasources/loki.yaml", replace("    editable: false", "    editabel: false"));
    assert_one(dir.path(), &["datasources[0].editabel", "unknown key"]);
}

#[test]
fn loki_numbers_must_be_positive_whole_numbers() {
    let dir = copy_with("provisioning/datasources/loki.yaml", replace("maxLines: 1000", "maxLines: lots"));
    assert_one(dir.path(), &["jsonData.maxLines", "positive whole number"]);
    let dir = copy_with("provisioning/datasources/loki.yaml", replace("timeout: 60", "timeout: 0"));
    assert_one(dir.path(), &["jsonData.timeout"]);
    let dir = copy_with("provisioning/datasources/loki.yaml", replace("maxLines: 1000", "maxLines: $LOKI_MAX_LINES"));
    assert!(check_grafana_dir(dir.path()).is_empty());
}

#[test]
fn amp_needs_sigv4_and_a_region() {
    let dir = copy_with("provisioning/datasources/amp.yaml", replace("sigV4Auth: true", "sigV4Auth: false"));
    assert_one(dir.path(), &["sigV4Auth", "must be true"]);
    let dir = copy_with("provisioning/datasources/amp.yaml", replace("      sigV4Region: $AWS_REGION\n", ""));
    assert_one(dir.path(), &["sigV4Region", "required"]);
    let dir =
        copy_with("provisioning/datasources/amp.yaml", replace("sigV4AuthType: default", "sigV4AuthType: instance"));
    assert_one(dir.path(), &["sigV4AuthType", "expected one of"]);
}

#[test]
fn core_prometheus_with_sigv4_is_reported() {
    let dir = copy_with(
        "provisioning/datasources/amp.yaml",
        replace("type: grafana-amazonprometheus-datasource", "type: prometheus"),
    );
    let text = format!("{:?}", check_grafana_dir(dir.path()));
    assert!(text.contains("core Prometheus has no SigV4"), "{text}");
    // The dashboards still say the old type.
    assert!(text.contains("but datasource `amp` is prometheus"), "{text}");
}

#[test]
fn literal_secrets_are_reported_and_env_references_accepted() {
    let dir = copy_with("provisioning/datasources/loki.yaml", |t| {
        format!("{t}    secureJsonData:\n      httpHeaderValue1: hunter2\n")
    });
    assert_one(dir.path(), &["secureJsonData.httpHeaderValue1", "literal secret"]);
    let dir = copy_with("provisioning/datasources/loki.yaml", |t| {
        format!("{t}    secureJsonData:\n      httpHeaderValue1: ${{LOKI_TOKEN}}\n")
    });
    assert!(check_grafana_dir(dir.path()).is_empty());
}

#[test]
fn duplicate_uids_and_two_defaults_are_reported() {
    let dir = copy_with(
        "provisioning/datasources/amp.yaml",
        replace("    editable: false", "    isDefault: true\n    editable: false"),
    );
    assert_one(dir.path(), &["2 datasources are marked default"]);
    let dir = copy_with("provisioning/datasources/amp.yaml", replace("uid: amp", "uid: loki"));
    let text = format!("{:?}", check_grafana_dir(dir.path()));
    assert!(text.contains("datasource uid `loki` is also provisioned in provisioning/datasources/amp.yaml"), "{text}");
}

#[test]
fn broken_yaml_is_reported() {
    let dir = copy_with("provisioning/datasources/loki.yaml", |t| format!("{t}  - name: [unclosed\n"));
    let findings = check_grafana_dir(dir.path());
    assert!(findings[0].to_string().contains("datasources/loki.yaml: not valid YAML"), "{findings:#?}");
}

#[test]
fn a_provider_path_that_is_not_copied_is_reported() {
    let dir = copy_with(
        "provisioning/dashboards/dashboards.yaml",
        replace("path: /etc/grafana/dashboards", "path: /var/lib/grafana/dashboards"),
    );
    assert_one(dir.path(), &["is not a COPY destination"]);
    let dir = copy_with("provisioning/dashboards/dashboards.yaml", replace("    type: file", "    type: git"));
    assert_one(dir.path(), &["only `file` providers"]);
}

#[test]
fn a_dashboard_reference_to_an_unknown_uid_is_reported() {
    let dir =
        copy_with("dashboards/logs-console.json", |t| t.replacen("\"uid\": \"loki\"", "\"uid\": \"loki-old\"", 1));
    assert_one(
        dir.path(),
        &["dashboards/logs-console.json: ", "uid `loki-old` is not provisioned", "provisioned: amp, loki"],
    );
}

#[test]
fn a_dashboard_reference_with_the_wrong_type_or_by_name_is_reported() {
    let dir = copy_with("dashboards/loki-health.json", |t| {
        t.replacen("\"type\": \"grafana-amazonprometheus-datasource\"", "\"type\": \"prometheus\"", 1)
    });
    assert_one(dir.path(), &["type `prometheus` but datasource `amp` is grafana-amazonprometheus-datasource"]);
    let dir = copy_with("dashboards/loki-health.json", |t| {
        let mut doc: Value = serde_json::from_str(&t).unwrap();
        doc["panels"][0]["datasource"] = Value::String("Amazon Managed Prometheus".into());
        doc.to_string()
    });
    assert_one(dir.path(), &["panels[0].datasource", "by name"]);
}

#[test]
fn dashboard_shape_problems_are_reported() {
    let dir = copy_with("dashboards/loki-health.json", |_| "{ not json".into());
    assert_one(dir.path(), &["dashboards/loki-health.json", "not valid JSON"]);
    let dir = copy_with("dashboards/loki-health.json", |t| {
        t.replacen("\"uid\": \"loki-health\"", "\"uid\": \"logs-console\"", 1)
    });
    assert_one(dir.path(), &["dashboard uid `logs-console` is also used by dashboards/logs-console.json"]);
    let dir = copy_with("dashboards/loki-health.json", |t| {
        let mut doc: Value = serde_json::from_str(&t).unwrap();
        doc.as_object_mut().unwrap().remove("uid");
        doc.to_string()
    });
    assert_one(dir.path(), &["loki-health.json: uid", "required"]);
}

#[test]
fn datasource_variables_must_exist() {
    let dir = copy_with("dashboards/loki-health.json", |t| t.replacen("\"uid\": \"amp\"", "\"uid\": \"${ds}\"", 1));
    assert_one(dir.path(), &["`${ds}` is not a datasource variable"]);
}

#[test]
fn an_empty_directory_reports_what_is_missing() {
    let tmp = tempfile::tempdir().unwrap();
    let text = format!("{:?}", check_grafana_dir(tmp.path()));
    for needle in ["Dockerfile", "provisioning/datasources", "provisioning/dashboards", "dashboards"] {
        assert!(text.contains(needle), "{needle} in {text}");
    }
}

/// Ingestion rate, query latency and storage usage (9.3) each have a panel in the Loki health
/// dashboard, queried from AMP (where 9.2 sends Loki's metrics) in a form that means something: a
/// rate of the ingestion and storage counters, a quantile of the request latency histogram that
/// keeps the query routes.
#[test]
fn req_9_3_the_loki_health_dashboard_covers_ingestion_rate_query_latency_and_storage() {
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(repo_grafana().join("dashboards/loki-health.json")).unwrap())
            .unwrap();
    fn targets<'a>(panels: &'a Value, out: &mut Vec<&'a Value>) {
        for panel in panels.as_array().into_iter().flatten() {
            out.extend(panel["targets"].as_array().into_iter().flatten());
            targets(&panel["panels"], out);
        }
    }
    let mut all = Vec::new();
    targets(&doc["panels"], &mut all);
    let exprs: Vec<&str> = all
        .iter()
        .filter(|t| t["datasource"]["type"].as_str() == Some(AMAZON_PROMETHEUS))
        .filter_map(|t| t["expr"].as_str())
        .collect();
    let covered = |metrics: &[&str], form: &dyn Fn(&str) -> bool| {
        exprs.iter().any(|e| metrics.iter().any(|m| e.contains(m)) && form(e))
    };
    let counter_rate = |e: &str| e.contains("rate(") || e.contains("increase(");

    assert!(
        covered(&["loki_distributor_bytes_received_total", "loki_distributor_lines_received_total"], &counter_rate),
        "no AMP panel shows the ingestion rate (rate of loki_distributor_*_received_total): {exprs:#?}"
    );
    assert!(
        covered(&["loki_request_duration_seconds_bucket"], &|e: &str| {
            e.contains("histogram_quantile(") && (!e.contains("route=") || e.contains("query"))
        }),
        "no AMP panel shows query latency (a quantile of loki_request_duration_seconds_bucket over the query routes): {exprs:#?}"
    );
    assert!(
        covered(&["loki_ingester_chunk_stored_bytes_total"], &counter_rate),
        "no AMP panel shows storage usage (rate or increase of loki_ingester_chunk_stored_bytes_total, the chunk bytes written to S3): {exprs:#?}"
    );
}

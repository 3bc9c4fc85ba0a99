use super::*;

const EXAMPLE: &str = include_str!("../../../envs/example.toml");

#[test]
fn example_env_file_parses() {
    let settings = parse(EXAMPLE).unwrap();
    assert_eq!(settings.loki.retention_days, 7);
    assert_eq!(settings.services.worker.collector, Collector::Adot);
    assert!(!settings.services.benchmark_worker.enabled);
    assert!(settings.services.history.enabled);
}

#[test]
fn unknown_collector_names_the_key_and_the_allowed_values() {
    let text = EXAMPLE.replacen(
        "[services.history]\ncollector = \"adot\"",
        "[services.history]\ncollector = \"fluentbit\"",
        1,
    );
    let err = format!("{:#}", parse(&text).unwrap_err());
    assert!(err.contains("fluentbit"), "{err}");
    assert!(err.contains("`adot`") && err.contains("`alloy`"), "{err}");
    assert!(err.contains("collector"), "{err}");
}

#[test]
fn unknown_key_is_rejected_with_its_name() {
    let text = EXAMPLE.replacen("[loki]\n", "[loki]\nretension_days = 3\n", 1);
    let err = format!("{:#}", parse(&text).unwrap_err());
    assert!(err.contains("retension_days"), "{err}");
    assert!(err.contains("retention_days"), "expected fields listed: {err}");
}

#[test]
fn unknown_service_is_rejected() {
    let text = format!("{EXAMPLE}\n[services.scheduler]\ncollector = \"adot\"\n");
    let err = format!("{:#}", parse(&text).unwrap_err());
    assert!(err.contains("scheduler"), "{err}");
    assert!(check_service_name("scheduler").is_err());
    assert_eq!(check_service_name("worker").unwrap(), "worker");
}

#[test]
fn unpinned_images_are_rejected() {
    assert!(check_pinned_image("grafana/loki:latest").is_err());
    assert!(check_pinned_image("grafana/loki").is_err());
    assert!(check_pinned_image("localhost:5000/loki").is_err(), "a registry port is not a tag");
    assert!(check_pinned_image("localhost:5000/loki:3.7.6").is_ok());
    assert!(check_pinned_image("grafana/loki@sha256:0123").is_ok());
    let text = EXAMPLE.replacen("grafana/loki:3.7.6", "grafana/loki:latest", 1);
    let err = format!("{:#}", parse(&text).unwrap_err());
    assert!(err.contains("versions.loki_image"), "{err}");
}

#[test]
fn retention_out_of_range_is_rejected() {
    let text = EXAMPLE.replacen("retention_days = 7", "retention_days = 0", 1);
    let err = format!("{:#}", parse(&text).unwrap_err());
    assert!(err.contains("loki.retention_days = 0: expected one of [1, 3, 5, 7"), "{err}");
    let text = EXAMPLE.replacen("retention_days = 7", "retention_days = 10", 1);
    assert!(parse(&text).is_err(), "10 is not a CloudWatch retention value");
}

#[test]
fn set_collector_keeps_comments_and_changes_only_that_service() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dev.toml");
    std::fs::write(&path, EXAMPLE).unwrap();
    set_collector(&path, "worker", Collector::Alloy).unwrap();
    let after = std::fs::read_to_string(&path).unwrap();
    let settings = parse(&after).unwrap();
    assert_eq!(settings.services.worker.collector, Collector::Alloy);
    assert_eq!(settings.services.history.collector, Collector::Adot);
    // Exactly one line differs: comments and layout survive.
    let changed: Vec<_> = EXAMPLE.lines().zip(after.lines()).filter(|(a, b)| a != b).collect();
    assert_eq!(changed.len(), 1, "{changed:?}");
    assert_eq!(EXAMPLE.lines().count(), after.lines().count());
}

#[test]
fn set_collector_refuses_unknown_service_and_leaves_file_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dev.toml");
    std::fs::write(&path, EXAMPLE).unwrap();
    assert!(set_collector(&path, "scheduler", Collector::Alloy).is_err());
    assert_eq!(std::fs::read_to_string(&path).unwrap(), EXAMPLE);
}

#[test]
fn set_adds_a_missing_key_and_refuses_an_invalid_result() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dev.toml");
    std::fs::write(&path, EXAMPLE.replace("enabled = false\ncpu", "cpu")).unwrap();
    set(&path, &["loki", "enabled"], true.into()).unwrap();
    assert!(parse(&std::fs::read_to_string(&path).unwrap()).unwrap().loki.enabled);

    // ADOT can't be switched off while services still use it: nothing is written.
    let before = std::fs::read_to_string(&path).unwrap();
    let err = format!("{:#}", set(&path, &["adot", "enabled"], false.into()).unwrap_err());
    assert!(err.contains("still use the adot collector"), "{err}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), before);
}

#[test]
fn two_loki_replicas_are_rejected() {
    let text = EXAMPLE.replacen("count = 1", "count = 2", 1);
    let err = format!("{:#}", parse(&text).unwrap_err());
    assert!(err.contains("loki.count = 2: expected 1 (single replica) or 3 to 9"), "{err}");
}

#[test]
fn a_plain_password_is_not_a_secret_arn() {
    let text = EXAMPLE.replacen(
        "db_password_secret_arn = \"arn:aws:secretsmanager:eu-west-1:123456789012:secret:temporal-dev/db-password\"",
        "db_password_secret_arn = \"hunter2\"",
        1,
    );
    let err = format!("{:#}", parse(&text).unwrap_err());
    assert!(err.contains("never the password itself"), "{err}");
}

use std::path::{Path, PathBuf};

use super::*;

/// A config with everything this project requires, single replica.
const GOOD: &str = r#"
auth_enabled: false
server:
  http_listen_port: 3100
analytics:
  reporting_enabled: false
common:
  path_prefix: /loki
  replication_factor: 1
  ring:
    kvstore:
      store: inmemory
  storage:
    s3:
      bucketnames: ${LOKI_S3_BUCKET}
      region: ${AWS_REGION}
schema_config:
  configs:
    - from: "2026-01-01"
      store: tsdb
      object_store: s3
      schema: v13
      index:
        prefix: index_
        period: 24h
ingester:
  wal:
    flush_on_shutdown: true
    replay_memory_ceiling: 300MB
chunk_store_config:
  chunk_cache_config:
    embedded_cache:
      enabled: true
      max_size_mb: 16
query_range:
  results_cache:
    cache:
      embedded_cache: {enabled: true, max_size_mb: 4}
  index_stats_results_cache:
    cache:
      embedded_cache: {enabled: true, max_size_mb: 4}
  volume_results_cache:
    cache:
      embedded_cache: {enabled: true, max_size_mb: 4}
  series_results_cache:
    cache:
      embedded_cache: {enabled: true, max_size_mb: 4}
  label_results_cache:
    cache:
      embedded_cache: {enabled: true, max_size_mb: 4}
  instant_metric_results_cache:
    cache:
      embedded_cache: {enabled: true, max_size_mb: 4}
compactor:
  retention_enabled: true
  delete_request_store: s3
limits_config:
  retention_period: 168h
  ingestion_rate_mb: 20
  ingestion_burst_size_mb: 30
  per_stream_rate_limit: 10MB
  per_stream_rate_limit_burst: 20MB
"#;

const DEV: Expected =
    Expected { retention_days: 7, replicas: 1, memory_mib: 1024, sidecar_memory_mib: 384, ingestion_mb_per_s: 10 };

fn paths(findings: &[Finding]) -> Vec<&str> {
    findings.iter().map(|f| f.path.as_str()).collect()
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn a_complete_config_has_no_findings() {
    assert_eq!(check_loki_config_for(GOOD, &DEV), vec![]);
}

#[test]
fn an_unknown_key_is_named_with_its_full_path_and_a_suggestion() {
    let yaml = GOOD.replace("flush_on_shutdown: true", "flush_on_shutdown: true\n    flush_on_shutdwn: true");
    let findings = check_loki_config(&yaml);
    assert_eq!(paths(&findings), ["ingester.wal.flush_on_shutdwn"], "{findings:?}");
    assert!(findings[0].message.contains("did you mean `flush_on_shutdown`"), "{}", findings[0]);
}

#[test]
fn unknown_keys_are_found_inside_lists_and_named_maps() {
    let yaml = GOOD.replace("        period: 24h", "        period: 24h\n        perod: 24h")
        + "storage_config:\n  named_stores:\n    aws:\n      archive:\n        bucketnames: b\n        bucket_name: b\n";
    let findings = check_loki_config(&yaml);
    assert_eq!(
        paths(&findings),
        ["schema_config.configs[0].index.perod", "storage_config.named_stores.aws.archive.bucket_name"],
        "{findings:?}"
    );
}

#[test]
fn keys_removed_in_loki_3_say_what_replaced_them() {
    let yaml = GOOD
        .replace("ingester:\n", "ingester:\n  max_transfer_retries: 0\n")
        .replace("chunk_store_config:\n", "chunk_store_config:\n  max_look_back_period: 0s\n");
    let findings = check_loki_config(&yaml);
    assert_eq!(paths(&findings), ["ingester.max_transfer_retries", "chunk_store_config.max_look_back_period"]);
    assert!(findings[1].message.contains("max_query_lookback"), "{}", findings[1]);
}

#[test]
fn a_block_given_a_scalar_or_a_scalar_given_a_list_is_reported() {
    let yaml = GOOD
        .replace(
            "analytics:\n  reporting_enabled: false",
            "analytics: false\nmemberlist:\n  join_members: dns+peers:7946",
        )
        .replace("auth_enabled: false", "auth_enabled: [false]");
    let findings = check_loki_config(&yaml);
    let got = paths(&findings);
    for want in ["auth_enabled", "analytics", "memberlist.join_members"] {
        assert!(got.contains(&want), "{want} not in {got:?}");
    }
}

#[test]
fn duplicate_keys_and_broken_yaml_are_reported() {
    let dup = GOOD.replace("auth_enabled: false", "auth_enabled: false\nauth_enabled: true");
    let findings = check_loki_config(&dup);
    assert!(findings[0].message.contains("duplicated key"), "{findings:?}");
    assert!(check_loki_config("server: [\n")[0].message.contains("not valid YAML"));
    assert!(check_loki_config("")[0].message.contains("empty"));
}

#[test]
fn required_settings_are_enforced() {
    let yaml = GOOD
        .replace("store: tsdb", "store: boltdb-shipper")
        .replace("schema: v13", "schema: v12")
        .replace("period: 24h", "period: 168h")
        .replace("retention_enabled: true", "retention_enabled: false")
        .replace("delete_request_store: s3", "working_directory: /loki/compactor")
        .replace("flush_on_shutdown: true", "flush_on_shutdown: false")
        .replace("reporting_enabled: false", "reporting_enabled: true")
        .replace("retention_period: 168h", "retention_period: 12h")
        .replace("region: ${AWS_REGION}", "region: ${AWS_REGION}\n      secret_access_key: x");
    let findings = check_loki_config(&yaml);
    let got = paths(&findings);
    assert_eq!(
        got,
        [
            "schema_config.configs[0].store",
            "schema_config.configs[0].index.period",
            "schema_config.configs[0].schema",
            "common.storage.s3.secret_access_key",
            "compactor.retention_enabled",
            "compactor.delete_request_store",
            "limits_config.retention_period",
            "ingester.wal.flush_on_shutdown",
            "analytics.reporting_enabled",
        ]
    );
}

#[test]
fn an_inmemory_ring_cannot_replicate_and_memberlist_needs_peers() {
    let rf3 = GOOD.replace("replication_factor: 1", "replication_factor: 3");
    assert_eq!(paths(&check_loki_config(&rf3)), ["common.replication_factor"]);

    let no_peers = rf3.replace("store: inmemory", "store: memberlist");
    assert_eq!(paths(&check_loki_config(&no_peers)), ["memberlist.join_members"]);

    let ha = no_peers.clone() + "memberlist:\n  join_members: [\"${LOKI_MEMBERLIST_JOIN}\"]\n";
    assert_eq!(check_loki_config(&ha), vec![]);

    // Forgetting unhealthy peers without rejoining leaves a partitioned ring split for good.
    let forgets = ha.replace("ingester:\n", "ingester:\n  autoforget_unhealthy: true\n");
    assert_ne!(forgets, ha, "GOOD has an ingester block");
    assert_eq!(paths(&check_loki_config(&forgets)), ["memberlist.rejoin_interval"]);
    let rejoins = forgets.clone() + "  rejoin_interval: 90s\n";
    assert_eq!(check_loki_config(&rejoins), vec![]);
}

#[test]
fn the_config_must_agree_with_the_environment() {
    let three = Expected { replicas: 3, ..DEV };
    assert_eq!(paths(&check_loki_config_for(GOOD, &three)), ["common.ring.kvstore.store", "common.replication_factor"]);

    let fourteen = Expected { retention_days: 14, ..DEV };
    let findings = check_loki_config_for(GOOD, &fourteen);
    assert_eq!(paths(&findings), ["limits_config.retention_period"]);
    assert!(findings[0].message.contains("336h"), "{}", findings[0]);

    let small = Expected { memory_mib: 512, ..DEV };
    assert_eq!(paths(&check_loki_config_for(GOOD, &small)), ["ingester.wal.replay_memory_ceiling"]);
}

// The sidecar's memory is not Loki's, and GOMEMLIMIT (80 % of Loki's share) must hold the
// caches, the replay and a query: DEV's 512 MiB share gives 409 MiB; GOOD spends 40 + 300 + 64.
// req: NF6
#[test]
fn replay_memory_counts_the_alloy_sidecar_and_the_caches() {
    let whole_task = GOOD.replace("replay_memory_ceiling: 300MB", "replay_memory_ceiling: 768MB");
    let findings = check_loki_config_for(&whole_task, &DEV);
    assert_eq!(paths(&findings), ["ingester.wal.replay_memory_ceiling"]);
    assert!(findings[0].message.contains("Loki's 512 MiB"), "{}", findings[0]);
    assert!(findings[0].message.contains("add up to 872 MB, over GOMEMLIMIT 409 MiB"), "{}", findings[0]);
    // Without the headroom Loki's share would be 640 MiB (GOMEMLIMIT 512): 400MB would fit.
    let no_headroom = GOOD.replace("replay_memory_ceiling: 300MB", "replay_memory_ceiling: 400MB");
    assert_eq!(paths(&check_loki_config_for(&no_headroom, &DEV)), ["ingester.wal.replay_memory_ceiling"]);
    let bigger_sidecar = Expected { sidecar_memory_mib: 512, ..DEV };
    assert_eq!(paths(&check_loki_config_for(GOOD, &bigger_sidecar)), ["ingester.wal.replay_memory_ceiling"]);
    // A cache as large as Loki's default breaks the budget too.
    let big_cache = GOOD.replace("max_size_mb: 16", "max_size_mb: 100");
    assert_eq!(paths(&check_loki_config_for(&big_cache, &DEV)), ["ingester.wal.replay_memory_ceiling"]);
}

#[test]
fn every_embedded_cache_is_sized() {
    let unsized_cache = GOOD
        .replace("  volume_results_cache:\n    cache:\n      embedded_cache: {enabled: true, max_size_mb: 4}\n", "");
    assert_ne!(unsized_cache, GOOD);
    let findings = check_loki_config_for(&unsized_cache, &DEV);
    assert_eq!(paths(&findings), ["query_range.volume_results_cache.cache.embedded_cache.max_size_mb"]);
    assert!(findings[0].message.contains("100 MB"), "{}", findings[0]);
}

// Loki's defaults (4 MB/s per tenant, 3 MB/s per stream) cannot take the required 10 MB/s.
// req: NF2, P1
#[test]
fn ingestion_limits_take_the_required_throughput() {
    let defaults = GOOD
        .lines()
        .filter(|l| !l.contains("ingestion_") && !l.contains("per_stream_"))
        .map(|l| format!("{l}\n"))
        .collect::<String>();
    let findings = check_loki_config_for(&defaults, &DEV);
    // The default stream burst (15 MB) is enough; the rest is not.
    assert_eq!(
        paths(&findings),
        [
            "limits_config.ingestion_rate_mb",
            "limits_config.ingestion_burst_size_mb",
            "limits_config.per_stream_rate_limit"
        ],
        "{findings:?}"
    );
    assert!(findings[0].message.contains("is 4 MB (Loki's default)"), "{}", findings[0]);

    let one_stream_short = GOOD.replace("per_stream_rate_limit: 10MB", "per_stream_rate_limit: 3MB");
    assert_eq!(paths(&check_loki_config_for(&one_stream_short, &DEV)), ["limits_config.per_stream_rate_limit"]);
    let burst_below_rate = GOOD.replace("ingestion_burst_size_mb: 30", "ingestion_burst_size_mb: 15");
    assert_eq!(paths(&check_loki_config_for(&burst_below_rate, &DEV)), ["limits_config.ingestion_burst_size_mb"]);
    let more = Expected { ingestion_mb_per_s: 25, ..DEV };
    assert_eq!(
        paths(&check_loki_config_for(GOOD, &more)),
        [
            "limits_config.ingestion_rate_mb",
            "limits_config.per_stream_rate_limit",
            "limits_config.per_stream_rate_limit_burst"
        ]
    );
    let not_a_number = GOOD.replace("ingestion_rate_mb: 20", "ingestion_rate_mb: lots");
    assert!(paths(&check_loki_config_for(&not_a_number, &DEV)).contains(&"limits_config.ingestion_rate_mb"));
}

#[test]
fn durations_and_sizes_parse_as_loki_reads_them() {
    assert_eq!(parse_duration_secs("168h"), Some(604_800));
    assert_eq!(parse_duration_secs("7d"), Some(604_800));
    assert_eq!(parse_duration_secs("1w"), Some(604_800));
    assert_eq!(parse_duration_secs("2h30m"), Some(9_000));
    assert_eq!(parse_duration_secs("0"), Some(0));
    assert_eq!(parse_duration_secs("7 days"), None);
    assert_eq!(byte_size(&Yaml::String("768MB".into())), Some(768 << 20));
    assert_eq!(byte_size(&Yaml::String("4GB".into())), Some(4 << 30));
    assert_eq!(byte_size(&Yaml::Integer(1024)), Some(1024));
    assert_eq!(byte_size(&Yaml::String("lots".into())), None);
}

#[test]
fn the_key_list_is_the_pinned_release_and_covers_what_the_template_uses() {
    assert!(KEY_LIST.contains(&format!("grafana/loki tag v{LOKI_VERSION}")));
    let keys = key_list();
    assert!(keys.kinds.len() > 3000, "only {} keys", keys.kinds.len());
    assert_eq!(keys.kinds.get("schema_config.configs"), Some(&Kind::List));
    assert_eq!(keys.kinds.get("common.storage.s3"), Some(&Kind::Block));
    assert_eq!(keys.kinds.get("storage_config.named_stores.aws"), Some(&Kind::Map));
    assert_eq!(keys.kinds.get("compactor.deletion_marker_object_store_prefix"), Some(&Kind::Value("string")));
}

/// `rendered/*/loki-config.yaml`, sorted; at least one.
fn rendered_loki_configs() -> Vec<PathBuf> {
    crate::rendered_files(|name| name == "loki-config.yaml")
}

/// Every key path in `node` whose name contains `needle` (case-insensitive).
fn keys_containing(node: &Yaml, needle: &str, at: &str, out: &mut Vec<String>) {
    match node {
        Yaml::Hash(map) => {
            for (k, v) in map {
                let name = k.as_str().unwrap_or_default();
                let path = if at.is_empty() { name.to_string() } else { format!("{at}.{name}") };
                if name.to_ascii_lowercase().contains(needle) {
                    out.push(path.clone());
                }
                keys_containing(v, needle, &path, out);
            }
        }
        Yaml::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                keys_containing(item, needle, &format!("{at}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// Every rendered config keeps its index as TSDB in S3 (schema v13, 24h tables) with no DynamoDB
/// anywhere, and the check reports each way a table store could come back.
#[test]
fn req_2_2_req_10_4_tsdb_v13_index_in_s3_without_dynamodb() {
    for file in rendered_loki_configs() {
        let yaml = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let doc = parse(&yaml).unwrap_or_else(|f| panic!("{}: {f}", file.display()));
        let periods = doc["schema_config"]["configs"].as_vec().cloned().unwrap_or_default();
        assert!(!periods.is_empty(), "{}: no schema period", file.display());
        for (i, p) in periods.iter().enumerate() {
            let got = (p["store"].as_str(), p["object_store"].as_str(), p["index"]["period"].as_str());
            assert_eq!(
                got,
                (Some("tsdb"), Some("s3"), Some("24h")),
                "{}: schema_config.configs[{i}] must be a TSDB index in S3 with 24h tables",
                file.display()
            );
        }
        assert_eq!(
            periods.last().and_then(|p| p["schema"].as_str()),
            Some("v13"),
            "{}: the current period must be schema v13",
            file.display()
        );
        let mut dynamo = Vec::new();
        keys_containing(&doc, "dynamo", "", &mut dynamo);
        assert!(
            dynamo.is_empty() && get(&doc, "table_manager").is_none(),
            "{}: DynamoDB settings {dynamo:?}",
            file.display()
        );
    }

    let with_dynamodb =
        GOOD.to_string() + "storage_config:\n  aws:\n    dynamodb:\n      dynamodb_url: dynamodb://eu-west-1\n";
    let with_table_manager = GOOD.to_string() + "table_manager:\n  retention_deletes_enabled: true\n";
    for (yaml, path) in [
        // `aws` is the DynamoDB index store.
        (GOOD.replace("store: tsdb", "store: aws"), "schema_config.configs[0].store"),
        (GOOD.replace("object_store: s3", "object_store: filesystem"), "schema_config.configs[0].object_store"),
        (with_dynamodb, "storage_config.aws.dynamodb"),
        (with_table_manager, "table_manager"),
    ] {
        assert_eq!(paths(&check_loki_config(&yaml)), [path], "{yaml}");
    }
}

/// Every rendered Loki config in the repository (and the HA fixture the Terraform tests read)
/// passes, and agrees with its environment file where one exists.
#[test]
fn the_rendered_configs_in_the_repository_pass() {
    let root = repo_root();
    let files = rendered_loki_configs();

    for file in &files {
        let yaml = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let env_name = file.parent().and_then(Path::file_name).and_then(|n| n.to_str()).unwrap_or_default();
        let env_file = root.join("envs").join(format!("{env_name}.toml"));
        let expected = expected_from_env(&env_file);
        let findings = match expected {
            Some(expected) => check_loki_config_deployed(&yaml, &expected, &loki_task_env()),
            None => check_loki_config(&yaml),
        };
        assert!(
            findings.is_empty(),
            "{}:\n{}",
            file.display(),
            findings.iter().map(|f| format!("  {f}\n")).collect::<String>()
        );
    }
}

/// The `[loki]` numbers of the environment file the config was rendered from.
fn expected_from_env(path: &Path) -> Option<Expected> {
    let name = path.file_stem()?.to_str()?;
    let env = settings::Environment::from_file(name, path).ok()?;
    Some(Expected {
        retention_days: env.settings.loki.retention_days,
        replicas: env.settings.loki.count,
        memory_mib: env.settings.loki.memory,
        sidecar_memory_mib: env.settings.alloy.memory,
        ingestion_mb_per_s: env.settings.loki.ingestion_mb_per_s,
    })
}

/// The Loki container's variables as infra/loki.tf sets them.
fn loki_task_env() -> Vec<String> {
    let tf = std::fs::read_to_string(repo_root().join("infra/loki.tf")).expect("infra/loki.tf");
    task_env_from_terraform(&tf, "loki").expect("the Loki container's environment")
}

fn env_of(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| n.to_string()).collect()
}

#[test]
fn the_task_env_is_read_from_the_terraform() {
    assert_eq!(loki_task_env(), ["AWS_REGION", "GOMEMLIMIT", "LOKI_MEMBERLIST_JOIN", "LOKI_S3_BUCKET"]);
    let tf = r#"
  loki_containers = {
    loki-init = {
      environment = [{ name = "INIT_ONLY", value = "x" }]
    }

    loki = {
      environment = concat(
        [{ name = "A", value = "${local.x}" }],
        local.ha ? [{ name = "B", value = "dns+${local.y}:7946" }] : [],
      )
      secrets = [{ name = "S", valueFrom = "arn" }]
      dependsOn = [{ containerName = "loki-init", condition = "SUCCESS" }]
    }
  }
"#;
    assert_eq!(task_env_from_terraform(tf, "loki").unwrap(), ["A", "B", "S"]);
    assert_eq!(task_env_from_terraform(tf, "loki-init").unwrap(), ["INIT_ONLY"]);
    assert!(task_env_from_terraform(tf, "grafana").is_err());
}

// req: 1.7
#[test]
fn the_expansion_loki_runs_first_is_checked_over_the_whole_file() {
    let env = env_of(&["LOKI_S3_BUCKET", "AWS_REGION"]);
    assert_eq!(check_loki_config_deployed(GOOD, &DEV, &env), vec![]);

    // The comment that kept Loki from starting.
    let comment = format!("# ${{...}} is expanded by Loki\n{GOOD}");
    let findings = check_loki_config_deployed(&comment, &DEV, &env);
    assert_eq!(paths(&findings), ["line 1"], "{findings:?}");
    assert!(findings[0].message.contains("unable to parse variable name"), "{}", findings[0]);

    // An escaped dollar is fine anywhere, and reaches Loki as `${`.
    let escaped = format!("# $${{LOKI_S3_BUCKET}} stays literal\n{GOOD}");
    assert_eq!(check_loki_config_deployed(&escaped, &DEV, &env), vec![]);
    assert!(check_expansion(&escaped, &env).0.unwrap().starts_with("# ${LOKI_S3_BUCKET} stays"));

    // A variable the task does not set expands to "".
    let unset = GOOD.replace("${AWS_REGION}", "${AWS_DEFAULT_REGION:-eu-west-1}");
    let findings = check_loki_config_deployed(&unset, &DEV, &env);
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert!(findings[0].message.contains("${AWS_DEFAULT_REGION} is not set"), "{}", findings[0]);
    assert_eq!(findings[0].path, format!("line {}", GOOD.lines().position(|l| l.contains("AWS_REGION")).unwrap() + 1));

    // Unsupported forms stop Loki even inside a comment; `$NAME` stays literal.
    for (text, why) in [
        ("# ${LOKI_S3_BUCKET-default}", "missing closing brace"),
        ("# ${LOKI_S3_BUCKET", "missing closing brace"),
        ("# ${}", "unable to parse variable name"),
        ("# $LOKI_S3_BUCKET", "stays literal"),
    ] {
        let findings = check_loki_config_deployed(&format!("{text}\n{GOOD}"), &DEV, &env);
        assert_eq!(findings.len(), 1, "{text}: {findings:?}");
        assert!(findings[0].message.contains(why), "{text}: {}", findings[0]);
    }

    // What Loki parses is the expanded text: `\\` became `\`, an invalid YAML escape.
    let regex = format!("{GOOD}memberlist:\n  cluster_label: \"a\\\\d\"\n");
    let findings = check_loki_config_deployed(&regex, &DEV, &env);
    assert!(findings.iter().any(|f| f.message.contains("not valid YAML")), "{findings:?}");
}

// Grafana waits 60 s; Loki's 30 s write timeout or a shorter query timeout cut the query first.
// req: NF4
#[test]
fn loki_lets_a_query_run_as_long_as_grafana_waits() {
    let set = GOOD.replace("  http_listen_port: 3100", "  http_listen_port: 3100\n  http_server_write_timeout: 70s");
    assert_eq!(check_query_timeouts(&set, 60), vec![]);
    let findings = check_query_timeouts(GOOD, 60);
    assert_eq!(paths(&findings), ["server.http_server_write_timeout"], "{findings:?}");
    assert!(findings[0].message.contains("30s (Loki's default)"), "{}", findings[0]);
    assert_eq!(
        paths(&check_query_timeouts(&set, 90)),
        ["limits_config.query_timeout", "server.http_server_write_timeout"]
    );
    let short = set.replace("  retention_period: 168h", "  retention_period: 168h\n  query_timeout: 30s");
    assert_eq!(paths(&check_query_timeouts(&short, 60)), ["limits_config.query_timeout"]);
}

// The repository's Grafana and rendered Loki configs agree.
#[test]
fn the_rendered_configs_wait_as_long_as_the_grafana_datasource() {
    let timeout = crate::grafana::loki_datasource_timeout(&repo_root().join("grafana")).unwrap();
    assert_eq!(timeout, 60);
    for file in rendered_loki_configs() {
        let yaml = std::fs::read_to_string(&file).unwrap();
        assert_eq!(check_query_timeouts(&yaml, timeout), vec![], "{}", file.display());
    }
}

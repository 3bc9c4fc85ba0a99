//! Checks a rendered Loki config without running Loki.
//!
//! Loki parses its config strictly: an unknown or removed key stops it at start-up. This module
//! walks every key against the list derived from Loki's configuration reference for the pinned
//! version (`data/loki-3.7.6-keys.txt`, see [`derive_key_list`]) and checks the choices this
//! project relies on (TSDB v13 on S3, compactor retention, WAL flush, ring vs replicas, no static
//! credentials). `-verify-config` with the pinned image stays the authoritative check where Docker
//! is available.

use std::collections::HashMap;
use std::fmt;
use std::sync::OnceLock;

use yaml_rust2::{Yaml, YamlLoader};

mod derive;
pub mod envsubst;
pub use derive::derive_key_list;

/// The Loki release the key list was derived from.
pub const LOKI_VERSION: &str = "3.7.6";

const KEY_LIST: &str = include_str!("../data/loki-3.7.6-keys.txt");

/// One problem in a config: where (a key path such as `schema_config.configs[0].index.period`,
/// empty for the whole file) and what is wrong, with the fix where there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub path: String,
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

fn finding(path: &str, message: impl Into<String>) -> Finding {
    Finding { path: path.to_string(), message: message.into() }
}

/// What the environment (and so the Terraform variables) says the config must agree with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expected {
    /// `loki.retention_days` / `loki_retention_days`.
    pub retention_days: u32,
    /// `loki.count` / `loki_count`.
    pub replicas: u32,
    /// `loki.memory` / `loki_memory`, MiB of the task.
    pub memory_mib: u32,
    /// `alloy.memory` / `alloy_memory`: the metrics sidecar's hard limit in the same task, MiB.
    pub sidecar_memory_mib: u32,
    /// `loki.ingestion_mb_per_s`: the log volume the tenant must accept (requirement: 10 MB/s).
    pub ingestion_mb_per_s: u32,
}

/// Checks one Loki config file: YAML syntax (duplicate keys included), every key against Loki
/// 3.7.6's key list, and the project's required settings. Empty when the config is fine.
pub fn check_loki_config(yaml: &str) -> Vec<Finding> {
    match parse(yaml) {
        Ok(doc) => {
            let mut findings = check_keys(&doc);
            findings.extend(check_settings(&doc));
            findings
        }
        Err(f) => vec![f],
    }
}

/// [`check_loki_config`] plus agreement with the environment's settings: retention, ring mode for
/// the replica count, and WAL replay memory within the task's memory.
pub fn check_loki_config_for(yaml: &str, expected: &Expected) -> Vec<Finding> {
    let mut findings = check_loki_config(yaml);
    if let Ok(doc) = parse(yaml) {
        findings.extend(check_agreement(&doc, expected));
    }
    findings
}

/// The config as the deployed task reads it: `-config.expand-env=true` first expands the whole
/// file (comments included) with drone/envsubst, and a parse error stops Loki, so that comes
/// first; every `${NAME}` must be a variable the Loki container sets (`task_env`), or it silently
/// expands to ""; then [`check_loki_config_for`] on the expanded text, which is what Loki parses.
pub fn check_loki_config_deployed(yaml: &str, expected: &Expected, task_env: &[String]) -> Vec<Finding> {
    let (expanded, mut findings) = check_expansion(yaml, task_env);
    if let Some(text) = expanded {
        findings.extend(check_loki_config_for(&text, expected));
    }
    findings
}

/// The expanded text (placeholders for the task's values) and what Loki would do wrong with it.
/// `None` when Loki stops at the expansion.
pub fn check_expansion(yaml: &str, task_env: &[String]) -> (Option<String>, Vec<Finding>) {
    let at = |offset: usize| format!("line {}", yaml[..offset.min(yaml.len())].matches('\n').count() + 1);
    let references = match envsubst::references(yaml) {
        Ok(refs) => refs,
        Err(f) => {
            let message = format!(
                "Loki stops at start-up: -config.expand-env=true reads the whole file, comments included, and \
                 drone/envsubst fails with \"{}\" here; write $${{ for a literal ${{",
                f.error.message()
            );
            return (None, vec![finding(&at(f.offset), message)]);
        }
    };
    let mut out = Vec::new();
    for r in references.iter().filter(|r| !task_env.contains(&r.name)) {
        out.push(finding(
            &at(r.offset),
            format!(
                "${{{}}} is not set by the Loki container (it sets {}), so it expands to \"\"",
                r.name,
                if task_env.is_empty() { "nothing".to_string() } else { task_env.join(", ") }
            ),
        ));
    }
    // Placeholders: the names are checked here, the values only exist at deploy time.
    let value = |name: &str| task_env.iter().any(|n| n == name).then(|| format!("expanded-{}", name.to_lowercase()));
    let expanded = envsubst::expand(yaml, value).expect("parsed above");
    // `$NAME` without braces stays literal in drone/envsubst: almost certainly a mistake.
    for name in task_env {
        let needle = format!("${name}");
        for (i, _) in expanded.match_indices(&needle) {
            let next = expanded[i + needle.len()..].chars().next();
            if !next.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                let line = expanded[..i].matches('\n').count() + 1;
                out.push(finding(
                    &format!("line {line}"),
                    format!("`${name}` stays literal: drone/envsubst expands only ${{{name}}}"),
                ));
            }
        }
    }
    (Some(expanded), out)
}

/// Names of the `environment` and `secrets` entries of container `container` in the
/// `loki_containers` map of infra/loki.tf, read from the Terraform source (entries behind a
/// condition count as set). The terraform test keeps the plan and this reading in step.
pub fn task_env_from_terraform(tf: &str, container: &str) -> Result<Vec<String>, String> {
    let open = format!("\n    {container} = {{");
    let start = tf.find(&open).ok_or_else(|| format!("no container `{container} = {{` in the Terraform"))?;
    let block = balanced(&tf[start + open.len() - 1..]).ok_or("unbalanced container block")?;
    let mut names = Vec::new();
    for key in ["environment", "secrets"] {
        let Some(at) = block.find(&format!("\n      {key} ")) else { continue };
        let rest = &block[at..];
        let eq = rest.find('=').ok_or("no `=`")?;
        let first = rest[eq..].find(['[', '(', '{']).ok_or("no list")? + eq;
        let expr = balanced(&rest[first..]).ok_or_else(|| format!("unbalanced `{key}`"))?;
        let mut text = expr;
        while let Some(i) = text.find("name") {
            text = &text[i + 4..];
            let trimmed = text.trim_start();
            if let Some(value) = trimmed.strip_prefix('=').map(str::trim_start).and_then(|v| v.strip_prefix('"')) {
                if let Some(end) = value.find('"') {
                    names.push(value[..end].to_string());
                }
            }
        }
    }
    if names.is_empty() {
        return Err(format!("container `{container}` sets no environment in the Terraform"));
    }
    names.sort();
    names.dedup();
    Ok(names)
}

/// The text from an opening bracket to its matching close (strings skipped).
pub(crate) fn balanced(text: &str) -> Option<&str> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut prev = ' ';
    for (i, c) in text.char_indices() {
        if in_string {
            if c == '"' && prev != '\\' {
                in_string = false;
            }
        } else {
            match c {
                '"' => in_string = true,
                '[' | '(' | '{' => depth += 1,
                ']' | ')' | '}' => {
                    depth = depth.checked_sub(1)?;
                    if depth == 0 {
                        return Some(&text[..=i]);
                    }
                }
                _ => {}
            }
        }
        prev = c;
    }
    None
}

fn parse(yaml: &str) -> Result<Yaml, Finding> {
    let mut docs = YamlLoader::load_from_str(yaml).map_err(|e| finding("", format!("not valid YAML: {e}")))?;
    match docs.len() {
        1 => Ok(docs.remove(0)),
        0 => Err(finding("", "empty file: Loki needs at least schema_config and storage")),
        n => Err(finding("", format!("{n} YAML documents; Loki reads exactly one"))),
    }
}

// --- Keys -----------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Block,
    List,
    Map,
    Value(&'static str),
}

struct KeyList {
    kinds: HashMap<&'static str, Kind>,
}

fn key_list() -> &'static KeyList {
    static KEYS: OnceLock<KeyList> = OnceLock::new();
    KEYS.get_or_init(|| {
        let kinds = KEY_LIST
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .filter_map(|l| l.split_once('\t'))
            .map(|(path, kind)| {
                let kind = match kind {
                    "block" => Kind::Block,
                    "list" => Kind::List,
                    "map" => Kind::Map,
                    other => Kind::Value(other),
                };
                (path, kind)
            })
            .collect();
        KeyList { kinds }
    })
}

/// Keys that 2.x configs still carry and 3.x rejects, with what replaced them (Loki's upgrade guide).
const REMOVED_KEYS: &[(&str, &str)] = &[
    ("ingester.max_transfer_retries", "removed in 3.0: the WAL replaces hand-over on shutdown"),
    ("limits_config.enforce_metric_name", "removed in 3.0"),
    ("chunk_store_config.max_look_back_period", "removed in 3.0: use limits_config.max_query_lookback"),
    ("storage_config.tsdb_shipper.shared_store", "removed in 3.0: the object store comes from schema_config"),
    ("storage_config.boltdb_shipper.shared_store", "removed in 3.0: the object store comes from schema_config"),
    ("compactor.shared_store", "removed in 3.0: use compactor.delete_request_store for delete requests"),
    ("querier.query_timeout", "moved in 3.0 to limits_config.query_timeout"),
    ("query_range.split_queries_by_interval", "moved in 3.0 to limits_config.split_queries_by_interval"),
    ("compactor.deletion_mode", "moved in 3.0 to limits_config.deletion_mode"),
];

fn check_keys(doc: &Yaml) -> Vec<Finding> {
    let mut out = Vec::new();
    match doc {
        Yaml::Hash(_) => walk(key_list(), doc, "", "", &mut out),
        _ => out.push(finding("", "the top level must be a mapping of config blocks")),
    }
    out
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

/// `schema` is the path in the key list (`configs[]`, `named.*`), `shown` the path in this file.
fn walk(keys: &KeyList, node: &Yaml, schema: &str, shown: &str, out: &mut Vec<Finding>) {
    let Yaml::Hash(map) = node else { return };
    for (key, value) in map {
        let Some(name) = key.as_str() else {
            out.push(finding(shown, format!("key {key:?} is not a string")));
            continue;
        };
        let schema_path = join(schema, name);
        let shown_path = join(shown, name);
        match keys.kinds.get(schema_path.as_str()) {
            None => out.push(unknown_key(keys, schema, &schema_path, &shown_path, name)),
            Some(Kind::Block) => match value {
                Yaml::Hash(_) => walk(keys, value, &schema_path, &shown_path, out),
                Yaml::Null => {}
                _ => out.push(finding(&shown_path, "must be a mapping (a config block)")),
            },
            Some(Kind::List) => match value {
                Yaml::Array(items) => {
                    for (i, item) in items.iter().enumerate() {
                        let item_path = format!("{shown_path}[{i}]");
                        match item {
                            Yaml::Hash(_) => walk(keys, item, &format!("{schema_path}[]"), &item_path, out),
                            _ => out.push(finding(&item_path, "must be a mapping")),
                        }
                    }
                }
                Yaml::Null => {}
                _ => out.push(finding(&shown_path, "must be a list")),
            },
            Some(Kind::Map) => match value {
                Yaml::Hash(entries) => {
                    for (k, v) in entries {
                        let label = k.as_str().map(str::to_string).unwrap_or_else(|| format!("{k:?}"));
                        walk(keys, v, &format!("{schema_path}.*"), &join(&shown_path, &label), out);
                    }
                }
                Yaml::Null => {}
                _ => out.push(finding(&shown_path, "must be a mapping of names to blocks")),
            },
            Some(Kind::Value(ty)) => {
                if let Some(problem) = value_shape(ty, value) {
                    out.push(finding(&shown_path, format!("{problem} (Loki expects <{ty}>)")));
                }
            }
        }
    }
}

/// Only the shape (scalar, list, mapping) of values whose type the reference spells out; YAML 1.1
/// scalars such as `yes` are Loki's business, and opaque types (`relabel_config...`) are skipped.
fn value_shape(ty: &str, value: &Yaml) -> Option<&'static str> {
    const SCALARS: &[&str] = &["string", "int", "duration", "boolean", "float", "url", "time", "daytime"];
    let is_container = matches!(value, Yaml::Array(_) | Yaml::Hash(_));
    if SCALARS.contains(&ty) {
        return match value {
            Yaml::Array(_) => Some("is a list"),
            Yaml::Hash(_) => Some("is a mapping"),
            _ => None,
        };
    }
    if ty.starts_with("list of ") && !matches!(value, Yaml::Array(_) | Yaml::Null) {
        return Some(if is_container { "is a mapping" } else { "is a single value" });
    }
    if ty.starts_with("map of ") && !matches!(value, Yaml::Hash(_) | Yaml::Null) {
        return Some(if is_container { "is a list" } else { "is a single value" });
    }
    None
}

fn unknown_key(keys: &KeyList, parent: &str, schema_path: &str, shown: &str, name: &str) -> Finding {
    if let Some((_, why)) = REMOVED_KEYS.iter().find(|(k, _)| *k == schema_path) {
        return finding(shown, format!("not a Loki {LOKI_VERSION} key: {why}"));
    }
    let prefix = if parent.is_empty() { String::new() } else { format!("{parent}.") };
    let siblings = keys
        .kinds
        .keys()
        .filter_map(|k| k.strip_prefix(prefix.as_str()))
        .filter(|rest| !rest.contains('.') && !rest.contains('['));
    let best = siblings.map(|s| (crate::edit_distance(s, name), s)).filter(|(d, _)| *d <= 3).min();
    let hint = match best {
        Some((_, s)) => format!("; did you mean `{s}`?"),
        None => String::new(),
    };
    finding(shown, format!("unknown key: Loki {LOKI_VERSION} rejects the whole config{hint}"))
}

// --- Settings this project relies on -------------------------------------------------------------

fn get<'a>(doc: &'a Yaml, path: &str) -> Option<&'a Yaml> {
    path.split('.').try_fold(doc, |node, key| match &node[key] {
        Yaml::BadValue => None,
        v => Some(v),
    })
}

fn get_str<'a>(doc: &'a Yaml, path: &str) -> Option<&'a str> {
    get(doc, path).and_then(Yaml::as_str)
}

fn is_s3(store: Option<&str>) -> bool {
    matches!(store, Some("s3" | "aws"))
}

fn check_settings(doc: &Yaml) -> Vec<Finding> {
    let mut out = Vec::new();

    // Chunks under fake/ is what the S3 lifecycle rule (req 2.3) is scoped to.
    if get(doc, "auth_enabled").and_then(Yaml::as_bool) != Some(false) {
        out.push(finding(
            "auth_enabled",
            "must be false: single tenant, chunks under fake/ (the S3 lifecycle rule expires only that prefix)",
        ));
    }

    // Req 2.1, 2.2, 10.4: TSDB v13 on S3 with a 24h index (retention needs 24h).
    match get(doc, "schema_config.configs").and_then(Yaml::as_vec) {
        Some(periods) if !periods.is_empty() => {
            for (i, p) in periods.iter().enumerate() {
                let at = |k: &str| format!("schema_config.configs[{i}].{k}");
                if p["store"].as_str() != Some("tsdb") {
                    out.push(finding(&at("store"), "must be tsdb (req 2.2; no BoltDB or DynamoDB)"));
                }
                if !is_s3(p["object_store"].as_str()) {
                    out.push(finding(&at("object_store"), "must be s3 (req 2.1)"));
                }
                if p["index"]["period"].as_str() != Some("24h") {
                    out.push(finding(
                        &at("index.period"),
                        "must be 24h: compactor retention only works with a 24h index",
                    ));
                }
            }
            if let Some(last) = periods.last() {
                if last["schema"].as_str() != Some("v13") {
                    let i = periods.len() - 1;
                    out.push(finding(
                        &format!("schema_config.configs[{i}].schema"),
                        "the current period must use schema v13 (structured metadata needs it)",
                    ));
                }
            }
        }
        _ => out.push(finding("schema_config.configs", "missing: Loki needs at least one period (tsdb, s3, v13, 24h)")),
    }

    // Req 2.2, 10.4: the TSDB index needs no table store; these blocks exist only for DynamoDB
    // (and Bigtable) index tables.
    for (path, why) in [
        (
            "storage_config.aws.dynamodb",
            "DynamoDB is not used: the TSDB index lives in S3 (req 2.2, 10.4); remove the block",
        ),
        (
            "table_manager",
            "the table manager provisions DynamoDB/Bigtable index tables; TSDB on S3 has none (req 10.4); remove the block",
        ),
    ] {
        if get(doc, path).is_some() {
            out.push(finding(path, why));
        }
    }

    match get(doc, "common.storage.s3") {
        Some(Yaml::Hash(s3)) => {
            if get_str(doc, "common.storage.s3.bucketnames").is_none_or(str::is_empty) {
                out.push(finding(
                    "common.storage.s3.bucketnames",
                    "missing: the bucket Loki writes to (${LOKI_S3_BUCKET})",
                ));
            }
            // Req 6.6: the task role's credentials, never keys in the config.
            for key in ["access_key_id", "secret_access_key", "session_token"] {
                if s3.contains_key(&Yaml::String(key.to_string())) {
                    out.push(finding(
                        &format!("common.storage.s3.{key}"),
                        "static credentials are not allowed: Loki uses the ECS task role (req 6.6)",
                    ));
                }
            }
        }
        _ => out.push(finding("common.storage.s3", "missing: chunks and index go to S3 (req 2.1)")),
    }

    // Req 5.3: the compactor enforces retention.
    if get(doc, "compactor.retention_enabled").and_then(Yaml::as_bool) != Some(true) {
        out.push(finding("compactor.retention_enabled", "must be true, or logs are kept forever (req 5.3)"));
    }
    if !is_s3(get_str(doc, "compactor.delete_request_store")) {
        out.push(finding(
            "compactor.delete_request_store",
            "must be s3: Loki 3 requires it when retention is on (req 5.3)",
        ));
    }
    match get_str(doc, "limits_config.retention_period").map(|s| (s, parse_duration_secs(s))) {
        Some((_, Some(secs))) if secs >= 24 * 3600 => {}
        Some((_, Some(_))) => out.push(finding(
            "limits_config.retention_period",
            "must be at least 24h (Loki's minimum; 0 keeps logs forever)",
        )),
        Some((s, None)) => {
            out.push(finding("limits_config.retention_period", format!("`{s}` is not a duration such as 168h")))
        }
        None => out
            .push(finding("limits_config.retention_period", "missing: the retention the compactor enforces (req 5.1)")),
    }

    // The task's disk goes with the task: flush chunks on SIGTERM.
    if get(doc, "ingester.wal.flush_on_shutdown").and_then(Yaml::as_bool) != Some(true) {
        out.push(finding(
            "ingester.wal.flush_on_shutdown",
            "must be true: the WAL's disk does not outlive the ECS task",
        ));
    }
    if get(doc, "analytics.reporting_enabled").and_then(Yaml::as_bool) != Some(false) {
        out.push(finding(
            "analytics.reporting_enabled",
            "must be false: no usage reports to stats.grafana.org (no internet egress)",
        ));
    }
    if let Some(port) = get(doc, "server.http_listen_port").and_then(Yaml::as_i64) {
        if port != 3100 {
            out.push(finding(
                "server.http_listen_port",
                format!("is {port}; Service Connect, the health check and the security group use 3100 (req 1.3)"),
            ));
        }
    }

    // Req 7.3: a memberlist ring needs peers; an in-memory ring cannot replicate.
    let store = get_str(doc, "common.ring.kvstore.store");
    let rf = get(doc, "common.replication_factor").and_then(Yaml::as_i64).unwrap_or(3);
    match store {
        Some("inmemory") if rf != 1 => {
            out.push(finding(
                "common.replication_factor",
                format!("is {rf} with an inmemory ring, which holds one replica; use 1"),
            ));
        }
        Some("memberlist")
            if get(doc, "memberlist.join_members").and_then(Yaml::as_vec).is_none_or(|m| m.is_empty()) =>
        {
            out.push(finding(
                "memberlist.join_members",
                "missing: a memberlist ring needs its peers (dns+<name>:7946)",
            ));
        }
        Some("memberlist")
            if get(doc, "ingester.autoforget_unhealthy").and_then(Yaml::as_bool) == Some(true)
                && get_str(doc, "memberlist.rejoin_interval").and_then(parse_duration_secs).is_none_or(|s| s == 0) =>
        {
            // A partition makes each side forget the other; without rejoining, the ring stays split.
            out.push(finding(
                "memberlist.rejoin_interval",
                "missing beside ingester.autoforget_unhealthy: true: after a partition each side forgets the other and the ring stays split; set e.g. 90s",
            ));
        }
        Some("inmemory" | "memberlist") => {}
        Some(other) => out.push(finding(
            "common.ring.kvstore.store",
            format!("`{other}`: this project runs inmemory (1 replica) or memberlist (HA)"),
        )),
        None => out.push(finding(
            "common.ring.kvstore.store",
            "missing: set inmemory (1 replica) or memberlist (HA) explicitly (req 7)",
        )),
    }

    out
}

fn check_agreement(doc: &Yaml, expected: &Expected) -> Vec<Finding> {
    let mut out = Vec::new();
    let want = u64::from(expected.retention_days) * 24 * 3600;
    let got = get_str(doc, "limits_config.retention_period").and_then(parse_duration_secs);
    if got != Some(want) {
        out.push(finding(
            "limits_config.retention_period",
            format!(
                "must be {}h to match loki.retention_days = {} (req 5.5); run `cargo xtask render`",
                expected.retention_days * 24,
                expected.retention_days
            ),
        ));
    }

    let (store, rf) = if expected.replicas > 1 { ("memberlist", 3) } else { ("inmemory", 1) };
    if get_str(doc, "common.ring.kvstore.store") != Some(store) {
        out.push(finding(
            "common.ring.kvstore.store",
            format!("must be {store} for loki.count = {} (req 7.3)", expected.replicas),
        ));
    }
    if get(doc, "common.replication_factor").and_then(Yaml::as_i64) != Some(rf) {
        out.push(finding("common.replication_factor", format!("must be {rf} for loki.count = {}", expected.replicas)));
    }

    out.extend(check_memory_budget(doc, expected));
    out.extend(check_ingestion(doc, expected.ingestion_mb_per_s));
    out
}

/// The embedded caches Loki 3.7.6 turns on unless they are set (100 MB each; five of them copy
/// `query_range.results_cache`'s config), as settings::capacity::MemoryBudget sizes them.
const EMBEDDED_CACHES: [&str; 7] = [
    "chunk_store_config.chunk_cache_config",
    "query_range.results_cache.cache",
    "query_range.index_stats_results_cache.cache",
    "query_range.volume_results_cache.cache",
    "query_range.series_results_cache.cache",
    "query_range.label_results_cache.cache",
    "query_range.instant_metric_results_cache.cache",
];

/// Loki shares its task with the Alloy sidecar and the headroom, and runs under GOMEMLIMIT
/// (infra/loki.tf): every embedded cache sized, and the caches, the WAL replay and one query
/// must fit under it (crates/settings/src/capacity.rs).
fn check_memory_budget(doc: &Yaml, expected: &Expected) -> Vec<Finding> {
    let mut out = Vec::new();
    let share_mib = settings::loki_container_memory(expected.memory_mib, expected.sidecar_memory_mib);
    let gomemlimit = (f64::from(share_mib) * settings::capacity::GOMEMLIMIT_SHARE).floor() as u64;
    let mut parts_mb = u64::from(settings::capacity::QUERY_RESERVE_MB);
    for cache in EMBEDDED_CACHES {
        let path = format!("{cache}.embedded_cache.max_size_mb");
        match get(doc, &path).and_then(Yaml::as_i64) {
            Some(mb) if mb > 0 => parts_mb += mb as u64,
            _ => out.push(finding(
                &path,
                "must be set: unset, Loki 3.7.6 gives this cache 100 MB that no memory budget counts",
            )),
        }
    }
    match get(doc, "ingester.wal.replay_memory_ceiling") {
        None => out.push(finding(
            "ingester.wal.replay_memory_ceiling",
            format!("missing: the 4GB default exceeds Loki's {share_mib} MiB and can OOM-loop on replay"),
        )),
        Some(v) => match byte_size(v) {
            Some(bytes) => parts_mb += bytes >> 20,
            None => out.push(finding("ingester.wal.replay_memory_ceiling", "is not a size such as 768MB")),
        },
    }
    if out.is_empty() && parts_mb > gomemlimit {
        out.push(finding(
            "ingester.wal.replay_memory_ceiling",
            format!(
                "the caches, this ceiling and {} MB for a query add up to {parts_mb} MB, over GOMEMLIMIT {gomemlimit} MiB (80 % of Loki's {share_mib} MiB: the task's {} minus the Alloy sidecar's {} and {} of headroom)",
                settings::capacity::QUERY_RESERVE_MB,
                expected.memory_mib,
                expected.sidecar_memory_mib,
                settings::TASK_MEMORY_HEADROOM
            ),
        ));
    }
    out
}

/// Loki's limits against the required ingestion: its defaults (4 MB/s per tenant, 3 MB/s per
/// stream) reject the 10 MB/s of the requirement, and Alloy then retries until it drops.
fn check_ingestion(doc: &Yaml, required_mb: u32) -> Vec<Finding> {
    let mut out = Vec::new();
    let required = f64::from(required_mb);
    let mb = |path: &str, default: f64| -> Option<f64> {
        match get(doc, path) {
            None => Some(default),
            Some(Yaml::Integer(n)) => Some(*n as f64),
            Some(Yaml::Real(r)) => r.parse().ok(),
            Some(_) => None,
        }
    };
    let size_mb = |path: &str, default_mb: u64| -> Option<f64> {
        match get(doc, path) {
            None => Some((default_mb << 20) as f64 / f64::from(1u32 << 20)),
            Some(v) => byte_size(v).map(|b| b as f64 / f64::from(1u32 << 20)),
        }
    };
    let rate = mb("limits_config.ingestion_rate_mb", 4.0);
    let burst = mb("limits_config.ingestion_burst_size_mb", 6.0);
    let stream = size_mb("limits_config.per_stream_rate_limit", 3);
    let stream_burst = size_mb("limits_config.per_stream_rate_limit_burst", 15);
    let figure = format!("the required {required_mb} MB/s (loki.ingestion_mb_per_s)");
    for (path, value, floor, why) in [
        ("limits_config.ingestion_rate_mb", rate, Some(required), "the tenant's rate"),
        ("limits_config.ingestion_burst_size_mb", burst, rate.map(|r| r.max(required)), "the tenant's burst"),
        (
            "limits_config.per_stream_rate_limit",
            stream,
            Some(required),
            "all tasks of a service share one stream (task_id is structured metadata), so one stream's limit",
        ),
        (
            "limits_config.per_stream_rate_limit_burst",
            stream_burst,
            stream.map(|s| s.max(required)),
            "the stream burst",
        ),
    ] {
        match (value, floor) {
            (None, _) => out.push(finding(path, "is not a number (MB) Loki reads")),
            (Some(v), Some(min)) if v < min => out.push(finding(
                path,
                format!(
                    "is {v} MB{}: {why} must be at least {min} MB for {figure}",
                    if get(doc, path).is_none() { " (Loki's default)" } else { "" }
                ),
            )),
            _ => {}
        }
    }
    out
}

/// Loki must let a query run as long as Grafana waits for it (`datasource_timeout_s`): its
/// `limits_config.query_timeout` (default 1m) at least that, and the HTTP server's write timeout
/// (default 30s, which ends the response mid-query) longer.
pub fn check_query_timeouts(yaml: &str, datasource_timeout_s: u64) -> Vec<Finding> {
    let Ok(doc) = parse(yaml) else { return Vec::new() }; // reported by the config check
    let mut out = Vec::new();
    for (path, default, longer) in
        [("limits_config.query_timeout", "1m", false), ("server.http_server_write_timeout", "30s", true)]
    {
        let (text, unset) = match get_str(&doc, path) {
            Some(t) => (t.to_string(), false),
            None => (default.to_string(), true),
        };
        let Some(secs) = parse_duration_secs(&text) else {
            out.push(finding(path, format!("`{text}` is not a duration such as 70s")));
            continue;
        };
        let short = if longer { secs <= datasource_timeout_s } else { secs < datasource_timeout_s };
        if short {
            out.push(finding(
                path,
                format!(
                    "is {text}{}: Grafana's Loki datasource waits {datasource_timeout_s}s (grafana/provisioning/datasources/loki.yaml), so longer queries fail; make it {} {datasource_timeout_s}s",
                    if unset { " (Loki's default)" } else { "" },
                    if longer { "more than" } else { "at least" }
                ),
            ));
        }
    }
    out
}

/// Prometheus-style durations as Loki reads them: `168h`, `7d`, `1w`, `2h30m`, `90s`, `0`.
fn parse_duration_secs(s: &str) -> Option<u64> {
    if s == "0" {
        return Some(0);
    }
    let mut total = 0u64;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit())?;
        let n: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let secs = match &rest[..unit_len] {
            "y" => 365 * 86400,
            "w" => 7 * 86400,
            "d" => 86400,
            "h" => 3600,
            "m" => 60,
            "s" => 1,
            "ms" => 0,
            _ => return None,
        };
        total = total.checked_add(n.checked_mul(secs)?)?;
        rest = &rest[unit_len..];
    }
    Some(total)
}

/// flagext.ByteSize: a plain number of bytes, or a number with KB/MB/GB/TB (powers of 1024).
fn byte_size(v: &Yaml) -> Option<u64> {
    if let Some(n) = v.as_i64() {
        return u64::try_from(n).ok();
    }
    let s = v.as_str()?.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let n: u64 = s[..split].parse().ok()?;
    let shift = match s[split..].trim().to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "KB" | "K" | "KIB" => 10,
        "MB" | "M" | "MIB" => 20,
        "GB" | "G" | "GIB" => 30,
        "TB" | "T" | "TIB" => 40,
        _ => return None,
    };
    n.checked_mul(1 << shift)
}

#[cfg(test)]
mod tests;

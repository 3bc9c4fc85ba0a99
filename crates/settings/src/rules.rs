//! What each setting may be. infra/variables.tf is the source: its validations' regexes, `contains`
//! lists and error messages are read from it at build time; the rest of each condition is restated
//! here, and infra/tests/settings_cases.toml pins both layers to the same answers (it runs here and,
//! as settings_cases.tftest.hcl, against Terraform). Rules no Terraform variable carries (the state
//! bucket, ARNs that must name the env's own region and account) are AWS's own.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::sync::LazyLock;

use regex::Regex;

use crate::{Collector, Settings};

const VARIABLES_TF: &str = include_str!("../../../infra/variables.tf");
const LOCALS_TF: &str = include_str!("../../../infra/locals.tf");
const REGIONS_TXT: &str = include_str!("../../../data/aws-regions.txt");

/// `adot_image`'s pattern: its variable lives in infra/adot-sidecar.tf, which `cleanup-adot
/// --prune-code` deletes, so it is copied here (a test compares it while the file exists).
pub const ADOT_IMAGE_PATTERN: &str =
    r"^([a-z0-9.-]+(:[0-9]+)?/)?[a-z0-9._/-]+:v?[0-9]+\.[0-9]+\.[0-9]+(@sha256:[0-9a-f]{64})?$";

/// Env-file keys and the Terraform variables `render` writes them to (`env` is the file's name;
/// `versions.<x>` goes to variable `<x>`).
pub const TERRAFORM_VARIABLES: &[(&str, &str)] = &[
    ("env", "environment"),
    ("aws.region", "aws_region"),
    ("aws.account_id", "aws_account_id"),
    ("project.name", "project_name"),
    ("platform.vpc_id", "vpc_id"),
    ("platform.vpc_cidr", "vpc_cidr"),
    ("platform.private_subnet_ids", "private_subnet_ids"),
    ("platform.ecs_cluster_name", "ecs_cluster_name"),
    ("platform.capacity_provider_name", "capacity_provider_name"),
    ("platform.instance_security_group_id", "instance_security_group_id"),
    ("platform.service_connect_namespace_arn", "service_connect_namespace_arn"),
    ("platform.s3_prefix_list_id", "s3_prefix_list_id"),
    ("platform.amp_workspace_id", "amp_workspace_id"),
    ("platform.host_log_disk_mb", "host_log_disk_mb"),
    ("loki.cpu", "loki_cpu"),
    ("loki.memory", "loki_memory"),
    ("loki.count", "loki_count"),
    ("loki.retention_days", "loki_retention_days"),
    ("loki.ingestion_mb_per_s", "loki_ingestion_mb_per_s"),
    ("alloy.memory", "alloy_memory"),
    ("temporal.db_host", "temporal_db_host"),
    ("temporal.db_port", "temporal_db_port"),
    ("temporal.db_name", "temporal_db_name"),
    ("temporal.visibility_db_name", "temporal_visibility_db_name"),
    ("temporal.db_user", "temporal_db_user"),
    ("temporal.db_password_secret_arn", "temporal_db_password_secret_arn"),
];

/// The Terraform variable an env-file key renders to.
pub fn terraform_variable(key: &str) -> Option<&str> {
    if let Some(image) = key.strip_prefix("versions.") {
        return Some(image);
    }
    TERRAFORM_VARIABLES.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
}

/// One variable's `validation` block, as far as it can be read without evaluating HCL.
#[derive(Debug)]
pub struct Validation {
    /// `can(regex(p, …))` terms; `true` marks `!can(regex(…))`.
    pub patterns: Vec<(Regex, bool)>,
    /// `contains([…], var.x)` with whole numbers: the values allowed.
    pub one_of: Option<Vec<i64>>,
    /// The error message without the variable's name: "must be …".
    pub message: String,
    /// The condition without the terms read above: what rules.rs restates (a test pins it).
    pub restated: String,
}

/// The first validation of every variable in infra/variables.tf.
pub static TERRAFORM: LazyLock<BTreeMap<String, Validation>> = LazyLock::new(|| validations(VARIABLES_TF));

pub fn validations(text: &str) -> BTreeMap<String, Validation> {
    let mut out = BTreeMap::new();
    let (mut variable, mut condition) = (None::<String>, None::<String>);
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("variable \"") {
            variable = rest.split('"').next().map(str::to_string);
            continue;
        }
        let line = line.trim_start();
        if let Some(rest) = line.strip_prefix("condition") {
            condition = Some(rest.trim_start().trim_start_matches('=').trim().to_string());
        } else if let Some(rest) = line.strip_prefix("error_message") {
            if let (Some(name), Some(condition)) = (&variable, condition.take()) {
                let message = hcl_string(rest.trim_start().trim_start_matches('=').trim()).unwrap_or_default();
                let message = message.strip_prefix(&format!("{name} ")).unwrap_or(&message).to_string();
                out.entry(name.clone()).or_insert_with(|| parse_condition(&condition, message));
            }
        }
    }
    out
}

/// Variables of infra/variables.tf without a default: Terraform cannot plan without them.
pub static REQUIRED: LazyLock<BTreeSet<String>> = LazyLock::new(|| {
    let mut required = BTreeSet::new();
    for block in VARIABLES_TF.split("\nvariable \"").skip(1) {
        let name = block.split('"').next().unwrap_or_default();
        let body = block.split("\n}").next().unwrap_or_default();
        if !body.lines().any(|l| l.trim_start().starts_with("default ") || l.trim_start().starts_with("default=")) {
            required.insert(name.to_string());
        }
    }
    required
});

fn parse_condition(condition: &str, message: String) -> Validation {
    let mut patterns = Vec::new();
    let mut restated = condition.to_string();
    for (at, _) in condition.match_indices("regex(\"") {
        let pattern = hcl_string(&condition[at + 6..]).expect("a closed string");
        let negated = condition[..at].ends_with("!can(");
        patterns.push((Regex::new(&pattern).unwrap_or_else(|err| panic!("regex {pattern:?}: {err}")), negated));
        // The whole `[!]can(regex("…", x))` term.
        let start = at - if negated { 5 } else { 4 };
        let end = at + condition[at..].find("))").expect("a closed call") + 2;
        restated = restated.replacen(&condition[start..end], "", 1);
    }
    let one_of = condition.find("contains([").and_then(|at| {
        let list = &condition[at + 10..];
        let numbers: Vec<i64> =
            list[..list.find(']')?].split(',').map(|n| n.trim().parse().ok()).collect::<Option<_>>()?;
        let end = at + condition[at..].find(')')? + 1;
        restated = restated.replacen(&condition[at..end], "", 1);
        Some(numbers)
    });
    let restated = restated.split("&&").map(str::trim).filter(|t| !t.is_empty()).collect::<Vec<_>>().join(" && ");
    Validation { patterns, one_of, message, restated }
}

/// The HCL string literal at the start of `text`, unescaped.
fn hcl_string(text: &str) -> Option<String> {
    let mut chars = text.strip_prefix('"')?.chars();
    let mut out = String::new();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(out),
            '\\' => match chars.next()? {
                'n' => out.push('\n'),
                other => out.push(other),
            },
            c => out.push(c),
        }
    }
    None
}

fn terraform(variable: &str) -> &'static Validation {
    TERRAFORM.get(variable).unwrap_or_else(|| panic!("infra/variables.tf has no validation for {variable}"))
}

/// `value` against `variable`'s validation; `rest` is the part of the condition restated here.
fn check_string(variable: &str, value: &str, rest: bool) -> Result<(), String> {
    let v = terraform(variable);
    if rest && v.patterns.iter().all(|(re, negated)| re.is_match(value) != *negated) {
        Ok(())
    } else {
        Err(v.message.clone())
    }
}

fn check_number(variable: &str, value: i64, rest: bool) -> Result<(), String> {
    let v = terraform(variable);
    if rest && v.one_of.as_ref().is_none_or(|allowed| allowed.contains(&value)) {
        Ok(())
    } else {
        Err(v.message.clone())
    }
}

// ---------------------------------------------------------------------------------------------
// Regions (data/aws-regions.txt, also read by infra/variables.tf)

/// Every region an env file may name, with its partition (`aws`, `aws-cn`, `aws-us-gov`).
pub fn regions() -> impl Iterator<Item = (&'static str, &'static str)> {
    REGIONS_TXT.lines().filter(|l| !l.trim().is_empty() && !l.starts_with('#')).filter_map(|l| l.split_once(' '))
}

pub fn partition(region: &str) -> Option<&'static str> {
    regions().find(|(r, _)| *r == region).map(|(_, p)| p)
}

pub fn check_region(region: &str) -> Result<(), String> {
    check_string("aws_region", region, partition(region).is_some()).map_err(|why| {
        let names: Vec<&str> = regions().map(|(r, _)| r).collect();
        let lower = region.to_ascii_lowercase();
        if lower != region && partition(&lower).is_some() {
            return format!("{why} Region names are lower case: did you mean {lower}?");
        }
        match crate::hint::did_you_mean(region, names.iter().copied()) {
            Some(near) => format!("{why} Did you mean {near}?"),
            None => format!("{why} Known: {}.", names.join(", ")),
        }
    })
}

// ---------------------------------------------------------------------------------------------
// Conditions restated from Terraform, and AWS rules it does not carry

/// A VPC's IPv4 block: `a.b.c.d/n` in canonical form (network address, no leading zeros), /16-/28.
pub fn vpc_cidr_ok(cidr: &str) -> bool {
    let Some((addr, prefix)) = cidr.split_once('/') else { return false };
    let (Ok(addr), Ok(prefix)) = (addr.parse::<Ipv4Addr>(), prefix.parse::<u32>()) else { return false };
    let network = if prefix == 0 { 0 } else { u32::from(addr) & (u32::MAX << (32 - prefix.min(32))) };
    (16..=28).contains(&prefix) && format!("{}/{prefix}", Ipv4Addr::from(network)) == cidr
}

/// S3's bucket naming rules (general purpose buckets).
pub fn check_bucket_name(name: &str) -> Result<(), String> {
    static IP: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$").unwrap());
    let alnum = |b: Option<u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    let ok = (3..=63).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        && alnum(name.bytes().next())
        && alnum(name.bytes().last())
        && !name.contains("..")
        && !IP.is_match(name)
        && !["xn--", "sthree-", "amzn-s3-demo-"].iter().any(|p| name.starts_with(p))
        && !["-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"].iter().any(|s| name.ends_with(s));
    if ok {
        Ok(())
    } else {
        Err("must be an S3 bucket name: 3-63 lowercase letters, digits, dots and hyphens, starting and ending \
             with a letter or digit, without `..`, not an IP address, not starting with xn--, sthree- or \
             amzn-s3-demo- and not ending with -s3alias, --ol-s3, .mrap, --x-s3 or --table-s3."
            .into())
    }
}

/// The S3 backend's state key.
pub fn check_state_key(key: &str) -> Result<(), String> {
    if !key.is_empty() && key.len() <= 1024 && !key.starts_with('/') && !key.ends_with('/') && !key.contains("//") {
        Ok(())
    } else {
        Err("must be an S3 object key of 1-1024 bytes, not starting or ending with / and without //, such as loki-migration/dev.tfstate".into())
    }
}

/// ECS task sizes: memory range and step per CPU value, from `local.ecs_task_sizes` (infra/locals.tf).
pub fn ecs_task_sizes() -> BTreeMap<i64, (i64, i64, i64)> {
    static LINE: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r#""([0-9]+)"\s*=\s*\{\s*min\s*=\s*([0-9]+),\s*max\s*=\s*([0-9]+),\s*step\s*=\s*([0-9]+)\s*\}"#)
            .unwrap()
    });
    LINE.captures_iter(LOCALS_TF)
        .map(|c| {
            let n = |i: usize| c[i].parse::<i64>().expect("digits");
            (n(1), (n(2), n(3), n(4)))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The checks

/// A setting that is not allowed: its key and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: String,
    pub message: String,
    /// Other keys it is computed from: a problem already reported with one of them (whose value
    /// was replaced to go on) makes this one moot.
    pub inputs: &'static [&'static str],
}

impl Problem {
    /// `key = value: why`, the value as [`shown`] lets it be echoed.
    fn new(key: &str, value: impl std::fmt::Display, why: impl std::fmt::Display) -> Problem {
        let value = shown(key, &value.to_string());
        Problem { key: key.to_string(), message: format!("{key} = {value}: {why}"), inputs: &[] }
    }
}

/// Longest value a message echoes: past it, the start and the length.
const ECHO_MAX: usize = 80;

/// A value as a message may echo it: never one that looks like a secret (a password pasted
/// where a secret's ARN belongs, credentials in a URL: terminals and CI logs keep what they
/// print), and never more than [`ECHO_MAX`] characters.
pub fn shown(key: &str, value: &str) -> String {
    let bare = value.trim_matches('"');
    let secret_key = key.contains("password") || key.contains("secret");
    let credentials_in_url = bare
        .split_once("://")
        .is_some_and(|(_, rest)| rest.split(['/', '?', '#']).next().is_some_and(|authority| authority.contains('@')));
    if (secret_key && !bare.starts_with("arn:")) || credentials_in_url {
        return format!("(a value not shown: it may be a secret; {} characters)", bare.chars().count());
    }
    if value.chars().count() > ECHO_MAX {
        let start: String = value.chars().take(ECHO_MAX).collect();
        return format!("{start}… ({} characters)", value.chars().count());
    }
    value.to_string()
}

/// Numeric settings: key, Terraform variable, the restated rest of its condition, and a value
/// that lets the typed parse go on after a bad one is reported.
type NumberRule = (&'static str, &'static str, fn(i64) -> bool, i64);
const NUMBERS: &[NumberRule] = &[
    ("platform.host_log_disk_mb", "host_log_disk_mb", |n| (1000..=10_000_000).contains(&n), 20_000),
    ("loki.cpu", "loki_cpu", |_| true, 512),
    ("loki.memory", "loki_memory", |n| (512..=122_880).contains(&n), 1024),
    ("loki.count", "loki_count", |n| n == 1 || (3..=9).contains(&n), 1),
    ("loki.retention_days", "loki_retention_days", |n| (1..=3650).contains(&n), 7),
    ("loki.ingestion_mb_per_s", "loki_ingestion_mb_per_s", |n| (1..=1000).contains(&n), 10),
    ("alloy.memory", "alloy_memory", |n| (128..=2048).contains(&n), 384),
    ("temporal.db_port", "temporal_db_port", |n| (1..=65_535).contains(&n), 5432),
];

/// Checks the numbers in the document, where a negative or fractional one is still visible, and
/// replaces each bad one so the typed parse can report the rest.
pub(crate) fn check_numbers(doc: &mut toml_edit::DocumentMut) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut good = BTreeMap::new();
    for (key, variable, rest, fallback) in NUMBERS {
        let (section, field) = key.split_once('.').expect("section.field");
        let Some(value) = doc
            .get_mut(section)
            .and_then(|t| t.as_table_like_mut())
            .and_then(|t| t.get_mut(field))
            .and_then(|item| item.as_value_mut())
        else {
            continue;
        };
        let result = match value.as_integer() {
            Some(n) => check_number(variable, n, rest(n)).map(|()| n),
            None => Err(format!("not a whole number; {}", terraform(variable).message)),
        };
        match result {
            Ok(n) => {
                good.insert(*key, n);
            }
            Err(why) => {
                let mut shown = value.clone();
                shown.decor_mut().clear();
                problems.push(Problem::new(key, shown, why));
                let decor = value.decor().clone();
                *value = (*fallback).into();
                *value.decor_mut() = decor;
            }
        }
    }
    if let (Some(cpu), Some(memory)) = (good.get("loki.cpu"), good.get("loki.memory")) {
        if let Some((min, max, step)) = ecs_task_sizes().get(cpu).copied() {
            if !(min..=max).contains(memory) || (memory - min) % step != 0 {
                problems.push(Problem::new(
                    "loki.memory",
                    memory,
                    format!("not valid with loki.cpu = {cpu}: ECS needs {min}-{max} MiB in steps of {step}"),
                ));
            }
        }
    }
    problems
}

/// Why `replicas` Loki tasks over `subnets` private subnets lose the write quorum when one AZ
/// goes: ECS spreads the tasks over the AZs and the ring (replication factor 3, not zone-aware)
/// may put two of a stream's three copies in one AZ once an AZ holds two replicas. Offline, the
/// best case is assumed (each subnet in an AZ of its own), so this is a first filter: Terraform's
/// `loki_az_quorum` precondition looks the subnets up and counts their distinct AZs.
fn az_quorum_problem(replicas: u32, subnets: usize) -> Option<String> {
    let per_az = (replicas as usize).div_ceil(subnets.max(1));
    (replicas > 1 && per_az > 1).then(|| {
        format!(
            "{replicas} replicas over {subnets} private subnet(s) put {per_az} in one AZ; losing that AZ loses 2 of a \
             stream's 3 copies, below the write quorum of 2. Use at most one replica per AZ: add private subnets in \
             other AZs (platform.private_subnet_ids, one per AZ; the plan looks up their AZs and refuses two in one) \
             or lower loki.count to {}",
            if subnets >= 3 { subnets.min(9).to_string() } else { "1".to_string() }
        )
    })
}

/// Records a refused string setting.
fn note(problems: &mut Vec<Problem>, key: &str, value: &str, result: Result<(), String>) {
    if let Err(why) = result {
        problems.push(Problem::new(key, format!("{value:?}"), why));
    }
}

/// Every rule on the typed settings of env `env` (the numbers are checked before).
pub(crate) fn check(env: Option<&str>, s: &Settings) -> Vec<Problem> {
    let mut problems = Vec::new();
    let p = &s.platform;
    let subnets = &p.private_subnet_ids;
    let distinct = subnets.iter().collect::<BTreeSet<_>>().len() == subnets.len();
    let rest = (1..=16).contains(&subnets.len()) && distinct;
    let bad = subnets.iter().find(|id| check_string("private_subnet_ids", id, true).is_err());
    if let Err(why) = check_string("private_subnet_ids", bad.map_or("subnet-00000000", |s| s), rest) {
        problems.push(Problem::new("platform.private_subnet_ids", format!("{subnets:?}"), why));
    }
    if let Some(why) = az_quorum_problem(s.loki.count, subnets.len()) {
        problems.push(Problem::new("loki.count", s.loki.count, why));
    }
    if let Some(env) = env {
        note(&mut problems, "env", env, check_env_name(env));
    }
    note(&mut problems, "aws.region", &s.aws.region, check_region(&s.aws.region));
    note(&mut problems, "aws.account_id", &s.aws.account_id, check_string("aws_account_id", &s.aws.account_id, true));
    note(&mut problems, "project.name", &s.project.name, check_string("project_name", &s.project.name, true));
    note(&mut problems, "state.bucket", &s.state.bucket, check_bucket_name(&s.state.bucket));
    note(&mut problems, "state.key", &s.state.key, check_state_key(&s.state.key));
    for (key, value) in [
        ("platform.vpc_id", &p.vpc_id),
        ("platform.ecs_cluster_name", &p.ecs_cluster_name),
        ("platform.capacity_provider_name", &p.capacity_provider_name),
        ("platform.instance_security_group_id", &p.instance_security_group_id),
        ("platform.service_connect_namespace_arn", &p.service_connect_namespace_arn),
        ("platform.s3_prefix_list_id", &p.s3_prefix_list_id),
        ("platform.amp_workspace_id", &p.amp_workspace_id),
    ] {
        note(&mut problems, key, value, check_string(terraform_variable(key).expect("mapped"), value, true));
    }
    note(
        &mut problems,
        "platform.vpc_cidr",
        &p.vpc_cidr,
        check_string("vpc_cidr", &p.vpc_cidr, vpc_cidr_ok(&p.vpc_cidr)),
    );
    let known_images: Vec<&str> =
        TERRAFORM.keys().map(String::as_str).chain(["adot_image"]).filter(|v| v.ends_with("_image")).collect();
    let adot_image = Regex::new(ADOT_IMAGE_PATTERN).expect("valid");
    for (name, image) in &s.versions {
        let key = format!("versions.{name}");
        let result = if name == "adot_image" {
            crate::check_pinned_image(image).and_then(|()| {
                if adot_image.is_match(image) {
                    Ok(())
                } else {
                    Err("must be pinned to a version tag such as public.ecr.aws/aws-observability/aws-otel-collector:v0.40.0 (never `latest` or untagged).".into())
                }
            })
        } else if known_images.contains(&name.as_str()) {
            check_string(name, image, true).and_then(|()| check_image_host(name, image, &s.aws))
        } else {
            Err(format!("not an image this project runs; expected one of: {}", known_images.join(", ")))
        };
        note(&mut problems, &key, image, result);
    }
    for image in known_images.iter().filter(|v| REQUIRED.contains(**v) && !s.versions.contains_key(**v)) {
        problems.push(Problem {
            key: format!("versions.{image}"),
            message: format!("versions.{image} is missing: Terraform needs it; {}", terraform(image).message),
            inputs: &[],
        });
    }
    let t = &s.temporal;
    note(
        &mut problems,
        "temporal.db_host",
        &t.db_host,
        check_string("temporal_db_host", &t.db_host, t.db_host.len() <= 253),
    );
    for (key, value) in [
        ("temporal.db_name", &t.db_name),
        ("temporal.visibility_db_name", &t.visibility_db_name),
        ("temporal.db_user", &t.db_user),
        ("temporal.db_password_secret_arn", &t.db_password_secret_arn),
    ] {
        note(&mut problems, key, value, check_string(terraform_variable(key).expect("mapped"), value, true));
    }
    // The example's ARNs and host names carry its region and account: another env must use its own.
    if let Some(partition) = partition(&s.aws.region) {
        let here = Place { partition, region: &s.aws.region, account: &s.aws.account_id };
        for (key, arn) in [
            ("platform.service_connect_namespace_arn", &p.service_connect_namespace_arn),
            ("temporal.db_password_secret_arn", &t.db_password_secret_arn),
        ] {
            note(&mut problems, key, arn, here.check_arn(arn));
        }
        note(&mut problems, "temporal.db_host", &t.db_host, here.check_host(&t.db_host));
        for name in FROM_ECR.iter().map(|(name, _)| *name) {
            if let Some(image) = s.versions.get(name) {
                note(&mut problems, &format!("versions.{name}"), image, here.check_host(image));
            }
        }
    }
    // Loki's task also holds its Alloy metrics sidecar and the headroom (infra/loki.tf gives Loki the rest).
    if s.loki.memory < s.alloy.memory + crate::TASK_MEMORY_HEADROOM + crate::LOKI_CONTAINER_MIN_MEMORY {
        problems.push(Problem::new(
            "alloy.memory",
            s.alloy.memory,
            format!(
                "Loki's task (loki.memory = {}) also holds this Alloy sidecar and {} MiB for the Service Connect proxy and ECS Exec, and would leave Loki less than {} MiB; lower alloy.memory or raise loki.memory",
                s.loki.memory,
                crate::TASK_MEMORY_HEADROOM,
                crate::LOKI_CONTAINER_MIN_MEMORY
            ),
        ));
    }
    // The size must carry the env's own rate, with room for a restart's catch-up and a query.
    let rate = f64::from(s.loki.ingestion_mb_per_s);
    if let Some(why) = crate::capacity::Capacity::of_env(s).shortfall(rate) {
        let fix = match crate::capacity::smallest_size(rate, s.alloy.memory) {
            Some((cpu, memory)) => {
                format!("loki.cpu = {cpu} with loki.memory = {memory} is the smallest size that would")
            }
            None => "no single Loki task size does: lower loki.ingestion_mb_per_s".to_string(),
        };
        problems.push(Problem {
            inputs: &["loki.cpu", "loki.memory", "alloy.memory"],
            ..Problem::new(
                "loki.ingestion_mb_per_s",
                s.loki.ingestion_mb_per_s,
                format!(
                    "loki.cpu = {} with loki.memory = {} cannot carry it: {why}; {fix} (sizes from Loki 3.7.6 as measured, docs/measured.md)",
                    s.loki.cpu, s.loki.memory
                ),
            )
        });
    }
    if !(1..=crate::MAX_PARITY_HOURS).contains(&s.migration.parity_hours) {
        problems.push(Problem::new(
            "migration.parity_hours",
            s.migration.parity_hours,
            format!(
                "expected 1 to {} hours (30 days, the longest query Loki accepts by default), e.g. 24",
                crate::MAX_PARITY_HOURS
            ),
        ));
    }
    if !s.adot.enabled {
        let on_adot: Vec<&str> =
            s.services.iter().filter(|(_, s)| s.collector == Collector::Adot).map(|(name, _)| name).collect();
        if !on_adot.is_empty() {
            problems.push(Problem {
                key: "adot.enabled".into(),
                message: format!(
                    "adot.enabled = false while {} still use the adot collector; migrate them first (`cargo xtask migrate-sidecars`)",
                    on_adot.join(", ")
                ),
                inputs: &[],
            });
        }
    }
    problems
}

/// Images that must come from this account's private ECR (infra/images.tf), each with what a failed
/// pull costs. Temporal's and the benchmark worker's images are the fleet's own, pulled from where
/// they were before this migration; ADOT's is on ECR Public (public.ecr.aws, served from AWS's
/// network) and goes away with cleanup-adot.
const FROM_ECR: &[(&str, &str)] = &[
    ("loki_image", "a Loki task whose image cannot be pulled never starts"),
    ("alloy_image", "a sidecar that cannot be pulled stops every Temporal task (each waits for its sidecar to start)"),
    ("grafana_image", "a Grafana task whose image cannot be pulled never starts"),
];

/// Private ECR: `<account>.dkr.ecr.<region>.amazonaws.com[.cn]/…` (infra/variables.tf's second
/// validation of each image in [`FROM_ECR`]).
static ECR_IMAGE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^([0-9]{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?/").unwrap());

/// `image`'s registry when it is not this account's ECR, named, with why that matters and the fix.
fn check_image_host(name: &str, image: &str, aws: &crate::Aws) -> Result<(), String> {
    let Some((_, cost)) = FROM_ECR.iter().find(|(n, _)| *n == name) else { return Ok(()) };
    if ECR_IMAGE.is_match(image) {
        return Ok(());
    }
    // Docker's rule: a first component with a dot or a port, or `localhost`, is a registry.
    let (host, path) = match image.split_once('/') {
        Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => (first, rest),
        _ => ("docker.io", image),
    };
    let registry = format!("{}.dkr.ecr.{}.amazonaws.com", aws.account_id, aws.region);
    if name == "grafana_image" {
        return Err(format!(
            "is served from {host}, outside ECR, and Docker Hub rate-limits anonymous pulls: {cost}. Use the image \
             `cargo xtask build-grafana --execute` pushes to {registry}/<project>-grafana"
        ));
    }
    let path = if host == "docker.io" && !path.contains('/') { format!("library/{path}") } else { path.to_string() };
    Err(format!(
        "is served from {host}, outside ECR: Docker Hub rate-limits anonymous pulls, and {cost}. Serve it from this \
         account's ECR, through a pull-through cache rule for Docker Hub or a mirror (README, \"Images\"), such as \
         {registry}/docker-hub/{path}"
    ))
}

/// Environment names become file names and the Terraform variable `environment`.
pub fn check_env_name(name: &str) -> Result<(), String> {
    check_string("environment", name, true)
}

/// Where an environment lives: what its own ARNs and AWS host names must name.
struct Place<'a> {
    partition: &'a str,
    region: &'a str,
    account: &'a str,
}

impl Place<'_> {
    fn check_arn(&self, arn: &str) -> Result<(), String> {
        let fields: Vec<&str> = arn.splitn(6, ':').collect();
        let [_, partition, _, region, account, _] = fields[..] else { return Ok(()) };
        if partition == self.partition && region == self.region && account == self.account {
            return Ok(());
        }
        Err(format!(
            "names partition {partition}, region {region} and account {account}, but this env is {} / {} / {} \
             (aws.region, aws.account_id); use the ARN from your own account and region",
            self.partition, self.region, self.account
        ))
    }

    /// RDS endpoints (`….<region>.rds.amazonaws.com`) and ECR registries
    /// (`<account>.dkr.ecr.<region>.amazonaws.com/…`) name their region and account.
    fn check_host(&self, text: &str) -> Result<(), String> {
        static ECR: LazyLock<Regex> =
            LazyLock::new(|| Regex::new(r"^([0-9]{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?/").unwrap());
        let host = text.split('/').next().unwrap_or(text);
        let (account, region) = if let Some(rest) = host.strip_suffix(".rds.amazonaws.com") {
            (None, rest.rsplit('.').next().unwrap_or(""))
        } else if let Some(c) = ECR.captures(text) {
            (Some(c.get(1).map_or("", |m| m.as_str())), c.get(2).map_or("", |m| m.as_str()))
        } else {
            return Ok(());
        };
        if region == self.region && account.is_none_or(|a| a == self.account) {
            return Ok(());
        }
        Err(format!(
            "is in region {region}{}, but this env is {} / {} (aws.region, aws.account_id); use your own",
            account.map(|a| format!(" and account {a}")).unwrap_or_default(),
            self.region,
            self.account
        ))
    }
}

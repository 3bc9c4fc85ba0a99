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
    assert!(
        err.contains(
            "loki.retention_days = 0: must be between 1 and 3650 and a CloudWatch retention value: 1, 3, 5, 7"
        ),
        "{err}"
    );
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
    assert!(err.contains("loki.count = 2: must be 1 (single replica, in-memory ring) or 3-9"), "{err}");
}

#[test]
fn ha_replicas_must_keep_the_write_quorum_when_an_az_goes() {
    const HA: &str = include_str!("../../../envs/ha-example.toml");
    assert_eq!(parse(HA).unwrap().loki.count, 3);
    let two_azs = HA.replacen(", \"subnet-0a1b2c3d4e5f60718\"]", "]", 1);
    assert_ne!(two_azs, HA);
    let err = problems(&two_azs);
    assert!(err.contains("loki.count = 3: 3 replicas over 2 private subnet(s) put 2 in one AZ"), "{err}");
    assert!(err.contains("lower loki.count to 1"), "{err}");
    let err = problems(&HA.replacen("count = 3", "count = 4", 1));
    assert!(
        err.contains("4 replicas over 3 private subnet(s) put 2 in one AZ") && err.contains("lower loki.count to 3"),
        "{err}"
    );
    // One replica needs no quorum, whatever the subnets.
    assert!(parse(&two_azs.replacen("count = 3", "count = 1", 1)).is_ok());
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
    assert!(!err.contains("hunter2"), "a password is never echoed: {err}");
}

#[test]
fn secrets_are_never_echoed_and_long_values_are_cut() {
    let url = EXAMPLE.replacen(
        "db_host = \"temporal-dev.cluster-abcdefghijkl.eu-west-1.rds.amazonaws.com\"",
        "db_host = \"postgres://temporal:s3cr3t-pw@db.example.com:5432/temporal\"",
        1,
    );
    let err = problems(&url);
    assert!(err.contains("temporal.db_host = (a value not shown: it may be a secret;"), "{err}");
    assert!(!err.contains("s3cr3t-pw"), "{err}");
    let long = EXAMPLE.replacen(
        "ecs_cluster_name = \"temporal-dev\"",
        &format!("ecs_cluster_name = \"{}\"", "x".repeat(200_000)),
        1,
    );
    let err = problems(&long);
    assert!(err.contains("… (200002 characters)"), "{err}");
    assert!(err.len() < 2_000, "{} bytes", err.len());
    assert_eq!(rules::shown("platform.vpc_id", "\"vpc-1\""), "\"vpc-1\"");
    assert_eq!(
        rules::shown("temporal.db_password_secret_arn", "\"arn:aws:secretsmanager:x\""),
        "\"arn:aws:secretsmanager:x\""
    );
}

fn problems(text: &str) -> String {
    format!("{:#}", parse(text).unwrap_err())
}

#[test]
fn a_negative_number_names_the_key_and_what_is_allowed() {
    let err = problems(&EXAMPLE.replacen("retention_days = 7", "retention_days = -7", 1));
    assert!(err.contains("loki.retention_days = -7: must be between 1 and 3650"), "{err}");
    assert!(!err.contains("u32"), "{err}");
    let err = problems(&EXAMPLE.replacen("cpu = 1024", "cpu = 1024.5", 1));
    assert!(err.contains("loki.cpu = 1024.5: not a whole number; must be one of 256, 512"), "{err}");
    let err = problems(&EXAMPLE.replacen("db_port = 5432", "db_port = -1", 1));
    assert!(err.contains("temporal.db_port = -1: must be a whole number between 1 and 65535"), "{err}");
}

#[test]
fn every_problem_is_reported_at_once() {
    let text = EXAMPLE
        .replacen("cpu = 1024", "cpu = 3", 1)
        .replacen("retention_days = 7", "retention_days = -7", 1)
        .replacen("region = \"eu-west-1\"", "region = \"eu-wst-1\"", 1)
        .replacen("bucket = \"temporal-dev-terraform-state\"", "bucket = \"Bad_Bucket!\"", 1);
    let err = problems(&text);
    for key in
        ["loki.cpu = 3", "loki.retention_days = -7", "aws.region = \"eu-wst-1\"", "state.bucket = \"Bad_Bucket!\""]
    {
        assert!(err.contains(key), "no {key} in {err}");
    }
    // A bad cpu does not also blame the memory that fits a good one.
    assert!(!err.contains("loki.memory"), "{err}");
}

#[test]
fn a_misspelt_region_gets_the_nearest_one() {
    let err = rules::check_region("eu-wst-1").unwrap_err();
    assert!(err.ends_with("Did you mean eu-west-1?"), "{err}");
    let err = rules::check_region("Not A Region!").unwrap_err();
    assert!(err.contains("Known: af-south-1, ") && err.contains("us-west-2"), "{err}");
    assert_eq!(rules::partition("cn-north-1"), Some("aws-cn"));
    assert_eq!(rules::partition("eu-west-1"), Some("aws"));
}

#[test]
fn memory_must_fit_the_cpu_as_ecs_sizes_it() {
    let sizes = rules::ecs_task_sizes();
    assert_eq!(sizes.keys().copied().collect::<Vec<_>>(), [256, 512, 1024, 2048, 4096, 8192, 16384]);
    assert_eq!(sizes[&512], (1024, 4096, 1024));
    let err = problems(&EXAMPLE.replacen("memory = 2048", "memory = 16384", 1));
    assert!(
        err.contains("loki.memory = 16384: not valid with loki.cpu = 1024: ECS needs 2048-8192 MiB in steps of 1024"),
        "{err}"
    );
}

#[test]
fn vpc_cidrs_are_network_addresses_from_16_to_28() {
    for ok in ["10.0.0.0/16", "172.31.16.0/20", "192.168.0.0/28"] {
        assert!(rules::vpc_cidr_ok(ok), "{ok}");
    }
    for bad in [
        "10.0.0.0/33",
        "10.0.0.0/15",
        "10.0.0.1/16",
        "010.0.0.0/16",
        "10.0.0.0/016",
        "10.0.0.0",
        "10.0.0/16",
        " 10.0.0.0/16",
    ] {
        assert!(!rules::vpc_cidr_ok(bad), "{bad}");
    }
}

#[test]
fn env_names_follow_terraforms_environment_variable() {
    assert!(check_env_name("dev-2").is_ok());
    for bad in ["my_env", "2dev", "Dev", "", "a-name-of-thirty-three-characters"] {
        let err = format!("{:#}", check_env_name(bad).unwrap_err());
        assert!(err.contains("must be 1-32 characters of lowercase letters"), "{bad}: {err}");
    }
}

// The rules are read from infra/variables.tf: each mapped variable must have a validation there.
#[test]
fn every_mapped_variable_has_a_terraform_validation() {
    for (key, variable) in rules::TERRAFORM_VARIABLES {
        let v = rules::TERRAFORM.get(*variable).unwrap_or_else(|| panic!("{key}: no validation of {variable}"));
        assert!(!v.message.is_empty() && !v.message.starts_with(variable), "{variable}: {}", v.message);
    }
    for number in ["loki_cpu", "loki_retention_days"] {
        assert!(rules::TERRAFORM[number].one_of.is_some(), "{number}: its contains() list was not read");
    }
    assert_eq!(rules::TERRAFORM["vpc_id"].patterns.len(), 1);
    assert!(rules::TERRAFORM["project_name"].patterns.iter().any(|(_, negated)| *negated));
}

#[test]
fn the_adot_image_pattern_is_terraforms_while_its_file_exists() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../infra/adot-sidecar.tf");
    let Ok(text) = std::fs::read_to_string(path) else { return };
    let v = &rules::validations(&text)["adot_image"];
    assert_eq!(v.patterns.iter().map(|(re, _)| re.as_str()).collect::<Vec<_>>(), [rules::ADOT_IMAGE_PATTERN]);
}

#[test]
fn retarget_moves_the_example_arns_and_hosts_only() {
    let mut doc: TomlDocument = EXAMPLE.parse().unwrap();
    let moved = retarget(&mut doc, "cn-north-1", "210987654321");
    assert_eq!(
        moved,
        [
            "platform.service_connect_namespace_arn",
            "versions.loki_image",
            "versions.alloy_image",
            "temporal.db_host",
            "temporal.db_password_secret_arn"
        ]
    );
    assert!(doc
        .to_string()
        .contains("\"210987654321.dkr.ecr.cn-north-1.amazonaws.com/docker-hub/grafana/loki:3.7.6\""));
    let text = doc.to_string();
    assert!(text.contains("\"arn:aws-cn:servicediscovery:cn-north-1:210987654321:namespace/ns-abcdefghijklmnop\""));
    assert!(text.contains(".cn-north-1.rds.amazonaws.com\""));
    assert!(text.contains("region = \"eu-west-1\""), "aws.region is the caller's to set");
    let changed = EXAMPLE.lines().zip(text.lines()).filter(|(a, b)| a != b).count();
    assert_eq!(changed, 5, "comments and other values stay");
}

#[test]
fn a_wrong_type_names_its_line_and_key_next_to_the_other_problems() {
    let text = EXAMPLE.replacen("enabled = false\ncpu = 1024", "enabled = \"no\"\ncpu = -512", 1).replacen(
        "task_id_label = false",
        "task_id_label = \"no\"",
        1,
    );
    let err = problems(&text);
    assert!(err.contains("loki.cpu = -512: must be one of"), "{err}");
    assert!(err.contains("line ") && err.contains("expected a boolean"), "{err}");
}

/// The parts of Terraform conditions rules.rs restates (the rest is read from variables.tf). When
/// one changes, change the rule and its cases in infra/tests/settings_cases.toml, then the pin.
const RESTATED: &[(&str, &str)] = &[
    (
        "aws_region",
        r##"contains([for line in split("\n", file("../data/aws-regions.txt")) : split(" ", line)[0] if trimspace(line) != "" && !startswith(line, "#")], var.aws_region)"##,
    ),
    (
        "vpc_cidr",
        r#"try(cidrsubnet(var.vpc_cidr, 0, 0) == var.vpc_cidr && tonumber(split("/", var.vpc_cidr)[1]) >= 16 && tonumber(split("/", var.vpc_cidr)[1]) <= 28, false)"#,
    ),
    (
        "private_subnet_ids",
        "length(var.private_subnet_ids) > 0 && length(var.private_subnet_ids) <= 16 && length(distinct(var.private_subnet_ids)) == length(var.private_subnet_ids) && alltrue([for s in var.private_subnet_ids : ])",
    ),
    (
        "host_log_disk_mb",
        "var.host_log_disk_mb >= 1000 && var.host_log_disk_mb <= 10000000 && floor(var.host_log_disk_mb) == var.host_log_disk_mb",
    ),
    ("loki_memory", "var.loki_memory >= 512 && var.loki_memory <= 122880 && floor(var.loki_memory) == var.loki_memory"),
    (
        "loki_count",
        "floor(var.loki_count) == var.loki_count && (var.loki_count == 1 || (var.loki_count >= 3 && var.loki_count <= 9))",
    ),
    ("loki_retention_days", "var.loki_retention_days >= 1 && var.loki_retention_days <= 3650"),
    (
        "loki_ingestion_mb_per_s",
        "var.loki_ingestion_mb_per_s >= 1 && var.loki_ingestion_mb_per_s <= 1000 && floor(var.loki_ingestion_mb_per_s) == var.loki_ingestion_mb_per_s",
    ),
    ("alloy_memory", "var.alloy_memory >= 128 && var.alloy_memory <= 2048"),
    ("temporal_db_host", "length(var.temporal_db_host) <= 253"),
    (
        "temporal_db_port",
        "var.temporal_db_port >= 1 && var.temporal_db_port <= 65535 && floor(var.temporal_db_port) == var.temporal_db_port",
    ),
    ("grafana_image", "var.grafana_image == null ||"),
];

// A Terraform condition that changes beyond its regexes and lists fails here, not in production.
#[test]
fn the_terraform_conditions_restated_in_rust_are_pinned() {
    let images = ["loki_image", "alloy_image", "temporal_image", "benchmark_worker_image", "grafana_image"];
    for variable in rules::TERRAFORM_VARIABLES.iter().map(|(_, v)| *v).chain(images) {
        let pinned = RESTATED.iter().find(|(v, _)| *v == variable).map_or("", |(_, c)| *c);
        assert_eq!(
            rules::TERRAFORM[variable].restated,
            pinned,
            "infra/variables.tf: the condition of {variable} changed; restate it in crates/settings/src/rules.rs"
        );
    }
}

#[test]
fn an_image_terraform_requires_must_be_set() {
    assert!(rules::REQUIRED.contains("loki_image") && !rules::REQUIRED.contains("benchmark_worker_image"));
    assert!(rules::REQUIRED.contains("aws_region") && !rules::REQUIRED.contains("loki_cpu"));
    let line = "loki_image = \"123456789012.dkr.ecr.eu-west-1.amazonaws.com/docker-hub/grafana/loki:3.7.6\"\n";
    let err = problems(&EXAMPLE.replacen(line, "", 1));
    assert!(
        err.contains("versions.loki_image is missing: Terraform needs it; must be pinned to a Loki 3.7.x tag"),
        "{err}"
    );
    let text = EXAMPLE.replacen("benchmark_worker_image = \"ghcr.io/temporalio/benchmark-workers:v1.5.0\"\n", "", 1);
    assert!(parse(&text).is_ok(), "benchmark_worker_image has a default");
}

// Issue 31.4: Docker Hub rate-limits anonymous pulls, and an Alloy sidecar that cannot be pulled
// stops every Temporal task.
// req: 3.11
#[test]
fn loki_alloy_and_grafana_images_outside_ecr_are_refused_with_the_reason_and_the_fix() {
    let ecr = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/docker-hub/";
    let err = problems(&EXAMPLE.replacen(&format!("{ecr}grafana/alloy"), "grafana/alloy", 1));
    assert!(
        err.contains(
            "versions.alloy_image = \"grafana/alloy:v1.21.2\": is served from docker.io, outside ECR: Docker Hub \
             rate-limits anonymous pulls, and a sidecar that cannot be pulled stops every Temporal task"
        ),
        "{err}"
    );
    assert!(err.contains(&format!("such as {ecr}grafana/alloy:v1.21.2")), "{err}");
    let err = problems(&EXAMPLE.replacen(&format!("{ecr}grafana/loki"), "ghcr.io/grafana/loki", 1));
    assert!(
        err.contains("versions.loki_image = \"ghcr.io/grafana/loki:3.7.6\": is served from ghcr.io, outside ECR"),
        "{err}"
    );
    assert!(err.contains("a Loki task whose image cannot be pulled never starts"), "{err}");
    let text = EXAMPLE.replacen(
        "# grafana_image = \"123456789012.dkr.ecr.eu-west-1.amazonaws.com/temporal-dev-grafana:",
        "grafana_image = \"grafana/grafana:",
        1,
    );
    let err = problems(&text);
    assert!(
        err.contains("versions.grafana_image = \"grafana/grafana:13.2.3-1a2b3c4\": is served from docker.io"),
        "{err}"
    );
    assert!(
        err.contains(
            "build-grafana --execute` pushes to 123456789012.dkr.ecr.eu-west-1.amazonaws.com/<project>-grafana"
        ),
        "{err}"
    );
    // Another account's registry is named as such; the fleet's own Temporal image may stay on Docker Hub.
    let err = problems(&EXAMPLE.replacen(
        &format!("{ecr}grafana/loki"),
        "210987654321.dkr.ecr.eu-west-1.amazonaws.com/docker-hub/grafana/loki",
        1,
    ));
    assert!(err.contains("versions.loki_image") && err.contains("account 210987654321"), "{err}");
    assert!(!err.contains("temporal_image"), "{err}");
}

#[test]
fn problems_are_listed_in_the_files_order() {
    let text = EXAMPLE
        .replacen("retention_days = 7", "retention_days = -7", 1)
        .replacen("region = \"eu-west-1\"", "region = \"eu-wst-1\"", 1)
        .replacen("vpc_id = \"vpc-0123456789abcdef0\"", "vpc_id = \"bogus\"", 1);
    let err = problems(&text);
    let at = |key: &str| err.find(key).unwrap_or_else(|| panic!("no {key} in {err}"));
    assert!(at("aws.region") < at("platform.vpc_id") && at("platform.vpc_id") < at("loki.retention_days"), "{err}");
}

#[test]
fn parity_hours_default_to_a_day_and_stay_within_lokis_longest_query() {
    assert_eq!(parse(&EXAMPLE.replacen("parity_hours = 24\n", "", 1)).unwrap().migration.parity_hours, 24);
    assert_eq!(parse(&EXAMPLE.replacen("parity_hours = 24", "parity_hours = 6", 1)).unwrap().migration.parity_hours, 6);
    for bad in ["0", "721"] {
        let err = problems(&EXAMPLE.replacen("parity_hours = 24", &format!("parity_hours = {bad}"), 1));
        assert!(err.contains(&format!("migration.parity_hours = {bad}: expected 1 to 720 hours")), "{err}");
    }
}

#[test]
fn a_loki_that_cannot_carry_its_own_rate_is_refused_naming_the_size_that_would() {
    // The size the example shipped with before it was sized from measured figures.
    let small = EXAMPLE.replacen("cpu = 1024\nmemory = 2048", "cpu = 512\nmemory = 1024", 1);
    let err = problems(&small);
    assert!(
        err.contains("loki.ingestion_mb_per_s = 10: loki.cpu = 512 with loki.memory = 1024 cannot carry it"),
        "{err}"
    );
    assert!(err.contains("loki.cpu = 1024 with loki.memory = 2048 is the smallest size that would"), "{err}");
    // Enough CPU, but a large sidecar leaves Loki too little memory for a catch-up at that pace.
    let err = problems(&EXAMPLE.replacen("memory = 384", "memory = 1024", 1));
    assert!(err.contains("Loki's 896 MiB (GOMEMLIMIT 716 MB) cannot hold"), "{err}");
    // The shipped examples carry their own rate.
    assert!(parse(EXAMPLE).is_ok());
}

#[test]
fn two_env_files_on_one_terraform_state_are_refused_naming_both() {
    let dir = tempfile::tempdir().unwrap();
    let envs = dir.path().join("envs");
    std::fs::create_dir_all(&envs).unwrap();
    std::fs::write(envs.join("dev.toml"), EXAMPLE).unwrap();
    std::fs::write(envs.join("qa.toml"), EXAMPLE).unwrap();
    let err = format!("{:#}", Environment::load(dir.path(), "qa").unwrap_err());
    assert!(err.contains("qa.toml and") && err.contains("dev.toml name the same Terraform state"), "{err}");
    assert!(err.contains("e.g. loki-migration/qa.tfstate"), "{err}");
    let other_key = EXAMPLE.replacen("loki-migration/example.tfstate", "loki-migration/qa.tfstate", 1);
    std::fs::write(envs.join("qa.toml"), other_key).unwrap();
    assert!(Environment::load(dir.path(), "qa").is_ok());
}

// Messages that name the key, the value and the fix (issue 33.6).
#[test]
fn every_unknown_key_is_named_at_once_with_the_key_it_meant() {
    let text =
        EXAMPLE.replacen("memory = 384", "memry = 384", 1).replacen("retention_days = 7", "retention_dayz = 7", 1);
    let err = problems(&text);
    assert!(err.contains("loki.retention_dayz: unknown key; did you mean loki.retention_days?"), "{err}");
    assert!(err.contains("alloy.memry: unknown key; did you mean alloy.memory?"), "{err}");
    // A dotted key TOML puts under the table above it.
    let dotted = EXAMPLE.replacen("ingestion_mb_per_s = 10\n", "ingestion_mb_per_s = 10\nalloy.memory = 512\n", 1);
    let err = problems(&dotted);
    assert!(err.contains("loki.alloy.memory: unknown key; `alloy.memory = …` under [loki] sets loki.alloy.memory: put `memory` under [alloy]"), "{err}");
    // An account id with a leading zero, unquoted.
    let zero = EXAMPLE.replacen("account_id = \"123456789012\"", "account_id = 012345678901", 1);
    let err = problems(&zero);
    assert!(err.contains("quote it, e.g. account_id = \"012345678901\""), "{err}");
    // A region in upper case.
    let err = problems(&EXAMPLE.replacen("region = \"eu-west-1\"", "region = \"EU-WEST-1\"", 1));
    assert!(err.contains("Region names are lower case: did you mean eu-west-1?"), "{err}");
}

#[test]
fn empty_non_utf8_and_dangling_env_files_say_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let envs = dir.path().join("envs");
    std::fs::create_dir_all(&envs).unwrap();
    std::fs::write(envs.join("empty.toml"), "\n").unwrap();
    std::fs::write(envs.join("latin.toml"), b"x = \"\xff\"\n").unwrap();
    std::os::unix::fs::symlink("/nonexistent/dev.toml", envs.join("link.toml")).unwrap();
    let err = |name: &str| format!("{:#}", Environment::load(dir.path(), name).unwrap_err());
    assert!(err("empty")
        .contains("is empty: copy envs/example.toml to it and set your values, or run `cargo xtask init empty`"));
    assert!(err("latin").contains("is not UTF-8 text: save it as UTF-8"), "{}", err("latin"));
    assert!(err("link").contains("is a link to /nonexistent/dev.toml, which does not exist"), "{}", err("link"));
}

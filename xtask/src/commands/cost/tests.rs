use super::*;

/// Round prices so the hand calculations below stay readable. The vCPU:GB ratio is 0.04/0.005 = 8,
/// so GB-hour = 0.096 / (2 × 8 + 8) = 0.004 and vCPU-hour = 8 × 0.004 = 0.032.
const PRICES: &str = r#"
as_of = "test"
[split]
fargate_vcpu_hour = 0.04
fargate_gb_hour = 0.005
source = "test"
[assumptions]
hours_per_month = 720
cloudwatch_stored_fraction = 0.1
loki_chunk_fraction = 0.2
streams_per_task = 1
index_uploads_per_hour = 4
compactor_puts_per_cycle = 2
compactor_gets_per_cycle = 2
push_wire_fraction = 0.25
cross_az_fraction = 0.5
loki_own_logs_gb_per_month = 1
[regions.test-1]
checked = "test"
cloudwatch_ingestion_per_gb = { usd = 0.5, source = "test" }
cloudwatch_storage_per_gb_month = { usd = 0.03, source = "test" }
cloudwatch_insights_per_gb_scanned = { usd = 0.005, source = "test" }
s3_standard_per_gb_month = { usd = 0.02, source = "test" }
s3_intelligent_tiering_per_gb_month = { usd = 0.02, source = "test" }
s3_intelligent_tiering_monitoring_per_1000_objects = { usd = 0.0025, source = "test" }
s3_put_per_1000 = { usd = 0.005, source = "test" }
s3_get_per_1000 = { usd = 0.0004, source = "test" }
inter_az_per_gb = { usd = 0.01, source = "test" }
instance = { type = "t-test", vcpus = 2, memory_gib = 8, usd_per_hour = 0.096, source = "test" }
"#;

fn prices() -> Prices {
    toml::from_str(PRICES).unwrap()
}

fn inputs() -> Inputs {
    Inputs {
        region: "test-1".into(),
        gb_per_month: 100.0,
        queries_gb: 10.0,
        retention_days: 6.0,
        loki: LokiInputs {
            cpu: 512.0,
            memory_mib: 1024.0,
            count: 1.0,
            replication_factor: 1.0,
            chunk_target_bytes: 1_000_000.0,
            max_chunk_age_hours: 2.0,
            chunk_idle_hours: 0.5,
            retention_hours: 132.0,
            delete_delay_hours: 12.0,
            compaction_interval_hours: 1.0,
            storage_class: "STANDARD".into(),
        },
        log_tasks: 4.0,
        alloy_cpu: 128.0,
        alloy_memory_mib: 384.0,
        adot_cpu: Some(128.0),
        adot_memory_mib: Some(256.0),
    }
}

fn usd(side: &Side, item: &str) -> f64 {
    side.lines.iter().find(|l| l.item == item).unwrap_or_else(|| panic!("no line {item}: {side:?}")).usd
}

fn close(actual: f64, expected: f64) {
    assert!((actual - expected).abs() < 1e-9, "expected {expected}, got {actual}");
}

// req: 10.3, 10.5
#[test]
fn size_bound_chunks_by_hand() {
    let prices = prices();
    let b = compute(&inputs(), prices.region("test-1").unwrap(), &prices);
    close(b.gb_hour_usd, 0.004);
    close(b.vcpu_hour_usd, 0.032);

    // CloudWatch: ingestion 100 GB × 0.5 = 50.00
    //   storage: 100 GB × 6 days / 30 days × 0.1 kept after gzip = 2 GB-month × 0.03 = 0.06
    //   Logs Insights: 10 GB × 0.005 = 0.05;  total 50.11
    close(usd(&b.cloudwatch, "ingestion"), 50.0);
    close(usd(&b.cloudwatch, "storage"), 0.06);
    close(usd(&b.cloudwatch, "Logs Insights"), 0.05);
    close(b.cloudwatch.total, 50.11);

    // Loki task: 1 × (0.5 vCPU × 0.032 + 1 GiB × 0.004) × 720 h = 0.02 × 720 = 14.40
    // sidecars: 4 tasks × (0 CPU + 128/1024 GiB × 0.004) × 720 h = 4 × 0.0005 × 720 = 1.44
    close(usd(&b.loki, "Loki task"), 14.4);
    close(usd(&b.loki, "sidecars"), 1.44);
    // chunks: 100 GB × 0.2 = 20 GB compressed / 1 MB = 20 000 by size; 4 streams × 720 h / 2 h
    //   = 1 440 by age; the larger wins: 20 000.
    // PUTs: 20 000 + index 1 × 4/h × 720 h = 2 880 + compactor 720 cycles × 2 = 1 440 → 24 320
    //   × 0.005 / 1000 = 0.1216
    close(b.s3_puts, 24_320.0);
    close(usd(&b.loki, "S3 PUT/LIST"), 0.1216);
    // GETs: 10 GB × 0.2 / 1 MB = 2 000 chunks + 720 × 2 = 1 440 → 3 440 × 0.0004 / 1000 = 0.001376
    close(b.s3_gets, 3_440.0);
    close(usd(&b.loki, "S3 GET"), 0.001376);
    // storage: 20 GB × (132 h + 12 h) / 24 = 6 days / 30 = 0.2 month → 4 GB-month × 0.02 = 0.08
    close(usd(&b.loki, "S3 storage"), 0.08);
    // cross-AZ: 100 GB × 0.25 on the wire × 0.5 crossing = 12.5 GB × 2 × 0.01 = 0.25
    close(usd(&b.loki, "cross-AZ pushes"), 0.25);
    // own logs: 1 GB × 0.5 = 0.50
    close(usd(&b.loki, "Loki's own logs"), 0.5);
    // total: 14.40 + 1.44 + 0.08 + 0.1216 + 0.001376 + 0.25 + 0.5 = 16.792976
    close(b.loki.total, 16.792976);
    // saving: 50.11 − 16.792976 = 33.317024, / 50.11 = 0.66487...
    close(b.saving_usd, 33.317024);
    close(b.saving_fraction, 33.317024 / 50.11);
}

// req: 10.2, 10.3
#[test]
fn age_bound_chunks_replicas_and_intelligent_tiering_by_hand() {
    let prices = prices();
    let mut inputs = inputs();
    inputs.gb_per_month = 1.0;
    inputs.queries_gb = 0.0;
    inputs.loki.count = 3.0;
    inputs.loki.replication_factor = 3.0;
    inputs.loki.storage_class = "INTELLIGENT_TIERING".into();
    let b = compute(&inputs, prices.region("test-1").unwrap(), &prices);
    // Loki task: 3 × 0.02 × 720 = 43.20
    close(usd(&b.loki, "Loki task"), 43.2);
    // chunks: by size 1 GB × 0.2 / 1 MB = 200; by age 4 × 720 / 2 = 1 440 wins; × 3 replicas = 4 320
    // PUTs: 4 320 + index 3 × 4 × 720 = 8 640 + compactor 1 440 = 14 400 × 0.005 / 1000 = 0.072
    close(b.s3_puts, 14_400.0);
    close(usd(&b.loki, "S3 PUT/LIST"), 0.072);
    // storage: 0.2 GB × 3 replicas × 0.2 month = 0.12 GB-month × 0.02 = 0.0024
    close(usd(&b.loki, "S3 storage"), 0.0024);
    // monitoring: 4 320 chunks × 0.2 month = 864 objects × 0.0025 / 1000 = 0.00216
    close(usd(&b.loki, "S3 monitoring"), 0.00216);
    // GETs: no queries, compactor only: 1 440 × 0.0004 / 1000
    close(b.s3_gets, 1_440.0);
}

// req: 10.5
#[test]
fn break_even_volume_by_hand() {
    let prices = prices();
    // Above 7.2 GB/month chunks are size-bound, so both sides are linear in G:
    //   CloudWatch(G) = 0.5 G + 0.03 × 0.02 G + 0.05 = 0.5006 G + 0.05
    //   Loki(G) = 14.40 + 1.44 + 0.50 + 0.0216 (index and compactor PUTs) + 0.001376 (GETs)
    //             + (0.001 chunk PUTs + 0.0008 storage + 0.0025 cross-AZ) G = 16.362976 + 0.0043 G
    //   50 %: 0.5006 G + 0.05 = 2 × (16.362976 + 0.0043 G) → 0.492 G = 32.675952 → G = 66.4145…
    //   reported rounded up to a tenth: 66.5
    let be = break_even_gb(&inputs(), prices.region("test-1").unwrap(), &prices);
    assert_eq!(be, Some(66.5));
    let mut at = inputs();
    at.gb_per_month = 66.4;
    assert!(compute(&at, prices.region("test-1").unwrap(), &prices).saving_fraction < REQUIRED_SAVING);
    at.gb_per_month = 66.5;
    assert!(compute(&at, prices.region("test-1").unwrap(), &prices).saving_fraction > REQUIRED_SAVING);
}

#[test]
fn without_adot_the_whole_alloy_sidecar_counts() {
    let prices = prices();
    let mut inputs = inputs();
    inputs.adot_cpu = None;
    inputs.adot_memory_mib = None;
    let b = compute(&inputs, prices.region("test-1").unwrap(), &prices);
    // 4 × (128/1024 × 0.032 + 384/1024 × 0.004) × 720 = 4 × (0.004 + 0.0015) × 720 = 15.84
    close(usd(&b.loki, "sidecars"), 15.84);
}

#[test]
fn durations_parse_like_loki() {
    assert_eq!(duration_hours("2h"), Some(2.0));
    assert_eq!(duration_hours("30m"), Some(0.5));
    assert_eq!(duration_hours("1h30m"), Some(1.5));
    assert_eq!(duration_hours("7d"), Some(168.0));
    assert_eq!(duration_hours("0"), Some(0.0));
    assert_eq!(duration_hours("2 hours"), None);
    assert_eq!(duration_hours(""), None);
}

#[test]
fn loki_settings_come_from_the_config_with_loki_defaults() {
    let yaml = "common:\n  replication_factor: 3\n  storage:\n    s3:\n      storage_class: INTELLIGENT_TIERING\n\
                ingester:\n  chunk_target_size: 2000000\n  max_chunk_age: 1h\n\
                limits_config:\n  retention_period: 168h\n";
    let l = loki_inputs(yaml, 512, 1024, 3).unwrap();
    assert_eq!((l.replication_factor, l.chunk_target_bytes, l.max_chunk_age_hours), (3.0, 2e6, 1.0));
    assert_eq!((l.chunk_idle_hours, l.delete_delay_hours, l.retention_hours), (0.5, 2.0, 168.0));
    assert_eq!(l.storage_class, "INTELLIGENT_TIERING");
    let err = loki_inputs("ingester:\n  max_chunk_age: soon\nlimits_config:\n  retention_period: 24h\n", 1, 1, 1)
        .unwrap_err();
    assert!(format!("{err:#}").contains("ingester.max_chunk_age"), "{err:#}");
    assert!(loki_inputs("ingester: {}\n", 1, 1, 1).is_err(), "no retention means unbounded storage");
}

/// The committed example env, prices and Terraform feed the model end to end.
#[test]
fn example_env_inputs_come_from_its_settings() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let env = Environment::load(root, "example").unwrap();
    let inputs = Inputs::from_env(root, &env, 50.0, 0.0).unwrap();
    assert_eq!(inputs.loki.cpu, f64::from(env.settings.loki.cpu));
    assert_eq!(inputs.retention_days * 24.0, inputs.loki.retention_hours, "req 5.5: one retention");
    assert!(inputs.log_tasks >= 1.0);
    let prices = Prices::load(root).unwrap();
    let region = prices.region(&inputs.region).unwrap();
    let b = compute(&inputs, region, &prices);
    assert!(b.cloudwatch.total > 0.0 && b.loki.total > 0.0);
    assert!(prices.region("mars-north-1").unwrap_err().to_string().contains("add a [regions.mars-north-1] table"));
}

//! `cargo xtask cost`: what an environment's logs cost per month in CloudWatch Logs and in Loki,
//! computed from its actual settings (requirement 10.5 asks for more than 50 % savings).
//!
//! Inputs, each from its one source of truth:
//! - the env file: region, Loki task size and count, retention, which services run;
//! - the Terraform (`cost::terraform`): Alloy and ADOT sidecar sizes, task counts per service;
//! - the Loki config as `cargo xtask render` renders it for the env: chunk target size, max chunk
//!   age, replication factor, retention and delete delay, compaction interval, S3 storage class;
//! - `data/prices.toml`: unit prices per region (with date and source) and the stated assumptions.
//!
//! The comparison is steady state after the migration: CloudWatch with ADOT sidecars versus Loki
//! with Alloy sidecars. The services' own containers cost the same either way and are left out.

pub mod terraform;

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, format_err, Context};
use clap::Args;
use serde::{Deserialize, Serialize};
use settings::Environment;
use yaml_rust2::{Yaml, YamlLoader};

use crate::project::{usage, Project};

#[derive(Debug, Args)]
pub struct CostArgs {
    /// Environment name: envs/<ENV>.toml (its rendered/<ENV>/ must be up to date)
    #[arg(long, short, default_value = "example")]
    pub env: String,
    /// Log volume the services write, in GB per month (what CloudWatch would ingest)
    #[arg(long, default_value_t = 50.0, allow_negative_numbers = true)]
    pub gb_per_month: f64,
    /// GB of logs scanned by queries per month (Logs Insights on CloudWatch, chunk GETs on Loki)
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub queries_gb: f64,
    /// Print the breakdown as JSON on stdout
    #[arg(long)]
    pub json: bool,
}

pub const PRICES_FILE: &str = "data/prices.toml";

/// The largest volume `cost` takes, GB a month (a billion GB: an exabyte).
const MAX_GB: f64 = 1e9;

/// Requirement 10.5: the saving must exceed this fraction.
pub const REQUIRED_SAVING: f64 = 0.5;

impl CostArgs {
    pub fn run(self, project: &Project) -> anyhow::Result<()> {
        // No logs means no saving to speak of (and a ratio over zero): the volume must be positive.
        // Past an exabyte a month the arithmetic overflows into `inf`: no fleet writes that.
        if !(self.gb_per_month.is_finite() && self.gb_per_month > 0.0 && self.gb_per_month <= MAX_GB) {
            return Err(usage(format!(
                "--gb-per-month {:?}: expected a number of GB greater than 0, at most {MAX_GB}",
                self.gb_per_month
            )));
        }
        if !(self.queries_gb.is_finite() && self.queries_gb >= 0.0 && self.queries_gb <= MAX_GB) {
            return Err(usage(format!(
                "--queries-gb {:?}: expected a number of GB from 0 to {MAX_GB}",
                self.queries_gb
            )));
        }
        let env = Environment::load(&project.root, &self.env).map_err(usage)?;
        let prices = Prices::load(&project.root)?;
        let inputs = Inputs::from_env(&project.root, &env, self.gb_per_month, self.queries_gb)?;
        let region = prices.region(&inputs.region).map_err(usage)?;
        let breakdown = compute(&inputs, region, &prices);
        let break_even = break_even_gb(&inputs, region, &prices);
        if self.json {
            let json = serde_json::json!({
                "env": env.name,
                "prices": {
                    "file": PRICES_FILE,
                    "as_of": prices.as_of,
                    "region": inputs.region,
                    "checked": region.checked,
                    "instance": region.instance.kind,
                    "vcpu_gb_split_source": prices.split.source,
                },
                "inputs": inputs,
                "assumptions": prices.assumptions,
                "breakdown": breakdown,
                "req_10_5": { "holds": breakdown.saving_fraction > REQUIRED_SAVING, "break_even_gb_per_month": break_even },
            });
            println!("{}", serde_json::to_string_pretty(&json)?);
        } else {
            print!("{}", render_text(&env.name, &inputs, region, &prices, &breakdown, break_even));
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Prices and assumptions (data/prices.toml)

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Prices {
    pub as_of: String,
    pub split: Split,
    pub assumptions: Assumptions,
    pub regions: BTreeMap<String, RegionPrices>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Split {
    pub fargate_vcpu_hour: f64,
    pub fargate_gb_hour: f64,
    pub source: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Assumptions {
    pub hours_per_month: f64,
    pub cloudwatch_stored_fraction: f64,
    pub loki_chunk_fraction: f64,
    pub streams_per_task: f64,
    pub index_uploads_per_hour: f64,
    pub compactor_puts_per_cycle: f64,
    pub compactor_gets_per_cycle: f64,
    pub push_wire_fraction: f64,
    pub cross_az_fraction: f64,
    pub loki_own_logs_gb_per_month: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegionPrices {
    pub checked: String,
    pub cloudwatch_ingestion_per_gb: Price,
    pub cloudwatch_storage_per_gb_month: Price,
    pub cloudwatch_insights_per_gb_scanned: Price,
    pub s3_standard_per_gb_month: Price,
    pub s3_intelligent_tiering_per_gb_month: Price,
    pub s3_intelligent_tiering_monitoring_per_1000_objects: Price,
    pub s3_put_per_1000: Price,
    pub s3_get_per_1000: Price,
    pub inter_az_per_gb: Price,
    pub instance: Instance,
}

#[derive(Debug, Clone, Copy, Deserialize)]
pub struct Price {
    pub usd: f64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Instance {
    #[serde(rename = "type")]
    pub kind: String,
    pub vcpus: f64,
    pub memory_gib: f64,
    pub usd_per_hour: f64,
}

impl Prices {
    pub fn load(root: &Path) -> anyhow::Result<Prices> {
        let path = root.join(PRICES_FILE);
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        toml::from_str(&text).map_err(|err| format_err!("{}: {}", path.display(), err.to_string().trim_end()))
    }

    pub fn region(&self, region: &str) -> anyhow::Result<&RegionPrices> {
        self.regions.get(region).ok_or_else(|| {
            format_err!(
                "{PRICES_FILE} has no prices for {region} (it prices {}), so `cost` cannot price this env; add a [regions.{region}] table with the prices from the AWS pricing pages, or run with an env in a priced region",
                self.regions.keys().cloned().collect::<Vec<_>>().join(", ")
            )
        })
    }

    /// $ per vCPU-hour and per GB-hour of the reference instance (see `[split]`).
    pub fn unit_hour_prices(&self, region: &RegionPrices) -> (f64, f64) {
        let ratio = self.split.fargate_vcpu_hour / self.split.fargate_gb_hour;
        let i = &region.instance;
        let gb_hour = i.usd_per_hour / (i.vcpus * ratio + i.memory_gib);
        (ratio * gb_hour, gb_hour)
    }
}

// ---------------------------------------------------------------------------------------------
// Inputs from the environment

#[derive(Debug, Clone, Serialize)]
pub struct Inputs {
    pub region: String,
    pub gb_per_month: f64,
    pub queries_gb: f64,
    /// CloudWatch log group retention (= loki.retention_days, req 5.5).
    pub retention_days: f64,
    pub loki: LokiInputs,
    /// Tasks whose Alloy sidecar ships logs (enabled services × desired count).
    pub log_tasks: f64,
    pub alloy_cpu: f64,
    pub alloy_memory_mib: f64,
    /// `None` once `infra/adot-sidecar.tf` is pruned: the whole Alloy sidecar is then counted.
    pub adot_cpu: Option<f64>,
    pub adot_memory_mib: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LokiInputs {
    pub cpu: f64,
    pub memory_mib: f64,
    pub count: f64,
    pub replication_factor: f64,
    pub chunk_target_bytes: f64,
    pub max_chunk_age_hours: f64,
    pub chunk_idle_hours: f64,
    pub retention_hours: f64,
    pub delete_delay_hours: f64,
    pub compaction_interval_hours: f64,
    pub storage_class: String,
}

impl Inputs {
    pub fn from_env(root: &Path, env: &Environment, gb_per_month: f64, queries_gb: f64) -> anyhow::Result<Inputs> {
        let s = &env.settings;
        // The render in memory is what `cargo xtask render` writes, so a stale rendered/ can't skew it.
        let files = render::render_env(root, env)?;
        let find = |name: &str| rendered_file(&files, env, name);
        let config_name = format!("rendered/{}/loki-config.yaml", env.name);
        let loki = loki_inputs(find("loki-config.yaml")?, s.loki.cpu, s.loki.memory, s.loki.count)
            .with_context(|| format!("reading {config_name}"))?;
        let sizes = terraform::read_sizes(root, find("terraform.tfvars")?)?;
        let mut log_tasks = 0.0;
        for (name, _) in s.services.iter().filter(|(_, service)| service.enabled) {
            let count = sizes.desired_counts.get(name).ok_or_else(|| {
                format_err!("infra/variables.tf: temporal_service_sizes has no entry for service {name}")
            })?;
            log_tasks += f64::from(*count);
        }
        Ok(Inputs {
            region: s.aws.region.clone(),
            gb_per_month,
            queries_gb,
            retention_days: f64::from(s.loki.retention_days),
            loki,
            log_tasks,
            alloy_cpu: sizes.alloy.cpu,
            alloy_memory_mib: sizes.alloy.memory,
            adot_cpu: sizes.adot.map(|a| a.cpu),
            adot_memory_mib: sizes.adot.map(|a| a.memory),
        })
    }
}

/// The Loki settings that drive cost, read from a rendered config; Loki's defaults where unset.
pub fn loki_inputs(yaml: &str, cpu: u32, memory: u32, count: u32) -> anyhow::Result<LokiInputs> {
    let docs = YamlLoader::load_from_str(yaml).map_err(|err| format_err!("not YAML: {err}"))?;
    let doc = docs.first().ok_or_else(|| format_err!("empty file"))?;
    let ingester = &doc["ingester"];
    let compactor = &doc["compactor"];
    let retention_hours = hours(&doc["limits_config"]["retention_period"], "limits_config.retention_period", "0s")?;
    if retention_hours == 0.0 {
        bail!("limits_config.retention_period is 0 (keep forever): storage cost has no bound; set loki.retention_days");
    }
    Ok(LokiInputs {
        cpu: f64::from(cpu),
        memory_mib: f64::from(memory),
        count: f64::from(count),
        replication_factor: doc["common"]["replication_factor"].as_i64().unwrap_or(1) as f64,
        // Loki 3.7 defaults: 1.5 MB target, 2h max age, 30m idle, 2h delete delay, 10m compaction.
        chunk_target_bytes: ingester["chunk_target_size"].as_i64().unwrap_or(1_572_864) as f64,
        max_chunk_age_hours: hours(&ingester["max_chunk_age"], "ingester.max_chunk_age", "2h")?,
        chunk_idle_hours: hours(&ingester["chunk_idle_period"], "ingester.chunk_idle_period", "30m")?,
        retention_hours,
        delete_delay_hours: hours(&compactor["retention_delete_delay"], "compactor.retention_delete_delay", "2h")?,
        compaction_interval_hours: hours(&compactor["compaction_interval"], "compactor.compaction_interval", "10m")?,
        storage_class: doc["common"]["storage"]["s3"]["storage_class"].as_str().unwrap_or("STANDARD").to_string(),
    })
}

/// One file of an env's render (in memory, as `cargo xtask render` would write it).
pub(crate) fn rendered_file<'a>(
    files: &'a [render::RenderedFile],
    env: &Environment,
    name: &str,
) -> anyhow::Result<&'a str> {
    files
        .iter()
        .find(|f| f.path.file_name().is_some_and(|n| n == name))
        .map(|f| f.contents.as_str())
        .ok_or_else(|| format_err!("the render of {} has no {name}", env.name))
}

/// A duration setting of Loki's config in hours: `default` (Loki's) where the file sets none.
pub(crate) fn hours(value: &Yaml, key: &str, default: &str) -> anyhow::Result<f64> {
    let text = match value {
        Yaml::BadValue => default.to_string(),
        Yaml::String(s) => s.clone(),
        other => bail!("{key}: expected a duration such as 2h, found {other:?}"),
    };
    duration_hours(&text).ok_or_else(|| format_err!("{key}: `{text}` is not a duration such as 30m or 2h"))
}

/// A Loki/Prometheus duration (`1h30m`, `168h`, `7d`, `500ms`) in hours.
pub fn duration_hours(text: &str) -> Option<f64> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    if text == "0" {
        return Some(0.0);
    }
    let mut total = 0.0;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let value: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let per_hour = match &rest[..unit_len] {
            "ms" => 1.0 / 3_600_000.0,
            "s" => 1.0 / 3600.0,
            "m" => 1.0 / 60.0,
            "h" => 1.0,
            "d" => 24.0,
            "w" => 168.0,
            "y" => 8760.0,
            _ => return None,
        };
        total += value * per_hour;
        rest = &rest[unit_len..];
    }
    Some(total)
}

// ---------------------------------------------------------------------------------------------
// The model

#[derive(Debug, Clone, Serialize)]
pub struct Line {
    pub item: String,
    pub detail: String,
    pub usd: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Side {
    pub lines: Vec<Line>,
    pub total: f64,
}

impl Side {
    fn new(lines: Vec<Line>) -> Side {
        let total = lines.iter().map(|l| l.usd).sum();
        Side { lines, total }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Breakdown {
    pub cloudwatch: Side,
    pub loki: Side,
    pub saving_usd: f64,
    pub saving_fraction: f64,
    pub vcpu_hour_usd: f64,
    pub gb_hour_usd: f64,
    pub s3_puts: f64,
    pub s3_gets: f64,
}

fn line(item: &str, detail: String, usd: f64) -> Line {
    Line { item: item.to_string(), detail, usd }
}

/// The monthly cost of both sides; pure arithmetic on its arguments.
pub fn compute(inputs: &Inputs, region: &RegionPrices, prices: &Prices) -> Breakdown {
    let a = &prices.assumptions;
    let hours = a.hours_per_month;
    let days_per_month = hours / 24.0;
    let g = inputs.gb_per_month;
    let q = inputs.queries_gb;

    // CloudWatch: every GB ingested, stored compressed for the retention, queries scan raw GB.
    let cw_stored = g * inputs.retention_days / days_per_month * a.cloudwatch_stored_fraction;
    let cloudwatch = Side::new(vec![
        line(
            "ingestion",
            format!("{g} GB × ${}/GB", region.cloudwatch_ingestion_per_gb.usd),
            g * region.cloudwatch_ingestion_per_gb.usd,
        ),
        line(
            "storage",
            format!("{cw_stored:.2} GB-month stored (gzip) × ${}", region.cloudwatch_storage_per_gb_month.usd),
            cw_stored * region.cloudwatch_storage_per_gb_month.usd,
        ),
        line(
            "Logs Insights",
            format!("{q} GB scanned × ${}", region.cloudwatch_insights_per_gb_scanned.usd),
            q * region.cloudwatch_insights_per_gb_scanned.usd,
        ),
    ]);

    // Loki: its tasks' share of instances, the sidecar difference, S3, cross-AZ pushes, own logs.
    let l = &inputs.loki;
    let (vcpu_hour, gb_hour) = prices.unit_hour_prices(region);
    let task_hour = |cpu: f64, memory_mib: f64| cpu / 1024.0 * vcpu_hour + memory_mib / 1024.0 * gb_hour;
    let loki_task = l.count * task_hour(l.cpu, l.memory_mib) * hours;
    let (adot_cpu, adot_memory) = (inputs.adot_cpu.unwrap_or(0.0), inputs.adot_memory_mib.unwrap_or(0.0));
    let (extra_cpu, extra_memory) = (inputs.alloy_cpu - adot_cpu, inputs.alloy_memory_mib - adot_memory);
    let sidecars = inputs.log_tasks * task_hour(extra_cpu, extra_memory) * hours;

    let compressed_gb = g * a.loki_chunk_fraction;
    let streams = inputs.log_tasks * a.streams_per_task;
    // A continuously written stream closes a chunk at max_chunk_age or at the target size.
    let chunks_by_age = streams * hours / l.max_chunk_age_hours;
    let chunks_by_size = compressed_gb * 1e9 / l.chunk_target_bytes;
    let chunks = chunks_by_age.max(chunks_by_size) * l.replication_factor;
    let cycles = hours / l.compaction_interval_hours;
    let puts = chunks + l.count * a.index_uploads_per_hour * hours + cycles * a.compactor_puts_per_cycle;
    let gets = q * a.loki_chunk_fraction * 1e9 / l.chunk_target_bytes + cycles * a.compactor_gets_per_cycle;
    // Chunks live for retention plus the compactor's delete delay.
    let kept_months = (l.retention_hours + l.delete_delay_hours) / 24.0 / days_per_month;
    let s3_stored = compressed_gb * l.replication_factor * kept_months;
    let intelligent = l.storage_class == "INTELLIGENT_TIERING";
    let storage_price =
        if intelligent { region.s3_intelligent_tiering_per_gb_month.usd } else { region.s3_standard_per_gb_month.usd };
    let mut lines = vec![
        line(
            "Loki task",
            format!(
                "{} × ({} vCPU + {} GiB) × {hours} h on {}",
                l.count,
                l.cpu / 1024.0,
                l.memory_mib / 1024.0,
                region.instance.kind
            ),
            loki_task,
        ),
        line(
            "sidecars",
            format!(
                "{} tasks × Alloy − ADOT ({:+} CPU units, {:+} MiB) × {hours} h",
                inputs.log_tasks, extra_cpu, extra_memory
            ),
            sidecars,
        ),
        line(
            "S3 storage",
            format!("{s3_stored:.2} GB-month ({}, snappy) × ${storage_price}", l.storage_class),
            s3_stored * storage_price,
        ),
        line(
            "S3 PUT/LIST",
            format!("{puts:.0} requests × ${}/1000", region.s3_put_per_1000.usd),
            puts / 1000.0 * region.s3_put_per_1000.usd,
        ),
        line(
            "S3 GET",
            format!("{gets:.0} requests × ${}/1000", region.s3_get_per_1000.usd),
            gets / 1000.0 * region.s3_get_per_1000.usd,
        ),
    ];
    if intelligent {
        let objects = chunks * kept_months;
        let fee = region.s3_intelligent_tiering_monitoring_per_1000_objects.usd;
        lines.push(line("S3 monitoring", format!("{objects:.0} objects × ${fee}/1000"), objects / 1000.0 * fee));
    }
    let crossing = g * a.push_wire_fraction * a.cross_az_fraction;
    lines.push(line(
        "cross-AZ pushes",
        format!("{crossing:.2} GB × 2 directions × ${}", region.inter_az_per_gb.usd),
        crossing * 2.0 * region.inter_az_per_gb.usd,
    ));
    let own = a.loki_own_logs_gb_per_month;
    lines.push(line(
        "Loki's own logs",
        format!("{own} GB to CloudWatch × ${}", region.cloudwatch_ingestion_per_gb.usd),
        own * region.cloudwatch_ingestion_per_gb.usd,
    ));
    let loki = Side::new(lines);

    let saving_usd = cloudwatch.total - loki.total;
    let saving_fraction = if cloudwatch.total > 0.0 { saving_usd / cloudwatch.total } else { f64::NEG_INFINITY };
    Breakdown {
        cloudwatch,
        loki,
        saving_usd,
        saving_fraction,
        vcpu_hour_usd: vcpu_hour,
        gb_hour_usd: gb_hour,
        s3_puts: puts,
        s3_gets: gets,
    }
}

/// The smallest log volume (GB/month, to 0.1 GB) at which the saving exceeds 50 %, with everything
/// else as given; `None` when not even 10 PB/month gets there.
pub fn break_even_gb(inputs: &Inputs, region: &RegionPrices, prices: &Prices) -> Option<f64> {
    let saving_at = |gb: f64| compute(&Inputs { gb_per_month: gb, ..inputs.clone() }, region, prices).saving_fraction;
    let (mut low, mut high) = (0.0, 1e7);
    if saving_at(high) <= REQUIRED_SAVING {
        return None;
    }
    // The saving grows with volume: CloudWatch's cost per GB is far above Loki's.
    while high - low > 0.05 {
        let mid = (low + high) / 2.0;
        if saving_at(mid) > REQUIRED_SAVING {
            high = mid;
        } else {
            low = mid;
        }
    }
    Some((high * 10.0).ceil() / 10.0)
}

fn render_text(
    env: &str,
    inputs: &Inputs,
    region: &RegionPrices,
    prices: &Prices,
    b: &Breakdown,
    break_even: Option<f64>,
) -> String {
    let mut out = format!(
        "Monthly log cost of `{env}` ({}): {} GB of logs, {} GB queried, {} days retention\n\
         Prices: {PRICES_FILE} as of {} ({})\n\n",
        inputs.region, inputs.gb_per_month, inputs.queries_gb, inputs.retention_days, prices.as_of, region.checked
    );
    for (title, side) in
        [("CloudWatch Logs (with ADOT sidecars)", &b.cloudwatch), ("Loki on ECS/EC2 (with Alloy sidecars)", &b.loki)]
    {
        out.push_str(&format!("{title}\n"));
        for l in &side.lines {
            out.push_str(&format!("  {:<16} {:>9.2}  {}\n", l.item, l.usd, l.detail));
        }
        out.push_str(&format!("  {:<16} {:>9.2}\n\n", "total", side.total));
    }
    out.push_str(&format!("Saving: ${:.2} per month ({:.1} %)\n", b.saving_usd, b.saving_fraction * 100.0));
    let holds = b.saving_fraction > REQUIRED_SAVING;
    let from = match break_even {
        Some(gb) => format!("more than 50 % from {gb} GB/month with these settings"),
        None => "not above 50 % at any volume with these settings".to_string(),
    };
    out.push_str(&format!(
        "Requirement 10.5 (> 50 % saving): {} at {} GB/month; {from}\n\n",
        if holds { "holds" } else { "NOT met" },
        inputs.gb_per_month
    ));
    let a = &prices.assumptions;
    let l = &inputs.loki;
    out.push_str(&format!(
        "How: {} share at ${:.5}/vCPU-hour and ${:.5}/GB-hour ({} at ${}/h split in Fargate's vCPU:GB price ratio);\n\
         chunks close at {} h or {:.2} MB compressed (replication {}), {} stream(s) per task, written continuously (so chunk_idle_period {} h never closes one);\n\
         {:.0} S3 PUTs and {:.0} GETs a month; gzip keeps {} and snappy {} of the raw bytes; Loki keeps chunks {} h + {} h.\n\
         Left out: the free tier, discounts, the services' own containers, NAT or endpoint charges for awslogs.\n",
        region.instance.kind,
        b.vcpu_hour_usd,
        b.gb_hour_usd,
        region.instance.kind,
        region.instance.usd_per_hour,
        l.max_chunk_age_hours,
        l.chunk_target_bytes / 1e6,
        l.replication_factor,
        a.streams_per_task,
        l.chunk_idle_hours,
        b.s3_puts,
        b.s3_gets,
        a.cloudwatch_stored_fraction,
        a.loki_chunk_fraction,
        l.retention_hours,
        l.delete_delay_hours,
    ));
    if inputs.adot_cpu.is_none() {
        out.push_str("Note: infra/adot-sidecar.tf is gone, so the whole Alloy sidecar is counted against Loki.\n");
    }
    out
}

#[cfg(test)]
mod tests;

//! What a Loki task of a given size carries, from figures measured on a real Loki 3.7.6 running
//! the rendered example config (docs/measured.md; x86 cores: Graviton differs by ±30 %).
//!
//! CPU: 0.5 vCPU took ≈ 12 MiB/s at most. Counted at its low end (−30 %) for what a size carries,
//! so an env is never sized on a fast core's figure.
//! Memory: at the 512 MiB share, 10 MiB/s ran at 440–480 MB RSS, and 3 of 8 restart runs were
//! killed at ≈ 520 MB during the catch-up (Loki ingesting as fast as its CPU let it, ≈ 12 MiB/s):
//! ≈ 48 MB per MiB/s ingested. At 1024 MiB no run was killed. The model takes the working set at
//! the fastest a catch-up can ingest (the CPU's measured rate, at most the tenant's limit of twice
//! the rate), and adds the embedded caches and one query: 512 MiB comes out without a margin for
//! 10 MiB/s, 1024 MiB with one, as measured.
//! Queries: a full-text query scanned ≈ 200 MB/s per 0.5 vCPU.

use crate::{loki_container_memory, Settings};

/// Ingestion one vCPU took at most (MiB/s), and the share of it counted as carried.
pub const MEASURED_MIB_PER_S_PER_VCPU: f64 = 24.0;
pub const GRAVITON_LOW_END: f64 = 0.7;
/// Resident memory per MiB/s being ingested (MB), from the 512 MiB runs.
pub const WORKING_SET_MB_PER_MIB_S: f64 = 48.0;
/// Bytes a full-text query scans a second per vCPU (MB/s).
pub const SCAN_MB_PER_S_PER_VCPU: f64 = 400.0;
/// Memory held for one query beside ingestion (MB): a count query over a busy minute ran beside
/// 10 MiB/s at the 512 MiB share without a kill.
pub const QUERY_RESERVE_MB: u32 = 64;
/// Room kept for a restart's catch-up and one query: what a size carries is its capacity over
/// this, so a planned restart's backlog drains at a quarter of the rate or more.
pub const SPARE: f64 = 1.25;
/// Loki's GOMEMLIMIT as a share of its container's memory (infra/loki.tf sets it from this).
pub const GOMEMLIMIT_SHARE: f64 = 0.8;
/// CPU units the Alloy sidecar in Loki's task reserves (`alloy_cpu` in infra/variables.tf).
pub const ALLOY_CPU_UNITS: u32 = 128;
/// A planned Loki restart, as infra/log-buffer.tf takes it (`loki_outage_budget.restart_seconds`,
/// which `cargo xtask test` compares with this).
pub const PLANNED_RESTART_SECONDS: f64 = 138.0;
/// The smallest WAL replay ceiling worth having (MB): below it replay flushes all the time.
pub const MIN_REPLAY_MB: u32 = 64;
/// The query-range result caches that share the results cache's config (see MemoryBudget).
pub const RESULT_CACHES: u32 = 6;
/// Loki accepts up to twice `ingestion_mb_per_s` from the tenant (ingestion_rate_mb, rendered).
const TENANT_LIMIT_FACTOR: f64 = 2.0;

/// How Loki's share of its task is spent, MB (MiB where ECS counts).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct MemoryBudget {
    /// Loki's container memory (MiB).
    pub share: u32,
    pub gomemlimit: u32,
    /// The embedded chunk cache, and each of the six query-range result caches (results, and
    /// the five Loki gives the results cache's config unless they are set: index stats, volume,
    /// series, labels, instant metrics; pkg/loki/config_wrapper.go applyEmbeddedCacheConfig).
    /// All seven are set explicitly in the config: Loki's default is 100 MB each.
    pub chunk_cache: u32,
    pub results_cache_each: u32,
    /// WAL replay flushes past this. A crash under load replays, then catches up at once, so
    /// the replayed data and the catch-up's working set must fit together beside the caches.
    pub replay_ceiling: u32,
    /// The ingestion working set at the fastest a catch-up can ingest.
    pub working_set: u32,
}

impl MemoryBudget {
    pub fn new(share: u32, loki_vcpu: f64, rate_mb_per_s: f64) -> MemoryBudget {
        let gomemlimit = (f64::from(share) * GOMEMLIMIT_SHARE).floor() as u32;
        // 48 MB and 6 × 12 MB at a 1536 MiB share: caches that save S3 reads without crowding
        // out ingestion, which is what the share is for.
        let (chunk_cache, results_cache_each) = ((share / 32).max(1), (share / 128).max(1));
        let catch_up_rate = (MEASURED_MIB_PER_S_PER_VCPU * loki_vcpu).min(TENANT_LIMIT_FACTOR * rate_mb_per_s);
        let caches = chunk_cache + RESULT_CACHES * results_cache_each;
        let working_set = (WORKING_SET_MB_PER_MIB_S * catch_up_rate).ceil() as u32;
        MemoryBudget {
            share,
            gomemlimit,
            chunk_cache,
            results_cache_each,
            replay_ceiling: gomemlimit.saturating_sub(caches + QUERY_RESERVE_MB + working_set).max(MIN_REPLAY_MB),
            working_set,
        }
    }

    /// All seven embedded caches together.
    pub fn caches(&self) -> u32 {
        self.chunk_cache + RESULT_CACHES * self.results_cache_each
    }

    /// What must fit under GOMEMLIMIT: the caches, the catch-up's working set, one query and at
    /// least the smallest replay ceiling.
    pub fn needed(&self) -> u32 {
        self.caches() + self.working_set + QUERY_RESERVE_MB + MIN_REPLAY_MB
    }

    pub fn fits(&self) -> bool {
        self.needed() <= self.gomemlimit
    }
}

/// What a Loki task (its CPU units and memory) does at an ingestion rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Capacity {
    pub task_cpu: u32,
    pub task_memory: u32,
    pub loki_vcpu: f64,
    /// MiB/s it carries with room for a catch-up and a query (the Graviton low end, over SPARE).
    pub carries: f64,
    pub memory: MemoryBudget,
}

impl Capacity {
    pub fn of(task_cpu: u32, task_memory: u32, sidecar_memory: u32, rate_mb_per_s: f64) -> Capacity {
        let loki_vcpu = f64::from(task_cpu.saturating_sub(ALLOY_CPU_UNITS)) / 1024.0;
        let share = loki_container_memory(task_memory, sidecar_memory);
        Capacity {
            task_cpu,
            task_memory,
            loki_vcpu,
            carries: MEASURED_MIB_PER_S_PER_VCPU * GRAVITON_LOW_END * loki_vcpu / SPARE,
            memory: MemoryBudget::new(share, loki_vcpu, rate_mb_per_s),
        }
    }

    pub fn of_env(s: &Settings) -> Capacity {
        Capacity::of(s.loki.cpu, s.loki.memory, s.alloy.memory, f64::from(s.loki.ingestion_mb_per_s))
    }

    /// Whether it carries `rate` with its spare and its memory fits.
    pub fn carries_rate(&self, rate_mb_per_s: f64) -> bool {
        self.carries >= rate_mb_per_s && self.memory.fits()
    }

    /// Seconds to drain a planned restart's backlog at the spare rate (the low-end capacity).
    pub fn catch_up_seconds(&self, rate_mb_per_s: f64) -> Option<f64> {
        let spare = MEASURED_MIB_PER_S_PER_VCPU * GRAVITON_LOW_END * self.loki_vcpu - rate_mb_per_s;
        (spare > 0.0).then(|| rate_mb_per_s * PLANNED_RESTART_SECONDS / spare)
    }

    /// Seconds a full-text query over 7 days of the whole tenant at `rate` scans for.
    pub fn seven_day_scan_seconds(&self, rate_mb_per_s: f64) -> f64 {
        let bytes_mb = rate_mb_per_s * 1.048_576 * 7.0 * 86_400.0;
        bytes_mb / (SCAN_MB_PER_S_PER_VCPU * self.loki_vcpu)
    }

    /// Why this size cannot carry `rate`, if it cannot.
    pub fn shortfall(&self, rate_mb_per_s: f64) -> Option<String> {
        if self.carries < rate_mb_per_s {
            return Some(format!(
                "Loki's {:.2} vCPU carries {:.1} MiB/s with room for a restart's catch-up and a query",
                self.loki_vcpu, self.carries
            ));
        }
        (!self.memory.fits()).then(|| {
            format!(
                "Loki's {} MiB (GOMEMLIMIT {} MB) cannot hold {} MB of caches, {} MB of working set at the catch-up's rate, {} MB for a query and {} MB of WAL replay",
                self.memory.share,
                self.memory.gomemlimit,
                self.memory.caches(),
                self.memory.working_set,
                QUERY_RESERVE_MB,
                MIN_REPLAY_MB
            )
        })
    }
}

/// The smallest ECS size (CPU units, memory MiB) whose Loki carries `rate`, if any does.
pub fn smallest_size(rate_mb_per_s: f64, sidecar_memory: u32) -> Option<(u32, u32)> {
    let sizes = crate::rules::ecs_task_sizes();
    let mut candidates: Vec<(u32, u32)> = sizes
        .iter()
        .flat_map(|(&cpu, &(min, max, step))| {
            (min..=max).step_by(step as usize).map(move |memory| (cpu as u32, memory as u32))
        })
        .collect();
    candidates.sort_by_key(|&(cpu, memory)| (cpu, memory));
    candidates
        .into_iter()
        .find(|&(cpu, memory)| Capacity::of(cpu, memory, sidecar_memory, rate_mb_per_s).carries_rate(rate_mb_per_s))
}

/// The README's sizing table: what each task size does at `rate` from the tenant, next to a
/// sidecar of `sidecar_memory` MiB. Between these markers; a test compares it with the README.
pub const TABLE_BEGIN: &str =
    "<!-- loki-sizing: generated by settings::capacity::sizing_table, checked by its test -->";
pub const TABLE_END: &str = "<!-- /loki-sizing -->";

pub fn sizing_table(rate_mb_per_s: f64, sidecar_memory: u32) -> String {
    let mut table = format!(
        "| Loki task (CPU units / MiB) | Loki's share | carries (MiB/s, with room) | catch-up after a planned restart at {rate_mb_per_s} MB/s | a 7-day full-text query at {rate_mb_per_s} MB/s scans for | {rate_mb_per_s} MB/s |\n|---|---|---|---|---|---|\n"
    );
    for (cpu, memory) in [(512, 1024), (1024, 2048), (2048, 4096), (4096, 8192)] {
        let size = Capacity::of(cpu, memory, sidecar_memory, rate_mb_per_s);
        let catch_up =
            size.catch_up_seconds(rate_mb_per_s).map_or("never".to_string(), |s| format!("{:.0} s", s.ceil()));
        let scan_hours = size.seven_day_scan_seconds(rate_mb_per_s) / 3600.0;
        let verdict = match size.shortfall(rate_mb_per_s) {
            None => "carries it".to_string(),
            Some(why) if why.contains("GOMEMLIMIT") => "too little memory".to_string(),
            Some(_) => "too little CPU".to_string(),
        };
        table.push_str(&format!(
            "| {cpu} / {memory} | {:.3} vCPU, {} MiB (GOMEMLIMIT {}) | {:.1} | {catch_up} | {scan_hours:.1} h | {verdict} |\n",
            size.loki_vcpu, size.memory.share, size.memory.gomemlimit, size.carries
        ));
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The measured task: Loki alone with 0.5 vCPU (no sidecar's CPU), shares of 512 and 1024 MiB.
    fn measured(share: u32) -> MemoryBudget {
        MemoryBudget::new(share, 0.5, 10.0)
    }

    #[test]
    fn the_model_comes_out_as_measured() {
        // 512 MiB: killed in 3 of 8 restart runs at 10 MiB/s: no margin.
        assert!(!measured(512).fits(), "{:?}", measured(512));
        // 1024 MiB: no run killed.
        assert!(measured(1024).fits(), "{:?}", measured(1024));
        // 0.5 vCPU took ≈ 12 MiB/s: at the Graviton low end and with the spare, it carries less
        // than the required 10.
        let half = Capacity::of(512 + ALLOY_CPU_UNITS, 1024 + 384 + 128, 384, 10.0);
        assert!((half.loki_vcpu - 0.5).abs() < 1e-9);
        assert!(half.carries < 10.0 && half.carries > 6.0, "{half:?}");
        // A needle query over 516 MB took 2.6 s at 0.5 vCPU (≈ 200 MB/s).
        assert!((516.0 / (SCAN_MB_PER_S_PER_VCPU * 0.5) - 2.6).abs() < 0.1);
    }

    #[test]
    fn the_readme_states_the_sizing_table_the_model_gives() {
        let readme = include_str!("../../../README.md");
        let table = readme
            .split_once(TABLE_BEGIN)
            .and_then(|(_, rest)| rest.split_once(TABLE_END))
            .map(|(table, _)| table.trim())
            .expect("README.md has the sizing table between its markers");
        let want = sizing_table(f64::from(crate::REQUIRED_INGESTION_MB_PER_S), 384);
        assert_eq!(table, want.trim(), "README.md's sizing table is stale; replace it with:\n{want}");
    }

    #[test]
    fn the_budget_adds_up_under_gomemlimit() {
        for share in [512, 1024, 1536, 3584, 7680] {
            let budget = MemoryBudget::new(share, 1.0, 10.0);
            assert_eq!(budget.gomemlimit, share * 4 / 5);
            if budget.fits() {
                let all = budget.caches() + budget.replay_ceiling + QUERY_RESERVE_MB + budget.working_set;
                assert!(all <= budget.gomemlimit, "{budget:?}");
            }
        }
    }

    #[test]
    fn the_shipped_size_of_512_units_cannot_carry_10_mib_s_and_the_smallest_that_can_is_named() {
        let old = Capacity::of(512, 1024, 384, 10.0);
        assert!(!old.carries_rate(10.0));
        assert!(old.shortfall(10.0).unwrap().contains("vCPU"), "{:?}", old.shortfall(10.0));
        assert_eq!(smallest_size(10.0, 384), Some((1024, 2048)));
        let fits = Capacity::of(1024, 2048, 384, 10.0);
        assert!(fits.carries_rate(10.0), "{fits:?}");
        assert_eq!(fits.shortfall(10.0), None);
        // A faster core cannot make a small share hold a fast catch-up.
        assert!(Capacity::of(1024, 1536, 384, 10.0).shortfall(10.0).unwrap().contains("GOMEMLIMIT"));
        // A planned restart's backlog drains in minutes at the spare.
        let catch_up = fits.catch_up_seconds(10.0).unwrap();
        assert!(catch_up > 200.0 && catch_up < 600.0, "{catch_up}");
        assert_eq!(old.catch_up_seconds(10.0), None);
    }
}

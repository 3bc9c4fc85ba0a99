//! The offline checks and stages that `cargo xtask check` and `cargo xtask test` run: no AWS
//! call, no credentials. They may use `phase` (to plan offline) and `commands` that render; never `live`.

pub mod configs;
pub mod outage_budget;
#[cfg(test)]
pub mod proptests;
pub mod report;
pub mod stages;
pub mod suite;

//! Offline checks of the configs `cargo xtask render` produces; `cargo xtask check` calls them.

pub mod alloy;
pub mod grafana;
pub mod loki;

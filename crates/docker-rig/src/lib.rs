//! A real Docker engine for the suite, and the rig that measures what a Loki outage costs in log
//! lines with the `logConfiguration` our plan gives the Temporal containers (issue 29).
//! Dev-only: production code never depends on this crate.

pub mod engine;
mod image;
pub mod rig;

pub use engine::Engine;
pub use image::writer_image;
pub use rig::{Case, Outcome};
pub mod cloudwatch;
pub mod shared;

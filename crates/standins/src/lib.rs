//! Stand-ins for tests that drive real commands: a local `moto_server` (AWS APIs) and recording
//! fake executables put first on `PATH`. Dev-only: production code never depends on this crate.

pub mod http;
mod moto;
pub mod observability;
mod recorder;

pub use moto::MotoServer;
pub use recorder::{find_on, Call, Recorder, Reply, StandIn};

//! `cargo xtask verify`: the checkpoints 2, 5, 7, 9 and the live checks beside them (properties,
//! parity, capacity). They may use `phase`, `live` and `checks::report`.

mod checkpoints;
pub(crate) use checkpoints::*;
// The properties P1-P5 (`verify properties`) share the checkpoints' tunnels, AMP access and checks.
pub(crate) mod properties;
// `verify parity` too: CloudWatch against Loki over closed windows, and the gate on its record.
pub(crate) mod capacity;
pub(crate) mod parity;

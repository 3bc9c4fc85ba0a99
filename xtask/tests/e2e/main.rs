//! The built `xtask` end to end, as an operator runs it, against moto and the stand-ins (see
//! `common`). One test binary: one link, and one moto_server shared by every test.

mod backfill;
mod build_grafana;
mod capacity;
mod common;
mod migration;
mod onboarding;
mod parity;
mod phases;
mod properties;
mod verify;

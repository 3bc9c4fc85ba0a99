//! One file per `cargo xtask <command>`, named as the command, holding its arguments and its
//! `run`. They may use everything else (`phase`, `live`, `checks`); nothing but `cli` and `main` uses them whole.

pub mod backfill;
pub mod bench;
pub mod build_grafana;
pub mod cleanup_adot;
pub mod cost;
pub mod deploy;
pub mod doctor;
pub mod in_use;
pub mod init;
pub mod logs;
pub mod migrate_sidecars;
pub mod render;
pub mod requirements;
pub mod schema;
pub mod test;
pub mod verify;

//! Probes of a deployed environment over HTTP: Loki and Grafana (reached through a local tunnel
//! port), and Amazon Managed Prometheus queries signed with SigV4. No process running here: the
//! caller supplies URLs and credentials.

pub mod amp;
pub mod aws;
pub mod grafana;
pub mod http;
pub mod logql;
pub mod loki;
pub mod push;
pub mod retry;
pub mod time;

pub use http::Http;

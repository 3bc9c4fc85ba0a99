//! `terraform-provider-aws` offline stand-in: serves the real hashicorp/aws schema
//! over Terraform plugin protocol 6 so that `terraform validate` and
//! `terraform test` with `mock_provider "aws"` work without network access.
//!
//! Environment:
//! - `OFFLINE_PROVIDER_SCHEMA`: path of the schema document (output of
//!   `terraform providers schema -json`, optionally gzipped). Required.
//! - `OFFLINE_PROVIDER_CACHE`: a file to keep the converted schema in for the next start.
//! - `TF_PLUGIN_MAGIC_COOKIE`, `PLUGIN_PROTOCOL_VERSIONS`, `PLUGIN_UNIX_SOCKET_DIR`: set by
//!   Terraform (go-plugin).
//!
//! It speaks plain gRPC on a socket in a private (0700) directory, so Terraform must run with
//! `TF_DISABLE_PLUGIN_TLS=1`, as the plugin SDK's own test framework runs it: go-plugin's
//! automatic mTLS would need a C crypto library in every cold build of the checks.

mod cache;
mod proto;
mod provider;
mod schema;

use std::convert::Infallible;
use std::io::Write;
use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::OnceLock;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::net::UnixListener;
use tonic::body::Body;
use tonic::codegen::{http, BoxFuture, Service};
use tonic::server::NamedService;

use proto::go_plugin::{ControllerServer, StdioServer};
use proto::health::health_server::HealthServer;
use proto::tfplugin6::provider_server::ProviderServer;

const MAGIC_COOKIE_KEY: &str = "TF_PLUGIN_MAGIC_COOKIE";
const MAGIC_COOKIE_VALUE: &str = "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2";
const SCHEMA_ENV: &str = "OFFLINE_PROVIDER_SCHEMA";
const PROTOCOL_VERSION: &str = "6";
/// Requests carry whole resource states; gRPC's 4 MiB default is too tight for big ones.
const MAX_MESSAGE_SIZE: usize = 256 << 20;

/// The socket's directory, removed on exit.
static SOCKET_DIR: OnceLock<PathBuf> = OnceLock::new();

fn main() -> ExitCode {
    if std::env::var(MAGIC_COOKIE_KEY).as_deref() != Ok(MAGIC_COOKIE_VALUE) {
        // Same wording as go-plugin's servers.
        eprintln!(
            "This binary is a plugin. These are not meant to be executed directly.\n\
             Please execute the program that consumes these plugins, which will\n\
             load any plugins automatically"
        );
        return ExitCode::FAILURE;
    }
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("terraform-provider-aws (offline stand-in): {message}");
            cleanup();
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    if let Ok(offered) = std::env::var("PLUGIN_PROTOCOL_VERSIONS") {
        if !offered.split(',').any(|v| v.trim() == PROTOCOL_VERSION) {
            return Err(format!(
                "Terraform offers plugin protocol versions {offered:?}; this provider speaks only version \
                 {PROTOCOL_VERSION} (Terraform 1.0 or later)"
            ));
        }
    }
    let schema_path = std::env::var_os(SCHEMA_ENV).ok_or_else(|| {
        format!(
            "{SCHEMA_ENV} is not set: set it to the provider schema document \
             (`terraform providers schema -json` output, optionally gzipped), \
             e.g. infra/provider-schema/aws.schema.json.gz"
        )
    })?;
    let schema_path = PathBuf::from(schema_path);
    // Fail early on a path typo; the document itself is parsed when first needed.
    std::fs::File::open(&schema_path)
        .map_err(|e| format!("{SCHEMA_ENV}={}: cannot open: {e}", schema_path.display()))?;
    if std::env::var_os("PLUGIN_CLIENT_CERT").is_some() {
        let message = "Terraform asks for TLS on the plugin channel (PLUGIN_CLIENT_CERT is set), which this \
                       offline stand-in does not speak: run Terraform with TF_DISABLE_PLUGIN_TLS=1 (cargo xtask does)";
        // Terraform shows plugin stderr only in its debug log, but quotes a handshake line it
        // cannot parse in its error.
        println!("{message}");
        return Err(message.to_string());
    }
    let provider = provider::OfflineProvider::new(schema_path);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    runtime.block_on(serve(provider))
}

async fn serve(provider: provider::OfflineProvider) -> Result<(), String> {
    let dir = make_socket_dir()?;
    let socket = dir.join("plugin.sock");
    let listener = UnixListener::bind(&socket).map_err(|e| format!("cannot listen on {}: {e}", socket.display()))?;
    watch_signals()?;
    watch_parent();

    // The handshake line tells go-plugin where to connect; no sixth field: no TLS.
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "1|{PROTOCOL_VERSION}|unix|{}|grpc", socket.display())
        .and_then(|()| stdout.flush())
        .map_err(|e| format!("cannot write the handshake line: {e}"))?;
    drop(stdout);

    let router = Router {
        provider: ProviderServer::new(provider).max_decoding_message_size(MAX_MESSAGE_SIZE),
        controller: ControllerServer::new(provider::Controller),
        stdio: StdioServer::new(provider::Stdio),
        health: HealthServer::new(provider::Health),
    };
    tonic::transport::Server::builder()
        .serve_with_incoming(router, tokio_stream::wrappers::UnixListenerStream::new(listener))
        .await
        .map_err(|e| format!("gRPC server failed: {e}"))
}

/// Routes requests to the services by the `/<package>.<Service>/` path prefix
/// (a hand-written router instead of tonic's axum-based one keeps the build small).
#[derive(Clone)]
struct Router {
    provider: ProviderServer<provider::OfflineProvider>,
    controller: ControllerServer<provider::Controller>,
    stdio: StdioServer<provider::Stdio>,
    health: HealthServer<provider::Health>,
}

impl Service<http::Request<Body>> for Router {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let service = request.uri().path().trim_start_matches('/').split('/').next().unwrap_or_default();
        if service == ProviderServer::<provider::OfflineProvider>::NAME {
            self.provider.call(request)
        } else if service == ControllerServer::<provider::Controller>::NAME {
            self.controller.call(request)
        } else if service == StdioServer::<provider::Stdio>::NAME {
            self.stdio.call(request)
        } else if service == HealthServer::<provider::Health>::NAME {
            self.health.call(request)
        } else {
            // e.g. go-plugin's GRPCBroker, which Terraform providers do not use.
            let status = tonic::Status::unimplemented(format!("service {service} is not implemented"));
            Box::pin(std::future::ready(Ok(status.into_http())))
        }
    }
}

fn make_socket_dir() -> Result<PathBuf, String> {
    let base = std::env::var_os("PLUGIN_UNIX_SOCKET_DIR").map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
    let pid = std::process::id();
    for attempt in 0..100 {
        let dir = base.join(format!("tf-offline-aws-{pid}-{attempt}"));
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => {
                let _ = SOCKET_DIR.set(dir.clone());
                return Ok(dir);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(format!("cannot create a socket directory in {}: {e}", base.display())),
        }
    }
    Err(format!("cannot create a socket directory in {}: all names taken", base.display()))
}

/// SIGTERM ends the plugin (after removing the socket); SIGINT is ignored, as in
/// go-plugin servers: on Ctrl-C Terraform itself decides when to shut plugins down.
fn watch_signals() -> Result<(), String> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate = signal(SignalKind::terminate()).map_err(|e| format!("cannot watch SIGTERM: {e}"))?;
    let mut interrupt = signal(SignalKind::interrupt()).map_err(|e| format!("cannot watch SIGINT: {e}"))?;
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = terminate.recv() => exit(0),
                _ = interrupt.recv() => {}
            }
        }
    });
    Ok(())
}

/// Exits when Terraform goes away without calling `Shutdown` (killed, crashed):
/// the process is then re-parented, and a leftover plugin would idle forever.
fn watch_parent() {
    let parent = std::os::unix::process::parent_id();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            if std::os::unix::process::parent_id() != parent {
                exit(0);
            }
        }
    });
}

fn cleanup() {
    if let Some(dir) = SOCKET_DIR.get() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Removes the socket and ends the process.
pub fn exit(code: i32) -> ! {
    cleanup();
    std::process::exit(code)
}

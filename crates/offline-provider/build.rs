//! Generates the tonic server stubs from hand-written service descriptions
//! (`tonic_build::manual`), so the build needs no `protoc` and no .proto file.
//! Message types live in `src/proto.rs`. Methods not listed here are answered
//! with gRPC `Unimplemented` by the generated router, which Terraform tolerates.

use tonic_build::manual::{Builder, Method, Service};

const CODEC: &str = "tonic_prost::ProstCodec";

fn unary(name: &str, route: &str, input: &str, output: &str) -> Method {
    Method::builder()
        .name(name)
        .route_name(route)
        .input_type(format!("crate::proto::{input}"))
        .output_type(format!("crate::proto::{output}"))
        .codec_path(CODEC)
        .build()
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");

    // (rust method, RPC name, message prefix): messages are `<Prefix>Request` / `<Prefix>Response`.
    let provider_rpcs = [
        ("get_metadata", "GetMetadata", "GetMetadata"),
        ("get_provider_schema", "GetProviderSchema", "GetProviderSchema"),
        ("validate_provider_config", "ValidateProviderConfig", "ValidateProviderConfig"),
        ("validate_resource_config", "ValidateResourceConfig", "ValidateResourceConfig"),
        ("validate_data_resource_config", "ValidateDataResourceConfig", "ValidateDataResourceConfig"),
        ("validate_ephemeral_resource_config", "ValidateEphemeralResourceConfig", "ValidateEphemeralResourceConfig"),
        ("upgrade_resource_state", "UpgradeResourceState", "UpgradeResourceState"),
        ("get_resource_identity_schemas", "GetResourceIdentitySchemas", "GetResourceIdentitySchemas"),
        ("configure_provider", "ConfigureProvider", "ConfigureProvider"),
        ("read_resource", "ReadResource", "ReadResource"),
        ("plan_resource_change", "PlanResourceChange", "PlanResourceChange"),
        ("apply_resource_change", "ApplyResourceChange", "ApplyResourceChange"),
        ("read_data_source", "ReadDataSource", "ReadDataSource"),
        ("stop_provider", "StopProvider", "StopProvider"),
    ];
    let mut provider = Service::builder().name("Provider").package("tfplugin6");
    for (name, route, msg) in provider_rpcs {
        let output = if route == "GetProviderSchema" {
            // The schema reply is encoded once at start-up and sent as-is.
            "PreEncoded".to_string()
        } else {
            format!("{msg}Response")
        };
        provider = provider.method(unary(name, route, &format!("{msg}Request"), &output));
    }

    // go-plugin's own services (package `plugin`).
    let controller = Service::builder()
        .name("GRPCController")
        .package("plugin")
        .method(unary("shutdown", "Shutdown", "Empty", "Empty"))
        .build();
    let stdio = Service::builder()
        .name("GRPCStdio")
        .package("plugin")
        .method(
            Method::builder()
                .name("stream_stdio")
                .route_name("StreamStdio")
                .input_type("crate::proto::Empty")
                .output_type("crate::proto::StdioData")
                .codec_path(CODEC)
                .server_streaming()
                .build(),
        )
        .build();
    let health = Service::builder()
        .name("Health")
        .package("grpc.health.v1")
        .method(unary("check", "Check", "HealthCheckRequest", "HealthCheckResponse"))
        .build();

    Builder::new().build_client(false).compile(&[provider.build(), controller, stdio, health]);
}

//! The tfplugin6 `Provider` service plus go-plugin's controller/stdio services.
//!
//! Only the schema is real. Validation accepts whatever Terraform already checked
//! against the schema, and the plan/apply/read RPCs echo their input, so that
//! `terraform plan` works without a mock too.

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;

use tokio::sync::OnceCell;
use tonic::{Request, Response, Status};

use crate::cache::{Cache, Converted};
use crate::proto::*;

type Reply<T> = Result<Response<T>, Status>;

pub struct OfflineProvider {
    schema_path: PathBuf,
    /// Parsed on first use: with `get_provider_schema_optional` Terraform asks only
    /// the first provider process of a run for the schema, so later processes
    /// (one per graph walk) never pay for parsing the 4 MB document.
    loaded: OnceCell<Result<Arc<Converted>, String>>,
}

impl OfflineProvider {
    pub fn new(schema_path: PathBuf) -> Self {
        Self { schema_path, loaded: OnceCell::new() }
    }

    async fn loaded(&self) -> Result<Arc<Converted>, Diagnostic> {
        let result = self
            .loaded
            .get_or_init(|| async {
                let path = self.schema_path.clone();
                // Parsing takes a while: keep the runtime free for other RPCs meanwhile.
                tokio::task::spawn_blocking(move || load(&path))
                    .await
                    .unwrap_or_else(|e| Err(format!("schema loading failed: {e}")))
            })
            .await;
        result.clone().map_err(|message| error("Cannot load the provider schema", message))
    }
}

fn load(path: &Path) -> Result<Arc<Converted>, String> {
    let raw = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let cache = Cache::for_schema(&raw);
    if let Some(hit) = cache.as_ref().and_then(Cache::read) {
        eprintln!("loaded {} as converted before", path.display());
        return Ok(Arc::new(hit));
    }
    let schema = crate::schema::from_document(&raw).map_err(|e| format!("{}: {e}", path.display()))?;
    let capabilities = ServerCapabilities {
        // The schema never changes, so Terraform may reuse it across provider instances.
        get_provider_schema_optional: true,
        ..Default::default()
    };
    let type_names = |names: std::collections::btree_map::Keys<'_, String, Schema>| {
        names.map(|n| TypeNameMetadata { type_name: n.clone() }).collect()
    };
    let metadata = GetMetadataResponse {
        server_capabilities: Some(capabilities.clone()),
        diagnostics: Vec::new(),
        data_sources: type_names(schema.data_sources.keys()),
        resources: type_names(schema.resources.keys()),
    };
    let (resources, data_sources) = (schema.resources.len(), schema.data_sources.len());
    let reply = GetProviderSchemaResponse {
        provider: Some(schema.provider),
        resource_schemas: schema.resources,
        data_source_schemas: schema.data_sources,
        diagnostics: Vec::new(),
        server_capabilities: Some(capabilities),
    };
    let schema_reply = PreEncoded::new(&reply).0;
    // go-plugin copies plugin stderr into Terraform's log (TF_LOG=debug).
    eprintln!(
        "loaded {}: {resources} resources, {data_sources} data sources, {} byte schema reply",
        path.display(),
        schema_reply.len()
    );
    let converted = Converted { metadata, schema_reply };
    if let Some(cache) = cache {
        // Only the next start is slower without it.
        if let Err(message) = cache.write(&converted) {
            eprintln!("{message}");
        }
    }
    Ok(Arc::new(converted))
}

fn ok<T>(message: T) -> Reply<T> {
    Ok(Response::new(message))
}

fn error(summary: &str, detail: String) -> Diagnostic {
    Diagnostic { severity: 1, summary: summary.to_string(), detail }
}

#[tonic::async_trait]
impl tfplugin6::provider_server::Provider for OfflineProvider {
    async fn get_metadata(&self, _: Request<GetMetadataRequest>) -> Reply<GetMetadataResponse> {
        match self.loaded().await {
            Ok(loaded) => ok(loaded.metadata.clone()),
            Err(diagnostic) => ok(GetMetadataResponse { diagnostics: vec![diagnostic], ..Default::default() }),
        }
    }

    async fn get_provider_schema(&self, _: Request<GetProviderSchemaRequest>) -> Reply<PreEncoded> {
        match self.loaded().await {
            // Cloning `Bytes` is a reference-count increment.
            Ok(loaded) => ok(PreEncoded(loaded.schema_reply.clone())),
            // Terraform shows these diagnostics to the user.
            Err(diagnostic) => {
                ok(PreEncoded::new(&GetProviderSchemaResponse { diagnostics: vec![diagnostic], ..Default::default() }))
            }
        }
    }

    async fn validate_provider_config(
        &self,
        _: Request<ValidateProviderConfigRequest>,
    ) -> Reply<ValidateProviderConfigResponse> {
        ok(Default::default())
    }

    async fn validate_resource_config(
        &self,
        _: Request<ValidateResourceConfigRequest>,
    ) -> Reply<ValidateResourceConfigResponse> {
        ok(Default::default())
    }

    async fn validate_data_resource_config(
        &self,
        _: Request<ValidateDataResourceConfigRequest>,
    ) -> Reply<ValidateDataResourceConfigResponse> {
        ok(Default::default())
    }

    async fn validate_ephemeral_resource_config(
        &self,
        _: Request<ValidateEphemeralResourceConfigRequest>,
    ) -> Reply<ValidateEphemeralResourceConfigResponse> {
        ok(Default::default())
    }

    async fn upgrade_resource_state(
        &self,
        request: Request<UpgradeResourceStateRequest>,
    ) -> Reply<UpgradeResourceStateResponse> {
        let request = request.into_inner();
        let raw = request.raw_state.unwrap_or_default();
        // Terraform accepts JSON-encoded dynamic values, so stored state is returned as is.
        if raw.json.is_empty() && !raw.flatmap.is_empty() {
            return ok(UpgradeResourceStateResponse {
                upgraded_state: None,
                diagnostics: vec![error(
                    "Legacy state format",
                    format!("The offline stand-in provider cannot upgrade flatmap state of {}.", request.type_name),
                )],
            });
        }
        ok(UpgradeResourceStateResponse {
            upgraded_state: Some(DynamicValue { msgpack: Vec::new(), json: raw.json }),
            diagnostics: Vec::new(),
        })
    }

    async fn get_resource_identity_schemas(
        &self,
        _: Request<GetResourceIdentitySchemasRequest>,
    ) -> Reply<GetResourceIdentitySchemasResponse> {
        ok(Default::default())
    }

    async fn configure_provider(&self, _: Request<ConfigureProviderRequest>) -> Reply<ConfigureProviderResponse> {
        ok(Default::default())
    }

    async fn read_resource(&self, request: Request<ReadResourceRequest>) -> Reply<ReadResourceResponse> {
        let request = request.into_inner();
        ok(ReadResourceResponse { new_state: request.current_state, diagnostics: Vec::new(), private: request.private })
    }

    async fn plan_resource_change(
        &self,
        request: Request<PlanResourceChangeRequest>,
    ) -> Reply<PlanResourceChangeResponse> {
        let request = request.into_inner();
        ok(PlanResourceChangeResponse {
            planned_state: request.proposed_new_state,
            planned_private: request.prior_private,
            diagnostics: Vec::new(),
        })
    }

    async fn apply_resource_change(
        &self,
        request: Request<ApplyResourceChangeRequest>,
    ) -> Reply<ApplyResourceChangeResponse> {
        let request = request.into_inner();
        ok(ApplyResourceChangeResponse {
            new_state: request.planned_state,
            private: request.planned_private,
            diagnostics: Vec::new(),
        })
    }

    async fn read_data_source(&self, request: Request<ReadDataSourceRequest>) -> Reply<ReadDataSourceResponse> {
        let request = request.into_inner();
        ok(ReadDataSourceResponse { state: request.config, diagnostics: Vec::new() })
    }

    async fn stop_provider(&self, _: Request<StopProviderRequest>) -> Reply<StopProviderResponse> {
        ok(Default::default())
    }
}

/// go-plugin's controller: `Shutdown` is how Terraform ends the plugin.
pub struct Controller;

#[tonic::async_trait]
impl go_plugin::Controller for Controller {
    async fn shutdown(&self, _: Request<Empty>) -> Reply<Empty> {
        // Exit at once, like go-plugin's own server: Terraform does not need the reply,
        // and waits up to 2 s per provider process for it to go away.
        crate::exit(0)
    }
}

/// go-plugin mirrors the plugin's stdout/stderr through this stream; this plugin
/// writes nothing there, so the stream just stays open until the process exits.
pub struct Stdio;

#[tonic::async_trait]
impl go_plugin::Stdio for Stdio {
    type StreamStdioStream = Pin<Box<dyn tokio_stream::Stream<Item = Result<StdioData, Status>> + Send>>;

    async fn stream_stdio(&self, _: Request<Empty>) -> Reply<Self::StreamStdioStream> {
        ok(Box::pin(tokio_stream::pending()))
    }
}

/// Standard gRPC health check, which go-plugin uses as its ping.
pub struct Health;

#[tonic::async_trait]
impl health::health_server::Health for Health {
    async fn check(&self, _: Request<HealthCheckRequest>) -> Reply<HealthCheckResponse> {
        ok(HealthCheckResponse { status: 1 })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;
    use tfplugin6::provider_server::Provider;

    fn project_schema() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../infra/provider-schema/aws.schema.json.gz")
    }

    #[tokio::test]
    async fn schema_reply_decodes_as_get_provider_schema_response() {
        let provider = OfflineProvider::new(project_schema());
        let reply = provider.get_provider_schema(Request::new(Empty {})).await.expect("reply");
        let decoded = GetProviderSchemaResponse::decode(reply.into_inner().0).expect("valid protobuf");
        assert!(decoded.diagnostics.is_empty(), "{:?}", decoded.diagnostics);
        assert!(decoded.resource_schemas.contains_key("aws_ecs_service"));
        assert!(decoded.data_source_schemas.contains_key("aws_iam_policy_document"));
        assert!(decoded.server_capabilities.expect("capabilities").get_provider_schema_optional);

        let metadata = provider.get_metadata(Request::new(Empty {})).await.expect("reply").into_inner();
        assert_eq!(metadata.resources.len(), decoded.resource_schemas.len());
        assert!(metadata.data_sources.iter().any(|d| d.type_name == "aws_caller_identity"));
    }

    #[tokio::test]
    async fn unreadable_schema_is_reported_as_a_diagnostic() {
        let provider = OfflineProvider::new(PathBuf::from("/nonexistent/aws.schema.json"));
        let reply = provider.get_provider_schema(Request::new(Empty {})).await.expect("reply");
        let decoded = GetProviderSchemaResponse::decode(reply.into_inner().0).expect("valid protobuf");
        assert_eq!(decoded.diagnostics.len(), 1);
        assert_eq!(decoded.diagnostics[0].severity, 1);
        assert!(decoded.diagnostics[0].detail.contains("/nonexistent/aws.schema.json"));
    }

    #[tokio::test]
    async fn plan_and_apply_echo_their_input() {
        let provider = OfflineProvider::new(project_schema());
        let state = DynamicValue { msgpack: vec![0x80], json: Vec::new() };
        let planned = provider
            .plan_resource_change(Request::new(PlanResourceChangeRequest {
                type_name: "aws_s3_bucket".into(),
                proposed_new_state: Some(state.clone()),
                prior_private: b"p".to_vec(),
                ..Default::default()
            }))
            .await
            .expect("reply")
            .into_inner();
        assert_eq!(planned.planned_state.as_ref(), Some(&state));
        assert_eq!(planned.planned_private, b"p");
        let applied = provider
            .apply_resource_change(Request::new(ApplyResourceChangeRequest {
                type_name: "aws_s3_bucket".into(),
                planned_state: planned.planned_state,
                ..Default::default()
            }))
            .await
            .expect("reply")
            .into_inner();
        assert_eq!(applied.new_state, Some(state));
    }
}

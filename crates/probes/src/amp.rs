//! Amazon Managed Service for Prometheus: PromQL instant queries signed with SigV4 (the
//! `aws-sigv4` crate; no hand-rolled crypto).

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use aws_credential_types::Credentials as SdkCredentials;
use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use serde_json::Value;

use crate::http::{url, Http};

/// AWS credentials; Debug shows the key id only.
#[derive(Clone)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials {{ access_key_id: {:?}, secret: *** }}", self.access_key_id)
    }
}

impl Credentials {
    /// The credential-process JSON that `aws configure export-credentials --format process`
    /// prints: `{"Version":1,"AccessKeyId":…,"SecretAccessKey":…,"SessionToken":…}`.
    pub fn from_process_json(text: &str) -> anyhow::Result<Credentials> {
        let value: Value = serde_json::from_str(text).context("the exported credentials are not JSON")?;
        let field = |name: &str| value[name].as_str().filter(|s| !s.is_empty()).map(str::to_string);
        Ok(Credentials {
            access_key_id: field("AccessKeyId").context("the exported credentials have no AccessKeyId")?,
            secret_access_key: field("SecretAccessKey").context("the exported credentials have no SecretAccessKey")?,
            session_token: field("SessionToken"),
        })
    }

    /// `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` / `AWS_SESSION_TOKEN`, when both keys are set.
    pub fn from_env() -> Option<Credentials> {
        let var = |name: &str| std::env::var(name).ok().filter(|s| !s.is_empty());
        Some(Credentials {
            access_key_id: var("AWS_ACCESS_KEY_ID")?,
            secret_access_key: var("AWS_SECRET_ACCESS_KEY")?,
            session_token: var("AWS_SESSION_TOKEN"),
        })
    }
}

/// The SigV4 headers (`authorization`, `x-amz-date`, maybe `x-amz-security-token`) for a request
/// with an empty body, at `time`.
pub fn sign_headers(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    credentials: &Credentials,
    region: &str,
    service: &str,
    time: SystemTime,
) -> anyhow::Result<Vec<(String, String)>> {
    sign_request(method, url, headers, &[], credentials, region, service, time)
}

/// Like [`sign_headers`], for a request with this body.
#[allow(clippy::too_many_arguments)]
pub fn sign_request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    credentials: &Credentials,
    region: &str,
    service: &str,
    time: SystemTime,
) -> anyhow::Result<Vec<(String, String)>> {
    let identity: Identity = SdkCredentials::new(
        &credentials.access_key_id,
        &credentials.secret_access_key,
        credentials.session_token.clone(),
        None,
        "xtask",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(time)
        .settings(settings_for(service))
        .build()
        .context("building the SigV4 signing parameters")?
        .into();
    let request = SignableRequest::new(method, url, headers.iter().copied(), SignableBody::Bytes(body))
        .context("the request cannot be signed")?;
    let (instructions, _signature) = sign(request, &params).context("signing the request")?.into_parts();
    Ok(instructions.headers().map(|(k, v)| (k.to_string(), v.to_string())).collect())
}

/// S3 signs differently: an `x-amz-content-sha256` header, and the path encoded once, as sent.
fn settings_for(service: &str) -> SigningSettings {
    let mut settings = SigningSettings::default();
    if service == "s3" {
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    }
    settings
}

pub struct Amp {
    /// `https://aps-workspaces.<region>.amazonaws.com/workspaces/<id>` (or an override).
    workspace_url: String,
    region: String,
    http: Http,
}

/// One series of an instant vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub metric: BTreeMap<String, String>,
    pub value: f64,
}

/// The workspace URL: `override_base` (a VPC endpoint or a test stand-in, no trailing path)
/// replaces `https://aps-workspaces.<region>.amazonaws.com`.
pub fn workspace_url(region: &str, workspace_id: &str, override_base: Option<&str>) -> String {
    let base = match override_base {
        Some(base) => base.trim_end_matches('/').to_string(),
        None => format!("https://aps-workspaces.{region}.amazonaws.com"),
    };
    format!("{base}/workspaces/{workspace_id}")
}

impl Amp {
    pub fn new(workspace_url: &str, region: &str, http: Http) -> Amp {
        Amp { workspace_url: workspace_url.trim_end_matches('/').to_string(), region: region.to_string(), http }
    }

    /// `GET /api/v1/query?query=<promql>`, signed for service `aps`.
    pub fn query(&self, promql: &str, credentials: &Credentials) -> anyhow::Result<Vec<Sample>> {
        let answer =
            self.signed_get("/api/v1/query", &[("query", promql)], credentials, &format!("AMP query {promql}"))?;
        parse_vector(&answer).with_context(|| format!("reading AMP's answer to {promql}"))
    }

    /// `GET /api/v1/label/<label>/values?match[]=<selector>` over the last `since`: e.g. the
    /// metric names (`__name__`) of a job's series, sorted as AMP returns them.
    pub fn label_values(
        &self,
        label: &str,
        selector: &str,
        since: Duration,
        credentials: &Credentials,
    ) -> anyhow::Result<Vec<String>> {
        let end = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let (start, end) = (end.saturating_sub(since).as_secs().to_string(), end.as_secs().to_string());
        let params = [("match[]", selector), ("start", start.as_str()), ("end", end.as_str())];
        let what = format!("AMP values of {label} for {selector}");
        let answer = self.signed_get(&format!("/api/v1/label/{label}/values"), &params, credentials, &what)?;
        // The same `{"status", "data": [..]}` shape as Loki's label API.
        crate::loki::parse_labels(&answer).with_context(|| format!("reading AMP's answer for the {what}"))
    }

    fn signed_get(
        &self,
        path: &str,
        params: &[(&str, &str)],
        credentials: &Credentials,
        what: &str,
    ) -> anyhow::Result<Value> {
        let target = url(&self.workspace_url, path, params);
        let host = host_of(&target)?;
        let signed =
            sign_headers("GET", &target, &[("host", host)], credentials, &self.region, "aps", SystemTime::now())?;
        let headers: Vec<(&str, &str)> = signed.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        self.http.get(&target, &headers)?.expect(200, what)?.json(what)
    }
}

fn host_of(url: &str) -> anyhow::Result<&str> {
    let rest = url.split_once("://").map(|(_, r)| r).context("the AMP URL has no scheme")?;
    Ok(rest.split(['/', '?']).next().unwrap_or(rest))
}

/// `{"status":"success","data":{"resultType":"vector","result":[{"metric":{…},"value":[t,"v"]}]}}`.
pub fn parse_vector(answer: &Value) -> anyhow::Result<Vec<Sample>> {
    if answer["status"] != "success" {
        bail!("status is {} ({})", answer["status"], answer["error"].as_str().unwrap_or("no error given"));
    }
    if answer["data"]["resultType"] != "vector" {
        bail!("resultType is {}, expected \"vector\"", answer["data"]["resultType"]);
    }
    let mut samples = Vec::new();
    for item in answer["data"]["result"].as_array().context("data.result is not a list")? {
        let metric = item["metric"]
            .as_object()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string())).collect())
            .unwrap_or_default();
        let value = item["value"][1]
            .as_str()
            .and_then(|v| v.parse().ok())
            .context("a sample's value is not a number string")?;
        samples.push(Sample { metric, value });
    }
    Ok(samples)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn example_credentials() -> Credentials {
        // The AWS SigV4 test suite's documented example key (not a real credential).
        Credentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
            session_token: None,
        }
    }

    #[test]
    fn signs_the_aws_test_suite_get_vanilla_vector() {
        // aws-sig-v4-test-suite/get-vanilla: GET / on example.amazonaws.com, 2015-08-30T12:36:00Z.
        let time = UNIX_EPOCH + Duration::from_secs(1_440_938_160);
        let headers = sign_headers(
            "GET",
            "https://example.amazonaws.com/",
            &[("host", "example.amazonaws.com")],
            &example_credentials(),
            "us-east-1",
            "service",
            time,
        )
        .unwrap();
        let get = |name: &str| headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        assert_eq!(get("x-amz-date"), Some("20150830T123600Z"));
        assert_eq!(
            get("authorization"),
            Some(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
                 SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
            )
        );
    }

    #[test]
    fn s3_requests_carry_their_payload_hash() {
        let headers = sign_request(
            "GET",
            "https://b.s3.eu-west-1.amazonaws.com/?list-type=2",
            &[("host", "b.s3.eu-west-1.amazonaws.com")],
            &[],
            &example_credentials(),
            "eu-west-1",
            "s3",
            SystemTime::now(),
        )
        .unwrap();
        // SHA-256 of the empty body.
        let empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert!(headers.iter().any(|(k, v)| k == "x-amz-content-sha256" && v == empty), "{headers:?}");
        let auth = &headers.iter().find(|(k, _)| k == "authorization").unwrap().1;
        assert!(auth.contains("x-amz-content-sha256"), "{auth}");
    }

    #[test]
    fn a_session_token_is_sent_and_signed() {
        let mut credentials = example_credentials();
        credentials.session_token = Some("token".into());
        let headers = sign_headers(
            "GET",
            "https://h/x?query=up",
            &[("host", "h")],
            &credentials,
            "eu-west-1",
            "aps",
            SystemTime::now(),
        )
        .unwrap();
        assert!(headers.iter().any(|(k, v)| k == "x-amz-security-token" && v == "token"));
        let auth = &headers.iter().find(|(k, _)| k == "authorization").unwrap().1;
        assert!(auth.contains("/eu-west-1/aps/aws4_request") && auth.contains("x-amz-security-token"), "{auth}");
    }

    #[test]
    fn reads_exported_credentials_and_hides_the_secret() {
        let creds = Credentials::from_process_json(
            r#"{"Version":1,"AccessKeyId":"AKIA1","SecretAccessKey":"shh","SessionToken":"tok","Expiration":"2030-01-01T00:00:00Z"}"#,
        )
        .unwrap();
        assert_eq!(creds.session_token.as_deref(), Some("tok"));
        assert!(!format!("{creds:?}").contains("shh"));
        assert!(Credentials::from_process_json(r#"{"Version":1,"AccessKeyId":"AKIA1"}"#).is_err());
    }

    #[test]
    fn parses_an_instant_vector_and_builds_urls() {
        let answer = serde_json::json!({"status": "success", "data": {"resultType": "vector", "result": [
            {"metric": {"job": "worker"}, "value": [1700000000.1, "1"]}]}});
        let samples = parse_vector(&answer).unwrap();
        assert_eq!(samples, [Sample { metric: [("job".to_string(), "worker".to_string())].into(), value: 1.0 }]);
        assert!(parse_vector(&serde_json::json!({"status": "error", "error": "bad query"})).is_err());
        assert_eq!(
            workspace_url("eu-west-1", "ws-1", None),
            "https://aps-workspaces.eu-west-1.amazonaws.com/workspaces/ws-1"
        );
        assert_eq!(
            workspace_url("eu-west-1", "ws-1", Some("http://127.0.0.1:9/")),
            "http://127.0.0.1:9/workspaces/ws-1"
        );
        assert_eq!(host_of("http://127.0.0.1:9/workspaces/ws-1/api/v1/query?query=up").unwrap(), "127.0.0.1:9");
    }
}

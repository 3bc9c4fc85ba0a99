//! AWS API calls straight to moto, for setting up and inspecting a test world: plain HTTP signed
//! with SigV4 (milliseconds a call, where the aws CLI takes a Python start each). The commands
//! under test still use the real aws CLI.

use std::time::SystemTime;

use anyhow::Context;
use probes::amp::{sign_request, Credentials};
use probes::http::url;
use probes::Http;
use serde_json::Value;

#[derive(Clone)]
pub struct AwsApi {
    endpoint: String,
    pub region: String,
    pub credentials: Credentials,
    /// The account these credentials act in, where known.
    pub account: String,
    http: Http,
}

/// The `X-Amz-Target` prefix of the JSON-protocol services the tests use.
fn json_target(service: &str) -> &'static str {
    match service {
        "ecs" => "AmazonEC2ContainerServiceV20141113",
        "logs" => "Logs_20140328",
        "secretsmanager" => "secretsmanager",
        "ssm" => "AmazonSSM",
        other => panic!("no JSON target known for AWS service {other}"),
    }
}

impl AwsApi {
    pub fn new(endpoint: &str, region: &str, key: &str, secret: &str, token: Option<String>) -> AwsApi {
        AwsApi {
            endpoint: endpoint.trim_end_matches('/').to_string(),
            region: region.to_string(),
            credentials: Credentials {
                access_key_id: key.to_string(),
                secret_access_key: secret.to_string(),
                session_token: token,
            },
            account: String::new(),
            http: Http::default(),
        }
    }

    pub fn in_account(mut self, account: &str) -> AwsApi {
        self.account = account.to_string();
        self
    }

    /// The environment variables that give a process these credentials and this endpoint.
    pub fn env_vars(&self) -> Vec<(&'static str, String)> {
        let mut vars = vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_ACCESS_KEY_ID", self.credentials.access_key_id.clone()),
            ("AWS_SECRET_ACCESS_KEY", self.credentials.secret_access_key.clone()),
        ];
        if let Some(token) = &self.credentials.session_token {
            vars.push(("AWS_SESSION_TOKEN", token.clone()));
        }
        vars
    }

    fn send(
        &self,
        method: &str,
        target: &str,
        service: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> anyhow::Result<String> {
        let host = target.split("://").nth(1).and_then(|r| r.split('/').next()).unwrap_or_default().to_string();
        let mut all: Vec<(&str, &str)> = vec![("host", host.as_str())];
        all.extend_from_slice(headers);
        let signed =
            sign_request(method, target, &all, body, &self.credentials, &self.region, service, SystemTime::now())?;
        let mut sent: Vec<(&str, &str)> = headers.to_vec();
        sent.extend(signed.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let what = format!("{service} {method} {}", target.trim_start_matches(&self.endpoint));
        let answer = match method {
            "POST" => self.http.post(target, &sent, body)?,
            "PUT" => self.http.put(target, &sent, body)?,
            _ => self.http.get(target, &sent)?,
        };
        Ok(answer.expect(200, &what)?.body)
    }

    /// A JSON-protocol action (ECS, CloudWatch Logs, Secrets Manager, SSM): its JSON answer.
    pub fn json(&self, service: &str, action: &str, input: &Value) -> anyhow::Result<Value> {
        let target = format!("{}.{action}", json_target(service));
        let body = input.to_string();
        let text = self.send(
            "POST",
            &format!("{}/", self.endpoint),
            service,
            &[("content-type", "application/x-amz-json-1.1"), ("x-amz-target", &target)],
            body.as_bytes(),
        )?;
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text).with_context(|| format!("{service} {action} answered no JSON: {text}"))
    }

    /// A query-protocol action (EC2, STS): its XML answer.
    pub fn query(&self, service: &str, action: &str, version: &str, params: &[(&str, &str)]) -> anyhow::Result<String> {
        let mut form = vec![("Action", action), ("Version", version)];
        form.extend_from_slice(params);
        // The form body is the same encoding as a query string, without the `?`.
        let body = url("", "", &form).trim_start_matches('?').to_string();
        self.send(
            "POST",
            &format!("{}/", self.endpoint),
            service,
            &[("content-type", "application/x-www-form-urlencoded; charset=utf-8")],
            body.as_bytes(),
        )
        .with_context(|| format!("{service} {action}"))
    }

    /// An S3 PUT of `path` (`/bucket` or `/bucket/key`, path-style).
    pub fn s3_put(&self, path: &str, body: &[u8]) -> anyhow::Result<()> {
        let target = format!("{}{path}", self.endpoint);
        self.send("PUT", &target, "s3", &[], body).map(drop)
    }

    /// Creates a bucket in this API's region.
    pub fn create_bucket(&self, bucket: &str) -> anyhow::Result<()> {
        let body = format!(
            "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><LocationConstraint>{}</LocationConstraint></CreateBucketConfiguration>",
            self.region
        );
        self.s3_put(&format!("/{bucket}"), body.as_bytes())
    }
}

/// The texts of every `<tag>…</tag>` in an XML answer, in order (moto's answers are flat enough).
pub fn xml_values(xml: &str, tag: &str) -> Vec<String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut found = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find(&open) {
        let after = &rest[start + open.len()..];
        let Some(end) = after.find(&close) else { break };
        found.push(after[..end].to_string());
        rest = &after[end + close.len()..];
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_values_are_found_in_order() {
        let xml = "<a><instanceId>i-1</instanceId><x/><instanceId>i-2</instanceId></a>";
        assert_eq!(xml_values(xml, "instanceId"), vec!["i-1", "i-2"]);
        assert!(xml_values(xml, "missing").is_empty());
    }
}
